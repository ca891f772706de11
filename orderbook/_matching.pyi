# The matching core has no Python-level API: its methods are C-level (see _matching.pxd), and
# OrderBook (book.pyi) is the class users meet.
from typing_extensions import disjoint_base

__all__ = ["MatchingCore"]

@disjoint_base
class MatchingCore:
    """The book's containers and matching rules; the base of ``OrderBook`` (C-level only)."""
