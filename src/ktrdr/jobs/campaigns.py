"""Parameters of campaigns (sweeps, walk-forwards) and of their chunks, validated on entry.

The backend may import the strategy schema and its search space (not the engine's
evaluators): a bad space, objective or constraint is a 4xx before anything is queued, and
a constraint no combination satisfies is one too.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from enum import StrEnum
from typing import Any

import pandas as pd
from pandas.errors import OutOfBoundsTimedelta
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ktrdr.engine.campaigns.objectives import (
    OBJECTIVES,
    Objective,
    get_objective,
    parse_result_constraints,
)
from ktrdr.engine.errors import StrategyError
from ktrdr.engine.strategy.search import SearchSpace
from ktrdr.jobs.backtest import BacktestParams
from ktrdr.jobs.strategy_run import resolve_strategy

# The largest grid (or trial budget) one campaign may hold: results stay queryable and a
# typo in a range (step 0.0001) is refused instead of queueing millions of backtests.
MAX_COMBINATIONS = 100_000
MAX_CHUNK_COMBINATIONS = 1_000
# Without a chunk_size the backend cuts a campaign into one chunk per idle capable worker,
# at most this many combinations each (ktrdr.campaigns.chunks.chunk_size): large enough
# that loading the bars is a small part of a chunk, small enough that a lost worker's
# retry and each progress step stay short.
MAX_AUTO_CHUNK = 250

# Per-combination return series are reduced on the worker to this many compounded blocks
# (rows of the PBO matrix: enough for 16 CSCV splits) plus their moments (for the DSR).
RETURN_BLOCKS = 128


class SearchMethod(StrEnum):
    GRID = "grid"
    RANDOM = "random"
    TPE = "tpe"


class Direction(StrEnum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


class CampaignSettings(BaseModel):
    """How to search and what "best" means; shared by sweeps and walk-forwards."""

    method: SearchMethod = Field(SearchMethod.GRID, description="grid | random | tpe")
    trials: int | None = Field(
        None, ge=1, le=MAX_COMBINATIONS, description="combinations to try (random, tpe)"
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="random and TPE are seeded")
    objective: str = Field("sharpe", description=", ".join(OBJECTIVES))
    direction: Direction | None = Field(None, description="default: the objective's own")
    min_trades: int | None = Field(
        None, ge=0, le=10_000_000, description="results with fewer trades never rank best"
    )
    result_constraints: dict[str, float] = Field(
        default_factory=dict,
        description="bounds a result must meet to rank, e.g. {max_drawdown_pct: -20}",
    )
    keep_returns: bool = Field(
        True,
        description="keep each combination's returns compactly: PBO and exact DSR moments",
    )
    chunk_size: int | None = Field(
        None, ge=1, le=MAX_CHUNK_COMBINATIONS,
        description="combinations per child operation (default: one chunk per idle worker "
        f"that can run it, at most {MAX_AUTO_CHUNK})",
    )  # fmt: skip
    batch_size: int = Field(
        8, ge=1, le=256, description="TPE: trials decided per round (spread over workers)"
    )

    @property
    def objective_rule(self) -> Objective:
        """The engine's objective (one rule for what "best" means), in this direction."""
        return get_objective(self.objective, self.direction.value if self.direction else None)

    @property
    def objective_key(self) -> str:
        return self.objective_rule.statistic

    @property
    def constraints(self) -> dict[str, float]:
        """Result constraints, min_trades included."""
        merged = dict(self.result_constraints)
        if self.min_trades is not None:
            merged["min_trades"] = float(self.min_trades)
        return merged


def _check_settings(settings: CampaignSettings) -> None:
    settings.objective_rule  # noqa: B018 - raises ValueError with a did-you-mean
    parse_result_constraints(settings.result_constraints)
    if settings.method == SearchMethod.GRID and settings.trials is not None:
        raise ValueError("trials is for random and tpe searches; a grid tries every point")
    if settings.method != SearchMethod.GRID and settings.trials is None:
        raise ValueError(f"a {settings.method.value} search needs trials (e.g. trials: 50)")


def search_space(params: BacktestParams) -> SearchSpace:
    """The strategy's `search:` space (StrategyError if it has none or it is wrong)."""
    return _space_of(params.strategy)


# A campaign's strategy text is checked at submission, when the backend plans it, in each
# chunk's parameters and on each worker: checking a space validates the strategy once per
# value it checks (~2 ms), so a checked space is kept by its text. Spaces are not changed
# after construction (grid and sample hand out copies); errors are not kept. A space keeps
# its enumerated grid (about 200 bytes a combination), so only small ones are kept, and
# few: at most _SPACES_KEPT x _SPACE_KEPT_COMBINATIONS combinations (~30 MB) in a process.
_SPACES: OrderedDict[str, SearchSpace] = OrderedDict()
_SPACES_KEPT = 16
_SPACE_KEPT_COMBINATIONS = 10_000
_spaces_lock = threading.Lock()


def _space_of(strategy: str) -> SearchSpace:
    with _spaces_lock:
        space = _SPACES.get(strategy)
        if space is not None:
            _SPACES.move_to_end(strategy)
            return space
    space = SearchSpace.from_strategy(resolve_strategy(strategy))
    if space.raw_size is None or space.raw_size <= _SPACE_KEPT_COMBINATIONS:
        with _spaces_lock:
            _SPACES[strategy] = space
            while len(_SPACES) > _SPACES_KEPT:
                _SPACES.popitem(last=False)
    return space


def check_plannable(params: SweepParams) -> None:
    """StrategyError unless the campaign has something to evaluate within the limits."""
    space = search_space(params)
    if params.method == SearchMethod.GRID:
        size = space.grid_size
        if size > MAX_COMBINATIONS:
            raise StrategyError(
                [
                    f"the grid has {size:,} feasible combinations, more than one campaign "
                    f"holds ({MAX_COMBINATIONS:,}); narrow the ranges or use method random "
                    "or tpe with a trial budget"
                ]
            )
        if size == 0:
            raise StrategyError(
                [
                    "no grid combination satisfies the constraints "
                    f"{[c.text for c in space.constraints]}; relax them or widen the ranges"
                ]
            )
    else:
        space.sample(1, params.seed)  # raises when no feasible combination can be drawn


# A strategy with a `search:` space, for the request examples.
EXAMPLE_SEARCH_STRATEGY = """name: sma_sweep
data: {symbol: EURUSD, timeframe: 1h}
indicators:
  - {id: sma_fast, type: sma, params: {period: 10}}
  - {id: sma_slow, type: sma, params: {period: 30}}
decisions:
  signals:
    - crossover: {fast: sma_fast, slow: sma_slow}
search:
  parameters:
    indicators.sma_fast.params.period: {range: [4, 16, 4]}
    indicators.sma_slow.params.period: {values: [30, 50]}
"""


class SweepParams(BacktestParams, CampaignSettings):
    """A sweep: the strategy's `search:` space explored on one window."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "strategy": EXAMPLE_SEARCH_STRATEGY, "method": "grid",
                    "objective": "sharpe", "min_trades": 5,
                }
            ]
        }
    )  # fmt: skip

    @model_validator(mode="after")
    def _check_sweep(self) -> SweepParams:
        if self.symbols is not None:
            raise ValueError(
                "sweeps and walk-forwards run on one symbol: give symbol (not symbols) and "
                "run one campaign per symbol"
            )
        _check_settings(self)
        try:
            check_plannable(self)
        except StrategyError as exc:
            raise ValueError("; ".join(exc.problems)) from None
        return self


# A window length given as a duration: pandas' Timedelta strings ("180D", "12W", "36h").
# Ten years of weeks is far past any data set; the bound keeps an absurd value a 4xx.
_PERIOD_MAX = pd.Timedelta(days=36_600)


def _period(value: str | None, field: str) -> pd.Timedelta | None:
    if value is None:
        return None
    try:
        period = pd.Timedelta(value)
    except (ValueError, OverflowError, OutOfBoundsTimedelta):
        period = None
    if period is None or pd.isna(period):
        raise ValueError(
            f"{field} {value!r} is not a duration; give one like '180D', '12W' or '36h'"
        )
    if not pd.Timedelta(0) < period <= _PERIOD_MAX:
        raise ValueError(f"{field} {value!r} must be longer than 0 and at most 100 years")
    return period


class WalkforwardParams(SweepParams):
    """Rolling or anchored windows: sweep in sample, run the best out of sample.

    Window lengths are bar counts (``train_bars``...) or durations (``train_period``...),
    all of one kind: with durations a window holds the bars whose timestamps fall in it,
    so weekends and gaps do not stretch a "90-day" test window."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "strategy": EXAMPLE_SEARCH_STRATEGY, "method": "grid",
                    "train_bars": 1000, "test_bars": 250,
                }
            ]
        }
    )  # fmt: skip

    train_bars: int | None = Field(
        None, ge=10, le=10_000_000, description="in-sample bars per window"
    )
    test_bars: int | None = Field(
        None, ge=2, le=10_000_000, description="out-of-sample bars per window"
    )
    step_bars: int | None = Field(
        None, ge=1, le=10_000_000, description="default: test_bars (back-to-back tests)"
    )
    train_period: str | None = Field(
        None,
        max_length=32,
        description="in-sample duration per window, e.g. '365D'",
        examples=["365D"],
    )
    test_period: str | None = Field(
        None,
        max_length=32,
        description="out-of-sample duration per window, e.g. '90D'",
        examples=["90D"],
    )
    step_period: str | None = Field(
        None, max_length=32, description="default: test_period (back-to-back tests)"
    )
    anchored: bool = Field(False, description="in-sample windows all start at the first bar")

    @model_validator(mode="after")
    def _check_walkforward(self) -> WalkforwardParams:
        if self.method == SearchMethod.TPE:
            raise ValueError(
                "walk-forward in-sample searches are grid or random (the same combinations "
                "in every window); use method grid or random"
            )
        bars = (self.train_bars, self.test_bars, self.step_bars)
        periods = (self.train_period, self.test_period, self.step_period)
        by_bars = self.train_bars is not None or self.test_bars is not None
        by_period = self.train_period is not None or self.test_period is not None
        if by_bars == by_period or any(v is not None for v in (periods if by_bars else bars)):
            raise ValueError(
                "give the window lengths all as bar counts (train_bars, test_bars, step_bars) "
                "or all as durations (train_period, test_period, step_period)"
            )
        if by_bars and (self.train_bars is None or self.test_bars is None):
            raise ValueError("bar-count windows need both train_bars and test_bars")
        if by_period and (self.train_period is None or self.test_period is None):
            raise ValueError("duration windows need both train_period and test_period")
        for field in ("train_period", "test_period", "step_period"):
            _period(getattr(self, field), field)
        return self

    def lengths(self) -> dict[str, int | str | None]:
        """train / test / step as the engine's walkforward_windows takes them."""
        if self.train_period is not None:
            return {"train": self.train_period, "test": self.test_period, "step": self.step_period}
        return {"train": self.train_bars, "test": self.test_bars, "step": self.step_bars}


class ChunkCombination(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=64)
    index: int = Field(ge=0)
    params: dict[str, Any]
    # Out-of-sample runs of a walk-forward: each window's own test bars.
    window: int | None = Field(None, ge=0)
    start: datetime | None = None
    end: datetime | None = None


class SweepChunkParams(BacktestParams):
    """One child of a campaign: evaluate these parameter sets on the same bars."""

    combinations: list[ChunkCombination] = Field(
        default_factory=list, max_length=MAX_CHUNK_COMBINATIONS
    )
    stage: str = Field("sweep", pattern="^(sweep|in_sample|out_of_sample|windows)$")
    window: int | None = Field(None, ge=0)
    # Reduce each combination's returns to moments and blocks (DSR, PBO).
    keep_returns: bool = False
    # Walk-forward planning child: compute the windows over the stored bars.
    windows: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _check_chunk(self) -> SweepChunkParams:
        if (self.stage == "windows") != (self.windows is not None):
            raise ValueError("a windows chunk needs windows settings and nothing else does")
        if self.stage != "windows" and not self.combinations:
            raise ValueError("a chunk needs at least one combination")
        return self
