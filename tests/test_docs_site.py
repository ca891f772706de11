"""The API reference site's sources (docs/api/*.rst) cover the public API.

Read as text, so Sphinx is not needed here; .ci/run builds the site itself with warnings as
errors, which checks that every directive below imports and renders.
"""

import importlib
import re
import types
from pathlib import Path

import orderbook

API = Path(__file__).resolve().parent.parent / "docs" / "api"

# ".. currentmodule:: orderbook" or ".. automodule:: orderbook.flows" set the module that the
# names of later directives on the page belong to.
MODULE_DIRECTIVE = re.compile(r"^\.\. (?:py:)?(currentmodule|module|automodule):: (\S+)", re.M)
OBJECT_DIRECTIVE = re.compile(
    r"^\.\. (?:py:)?(?:auto)?(class|function|data|exception|attribute):: (\S+)", re.M)


def documented():
    """(modules given a page section by automodule, fully qualified objects documented)."""
    modules, objects = set(), set()
    for page in sorted(API.glob("*.rst")):
        text = page.read_text()
        directives = sorted([(m.start(), "module", m) for m in MODULE_DIRECTIVE.finditer(text)]
                            + [(m.start(), "object", m) for m in OBJECT_DIRECTIVE.finditer(text)],
                            key=lambda item: item[0])
        current = None
        for _, kind, match in directives:
            if kind == "module":
                current = match.group(2)
                if match.group(1) == "automodule":
                    modules.add(current)
            else:
                name = match.group(2)
                objects.add(name if current is None or "." in name else f"{current}.{name}")
    return modules, objects


def test_every_exported_name_is_documented_in_the_api_reference():
    modules, objects = documented()
    missing = []
    for name in orderbook.__all__:
        value = getattr(orderbook, name)
        if isinstance(value, types.ModuleType):
            if value.__name__ not in modules:
                missing.append(f"{name} (module {value.__name__}: no automodule)")
        elif f"orderbook.{name}" not in objects:
            missing.append(name)
    assert not missing, f"exported by orderbook but not in docs/api/*.rst: {missing}"


def test_every_documented_name_exists():
    modules, objects = documented()
    for module in modules:
        importlib.import_module(module)
    for qualified in objects:
        module, _, name = qualified.rpartition(".")
        assert hasattr(importlib.import_module(module), name), qualified


def test_every_guide_is_a_page_of_the_site():
    docs = API.parent
    index = (docs / "index.md").read_text()
    listed = set(re.findall(r"^([\w/]+)$", index, re.M))
    guides = {page.stem for page in docs.glob("*.md")} - {"index"}
    assert guides <= listed, f"guides missing from docs/index.md's toctrees: {guides - listed}"
    assert "api/index" in listed
