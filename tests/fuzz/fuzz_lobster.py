"""Fuzz target: LOBSTER message and orderbook files, read and replayed, on mutated inputs.

An input is ``MODE MESSAGES SEPARATOR ORDERBOOK``: the first byte picks the replay (odd: a
hybrid replay with a market sell injected before message 0, of 1 + MODE // 2 shares), and the
rest is split at the first ``\\n=\\n`` into the message file and the orderbook file. At most
``MAX_ROWS`` rows are replayed. A damaged pair must raise :class:`orderbook.data.DataError`;
any other exception is a finding (a mismatching row is a result, not an error).

Run: ``PYTHONPATH=$PWD python tests/fuzz/fuzz_lobster.py NEW_DIR tests/fuzz/corpus/lobster``.
"""

from __future__ import annotations

import os
import sys
import tempfile

from orderbook.data.lobster import DataError, Injection, replay_files

MAX_INPUT = 64 * 1024  # bytes of one input; larger ones are skipped
MAX_ROWS = 200  # rows replayed per input
SEPARATOR = b"\n=\n"

_DIR = tempfile.mkdtemp(prefix="fuzz_lobster_")
_MESSAGES = os.path.join(_DIR, "X_message_1.csv")
_ORDERBOOK = os.path.join(_DIR, "X_orderbook_1.csv")


def test_one_input(data: bytes) -> None:
    """Replay one mutated LOBSTER pair; only DataError may escape."""
    if not data or len(data) > MAX_INPUT:
        return
    mode, rest = data[0], data[1:]
    messages, _, orderbook = rest.partition(SEPARATOR)
    for path, body in ((_MESSAGES, messages), (_ORDERBOOK, orderbook)):
        with open(path, "wb") as handle:
            handle.write(body)
    inject = [Injection(side="sell", qty=1 + mode // 2, at=0)] if mode & 1 else []
    try:
        result = replay_files(_MESSAGES, _ORDERBOOK, nrows=MAX_ROWS, inject=inject)
    except DataError:
        return
    result.summary()
    assert result.n_matched <= result.n_rows
    assert len(result.best_bid) == result.n_rows


if __name__ == "__main__":
    import atheris

    atheris.instrument_all()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
