"""Two perpetual venues and a spot venue tied by an index and an arbitrageur (issue #13).

Venue A (marked at its last trade) takes a market sell of 3 BTC. Venue B marks at its index
clamped to its own touch (Binance's rule), the index being the weighted median of A (weight 2),
spot S (weight 2) and B (weight 1) last trades, so A alone cannot drag it. An arbitrageur with
capital on all three buys where an ask is cheapest and sells where a bid is dearest: it carries
A's fall into S's and B's books, the index follows, and B's leveraged accounts are liquidated
although nobody sold on B of their own accord. The makers re-quote a wide spread 50 ticks above
the bid each step; each venue has its own 1,000 accounts (2-100x) and insurance fund.

    python examples/two_venues.py [--plot two_venues.png] [--no-arbitrageur]

The same story as a scenario file of several venues: examples/two_venues.toml (orderbook run).

Units: prices in ticks of 0.1 (BTC-like, mid 100,000.0), sizes in lots of 0.001, money in quote
units of 0.0001.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from orderbook import (
    Arbitrageur,
    DepthProfile,
    Engine,
    IndexRule,
    Market,
    MarkRule,
    Side,
)

TIERS = [(2_000_000_000, 4_000, 8_000), (20_000_000_000, 10_000, 20_000), (None, 25_000, 50_000)]
MAKER, SHOCKER, ARB = 10**12 + 1, 10**12 + 2, 10**12 + 5
BOOK = DepthProfile(mid=1_000_000, spread=1, levels=1000, step=50, touch_qty=4, growth=0.01,
                    noise=0.3)


def venue(mark_rule, seed, accounts):
    """An engine with the synthetic book and ``accounts`` leveraged longs/shorts around it."""
    eng = Engine("0.1", "0.001", tiers=TIERS, mark_rule=mark_rule, insurance_fund=10**9,
                 liquidation_fee_ppm=5_000, check_initial_margin=False)
    rng = np.random.default_rng(seed)
    for owner in (MAKER, SHOCKER):
        eng.add_account(owner, 10**17, exempt=True)
    eng.add_account(ARB, 2 * 10**9)          # the arbitrageur's capital here: 200,000 quote
    next_id = 1
    bid_px, bid_q, ask_px, ask_q = BOOK.sides(rng)
    for side, prices, lots in ((Side.BUY, bid_px, bid_q), (Side.SELL, ask_px, ask_q)):
        for px, q in zip(prices.tolist(), lots.tolist(), strict=True):
            eng.limit(next_id, side, px, q, MAKER)
            next_id += 1
    if mark_rule != MarkRule.LAST:
        eng.set_index(BOOK.mid)
    eng.market(next_id, Side.BUY, 1, SHOCKER)   # a first print at the touch
    for owner in range(accounts):
        long = rng.random() < 0.65
        size = int(min(100, math.floor(math.exp(rng.uniform(0, math.log(101))))))
        leverage = math.exp(rng.uniform(math.log(5), math.log(100)))
        entry = int(round(BOOK.mid * (1 + 0.002 * rng.standard_normal())))
        eng.add_account(owner, math.ceil(entry * size / leverage))
        buyer, seller = (owner, MAKER) if long else (MAKER, owner)
        eng.seed_position(buyer, seller, entry, size)
        info = eng.account(owner)
        liq, mark = info.liquidation_price, eng.mark_price()
        if liq is not None and (liq >= mark if long else liq <= mark):
            eng.seed_position(seller, buyer, entry, size)   # liquidatable already: undone
    return eng


def build(arbitrageur=True):
    a = venue(MarkRule.LAST, 1, 1_000)
    b = venue(MarkRule.INDEX_CLAMPED, 2, 1_000)
    spot = venue(MarkRule.LAST, 3, 0)
    market = Market({"A": a, "B": b, "S": spot})
    market.add_index("BTC", {("A", 0): 2, ("S", 0): 2, ("B", 0): 1},
                     rule=IndexRule(exclude_ppm=250_000), feeds=[("B", 0)])
    if arbitrageur:
        market.add(Arbitrageur(ARB, [("A", 0), ("S", 0), ("B", 0)], threshold_ppm=500,
                               max_lots=300))
    return market


def requote(market, step):
    """The makers close a wide spread: a venue whose ask stands more than 100 ticks above its
    bid gets 40 lots offered 50 ticks above the bid (after a sell sweeps the bids, the asks
    still stand at the old price; this is what brings them down to where the arbitrageur can
    buy)."""
    for eng in market.venues.values():
        bid, ask = eng.book.best_bid(), eng.book.best_ask()
        if bid is not None and ask is not None and ask - bid > 100:
            eng.post_only(10**14 + step, Side.SELL, bid + 50, 40, MAKER)


def simulate(market, steps=60):
    """Step the market; the shock (a 3 BTC market sell on A) at step 0. Returns per-step
    arrays: last trade per venue, the index, B's mark, liquidated notional per venue."""
    a = market.venues["A"]
    a.market(10**15, Side.SELL, 3_000, SHOCKER)
    out = {"last": {name: [] for name in market.venues}, "index": [], "mark_B": [],
           "liquidated": {name: [] for name in market.venues}}
    for step in range(steps):
        requote(market, step)
        made = market.step()
        for name, eng in market.venues.items():
            out["last"][name].append(eng.book.last_price)
            out["liquidated"][name].append(int(made[name]["notional"].sum()))
        out["index"].append(market.indexes[0].index.value)
        out["mark_B"].append(market.venues["B"].mark_price())
    return out


def summary(market, out):
    for name, eng in market.venues.items():
        liquidated = {int(o) for o in eng.forced_orders()["owner"]} - {-1}
        print(f"venue {name}: {len(liquidated):,} accounts liquidated, "
              f"{sum(out['liquidated'][name]) * 0.0001:,.2f} quote, last trade "
              f"{eng.book.last_price / 10:,.1f}")
    print(f"index {out['index'][-1] / 10:,.1f}; B's mark {out['mark_B'][-1] / 10:,.1f}")


def plot(results, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 8), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(results), sharex=True, squeeze=False)
    for col, (title, out) in enumerate(results.items()):
        ax = axes[0][col]
        steps = np.arange(len(out["index"]))
        for name, colour in (("A", "tab:red"), ("S", "tab:grey"), ("B", "tab:blue")):
            ax.plot(steps, np.array(out["last"][name]) / 10, color=colour, lw=1.4,
                    drawstyle="steps-post", label=f"last trade on {name}")
        ax.plot(steps, np.array(out["index"]) / 10, color="black", ls="--", lw=1.2,
                drawstyle="steps-post", label="index (weighted median A 2, S 2, B 1)")
        ax.plot(steps, np.array(out["mark_B"]) / 10, color="tab:orange", ls=":", lw=1.6,
                drawstyle="steps-post", label="B's mark (index clamped to B's touch)")
        ax.set_title(title, loc="left", fontsize=10, fontweight="bold")
        ax.set_ylabel("price [quote ccy]")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        ax = axes[1][col]
        bottom = np.zeros(len(steps))
        for name, colour in (("A", "tab:red"), ("B", "tab:blue")):
            values = np.array(out["liquidated"][name], dtype=float) * 0.0001
            ax.bar(steps, values, bottom=bottom, color=colour, width=0.85,
                   label=f"liquidated on {name}")
            bottom += values
        ax.set_ylabel("liquidated notional\n[quote ccy]")
        ax.set_xlabel("step (one liquidation round per venue, then the arbitrageur)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("A sell on venue A, carried to venue B by the index and an arbitrageur",
                 fontsize=12)
    fig.tight_layout()
    fig.savefig(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", metavar="FILE.png")
    parser.add_argument("--no-arbitrageur", action="store_true")
    args = parser.parse_args(argv)
    results = {}
    for title, arb in (("with the arbitrageur", True), ("without it", False)):
        if args.no_arbitrageur and arb:
            continue
        market = build(arb)
        out = simulate(market)
        print(title)
        summary(market, out)
        results[title] = out
    if args.plot:
        plot(results, args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
