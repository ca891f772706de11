"""Progress hooks: the one contract every long call of the package follows, and a rich bar.

A long call (``run``, ``compare``, ``sweep``, a market run, a replay, ...) takes
``progress=``: None (the default: no reporting, no cost), a callable ``progress(done, total)``
called with ``done`` increasing monotonically and ending at ``total`` (the unit, steps, runs or
messages, is in each call's docstring), or True for a ready-made bar on stderr
(:class:`ProgressBar`, drawn only when stderr is a terminal).
"""

from __future__ import annotations

from contextlib import contextmanager

__all__ = ["ProgressBar", "reporting", "stderr_console"]

_STDERR = None


def stderr_console():
    """The one rich Console on stderr that bars and the CLI's log lines share (so a log line
    prints above a running bar instead of through it)."""
    global _STDERR
    if _STDERR is None:
        from rich.console import Console

        _STDERR = Console(stderr=True)
    return _STDERR


class ProgressBar:
    """A rich progress bar on stderr for a ``progress(done, total)`` hook.

    ``parts``: one ``(label, size)`` per bar; the hook's ``done`` (in ``unit``) fills them in
    order, so that a run and its counterfactual, or each rule set of a comparison, advance on
    their own line. A single part's size may be None (not known yet): the hook's ``total``
    sets it. Nothing is drawn when ``console`` (default: stderr's) is not a terminal,
    nor when ``disable``. Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, parts, unit: str, *, console=None, disable: bool = False):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        if isinstance(parts, str):
            raise TypeError("parts must be (label, size) pairs, got a str")
        self.parts = [(str(label), None if size is None else int(size)) for label, size in parts]
        console = console if console is not None else stderr_console()
        self.live = Progress(TextColumn("{task.description}"), BarColumn(),
                             MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn(),
                             TimeRemainingColumn(), console=console, transient=False,
                             disable=disable or not console.is_terminal)
        # each part's clock starts with its first unit, not when the bar appears
        self.tasks = [self.live.add_task(label, total=size, start=False)
                      for label, size in self.parts]
        self.done = 0
        self.live.start()

    def __call__(self, done: int, total: int | None = None) -> None:
        """Show ``done`` units of all parts together (lower values than before are ignored)."""
        if len(self.parts) == 1 and total is not None and self.parts[0][1] != total:
            self.parts[0] = (self.parts[0][0], int(total))
            self.live.update(self.tasks[0], total=int(total))
        if done <= self.done:
            return
        self.done = done
        left = done
        for task, (_, size) in zip(self.tasks, self.parts, strict=True):
            size = left if size is None else size
            if left > 0:
                self.live.start_task(task)
            self.live.update(task, completed=min(left, size))
            left = max(0, left - size)

    def close(self) -> None:
        """Stop drawing (the finished bars stay on the terminal)."""
        self.live.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def reporting(progress, parts, unit: str):
    """The hook a long call reports to: ``progress`` itself when it is callable, a
    :class:`ProgressBar` over ``parts`` ((label, size) pairs, in ``unit``) for True, closed at
    the end, or None for None or False. TypeError naming ``progress`` otherwise."""
    if progress is None or progress is False:
        yield None
    elif progress is True:
        with ProgressBar(parts, unit) as bar:
            yield bar
    elif callable(progress):
        yield progress
    else:
        raise TypeError(f"progress must be None, True or a callable progress(done, total), "
                        f"got {progress!r}")
