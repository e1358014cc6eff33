"""Every indicator function in one namespace (they live in averages, oscillators,
volatility and volume)."""

from ktrdr.engine.indicators.averages import dema, ema, kama, sma, tema, trima, wilder, wma
from ktrdr.engine.indicators.oscillators import (
    aroon,
    bop,
    cci,
    cmo,
    macd,
    mfi,
    momentum,
    roc,
    rocp,
    rocr,
    rsi,
    stoch_rsi,
    stochastic,
    stochastic_slow,
    trix,
    williams_r,
)
from ktrdr.engine.indicators.volatility import (
    adx,
    atr,
    bollinger,
    donchian,
    ichimoku,
    keltner,
    linreg_slope,
    natr,
    psar,
    rolling_std,
    supertrend,
    true_range,
    volatility,
    zscore,
)
from ktrdr.engine.indicators.volume import ad, obv, vwap

__all__ = [
    "ad", "adx", "aroon", "atr", "bollinger", "bop", "cci", "cmo", "dema", "donchian", "ema",
    "ichimoku", "kama", "keltner", "linreg_slope", "macd", "mfi", "momentum", "natr", "obv",
    "psar", "roc", "rocp", "rocr", "rolling_std", "rsi", "sma", "stoch_rsi", "stochastic",
    "stochastic_slow", "supertrend", "tema", "trima", "trix", "true_range", "volatility",
    "vwap", "wilder", "williams_r", "wma", "zscore",
]  # fmt: skip
