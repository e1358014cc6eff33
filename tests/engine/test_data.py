"""Data store, synthetic generator, CSV import and the Yahoo provider (no network)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ktrdr.engine.data import (
    DataStore,
    YahooProvider,
    generate_synthetic_bars,
    import_csv,
    read_ohlcv_csv,
    save_synthetic,
)
from ktrdr.engine.errors import DataNotFoundError, DataValidationError
from ktrdr.engine.timeframes import TIMEFRAMES

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def store(tmp_path: Path) -> DataStore:
    return DataStore(tmp_path / "data")


def test_synthetic_is_deterministic_and_ohlc_consistent() -> None:
    for timeframe, step in TIMEFRAMES.items():
        bars = generate_synthetic_bars(timeframe, 2000, seed=3)
        again = generate_synthetic_bars(timeframe, 2000, seed=3)
        pd.testing.assert_frame_equal(bars, again)
        assert not bars.equals(generate_synthetic_bars(timeframe, 2000, seed=4))
        assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
        assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
        assert (bars[["open", "high", "low", "close"]] > 0).all().all()
        assert str(bars.index.tz) == "UTC"
        assert (np.diff(bars.index.as_unit("ns").asi8) == step.value).all(), timeframe
        assert (bars.index.as_unit("ns").asi8 % min(step, pd.Timedelta(days=1)).value == 0).all()


def test_synthetic_has_volatility_regimes() -> None:
    bars = generate_synthetic_bars("1h", 20_000, seed=1)
    vol = np.log(bars["close"]).diff().rolling(500).std().dropna()
    assert vol.max() > 2.5 * vol.min()


def test_store_round_trip_with_source_and_listing(store: DataStore) -> None:
    info = save_synthetic(store, "eurusd", "1h", 500, seed=1)
    assert (info.symbol, info.timeframe, info.rows, info.source) == (
        "EURUSD",
        "1h",
        500,
        "synthetic",
    )
    loaded = store.load("EURUSD", "1h")
    pd.testing.assert_frame_equal(
        loaded, generate_synthetic_bars("1h", 500, seed=1), check_freq=False
    )
    assert store.path("EURUSD", "1h") == store.root / "EURUSD" / "1h.parquet"
    [listed] = store.list()
    assert listed == info
    assert listed.to_dict()["first"] == "2020-01-06T00:00:00+00:00"


def test_load_window_with_warmup_from_history(store: DataStore) -> None:
    save_synthetic(store, "EURUSD", "1h", 500)
    window = store.load("EURUSD", "1h", "2020-01-08", "2020-01-09")
    assert window.index[0] == pd.Timestamp("2020-01-08", tz="UTC")
    assert window.index[-1] == pd.Timestamp("2020-01-09", tz="UTC")  # end is inclusive
    assert len(window) == 25
    warm = store.load("EURUSD", "1h", "2020-01-08", "2020-01-09", warmup_bars=10)
    assert len(warm) == 35
    assert warm.index[10] == pd.Timestamp("2020-01-08", tz="UTC")
    capped = store.load("EURUSD", "1h", "2020-01-06 02:00", "2020-01-07", warmup_bars=10)
    assert capped.index[0] == pd.Timestamp("2020-01-06", tz="UTC")  # only 2 bars existed


def test_load_missing_symbol_names_the_fix(store: DataStore) -> None:
    save_synthetic(store, "EURUSD", "1h", 50)
    with pytest.raises(DataNotFoundError) as info:
        store.load("EURUSX", "1h")
    message = str(info.value)
    assert "no data for EURUSX 1h" in message
    assert "did you mean 'EURUSD'?" in message
    assert "ktrdr data import" in message and "ktrdr data synth" in message
    with pytest.raises(DataNotFoundError, match="EURUSD is stored for timeframe"):
        store.load("EURUSD", "1d")


def test_load_empty_range_and_reversed_dates(store: DataStore) -> None:
    save_synthetic(store, "EURUSD", "1h", 50)
    with pytest.raises(DataNotFoundError, match="stored data covers 2020-01-06T00:00:00"):
        store.load("EURUSD", "1h", "2021-01-01", "2021-02-01")
    with pytest.raises(ValueError, match="is after end"):
        store.load("EURUSD", "1h", "2020-02-01", "2020-01-01")


def test_store_refuses_invalid_symbol_and_timeframe(store: DataStore) -> None:
    with pytest.raises(ValueError, match="invalid symbol"):
        store.path("../etc", "1h")
    with pytest.raises(ValueError, match=r"unknown timeframe '1hr' \(did you mean '1h'\?\)"):
        store.path("EURUSD", "1hr")


def test_gaps_reports_missing_bars(store: DataStore) -> None:
    bars = generate_synthetic_bars("1d", 14, start="2024-01-01")  # Monday
    weekdays = bars[bars.index.day_of_week < 5]
    store.save("SPY", "1d", weekdays.drop(weekdays.index[2]), source="csv")
    gaps = store.gaps("SPY", "1d")
    assert [(g.after.day, g.before.day, g.missing_bars, g.weekend_only) for g in gaps] == [
        (2, 4, 1, False),
        (5, 8, 2, True),
    ]


def test_save_merge_prefers_new_bars(store: DataStore) -> None:
    bars = generate_synthetic_bars("1h", 20)
    store.save("X", "1h", bars.iloc[:12], source="csv")
    newer = bars.iloc[10:] * 1.0
    newer.loc[newer.index[0], ["open", "high", "low", "close"]] = [1.0, 2.0, 0.5, 1.5]
    store.save("X", "1h", newer, source="yahoo", merge=True)
    merged = store.load("X", "1h")
    assert len(merged) == 20
    assert merged["close"].iloc[10] == 1.5
    assert store.info("X", "1h").source == "yahoo"


CSV_HEADER = "Date,Open,High,Low,Close,Volume\n"


def _csv_problems(body: str) -> list[str]:
    with pytest.raises(DataValidationError) as info:
        read_ohlcv_csv(io.StringIO(CSV_HEADER + body))
    return info.value.problems


def test_csv_import_valid_file_with_other_date_name(store: DataStore) -> None:
    text = (
        "timestamp,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n"
        "2024-01-01T01:00:00Z,1.5,2,1,1.8,20\n"
    )
    import_csv(store, "ABC", "1h", io.StringIO(text))
    info = store.info("ABC", "1h")
    assert (info.rows, info.source) == (2, "csv")
    assert store.load("ABC", "1h")["close"].tolist() == [1.5, 1.8]


def test_csv_unsorted_row_is_named_with_fix() -> None:
    problems = _csv_problems("2024-01-02,1,2,0.5,1.5,1\n2024-01-01,1,2,0.5,1.5,1\n")
    assert problems == [
        "row 3: timestamp earlier than the row before; sort the file by date (oldest first)"
    ]


def test_csv_duplicate_row_is_named_with_fix() -> None:
    problems = _csv_problems("2024-01-01,1,2,0.5,1.5,1\n2024-01-01,1,2,0.5,1.5,1\n")
    assert problems == ["row 3: duplicate timestamp; keep one row per timestamp"]


def test_csv_high_below_low_is_named_with_fix() -> None:
    problems = _csv_problems("2024-01-01,1,2,0.5,1.5,1\n2024-01-02,1,0.4,0.5,1,1\n")
    assert problems == ["row 3: high is below low; swap or correct high and low"]


def test_csv_nan_price_is_named_with_fix() -> None:
    problems = _csv_problems("2024-01-01,1,2,0.5,,1\n")
    assert problems == ["row 2: missing (NaN) price; fill in open/high/low/close or delete the row"]


def test_csv_non_numeric_price_is_named_once_with_fix() -> None:
    problems = _csv_problems("2024-01-01,1,2,0.5,1.5,1\n2024-01-02,1,2,0.5,1.5O,1\n")
    assert problems == ["row 3: close is not a number; write it like 1.2345"]


def test_csv_collects_every_problem() -> None:
    problems = _csv_problems(
        "2024-01-03,1,2,0.5,1.5,1\n"  # row 2 ok
        "2024-01-02,1,2,0.5,1.5,1\n"  # row 3 unsorted
        "2024-01-04,1,0.9,0.5,1.5,1\n"  # row 4 high below close
        "2024-01-05,1,2,1.2,1.5,1\n"  # row 5 low above open
        "not a date,1,2,0.5,1.5,1\n"  # row 6
    )
    assert any(p.startswith("row 3: timestamp earlier") for p in problems)
    assert any(p.startswith("row 4: high is below open or close") for p in problems)
    assert any(p.startswith("row 5: low is above open or close") for p in problems)
    assert any(p.startswith("row 6: date 'not a date' is not a date") for p in problems)
    assert len(problems) == 4


def test_csv_missing_columns_are_named() -> None:
    with pytest.raises(DataValidationError, match="missing column"):
        read_ohlcv_csv(io.StringIO("Date,Open,Close\n2024-01-01,1,1\n"))


def _recorded_fetch(calls: list[tuple[str, str, pd.Timestamp, pd.Timestamp]]):  # type: ignore[no-untyped-def]
    """A mock of Yahoo Finance (a third-party service that cannot be reached from here).

    It serves a stored fixture in the shape of a daily `yfinance.Ticker("AAPL").history()`
    response (its columns, New York timestamps). The fixture was written by hand in that
    shape, NOT recorded from the service: this machine has no network, so the real fetch
    (`yfinance_fetch`) is untested here and the prices are not AAPL's."""
    frame = pd.read_csv(FIXTURES / "yahoo_history_AAPL_1d.csv", index_col="Date")
    frame.index = pd.to_datetime(frame.index, utc=True).tz_convert("America/New_York")

    def fetch(symbol: str, interval: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        calls.append((symbol, interval, start, end))
        return frame[(frame.index >= start) & (frame.index < end)]

    return fetch


def test_yahoo_download_uses_injected_fetch_and_reports_progress(store: DataStore) -> None:
    calls: list[tuple[str, str, pd.Timestamp, pd.Timestamp]] = []
    progress: list[tuple[float, str, str]] = []
    provider = YahooProvider(fetch=_recorded_fetch(calls))
    provider.download_to_store(
        store,
        "AAPL",
        "1d",
        "2024-01-01",
        "2024-01-13",
        progress=lambda f, p, m: progress.append((f, p, m)),
    )
    bars = store.load("AAPL", "1d")
    assert len(bars) == 9
    assert bars.index[0] == pd.Timestamp("2024-01-02 05:00", tz="UTC")
    assert bars["close"].iloc[0] == pytest.approx(185.639999)
    assert store.info("AAPL", "1d").source == "yahoo"
    assert [c[1] for c in calls] == ["1d"]
    assert progress[-1][0] == 1.0 and progress[-1][1] == "data_download"


def test_yahoo_intraday_is_fetched_in_chunks_yahoo_accepts() -> None:
    calls: list[tuple[str, str, pd.Timestamp, pd.Timestamp]] = []
    fractions: list[float] = []
    provider = YahooProvider(fetch=_recorded_fetch(calls))
    with pytest.raises(DataNotFoundError, match="Yahoo returned no 5m bars"):
        provider.download(
            "AAPL", "5m", "2023-01-01", "2023-06-01", progress=lambda f, p, m: fractions.append(f)
        )
    assert len(calls) == 3  # 151 days in 59-day requests
    assert all(hi - lo <= pd.Timedelta(days=59) for _, _, lo, hi in calls)
    assert calls[0][2] == pd.Timestamp("2023-01-01", tz="UTC")
    assert calls[-1][3] == pd.Timestamp("2023-06-01", tz="UTC")
    assert fractions == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_synthetic_bars_past_2262_are_refused_saying_how_many_fit() -> None:
    from ktrdr.engine.data.synthetic import check_synthetic_span

    # A stock trades ~1,800 hours a year: a million hourly bars would need ~550 years.
    with pytest.raises(ValueError, match=r"1,000,000 1h bars of a stock market from 2020-01-06 "
                       r"would run past 2262.*at most about 3\d\d,\d\d\d fit"):  # fmt: skip
        check_synthetic_span("1h", 1_000_000, start="2020-01-06", market="stock")
    check_synthetic_span("1h", 1_000_000, start="2020-01-06", market="fx")  # ~160 years
    # Close to the limit the bars are generated (the grid is sized, not doubled past 2262).
    bars = generate_synthetic_bars("1d", 60_000, market="stock")
    assert len(bars) == 60_000 and bars.index[-1].year < 2262
