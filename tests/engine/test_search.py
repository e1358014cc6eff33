"""Search spaces: paths, grids, seeded samples, constraints and actionable errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ktrdr.engine.errors import StrategyError
from ktrdr.engine.strategy import builtin_strategy_text, validate_strategy_text
from ktrdr.engine.strategy.constraints import ConstraintError, parse_constraint
from ktrdr.engine.strategy.paths import parse_override
from ktrdr.engine.strategy.search import (
    SearchParameter,
    SearchSpace,
    apply_overrides,
    get_path,
    set_path,
    strategy_document,
)

SMA = builtin_strategy_text("sma_crossover")
RSI = builtin_strategy_text("rsi_fuzzy")
FAST = "indicators.sma_fast.params.period"
SLOW = "indicators.sma_slow.params.period"


def with_search(base: str, search: str) -> str:
    return base + "search:\n" + "".join(f"  {line}\n" for line in search.strip().splitlines())


def space_of(base: str, search: str) -> SearchSpace:
    return SearchSpace.from_strategy(validate_strategy_text(with_search(base, search)))


def problems_of(base: str, search: str) -> str:
    with pytest.raises(StrategyError) as info:
        space_of(base, search)
    return "\n".join(info.value.problems)


TWO_SMA = f"""
parameters:
  {FAST}: {{range: [10, 30, 10]}}
  {SLOW}: {{values: [20, 40]}}
constraints:
  - sma_fast.period < sma_slow.period
"""


def test_grid_applies_constraints_in_declaration_order() -> None:
    space = space_of(SMA, TWO_SMA)
    assert space.grid() == [
        {FAST: 10, SLOW: 20},
        {FAST: 10, SLOW: 40},
        {FAST: 20, SLOW: 40},
        {FAST: 30, SLOW: 40},
    ]
    assert space.grid_size == 4
    assert space.raw_size == 6
    assert space.is_feasible({FAST: 20, SLOW: 40})
    assert not space.is_feasible({FAST: 20, SLOW: 20})
    assert not space.is_feasible({FAST: 20})  # a parameter missing


def test_strategy_without_search_section_has_none() -> None:
    assert validate_strategy_text(SMA).search is None
    with pytest.raises(StrategyError, match="no search: section"):
        SearchSpace.from_strategy(validate_strategy_text(SMA))


def test_sample_is_seeded_distinct_and_feasible() -> None:
    space = space_of(
        SMA,
        f"""
parameters:
  {FAST}: {{range: [2, 60]}}
  {SLOW}: {{range: [10, 200, 2]}}
  costs.commission: {{range: [0.0, 0.002]}}
constraints: ["sma_fast.period * 2 <= sma_slow.period"]
""",
    )
    first = space.sample(300, seed=11)
    assert first == space.sample(300, seed=11)
    assert first != space.sample(300, seed=12)
    assert len({tuple(c.values()) for c in first}) == 300
    assert all(c[FAST] * 2 <= c[SLOW] for c in first)
    assert all(isinstance(c[FAST], int) and 0.0 <= c["costs.commission"] <= 0.002 for c in first)


def test_sample_of_a_small_grid_returns_each_feasible_combination_once() -> None:
    space = space_of(SMA, TWO_SMA)
    drawn = space.sample(10, seed=3)
    assert sorted(map(str, drawn)) == sorted(map(str, space.grid()))


def test_range_and_log_range_values() -> None:
    def values(spec: str) -> tuple[object, ...] | None:
        space = space_of(SMA, f"parameters:\n  costs.commission: {spec}")
        return space.parameters[0].values

    assert values("{range: [0.0, 0.003, 0.001]}") == (0.0, 0.001, 0.002, 0.003)
    assert values("{log_range: [0.0001, 0.01, 3]}") == (0.0001, 0.001, 0.01)
    assert values("{values: [0.001, 0.002, 0.001]}") == (0.001, 0.002)
    p = space_of(SMA, f"parameters:\n  {FAST}: {{log_range: [2, 64, 6]}}").parameters[0]
    assert p.kind == "int" and p.values == (2, 4, 8, 16, 32, 64)
    cont = space_of(SMA, "parameters:\n  costs.slippage: {log_range: [0.0001, 0.01]}")
    assert cont.parameters[0] == SearchParameter(
        "costs.slippage", "float", low=0.0001, high=0.01, log=True
    )


def test_apply_equals_the_file_with_the_values_written_in() -> None:
    space = space_of(SMA, TWO_SMA)
    strategy = validate_strategy_text(with_search(SMA, TWO_SMA))
    applied = space.apply(strategy, {FAST: 20, SLOW: 40})
    by_hand = validate_strategy_text(
        SMA.replace("period: 10}", "period: 20}").replace("period: 30}", "period: 40}")
    )
    assert strategy_document(applied) == strategy_document(by_hand)
    assert applied.indicator_params("sma_fast").period == 20  # type: ignore[attr-defined]
    assert applied.search is None
    # A raw document works too, and the input is never changed.
    doc = strategy_document(by_hand)
    assert space.apply(doc, {FAST: 30}).indicator_params("sma_fast").period == 30  # type: ignore[attr-defined]
    assert get_path(doc, FAST) == 20


def test_paths_reach_fuzzy_points_thresholds_costs_and_defaults() -> None:
    doc = strategy_document(validate_strategy_text(RSI))
    assert get_path(doc, "fuzzy_sets.rsi.sets.oversold.points.1") == 45
    assert get_path(doc, "decisions.fuzzy_rules.threshold") == 0.5
    assert get_path(doc, "indicators.rsi.params.source") == "close"  # a default
    assert get_path(doc, "indicators.1.params.period") == 50  # by position
    changed = set_path(doc, "fuzzy_sets.rsi.sets.oversold.points.1", 40.0)
    assert get_path(changed, "fuzzy_sets.rsi.sets.oversold.points") == [35, 40.0]
    assert get_path(doc, "fuzzy_sets.rsi.sets.oversold.points") == [35, 45]
    s = apply_overrides(validate_strategy_text(RSI), {"position_sizing.fraction": 0.5})
    assert s.position_sizing.fraction == 0.5


def test_unknown_path_says_did_you_mean() -> None:
    text = problems_of(SMA, "parameters:\n  indicators.sma_fst.params.period: {values: [5]}")
    assert "no item 'sma_fst' in indicators (did you mean 'sma_fast'?)" in text
    text = problems_of(SMA, "parameters:\n  indicators.sma_fast.params.perod: {values: [5]}")
    assert "(did you mean 'period'?)" in text
    text = problems_of(SMA, "parameters:\n  indicators.sma_fast.params: {values: [5]}")
    assert "is a section, not a value" in text


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{range: [50, 5, 5]}", "empty range: lo 50 is above hi 5; swap them"),
        ("{range: [5, 50, 0]}", "range step must be > 0, got 0"),
        ("{range: [5, 50], values: [3]}", "give exactly one of range"),
        ("{log_range: [0, 50, 4]}", "log_range needs lo > 0"),
        ("{range: [0, 20, 5]}", "value 0 is not valid"),
    ],
)
def test_bad_spaces_are_strategy_errors_with_a_fix(spec: str, message: str) -> None:
    assert message in problems_of(SMA, f"parameters:\n  {FAST}: {spec}")


def test_bad_constraints_are_strategy_errors_with_a_fix() -> None:
    text = problems_of(
        SMA, f"parameters:\n  {FAST}: {{values: [5]}}\nconstraints: ['sma_fats.period < 9']"
    )
    assert "'sma_fats.period' is not a searched parameter (did you mean 'sma_fast.period'?)" in text
    # A typo in a parameter's path is named first, not as a constraint that names the
    # parameter correctly (its "did you mean" pointed the constraint at the typo).
    typo = FAST.replace("sma_fast", "sma_fst")
    text = problems_of(
        SMA, f"parameters:\n  {typo}: {{values: [5]}}\nconstraints: ['sma_fast.period < 9']"
    )
    assert "no item 'sma_fst' in indicators (did you mean 'sma_fast'?)" in text
    assert "constraints" not in text
    text = problems_of(SMA, f"parameters:\n  {FAST}: {{values: [5]}}\nconstraints: ['x <']")
    assert "ends too early" in text or "is not a searched parameter" in text
    text = problems_of(
        SMA, f"parameters:\n  {FAST}: {{range: [5, 9]}}\nconstraints: ['sma_fast.period > 9']"
    )
    assert "leave no combination of the 5 in the grid" in text
    continuous = (
        f"parameters:\n  {FAST}: {{range: [5, 9]}}\n  costs.commission: {{range: [0, 0.01]}}"
    )
    with pytest.raises(StrategyError, match="continuous, so it has no grid"):
        space_of(SMA, continuous).grid()


def test_values_valid_only_in_feasible_combinations_pass() -> None:
    # MACD needs fast < slow; the constraint keeps the sweep inside what validates.
    text = SMA.replace("type: sma\n    params: {period: 10}", "type: macd\n    params: {}")
    space = space_of(
        text,
        """
parameters:
  indicators.sma_fast.params.fast_period: {range: [10, 40, 10]}
  indicators.sma_fast.params.slow_period: {values: [20, 50]}
constraints: [sma_fast.fast_period < sma_fast.slow_period]
""",
    )
    assert space.grid_size == 5
    unconstrained = "parameters:\n  indicators.sma_fast.params.fast_period: {range: [10, 40, 10]}"
    assert "fast_period (30) must be smaller than slow_period (26)" in problems_of(
        text, unconstrained
    )


def test_constraint_grammar() -> None:
    def holds(text: str, **values: object) -> bool:
        return parse_constraint(text, lambda n: n).holds(values)

    assert holds("a < b < c", a=1, b=2, c=3)
    assert not holds("a < b < c", a=1, b=3, c=3)
    assert holds("(a + 1) * 2 == b and not c != 'x'", a=1, b=4, c="x")
    assert holds("a % 2 == 0 or -a > 3", a=-5)
    assert not holds("a / b > 1", a=1, b=0)  # division by zero is simply infeasible
    assert holds("p.points.1 >= 2.5e0", **{"p.points.1": 3})
    with pytest.raises(ConstraintError, match="cannot read"):
        parse_constraint("a < b; import os", lambda n: n)
    with pytest.raises(ConstraintError, match="unexpected"):
        parse_constraint("a < b c", lambda n: n)


def test_optuna_distribution_matches_the_space() -> None:
    optuna = pytest.importorskip("optuna")
    extra = "  costs.slippage: {log_range: [0.0001, 0.01]}\nconstraints:"
    space = space_of(SMA, TWO_SMA.replace("constraints:", extra))
    dists = [p.optuna_distribution() for p in space.parameters]
    assert dists[0] == optuna.distributions.IntDistribution(10, 30, step=10)
    assert dists[1] == optuna.distributions.CategoricalDistribution((20, 40))
    assert dists[2] == optuna.distributions.FloatDistribution(0.0001, 0.01, log=True)


def test_search_and_objectives_load_no_numba() -> None:
    # The backend validates spaces and objectives at submission; it must not load numba.
    probe = (
        "import sys, ktrdr.engine.strategy.search, ktrdr.engine.campaigns.objectives; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'torch')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_overrides_parse_as_yaml_values() -> None:
    assert parse_override("indicators.rsi.params.period=21") == ("indicators.rsi.params.period", 21)
    assert parse_override("position_mode = long_short") == ("position_mode", "long_short")
    assert parse_override("fuzzy_sets.rsi.sets.low.points=[30, 40]")[1] == [30, 40]
    with pytest.raises(StrategyError, match="PATH=VALUE"):
        parse_override("indicators.rsi.params.period")
