"""Fuzz target: scenario TOML files loaded with orderbook.config.load_scenario.

The input is the file itself. Its directory also holds ``capture.txt``, a tiny valid Binance
capture, so ``[book] binance = "capture.txt"`` (and its ``at``, ``within_ppm``,
``covered_only``) is exercised; a ``binance`` path naming anything else is skipped, so the
fuzzer does not read arbitrary files of the machine (or /dev/zero). A loaded scenario must
write back to TOML that loads to an equal scenario. A bad file must raise
:class:`orderbook.config.ConfigError`; any other exception is a finding.

Run: ``PYTHONPATH=$PWD python tests/fuzz/fuzz_scenario_toml.py NEW_DIR
tests/fuzz/corpus/scenario_toml``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import tomllib

from orderbook.config import ConfigError, load_scenario, loads_scenario, scenario_to_toml

MAX_INPUT = 64 * 1024  # bytes of one input; larger ones are skipped
CAPTURE = "capture.txt"
_CAPTURE_TEXT = (
    '1000 {"lastUpdateId": 100, "E": 1, "T": 1, "bids": [["100.0", "1.000"], ["99.9", "2.000"]],'
    ' "asks": [["100.1", "1.500"], ["100.2", "0.500"]]}\n'
    '2000 {"stream": "btcusdt@depth@0ms", "data": {"e": "depthUpdate", "E": 2, "T": 2, '
    '"s": "BTCUSDT", "U": 90, "u": 101, "pu": 80, "b": [["100.0", "0.500"]], "a": []}}\n'
)

_DIR = tempfile.mkdtemp(prefix="fuzz_scenario_toml_")
_PATH = os.path.join(_DIR, "scenario.toml")
with open(os.path.join(_DIR, CAPTURE), "w", encoding="utf-8") as _handle:
    _handle.write(_CAPTURE_TEXT)


def _reads_other_files(data: bytes) -> bool:
    try:
        book = tomllib.loads(data.decode("utf-8")).get("book")
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError, RecursionError):
        return False  # load_scenario must refuse it before looking at [book]
    path = book.get("binance") if isinstance(book, dict) else None
    return isinstance(path, str) and path != CAPTURE


def test_one_input(data: bytes) -> None:
    """Load one mutated scenario file; only ConfigError may escape."""
    if len(data) > MAX_INPUT or _reads_other_files(data):
        return
    with open(_PATH, "wb") as handle:
        handle.write(data)
    try:
        scenario = load_scenario(_PATH)
    except ConfigError:
        return
    again = loads_scenario(scenario_to_toml(scenario))
    assert again == scenario, (scenario, again)


if __name__ == "__main__":
    import atheris

    atheris.instrument_all()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
