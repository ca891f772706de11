"""Venue B's market maker pulling its quotes, staying, and absent, in a market of three venues.

    python examples/two_venues_agents.py

Runs examples/two_venues_agents.toml (docs/time.md, "A market of several venues") three ways,
changing only the market maker on venue B, and prints what each did on B: accounts liquidated,
the fall of B's mid, what the arbitrageur carried between the venues, the funding B's paying
side paid, and the maker's position and P&L.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import replace
from pathlib import Path

from orderbook.market_scenario import load_market, run


def with_b_agents(ms, agents):
    """``ms`` with venue B's agents replaced by ``agents``."""
    venues = tuple(replace(v, scenario=replace(v.scenario, agents=agents)) if v.name == "B"
                   else v for v in ms.venues)
    return replace(ms, venues=venues)


def main() -> int:
    ms = load_market(Path(__file__).with_name("two_venues_agents.toml"))
    (pulls,) = ms.venue("B").scenario.agents
    runs = {"no market maker on B": (), "B's maker stays": (replace(pulls, withdraw_ppm=None),),
            "B's maker pulls its quotes": (pulls,)}
    print(f"{'':28} {'B liquidated':>12} {'B mid fall %':>12} {'lots carried':>12} "
          f"{'funding paid':>12} {'MM position':>11} {'MM P&L':>10}")
    for name, agents in runs.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = run(with_b_agents(ms, agents))
        s = result.venues["B"].summary
        mm = s.get("agents", [{}])[0]
        pnl = mm.get("pnl")
        print(f"{name:28} {s['liquidated_accounts']:>12,} {s['max_drawdown_pct']:>12.2f} "
              f"{result.arbitrageurs[0]['lots']:>12,} {s['funding_paid'] * 0.0001:>12,.2f} "
              f"{mm.get('position', ''):>11} "
              f"{'' if pnl is None else f'{pnl * 0.0001:,.2f}':>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
