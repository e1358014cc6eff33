"""Indicators by name with typed parameters, so strategy files can refer to them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ktrdr.engine.indicators import functions as f
from ktrdr.engine.timeframes import did_you_mean

PriceSource = Literal["open", "high", "low", "close", "hl2", "hlc3", "ohlc4"]


class Params(BaseModel):
    """Base of every indicator's parameters: unknown names are errors, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PeriodParams(Params):
    period: int = Field(14, ge=1, le=10_000, description="look-back in bars")


class SourcePeriodParams(PeriodParams):
    source: PriceSource = "close"


class SmaParams(SourcePeriodParams):
    period: int = Field(20, ge=1, le=10_000, description="look-back in bars")


class RocParams(SourcePeriodParams):
    period: int = Field(10, ge=1, le=10_000, description="look-back in bars")


class MacdParams(Params):
    fast_period: int = Field(12, ge=1, le=10_000)
    slow_period: int = Field(26, ge=2, le=10_000)
    signal_period: int = Field(9, ge=1, le=10_000)
    source: PriceSource = "close"

    @model_validator(mode="after")
    def _fast_below_slow(self) -> MacdParams:
        if self.fast_period >= self.slow_period:
            raise ValueError(
                f"fast_period ({self.fast_period}) must be smaller than slow_period "
                f"({self.slow_period})"
            )
        return self


class BollingerParams(Params):
    period: int = Field(20, ge=2, le=10_000)
    num_std: float = Field(2.0, gt=0)
    source: PriceSource = "close"


class StochasticParams(Params):
    k_period: int = Field(14, ge=1, le=10_000)
    d_period: int = Field(3, ge=1, le=10_000)


class CciParams(Params):
    period: int = Field(20, ge=2, le=10_000)
    constant: float = Field(0.015, gt=0)


class NoParams(Params):
    pass


Outputs = dict[str, pd.Series]


@dataclass(frozen=True)
class IndicatorSpec:
    """An indicator: its parameter model, output names (first is the default) and function."""

    name: str
    params_model: type[Params]
    outputs: tuple[str, ...]
    compute: Callable[[pd.DataFrame, Any], Outputs]
    description: str
    # Bars of history needed before values are trustworthy (recursive ones need extra
    # bars for the seed to fade).
    warmup: Callable[[Any], int]

    @property
    def primary_output(self) -> str:
        return self.outputs[0]


def price(bars: pd.DataFrame, source: str) -> pd.Series:
    """The price series a ``source`` name refers to (close, hlc3, ...)."""
    if source in ("open", "high", "low", "close", "volume"):
        return bars[source].astype(float)
    o, h, low, c = bars["open"], bars["high"], bars["low"], bars["close"]
    combos = {"hl2": (h + low) / 2, "hlc3": (h + low + c) / 3, "ohlc4": (o + h + low + c) / 4}
    return combos[source]


def _frame(df: pd.DataFrame) -> Outputs:
    return {str(k): v for k, v in df.items()}


def _hlc(b: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    return b["high"], b["low"], b["close"]


_SPECS = [
    IndicatorSpec(
        "sma",
        SmaParams,
        ("value",),
        lambda b, p: {"value": f.sma(price(b, p.source), p.period)},
        "simple moving average",
        lambda p: p.period,
    ),
    IndicatorSpec(
        "ema",
        SmaParams,
        ("value",),
        lambda b, p: {"value": f.ema(price(b, p.source), p.period)},
        "exponential moving average",
        lambda p: 4 * p.period,
    ),
    IndicatorSpec(
        "rsi",
        SourcePeriodParams,
        ("value",),
        lambda b, p: {"value": f.rsi(price(b, p.source), p.period)},
        "Wilder's relative strength index, 0..100",
        lambda p: 5 * p.period,
    ),
    IndicatorSpec(
        "macd",
        MacdParams,
        ("macd", "signal", "histogram"),
        lambda b, p: _frame(
            f.macd(price(b, p.source), p.fast_period, p.slow_period, p.signal_period)
        ),
        "MACD line, signal line and histogram",
        lambda p: 4 * p.slow_period + p.signal_period,
    ),
    IndicatorSpec(
        "bbands",
        BollingerParams,
        ("middle", "upper", "lower", "percent_b", "bandwidth"),
        lambda b, p: _frame(f.bollinger(price(b, p.source), p.period, p.num_std)),
        "Bollinger Bands",
        lambda p: p.period,
    ),
    IndicatorSpec(
        "atr",
        PeriodParams,
        ("value",),
        lambda b, p: {"value": f.atr(*_hlc(b), p.period)},
        "Wilder's average true range",
        lambda p: 5 * p.period,
    ),
    IndicatorSpec(
        "adx",
        PeriodParams,
        ("adx", "plus_di", "minus_di"),
        lambda b, p: _frame(f.adx(*_hlc(b), p.period)),
        "Wilder's ADX with +DI and -DI",
        lambda p: 6 * p.period,
    ),
    IndicatorSpec(
        "roc",
        RocParams,
        ("value",),
        lambda b, p: {"value": f.roc(price(b, p.source), p.period)},
        "rate of change in percent",
        lambda p: p.period,
    ),
    IndicatorSpec(
        "stochastic",
        StochasticParams,
        ("k", "d"),
        lambda b, p: _frame(f.stochastic(*_hlc(b), p.k_period, p.d_period)),
        "stochastic oscillator %K and %D",
        lambda p: p.k_period + p.d_period,
    ),
    IndicatorSpec(
        "williams_r",
        PeriodParams,
        ("value",),
        lambda b, p: {"value": f.williams_r(*_hlc(b), p.period)},
        "Williams %R, -100..0",
        lambda p: p.period,
    ),
    IndicatorSpec(
        "cci",
        CciParams,
        ("value",),
        lambda b, p: {"value": f.cci(*_hlc(b), p.period, p.constant)},
        "commodity channel index",
        lambda p: p.period,
    ),
    IndicatorSpec(
        "obv",
        NoParams,
        ("value",),
        lambda b, p: {"value": f.obv(b["close"], b["volume"])},
        "on-balance volume",
        lambda p: 0,
    ),
    IndicatorSpec(
        "vwap",
        PeriodParams,
        ("value",),
        lambda b, p: {"value": f.vwap(*_hlc(b), b["volume"], p.period)},
        "rolling volume-weighted average price",
        lambda p: p.period,
    ),
]

INDICATORS: dict[str, IndicatorSpec] = {s.name: s for s in _SPECS}


def get_indicator(name: str) -> IndicatorSpec:
    """The indicator called ``name``; ValueError with 'did you mean' and the known names."""
    spec = INDICATORS.get(name.lower())
    if spec is None:
        raise ValueError(
            f"unknown indicator {name!r}{did_you_mean(name.lower(), tuple(INDICATORS))}; "
            f"known indicators: {', '.join(INDICATORS)}"
        )
    return spec


def parse_params(spec: IndicatorSpec, raw: dict[str, Any]) -> tuple[Params | None, list[str]]:
    """Validate ``raw`` against ``spec``'s parameters; return (params, problems)."""
    try:
        return spec.params_model.model_validate(raw), []
    except ValidationError as exc:
        fields = tuple(spec.params_model.model_fields)
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(fields) or "none"
                problems.append(
                    f"unknown parameter {key!r} for indicator {spec.name!r}"
                    f"{did_you_mean(key, fields)}; its parameters are: {allowed}"
                )
            else:
                where = f"parameter {key!r}" if key else "parameters"
                msg = err["msg"].removeprefix("Value error, ")
                problems.append(f"{where} of indicator {spec.name!r}: {msg}")
        return None, problems


def compute_indicator(spec: IndicatorSpec, params: Params, bars: pd.DataFrame) -> Outputs:
    """Run ``spec`` on ``bars``; returns one Series per output name."""
    return spec.compute(bars, params)
