"""Settings that cannot act under the others are named (orderbook.scenario.inert_settings):
a warning per setting and run, the summary's ``inert_settings``, a sweep's rows, the CLI."""

from __future__ import annotations

import warnings
from dataclasses import replace

import pytest

from orderbook import (
    AdlRanking,
    Deficit,
    InertSettingWarning,
    LimitRule,
    Rules,
    Sizing,
    default_scenario,
    run,
    sweep,
)
from orderbook.cli import main
from orderbook.scenario import SerialExecutor, inert_settings

SMALL = default_scenario(scale=0.02)


def rules(**kw) -> Rules:
    return replace(Rules(), **kw)


@pytest.mark.parametrize("kw, inert", [
    ({"band_ppm": 10_000}, ["band_ppm"]),
    ({"band_ppm": 10_000, "limit_rule": LimitRule.BAND}, []),
    ({"fraction_ppm": 100_000, "cooldown_ms": 30_000}, ["fraction_ppm", "cooldown_ms"]),
    ({"fraction_ppm": 100_000, "sizing": Sizing.FRACTION}, []),
    ({"increment": 5}, ["increment"]),
    ({"backstop_discount_ppm": 5_000}, ["backstop_discount_ppm"]),
    # a backstop with nothing to take over: MARKET orders and no take-over below MM
    ({"backstop_collateral": 10**9, "backstop_discount_ppm": 5_000},
     ["backstop_collateral", "backstop_discount_ppm"]),
    ({"backstop_collateral": 10**9, "backstop_discount_ppm": 5_000,
      "limit_rule": LimitRule.BANKRUPTCY}, []),
    ({"backstop_collateral": 10**9, "takeover_below_ppm": 666_667}, []),
    ({"adl_ranking": AdlRanking.PNL_RATIO, "deficit": Deficit.NONE}, ["adl_ranking"]),
    ({"liquidator": False, "sizing": Sizing.FRACTION, "band_ppm": 1}, ["sizing", "band_ppm"]),
    ({"liquidation_fee_ppm": 0, "tiers": ((None, 5_000, 10_000),)}, []),
])
def test_a_setting_set_away_from_its_default_is_named_when_it_cannot_act(kw, inert):
    notes = inert_settings(replace(SMALL, rules=rules(**kw)))
    assert sorted(n.split(" = ")[0] for n in notes) == sorted(f"rules.{k}" for k in inert)


def test_a_note_says_what_the_setting_needs_and_what_the_rules_have():
    (note,) = inert_settings(replace(SMALL, rules=rules(band_ppm=20_000)))
    assert note == ("rules.band_ppm = 20000 cannot act: it needs limit_rule BAND; these rules "
                    "have limit_rule MARKET")


def test_named_settings_are_checked_whatever_their_values():
    scenario = replace(SMALL, rules=rules(sizing=Sizing.FULL))
    assert inert_settings(scenario) == ()
    assert [n.split(" = ")[0] for n in inert_settings(scenario, ["rules.fraction_ppm",
                                                                 "steps", "band_ppm"])] == \
        ["rules.fraction_ppm", "rules.band_ppm"]


def test_a_run_warns_once_per_inert_setting_and_its_summary_lists_them():
    scenario = replace(SMALL, rules=rules(band_ppm=20_000, fraction_ppm=1))
    with pytest.warns(InertSettingWarning) as caught:
        result = run(scenario, counterfactual=False)
    texts = [str(w.message) for w in caught if w.category is InertSettingWarning]
    assert len(texts) == 2 and set(texts) == set(result.summary["inert_settings"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", InertSettingWarning)
        assert run(SMALL, counterfactual=False).summary["inert_settings"] == ()


def test_a_sweep_over_a_setting_that_cannot_act_warns_for_every_point():
    with pytest.warns(InertSettingWarning) as caught:
        rows = sweep({"rules.band_ppm": [0, 20_000]}, SMALL, executor=SerialExecutor(),
                     counterfactual=False)
    texts = [str(w.message) for w in caught if w.category is InertSettingWarning]
    assert any(t.startswith("sweep run rules.band_ppm=0: rules.band_ppm = 0 cannot act")
               for t in texts)
    assert any(t.startswith("sweep run rules.band_ppm=20000: rules.band_ppm = 20000 cannot")
               for t in texts)
    # the rows are the same: the warning is what tells the user why
    assert rows[0]["liquidated_accounts"] == rows[1]["liquidated_accounts"]
    assert rows[1]["inert_settings"] and not rows[0]["inert_settings"]


def test_the_cli_says_it_on_stderr(capsys):
    assert main(["sweep", "--scale", "0.02", "--quiet", "--no-counterfactual",
                 "--param", "rules.band_ppm=0,20000"]) == 0
    err = capsys.readouterr().err
    assert "warning: rules.band_ppm=20,000: rules.band_ppm = 20000 cannot act" in err
    assert main(["sweep", "--scale", "0.02", "--quiet", "--no-counterfactual",
                 "--param", "rules.limit_rule=BAND", "--param", "rules.band_ppm=5000"]) == 0
    assert "cannot act" not in capsys.readouterr().err


def test_a_market_of_several_venues_names_them_per_venue():
    from pathlib import Path

    from orderbook.market_scenario import load_market
    from orderbook.market_scenario import run as run_market

    ms = load_market(Path(__file__).parent.parent / "examples" / "two_venues.toml")
    first = ms.venues[0]
    changed = replace(first, scenario=replace(first.scenario, rules=replace(
        first.scenario.rules, band_ppm=7_000)))
    ms = replace(ms, venues=(changed, *ms.venues[1:]))
    with pytest.warns(InertSettingWarning, match=f"venue '{first.name}': rules.band_ppm = 7000"):
        result = run_market(ms)
    assert len(result.venues[first.name].summary["inert_settings"]) == 1
    assert all(not r.summary["inert_settings"] for name, r in result.venues.items()
               if name != first.name)
