"""The strategy file's structure (pydantic, unknown keys forbidden everywhere)."""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from ktrdr.engine.indicators.registry import Params, get_indicator
from ktrdr.engine.strategy.rules import Action, ParsedRule
from ktrdr.engine.timeframes import TIMEFRAMES, check_timeframe

# The one place these defaults live: CLI, API and worker all take them from here.
DEFAULT_COMMISSION = 0.001  # fraction of traded notional, per side
DEFAULT_SLIPPAGE = 0.0005  # fraction of price, per side, against the trader
DEFAULT_POSITION_FRACTION = 1.0
# A trained model's output classes, by index: labels in training and decisions in backtests
# both follow this order. HOLD means "no action" (the current position is kept).
MODEL_CLASSES = ("SELL", "HOLD", "BUY")
# A model's name becomes a directory name in the model store.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"

FuzzyShape = Literal["triangular", "trapezoidal", "gaussian", "left_shoulder", "right_shoulder"]
SHAPE_POINTS: dict[str, tuple[int, str]] = {
    "triangular": (3, "[a, b, c] with a <= b <= c"),
    "trapezoidal": (4, "[a, b, c, d] with a <= b <= c <= d"),
    "gaussian": (2, "[mean, sigma] with sigma > 0"),
    "left_shoulder": (2, "[a, b] with a <= b: 1 below a, 0 above b"),
    "right_shoulder": (2, "[a, b] with a <= b: 0 below a, 1 above b"),
}


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSpec(StrictModel):
    symbol: str = Field(min_length=1, description="ticker, e.g. EURUSD or BTC-USD")
    timeframe: str = Field(description=f"one of {', '.join(TIMEFRAMES)}")

    @field_validator("timeframe")
    @classmethod
    def _known_timeframe(cls, value: str) -> str:
        check_timeframe(value)
        return value


class IndicatorConfig(StrictModel):
    id: str = Field(pattern=r"^[a-z_][a-z0-9_]*$", description="name rules and sets refer to")
    type: str = Field(description="indicator name, e.g. sma, rsi, macd")
    params: dict[str, Any] = Field(default_factory=dict)
    timeframe: str | None = Field(
        None,
        description="a higher timeframe to run on (e.g. 1d on 1h bars); its values are "
        "seen once its bar has closed",
    )

    @field_validator("timeframe")
    @classmethod
    def _known_timeframe(cls, value: str | None) -> str | None:
        if value is not None:
            check_timeframe(value)
        return value


class FuzzySetConfig(StrictModel):
    shape: FuzzyShape
    points: list[float]

    @model_validator(mode="after")
    def _points_fit_shape(self) -> FuzzySetConfig:
        count, form = SHAPE_POINTS[self.shape]
        pts = self.points
        if len(pts) != count:
            raise ValueError(f"{self.shape} needs {count} points {form}, got {len(pts)}")
        if self.shape == "gaussian":
            if pts[1] <= 0:
                raise ValueError(f"gaussian sigma must be > 0, got {pts[1]}")
        elif any(a > b for a, b in itertools.pairwise(pts)):
            raise ValueError(f"{self.shape} points must be in increasing order: {form}")
        return self


class FuzzyVariableConfig(StrictModel):
    input: str = Field(description="indicator id, id.output, or a price column like close")
    sets: dict[str, FuzzySetConfig] = Field(min_length=1)


class CrossoverConfig(StrictModel):
    fast: str
    slow: str


class ThresholdConfig(StrictModel):
    input: str
    above: float | None = None
    below: float | None = None
    action: Action

    @model_validator(mode="after")
    def _one_bound(self) -> ThresholdConfig:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of 'above' or 'below'")
        return self


class SignalRuleConfig(StrictModel):
    """One signal rule: a crossover (BUY on upward cross, SELL on downward) or a threshold."""

    crossover: CrossoverConfig | None = None
    threshold: ThresholdConfig | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SignalRuleConfig:
        if (self.crossover is None) == (self.threshold is None):
            raise ValueError("each signal rule needs exactly one of 'crossover' or 'threshold'")
        return self


class WeightedRule(StrictModel):
    rule: str
    weight: float = Field(1.0, gt=0, le=1)


class FuzzyRulesConfig(StrictModel):
    rules: list[str | WeightedRule] = Field(min_length=1)
    threshold: float = Field(0.5, gt=0, le=1, description="minimum firing strength to act")


class ModelDecisionConfig(StrictModel):
    """Decide with a trained model (see ``ktrdr.engine.training``) on the fuzzy memberships."""

    name: str | None = Field(
        None, pattern=MODEL_NAME_PATTERN, description="trained model's name; default: strategy's"
    )
    version: int | None = Field(
        None, ge=1, description="model version; default: the newest that beats its baseline"
    )
    min_confidence: float = Field(
        0.5,
        gt=0,
        le=1,
        description="act only when the predicted class's probability is at least this",
    )
    allow_other_symbols: bool = Field(
        False,
        description="use a model trained on another symbol or timeframe than the run's "
        "(refused by default: such a model usually does not fit)",
    )


class DecisionsConfig(StrictModel):
    signals: list[SignalRuleConfig] | None = None
    fuzzy_rules: FuzzyRulesConfig | None = None
    model: ModelDecisionConfig | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> DecisionsConfig:
        given = [k for k in ("signals", "fuzzy_rules", "model") if getattr(self, k) is not None]
        if len(given) != 1:
            got = f" (got {' and '.join(given)})" if given else ""
            raise ValueError(
                f"decisions needs exactly one of 'signals', 'fuzzy_rules' or 'model'{got}"
            )
        return self


class ValidationConfig(StrictModel):
    """How a model is validated besides the held-out test split.

    ``chronological``: train | validation | test in time order (early stopping on the
    validation part). ``purged_kfold`` adds a cross-validation on the rows before the test
    split (López de Prado ch. 7): each of ``folds`` contiguous folds is the test part once;
    training rows whose label window reaches into it are purged, and ``embargo`` rows after
    it are left out too. Each fold trains for ``epochs`` without early stopping (stopping on
    the fold would choose on its own test rows) and reports its metrics and class balance."""

    method: Literal["chronological", "purged_kfold"] = Field(
        "chronological", description="chronological split only, or a purged k-fold beside it"
    )
    folds: int = Field(5, ge=2, le=20, description="purged_kfold: number of folds")
    embargo: int = Field(
        0, ge=0, le=100_000,
        description="purged_kfold: rows after each test fold also kept out of training "
        "(features that look back, e.g. a moving average, carry the fold into them)",
    )  # fmt: skip


class TrainingConfig(StrictModel):
    """How ``ktrdr.engine.training`` labels, splits and fits a model for this strategy."""

    label_horizon: int = Field(12, ge=1, le=10_000, description="bars ahead the label looks")
    label_threshold: float = Field(
        0.002, gt=0, lt=1, description="forward return (fraction) below which the label is HOLD"
    )
    validation_fraction: float = Field(0.15, gt=0, lt=0.5)
    test_fraction: float = Field(0.15, gt=0, lt=0.5)
    hidden_layers: list[Annotated[int, Field(ge=1, le=1024)]] = Field(
        default_factory=lambda: [32, 16], min_length=1, max_length=5
    )
    epochs: int = Field(30, ge=1, le=1000)
    batch_size: int = Field(256, ge=1, le=1_000_000)
    learning_rate: float = Field(1e-3, gt=0, le=1)
    early_stopping_patience: int = Field(
        5, ge=0, le=1000, description="epochs without a better validation loss; 0 = off"
    )
    seed: int = Field(7, ge=0, le=2**32 - 1)
    model: Literal["mlp", "lstm", "gru"] = Field(
        "mlp",
        description="mlp: one bar's memberships; lstm/gru: the last sequence_length bars' "
        "(hidden size hidden_layers[0], one recurrent layer per entry of hidden_layers)",
    )
    sequence_length: int = Field(16, ge=2, le=1024, description="bars an lstm/gru looks back")
    labels: Literal["forward", "zigzag", "triple_barrier"] = Field(
        "forward",
        description="forward: return label_horizon bars ahead beyond label_threshold; "
        "zigzag: the swing leg a bar is on; triple_barrier: first of take-profit, stop-loss "
        "or max bars",
    )
    zigzag_threshold: float = Field(0.01, gt=0, lt=1, description="reversal that makes a swing")
    barrier_take_profit: float = Field(
        2.0, gt=0, le=100, description="upper barrier in σ (fraction if no volatility window)"
    )
    barrier_stop_loss: float = Field(2.0, gt=0, le=100, description="lower barrier, same units")
    barrier_max_bars: int = Field(24, ge=1, le=100_000, description="the vertical barrier")
    barrier_volatility_window: int | None = Field(
        50, ge=2, le=100_000, description="bars of returns in σ; null: fixed fractions"
    )
    sample_weights: Literal["none", "uniqueness"] = Field(
        "none", description="uniqueness: overlapping labels weigh less (López de Prado ch. 4)"
    )
    validation: ValidationConfig = Field(default_factory=ValidationConfig)

    @model_validator(mode="after")
    def _training_part_left(self) -> TrainingConfig:
        held_out = self.validation_fraction + self.test_fraction
        if held_out >= 0.8:
            raise ValueError(
                f"validation_fraction + test_fraction is {held_out:g}; keep it below 0.8 so "
                "enough bars are left to train on"
            )
        return self


class CostsConfig(StrictModel):
    commission: float = Field(DEFAULT_COMMISSION, ge=0, lt=0.1)
    slippage: float = Field(DEFAULT_SLIPPAGE, ge=0, lt=0.1)


class PositionSizingConfig(StrictModel):
    """How big a new position is: a share of equity, a fixed number of units, or the
    share that targets an annualised volatility — never more than ``max_fraction``."""

    method: Literal["fixed_fraction", "fixed_units", "volatility_target"] = "fixed_fraction"
    fraction: float = Field(
        DEFAULT_POSITION_FRACTION,
        gt=0,
        le=1,
        description="fixed_fraction: fraction of equity committed per position",
    )
    units: float | None = Field(None, gt=0, le=1e12, description="fixed_units: units per trade")
    target_volatility: float | None = Field(
        None, gt=0, le=10, description="volatility_target: annualised σ, e.g. 0.10 for 10%"
    )
    volatility_period: int = Field(20, ge=2, le=10_000, description="bars in the σ estimate")
    max_fraction: float = Field(1.0, gt=0, le=1, description="cap on the equity committed")

    @model_validator(mode="after")
    def _method_has_its_inputs(self) -> PositionSizingConfig:
        if self.method == "fixed_units" and self.units is None:
            raise ValueError("method fixed_units needs 'units' (e.g. units: 100)")
        if self.method == "volatility_target" and self.target_volatility is None:
            raise ValueError(
                "method volatility_target needs 'target_volatility' (annualised, e.g. 0.1)"
            )
        if self.units is not None and self.method != "fixed_units":
            raise ValueError("'units' is only used with method: fixed_units")
        if self.target_volatility is not None and self.method != "volatility_target":
            raise ValueError("'target_volatility' is only used with method: volatility_target")
        return self


class PriceDistance(StrictModel):
    """How far an exit sits from the entry price: a fraction of it, or a multiple of ATR."""

    fraction: float | None = Field(None, gt=0, lt=1, description="e.g. 0.02 for 2%")
    atr: float | None = Field(None, gt=0, le=100, description="multiple of ATR(atr_period)")
    atr_period: int = Field(14, ge=1, le=10_000)

    @model_validator(mode="after")
    def _one_reference(self) -> PriceDistance:
        if (self.fraction is None) == (self.atr is None):
            raise ValueError(
                "give exactly one price reference: 'fraction' (of the entry price, e.g. "
                "0.02) or 'atr' (a multiple of the average true range, e.g. 2)"
            )
        return self


class ExitsConfig(StrictModel):
    """Exits besides the decisions: checked against each bar's high and low."""

    stop_loss: PriceDistance | None = None
    take_profit: PriceDistance | None = None
    trailing_stop: PriceDistance | None = None
    time_stop_bars: int | None = Field(None, ge=1, le=1_000_000, description="exit after N bars")

    def atr_periods(self) -> list[int]:
        return [d.atr_period for d in (self.stop_loss, self.take_profit, self.trailing_stop)
                if d is not None and d.atr is not None]  # fmt: skip


class ParameterSpec(StrictModel):
    """One searched value: exactly one of ``range``, ``log_range`` or ``values``.

    - ``range: [lo, hi, step]``: lo, lo+step, ... up to hi inclusive (ints if all three are);
      ``range: [lo, hi]``: every int in [lo, hi] if both are ints, else uniform on [lo, hi]
      (random/TPE only).
    - ``log_range: [lo, hi, n]``: n log-spaced points from lo to hi (rounded and deduplicated
      for ints); ``log_range: [lo, hi]``: log-uniform on [lo, hi] (random/TPE only).
    - ``values: [...]``: exactly these values (numbers, strings, booleans).
    """

    range: list[int | float] | None = Field(None, min_length=2, max_length=3)
    log_range: list[int | float] | None = Field(None, min_length=2, max_length=3)
    values: list[Any] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_form(self) -> ParameterSpec:
        given = [k for k in ("range", "log_range", "values") if getattr(self, k) is not None]
        if len(given) != 1:
            got = f" (got {' and '.join(given)})" if given else ""
            raise ValueError(
                "give exactly one of range: [lo, hi, step], log_range: [lo, hi, n] or "
                f"values: [...]{got}"
            )
        bounds = self.range or self.log_range
        if bounds is not None:
            lo, hi = bounds[0], bounds[1]
            if lo > hi:
                raise ValueError(f"empty range: lo {lo} is above hi {hi}; swap them")
            if self.log_range is not None and lo <= 0:
                raise ValueError(f"log_range needs lo > 0, got {lo}; use range for <= 0")
            if self.range is not None and len(bounds) == 3 and bounds[2] <= 0:
                raise ValueError(f"range step must be > 0, got {bounds[2]}")
            if (
                self.log_range is not None
                and len(bounds) == 3
                and (bounds[2] != int(bounds[2]) or bounds[2] < 1)
            ):
                raise ValueError(f"log_range's third item is a point count >= 1, got {bounds[2]}")
        return self


class SearchConfig(StrictModel):
    """The ``search:`` section: parameter spaces by path, and constraints between them.

    See ``ktrdr.engine.strategy.search`` for paths, the constraint grammar and sampling.
    """

    parameters: dict[str, ParameterSpec] = Field(
        min_length=1, description="path (e.g. indicators.sma_fast.params.period) -> space"
    )
    constraints: list[str] = Field(
        default_factory=list, description="e.g. 'sma_fast.period < sma_slow.period'"
    )


class Strategy(StrictModel):
    """A validated strategy. Build it with ``load_strategy`` / ``validate_strategy_text``."""

    name: str = Field(min_length=1)
    description: str = ""
    data: DataSpec
    indicators: list[IndicatorConfig] = Field(min_length=1)
    fuzzy_sets: dict[str, FuzzyVariableConfig] = Field(default_factory=dict)
    decisions: DecisionsConfig
    costs: CostsConfig = Field(default_factory=lambda: CostsConfig())
    position_sizing: PositionSizingConfig = Field(default_factory=lambda: PositionSizingConfig())
    exits: ExitsConfig = Field(default_factory=lambda: ExitsConfig())
    position_mode: Literal["long_only", "long_short"] = "long_only"
    training: TrainingConfig = Field(default_factory=lambda: TrainingConfig())
    # Parameter spaces for sweeps; not part of what a single run computes, so it is left
    # out of dumps (and of the trained-model fingerprint).
    search: SearchConfig | None = Field(None, exclude=True)

    # Filled in by the loader after the cross-reference checks pass.
    _params: dict[str, Params] = PrivateAttr(default_factory=dict)
    _rules: list[ParsedRule] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _higher_timeframes_fit(self) -> Strategy:
        base = check_timeframe(self.data.timeframe)
        for ind in self.indicators:
            if ind.timeframe is None or ind.timeframe == self.data.timeframe:
                continue
            higher = check_timeframe(ind.timeframe)
            above = [t for t, d in TIMEFRAMES.items() if d > base and d % base == pd.Timedelta(0)]
            if higher < base:
                raise ValueError(
                    f"indicator {ind.id!r} runs on {ind.timeframe}, below the strategy's "
                    f"{self.data.timeframe} bars; use the base timeframe or a higher one "
                    f"({', '.join(above)})"
                )
            if higher % base != pd.Timedelta(0):
                raise ValueError(
                    f"indicator {ind.id!r}: {ind.timeframe} is not a whole number of "
                    f"{self.data.timeframe} bars; use one of {', '.join(above)}"
                )
        return self

    def bars_per(self, timeframe: str | None) -> int:
        """Base bars in one bar of ``timeframe`` (1 for the base timeframe itself)."""
        if timeframe is None:
            return 1
        return int(check_timeframe(timeframe) / check_timeframe(self.data.timeframe))

    @model_validator(mode="after")
    def _model_has_features(self) -> Strategy:
        if self.decisions.model is not None and not self.fuzzy_sets:
            raise ValueError(
                "decisions.model decides from the fuzzy memberships, and this strategy has no "
                "fuzzy_sets; define at least one fuzzy variable with sets under fuzzy_sets"
            )
        return self

    @property
    def model_name(self) -> str:
        """Name of the trained model this strategy uses or trains (default: its own name)."""
        model = self.decisions.model
        return model.name if model is not None and model.name is not None else self.name

    def indicator_params(self, indicator_id: str) -> Params:
        return self._params[indicator_id]

    @property
    def parsed_rules(self) -> list[ParsedRule]:
        return list(self._rules)

    def warmup_bars(self) -> int:
        """Bars of history to load before the backtest window so indicators are warm."""
        needs = [
            # A higher-timeframe indicator warms up in its own bars, plus the bar that must
            # close before its first value is seen.
            (get_indicator(i.type).warmup(self._params[i.id]) + 1) * self.bars_per(i.timeframe)
            if i.timeframe
            else get_indicator(i.type).warmup(self._params[i.id])
            for i in self.indicators
        ]
        # ATR-based exits and volatility sizing look back too (ATR is Wilder-smoothed).
        needs += [5 * period for period in self.exits.atr_periods()]
        if self.position_sizing.method == "volatility_target":
            needs.append(self.position_sizing.volatility_period + 1)
        return 1 + max(needs, default=0)
