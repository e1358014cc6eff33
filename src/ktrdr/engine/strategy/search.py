"""Parameter spaces from a strategy's ``search:`` section, and strategy paths.

A strategy file may say::

    search:
      parameters:
        indicators.sma_fast.params.period: {range: [5, 50, 5]}
        indicators.sma_slow.params.period: {values: [50, 100, 200]}
        costs.commission: {log_range: [0.0001, 0.01, 5]}
      constraints:
        - sma_fast.period < sma_slow.period

**Paths** address any value of the strategy by dotted segments (``ktrdr.engine.strategy.paths``,
re-exported here: ``get_path`` / ``set_path`` / ``apply_overrides`` are the one
implementation, ``--set`` overrides use it too).

**Names in constraints**: a parameter's full path, or for indicator parameters the short
form ``<id>.<param>`` (``sma_fast.period``). Grammar: ``ktrdr.engine.strategy.constraints``.

**Spaces**: see ``ParameterSpec`` (schema). ``SearchSpace.from_strategy`` checks the whole
section (paths, constraint names, that the values pass strategy validation, that some
combination is feasible) and raises one ``StrategyError`` listing every problem.
A parameter set is a ``dict`` {path: value}, keys in the section's order.

This module imports no numba/torch/pandas work: the backend may use it at submission.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from ktrdr.engine.errors import StrategyError
from ktrdr.engine.strategy.constraints import Constraint, ConstraintError, parse_constraint
from ktrdr.engine.strategy.paths import (
    apply_overrides,
    get_path,
    set_path,
    short_name,
    strategy_document,
)
from ktrdr.engine.strategy.schema import ParameterSpec, Strategy
from ktrdr.engine.timeframes import did_you_mean

# Above this many raw combinations grid() refuses (use random or TPE); below it sample()
# enumerates the feasible grid and draws from it without replacement.
MAX_GRID_COMBINATIONS = 1_000_000
ENUMERATE_FOR_SAMPLING = 200_000
# Values per parameter whose strategy validation is checked up front (ends always).
_CHECKED_VALUES = 50
ParamSet = dict[str, Any]


# ---- parameters ---------------------------------------------------------------------


def _clean_float(x: float) -> float:
    """Drop binary noise from lo + i*step (0.30000000000000004 -> 0.3)."""
    return float(f"{x:.12g}")


@dataclass(frozen=True)
class SearchParameter:
    """One searched value. ``values`` lists a discrete space in order (None when continuous:
    uniform, or log-uniform when ``log``, on [low, high]). ``step`` is the grid step of a
    ``range`` (None otherwise). Units are those of the addressed strategy value."""

    path: str
    kind: Literal["int", "float", "categorical"]
    values: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False

    @property
    def name(self) -> str:
        """Name used in constraints (see ``short_name``)."""
        return short_name(self.path)

    @property
    def is_discrete(self) -> bool:
        return self.values is not None

    @classmethod
    def from_spec(cls, path: str, spec: ParameterSpec) -> SearchParameter:
        if spec.values is not None:
            return cls(path, "categorical", values=tuple(dict.fromkeys(spec.values)))
        bounds = spec.range if spec.range is not None else spec.log_range
        assert bounds is not None  # ParameterSpec guarantees exactly one form
        is_int = all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
        lo, hi = bounds[0], bounds[1]
        kind: Literal["int", "float"] = "int" if is_int else "float"
        log = spec.log_range is not None
        if len(bounds) == 2 and not (is_int and not log):
            return cls(path, kind, low=lo, high=hi, log=log)
        if log:
            n = int(bounds[2])
            raw = [lo] if n == 1 else [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)]
            if n > 1:
                raw[-1] = hi
            vals = [round(v) for v in raw] if is_int else [_clean_float(v) for v in raw]
            return cls(path, kind, values=tuple(dict.fromkeys(vals)), low=lo, high=hi, log=True)
        step = bounds[2] if len(bounds) == 3 else 1
        count = math.floor((hi - lo) / step + 1e-9) + 1
        vals = [lo + i * step for i in range(count)]
        if not is_int:
            vals = [_clean_float(v) for v in vals]
        return cls(path, kind, values=tuple(vals), low=lo, high=hi, step=step)

    def draw(self, rng: random.Random) -> Any:
        """One random value (uniform over ``values``, or over [low, high])."""
        if self.values is not None:
            return self.values[rng.randrange(len(self.values))]
        lo, hi = float(self.low or 0.0), float(self.high or 0.0)
        if self.log:
            x = math.exp(math.log(lo) + rng.random() * (math.log(hi) - math.log(lo)))
        else:
            x = lo + rng.random() * (hi - lo)
        return min(max(round(x), int(lo)), int(hi)) if self.kind == "int" else x

    def optuna_distribution(self) -> Any:
        """The matching ``optuna.distributions`` object (optuna imported only here)."""
        from optuna import distributions as d

        if self.values is None:
            if self.kind == "int":
                return d.IntDistribution(int(self.low or 0), int(self.high or 0), log=self.log)
            return d.FloatDistribution(float(self.low or 0), float(self.high or 0), log=self.log)
        if self.kind == "int" and self.step is not None and len(self.values) > 1:
            top = self.values[-1]
            return d.IntDistribution(int(self.values[0]), int(top), step=int(self.step))
        return d.CategoricalDistribution(self.values)


# ---- the space ----------------------------------------------------------------------


class SearchSpace:
    """Parameters and constraints; parameter sets are {path: value} dicts."""

    def __init__(
        self, parameters: list[SearchParameter], constraints: list[str] | None = None
    ) -> None:
        self.parameters = list(parameters)
        self.paths = [p.path for p in self.parameters]
        aliases: dict[str, str] = {}
        for p in self.parameters:
            aliases[p.path] = p.path
            aliases.setdefault(p.name, p.path)
        self._aliases = aliases
        problems: list[str] = []
        self.constraints: list[Constraint] = []
        for text in constraints or []:
            try:
                self.constraints.append(parse_constraint(text, self._resolve))
            except ConstraintError as exc:
                problems.append(f"search.constraints: {exc}")
        if problems:
            raise StrategyError(problems)

    def _resolve(self, name: str) -> str:
        if name in self._aliases:
            return self._aliases[name]
        known = list(self._aliases)
        raise ConstraintError(
            f"{name!r} is not a searched parameter{did_you_mean(name, known)}; "
            f"constraints may name: {', '.join(sorted(set(known)))}"
        )

    @classmethod
    def from_strategy(cls, strategy: Strategy) -> SearchSpace:
        """The strategy's ``search:`` space, checked against the strategy (see module doc);
        StrategyError if it has none or if anything about it is wrong."""
        if strategy.search is None:
            raise StrategyError(
                [
                    "the strategy has no search: section; add one with parameters, e.g. "
                    "search: {parameters: {indicators.<id>.params.period: "
                    "{range: [5, 50, 5]}}}"
                ]
            )
        parameters = [
            SearchParameter.from_spec(path, spec)
            for path, spec in strategy.search.parameters.items()
        ]
        # Paths before constraints: a typo in a path also fails every constraint naming the
        # parameter, and "did you mean" then pointed the constraint at the typo.
        _check_paths(parameters, strategy_document(strategy))
        space = cls(parameters, list(strategy.search.constraints))
        _check_space(space, strategy)
        return space

    @property
    def raw_size(self) -> int | None:
        """Combinations before constraints (None when a parameter is continuous)."""
        if any(not p.is_discrete for p in self.parameters):
            return None
        return math.prod(len(p.values or ()) for p in self.parameters)

    def is_feasible(self, params: Mapping[str, Any]) -> bool:
        """True when ``params`` gives every parameter and satisfies every constraint."""
        if any(path not in params for path in self.paths):
            return False
        return all(c.holds(params) for c in self.constraints)

    def grid(self) -> list[ParamSet]:
        """Every feasible combination; the last parameter varies fastest."""
        return [dict(p) for p in self._grid]

    @property
    def grid_size(self) -> int:
        """Number of feasible grid combinations."""
        return len(self._grid)

    @cached_property
    def _grid(self) -> list[ParamSet]:
        continuous = [p.path for p in self.parameters if not p.is_discrete]
        if continuous:
            raise StrategyError(
                [
                    f"search.parameters.{continuous[0]} is continuous, so it has no grid; "
                    "give a step (range: [lo, hi, step]) or a point count "
                    "(log_range: [lo, hi, n]), or use random or tpe search"
                ]
            )
        size = self.raw_size or 0
        if size > MAX_GRID_COMBINATIONS:
            raise StrategyError(
                [
                    f"the grid has {size:,} combinations (more than "
                    f"{MAX_GRID_COMBINATIONS:,}); narrow the ranges or use random or tpe search"
                ]
            )
        combos = itertools.product(*(p.values or () for p in self.parameters))
        dicts = (dict(zip(self.paths, c, strict=True)) for c in combos)
        return [d for d in dicts if self.is_feasible(d)]

    def sample(self, n: int, seed: int) -> list[ParamSet]:
        """Up to ``n`` distinct feasible combinations drawn at random (same seed, same
        list). Fewer than ``n`` only when the space has fewer feasible combinations."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        rng = random.Random(seed)
        size = self.raw_size
        if size is not None and size <= ENUMERATE_FOR_SAMPLING:
            grid = self._grid
            picks = rng.sample(range(len(grid)), min(n, len(grid)))
            return [dict(grid[i]) for i in picks]
        found: dict[tuple[Any, ...], ParamSet] = {}
        attempts = 0
        while len(found) < n and attempts < 100 * n + 1000:
            attempts += 1
            combo = {p.path: p.draw(rng) for p in self.parameters}
            key = tuple(combo.values())
            if key not in found and self.is_feasible(combo):
                found[key] = combo
        if not found:
            raise StrategyError(
                [
                    f"no combination drawn in {attempts} tries satisfies the constraints "
                    f"{[c.text for c in self.constraints]}; relax them or widen the ranges"
                ]
            )
        return list(found.values())

    def apply(self, strategy_or_doc: Strategy | Mapping[str, Any], params: ParamSet) -> Strategy:
        """The strategy with ``params`` substituted (without its search section), validated
        exactly like a file; StrategyError for a parameter outside this space's paths."""
        unknown = [k for k in params if k not in self._aliases]
        if unknown:
            raise StrategyError(
                [
                    f"{unknown[0]!r} is not a searched parameter"
                    f"{did_you_mean(unknown[0], self.paths)}; parameters: {', '.join(self.paths)}"
                ]
            )
        return apply_overrides(strategy_or_doc, {self._aliases[k]: v for k, v in params.items()})


# ---- up-front checks ----------------------------------------------------------------


def _check_paths(parameters: list[SearchParameter], doc: dict[str, Any]) -> None:
    """Every parameter's path names a value the strategy has; one StrategyError lists all."""
    problems: list[str] = []
    for p in parameters:
        try:
            set_path(doc, p.path, get_path(doc, p.path))
        except StrategyError as exc:
            problems += [f"search.parameters: path {p.path!r}: {m}" for m in exc.problems]
    if problems:
        raise StrategyError(problems)


def _check_space(space: SearchSpace, strategy: Strategy) -> None:
    """Each parameter's values pass strategy validation in some feasible combination (the
    paths are checked first, by ``_check_paths``); at least one combination is feasible.
    One StrategyError lists all."""
    doc = strategy_document(strategy)
    problems: list[str] = []
    enumerable = space.raw_size is not None and space.raw_size <= ENUMERATE_FOR_SAMPLING
    if enumerable and space.grid_size == 0:
        raise StrategyError(
            [
                f"search.constraints leave no combination of the {space.raw_size:,} in the "
                f"grid ({'; '.join(c.text for c in space.constraints)}); relax them or "
                "widen the ranges"
            ]
        )
    references = space.grid()[:1000] if enumerable else space.sample(200, seed=0)
    for p in space.parameters:
        bad: list[str] = []
        for value in _values_to_check(p):
            combo = _combination_with(space, references, p.path, value)
            if combo is None:
                continue  # no feasible combination uses it, so no run will
            try:
                apply_overrides(doc, combo)
            except StrategyError as exc:
                bad += [f"value {value!r} is not valid: {m}" for m in exc.problems]
        problems += [f"search.parameters.{p.path}: {m}" for m in list(dict.fromkeys(bad))[:3]]
    if problems:
        raise StrategyError(problems)


def _values_to_check(p: SearchParameter) -> list[Any]:
    if p.values is None:
        return [p.low, p.high]
    if len(p.values) <= _CHECKED_VALUES:
        return list(p.values)
    stride = len(p.values) / (_CHECKED_VALUES - 1)
    picked = {round(i * stride) for i in range(_CHECKED_VALUES - 1)} | {len(p.values) - 1}
    return [p.values[i] for i in sorted(picked) if i < len(p.values)]


def _combination_with(
    space: SearchSpace, references: list[ParamSet], path: str, value: Any
) -> ParamSet | None:
    for ref in references:
        combo = {**ref, path: value}
        if space.is_feasible(combo):
            return combo
    return None
