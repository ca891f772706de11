"""A market maker that stays against one that pulls its quotes, on the same cascade.

    python examples/market_maker.py

Runs examples/market_maker.toml three ways (docs/agents.md): without the market maker, with
one that keeps quoting through the fall, and with the file's, which withdraws when the price
has moved 0.2 % within 10 s; prints what each cascade did.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import replace
from pathlib import Path

from orderbook import run
from orderbook.config import load_scenario


def main() -> int:
    scenario = load_scenario(Path(__file__).with_name("market_maker.toml"))
    (pulls,) = scenario.agents
    stays = replace(pulls, withdraw_ppm=None)
    runs = {"no market maker": (), "market maker stays": (stays,),
            "market maker pulls its quotes": (pulls,)}
    print(f"{'':32} {'liquidated':>10} {'mid fall %':>10} {'MM position':>11} {'MM pnl':>12}")
    for name, agents in runs.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = run(replace(scenario, agents=agents), counterfactual=False)
        s = result.summary
        mm = s.get("agents", [{}])[0]
        pnl = mm.get("pnl")
        print(f"{name:32} {s['liquidated_accounts']:>10,} {s['max_drawdown_pct']:>10.2f} "
              f"{mm.get('position', ''):>11} "
              f"{'' if pnl is None else f'{pnl * 0.0001:,.2f}':>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
