"""Helpers of the engine specification tests (test_accounts.py, test_liquidator.py, test_engine.py).

Every expected number in those tests is computed by hand from docs/liquidation.md (the arithmetic
is in the comments), never taken from running an implementation. Each test takes the
``engine_cls`` fixture (tests/conftest.py), so it runs against the pure-Python reference
``orderbook.reference_engine.Engine`` and the compiled ``orderbook.Engine``.

Conventions used throughout (unless a test says otherwise):

* ``k = 1`` (tick_size = lot_size = 1, default quote_unit), so ``V(p, q) = p * q``.
* one margin tier, ``TIERS = [(None, 50_000, 100_000)]``: MM = ceil(5% of N), IM = ceil(10% of N).
* owners 1..9 are ordinary accounts; 100+ are exempt liquidity providers (LPs); 50 the backstop.
* "A" is the standard victim: long 10 lots at 100 (cost 1000) with collateral 100, seeded
  against an exempt LP. At mark m: E = 100 + 10m - 1000 = 10m - 900, MM = ceil(10m * 5%) =
  ceil(m / 2).  m = 95: E = 50 >= MM = ceil(47.5) = 48 (safe); m = 94: E = 40 < MM = 47
  (liquidatable), so its liquidation price is 94; bankruptcy price ceil((1000 - 100) / 10) = 90.
"""

from __future__ import annotations

import numpy as np

from orderbook.events import ForcedKind, MarkRule, Side

B, S = Side.BUY, Side.SELL

TIERS = [(None, 50_000, 100_000)]


def make(engine_cls, **kw):
    kw.setdefault("tiers", TIERS)
    return engine_cls(**kw)


def rows(records):
    """Liquidation records (structured array or list of dicts) as a list of plain dicts."""
    if isinstance(records, np.ndarray):
        return [{name: r[name].item() for name in records.dtype.names} for r in records]
    return [dict(r) for r in records]


def kind(row):
    return ForcedKind(int(row["kind"])).name


def of_kind(records, name, owner=None):
    return [r for r in rows(records) if kind(r) == name and (owner is None or r["owner"] == owner)]


def fund_balances(eng):
    hist = eng.fund_history()
    if isinstance(hist, np.ndarray) and hist.dtype.names and "balance" in hist.dtype.names:
        return [int(x) for x in hist["balance"]]
    return [int(x) for x in hist]


def equity_at(acc, m, k=1):
    """Equity of an account at mark m, straight from the spec: collateral + U(m)."""
    q, c = acc.position, acc.cost
    if q > 0:
        return acc.collateral + q * m * k - c
    if q < 0:
        return acc.collateral + c - (-q) * m * k
    return acc.collateral


def assert_conserved(eng, owners, k=1):
    """sum(equity(m)) + insurance_fund + fees_collected == total_deposits for any common m,
    and positions sum to zero (the insurance fund holds no position in these scenarios)."""
    accs = [eng.account(o) for o in owners]
    assert sum(a.position for a in accs) == 0
    for m in (1, 93, 100, 12_345):
        total = sum(equity_at(a, m, k) for a in accs) + eng.insurance_fund + eng.fees_collected
        assert total == eng.total_deposits, f"conservation broken at common mark {m}"


def victim_a(eng, owner=1, lp=100, collateral=100):
    """Account `owner`: long 10 @ 100 (cost 1000), collateral `collateral`, against LP `lp`."""
    eng.add_account(owner, collateral)
    eng.seed_position(owner, lp, 100, 10)


def _index_engine(engine_cls, **kw):
    eng = make(engine_cls, mark_rule=MarkRule.INDEX, **kw)
    eng.add_account(100, 10_000_000, exempt=True)
    return eng


def old_state(state, version):
    """A one-instrument engine's saved state (STATE_VERSION 5, no assets, time 0, no funding)
    in the form of ``version`` 1 or 2 (one book, account rows (owner, collateral, position,
    cost, reserve, exempt, isolated), 15-field records, scalar index/mark/basis, queue rows of
    three; version 1: of two)."""
    [book], [trades] = state["books"], state["trades"]
    accounts = []
    for owner, collateral, reserve, exempt, isolated, positions, _ in state["accounts"]:
        [(_, position, cost)] = positions or [(0, 0, 0)]
        accounts.append((owner, collateral, position, cost, reserve, exempt, isolated))
    out = {key: value for key, value in state.items()
           if key not in ("books", "asset_deposits", "conversions", "time",
                          "funding_history")}
    out.update(version=version, book=book, trades=trades, accounts=accounts,
               records=[row[:-1] for row in state["records"]],
               index_price=state["index_price"][0], mark=state["mark"][0],
               funding_basis_ppm=state["funding_basis_ppm"][0])
    out["queue"] = [row[:2 if version == 1 else 3] for row in state["queue"]]
    return out
