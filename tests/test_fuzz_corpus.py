"""Replay every committed fuzz input (seeds and past crashes) through its target, every run.

The targets live in tests/fuzz/fuzz_<name>.py and their inputs in tests/fuzz/corpus/<name>/;
``python tests/fuzz/run.py`` searches for new ones with atheris. Here each input is a regression
test: it must run through its target without an exception.
"""

import importlib.util
from pathlib import Path

import pytest

FUZZ = Path(__file__).parent / "fuzz"


def _target(name):
    spec = importlib.util.spec_from_file_location(f"fuzz_{name}", FUZZ / f"fuzz_{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.test_one_input


CASES = sorted((p.parent.name, p) for p in (FUZZ / "corpus").glob("*/*") if p.is_file())


def test_every_fuzz_target_has_a_seed_corpus():
    targets = {p.stem.removeprefix("fuzz_") for p in FUZZ.glob("fuzz_*.py")}
    assert targets and targets <= {name for name, _ in CASES}


@pytest.mark.parametrize("name, path", CASES, ids=[f"{n}/{p.name}" for n, p in CASES])
def test_fuzz_input_runs_clean(name, path):
    _target(name)(path.read_bytes())
