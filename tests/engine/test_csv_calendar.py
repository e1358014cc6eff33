"""CSV files as they come (delimiters, decimal commas, Adj Close, no timeframe given) and
gaps counted against the market's calendar; synthetic FX bars keep FX hours."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ktrdr.engine.data import DataStore, generate_synthetic_bars
from ktrdr.engine.data.calendars import fx_open, market_of
from ktrdr.engine.data.csv_import import infer_timeframe, read_ohlcv_csv
from ktrdr.engine.errors import DataValidationError

# NYSE sessions of January 2024 (1st and 15th are holidays, weekends closed), bar the 10th.
SESSIONS = [
    d for d in pd.bdate_range("2024-01-02", "2024-01-31")
    if d not in (pd.Timestamp("2024-01-15"), pd.Timestamp("2024-01-10"))
]  # fmt: skip


def yahoo_like_csv(sep: str = ",", dec: str = ".") -> str:
    rows = ["Date,Open,High,Low,Close,Adj Close,Volume".replace(",", sep)]
    for i, day in enumerate(SESSIONS):
        values = [100 + i, 102 + i, 99 + i, 101 + i + 0.5, (101 + i + 0.5) / 2, 1000]
        cells = [f"{v:.2f}".replace(".", dec) if j < 5 else str(v) for j, v in enumerate(values)]
        rows.append(sep.join([day.date().isoformat(), *cells]))
    return "\n".join(rows) + "\n"


def test_delimiter_and_decimal_are_detected() -> None:
    plain = read_ohlcv_csv(yahoo_like_csv())
    european = read_ohlcv_csv(yahoo_like_csv(";", ","))
    tabbed = read_ohlcv_csv(yahoo_like_csv("\t").encode())
    pd.testing.assert_frame_equal(plain, european)
    pd.testing.assert_frame_equal(plain, tabbed)
    assert plain["close"].iloc[0] == 101.5 and len(plain) == len(SESSIONS)


def test_adj_close_is_used_only_when_asked_and_never_silently() -> None:
    as_traded = read_ohlcv_csv(yahoo_like_csv())
    assert as_traded["close"].iloc[0] == 101.5
    assert "'Adj Close' is present and not used" in as_traded.attrs["notes"][0]
    adjusted = read_ohlcv_csv(yahoo_like_csv(), adjusted=True)
    assert adjusted["close"].iloc[0] == 50.75  # Adj Close
    assert adjusted["open"].iloc[0] == pytest.approx(100 * 50.75 / 101.5)
    assert adjusted.attrs["notes"] == [
        "close: 'Adj Close' (adjusted); open, high and low scaled by Adj Close / Close"
    ]
    with pytest.raises(DataValidationError, match="--adjusted needs an 'Adj Close' column"):
        read_ohlcv_csv(
            "date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n", adjusted=True
        )


def test_timeframe_is_inferred_from_the_timestamps() -> None:
    assert infer_timeframe(read_ohlcv_csv(yahoo_like_csv()).index) == "1d"
    hourly = pd.date_range("2024-01-01", periods=50, freq="1h", tz="UTC")
    assert infer_timeframe(hourly) == "1h"
    with pytest.raises(ValueError, match="mostly 0 days 00:07:00 apart"):
        infer_timeframe(pd.date_range("2024-01-01", periods=50, freq="7min", tz="UTC"))


def test_gaps_are_counted_against_the_market_calendar(tmp_path: Path) -> None:
    store = DataStore(tmp_path)
    store.save("GOOG", "1d", read_ohlcv_csv(yahoo_like_csv()), source="csv")
    (gap,) = store.gaps("GOOG", "1d", market_of("GOOG"))  # weekends and holidays are not
    assert (gap.after, gap.before, gap.missing_bars) == (
        pd.Timestamp("2024-01-09", tz="UTC"), pd.Timestamp("2024-01-11", tz="UTC"), 1,
    )  # fmt: skip
    assert len(store.gaps("GOOG", "1d")) == 5  # the plain grid: 4 weekends and the 10th

    crypto = generate_synthetic_bars("1h", 500, market="crypto")
    store.save("BTC-USD", "1h", crypto.drop(crypto.index[100:103]), source="synthetic")
    (gap,) = store.gaps("BTC-USD", "1h", market_of("BTC-USD"))
    assert gap.missing_bars == 3 and gap.after == crypto.index[99]

    fx = generate_synthetic_bars("1h", 500, market="fx")
    assert fx_open(fx.index).all() and len(fx) == 500
    assert not ((fx.index.day_of_week == 5).any())  # no Saturday bars
    store.save("EURUSD", "1h", fx, source="synthetic")
    assert store.gaps("EURUSD", "1h", market_of("EURUSD")) == []
    assert [market_of(s) for s in ("EURUSD", "EURUSD=X", "BTC-USD", "GOOG", "BRK.B")] == [
        "fx", "fx", "crypto", "stock", "stock",
    ]  # fmt: skip
