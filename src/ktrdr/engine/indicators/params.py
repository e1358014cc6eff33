"""Typed parameters of the indicators: defaults, bounds and cross-checks in one place."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ktrdr.engine.indicators.spec import Params, PriceSource

_MAX_PERIOD = 10_000


def _period(default: int, minimum: int = 1) -> int:
    return Field(default, ge=minimum, le=_MAX_PERIOD, description="look-back in bars")


class PeriodParams(Params):
    period: int = _period(14)


class SourcePeriodParams(PeriodParams):
    source: PriceSource = "close"


class SmaParams(SourcePeriodParams):
    period: int = _period(20)


class RocParams(SourcePeriodParams):
    period: int = _period(10)


class KamaParams(SourcePeriodParams):
    period: int = _period(10)
    fast: int = Field(2, ge=1, le=_MAX_PERIOD, description="fastest EMA period")
    slow: int = Field(30, ge=2, le=_MAX_PERIOD, description="slowest EMA period")

    @model_validator(mode="after")
    def _fast_below_slow(self) -> KamaParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be smaller than slow ({self.slow})")
        return self


class MacdParams(Params):
    fast_period: int = Field(12, ge=1, le=_MAX_PERIOD)
    slow_period: int = Field(26, ge=2, le=_MAX_PERIOD)
    signal_period: int = Field(9, ge=1, le=_MAX_PERIOD)
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
    period: int = _period(20, 2)
    num_std: float = Field(2.0, gt=0, le=100)
    source: PriceSource = "close"


class StochasticParams(Params):
    k_period: int = _period(14)
    d_period: int = _period(3)


class SlowStochasticParams(StochasticParams):
    k_period: int = _period(5)
    slowing: int = _period(3)


class StochRsiParams(SourcePeriodParams):
    k_period: int = _period(5)
    d_period: int = _period(3)


class CciParams(Params):
    period: int = _period(20, 2)
    constant: float = Field(0.015, gt=0, le=1)


class AroonParams(Params):
    period: int = _period(25)


class KeltnerParams(Params):
    period: int = _period(20)
    atr_period: int = _period(10)
    multiplier: float = Field(2.0, gt=0, le=100)


class SuperTrendParams(Params):
    period: int = _period(10)
    multiplier: float = Field(3.0, gt=0, le=100)


class PsarParams(Params):
    acceleration: float = Field(0.02, gt=0, le=1)
    maximum: float = Field(0.2, gt=0, le=1)

    @model_validator(mode="after")
    def _step_within_max(self) -> PsarParams:
        if self.acceleration > self.maximum:
            raise ValueError(
                f"acceleration ({self.acceleration}) must not exceed maximum ({self.maximum})"
            )
        return self


class IchimokuParams(Params):
    conversion: int = _period(9)
    base: int = _period(26)
    span_b: int = _period(52)


class VolatilityParams(SourcePeriodParams):
    period: int = _period(20, 2)
    bars_per_year: float | None = Field(
        None, gt=0, le=1e7, description="annualise by √bars_per_year (e.g. 252 for daily stocks)"
    )


class VwapParams(PeriodParams):
    anchor: Literal["rolling", "day", "week"] = Field(
        "rolling", description="rolling over `period` bars, or reset each UTC day / week"
    )


class NoParams(Params):
    pass
