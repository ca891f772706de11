"""The fidelity runs of docs/fidelity.md: both files load, run, and show what the doc claims.

The quick tests run each file at scale 0.2 (a second or two each). The money in a scenario
(the insurance fund, the liquidator vault) does not scale, so at 0.2 the fund is five times as
large against the population: the claims checked there are the ones that hold either way. The
slow test runs both at full size and checks the numbers docs/fidelity.md prints
(``python -m pytest tests/test_fidelity.py -m slow``).
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import pytest

from orderbook import venues
from orderbook.config import load_scenario

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _fidelity():
    spec = importlib.util.spec_from_file_location("fidelity", EXAMPLES / "fidelity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fidelity():
    return _fidelity()


@pytest.mark.parametrize("name, venue", [("fidelity_bitmex_2020.toml", "bitmex"),
                                         ("fidelity_hyperliquid_2025.toml", "hyperliquid")])
def test_rules_are_the_venue_preset_but_the_tiers(name, venue):
    # docs/fidelity.md: the files write the preset's values; the BitMEX file's tiers are the
    # preset's too (caps in coin on an inverse venue), the Hyperliquid file's an altcoin's
    scenario = load_scenario(EXAMPLES / name)
    preset = venues.rules(venue, scenario)
    differ = {f for f in scenario.rules.__dataclass_fields__
              if getattr(scenario.rules, f) != getattr(preset, f)}
    assert differ == (set() if venue == "bitmex" else {"tiers"})


def test_bitmex_tiers_are_the_risk_limits_in_satoshi():
    rules = load_scenario(EXAMPLES / "fidelity_bitmex_2020.toml").rules
    assert rules.tiers[0] == (200 * 10**8, 5_000, 10_000)       # 200 XBT, MM 0.5 %, IM 1 %
    assert rules.tiers[1] == (350 * 10**8, 10_000, 15_000)      # + 150 XBT a step
    assert rules.tiers[-1][0] is None


def test_bitmex_run_no_adl_and_the_fund_ends_above_its_start(fidelity):
    model = fidelity.run_event(fidelity.BITMEX, fidelity.bitmex_figures, 0.2)
    assert model["ADL count"] == 0
    assert model["bad debt (XBT)"] == 0
    assert model["fund end (XBT)"] >= model["fund start (XBT)"]
    assert model["accounts liquidated"] > 0
    # the mark follows the index to its published low; the book stays above it
    assert model["index (spot) low"] == 3900.0
    assert model["book (XBTUSD) low"] > model["index (spot) low"]


def test_hyperliquid_run_adl_after_the_first_liquidation(fidelity):
    model = fidelity.run_event(fidelity.HYPERLIQUID, fidelity.hyperliquid_figures, 0.2)
    assert model["ADL records"] > 0
    assert model["liquidation records"] > 0
    assert model["first liquidation to first ADL"] > 0
    assert model["first ADL (s)"] > model["first liquidation (s)"]
    assert model["bad debt (USDC)"] == 0


def test_table_and_json_lines(fidelity, capsys):
    record = fidelity.BITMEX_RECORD
    text = fidelity.table("t", {"ADL count": 0, "extra": 1.5}, record)
    assert "ADL count" in text and "model only" in text
    assert all(key in text for key in record)


@pytest.mark.slow
def test_full_size_numbers_in_the_doc(fidelity):
    """The figures docs/fidelity.md prints from the full runs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bitmex = fidelity.run_event(fidelity.BITMEX, fidelity.bitmex_figures)
        hyper = fidelity.run_event(fidelity.HYPERLIQUID, fidelity.hyperliquid_figures)
    assert bitmex["ADL count"] == 0
    assert bitmex["book (XBTUSD) low"] == 5319.0
    assert bitmex["liquidated / open interest"] == 97.1
    assert bitmex["fund change, worst"] == -20.1
    assert bitmex["fund change, end"] == 7.5
    assert bitmex["fund take-overs"] == 1310
    assert bitmex["accounts liquidated"] == 1916
    assert hyper["price fall"] == 50.7
    assert hyper["liquidation records"] == 1063
    assert hyper["ADL records"] == 2023
    assert hyper["first liquidation to first ADL"] == 63.0
    assert hyper["liquidations before first ADL"] == 28.6
    assert hyper["accounts liquidated"] == 2378
    text = (Path(__file__).resolve().parent.parent / "docs" / "fidelity.md").read_text()
    for figure in ("5,319", "97.1", "-20.1", "1,063", "2,023", "63.0 s", "28.6"):
        assert figure in text, figure
