from typing import final

from .accounts import Ledger
from .book import OrderBook

__all__ = ["Liquidator"]

@final
class Liquidator:
    """The liquidator of one Engine, in C structs (internal: use Engine)."""

    def __init__(
        self,
        book: OrderBook,
        ledger: Ledger,
        k: int,
        max_position: int,
        sizing: int,
        limit_rule: int,
        deficit: int,
        adl_ranking: int,
        fraction_ppm: int,
        band_ppm: int,
        liquidation_fee_ppm: int,
        backstop_discount_ppm: int,
        round_cap: int | None,
        backstop: int | None,
        fraction_above: int = 0,
        takeover_below_ppm: int = 0,
        cooldown_rounds: int = 0,
        increment: int = 0,
        close_order: int = 0,
        cooldown_ms: int = 0,
    ) -> None: ...
