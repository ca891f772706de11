"""The distribution: its name, install hints, version, and the wheel checker .ci/run uses."""

import importlib.metadata
import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import orderbook

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION = "orderbook-cascade"
# An install hint naming the distribution "orderbook" (an unrelated 2013 project on PyPI):
# `pip install orderbook`, `pip install -U "orderbook[plot]"`, or an extra written orderbook[x].
OLD_HINT = re.compile(r"(?<![\w.-])orderbook\["
                      r"""|pip install\s+(?:-\S+\s+)*["']?orderbook(?![\w-])""")


def _smoke_module():
    spec = importlib.util.spec_from_file_location("wheel_smoke", ROOT / ".ci" / "wheel_smoke.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("text", [
    "pip install orderbook", "pip install orderbook.", "pip install 'orderbook[dask]'",
    'pip install -U "orderbook[plot]"', "needs orderbook[dask]", "`pip install orderbook[testing]`",
])
def test_the_old_hint_pattern_catches_every_form_of_hint(text):
    assert OLD_HINT.search(text)


@pytest.mark.parametrize("text", [
    'pip install "orderbook-cascade[plot]"', "pip install orderbook-cascade",
    'pip install -e ".[test]"',
    "import orderbook", "orderbook run --plot cascade.png", "result.orderbook[0]",
])
def test_the_old_hint_pattern_spares_the_new_name_and_the_import_name(text):
    assert not OLD_HINT.search(text)


def test_no_install_hint_names_the_unrelated_orderbook_distribution():
    files = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "examples").rglob("*"),
             *(p for p in (ROOT / "orderbook").rglob("*")
               if p.suffix in {".py", ".pyx", ".pxd", ".pyi"})]
    hits = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
            for path in files if path.is_file() and path.suffix in {".md", ".py", ".pyx", ".pxd",
                                                                   ".pyi", ".toml", ".txt"}
            for n, line in enumerate(path.read_text().splitlines(), 1) if OLD_HINT.search(line)]
    assert hits == []


def test_the_distribution_is_named_orderbook_cascade_with_the_orderbook_command():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["name"] == DISTRIBUTION
    assert project["project"]["scripts"] == {"orderbook": "orderbook.cli:main"}
    # The version is orderbook.__version__, so the metadata and --version cannot drift apart.
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "orderbook.__version__"}


def test_orderbook_version_prints_the_package_version():
    out = subprocess.run([sys.executable, "-m", "orderbook", "--version"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"orderbook {orderbook.__version__}"


def test_the_installed_metadata_carries_the_package_version():
    try:
        installed = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{DISTRIBUTION} is not installed here (a checkout on PYTHONPATH)")
    assert installed == orderbook.__version__


def _wheel_names():
    """The file list a correct wheel of this checkout has."""
    package = ROOT / "orderbook"
    names = [str(p.relative_to(ROOT)) for pattern in ("**/*.py", "*.pxd", "*.pyi", "py.typed")
             for p in package.glob(pattern) if "__pycache__" not in p.parts]
    names += [f"orderbook/{p.stem}.cpython-311-x86_64-linux-gnu.so" for p in package.glob("*.pyx")]
    return names + ["orderbook_cascade-0.1.0.dist-info/RECORD"]


def test_the_wheel_check_passes_a_wheel_of_this_checkout():
    assert _smoke_module().wheel_problems(_wheel_names(), ROOT) == []


@pytest.mark.parametrize("extra", ["orderbook/book.cpp", "orderbook/engine.html",
                                   "orderbook/book.pyx", "orderbook/book.o",
                                   "orderbook/__pycache__/views.cpython-311.pyc"])
def test_the_wheel_check_refuses_generated_files_and_sources(extra):
    problems = _smoke_module().wheel_problems([*_wheel_names(), extra], ROOT)
    assert problems == [f"{extra}: must not be in the archive"]


def test_the_wheel_check_refuses_files_outside_the_package():
    problems = _smoke_module().wheel_problems([*_wheel_names(), "setup.py"], ROOT)
    assert problems == ["setup.py: outside the package"]


@pytest.mark.parametrize("gone", ["orderbook/engine.cpython-311-x86_64-linux-gnu.so",
                                  "orderbook/_types.pxd", "orderbook/book.pyi",
                                  "orderbook/py.typed", "orderbook/cli/__init__.py"])
def test_the_wheel_check_refuses_a_wheel_missing_a_file(gone):
    names = [name for name in _wheel_names() if name != gone]
    problems = _smoke_module().wheel_problems(names, ROOT)
    assert problems == [f"{gone}: missing" if not gone.endswith(".so")
                        else "orderbook/engine: compiled module missing"]


def _sdist_names():
    """The file list (below its top directory) a correct sdist of this checkout has."""
    package = ROOT / "orderbook"
    names = [str(p.relative_to(ROOT)) for pattern in ("**/*.py", "*.pyx", "*.pxd", "*.pyi",
                                                      "py.typed")
             for p in package.glob(pattern) if "__pycache__" not in p.parts]
    return [*names, "setup.py", "pyproject.toml", "README.md", "MANIFEST.in", "PKG-INFO",
            "orderbook_cascade.egg-info/SOURCES.txt"]


def test_the_sdist_check_passes_an_sdist_of_this_checkout():
    assert _smoke_module().sdist_problems(_sdist_names(), ROOT) == []


@pytest.mark.parametrize("extra", ["orderbook/engine.cpp",
                                   "orderbook/book.cpython-311-x86_64-linux-gnu.so"])
def test_the_sdist_check_refuses_generated_code(extra):
    problems = _smoke_module().sdist_problems([*_sdist_names(), extra], ROOT)
    assert problems == [f"{extra}: must not be in the archive"]


@pytest.mark.parametrize("gone", ["orderbook/engine.pyx", "orderbook/_types.pxd", "setup.py"])
def test_the_sdist_check_refuses_an_sdist_missing_what_building_needs(gone):
    names = [name for name in _sdist_names() if name != gone]
    assert _smoke_module().sdist_problems(names, ROOT) == [f"{gone}: missing"]
