"""Two runs beside the published record (docs/fidelity.md).

    python examples/fidelity.py            # a table per event: the model beside the record
    python examples/fidelity.py --json     # one JSON line per figure
    python examples/fidelity.py --scale 0.2

Runs examples/fidelity_bitmex_2020.toml (BitMEX XBTUSD, 12-13 March 2020) and
examples/fidelity_hyperliquid_2025.toml (an altcoin perpetual on Hyperliquid, 10 October 2025)
without their counterfactual (it adds nothing here) and prints, for each, the model's figures
beside the published ones. Every published figure carries the tag of its source in
docs/fidelity_sources.md.

Scaling: the model's population is an abstract 3,000 accounts, not BitMEX's or Hyperliquid's,
so amounts of money are not compared in USD. They are compared as shares: liquidated notional
as a share of the starting open interest, the insurance fund's change as a share of its start,
ADL notional as a share of liquidated notional. Counts are compared as ratios (ADL records per
liquidation record), and times in seconds of the model's clock.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

from orderbook import run
from orderbook.config import load_scenario
from orderbook.events import INSURANCE_FUND, ForcedKind
from orderbook.scenario import scale_scenario

HERE = Path(__file__).resolve().parent
BITMEX = HERE / "fidelity_bitmex_2020.toml"
HYPERLIQUID = HERE / "fidelity_hyperliquid_2025.toml"

# The published figures (docs/fidelity_sources.md): (value, unit, source tags, note).
BITMEX_RECORD = {
    "start price": (7353.0, "USD", "B1", "XBTUSD at 10:00 UTC, 12 March"),
    "index (spot) low": (3900.0, "USD", "B2", "spot low of the second leg"),
    "book (XBTUSD) low": (3596.0, "USD", "B1", "about 400 USD below spot at the time"),
    "book fall": (51.1, "%", "B1", "7,353 to 3,596"),
    "liquidated / open interest": (73.0, "%", "B3 B4", "876 M USD (12 March) / ~1.2 bn "
                                   "(estimate; 139 % with 13 March's 798 M)"),
    "fund change, worst": (-7.4, "%", "B6 B7", "largest decline 2,606 XBT of ~35,500"
                           " (estimate)"),
    "fund change, end": (-2.3, "%", "B5 B7", "34,678 XBT on 23 March against 35,000-36,000 "
                         "early March (estimate)"),
    "ADL count": (0, "", "B5", "'ADL was completely prevented'"),
}
HYPERLIQUID_RECORD = {
    "price fall": (50.0, "%", "H5 H6", "'many altcoins dropped by more than 50 %' (40-80 %)"),
    "liquidation records": (63637, "", "H2", "liquidation fills, 21:15-21:27 UTC"),
    "ADL records": (34983, "", "H1 H2", "ADL fills"),
    "ADL / liquidation records": (0.55, "", "H2", "34,983 / 63,637"),
    "ADL / liquidated notional": (0.38, "", "H2", "2.10 / 5.51 bn USD"),
    "liquidated / open interest": (40.0, "%", "H2 H4", "5.51 bn / 13.8 bn USD, all markets"),
    "first liquidation to first ADL": (61.7, "s", "H2", ""),
    "liquidations before first ADL": (1.1, "%", "H3", "710 of 63,637 fills"),
}


def _liquidations(result):
    """The population's liquidation records (not the fund's own orders) and their lots."""
    fo = result.forced_orders
    own = fo["owner"] != INSURANCE_FUND
    kinds = np.isin(fo["kind"], [ForcedKind.ORDER, ForcedKind.BACKSTOP,
                                 ForcedKind.FUND_TAKEOVER, ForcedKind.ADL])
    mask = own & kinds
    lots = np.where(fo["kind"] == ForcedKind.ORDER, fo["filled"], fo["qty"])
    return mask, lots


def bitmex_figures(result) -> dict:
    s, se, fo = result.scenario, result.series, result.forced_orders
    tick = float(s.tick_size)
    unit = 10**8   # satoshi a coin
    mask, lots = _liquidations(result)
    # liquidated contracts: orders' fills and take-overs (ADL closes the same lots again)
    closed = int(lots[mask & (fo["kind"] != ForcedKind.ADL)].sum())
    oi0 = int(se["open_interest"][0])
    fund = se["insurance_fund"]
    start = float(result.summary["start_mid"]) * tick
    low = float(se["last"].min()) * tick
    return {
        "start price": round(start, 1),
        "index (spot) low": round(float(se["mark"].min()) * tick, 1),
        "book (XBTUSD) low": round(low, 1),
        "book fall": round(100 * (1 - low / start), 1),
        "liquidated / open interest": round(100 * closed / oi0, 1),
        "fund change, worst": round(100 * (fund.min() / fund[0] - 1), 1),
        "fund change, end": round(100 * (fund[-1] / fund[0] - 1), 1),
        "ADL count": int(result.summary["adl_count"]),
        # context, no published counterpart
        "accounts liquidated": int(result.summary["liquidated_accounts"]),
        "accounts": int(result.accounts),
        "fund take-overs": int((fo["kind"] == ForcedKind.FUND_TAKEOVER).sum()),
        "fund start (XBT)": round(fund[0] / unit, 2),
        "fund low (XBT)": round(fund.min() / unit, 2),
        "fund end (XBT)": round(fund[-1] / unit, 2),
        "open interest at start (contracts)": oi0,
        "bad debt (XBT)": float(result.summary["bad_debt_quote"]),
    }


def hyperliquid_figures(result) -> dict:
    s, se, fo = result.scenario, result.series, result.forced_orders
    tick = float(s.tick_size)
    mask, lots = _liquidations(result)
    adl = fo["kind"] == ForcedKind.ADL
    liq = mask & ~adl
    times = result.record_time
    first_liq = int(times[liq].min()) if liq.any() else None
    first_adl = int(times[adl].min()) if adl.any() else None
    before = int((liq & (times < first_adl)).sum()) if first_adl is not None else None
    start = float(result.summary["start_mid"]) * tick
    low = float(se["last"].min()) * tick
    oi0 = int(se["open_interest"][0])
    liq_notional = int(fo["notional"][liq].sum())
    adl_notional = int(fo["notional"][adl].sum())
    fund = se["insurance_fund"]
    return {
        "price fall": round(100 * (1 - low / start), 1),
        "liquidation records": int(liq.sum()),
        "ADL records": int(adl.sum()),
        "ADL / liquidation records": round(int(adl.sum()) / max(1, int(liq.sum())), 2),
        "ADL / liquidated notional": round(adl_notional / max(1, liq_notional), 2),
        "liquidated / open interest": round(100 * int(lots[liq].sum()) / oi0, 1),
        "first liquidation to first ADL": (None if first_adl is None
                                           else round((first_adl - first_liq) / 1000, 1)),
        "liquidations before first ADL": (None if before is None
                                          else round(100 * before / max(1, int(liq.sum())), 1)),
        # context, no published counterpart
        "accounts liquidated": int(result.summary["liquidated_accounts"]),
        "accounts": int(result.accounts),
        "first liquidation (s)": None if first_liq is None else first_liq / 1000,
        "first ADL (s)": None if first_adl is None else first_adl / 1000,
        "vault take-overs": int((fo["kind"] == ForcedKind.FUND_TAKEOVER).sum()),
        "vault start (USDC)": float(fund[0] * float(s.quote_unit or 0.0001)),
        "vault end (USDC)": float(fund[-1] * float(s.quote_unit or 0.0001)),
        "start price": round(start, 4),
        "low": round(low, 4),
        "bad debt (USDC)": float(result.summary["bad_debt_quote"]),
    }


EVENTS = (
    ("bitmex_2020", "BitMEX XBTUSD, 12-13 March 2020", BITMEX, BITMEX_RECORD, bitmex_figures),
    ("hyperliquid_2025", "Hyperliquid altcoin perpetual, 10 October 2025", HYPERLIQUID,
     HYPERLIQUID_RECORD, hyperliquid_figures),
)


def run_event(path, figures, scale: float = 1.0) -> dict:
    scenario = load_scenario(path)
    if scale != 1:
        scenario = scale_scenario(scenario, scale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run(scenario, counterfactual=False)
    return figures(result)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(title: str, model: dict, record: dict) -> str:
    rows = [("figure", "model", "record", "unit", "source", "note")]
    for key, (value, unit, source, note) in record.items():
        rows.append((key, _fmt(model.get(key)), _fmt(value), unit, source, note))
    rows += [(key, _fmt(value), "", "", "", "model only") for key, value in model.items()
             if key not in record]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [title, ""]
    for n, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True))
                     + ("  " + r[5] if r[5] else ""))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON line per figure")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="shrink accounts, depth and shocks together (scale_scenario)")
    args = parser.parse_args(argv)
    for name, title, path, record, figures in EVENTS:
        model = run_event(path, figures, args.scale)
        if args.json:
            for key, value in model.items():
                rec = record.get(key)
                print(json.dumps({"event": name, "figure": key, "model": value,
                                  "record": None if rec is None else rec[0],
                                  "unit": None if rec is None else rec[1],
                                  "source": None if rec is None else rec[2],
                                  "scale": args.scale}))
        else:
            print(table(f"{title} ({path.name}, scale {args.scale:g})", model, record))
            print()


if __name__ == "__main__":
    main()
