"""The distribution: its name, install hints and version."""

import importlib.metadata
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
