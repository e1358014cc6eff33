"""Every indicator TA-Lib also has, checked against TA-Lib (test-only oracle).

Two series: real-shaped OHLCV (a synthetic random walk with volume), and one with flat
runs (constant prices for many bars) and gaps (jumps between bars, missing hours). The
warm-up (leading NaN) length must be TA-Lib's, and every value after it must agree to
1e-9 relative. Where KTRDR deliberately differs — NaN instead of TA-Lib's 0 for a 0/0
reading on a flat window — the difference is asserted exactly, not skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ktrdr.engine.data import generate_synthetic_bars
from ktrdr.engine.indicators import get_indicator, parse_params

talib = pytest.importorskip("talib")

REL_TOL = 1e-9


def _flat_and_gappy() -> pd.DataFrame:
    bars = generate_synthetic_bars("1h", 1500, seed=11).copy()
    for start, length in ((200, 60), (700, 45), (1100, 80)):
        level = float(bars["close"].iloc[start - 1])
        for col in ("open", "high", "low", "close"):
            bars.iloc[start : start + length, bars.columns.get_loc(col)] = level
    # Gaps: price jumps 3% between two bars, and 30 missing hours.
    bars.iloc[900:, :4] *= 1.03
    return bars.drop(bars.index[400:430])


SERIES = {
    "random_walk": generate_synthetic_bars("1h", 3000, seed=7),
    "flat_runs_and_gaps": _flat_and_gappy(),
}


def _near_flat(bars: pd.DataFrame, bars_after: int = 30) -> np.ndarray:
    """Bars inside a flat run or up to ``bars_after`` bars after one."""
    close = bars["close"].to_numpy()
    flat = np.r_[False, close[1:] == close[:-1]] & (bars["high"] == bars["low"]).to_numpy()
    return pd.Series(flat).rolling(bars_after, min_periods=1).max().to_numpy().astype(bool)


NEAR_FLAT = {name: _near_flat(bars) for name, bars in SERIES.items()}


@dataclass(frozen=True)
class Case:
    indicator: str
    params: dict[str, Any]
    output: str
    reference: Callable[[dict[str, np.ndarray]], np.ndarray]
    # 0/0 windows: KTRDR gives NaN where TA-Lib gives this value ...
    flat_value: float | None = None
    # ... or NaN near flat runs where TA-Lib divides rounding noise by rounding noise, or
    # averages such readings (%D, slow %K): any value there is an artefact.
    smoothed: bool = False
    # Standard deviations: TA-Lib's sqrt(E[x²] − E[x]²) cancels to ~1e-8 of the price on a
    # flat window, where ours is exactly 0; allow that near flat runs only.
    cancellation: bool = False


def _c(name: str, params: dict[str, Any], ref: Callable[..., Any], output: str = "value",
       flat: float | None = None, smoothed: bool = False,
       cancellation: bool = False) -> Case:  # fmt: skip
    return Case(name, params, output, ref, flat, smoothed, cancellation)


CASES = [
    _c("sma", {"period": 20}, lambda b: talib.SMA(b["close"], 20)),
    _c("ema", {"period": 20}, lambda b: talib.EMA(b["close"], 20)),
    _c("wma", {"period": 20}, lambda b: talib.WMA(b["close"], 20)),
    _c("dema", {"period": 15}, lambda b: talib.DEMA(b["close"], 15)),
    _c("tema", {"period": 10}, lambda b: talib.TEMA(b["close"], 10)),
    _c("trima", {"period": 20}, lambda b: talib.TRIMA(b["close"], 20)),
    _c("trima", {"period": 15}, lambda b: talib.TRIMA(b["close"], 15)),
    _c("kama", {"period": 10}, lambda b: talib.KAMA(b["close"], 10)),
    _c("rsi", {"period": 14}, lambda b: talib.RSI(b["close"], 14), flat=0.0),
    _c("cmo", {"period": 14}, lambda b: talib.CMO(b["close"], 14), flat=0.0),
    _c("macd", {}, lambda b: talib.MACD(b["close"], 12, 26, 9)[0], "macd"),
    _c("macd", {}, lambda b: talib.MACD(b["close"], 12, 26, 9)[1], "signal"),
    _c("macd", {}, lambda b: talib.MACD(b["close"], 12, 26, 9)[2], "histogram"),
    _c("macd", {"fast_period": 5, "slow_period": 35, "signal_period": 5},
       lambda b: talib.MACD(b["close"], 5, 35, 5)[0], "macd"),
    _c("roc", {"period": 10}, lambda b: talib.ROC(b["close"], 10)),
    _c("rocp", {"period": 10}, lambda b: talib.ROCP(b["close"], 10)),
    _c("rocr", {"period": 10}, lambda b: talib.ROCR(b["close"], 10)),
    _c("momentum", {"period": 10}, lambda b: talib.MOM(b["close"], 10)),
    _c("trix", {"period": 15}, lambda b: talib.TRIX(b["close"], 15)),
    _c("stochastic", {"k_period": 14, "d_period": 3},
       lambda b: talib.STOCHF(b["high"], b["low"], b["close"], 14, 3, 0)[0], "k", 0.0),
    _c("stochastic", {"k_period": 14, "d_period": 3},
       lambda b: talib.STOCHF(b["high"], b["low"], b["close"], 14, 3, 0)[1], "d", 0.0, True),
    _c("stochastic_slow", {"k_period": 5, "slowing": 3, "d_period": 3},
       lambda b: talib.STOCH(b["high"], b["low"], b["close"], 5, 3, 0, 3, 0)[0], "k", 0.0, True),
    _c("stochastic_slow", {"k_period": 5, "slowing": 3, "d_period": 3},
       lambda b: talib.STOCH(b["high"], b["low"], b["close"], 5, 3, 0, 3, 0)[1], "d", 0.0, True),
    _c("stoch_rsi", {"period": 14, "k_period": 5, "d_period": 3},
       lambda b: talib.STOCHRSI(b["close"], 14, 5, 3, 0)[0], "k", 0.0, True),
    _c("stoch_rsi", {"period": 14, "k_period": 5, "d_period": 3},
       lambda b: talib.STOCHRSI(b["close"], 14, 5, 3, 0)[1], "d", 0.0, True),
    _c("williams_r", {"period": 14},
       lambda b: talib.WILLR(b["high"], b["low"], b["close"], 14), flat=0.0),
    _c("cci", {"period": 20}, lambda b: talib.CCI(b["high"], b["low"], b["close"], 20)),
    _c("mfi", {"period": 14},
       lambda b: talib.MFI(b["high"], b["low"], b["close"], b["volume"], 14), flat=0.0),
    _c("aroon", {"period": 25}, lambda b: talib.AROON(b["high"], b["low"], 25)[1], "up"),
    _c("aroon", {"period": 25}, lambda b: talib.AROON(b["high"], b["low"], 25)[0], "down"),
    _c("aroon", {"period": 25}, lambda b: talib.AROONOSC(b["high"], b["low"], 25), "oscillator"),
    _c("bop", {}, lambda b: talib.BOP(b["open"], b["high"], b["low"], b["close"]), flat=0.0),
    _c("atr", {"period": 14}, lambda b: talib.ATR(b["high"], b["low"], b["close"], 14)),
    _c("natr", {"period": 14}, lambda b: talib.NATR(b["high"], b["low"], b["close"], 14)),
    _c("adx", {"period": 14}, lambda b: talib.ADX(b["high"], b["low"], b["close"], 14), "adx"),
    _c("adx", {"period": 14},
       lambda b: talib.PLUS_DI(b["high"], b["low"], b["close"], 14), "plus_di"),
    _c("adx", {"period": 14},
       lambda b: talib.MINUS_DI(b["high"], b["low"], b["close"], 14), "minus_di"),
    _c("bbands", {"period": 20, "num_std": 2.0},
       lambda b: talib.BBANDS(b["close"], 20, 2.0, 2.0, 0)[0], "upper",
       cancellation=True),
    _c("bbands", {"period": 20, "num_std": 2.0},
       lambda b: talib.BBANDS(b["close"], 20, 2.0, 2.0, 0)[1], "middle"),
    _c("bbands", {"period": 20, "num_std": 2.0},
       lambda b: talib.BBANDS(b["close"], 20, 2.0, 2.0, 0)[2], "lower",
       cancellation=True),
    _c("psar", {}, lambda b: talib.SAR(b["high"], b["low"], 0.02, 0.2)),
    _c("stddev", {"period": 20}, lambda b: talib.STDDEV(b["close"], 20, 1.0),
       cancellation=True),
    _c("linreg_slope", {"period": 14}, lambda b: talib.LINEARREG_SLOPE(b["close"], 14)),
    _c("obv", {}, lambda b: talib.OBV(b["close"], b["volume"])),
    _c("ad", {}, lambda b: talib.AD(b["high"], b["low"], b["close"], b["volume"])),
]  # fmt: skip


def _ours(case: Case, bars: pd.DataFrame) -> np.ndarray:
    spec = get_indicator(case.indicator)
    params, problems = parse_params(spec, case.params)
    assert params is not None, problems
    return spec.compute(bars, params)[case.output].to_numpy(dtype=float)


def _ids(case: Case) -> str:
    extra = "-".join(f"{k}{v}" for k, v in case.params.items())
    return f"{case.indicator}.{case.output}" + (f"-{extra}" if extra else "")


@pytest.mark.parametrize("series", list(SERIES))
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_indicator_matches_talib(case: Case, series: str) -> None:
    bars = SERIES[series]
    arrays = {c: bars[c].to_numpy(dtype=np.float64) for c in bars.columns}
    ours, ref = _ours(case, bars), np.asarray(case.reference(arrays), dtype=float)

    # Warm-up: the same number of leading NaNs as TA-Lib.
    lead_ours = int(np.argmax(~np.isnan(ours)))
    lead_ref = int(np.argmax(~np.isnan(ref)))
    assert lead_ours == lead_ref, f"warm-up {lead_ours} bars, TA-Lib {lead_ref}"

    ours, ref = ours[lead_ref:], ref[lead_ref:]
    differs = np.isnan(ours) != np.isnan(ref)
    if case.flat_value is not None:
        # Deliberate: a 0/0 reading is NaN here, TA-Lib's fixed value there; nothing else.
        assert not np.isnan(ref[differs]).any()
        if case.smoothed:
            assert NEAR_FLAT[series][lead_ref:][differs].all(), "NaN away from a flat run"
        else:
            np.testing.assert_array_equal(ref[differs], case.flat_value)
        ref = np.where(differs, np.nan, ref)
    else:
        assert not differs.any(), f"NaN where TA-Lib has none at {np.flatnonzero(differs)[:5]}"
    both = ~np.isnan(ref)
    if case.cancellation:
        near = NEAR_FLAT[series][lead_ref:]
        level = float(np.median(arrays["close"]))
        assert (np.abs(ours - ref)[both & near] <= 1e-7 * level).all()
        both &= ~near
    # Relative to the output's own scale, so values crossing zero (MACD) are fair too.
    scale = max(float(np.nanmedian(np.abs(ref))), 1e-300)
    err = np.abs(ours[both] - ref[both]) / np.maximum(np.abs(ref[both]), scale)
    assert err.max(initial=0.0) <= REL_TOL, f"max relative error {err.max():.3g}"


def test_every_talib_indicator_we_offer_is_covered() -> None:
    from ktrdr.engine.indicators import INDICATORS

    not_in_talib = {
        "keltner", "donchian", "supertrend", "ichimoku", "zscore", "volatility", "vwap",
    }  # fmt: skip
    covered = {case.indicator for case in CASES}
    assert set(INDICATORS) - not_in_talib == covered
    assert len(INDICATORS) >= 30
