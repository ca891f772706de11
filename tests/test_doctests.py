"""The Examples sections of the compiled classes' docstrings run and print what they show.

pytest's ``--doctest-modules`` collects the pure-Python modules' examples but not those of
extension modules, so this runs them: the docstring of each compiled public class and of its
public methods and properties, through ``doctest``'s parser and runner.
"""

import doctest
import sys

import pytest

from orderbook.accounts import Ledger
from orderbook.book import OrderBook
from orderbook.engine import Engine
from orderbook.liquidator import Liquidator

# (class, whether its docstrings must hold at least one example)
COMPILED_CLASSES = [(OrderBook, True), (Engine, False), (Ledger, False), (Liquidator, False)]


def _docstrings(cls):
    """(qualified name, docstring) of ``cls`` and of each public member that has one."""
    prefix = f"{cls.__module__}.{cls.__qualname__}"
    yield prefix, cls.__doc__
    for name, member in sorted(vars(cls).items()):
        if not name.startswith("_"):
            yield f"{prefix}.{name}", getattr(member, "__doc__", None)


def _run_examples(cls):
    """Run every example; return (examples run, failure reports naming the object)."""
    globs = vars(sys.modules[cls.__module__])
    parser = doctest.DocTestParser()
    # pytest's default doctest_optionflags, so these read like the modules' doctests
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    attempted, failures = 0, []
    for name, docstring in _docstrings(cls):
        if not docstring:
            continue
        test = parser.get_doctest(docstring, dict(globs), name, None, None)
        report = []
        result = runner.run(test, out=report.append, clear_globs=True)
        attempted += result.attempted
        if result.failed:
            failures.append(f"{name}: {result.failed} of {result.attempted} examples failed\n"
                            + "".join(report))
    return attempted, failures


@pytest.mark.parametrize(("cls", "required"), COMPILED_CLASSES,
                         ids=[cls.__name__ for cls, _ in COMPILED_CLASSES])
def test_the_docstring_examples_of_a_compiled_class_run(cls, required):
    attempted, failures = _run_examples(cls)
    assert not failures, "\n".join(failures)
    if required:
        assert attempted > 0, f"{cls.__qualname__}'s docstrings have no Examples to run"
