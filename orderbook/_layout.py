"""The import-time check that the compiled core and ``events.py`` speak the same words.

The C side (``_types.pxd``) and the Python side (``events.py``) declare the same enums, constants,
kind sets and record layouts separately, because C needs the enum and the struct and Python the
``IntEnum`` and the dtype. A disagreement would silently misread batches or misclassify orders,
so ``book.pyx`` hands the C side's facts (``_layout_facts.c_layout()``) to :func:`check` when it
is imported, and the import fails on the first disagreement instead.
"""

from __future__ import annotations

from . import events

__all__ = ["ENUMS", "CONSTANTS", "DTYPES", "KIND_SETS", "check"]

#: Every enum of events.py that has a C twin in _types.pxd.
ENUMS = ("Side", "Kind", "EventKind", "Reason", "SelfTradePrevention", "AmendRule", "MarkRule",
         "Sizing", "LimitRule", "Deficit", "AdlRanking", "Trigger", "MarginBasis", "CloseOrder",
         "ForcedKind")
#: Every constant of events.py that has a C twin.
CONSTANTS = ("PPM", "INSURANCE_FUND", "NO_COUNTERPARTY", "MAX_LIVE_ORDERS")
#: Every dtype of events.py that is the view of a C struct.
DTYPES = ("MESSAGE_DTYPE", "EVENT_DTYPE", "L3_DTYPE", "STOP_DTYPE")
#: Every kind (or reason) set of events.py that the C side decides with a predicate.
KIND_SETS = ("NEW_ORDER_KINDS", "STOP_KINDS", "PRICED_KINDS", "RESTING_KINDS", "IMMEDIATE_KINDS",
             "CALLER_ERRORS")


def check(values: dict, layouts: dict, predicates: dict) -> None:
    """Raise ImportError naming the first place where the C side disagrees with events.py.

    ``values`` maps ``"Enum.MEMBER"`` and constant names to the C value; ``layouts`` maps a
    dtype's name to ``(itemsize, {field: offset})`` of its C struct; ``predicates`` maps a kind
    set's name to the C predicate's answer for every value 0..255 (a sequence of 256 bools).
    """
    for enum_name in ENUMS:
        enum = getattr(events, enum_name)
        python_side = {f"{enum_name}.{m.name}": int(m) for m in enum}
        c_side = {k: v for k, v in values.items() if k.startswith(enum_name + ".")}
        for name in sorted(python_side.keys() | c_side.keys(), key=str):
            if name not in c_side:
                _fail(f"{name} = {python_side[name]} in events.py has no C twin in _types.pxd")
            if name not in python_side:
                _fail(f"{name} = {c_side[name]} in _types.pxd is missing from events.py")
            if python_side[name] != c_side[name]:
                _fail(f"{name} is {python_side[name]} in events.py but {c_side[name]} in "
                      f"_types.pxd")
    for name in CONSTANTS:
        if getattr(events, name) != values.get(name):
            _fail(f"{name} is {getattr(events, name)} in events.py but {values.get(name)} in "
                  f"_types.pxd")
    for name in DTYPES:
        dtype = getattr(events, name)
        size, offsets = layouts[name]
        if dtype.itemsize != size:
            _fail(f"{name} has itemsize {dtype.itemsize}, its C struct {size}")
        python_offsets = {f: dtype.fields[f][1] for f in dtype.names}
        for field in sorted(python_offsets.keys() | offsets.keys()):
            if python_offsets.get(field) != offsets.get(field):
                _fail(f"{name} field {field!r} is at offset {python_offsets.get(field)} in "
                      f"events.py but {offsets.get(field)} in its C struct")
    for name in KIND_SETS:
        members = {int(k) for k in getattr(events, name)}
        answers = predicates[name]
        if len(answers) != 256:
            _fail(f"the C predicate for {name} answered {len(answers)} values, not 256")
        for value in range(256):
            if bool(answers[value]) != (value in members):
                _fail(f"the C predicate for {name} says {bool(answers[value])} for {value}, "
                      f"events.{name} says {value in members}")


def _fail(message: str):
    raise ImportError(f"orderbook's compiled core disagrees with events.py: {message}")
