"""What the command line prints: tables, money and prices, JSON, progress, and its errors."""

from __future__ import annotations

import io
import json
import math
import sys
from contextlib import contextmanager
from decimal import Decimal
from enum import IntEnum

import numpy as np

from .._progress import ProgressBar, stderr_console
from ..events import CloseOrder, Deficit, LimitRule, MarginBasis, Settlement, Sizing, Trigger
from ..metrics import unresolved_note
from ..scenario import STATIC_MARK_NOTE, Scenario, quote_unit

__all__ = ["PROG", "CLIError"]

PROG = "orderbook"


class CLIError(Exception):
    """A bad argument; reported on one line with exit status 2."""


@contextmanager
def _bar(args, parts, unit: str):
    """The command's progress bar on stderr (:class:`orderbook._progress.ProgressBar`) over
    ``parts`` ((label, size) pairs, in ``unit``), as a ``progress(done, total)`` hook; None
    (no hook, nothing drawn) when stderr is not a terminal or ``--quiet`` was given."""
    if getattr(args, "quiet", False) or not stderr_console().is_terminal:
        yield None
        return
    with ProgressBar(parts, unit) as bar:
        yield bar


# ------------------------------------------------------------------------------ formatting
def _money(units, unit: Decimal) -> str:
    """Quote units as an amount of quote currency, thousands separated, to the cent; a unit
    below 10**-4 (a coin's satoshi, an inverse venue's money) to the unit (exact amounts are in
    the JSON output)."""
    if units is None:
        return "-"
    value = Decimal(int(units)) * unit
    places = 0 if unit == unit.to_integral_value() else 2
    if unit < Decimal("0.0001"):
        places = -unit.normalize().as_tuple().exponent
    return f"{value:,.{places}f}"


def _ccy(s: Scenario) -> str:
    """What the scenario's money is: quote currency, or an inverse venue's coin."""
    return "coin" if s.settlement == Settlement.INVERSE else "quote"


def _in_ccy(headers: list[str], s: Scenario) -> list[str]:
    """Column headers with "(quote)" naming the scenario's money."""
    return [h.replace("(quote)", f"({_ccy(s)})") for h in headers]


def _price(ticks, tick: Decimal) -> str:
    value = Decimal(repr(float(ticks))) * tick if not float(ticks).is_integer() else \
        Decimal(int(ticks)) * tick
    return f"{value.normalize():,f}"


def _px(value: Decimal) -> str:
    """A price in price units (a summary's ``*_px`` figure), thousands separated."""
    return f"{value.normalize():,f}"


def _num(value, fmt: str = ",") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return format(value, fmt)


def _param_text(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, IntEnum):
        return value.name
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(_param_text(v) for v in value) + "]"
    return str(value)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, IntEnum):
        return value.name
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, Decimal):
        return str(value)
    return value


def _print_json(obj) -> None:
    print(json.dumps(_jsonable(obj), allow_nan=False))


# --------------------------------------------------------------------------------- summaries
def _summary_json(result, source: str) -> dict:
    out = {"scenario": source}
    for key, value in result.summary.items():
        if key == "quote_unit":  # the scenario's own sizes, beside the unit they make
            out["tick_size"], out["lot_size"] = result.scenario.tick_size, result.scenario.lot_size
        out[key] = value
    return out


def _describe(s: Scenario, source: str, rules_label: str = "rules") -> str:
    """Two lines: the scenario (source, accounts, steps, units), then ``rules_label: `` and its
    rules (:func:`_rules_text`)."""
    pop = s.population
    accounts = f"{pop.count:,} accounts" if hasattr(pop, "count") else \
        f"{len(pop.side):,} explicit accounts"
    if s.instruments:
        units = "instruments " + ", ".join(f"{c.name} (tick {c.tick_size}, lot {c.lot_size})"
                                           for c in s.instruments)
    else:
        units = f"tick {s.tick_size}, lot {s.lot_size}"
    money = (f"settlement INVERSE (a contract is {s.contract_value} of quote currency), money "
             f"in coin units of {quote_unit(s)}" if s.settlement == Settlement.INVERSE
             else f"quote unit {quote_unit(s)}")
    return (f"scenario: {source}: {accounts}, {s.steps} steps, {units}, {money}\n"
            f"{rules_label}: {_rules_text(s)}")


def _rules_text(s: Scenario) -> str:
    """``s``'s liquidation rules in a few words: the main settings, then those not at their
    defaults."""
    r = s.rules
    rules = [f"mark {r.mark_rule.name}", f"sizing {r.sizing.name}"
             + (f" {r.fraction_ppm / 1e4:g}%" if r.sizing == Sizing.FRACTION else "")
             + (f" over {_money(r.fraction_above, quote_unit(s))}"
                if r.sizing == Sizing.FRACTION and r.fraction_above else "")
             + (f" then whole for {r.cooldown_rounds:,} rounds"
                if r.sizing == Sizing.FRACTION and r.cooldown_rounds else "")
             + (f" of {_money(r.increment, quote_unit(s))} a step"
                if r.sizing == Sizing.INCREMENTAL else ""),
             f"limit {r.limit_rule.name}"
             + (f" {r.band_ppm / 1e4:g}%" if r.limit_rule == LimitRule.BAND else ""),
             f"round cap {_money(r.round_cap, quote_unit(s)) if r.round_cap else 'none'}",
             f"deficit {r.deficit.name}"
             + (f" ranked {r.adl_ranking.name}" if r.deficit == Deficit.ADL else "")]
    if r.trigger != Trigger.BELOW:
        rules.append("liquidated at equity <= MM")
    if r.mm_basis != MarginBasis.MARK:
        rules.append("MM on entry value")
    if r.close_order != CloseOrder.ALL:
        rules.append(f"positions closed {r.close_order.name.lower().replace('_', ' ')} first"
                     if r.close_order != CloseOrder.PRO_RATA else "positions closed pro rata")
    if r.takeover_below_ppm:
        rules.append(f"taken over below {r.takeover_below_ppm / 1e4:g}% of MM")
    return ", ".join(rules)


def _ms(ms: int) -> str:
    """A duration in ms as people say it (500 ms, 2 s, 8 h)."""
    for size, name in ((3_600_000, "h"), (60_000, "min"), (1_000, "s")):
        if ms >= size and ms % size == 0:
            return f"{ms // size:,} {name}"
    return f"{ms:,} ms"


def _timeline_lines(s: Scenario, sm: dict) -> list[str]:
    """What the scenario's clock ran besides the cascade, a line each: the clock when not the
    step model's, funding, every agent's and every flow's end state (empty when none)."""
    from ..scenario import Clock

    unit, ccy = quote_unit(s), _ccy(s)
    lines = []
    c = s.clock
    if c != Clock():
        liquidator = (f"at each block's end (blocks of {_ms(c.block_ms)})"
                      if c.block_ms is not None and c.liquidator_ms is None
                      else f"every {_ms(c.cadence_ms)}")
        rounds = "" if c.liquidator_rounds == 1 else f", {c.liquidator_rounds:,} rounds a time"
        blocks = ("" if c.block_ms is None or c.liquidator_ms is None
                  else f"; orders matched at block ends ({_ms(c.block_ms)})")
        lines.append(f"clock: steps of {_ms(c.step_ms)}, liquidator {liquidator}{rounds}"
                     f"{blocks}")
    rule = s.funding.rule()
    if rule is not None:
        lines.append(f"funding: {s.funding.venue}, paid every {_ms(rule.interval_ms)}, "
                     f"premium sampled every {_ms(rule.sample_ms)}: "
                     f"{sm.get('funding_payments', 0):,} payments, "
                     f"{_money(sm.get('funding_paid', 0), unit)} {ccy} paid")
    for a in sm.get("agents", ()):
        sign = "+" if a["pnl"] >= 0 else "-"
        lines.append(f"agent {a['kind']} (account {a['owner']:,}): equity "
                     f"{_money(a['equity'], unit)} {ccy} (P&L {sign}"
                     f"{_money(abs(a['pnl']), unit)}), position {a['position']:,} lots"
                     + (", liquidated" if a["liquidated"] else ""))
    for f in sm.get("flows", ()):
        skipped = sum(f["skipped"].values())
        lines.append(f"flow {f['kind']} on instrument {f['instrument']}: {f['sent']:,} orders "
                     f"sent" + (f", {skipped:,} skipped" if skipped else "")
                     + f", position {f['position']:,} lots")
    return lines


def _format_run(result, source: str) -> str:
    s, sm = result.scenario, result.summary
    unit = quote_unit(s)
    ccy = _ccy(s)
    # With instruments, the price figures are instrument 0's; the others are in their table.
    of = f" ({s.instruments[0].name})" if s.instruments else ""
    fund0 = sm["insurance_fund_start"]
    amp = sm["amplification"]
    half = sm["steps_to_half_recovery"]
    rows = [
        ["accounts", f"{sm['accounts']:,}", "", "seeded, not liquidatable at the start"],
        ["liquidated accounts", f"{sm['liquidated_accounts']:,}", "",
         f"{sm['liquidated_accounts_pct']:.1f} % of accounts"],
        ["forced orders", f"{sm['forced_orders']:,}", "", ""],
    ]
    if "liquidated_accounts_unshocked" in sm:
        rows.append(["... holding no shocked instrument",
                     f"{sm['liquidated_accounts_unshocked']:,}", "",
                     "liquidated through the others' forced orders (contagion)"])
    rows += [
        ["liquidated notional", _money(sm["liquidated_notional"], unit), ccy,
         f"{sm['liquidated_notional']:,} {ccy} units of {unit}"],
        ["max drawdown" + of, f"{sm['max_drawdown_pct']:.2f}", "%",
         f"{sm['max_drawdown_ticks']:,.0f} ticks = {_px(sm['max_drawdown_px'])} "
         f"in price, from mid {_px(sm['start_mid_px'])}"],
    ]
    rows += [
        ["trough at step", "-" if sm["trough_step"] is None else f"{sm['trough_step']:,}",
         "", "step of the lowest mid" + (
             "" if sm["trough_step"] is None
             else f", at {sm['trough_step'] * s.clock.step_ms / 1000:,g} s")],
        ["peak liquidated / step", _money(sm["peak_step_liquidated"], unit), ccy,
         "largest notional liquidated in one step"],
    ]
    if "counterfactual_drawdown_ticks" in sm:
        rows.append(["drawdown w/o liquidations", f"{sm['counterfactual_drawdown_pct']:.2f}", "%",
                     f"{sm['counterfactual_drawdown_ticks']:,.0f} ticks = "
                     f"{_px(sm['counterfactual_drawdown_px'])} in price"])
    rows += [
        ["amplification", "n/a" if amp is None else _num(amp, ".2f"), "x",
         "drawdown / drawdown without liquidations" if amp is not None
         else "no counterfactual run"],
        ["generations", f"{sm['generations']:,}", "", "cascade depth (rounds that liquidated)"],
    ]
    if "forecast_liquidated_accounts" in sm:
        rows += [
            ["forecast: liquidated", f"{sm['forecast_liquidated_accounts']:,}", "",
             f"static fixed point of the starting book, {sm['forecast_rounds']:,} generations "
             f"(orderbook map)" + ("; the book ran out" if sm["forecast_book_exhausted"]
                                   else "")],
            ["forecast: trough" + of, "-" if sm["forecast_trough"] is None
             else _px(sm["forecast_trough_px"]), "",
             "the price the static walk ends at"],
        ]
    # what the liquidations cost, and who paid (docs/money.md)
    rows += [
        ["collateral lost", _money(sm["collateral_lost"], unit), ccy,
         "liquidated accounts' equity before the shock less what they kept"],
        ["liquidation penalties", _money(sm["liquidation_penalties"], unit), ccy,
         "liquidation fees paid into the insurance fund"],
        ["forced-order slippage", _money(sm["forced_slippage"], unit), ccy,
         "fills against the mark each forced order was sent at (a cost > 0)"],
        ["bad debt", _money(sm["bad_debt"], unit), ccy, ""],
        ["socialized loss", _money(sm["socialized"], unit), ccy, ""],
        ["ADL count", f"{sm['adl_count']:,}", "", "positions closed by auto-deleveraging"],
        ["ADL notional", _money(sm["adl_notional"], unit), ccy,
         f"closed against {sm['adl_accounts']:,} account"
         f"{'' if sm['adl_accounts'] == 1 else 's'}"],
    ]
    if sm.get("conversions"):
        rows.append(["collateral converted", _money(sm["converted_notional"], unit), ccy,
                     f"{sm['conversions']:,} sales of collateral assets "
                     + ("through the spot book" if any(c.spot for c in s.instruments)
                        else "to the venue")])
    change = sm["insurance_fund_end"] - fund0
    rows += [
        ["insurance fund", _money(sm["insurance_fund_end"], unit), ccy,
         f"start {_money(fund0, unit)}, change {'+' if change >= 0 else '-'}"
         f"{_money(abs(change), unit)}"],
        ["insurance fund low", _money(sm["insurance_fund_min"], unit), ccy,
         "its lowest balance after a liquidation round or a step"],
        ["steps to half recovery", "-" if half is None else f"{half:,}", "steps",
         f"not within {s.steps} steps" if half is None else "from the trough"],
        ["queue left", f"{sm['queue_left']:,}", "", "accounts still queued at the end"],
        ["unresolved accounts", f"{sm['unresolved_accounts']:,}", "",
         "negative equity at the end; not in bad debt or socialized loss"],
        ["unresolved lots", f"{sm['unresolved_lots']:,}", "lots", "their open positions"],
        ["unresolved equity", _money(sm["unresolved_equity"], unit), ccy,
         f"{sm['unresolved_equity']:,} {ccy} units: their equity at the final mark"],
    ]
    out = [_describe(s, source), *_timeline_lines(s, sm), "",
           _table(["metric", "value", "unit", "note"], rows, right={1})]
    if s.instruments:
        out += ["", "by instrument", _instrument_table(s, sm, unit)]
    gens = sm["liquidations_by_generation"]
    if gens:
        top = max(gens)
        grows = [[f"{g}", f"{n:,}", "#" * max(1 if n else 0, round(40 * n / top))]
                 for g, n in enumerate(gens)]
        out += ["", "liquidations by generation",
                _table(["generation", "accounts", ""], grows, right={0, 1})]
    else:
        out += ["", "no liquidations"]
    return "\n".join(out)


def _instrument_table(s: Scenario, sm: dict, unit: Decimal) -> str:
    """One row per instrument of a scenario with instruments: what its liquidations took and
    when its first came (the cascade generation), and how far its mid fell."""
    rows = []
    for c in s.instruments:
        key = f"instrument.{c.name}."
        first = sm[key + "first_generation"]
        amp = sm.get(key + "amplification")
        rows.append([c.name, f"{sm[key + 'liquidated_accounts']:,}",
                     f"{sm[key + 'forced_orders']:,}",
                     _money(sm[key + "liquidated_notional"], unit),
                     "-" if first is None else f"{first}",
                     f"{sm[key + 'max_drawdown_pct']:.2f}",
                     "n/a" if amp is None else _num(amp, ".2f")])
    return _table(_in_ccy(["instrument", "liquidated accounts", "forced orders",
                           "liquidated notional (quote)", "first generation", "max drawdown %",
                           "amplification x"], s), rows, right={1, 2, 3, 4, 5, 6})


def _table(headers, rows, right: set) -> str:
    """Aligned columns, drawn by rich without colour: those in ``right`` right-aligned, the
    others left-aligned; the header, a rule, then the rows. Never wrapped or truncated,
    whatever the terminal's width (a number cut short would mislead)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0),
                  collapse_padding=True)
    # Text cells: no markup (a value such as "[2,50]" is not a style) and no emoji codes
    justify = ["right" if i in right else "left" for i in range(len(headers))]
    for header, how in zip(headers, justify, strict=True):
        table.add_column(Text(str(header), justify=how), justify=how, no_wrap=True)
    for row in rows:
        table.add_row(*(Text(str(c), justify=how) for c, how in zip(row, justify, strict=False)))
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    buffer = io.StringIO()
    # wider than the table needs: nothing is ever cut to fit (the width a terminal would give)
    Console(file=buffer, width=sum(widths) + 3 * len(widths) + 8, color_system=None,
            force_terminal=False, highlight=False, emoji=False).print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


_DYNAMICS_HEADERS = ["trough step", "peak/step (quote)"]
_METRIC_HEADERS = ["liq. accts", "liq. notional (quote)", "drawdown %", "ticks", "amp. x",
                   "gens", "bad debt (quote)", "ADL", "fund end (quote)", "half rec. (steps)",
                   "queue left", "unresolved", "unres. lots", "unres. equity (quote)"]


def _metric_cells(summary: dict, unit: Decimal) -> list[str]:
    amp = summary["amplification"]
    half = summary["steps_to_half_recovery"]
    return [f"{summary['liquidated_accounts']:,}", _money(summary["liquidated_notional"], unit),
            f"{summary['max_drawdown_pct']:.2f}", f"{summary['max_drawdown_ticks']:,.0f}",
            "n/a" if amp is None else _num(amp, ".2f"), f"{summary['generations']:,}",
            _money(summary["bad_debt"], unit), f"{summary['adl_count']:,}",
            _money(summary["insurance_fund_end"], unit), "-" if half is None else f"{half:,}",
            f"{summary['queue_left']:,}", f"{summary['unresolved_accounts']:,}",
            f"{summary['unresolved_lots']:,}", _money(summary["unresolved_equity"], unit)]


def _warn_unresolved(summary: dict, label: str = "") -> None:
    """The CLI's line on stderr for a run that ended with accounts unresolved (the library's
    UnresolvedAccountsWarning, which the commands silence so it is said once, here), and for
    one whose mark or settings cannot act (InertSettingWarning, silenced the same way)."""
    if summary.get("static_mark"):
        print(f"{PROG}: warning: {label}{STATIC_MARK_NOTE}", file=sys.stderr)
    for text in summary.get("inert_settings", ()):
        print(f"{PROG}: warning: {label}{text}", file=sys.stderr)
    note = unresolved_note(summary)
    if note is not None:
        print(f"{PROG}: warning: {label}{note}", file=sys.stderr)


# ------------------------------------------------------------------------ several venues
def _index_text(ix, last, tick: Decimal) -> str:
    """One index: its rule, legs and weights, feeds and last value."""
    rule = ix.rule
    parts = [f"{rule.aggregate.name.lower().replace('_', ' ')} of "
             + ", ".join(f"{leg.venue}{'' if leg.instrument in (0, 'main') else '.'}"
                         f"{'' if leg.instrument in (0, 'main') else leg.instrument} "
                         f"{leg.weight}" for leg in ix.legs)
             + f" ({'last trades' if ix.source == 'last' else 'mids'})"]
    for key, what in (("exclude_ppm", "exclude past"), ("clamp_ppm", "clamp to")):
        if getattr(rule, key):
            parts.append(f"{what} {getattr(rule, key) / 1e4:g} % of the median")
    if rule.readmit_ppm:
        parts.append(f"back within {rule.readmit_ppm / 1e4:g} % for {rule.readmit_updates:,} "
                     f"updates")
    feeds = ("its legs with an index mark" if ix.feeds is None
             else ", ".join(leg.venue for leg in ix.feeds))
    parts.append(f"feeds {feeds}")
    end = "-" if last is None or last == 0 else _price(last, tick)
    return f"index {ix.name}: {', '.join(parts)}; ends at {end}"


def _format_market(result, source: str) -> str:
    """``orderbook run`` on several venues: the venues, indexes and arbitrageurs in a few
    lines, then one row per venue and instrument (MarketResult.table)."""
    ms = result.scenario
    lines = [f"market scenario: {source}: {len(ms.venues)} venues, {ms.steps} steps, "
             f"arbitrage {'on' if result.arbitrage else 'off'}"]
    for v in ms.venues:
        s = v.scenario
        pop = s.population
        accounts = f"{pop.count:,} accounts" if hasattr(pop, "count") else \
            f"{len(pop.side):,} explicit accounts"
        units = (", ".join(f"{c.name} (tick {c.tick_size}, lot {c.lot_size})"
                           for c in s.instruments) if s.instruments
                 else f"tick {s.tick_size}, lot {s.lot_size}")
        money = (f"inverse, money in coin units of {quote_unit(s)}"
                 if s.settlement == Settlement.INVERSE else f"quote unit {quote_unit(s)}")
        lines.append(f"  venue {v.name}: {accounts}, {units}, {money}; {_rules_text(s)}")
        lines += [f"    {line}" for line in
                  _timeline_lines(s, result.venues[v.name].summary)]
    for ix in ms.indexes:
        first = ms.venue(ix.legs[0].venue).scenario
        tick = Decimal(first.instruments[0].tick_size if first.instruments
                       else first.tick_size)
        lines.append("  " + _index_text(ix, result.summary["indexes"][ix.name], tick))
    for j, (spec, done) in enumerate(zip(ms.arbitrageurs, result.arbitrageurs, strict=True)):
        capital = ", ".join(f"{venue} {_money(amount, quote_unit(ms.venue(venue).scenario))}"
                            f" {_ccy(ms.venue(venue).scenario)}"
                            for venue, amount in spec.capital)
        lines.append(f"  arbitrageur {j + 1} on {', '.join(leg.venue for leg in spec.legs)} "
                     f"(capital {capital}; threshold {spec.threshold_ppm:,} ppm): "
                     + (f"{done['lots']:,} lots in {done['trades']:,} round trips"
                        if result.arbitrage else "off (--no-arbitrage)"))
    # venues in different money (an inverse venue's coin beside quote currency): each amount
    # says its own
    mixed = len({row["money"] for row in result.table}) > 1

    def amount(units, row):
        return _money(units, row["quote_unit"]) + (f" {row['money']}" if mixed else "")

    rows = [[row["venue"], row["instrument"], f"{row['accounts']:,}",
             f"{row['liquidated_accounts']:,}", f"{row['forced_orders']:,}",
             amount(row["liquidated_notional"], row), f"{row['max_drawdown_pct']:.2f}",
             amount(row["insurance_fund_end"], row)] for row in result.table]
    ccy = "" if mixed else f" ({result.table[0]['money']})" if result.table else " (quote)"
    headers = ["venue", "instrument", "accounts", "liquidated accounts", "forced orders",
               f"liquidated notional{ccy}", "max drawdown %", f"fund end{ccy}"]
    return "\n".join(lines + ["", _table(headers, rows, right=set(range(2, len(headers))))])


_VENUE_HEADERS = ["venue", "accounts", "liq. accts", "forced orders", "liq. notional (quote)",
                  "drawdown %", "fund end (quote)", "queue left", "unresolved"]


def _format_market_rows(lead: list[str], runs: list) -> str:
    """``compare`` and ``sweep`` on several venues: a row per run and venue. ``runs``: one
    (lead cells, {venue: (its summary, whether the run changed its rules, or None)}) per run; the
    lead cells (a rule set's name, the parameters' values) head each of its rows."""
    rows = []
    mixed = len({sm.get("money", "quote") for _, venues in runs
                 for sm, _ in venues.values()}) > 1
    for cells, venues in runs:
        for venue, (sm, ruled) in venues.items():
            unit = sm["quote_unit"]
            ccy = f" {sm.get('money', 'quote')}" if mixed else ""
            label = venue + (" (own rules)" if ruled is False else "") + \
                (" (mark fixed)" if sm.get("static_mark") else "")
            rows.append([*cells, label, f"{sm['accounts']:,}",
                         f"{sm['liquidated_accounts']:,}", f"{sm['forced_orders']:,}",
                         _money(sm["liquidated_notional"], unit) + ccy,
                         f"{sm['max_drawdown_pct']:.2f}",
                         _money(sm["insurance_fund_end"], unit) + ccy,
                         f"{sm['queue_left']:,}", f"{sm['unresolved_accounts']:,}"])
    money = {sm.get("money", "quote") for _, venues in runs for sm, _ in venues.values()}
    headers = [*lead, *(h.replace(" (quote)", "" if mixed else f" ({next(iter(money))})")
                        for h in _VENUE_HEADERS)] if money else [*lead, *_VENUE_HEADERS]
    return _table(headers, rows, right=set(range(len(lead) + 1, len(headers))))
