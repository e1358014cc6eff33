"""Every indicator a strategy can name: parameters, outputs, function, warm-up.

The warm-up is the history loaded before a backtest's window: the bars until the first
value exists, and for recursive indicators (EMA, Wilder smoothing, KAMA, SAR) several
periods more, so the seed has faded to noise by the first traded bar.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from ktrdr.engine.indicators import averages as avg
from ktrdr.engine.indicators import oscillators as osc
from ktrdr.engine.indicators import params as pm
from ktrdr.engine.indicators import volatility as vol
from ktrdr.engine.indicators import volume as vlm
from ktrdr.engine.indicators.spec import IndicatorSpec, Params, frame, hlc, price

Compute = Callable[[pd.DataFrame, Any], pd.Series]


def _single(
    name: str, model: type[Params], fn: Compute, description: str, warmup: Callable[[Any], int]
) -> IndicatorSpec:
    """An indicator with one output, ``value``."""
    return IndicatorSpec(
        name, model, ("value",), lambda b, p: {"value": fn(b, p)}, description, warmup
    )


_SPECS = [
    # ---- moving averages
    _single("sma", pm.SmaParams, lambda b, p: avg.sma(price(b, p.source), p.period),
            "simple moving average", lambda p: p.period),
    _single("ema", pm.SmaParams, lambda b, p: avg.ema(price(b, p.source), p.period),
            "exponential moving average (seeded with the SMA of the first period)",
            lambda p: 4 * p.period),
    _single("wma", pm.SmaParams, lambda b, p: avg.wma(price(b, p.source), p.period),
            "linearly weighted moving average", lambda p: p.period),
    _single("dema", pm.SmaParams, lambda b, p: avg.dema(price(b, p.source), p.period),
            "double exponential moving average", lambda p: 6 * p.period),
    _single("tema", pm.SmaParams, lambda b, p: avg.tema(price(b, p.source), p.period),
            "triple exponential moving average", lambda p: 8 * p.period),
    _single("trima", pm.SmaParams, lambda b, p: avg.trima(price(b, p.source), p.period),
            "triangular moving average", lambda p: p.period + 1),
    _single("kama", pm.KamaParams,
            lambda b, p: avg.kama(price(b, p.source), p.period, p.fast, p.slow),
            "Kaufman's adaptive moving average", lambda p: p.period + 4 * p.slow),
    # ---- momentum
    _single("rsi", pm.SourcePeriodParams, lambda b, p: osc.rsi(price(b, p.source), p.period),
            "Wilder's relative strength index, 0..100", lambda p: 5 * p.period),
    _single("cmo", pm.SourcePeriodParams, lambda b, p: osc.cmo(price(b, p.source), p.period),
            "Chande momentum oscillator, -100..100", lambda p: 5 * p.period),
    IndicatorSpec("macd", pm.MacdParams, ("macd", "signal", "histogram"),
                  lambda b, p: frame(osc.macd(price(b, p.source), p.fast_period,
                                              p.slow_period, p.signal_period)),
                  "MACD line, signal line and histogram",
                  lambda p: 4 * p.slow_period + p.signal_period),
    _single("roc", pm.RocParams, lambda b, p: osc.roc(price(b, p.source), p.period),
            "rate of change in percent", lambda p: p.period),
    _single("rocp", pm.RocParams, lambda b, p: osc.rocp(price(b, p.source), p.period),
            "rate of change as a fraction", lambda p: p.period),
    _single("rocr", pm.RocParams, lambda b, p: osc.rocr(price(b, p.source), p.period),
            "rate of change as a ratio", lambda p: p.period),
    _single("momentum", pm.RocParams, lambda b, p: osc.momentum(price(b, p.source), p.period),
            "price change over the period", lambda p: p.period),
    _single("trix", pm.RocParams, lambda b, p: osc.trix(price(b, p.source), p.period),
            "1-bar rate of change of a triple EMA, percent", lambda p: 12 * p.period),
    IndicatorSpec("stochastic", pm.StochasticParams, ("k", "d"),
                  lambda b, p: frame(osc.stochastic(*hlc(b), p.k_period, p.d_period)),
                  "fast stochastic %K and %D", lambda p: p.k_period + p.d_period),
    IndicatorSpec("stochastic_slow", pm.SlowStochasticParams, ("k", "d"),
                  lambda b, p: frame(osc.stochastic_slow(*hlc(b), p.k_period, p.slowing,
                                                         p.d_period)),
                  "slow stochastic %K and %D", lambda p: p.k_period + p.slowing + p.d_period),
    IndicatorSpec("stoch_rsi", pm.StochRsiParams, ("k", "d"),
                  lambda b, p: frame(osc.stoch_rsi(price(b, p.source), p.period, p.k_period,
                                                   p.d_period)),
                  "stochastic of RSI, %K and %D",
                  lambda p: 5 * p.period + p.k_period + p.d_period),
    _single("williams_r", pm.PeriodParams, lambda b, p: osc.williams_r(*hlc(b), p.period),
            "Williams %R, -100..0", lambda p: p.period),
    _single("cci", pm.CciParams, lambda b, p: osc.cci(*hlc(b), p.period, p.constant),
            "commodity channel index", lambda p: p.period),
    _single("mfi", pm.PeriodParams, lambda b, p: osc.mfi(*hlc(b), b["volume"], p.period),
            "money flow index, 0..100", lambda p: p.period + 1),
    IndicatorSpec("aroon", pm.AroonParams, ("oscillator", "up", "down"),
                  lambda b, p: frame(osc.aroon(b["high"], b["low"], p.period)),
                  "Aroon up, down and oscillator", lambda p: p.period + 1),
    _single("bop", pm.NoParams, lambda b, p: osc.bop(b["open"], *hlc(b)),
            "balance of power", lambda p: 0),
    # ---- trend strength, volatility, channels
    _single("atr", pm.PeriodParams, lambda b, p: vol.atr(*hlc(b), p.period),
            "Wilder's average true range", lambda p: 5 * p.period),
    _single("natr", pm.PeriodParams, lambda b, p: vol.natr(*hlc(b), p.period),
            "ATR in percent of the close", lambda p: 5 * p.period),
    IndicatorSpec("adx", pm.PeriodParams, ("adx", "plus_di", "minus_di"),
                  lambda b, p: frame(vol.adx(*hlc(b), p.period)),
                  "Wilder's ADX with +DI and -DI", lambda p: 6 * p.period),
    IndicatorSpec("bbands", pm.BollingerParams,
                  ("middle", "upper", "lower", "percent_b", "bandwidth"),
                  lambda b, p: frame(vol.bollinger(price(b, p.source), p.period, p.num_std)),
                  "Bollinger Bands", lambda p: p.period),
    IndicatorSpec("keltner", pm.KeltnerParams, ("middle", "upper", "lower"),
                  lambda b, p: frame(vol.keltner(*hlc(b), p.period, p.atr_period,
                                                 p.multiplier)),
                  "Keltner channel: EMA ± multiplier × ATR",
                  lambda p: 4 * p.period + 5 * p.atr_period),
    IndicatorSpec("donchian", pm.PeriodParams, ("middle", "upper", "lower"),
                  lambda b, p: frame(vol.donchian(b["high"], b["low"], p.period)),
                  "Donchian channel: highest high, lowest low", lambda p: p.period),
    IndicatorSpec("supertrend", pm.SuperTrendParams, ("value", "direction"),
                  lambda b, p: frame(vol.supertrend(*hlc(b), p.period, p.multiplier)),
                  "SuperTrend line and direction (+1 up, -1 down)", lambda p: 5 * p.period),
    _single("psar", pm.PsarParams,
            lambda b, p: vol.psar(b["high"], b["low"], p.acceleration, p.maximum),
            "Wilder's parabolic stop and reverse", lambda p: 50),
    IndicatorSpec("ichimoku", pm.IchimokuParams, ("conversion", "base", "span_a", "span_b"),
                  lambda b, p: frame(vol.ichimoku(b["high"], b["low"], p.conversion, p.base,
                                                  p.span_b)),
                  "Ichimoku conversion/base lines and leading spans (no lagging span)",
                  lambda p: p.span_b + p.base),
    _single("stddev", pm.SourcePeriodParams,
            lambda b, p: vol.rolling_std(price(b, p.source), p.period),
            "population standard deviation", lambda p: p.period),
    _single("zscore", pm.SmaParams, lambda b, p: vol.zscore(price(b, p.source), p.period),
            "z-score of the price against its SMA", lambda p: p.period),
    _single("volatility", pm.VolatilityParams,
            lambda b, p: vol.volatility(price(b, p.source), p.period, p.bars_per_year),
            "rolling σ of log returns (annualised with bars_per_year)",
            lambda p: p.period + 1),
    _single("linreg_slope", pm.SourcePeriodParams,
            lambda b, p: vol.linreg_slope(price(b, p.source), p.period),
            "least-squares slope per bar", lambda p: p.period),
    # ---- volume
    _single("obv", pm.NoParams, lambda b, p: vlm.obv(b["close"], b["volume"]),
            "on-balance volume", lambda p: 0),
    _single("ad", pm.NoParams, lambda b, p: vlm.ad(*hlc(b), b["volume"]),
            "Chaikin accumulation/distribution line", lambda p: 0),
    _single("vwap", pm.VwapParams,
            lambda b, p: vlm.vwap(*hlc(b), b["volume"], p.period, p.anchor),
            "volume-weighted average price (rolling, or per day / week)", lambda p: p.period),
]  # fmt: skip

INDICATORS: dict[str, IndicatorSpec] = {s.name: s for s in _SPECS}
