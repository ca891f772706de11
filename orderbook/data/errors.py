"""The error the data readers raise for a damaged file.

A reader that meets something it cannot use (a truncated gzip stream, bytes that are not UTF-8,
bad JSON, a number that does not fit an int64, a missing column, a price off the grid, rows that
contradict each other) raises :class:`DataError`, a ``ValueError`` whose message names the file,
the line (Binance captures, 1-based) or row (LOBSTER files, 0-based like the arrays read from
them), the field and the value. A file that cannot be opened at all (missing, a directory, no
permission) raises the usual ``OSError``.
"""

from __future__ import annotations

__all__ = ["DataError", "DataTypeError"]


class DataError(ValueError):
    """Damaged market data; ``str()`` is one line naming where and what.

    Parameters
    ----------
    problem : str
        What is wrong, with the field and the value.
    path : str or os.PathLike, optional
        The file.
    line : int, optional
        1-based line of a line-oriented file (a Binance capture).
    row : int, optional
        0-based row of a table (a LOBSTER file); the problem text names it, as
        ``messages[3]['size']`` or ``orderbook row 3``.
    field : str, optional
        The field or column at fault.
    """

    def __init__(self, problem: str, *, path=None, line: int | None = None,
                 row: int | None = None, field: str | None = None):
        self.problem, self.path, self.line, self.row, self.field = problem, path, line, row, field
        where = [str(path)] if path is not None else []
        if line is not None:
            where.append(f"line {line}")
        super().__init__(": ".join(where + [problem]))

    def in_file(self, path) -> DataError:
        """The same error, naming ``path`` (readers add it to errors of the parsers below)."""
        return type(self)(self.problem, path=path, line=self.line, row=self.row,
                          field=self.field)


class DataTypeError(DataError, TypeError):
    """A field of the wrong JSON type (a number where a decimal string belongs, ...)."""
