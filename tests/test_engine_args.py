"""The engine's arguments (orderbook/_engine_args.py): one Parameters section for both engines.

The checks themselves and their messages are exercised through both engines by
test_accounts.py, test_engine.py and test_engine_safety.py.
"""

from __future__ import annotations

import inspect
import pydoc
import re

import pytest

import orderbook
from orderbook import reference_engine
from orderbook._engine_args import parameters_section


def keywords() -> list[str]:
    """Every constructor parameter after ``self`` (inspect cannot read the compiled class's
    signature; the reference takes the same one, as the next test checks)."""
    return list(inspect.signature(reference_engine.Engine).parameters)


def documented(text: str) -> list[str]:
    """Names of the entries of the numpydoc Parameters section in ``text`` (help() output)."""
    lines = [line.removeprefix(" |  ") for line in text.splitlines()]
    start = next(i for i, line in enumerate(lines)
                 if line.strip() == "Parameters" and set(lines[i + 1].strip()) == {"-"})
    indent = len(lines[start]) - len(lines[start].lstrip())
    names = []
    for line, following in zip(lines[start + 2:], lines[start + 3:] + [""], strict=True):
        if set(following.strip()) == {"-"}:
            break  # the next section's header
        entry = re.match(r"( *)(\w+(?:, \w+)*) : ", line)
        if entry and len(entry.group(1)) == indent:
            names += entry.group(2).split(", ")
    return names


def test_both_engines_take_the_same_keywords():
    # The compiled class's signature is the one Cython embeds in its docstring.
    embedded = orderbook.Engine.__doc__.splitlines()[0]
    assert embedded.startswith("Engine(")
    assert re.findall(r"(\w+)=", embedded) == keywords()


@pytest.mark.parametrize("cls", [orderbook.Engine, reference_engine.Engine],
                         ids=["compiled", "reference"])
def test_help_documents_every_keyword_in_a_parameters_section(cls):
    text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    assert documented(text) == keywords()


def test_the_parameters_text_has_one_source():
    # The compiled class's docstring holds it; the reference's quotes it word for word.
    section = parameters_section()
    assert section.startswith("Parameters\n----------\ntick_size, lot_size : ")
    assert section in inspect.cleandoc(orderbook.Engine.__doc__)
    assert section in reference_engine.Engine.__doc__
    assert "Notes" not in section
