"""Strategy files: examples load, mistakes come back together, each with a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr.engine.strategy import (
    DEFAULT_COMMISSION,
    DEFAULT_SLIPPAGE,
    Action,
    StrategyError,
    builtin_strategy_names,
    builtin_strategy_text,
    load_strategy,
    parse_rule,
    validate_strategy_text,
)

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
name: t
data: {symbol: EURUSD, timeframe: 1h}
indicators:
  - id: rsi
    type: rsi
    params: {period: 14}
fuzzy_sets:
  rsi:
    input: rsi
    sets:
      low: {shape: left_shoulder, points: [30, 40]}
      high: {shape: right_shoulder, points: [60, 70]}
decisions:
  fuzzy_rules:
    rules:
      - IF rsi IS low THEN BUY
      - {rule: IF rsi IS high THEN SELL, weight: 0.5}
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(StrategyError) as info:
        validate_strategy_text(text)
    return info.value.problems


def test_root_strategies_equal_packaged_copies() -> None:
    names = builtin_strategy_names()
    assert len(names) >= 3
    for name in names:
        root_copy = ROOT / "strategies" / f"{name}.yaml"
        assert root_copy.read_text(encoding="utf-8") == builtin_strategy_text(name), name


def test_load_strategy_accepts_path_name_and_text() -> None:
    by_name = load_strategy("sma_crossover")
    by_path = load_strategy(ROOT / "strategies" / "sma_crossover.yaml")
    by_text = load_strategy(builtin_strategy_text("sma_crossover"))
    assert by_name == by_path == by_text
    assert by_name.data.timeframe == "1h"
    assert by_name.indicator_params("sma_slow").period == 30  # type: ignore[attr-defined]
    assert by_name.warmup_bars() == 31


def test_validate_defaults_costs_from_one_place() -> None:
    strategy = validate_strategy_text(GOOD)
    assert strategy.costs.commission == DEFAULT_COMMISSION
    assert strategy.costs.slippage == DEFAULT_SLIPPAGE
    assert [r.action for r in strategy.parsed_rules] == [Action.BUY, Action.SELL]
    assert strategy.parsed_rules[1].weight == 0.5


def test_validate_misspelt_parameter_suggests_name() -> None:
    text = GOOD.replace("params: {period: 14}", "params: {perod: 14}")
    (problem,) = _problems(text)
    assert "indicators[0] (id rsi)" in problem
    assert "unknown parameter 'perod'" in problem and "did you mean 'period'?" in problem


def test_validate_unknown_indicator_suggests_name() -> None:
    (problem,) = _problems(GOOD.replace("type: rsi", "type: rsl"))
    assert "unknown indicator 'rsl' (did you mean 'rsi'?)" in problem


def test_validate_unknown_key_suggests_name_and_lists_allowed() -> None:
    (problem,) = _problems(GOOD.replace("name: t", "name: t\ndescripton: x"))
    assert "unknown key 'descripton' (did you mean 'description'?)" in problem
    assert "allowed keys: name, description" in problem


def test_validate_nested_unknown_key_names_its_place() -> None:
    text = GOOD.replace(
        "{rule: IF rsi IS high THEN SELL, weight: 0.5}",
        "{rule: IF rsi IS high THEN SELL, wieght: 0.5}",
    )
    (problem,) = _problems(text)
    assert problem.startswith("decisions.fuzzy_rules.rules[1]: unknown key 'wieght'")
    assert "did you mean 'weight'?" in problem


def test_validate_rule_names_must_exist() -> None:
    text = GOOD.replace("IF rsi IS low THEN BUY", "IF rs IS lo THEN BUY").replace(
        "IF rsi IS high THEN SELL", "IF rsi IS hihg THEN SELL"
    )
    problems = _problems(text)
    assert len(problems) == 2
    assert "unknown fuzzy variable 'rs' (did you mean 'rsi'?)" in problems[0]
    assert "has no set 'hihg' (did you mean 'high'?)" in problems[1]


def test_validate_collects_every_problem_at_once() -> None:
    text = (
        GOOD.replace("type: rsi", "type: rsl")
        .replace("timeframe: 1h", "timeframe: 1hr")
        .replace("input: rsi", "input: rsii")
        .replace("THEN BUY", "THEN BYU")
    )
    problems = _problems(text)
    joined = "\n".join(problems)
    assert "data.timeframe: unknown timeframe '1hr'" in joined
    assert "unknown indicator 'rsl'" in joined
    assert "fuzzy_sets.rsi.input: 'rsii' is not an indicator output" in joined
    assert "unknown action 'BYU'; use BUY, SELL or CLOSE" in joined
    assert len(problems) == 4


def test_validate_bad_yaml_and_bad_set_shape() -> None:
    (problem,) = _problems("name: [unclosed\n")
    assert problem.startswith("not valid YAML at line")
    (problem,) = _problems(GOOD.replace("points: [30, 40]", "points: [40, 30]"))
    assert "left_shoulder points must be in increasing order" in problem


def test_validate_crossover_reference_must_exist() -> None:
    text = builtin_strategy_text("sma_crossover").replace("slow: sma_slow", "slow: sma_slwo")
    (problem,) = _problems(text)
    assert "decisions.signals[0].crossover.slow: 'sma_slwo' is not an indicator output" in problem
    assert "did you mean 'sma_slow'?" in problem


def test_load_strategy_unknown_example_suggests_name() -> None:
    with pytest.raises(StrategyError, match="did you mean 'sma_crossover'"):
        load_strategy("sma_crosover")


def test_parse_rule_forms() -> None:
    rule = parse_rule("if rsi is not high or trend IS up then close", 0.7)
    assert rule.connective == "OR" and rule.action is Action.CLOSE and rule.weight == 0.7
    assert rule.conditions[0].negated and not rule.conditions[1].negated
    with pytest.raises(ValueError, match="mixes AND and OR"):
        parse_rule("IF a IS x AND b IS y OR c IS z THEN BUY")
    with pytest.raises(ValueError, match="cannot parse rule"):
        parse_rule("rsi IS low THEN BUY")


@pytest.mark.parametrize(
    "text",
    [*(builtin_strategy_text(n) for n in builtin_strategy_names()), "name: [unclosed\n",
     "a: 1\x00b", "a: 1\n a: 2", "a: !!python/object:os.system x", "a: .inf\nb: 1_000"],
)  # fmt: skip
def test_yaml_loader_reads_like_pure_python_safe_load(text: str) -> None:
    """Strategies are parsed by libyaml's safe loader: the same values, and an error of the
    same kind at the same place (libyaml words some problems differently)."""
    import yaml

    from ktrdr.engine.strategy.loader import load_yaml

    def parsed(load: object) -> object:
        try:
            return load()  # type: ignore[operator]
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            return type(exc).__name__, mark and (mark.line, mark.column)

    assert parsed(lambda: load_yaml(text)) == parsed(lambda: yaml.safe_load(text))
