"""What a scenario run measures: the figures of :attr:`orderbook.scenario.Result.summary`.

Plain functions of a run's per-step series (``SERIES_DTYPE``) and its forced-order records
(``FORCED_DTYPE``). Units: prices in ticks, money in quote units (exact integers; the ``*_quote``
figures are the same amounts in quote currency, exact Decimals), time in steps. A price figure
in ticks has a ``*_px`` twin in price units (quote currency per base unit: ticks x tick size, a
Decimal). docs/money.md defines the money figures.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np

from .events import INSURANCE_FUND, ForcedKind
from .margin import contract_value

__all__ = ["LIQUIDATION_KINDS", "liquidations_by_generation", "dynamics", "drawdown",
           "instrument_figures", "fund_figures", "slippage_costs", "forced_slippage",
           "collateral_lost", "adl_figures", "MONEY_FIGURES", "PRICE_FIGURES", "add_twins",
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

    ``accounts``: every account at the end of the run, evaluated at the final mark (the
    insurance fund left out: its balance is ``insurance_fund_end``), as AccountInfo objects or
    EQUITY_DTYPE rows (``Engine.equities``). Returns ``unresolved_accounts`` (how many have
    equity < 0), ``unresolved_lots`` (their open lots, summed without sign over every
    instrument) and ``unresolved_equity`` (their equity summed, quote units, <= 0).
    O(accounts).
    """
    if isinstance(accounts, np.ndarray):
        negative = accounts[accounts["equity"] < 0]
        return {"unresolved_accounts": len(negative),
                "unresolved_lots": sum(negative["lots"].tolist()),
                "unresolved_equity": sum(negative["equity"].tolist())}
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


def fund_figures(start: int | None, balances, end: int) -> dict:
    """The insurance fund's path, quote units: ``insurance_fund_start`` (``start``, its balance
    before the shock; None: not known), ``insurance_fund_min`` and ``insurance_fund_end``
    (``end``). The minimum is the lowest of ``start``, ``balances`` and ``end``: give it the
    balances the run saw (the fund's after every liquidation round, ``Engine.fund_history``,
    and at every step of the series). Inside a round the fund can dip below where the round
    leaves it (a shortfall covered before a later fee), which no figure sees. O(balances)."""
    seen = [int(b) for b in np.asarray(balances, dtype=np.int64).ravel().tolist()]
    seen += [end] + ([] if start is None else [start])
    return {"insurance_fund_start": start, "insurance_fund_min": min(seen),
            "insurance_fund_end": end}


def slippage_costs(records: np.ndarray, ks, inverse: bool = False) -> list:
    """What each record's fills paid against the mark it was sent at, quote units, a cost
    positive; None for a record that is not an ``ORDER`` that filled. The value of the fills
    (``notional``) less the value of the same lots at the record's ``mark_before``
    (``V(mark_before, filled)``), signed so that a sell below the mark or a buy above it is a
    cost. ``ks``: each instrument's k (quote units per lot per tick; an inverse venue's, whose
    ``V(p, q) = floor(k q / p)`` coin units grows as the price falls, so there the signs
    turn). O(records)."""
    _check_ks(records, ks)
    costs = []
    for kind, side, instrument, mark, filled, notional in zip(
            records["kind"].tolist(), records["side"].tolist(),
            records["instrument"].tolist(), records["mark_before"].tolist(),
            records["filled"].tolist(), records["notional"].tolist(), strict=True):
        if kind != ForcedKind.ORDER or not filled:
            costs.append(None)
            continue
        # fills worth more than the lots at the mark: a buyer paid more, a linear seller got
        # more (an inverse seller, whose coin value rises as the price falls, sold lower)
        gap = notional - contract_value(inverse, ks[instrument], mark, filled)
        costs.append(-side * gap if inverse else side * gap)
    return costs


def _check_ks(records: np.ndarray, ks) -> None:
    """ValueError unless ``ks`` gives a k (an int >= 1) for every instrument ``records`` name."""
    needed = int(records["instrument"].max()) + 1 if len(records) else 0
    if len(ks) < needed or any(isinstance(k, bool) or not isinstance(k, (int, np.integer))
                               or k < 1 for k in ks):
        raise ValueError(f"ks must give an integer k >= 1 for each of the {needed} instruments "
                         f"the records name, got {list(ks)!r}")


def forced_slippage(records: np.ndarray, ks, inverse: bool = False) -> int:
    """What the forced orders paid against the mark they were sent at, quote units, a cost
    positive: :func:`slippage_costs` summed over the ``ORDER`` records that filled (the
    fund's own forced orders count; conversions of collateral assets do not). O(records)."""
    return sum(c for c in slippage_costs(records, ks, inverse) if c is not None)


def collateral_lost(owners, start_equity: dict, end_equity: dict) -> int:
    """What the accounts ``owners`` lost of the equity they had before the shock, quote units:
    over those in ``start_equity`` ({owner: equity at the starting marks}), that equity less
    what they hold at the end (``end_equity``, {owner: equity at the final marks}), counted as
    0 below 0: a loss past zero fell on the fund, the other accounts or is left unresolved,
    each a figure of its own. Accounts opened after the start (agents) are not counted.
    O(owners)."""
    return sum(start_equity[owner] - max(0, end_equity.get(owner, 0))
               for owner in owners if owner in start_equity)


def _equity_by_owner(accounts) -> dict:
    """{owner: equity} of AccountInfo objects or EQUITY_DTYPE rows."""
    if isinstance(accounts, np.ndarray):
        return dict(zip(accounts["owner"].tolist(), accounts["equity"].tolist(), strict=True))
    return {info.owner: info.equity for info in accounts}


def adl_figures(records: np.ndarray) -> dict:
    """Auto-deleveraging: ``adl_notional``, the value of the lots ADL closed at the prices it
    closed them at (quote units), and ``adl_accounts``, the counterparties it closed them
    against (accounts, each once). O(records)."""
    adl = records[records["kind"] == ForcedKind.ADL]
    return {"adl_notional": sum(adl["notional"].tolist()),
            "adl_accounts": len(set(adl["counterparty"].tolist()))}


#: Summary figures in quote units (an inverse venue's: coin units), each with a ``*_quote``
#: twin in quote currency (:func:`add_twins`); so has each ``instrument.<name>.liquidated_
#: notional``.
MONEY_FIGURES = ("liquidated_notional", "peak_step_liquidated", "bad_debt", "socialized",
                 "converted_notional", "insurance_fund_start", "insurance_fund_min",
                 "insurance_fund_end", "collateral_lost", "liquidation_penalties",
                 "forced_slippage", "adl_notional", "unresolved_equity",
                 "forecast_liquidated_notional", "funding_paid")
#: Summary figures in ticks and their twins in price units (:func:`add_twins`).
PRICE_FIGURES = {"start_mid": "start_mid_px", "max_drawdown_ticks": "max_drawdown_px",
                 "counterfactual_drawdown_ticks": "counterfactual_drawdown_px",
                 "forecast_trough": "forecast_trough_px"}


def add_twins(summary: dict, quote_unit: Decimal, tick_size: Decimal | None = None) -> dict:
    """Give ``summary`` (in place, and returned) the ``<figure>_quote`` twin of each money
    figure it holds (:data:`MONEY_FIGURES`: quote units x ``quote_unit``) and the twin of
    each price figure (:data:`PRICE_FIGURES`: ticks x ``tick_size``, none without one), exact
    Decimals; a None figure has a None twin. Safe to call again after adding figures."""
    for key in list(summary):
        value = summary[key]
        if key in MONEY_FIGURES or (key.startswith("instrument.")
                                    and key.endswith(".liquidated_notional")):
            summary[f"{key}_quote"] = None if value is None else _decimal(value) * quote_unit
        elif key in PRICE_FIGURES and tick_size is not None:
            summary[PRICE_FIGURES[key]] = None if value is None else _decimal(value) * tick_size
    return summary


def _decimal(value) -> Decimal:
    # A float figure here is a mid or a distance between mids, whole or half ticks: its binary
    # value is exact, and so is its Decimal.
    return Decimal(float(value)) if isinstance(value, (float, np.floating)) else Decimal(int(value))


def summarize(series: np.ndarray, records: np.ndarray, *, accounts: int, start_mid: float,
              insurance_fund: int, queue_left: int, quote_unit: Decimal,
              counterfactual_drawdown: float | None = None, end_accounts=(),
              insurance_fund_start: int | None = None, fund_balances=(), ks=None,
              inverse: bool = False, start_equity: dict | None = None,
              tick_size: Decimal | None = None) -> dict:
    """The summary of a run, one flat dict of figures (docs/money.md defines the money ones).

    ``accounts`` seeded (liquidatable ones dropped), ``start_mid`` (ticks) before the shock,
    ``insurance_fund`` and ``queue_left`` at the end, the ``quote_unit`` (quote currency per
    quote unit), the drawdown of the same run without liquidations (ticks; None: not run) and
    ``end_accounts``, every account at the end as AccountInfo or EQUITY_DTYPE rows (for
    :func:`unresolved`).

    The money figures need what the run saw besides its records: ``insurance_fund_start``
    and ``fund_balances`` (quote units; :func:`fund_figures`), each instrument's k in ``ks``
    and whether the venue is ``inverse`` (:func:`forced_slippage`), ``start_equity``
    ({owner: equity before the shock}, quote units; :func:`collateral_lost`) and instrument
    0's ``tick_size`` (price units per tick, a Decimal: the ``*_px`` twins); a figure whose
    input is not given is None (the ``*_px`` twins are left out).
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
        **fund_figures(insurance_fund_start, fund_balances, int(insurance_fund)),
        # what liquidation cost the accounts it closed, and who else paid
        "collateral_lost": None if start_equity is None else collateral_lost(
            owners, start_equity, _equity_by_owner(end_accounts)),
        "liquidation_penalties": sum(records["fee"].tolist()),
        "forced_slippage": None if ks is None else forced_slippage(records, ks, inverse),
        **adl_figures(records),
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
    return add_twins(summary, quote_unit, tick_size)


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
