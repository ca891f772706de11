"""The hand-written stubs of the compiled modules are true to the build.

mypy's stubtest checks names, signatures and finality of the modules it is given; the
name-by-name tests below cover every compiled class, the Engine included until its stub joins
stubtest's list.
"""

import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

import orderbook
from orderbook import accounts, book, engine, liquidator, reference, reference_engine

COMPILED = [(book, "OrderBook"), (engine, "Engine"), (accounts, "Ledger"),
            (liquidator, "Liquidator")]
DUNDERS = ("__init__", "__contains__", "__copy__", "__deepcopy__")
ROOT = Path(__file__).resolve().parents[1]
# Every compiled module whose stub stubtest checks (orderbook.engine is still to join).
STUBTESTED = ("orderbook.book", "orderbook.accounts", "orderbook.liquidator", "orderbook._depth",
              "orderbook._layout_facts")


def test_the_stubs_pass_mypy_stubtest():
    # The child imports the same build as this process (a source tree first on the path).
    path = [str(Path(orderbook.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "--mypy-config-file", "pyproject.toml",
         "--allowlist", "tests/stubtest_allowlist.txt", *STUBTESTED],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))},
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _stub_class(module, class_name):
    tree = ast.parse(Path(module.__file__).with_name(f"{module.__name__.rsplit('.', 1)[1]}.pyi")
                     .read_text())
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)


@pytest.mark.parametrize(("module", "class_name"), COMPILED)
def test_stub_names_every_public_member_of_the_compiled_class(module, class_name):
    cls = getattr(module, class_name)
    runtime = {name for name in dir(cls) if not name.startswith("_") or name in DUNDERS}
    stub = {n.name for n in _stub_class(module, class_name).body if isinstance(n, ast.FunctionDef)}
    assert stub == runtime


@pytest.mark.parametrize(("module", "class_name"), COMPILED)
def test_stub_signatures_match_the_compiled_methods(module, class_name):
    cls = getattr(module, class_name)
    for node in _stub_class(module, class_name).body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("__"):
            continue
        member = inspect.getattr_static(cls, node.name)
        if isinstance(member, property) or not callable(member):
            continue
        runtime = list(inspect.signature(getattr(cls, node.name)).parameters)
        stub = [a.arg for a in node.args.args + node.args.kwonlyargs]
        assert stub == runtime, node.name


@pytest.mark.parametrize(("compiled", "spec"), [
    (orderbook.OrderBook, reference.OrderBook), (orderbook.Engine, reference_engine.Engine),
])
def test_compiled_and_reference_offer_the_same_public_api(compiled, spec):
    def public(cls):
        return {n for n in dir(cls()) if not n.startswith("_")}

    assert public(compiled) == public(spec)
