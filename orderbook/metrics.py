"""What a scenario run measures: the figures of :attr:`orderbook.scenario.Result.summary`.

Plain functions of a run's per-step series (``SERIES_DTYPE``) and its forced-order records
(``FORCED_DTYPE``). Units: prices in ticks, money in quote units (exact integers; the ``*_quote``
figures are the same amounts in quote currency, exact Decimals), time in steps.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np

from .events import INSURANCE_FUND, ForcedKind

__all__ = ["LIQUIDATION_KINDS", "liquidations_by_generation", "dynamics", "drawdown",
           "instrument_figures",
           "unresolved", "unresolved_note", "summarize"]

#: Records that liquidate (part of) an account: a forced order, a backstop or insurance-fund
#: takeover, an auto-deleveraging close.
LIQUIDATION_KINDS = (ForcedKind.ORDER, ForcedKind.BACKSTOP, ForcedKind.FUND_TAKEOVER,
                     ForcedKind.ADL)


def liquidations_by_generation(records: np.ndarray) -> list[int]:
    """Accounts liquidated in each cascade generation (index = generation); an account counts
    once per generation, the insurance fund's own unwinding not at all. O(n log n)."""
    mask = np.isin(records["kind"], LIQUIDATION_KINDS) & (records["owner"] != INSURANCE_FUND)
    if not mask.any():
        return []
    pairs = np.unique(np.stack([records["generation"][mask], records["owner"][mask]], axis=1),
                      axis=0)
    return np.bincount(pairs[:, 0]).tolist()


def dynamics(series: np.ndarray) -> dict:
    """How fast the cascade ran: ``trough_step``, the step of the lowest mid (None for an empty
    series), and ``peak_step_liquidated``, the largest notional liquidated in one step (quote
    units)."""
    if len(series) == 0:
        return {"trough_step": None, "peak_step_liquidated": 0}
    return {"trough_step": int(np.argmin(series["mid"])),
            "peak_step_liquidated": int(series["liquidated_notional"].max())}


def drawdown(series: np.ndarray, start_mid: float) -> tuple[float, int]:
    """(largest fall of the mid below ``start_mid``, in ticks and at least 0; the step of the
    lowest mid). (0.0, 0) for an empty series."""
    mids = series["mid"]
    if len(mids) == 0:
        return 0.0, 0
    trough = int(np.argmin(mids))
    return max(0.0, start_mid - float(mids[trough])), trough


def unresolved(accounts) -> dict:
    """The accounts a run leaves with negative equity, a loss that no bad-debt, socialised or
    fund figure records while the account is still open (a bankruptcy-price order that cannot
    fill, say, with no fund or ADL to take it over).

    ``accounts``: AccountInfo of every account at the end of the run, evaluated at the final
    mark (the insurance fund left out: its balance is ``insurance_fund_end``). Returns
    ``unresolved_accounts`` (how many have equity < 0), ``unresolved_lots`` (their open lots,
    summed without sign over every instrument) and ``unresolved_equity`` (their equity summed,
    quote units, <= 0). O(accounts).
    """
    count = lots = equity = 0
    for info in accounts:
        if info.equity < 0:
            count += 1
            lots += (sum(abs(p.position) for p in info.positions) if info.positions
                     else abs(info.position))
            equity += info.equity
    return {"unresolved_accounts": count, "unresolved_lots": lots, "unresolved_equity": equity}


def unresolved_note(summary: dict) -> str | None:
    """One line saying what a run left unresolved (accounts with negative equity, accounts
    still queued), or None when it left nothing."""
    count, queued = summary["unresolved_accounts"], summary["queue_left"]
    if not count and not queued:
        return None
    parts = []
    if count:
        parts.append(f"{count:,} account{'s' if count != 1 else ''} ended with negative equity "
                     f"({summary['unresolved_equity']:,} quote units = "
                     f"{summary['unresolved_equity_quote']:,} in quote currency, on "
                     f"{summary['unresolved_lots']:,} open lots), which bad_debt and socialized "
                     f"do not include")
    if queued:
        parts.append(f"{queued:,} account{'s' if queued != 1 else ''} still queued for "
                     f"liquidation")
    return "; ".join(parts)


def summarize(series: np.ndarray, records: np.ndarray, *, accounts: int, start_mid: float,
              insurance_fund: int, queue_left: int, quote_unit: Decimal,
              counterfactual_drawdown: float | None = None, end_accounts=()) -> dict:
    """The summary of a run, one flat dict of figures.

    ``accounts`` seeded (liquidatable ones dropped), ``start_mid`` (ticks) before the shock,
    ``insurance_fund`` and ``queue_left`` at the end, the ``quote_unit`` (quote currency per
    quote unit), the drawdown of the same run without liquidations (ticks; None: not run) and
    ``end_accounts``, the AccountInfo of every account at the end (for :func:`unresolved`).
    """
    orders = records[records["kind"] == ForcedKind.ORDER]
    liquidated = records[np.isin(records["kind"], LIQUIDATION_KINDS)]
    owners = set(liquidated["owner"].tolist()) - {INSURANCE_FUND}
    fall, trough = drawdown(series, start_mid)
    half_recovery = None
    if fall > 0:
        target = float(series["mid"][trough]) + fall / 2
        after = np.nonzero(series["mid"][trough:] >= target)[0]
        if len(after):
            half_recovery = int(after[0])
    summary = {
        "accounts": accounts,
        "liquidated_accounts": len(owners),
        "forced_orders": int(len(orders)),
        "liquidated_notional": int(liquidated["notional"].sum()) if len(liquidated) else 0,
        "generations": int(records["generation"].max()) + 1 if len(records) else 0,
        "start_mid": start_mid,
        "max_drawdown_ticks": fall,
        "max_drawdown_pct": 100.0 * fall / start_mid if start_mid else 0.0,
        "amplification": None,
        "bad_debt": int(records["bad_debt"].sum()) if len(records) else 0,
        "socialized": int(records["socialized"].sum()) if len(records) else 0,
        "adl_count": int((records["kind"] == ForcedKind.ADL).sum()),
        # collateral assets sold to the venue to cover flat accounts' deficits
        "conversions": int((records["kind"] == ForcedKind.CONVERSION).sum()),
        "converted_notional": int(records["notional"][
            records["kind"] == ForcedKind.CONVERSION].sum()) if len(records) else 0,
        "insurance_fund_end": int(insurance_fund),
        "steps_to_half_recovery": half_recovery,
        "queue_left": queue_left,
        **unresolved(end_accounts),
    }
    if counterfactual_drawdown is not None:
        cf = counterfactual_drawdown
        summary["counterfactual_drawdown_ticks"] = cf
        summary["counterfactual_drawdown_pct"] = 100.0 * cf / start_mid if start_mid else 0.0
        summary["amplification"] = (fall / cf if cf > 0 else (math.inf if fall > 0 else 1.0))
    summary["liquidated_accounts_pct"] = (100.0 * summary["liquidated_accounts"] / accounts
                                          if accounts else 0.0)
    summary.update(dynamics(series))
    summary["liquidations_by_generation"] = liquidations_by_generation(records)
    summary["quote_unit"] = quote_unit
    for key in ("liquidated_notional", "bad_debt", "insurance_fund_end", "unresolved_equity",
                "converted_notional"):
        summary[f"{key}_quote"] = Decimal(summary[key]) * quote_unit
    return summary


def instrument_figures(names, series, records: np.ndarray, starts, counterfactual=None) -> dict:
    """Per-instrument figures of a run over several instruments, flat: for each instrument
    ``name``, ``instrument.<name>.liquidated_notional`` (quote units), ``.forced_orders``,
    ``.liquidated_accounts``, ``.first_generation`` (the cascade generation of its first
    liquidation; None: none), ``.max_drawdown_pct`` of its mid from ``starts[i]`` (ticks) and,
    with the ``counterfactual`` drawdowns (ticks) of the run without liquidations, its
    ``.amplification``. ``series`` is the (instruments, steps) SERIES_DTYPE array."""
    out = {}
    liquidating = np.isin(records["kind"], LIQUIDATION_KINDS)
    for i, name in enumerate(names):
        mine = records[liquidating & (records["instrument"] == i)]
        orders = records[(records["kind"] == ForcedKind.ORDER) & (records["instrument"] == i)]
        fall, _ = drawdown(series[i], starts[i])
        key = f"instrument.{name}."
        out[key + "liquidated_notional"] = int(mine["notional"].sum()) if len(mine) else 0
        out[key + "forced_orders"] = int(len(orders))
        out[key + "liquidated_accounts"] = len(set(mine["owner"].tolist()) - {INSURANCE_FUND})
        out[key + "first_generation"] = int(mine["generation"].min()) if len(mine) else None
        out[key + "max_drawdown_pct"] = 100.0 * fall / starts[i] if starts[i] else 0.0
        if counterfactual is not None:
            cf = counterfactual[i]
            out[key + "amplification"] = fall / cf if cf > 0 else (
                math.inf if fall > 0 else 1.0)
    return out
