"""An executor for runs in this process (``orderbook sweep --workers 1``)."""

from __future__ import annotations

from concurrent.futures import Executor, Future

__all__ = ["SerialExecutor"]


class SerialExecutor(Executor):
    """A ``concurrent.futures.Executor`` that runs each task in this process when it is submitted
    (``--workers 1``): no pickling, no processes, same results as a pool.

    ``on_done``, if given, is called after each task (the sweep's progress line uses it, since the
    futures are all done before ``sweep`` starts collecting them).
    """

    def __init__(self, on_done=None):
        self._shutdown = False
        self._on_done = on_done

    def submit(self, fn, /, *args, **kwargs) -> Future:
        """Call ``fn(*args, **kwargs)`` now, here; return a done Future holding its outcome."""
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        future = Future()
        future.set_running_or_notify_cancel()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # the future carries it, as in a pool (Ctrl-C propagates)
            future.set_exception(exc)
        else:
            future.set_result(result)
        if self._on_done is not None:
            self._on_done()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True
