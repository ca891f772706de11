"""The engine's arguments (orderbook/_engine_args.py): one Parameters section for both engines,
and ``limit_rule`` with its deprecated older name ``limit``.

The checks themselves and their messages are exercised through both engines by
test_accounts.py, test_engine.py and test_engine_safety.py.
"""

from __future__ import annotations

import inspect
import pydoc
import re
import warnings

import pytest

import orderbook
from orderbook import reference_engine
from orderbook._engine_args import parameters_section
from orderbook.events import LimitRule


@pytest.fixture(params=["reference", "compiled"])
def engine_cls(request):
    return reference_engine.Engine if request.param == "reference" else orderbook.Engine


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


def test_limit_rule_defaults_to_market(engine_cls):
    assert engine_cls().limit_rule is LimitRule.MARKET
    assert engine_cls(limit_rule=LimitRule.BAND).limit_rule is LimitRule.BAND
    assert engine_cls(limit_rule=2).limit_rule is LimitRule.BANKRUPTCY


def test_limit_is_a_deprecated_name_of_limit_rule(engine_cls):
    with pytest.warns(DeprecationWarning, match="the keyword is limit_rule") as caught:
        engine = engine_cls(limit=LimitRule.BANKRUPTCY)
    assert engine.limit_rule is LimitRule.BANKRUPTCY
    assert caught[0].filename == __file__  # attributed to the caller, not to the package


def test_limit_and_limit_rule_together_are_a_type_error(engine_cls):
    with pytest.raises(TypeError, match="both limit_rule and limit"):
        engine_cls(limit_rule=LimitRule.MARKET, limit=LimitRule.BAND)


def test_a_bad_value_under_the_old_name_is_refused_naming_it(engine_cls):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ValueError, match="limit must be one of MARKET .* got 7"):
            engine_cls(limit=7)
