"""The hand-written stubs of the compiled modules are true to the build.

mypy's stubtest checks every compiled module's stub against the built module: names,
signatures, defaults and finality; tests/stubtest_allowlist.txt holds what it cannot check, each
line with its reason. The compiled classes and their pure-Python references offer the same API.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import orderbook
from orderbook import reference, reference_engine

ROOT = Path(__file__).resolve().parents[1]
#: Every compiled module (setup.py's extension list).
STUBTESTED = ("orderbook.book", "orderbook._matching", "orderbook.accounts",
              "orderbook.liquidator", "orderbook.engine", "orderbook._depth",
              "orderbook._layout_facts")


def test_every_compiled_module_is_stubtested():
    setup = (ROOT / "setup.py").read_text()
    built = {f"orderbook.{p.stem}" for p in (ROOT / "orderbook").glob("*.pyx")}
    assert built == set(STUBTESTED), "setup.py builds " + setup[setup.index("for name in"):][:80]


def test_the_stubs_pass_mypy_stubtest():
    # The child imports the same build as this process (a source tree first on the path).
    path = [str(Path(orderbook.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "--mypy-config-file", "pyproject.toml",
         "--allowlist", "tests/stubtest_allowlist.txt", *STUBTESTED],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))},
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("compiled", "spec"), [
    (orderbook.OrderBook, reference.OrderBook), (orderbook.Engine, reference_engine.Engine),
])
def test_compiled_and_reference_offer_the_same_public_api(compiled, spec):
    def public(cls):
        return {n for n in dir(cls()) if not n.startswith("_")}

    assert public(compiled) == public(spec)
