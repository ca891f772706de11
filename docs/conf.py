"""Sphinx configuration of the API reference site (issue 16).

Build from the repository root, with the compiled modules built in place (their docstrings and
signatures come from the extensions, built with ``embedsignature``)::

    python -m sphinx -W --keep-going -b html docs /tmp/orderbook-docs

The guides are the Markdown files beside this one (MyST); the API pages are ``api/*.rst``.
"""

import ast
import importlib
import pkgutil
import re
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The package in this checkout, not an installed copy elsewhere.
sys.path.insert(0, str(ROOT))

import orderbook  # noqa: E402

project = "orderbook"
author = "orderbook developers"
release = version = orderbook.__version__
copyright = "2026, orderbook developers"

# numpydoc reports a section heading it does not know (and drops) as a Python warning, which
# -W does not see; as an error it reaches autodoc, which reports it as a warning that -W fails.
warnings.filterwarnings("error", category=UserWarning, module="numpydoc")

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Members in source order (the order each module's author chose), not alphabetical.
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
# No type hints in the signatures: the Parameters sections give the types, with units.
autodoc_typehints = "none"
# Default values as the source writes them (DEFAULT_TIERS, MarkRule.LAST, 500_000), not reprs.
autodoc_preserve_defaults = True

# numpydoc renders the sections; the class members are documented by autodoc's :members: (its
# own member tables would need autosummary stub pages).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

myst_heading_anchors = 4
# The guides link to each other as files (``[venues](venues.md)``, ``time.md#heading``), which
# MyST resolves to pages and anchors, and to files outside docs/
# (``../examples/market_maker.toml``), which it copies into the site as downloads.

html_theme = "alabaster"
html_title = f"orderbook {release}"
html_show_sourcelink = False


def _exported():
    """``orderbook``'s exported objects by name (everything in ``orderbook.__all__``)."""
    return {name: getattr(orderbook, name) for name in orderbook.__all__}


def skip_reexported(app, what, name, obj, skip, options):
    """Document a name exported from ``orderbook`` once, as ``orderbook.NAME``.

    The API pages list the top-level names explicitly; a submodule's ``automodule`` then leaves
    out the ones it re-exports, so no object is described twice under two names.
    """
    if what == "module" and name in _EXPORTED and _EXPORTED[name] is obj:
        return True
    return None


def _attribute_docs():
    """``#:`` comments of the package's Python modules, by (module, name)."""
    from sphinx.errors import PycodeError
    from sphinx.pycode import ModuleAnalyzer

    names = ["orderbook"] + [info.name for info in
                             pkgutil.walk_packages(orderbook.__path__, "orderbook.")]
    docs = {}
    for name in names:
        try:
            analyzer = ModuleAnalyzer.for_module(name)
            analyzer.analyze()
        except PycodeError:  # compiled modules have no Python source to read
            continue
        for (_, attr), lines in analyzer.attr_docs.items():
            docs[(name, attr)] = list(lines)
    return docs


def constant_docs(app, what, name, obj, options, lines):
    """A constant's documentation is its ``#:`` comment, where it is defined.

    Without a comment autodoc shows the docstring of the value's type (numpy.dtype's, int's),
    which documents the type, not the constant; and a name imported into another module
    (``orderbook.MESSAGE_DTYPE``) has its comment in the module that defines it.
    """
    if what != "data":
        return
    module, _, attr = name.rpartition(".")
    doc = _ATTR_DOCS.get((module, attr))
    if doc is None:
        doc = next((doc for (other, doc_attr), doc in _ATTR_DOCS.items()
                    if doc_attr == attr
                    and getattr(importlib.import_module(other), attr, None) is obj), [])
    lines[:] = doc


def _pyx_init_signature(cls):
    """``(args)`` of a compiled class's ``__init__`` as written in its .pyx, without ``self``."""
    source = ROOT / (cls.__module__.replace(".", "/") + ".pyx")
    if not source.exists():
        return None
    text = source.read_text()
    found = re.search(rf"^cdef class {cls.__name__}\b.*?^    def __init__(\(.*?\)):$", text,
                      re.M | re.S)
    if found is None:
        return None
    args = ast.parse(f"def f{found.group(1)}: pass").body[0].args
    args.args = args.args[1:]
    return f"({ast.unparse(args)})"


def compiled_class_signature(app, what, name, obj, options, signature, return_annotation):
    """The signature of a compiled class from its source.

    Cython (3.3) embeds a class's signature in its docstring with the keyword-only marker one
    argument late (``OrderBook(tick_size='1', lot_size='1', stp=..., *, amend_rule=...)`` for
    ``def __init__(self, tick_size="1", lot_size="1", *, stp=..., amend_rule=...)``); methods'
    embedded signatures are right.
    """
    if what in ("class", "exception") and isinstance(obj, type):
        written = _pyx_init_signature(obj)
        if written is not None:
            return written, return_annotation
    return None


def namedtuple_field_docs(app, what, name, obj, options, lines):
    """Drop "Alias for field number N", collections.namedtuple's text for a field that has no
    ``#:`` comment: it says nothing the class's signature does not."""
    text = [line for line in lines if line.strip()]
    if what == "attribute" and len(text) == 1 and re.fullmatch(r"Alias for field number \d+",
                                                               text[0].strip()):
        lines.clear()


# README.md links to two files outside docs/, which the site has as pages of their own.
README_LINKS = {"CHANGELOG.md": "changelog.md", "examples/README.md": "examples.md"}


def readme_links(app, relative_path, parent_docname, content):
    """Point README.md's links to files outside docs/ at the pages that include them."""
    if Path(relative_path).name == "README.md" and parent_docname == "index":
        for target, page in README_LINKS.items():
            content[0] = content[0].replace(f"]({target})", f"]({page})")


_EXPORTED = _exported()
_ATTR_DOCS = {}


def setup(app):
    _ATTR_DOCS.update(_attribute_docs())
    app.connect("autodoc-skip-member", skip_reexported)
    # Before numpydoc (priority 500), which renders the docstring this gives.
    app.connect("autodoc-process-docstring", constant_docs, priority=400)
    app.connect("autodoc-process-docstring", namedtuple_field_docs, priority=400)
    # Before numpydoc's own signature handler, which answers first otherwise.
    app.connect("autodoc-process-signature", compiled_class_signature, priority=400)
    app.connect("include-read", readme_links)
    return {"parallel_read_safe": True}

