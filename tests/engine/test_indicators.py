"""Indicators TA-Lib lacks, against the `ta` library or by hand; flat-window behaviour of
every indicator; the registry's parameter checks. (TA-Lib comparisons are in
test_indicators_talib.py.)"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import ta

from ktrdr.engine.indicators import INDICATORS, get_indicator, parse_params
from ktrdr.engine.indicators import functions as f

# Recursive indicators seeded differently by `ta` agree once the seed has faded.
SETTLED = 300


def _close(a: pd.Series, b: pd.Series, start: int = 0, tol: float = 1e-9) -> None:
    x, y = a.to_numpy()[start:], b.to_numpy()[start:]
    np.testing.assert_array_equal(np.isnan(x), np.isnan(y))
    np.testing.assert_allclose(x, y, rtol=tol, atol=tol, equal_nan=True)


def test_channels_match_ta(bars_1h: pd.DataFrame) -> None:
    h, lo, c, v = bars_1h["high"], bars_1h["low"], bars_1h["close"], bars_1h["volume"]
    ref = ta.volatility.DonchianChannel(h, lo, c, 20)
    ours = f.donchian(h, lo, 20)
    _close(ours["upper"], ref.donchian_channel_hband())
    _close(ours["lower"], ref.donchian_channel_lband())
    _close(ours["middle"], ref.donchian_channel_mband())
    kelt = ta.volatility.KeltnerChannel(h, lo, c, 20, 10, original_version=False, multiplier=2)
    ours = f.keltner(h, lo, c, 20, 10, 2.0)
    _close(ours["upper"], kelt.keltner_channel_hband(), SETTLED, 1e-7)
    _close(ours["lower"], kelt.keltner_channel_lband(), SETTLED, 1e-7)
    ref_vwap = ta.volume.VolumeWeightedAveragePrice(h, lo, c, v, 14)
    _close(f.vwap(h, lo, c, v, 14), ref_vwap.volume_weighted_average_price())


def test_ichimoku_spans_are_ta_values_displaced_forward(bars_1h: pd.DataFrame) -> None:
    h, lo = bars_1h["high"], bars_1h["low"]
    ref = ta.trend.IchimokuIndicator(h, lo, 9, 26, 52, visual=False)
    ours = f.ichimoku(h, lo, 9, 26, 52)
    _close(ours["conversion"], ref.ichimoku_conversion_line())
    _close(ours["base"], ref.ichimoku_base_line())
    # What ta shows at bar t-26 is what stands at bar t here: no value from the future.
    # (ta fills its spans' first bars from partial windows; compare once both are full.)
    _close(ours["span_a"], ref.ichimoku_a().shift(26), 52 + 26)
    _close(ours["span_b"], ref.ichimoku_b().shift(26), 52 + 26)


def test_zscore_volatility_and_slope_by_hand(bars_1h: pd.DataFrame) -> None:
    c = bars_1h["close"]
    window = c.iloc[80:100].to_numpy()
    assert f.zscore(c, 20).iloc[99] == pytest.approx((window[-1] - window.mean()) / window.std())
    returns = np.diff(np.log(c.iloc[79:100].to_numpy()))
    expected = returns.std(ddof=1) * np.sqrt(8760)
    assert f.volatility(c, 20, 8760).iloc[99] == pytest.approx(expected, rel=1e-12)
    slope = np.polyfit(np.arange(14), c.iloc[86:100].to_numpy(), 1)[0]
    assert f.linreg_slope(c, 14).iloc[99] == pytest.approx(slope, rel=1e-9)


def test_session_vwap_restarts_each_day() -> None:
    idx = pd.date_range("2024-01-01 22:00", periods=4, freq="1h", tz="UTC")
    px = pd.Series([10.0, 20.0, 30.0, 40.0], index=idx)
    vol = pd.Series([1.0, 3.0, 1.0, 1.0], index=idx)
    out = f.vwap(px, px, px, vol, 3, anchor="day")
    # 22:00, 23:00 on Jan 1, then a new session at 00:00 on Jan 2.
    np.testing.assert_allclose(out, [10.0, (10 + 60) / 4, 30.0, 35.0])


def test_supertrend_flips_when_the_close_crosses_its_band() -> None:
    idx = pd.date_range("2024-01-01", periods=40, freq="1D", tz="UTC")
    up = np.linspace(100, 140, 20)
    down = np.linspace(139, 90, 20)
    close = pd.Series(np.r_[up, down], index=idx)
    out = f.supertrend(close + 1, close - 1, close, 5, 2.0)
    direction = out["direction"].to_numpy()
    assert np.isnan(direction[:5]).all()
    assert (direction[5:20] == 1).all()
    flip = int(np.argmax(direction[20:] == -1)) + 20
    assert (direction[flip:] == -1).all()
    # Up-trend: the line is the (ratcheting) lower band, below every close.
    line = out["value"].to_numpy()
    assert (line[5:flip] < close.to_numpy()[5:flip]).all()
    assert (np.diff(line[5:20]) >= 0).all()
    assert (line[flip:] > close.to_numpy()[flip:]).all()


# Exact readings on a perfectly flat market (price 1.1 for 400 bars): averages and bands
# sit on the price, deviations and differences are exactly 0, and 0/0 ratios are NaN —
# never rounding noise with a sign (CCI read ±66.67 here before).
FLAT_LEVEL = 1.1
FLAT_EXPECTED = {
    "level": {"sma", "ema", "wma", "dema", "tema", "trima", "kama", "bbands.upper",
              "bbands.middle", "bbands.lower", "keltner.middle", "keltner.upper",
              "keltner.lower", "donchian.upper", "donchian.lower", "donchian.middle",
              "supertrend.value", "psar", "ichimoku.conversion", "ichimoku.base",
              "ichimoku.span_a", "ichimoku.span_b", "vwap"},
    0.0: {"macd.macd", "macd.signal", "macd.histogram", "roc", "rocp", "momentum", "trix",
          "cci", "aroon.oscillator", "atr", "natr", "adx.adx", "adx.plus_di", "adx.minus_di",
          "bbands.bandwidth", "stddev", "volatility", "linreg_slope", "ad"},
    "nan": {"rsi", "cmo", "stochastic.k", "stochastic.d", "stochastic_slow.k",
            "stochastic_slow.d", "stoch_rsi.k", "stoch_rsi.d", "williams_r", "mfi", "bop",
            "bbands.percent_b", "zscore"},
    1.0: {"rocr", "supertrend.direction"},
    100.0: {"aroon.up", "aroon.down"},
    1000.0: {"obv"},
}  # fmt: skip


def _flat_bars(level: float = FLAT_LEVEL) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=400, freq="1h", tz="UTC")
    return pd.DataFrame(
        {"open": level, "high": level, "low": level, "close": level, "volume": 1000.0},
        index=idx,
    )


def test_every_indicator_reads_exactly_on_a_flat_market() -> None:
    bars = _flat_bars()
    seen = set()
    for name, spec in INDICATORS.items():
        params, _ = parse_params(spec, {})
        for output, series in spec.compute(bars, params).items():
            key = name if output == "value" and len(spec.outputs) == 1 else f"{name}.{output}"
            seen.add(key)
            tail = series.to_numpy()[-100:]
            expected = next(v for v, keys in FLAT_EXPECTED.items() if key in keys)
            if expected == "nan":
                assert np.isnan(tail).all(), key
            else:
                target = FLAT_LEVEL if expected == "level" else float(expected)
                np.testing.assert_allclose(tail, target, rtol=1e-14, atol=0, err_msg=key)
                if target == 0.0:
                    assert (tail == 0.0).all(), f"{key}: rounding noise {tail[tail != 0][:3]}"
    assert seen == set().union(*FLAT_EXPECTED.values())


def test_cci_is_zero_on_a_flat_window_and_near_flat_noise() -> None:
    # The independent check's case: a constant price gave ±66.67.
    for level in (1.1, 0.3, 123.456, 1e-5):
        bars = _flat_bars(level)
        out = f.cci(bars["high"], bars["low"], bars["close"], 20, 0.015)
        assert (out.iloc[19:] == 0.0).all(), level
    # A real move after the flat run reads as a real move.
    bars = _flat_bars()
    bars.iloc[-1, :4] = FLAT_LEVEL * 1.001
    out = f.cci(bars["high"], bars["low"], bars["close"], 20, 0.015)
    window = np.r_[np.full(19, FLAT_LEVEL), FLAT_LEVEL * 1.001]
    mad = np.abs(window - window.mean()).mean()
    assert out.iloc[-1] == pytest.approx((window[-1] - window.mean()) / (0.015 * mad))
    assert out.iloc[-1] == pytest.approx(10 / 0.015)  # one bar out of 20: (19/20)/(38/400)


def test_sma_crossover_does_not_fire_on_rounding_noise() -> None:
    from ktrdr.engine.signals import _crossover

    bars = _flat_bars()
    fast, slow = f.sma(bars["close"], 10), f.sma(bars["close"], 30)
    codes = _crossover(fast.to_numpy(), slow.to_numpy())
    assert (codes == 0).all()


def test_rsi_and_obv_on_hand_series() -> None:
    c = pd.Series([1.0, 2.0, 3.0, 2.0, 2.0, 4.0])
    v = pd.Series([10.0, 10.0, 20.0, 5.0, 7.0, 1.0])
    # OBV starts at the first bar's volume (TA-Lib's convention).
    np.testing.assert_allclose(f.obv(c, v), [10, 20, 40, 35, 35, 36])
    # period 2: first avg gain (1+1)/2=1, loss 0 -> RSI 100; then gain (1*1+0)/2=.5,
    # loss (0+1)/2=.5 -> 50; then .25/.25 -> 50; then (0.25+2)/2=1.125, .125 -> 90.
    np.testing.assert_allclose(f.rsi(c, 2).to_numpy()[2:], [100.0, 50.0, 50.0, 90.0])


def test_registry_computes_every_indicator_with_defaults(bars_1h: pd.DataFrame) -> None:
    for name, spec in INDICATORS.items():
        params, problems = parse_params(spec, {})
        assert problems == [] and params is not None, name
        outputs = spec.compute(bars_1h, params)
        assert tuple(outputs) == spec.outputs or set(outputs) == set(spec.outputs), name
        assert outputs[spec.primary_output].iloc[-100:].notna().all(), name


def test_get_indicator_unknown_name_suggests_closest() -> None:
    with pytest.raises(ValueError, match=r"unknown indicator 'rsii' \(did you mean 'rsi'\?\)"):
        get_indicator("rsii")


def test_parse_params_misspelt_parameter_suggests_closest() -> None:
    params, problems = parse_params(get_indicator("macd"), {"fast": 5, "slow_period": 20})
    assert params is None
    assert len(problems) == 1
    assert "unknown parameter 'fast'" in problems[0]
    assert "did you mean 'fast_period'?" in problems[0]


def test_parse_params_rejects_bad_values() -> None:
    _, problems = parse_params(get_indicator("sma"), {"period": 0})
    assert problems and "period" in problems[0] and "greater than or equal to 1" in problems[0]
    _, problems = parse_params(get_indicator("macd"), {"fast_period": 30})
    assert problems == [
        "parameters of indicator 'macd': fast_period (30) must be smaller than slow_period (26)"
    ]
