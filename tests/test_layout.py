"""The import-time check: the compiled core and events.py agree on every number and set."""

from enum import IntEnum

import numpy as np
import pytest

from orderbook import _layout, _layout_facts, events


def test_the_built_core_agrees_with_events():
    _layout.check(*_layout_facts.c_layout())


def test_the_check_covers_every_enum_member_constant_dtype_field_and_kind_set():
    values, layouts, predicates = _layout_facts.c_layout()
    for enum_name in _layout.ENUMS:
        for member in getattr(events, enum_name):
            assert f"{enum_name}.{member.name}" in values
    assert set(_layout.CONSTANTS) <= values.keys()
    for name in _layout.DTYPES:
        assert set(layouts[name][1]) == set(getattr(events, name).names)
    assert set(predicates) == set(_layout.KIND_SETS)
    assert all(len(answers) == 256 for answers in predicates.values())


def _shifted(enum, member_name, delta):
    members = {m.name: int(m) + (delta if m.name == member_name else 0) for m in enum}
    return IntEnum(enum.__name__, members)


@pytest.mark.parametrize("enum_name, member", [
    ("Reason", "NOT_AMENDABLE"), ("Reason", "INVALID_STOP_PRICE"), ("Sizing", "RESTORE"),
    ("ForcedKind", "SHORTFALL"), ("MarkRule", "INDEX_CLAMPED"), ("Deficit", "SOCIALIZE"),
])
def test_a_planted_enum_disagreement_is_caught(monkeypatch, enum_name, member):
    monkeypatch.setattr(events, enum_name, _shifted(getattr(events, enum_name), member, 40))
    with pytest.raises(ImportError, match=f"{enum_name}.{member} is"):
        _layout.check(*_layout_facts.c_layout())


def test_a_member_missing_on_one_side_is_caught(monkeypatch):
    extended = IntEnum("LimitRule", {**{m.name: int(m) for m in events.LimitRule}, "CAPPED": 3})
    monkeypatch.setattr(events, "LimitRule", extended)
    with pytest.raises(ImportError, match="LimitRule.CAPPED = 3 in events.py has no C twin"):
        _layout.check(*_layout_facts.c_layout())


def test_a_planted_constant_disagreement_is_caught(monkeypatch):
    monkeypatch.setattr(events, "INSURANCE_FUND", -3)
    with pytest.raises(ImportError, match="INSURANCE_FUND is -3 in events.py but -1"):
        _layout.check(*_layout_facts.c_layout())


def test_a_planted_field_offset_disagreement_is_caught(monkeypatch):
    swapped = np.dtype([("order_id", "<i8"), ("owner", "<i8"), ("stop_price", "<i8"),
                        ("price", "<i8"), ("qty", "<i8"), ("kind", "u1"), ("side", "i1")],
                       align=True)
    monkeypatch.setattr(events, "MESSAGE_DTYPE", swapped)
    with pytest.raises(ImportError, match="MESSAGE_DTYPE field 'price' is at offset 24"):
        _layout.check(*_layout_facts.c_layout())


def test_a_planted_kind_set_disagreement_is_caught(monkeypatch):
    monkeypatch.setattr(events, "PRICED_KINDS", events.PRICED_KINDS - {events.Kind.AMEND})
    with pytest.raises(ImportError, match="PRICED_KINDS says True for 9"):
        _layout.check(*_layout_facts.c_layout())


def test_a_kind_value_outside_the_enums_is_checked_too(monkeypatch):
    monkeypatch.setattr(events, "CALLER_ERRORS", events.CALLER_ERRORS | {200})
    with pytest.raises(ImportError, match="CALLER_ERRORS says False for 200"):
        _layout.check(*_layout_facts.c_layout())
