"""Scenario TOML files: round trip, defaults, examples, and clear errors for bad files."""

from __future__ import annotations

import re
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from orderbook.config import (
    ConfigError,
    ConfigTypeError,
    UnknownKeyError,
    coerce_param,
    load_rules,
    load_scenario,
    loads_scenario,
    parse_values,
    save_scenario,
    scale_scenario,
    scenario_from_dict,
    scenario_to_dict,
    scenario_to_toml,
)
from orderbook.events import (
    AdlRanking,
    Deficit,
    LimitRule,
    MarginBasis,
    MarkRule,
    Side,
    Sizing,
    Trigger,
)
from orderbook.scenario import (
    DepthProfile,
    ExplicitBook,
    ExplicitPopulation,
    Liquidity,
    Population,
    Rules,
    Scenario,
    Shock,
    default_scenario,
    run,
    with_params,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# Files of several venues ([[venues]]) are tested in tests/test_market_scenario.py
MARKET_FILES = sorted(p for p in EXAMPLES.glob("*.toml")
                      if "venues" in tomllib.loads(p.read_text()))
SCENARIO_FILES = sorted(p for p in EXAMPLES.glob("*.toml")
                        if not p.name.startswith("rules_") and p not in MARKET_FILES)
RULES_FILES = sorted(EXAMPLES.glob("rules_*.toml"))


def _custom() -> Scenario:
    """A scenario that sets every kind of value away from its default."""
    return Scenario(
        tick_size="0.5", lot_size="0.01", quote_unit="0.005",
        book=ExplicitBook(bids=((999, 5), (998, 7)), asks=((1001, 4), (1003, 9))),
        population=ExplicitPopulation(side=(1, -1, 1), size=(3, 2, 1), entry=(1000, 1001, 999),
                                      collateral=(50, 60, 0)),
        liquidity=Liquidity(rate=0, half_life=0.0),
        rules=Rules(tiers=((1_000, 5_000, 10_000), (None, 10_000, 20_000)),
                    mark_rule=MarkRule.INDEX_CLAMPED, sizing=Sizing.RESTORE,
                    fraction_ppm=123_456, limit_rule=LimitRule.BANKRUPTCY, band_ppm=7_000,
                    round_cap=10**9, liquidation_fee_ppm=0, insurance_fund=0,
                    backstop_collateral=10**6, backstop_discount_ppm=1_000,
                    deficit=Deficit.SOCIALIZE, taker_fee_ppm=0, maker_fee_ppm=0,
                    liquidator=False),
        shock=Shock(sell=3, buy=1, index_path=(1000, 990, 980),
                    orders=((2, int(Side.SELL), 4), (3, int(Side.BUY), 1))),
        steps=7, seed=123, engine="reference",
    )


# ---------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("scenario", [
    default_scenario(), default_scenario(0.1), Scenario(), _custom(),
    replace(default_scenario(), book=DepthProfile(mid=5_000, growth=0.0),
            population=Population(count=5, leverage=(1.5, 2.5), size=(2, 3))),
], ids=["default", "default-0.1", "bare", "custom", "synthetic"])
def test_round_trip(scenario, tmp_path):
    assert scenario_from_dict(scenario_to_dict(scenario)) == scenario
    text = scenario_to_toml(scenario)
    assert loads_scenario(text) == scenario
    assert tomllib.loads(text) == scenario_to_dict(scenario)  # the dict is TOML-ready as is
    path = tmp_path / "s.toml"
    save_scenario(scenario, path)
    assert load_scenario(path) == scenario


def test_round_trip_keeps_types():
    s = loads_scenario(scenario_to_toml(_custom()))
    assert type(s.rules.sizing) is Sizing and s.rules.sizing is Sizing.RESTORE
    assert s.rules.tiers == ((1_000, 5_000, 10_000), (None, 10_000, 20_000))
    assert isinstance(s.book.bids, tuple) and isinstance(s.book.bids[0], tuple)
    assert s.rules.round_cap == 10**9 and s.quote_unit == "0.005"
    d = scenario_to_dict(_custom())
    assert d["rules"]["mark_rule"] == "INDEX_CLAMPED"
    assert d["shock"]["orders"] == [[2, "SELL", 4], [3, "BUY", 1]]
    assert d["rules"]["tiers"][1][0] == "none"
    assert scenario_to_dict(default_scenario())["quote_unit"] == "none"


def test_omitted_keys_keep_the_builtin_scenario():
    assert loads_scenario("") == default_scenario()
    s = loads_scenario("steps = 9\n[population]\ncount = 5\n[rules]\nsizing = 'fraction'\n")
    d = default_scenario()
    assert s.steps == 9 and s.seed == d.seed
    assert s.population == replace(d.population, count=5)
    assert s.population.leverage == (2.0, 75.0)        # built-in, not the dataclass's (3, 60)
    assert s.book == d.book and s.liquidity == d.liquidity and s.shock == d.shock
    assert s.rules == replace(d.rules, sizing=Sizing.FRACTION)
    # an explicit base replaces the built-in one
    assert scenario_from_dict({"steps": 3}, base=Scenario()) == replace(Scenario(), steps=3)


def test_explicit_book_and_population_from_toml():
    s = loads_scenario("""
        [book]
        bids = [[99, 5], [98, 3]]
        asks = [[101, 4]]
        [population]
        side = ["BUY", -1]
        size = [2, 3]
        entry = [100, 100]
        collateral = [10, 20]
    """)
    assert s.book == ExplicitBook(bids=((99, 5), (98, 3)), asks=((101, 4),))
    assert s.population == ExplicitPopulation(side=(1, -1), size=(2, 3), entry=(100, 100),
                                              collateral=(10, 20))


def test_numbers_for_sizes_and_floats_for_integers():
    s = loads_scenario('tick_size = 0.5\nlot_size = 1\n[population]\nleverage = [2, 10]\n')
    assert (s.tick_size, s.lot_size) == ("0.5", "1")
    assert s.population.leverage == (2.0, 10.0) and isinstance(s.population.leverage[0], float)


# ------------------------------------------------------------------------------ examples
def _missing_data(path: Path) -> Path | None:
    """The data file a scenario reads ([book] binance), if it is not there."""
    book = tomllib.loads(path.read_text()).get("book", {})
    data = path.parent / book["binance"] if "binance" in book else None
    return data if data is not None and not data.exists() else None


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.name)
def test_example_scenario_loads_and_runs(path):
    if missing := _missing_data(path):
        pytest.skip(f"{path.name} reads {missing}, which is not present (../shared)")
    scenario = load_scenario(path)
    assert 2_000 <= scenario.population.count <= 5_000
    small = with_params(scenario, {"population.count": 300, "steps": 15})
    result = run(small, counterfactual=False)
    assert result.summary["accounts"] > 0
    assert len(result.series) == 15


def _commands(path: Path) -> list[str]:
    text = path.read_text()
    return re.findall(r"examples/[\w.+-]+\.toml", text)


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.name)
def test_example_headers_name_existing_files(path):
    for name in _commands(path):
        assert (EXAMPLES.parent / name).exists(), name


@pytest.mark.parametrize("path", RULES_FILES, ids=lambda p: p.name)
def test_example_rules_load_and_run(path):
    users = [p for p in SCENARIO_FILES if f"examples/{path.name}" in p.read_text()]
    assert users, f"no example scenario uses {path.name}"
    scenario = load_scenario(users[0])
    rules = load_rules(path, scenario.rules)
    assert rules != scenario.rules or path.name == "rules_full.toml"
    small = with_params(replace(scenario, rules=rules), {"population.count": 300, "steps": 15})
    run(small, counterfactual=False)


def test_readme_lists_every_example():
    readme = (EXAMPLES / "README.md").read_text()
    for path in SCENARIO_FILES + RULES_FILES + MARKET_FILES:
        assert f"examples/{path.name}" in readme, path.name


def test_example_scenario_headers_show_their_command():
    for path in SCENARIO_FILES + MARKET_FILES:
        assert re.search(r"#\s+orderbook (run|compare|sweep) examples/" + re.escape(path.name),
                         path.read_text()), path.name


# ------------------------------------------------------------------- real depth as the book
BINANCE_FIXTURE = Path(__file__).resolve().parent / "data" / "binance_btcusdt_small.gz"


def test_a_binance_capture_becomes_the_scenario_book():
    s = scenario_from_dict({"book": {"binance": BINANCE_FIXTURE.name, "at": "snapshot",
                                     "within_ppm": 1_000}}, root=BINANCE_FIXTURE.parent)
    assert isinstance(s.book, ExplicitBook)
    # the fixture's snapshot: best bid 61800.2, best ask 61800.3 (ticks of 0.1)
    assert max(p for p, _ in s.book.bids) == 618002 and min(p for p, _ in s.book.asks) == 618003
    mid = (618002 + 618003) // 2
    assert all(abs(p - mid) <= mid // 1000 for p, _ in s.book.bids + s.book.asks)
    assert run(with_params(replace(s, steps=5), {"population.count": 200}),
               counterfactual=False).summary["accounts"] > 0


@pytest.mark.parametrize("book, kind, fragment", [
    ({"binance": "x.gz", "mid": 5}, KeyError, "'mid' cannot go with binance"),
    ({"binance": 5}, TypeError, "binance must be a file path"),
    ({"binance": "x.gz", "at": "noon"}, ValueError, "at must be"),
    ({"binance": "x.gz", "within_ppm": 0}, ValueError, "within_ppm must be"),
    ({"binance": "x.gz", "covered_only": "yes"}, TypeError, "covered_only must be"),
    ({"binance": "missing.gz"}, ConfigError, "binance = 'missing.gz': cannot read"),
])
def test_bad_binance_book_settings_name_the_key(book, kind, fragment):
    with pytest.raises(kind, match=re.escape(fragment)):
        scenario_from_dict({"book": book}, root=BINANCE_FIXTURE.parent)


# -------------------------------------------------------------------------------- errors
def _error(text: str, kind=ConfigError):
    with pytest.raises(kind) as info:
        loads_scenario(text)
    return str(info.value)


@pytest.mark.parametrize("text, kind, fragments", [
    ("[rules]\nband = 10000\n", KeyError, ["[rules]", "unknown key 'band'", "band_ppm"]),
    ("[rules]\nsizing = 'HALF'\n", ValueError,
     ["[rules] sizing = 'HALF' is not one of FULL, FRACTION, RESTORE"]),
    ("[rules]\nmark_rule = 3\n", TypeError, ["[rules] mark_rule = 3", "LAST"]),
    ("[rules]\ndeficit = 'BAIL_OUT'\n", ValueError, ["deficit = 'BAIL_OUT'", "ADL, SOCIALIZE"]),
    ("[rules]\nlimit = 'band'\nband_ppm = 2000000\n", ValueError,
     ["[rules] band_ppm = 2000000", "[0, 1000000]"]),
    ('steps = "ten"\n', TypeError, ["steps = 'ten'", "must be an integer"]),
    ("steps = 0\n", ValueError, ["steps = 0"]),
    ("seed = 1.5\n", TypeError, ["seed = 1.5", "integer"]),
    ("[rules]\ninsurance_fund = 1e11\n", TypeError, ["insurance_fund = 100000000000.0",
                                                     "without a decimal point"]),
    ("[rules]\nliquidator = 1\n", TypeError, ["liquidator = 1", "true or false"]),
    ("[rules]\nround_cap = 0\n", ValueError, ["round_cap = 0", '"none"']),
    ("[rules]\ntiers = [[100, 1000, 2000], [50, 2000, 4000]]\n", ValueError,
     ["[rules] tiers = [[100, 1000, 2000], [50, 2000, 4000]]", "must exceed"]),
    ("[rules]\ntiers = [['none', 1000, 2000], [50, 2000, 4000]]\n", ValueError,
     ["tiers", "not the last tier"]),
    ("[rules]\ntiers = [[100, 3000, 2000]]\n", ValueError, ["tiers", "exceeds initial_ppm"]),
    ("[rules]\ntiers = [[100, 1000]]\n", ValueError, ["tiers", "tier [0] = [100, 1000]"]),
    ("[rules]\ntiers = [['lots', 1000, 2000]]\n", TypeError, ["tiers", "'lots'"]),
    ("band_ppm = 5\n", KeyError, ["unknown top-level key 'band_ppm'", "[rules]"]),
    ("[ruels]\nsizing = 'FULL'\n", KeyError, ["'ruels'"]),
    ("rules = 5\n", TypeError, ["[rules] must be a table", "5"]),
    ("engine = 'fast'\n", ValueError, ["engine = 'fast'", "compiled, reference"]),
    ("tick_size = '-1'\n", ValueError, ["tick_size = '-1'", "positive"]),
    ("quote_unit = '0.07'\n", ValueError, ["quote_unit = '0.07'", "whole number"]),
    ("[book]\nmid = 'high'\n", TypeError, ["[book] mid = 'high'"]),
    ("[book]\ndepth = 3\n", KeyError, ["[book] unknown key 'depth'", "touch_qty", "bids"]),
    ("[book]\nbids = [[10, 1]]\nasks = [[9, 1]]\n", ValueError, ["[book]", "cross"]),
    ("[book]\nbids = [[10, 1]]\nasks = [[11, 1]]\nmid = 5\n", KeyError,
     ["[book] key 'mid'", "bids"]),
    ("[book]\nbids = [[10, 0]]\nasks = [[11, 1]]\n", ValueError, ["[book] bids", "[10, 0]"]),
    ("[book]\nbids = [[10, 1]]\n", ValueError, ["[book]", "both bids and asks"]),
    ("[population]\nlong_fraction = 1.5\n", ValueError, ["[population] long_fraction = 1.5"]),
    ("[population]\nleverage = [50, 2]\n", ValueError, ["leverage = [50, 2]", "low <= high"]),
    ("[population]\nleverage = [0, 2]\n", ValueError, ["leverage = [0, 2]"]),
    ("[population]\nsize = [1, 2, 3]\n", ValueError, ["size = [1, 2, 3]", "2 values"]),
    ("[population]\ncount = -1\n", ValueError, ["[population] count = -1"]),
    ("[population]\nside = [1]\n", ValueError, ["[population]", "missing size, entry"]),
    ("[population]\nside = [1, 0]\nsize = [1, 1]\nentry = [5, 5]\ncollateral = [1, 1]\n",
     ValueError, ["[population] side = [1, 0]", "element [1] = 0"]),
    ("[population]\nside = [1]\nsize = [1, 1]\nentry = [5]\ncollateral = [1]\n", ValueError,
     ["[population]", "same length"]),
    ("[liquidity]\nhalf_life = 'slow'\n", TypeError, ["[liquidity] half_life = 'slow'"]),
    ("[shock]\norders = [[1, 'UP', 3]]\n", ValueError, ["[shock] orders", "'UP'"]),
    ("[shock]\nsell = -5\n", ValueError, ["[shock] sell = -5"]),
])
def test_bad_values_are_named(text, kind, fragments):
    message = _error(text, kind)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert "\n" not in message


def test_error_kinds_are_also_value_errors():
    assert issubclass(UnknownKeyError, KeyError) and issubclass(UnknownKeyError, ValueError)
    assert issubclass(ConfigTypeError, TypeError) and issubclass(ConfigTypeError, ValueError)
    with pytest.raises(UnknownKeyError) as info:
        loads_scenario("[rules]\nband = 1\n")
    assert str(info.value).startswith("[rules] unknown key 'band'")  # no KeyError quoting


def test_file_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[rules]\nsizing = 'HALF'\n")
    with pytest.raises(ValueError, match=r"bad\.toml: \[rules\] sizing = 'HALF' is not one of"):
        load_scenario(path)
    path.write_text("steps = [\n")
    with pytest.raises(ValueError, match=r"bad\.toml: invalid TOML"):
        load_scenario(path)
    with pytest.raises(ValueError, match=r"missing\.toml: no such file"):
        load_scenario(tmp_path / "missing.toml")


def test_load_rules(tmp_path):
    base = Rules(insurance_fund=5)
    path = tmp_path / "r.toml"
    path.write_text("[rules]\nlimit_rule = 'BAND'\nband_ppm = 10_000\n")
    assert load_rules(path, base) == replace(base, limit_rule=LimitRule.BAND, band_ppm=10_000)
    path.write_text("sizing = 'FRACTION'\n")              # keys at the top level work too
    assert load_rules(path, base) == replace(base, sizing=Sizing.FRACTION)
    assert load_rules(path).insurance_fund == default_scenario().rules.insurance_fund
    path.write_text("[rules]\nsizing = 'FULL'\n[book]\nmid = 5\n")
    with pytest.raises(KeyError, match="only a \\[rules\\] table"):
        load_rules(path)
    path.write_text("[rules]\nsizing = 'HALF'\n")
    with pytest.raises(ValueError, match=r"r\.toml: \[rules\] sizing = 'HALF'"):
        load_rules(path)



def _reaches_the_engine(tmp_path, key, text, value, param, bad_text, bad_message):
    # [rules] key = text in a rules file and --param rules.key=param give value, which both
    # engines of a built scenario hold; key = bad_text is refused with bad_message.
    from orderbook._market import Market

    path = tmp_path / "r.toml"
    path.write_text(f"[rules]\n{key} = {text}\n")
    rules = load_rules(path)
    assert getattr(rules, key) == value
    assert coerce_param(default_scenario(), f"rules.{key}", param) == value
    for engine in ("compiled", "reference"):
        scenario = replace(default_scenario(0.001), rules=rules, engine=engine)
        assert getattr(Market(scenario).engine, key) == value
    path.write_text(f"[rules]\n{key} = {bad_text}\n")
    with pytest.raises(ValueError, match=bad_message):
        load_rules(path)


@pytest.mark.parametrize("key, value", [("fraction_above", 100_000),
                                        ("takeover_below_ppm", 666_667),
                                        ("cooldown_rounds", 2),
                                        ("increment", 2_000)])
def test_a_venue_liquidation_number_is_a_rule_setting_that_reaches_the_engine(tmp_path, key,
                                                                              value):
    assert getattr(Rules(), key) == 0
    _reaches_the_engine(tmp_path, key, f"{value:_}", value, value, "-1", f"{key} = -1")


@pytest.mark.parametrize("key, default, chosen", [
    ("adl_ranking", AdlRanking.BITMEX, AdlRanking.PNL_RATIO),
    ("trigger", Trigger.BELOW, Trigger.AT_OR_BELOW),
    ("mm_basis", MarginBasis.MARK, MarginBasis.ENTRY),
    ("sizing", Sizing.FULL, Sizing.TIER_STEP),
    ("mark_rule", MarkRule.LAST, MarkRule.LAST_CLAMPED),
])
def test_a_venue_convention_is_a_rule_setting_that_reaches_the_engine(tmp_path, key, default,
                                                                       chosen):
    assert getattr(Rules(), key) is default
    _reaches_the_engine(tmp_path, key, f"'{chosen.name}'", chosen, chosen.name.lower(),
                        "'LOUDEST'", f"{key} = 'LOUDEST' is not one of {default.name}")


def test_incremental_without_an_increment_is_refused_when_the_scenario_is_built(tmp_path):
    # sizing and increment are separate keys (a sweep or --param may set them in either
    # order), so the pair is checked where the engine is built: its ValueError names it.
    from orderbook._market import Market

    path = tmp_path / "r.toml"
    path.write_text("[rules]\nsizing = 'INCREMENTAL'\n")
    from_file = replace(default_scenario(0.001), rules=load_rules(path))
    from_param = with_params(default_scenario(0.001), {"rules.sizing": "INCREMENTAL"})
    for scenario in (from_file, from_param):
        for engine in ("compiled", "reference"):
            with pytest.raises(ValueError, match="increment must be >= 1 quote units under "
                                                 "Sizing.INCREMENTAL, got 0"):
                Market(replace(scenario, engine=engine))
    stepped = with_params(from_param, {"rules.increment": 2_000})
    assert Market(stepped).engine.increment == 2_000


# ------------------------------------------------------------------- parameters, scaling
def test_parse_values():
    assert parse_values("0,10000,20000") == [0, 10_000, 20_000]
    assert parse_values("[2,50], [2.5,100]") == [[2, 50], [2.5, 100]]
    assert parse_values('FULL,"FRACTION",none') == ["FULL", "FRACTION", "none"]
    assert parse_values("1_000, 0.5, true") == [1_000, 0.5, True]
    with pytest.raises(ValueError):
        parse_values("1,,2")
    with pytest.raises(ValueError):
        parse_values("[1,2")


def test_coerce_param():
    s = default_scenario()
    assert coerce_param(s, "rules.sizing", "fraction") is Sizing.FRACTION
    assert coerce_param(s, "population.leverage", [2, 50]) == (2.0, 50.0)
    assert coerce_param(s, "rules.round_cap", "none") is None
    assert coerce_param(s, "steps", 10) == 10
    with pytest.raises(KeyError, match="unknown key 'band'"):
        coerce_param(s, "rules.band", 1)
    with pytest.raises(ValueError, match="sizing = 'HALF'"):
        coerce_param(s, "rules.sizing", "HALF")
    with pytest.raises(KeyError, match="unknown parameter"):
        coerce_param(s, "market.band", 1)
    with pytest.raises(KeyError, match="is a table"):
        coerce_param(s, "rules", 1)


def test_the_older_key_limit_is_read_as_limit_rule(tmp_path):
    # Files and parameters written before the key was renamed keep working; what is written back
    # uses the new name.
    base = Rules(insurance_fund=5)
    path = tmp_path / "r.toml"
    path.write_text("[rules]\nlimit = 'BAND'\nband_ppm = 10_000\n")
    assert load_rules(path, base) == replace(base, limit_rule=LimitRule.BAND, band_ppm=10_000)
    scenario = loads_scenario("[rules]\nlimit = 'BANKRUPTCY'\n")
    assert scenario.rules.limit_rule is LimitRule.BANKRUPTCY
    assert scenario_to_dict(scenario)["rules"]["limit_rule"] == "BANKRUPTCY"
    assert "limit" not in scenario_to_dict(scenario)["rules"]
    assert "limit_rule = \"BANKRUPTCY\"" in scenario_to_toml(scenario)
    assert coerce_param(default_scenario(), "rules.limit", "band") is LimitRule.BAND
    assert coerce_param(default_scenario(), "rules.limit_rule", "band") is LimitRule.BAND


def test_an_older_key_is_named_as_written_in_errors():
    with pytest.raises(ValueError, match=r"\[rules\] limit = 'STOP' is not one of MARKET"):
        loads_scenario("[rules]\nlimit = 'STOP'\n")
    with pytest.raises(ValueError, match=r"\[rules\] limit = 'STOP' is not one of MARKET"):
        coerce_param(default_scenario(), "rules.limit", "STOP")


def test_a_key_and_its_older_name_together_are_refused():
    with pytest.raises(ConfigError, match=r"\[rules\] limit is the older name of limit_rule"):
        loads_scenario("[rules]\nlimit = 'BAND'\nlimit_rule = 'BAND'\n")


def test_scale_matches_default_scenario():
    for scale in (0.1, 0.5, 2.0):
        assert scale_scenario(default_scenario(), scale) == default_scenario(scale)
    assert scale_scenario(_custom(), 1.0) == _custom()
    with pytest.raises(ValueError, match="explicit"):
        scale_scenario(_custom(), 0.5)
    with pytest.raises(ValueError):
        scale_scenario(default_scenario(), 0)
    capped = replace(default_scenario(), rules=Rules(round_cap=1_000))
    assert scale_scenario(capped, 0.5).rules.round_cap == 500


# ------------------------------------------------------------------------- damaged files
@pytest.mark.parametrize("text", ["", "# only a comment\n\n", "\r\n"])
def test_a_scenario_file_that_sets_nothing_is_refused(tmp_path, text):
    path = tmp_path / "blank.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"blank\.toml: the scenario file sets nothing"):
        load_scenario(path)


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="no /dev/null on this system")
def test_dev_null_as_a_scenario_is_refused_not_the_builtin_scenario():
    with pytest.raises(ConfigError, match="/dev/null: the scenario file sets nothing"):
        load_scenario("/dev/null")


def test_a_rules_file_that_sets_nothing_is_refused(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match=r"rules\.toml: the rules file sets nothing"):
        load_rules(path)


def test_bytes_that_are_not_utf8_name_the_file_and_line(tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes(b"steps = 5\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin\.toml: line 2: byte b'\\xe9' is not UTF-8"):
        load_scenario(path)


def test_a_directory_is_a_config_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path}: cannot read")):
        load_scenario(tmp_path)


@pytest.mark.parametrize("text, fragment", [
    ("steps = 1\nsteps = 2\n", "invalid TOML: Cannot overwrite a value"),
    ("steps = " + "9" * 5000 + "\n", "invalid TOML: Exceeds the limit"),
    ("seed = " + "[" * 5000 + "]" * 5000 + "\n",
     "invalid TOML: arrays or tables nested too deeply"),
    ("[liquidity]\nhalf_life = inf\n", "[liquidity] half_life = inf must be a finite number"),
    ("[liquidity]\nhalf_life = 1e400\n", "[liquidity] half_life = inf must be a finite number"),
    ("[liquidity]\nhalf_life = 1" + "0" * 400 + "\n", "too large for a float"),
    ("[population]\nleverage = [2, inf]\n", "element [1] = inf must be a finite number"),
    ("[shock]\norders = [[1" + "0" * 30 + ", 'SELL', 1]]\n", "must be in [0, 9223372036854775807]"),
    ("[rules]\ninsurance_fund = 1" + "0" * 30 + "\n", "insurance_fund = 1000000000000000000000"),
    ("steps = 'ten'\n", "steps = 'ten' must be an integer"),
], ids=["duplicate-key", "5000-digit-int", "nested-5000", "inf", "1e400", "huge-int-for-float",
        "inf-leverage", "huge-order-step", "huge-fund", "string-for-int"])
def test_damaged_values_are_config_errors_naming_the_key(text, fragment):
    with pytest.raises(ConfigError) as info:
        loads_scenario(text)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_a_scale_past_what_a_file_may_hold_is_a_config_error_naming_the_value():
    with pytest.raises(ConfigError, match=r"scale 1e\+308 makes \[book\] touch_qty 60 x 1e\+308"):
        scale_scenario(default_scenario(), 1e308)
    with pytest.raises(ConfigError, match=r"\[population\] count 20,000 x 1e\+06 = "
                                          r"20,000,000,000, which must be in \[0, 100000000\]"):
        scale_scenario(default_scenario(), 1e6)


def test_a_damaged_binance_capture_in_a_scenario_is_a_config_error_naming_it(tmp_path):
    packed = BINANCE_FIXTURE.read_bytes()
    (tmp_path / "cut.gz").write_bytes(packed[:len(packed) // 2])
    with pytest.raises(ConfigError, match=r"\[book\] binance = 'cut\.gz': .*damaged gzip stream"):
        scenario_from_dict({"book": {"binance": "cut.gz"}}, root=tmp_path)


def test_a_binance_capture_without_a_book_is_a_config_error(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"binance = 'empty\.txt': .*no usable snapshot"):
        scenario_from_dict({"book": {"binance": "empty.txt", "at": "snapshot"}}, root=tmp_path)


def test_a_binance_book_with_one_side_is_a_config_error(tmp_path):
    (tmp_path / "bids.txt").write_text(
        '5 {"lastUpdateId": 1, "bids": [["100.0", "1.000"]], "asks": []}\n')
    with pytest.raises(ConfigError, match=r"binance = 'bids\.txt': the book at 'end' has 1 bid "
                                          r"and 0 ask levels"):
        scenario_from_dict({"book": {"binance": "bids.txt"}}, root=tmp_path)


def test_a_binance_book_time_past_int64_is_the_end_of_the_capture():
    end = scenario_from_dict({"book": {"binance": BINANCE_FIXTURE.name}},
                             root=BINANCE_FIXTURE.parent)
    late = scenario_from_dict({"book": {"binance": BINANCE_FIXTURE.name, "at": 10**30}},
                              root=BINANCE_FIXTURE.parent)
    assert late.book == end.book
