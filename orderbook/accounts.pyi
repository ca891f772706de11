from typing import final

from .margin import MarginTiers

__all__ = ["Ledger"]

@final
class Ledger:
    """The accounts of one Engine, in C structs (internal: use Engine)."""

    def __init__(self, k: int, max_price: int, max_position: int, tiers: MarginTiers) -> None: ...
