"""What both parts of :mod:`orderbook.strategies` draw with: sides, notes, implementations."""

from __future__ import annotations

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from ..events import Side

SIDES = st.sampled_from([Side.BUY, Side.SELL])


def record(text: str) -> None:
    """``hypothesis.note`` that is a no-op outside a running test (``.example()``, plain draws)."""
    try:
        note(text)
    except InvalidArgument:
        pass


def implementation(name: str, value, compiled, reference):
    """The class ``value`` names: None or "compiled" gives ``compiled()`` (a loader, so the
    extension is imported only when used), "reference" gives ``reference``, a class itself."""
    if value is None or value == "compiled":
        return compiled()
    if value == "reference":
        return reference
    if isinstance(value, str):
        raise InvalidArgument(f"{name} must be 'compiled', 'reference' or a class, got {value!r}")
    return value
