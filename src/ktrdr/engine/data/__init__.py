"""Market data: a local Parquet store and its providers (CSV, Yahoo download, synthetic)."""

from ktrdr.engine.data.csv_import import CSV_SOURCE, import_csv, read_ohlcv_csv
from ktrdr.engine.data.store import DatasetInfo, DataStore, Gap, normalize_symbol
from ktrdr.engine.data.synthetic import SYNTHETIC_SOURCE, generate_synthetic_bars
from ktrdr.engine.data.validation import validate_ohlcv
from ktrdr.engine.data.yahoo import YAHOO_SOURCE, YahooProvider

__all__ = [
    "CSV_SOURCE",
    "SYNTHETIC_SOURCE",
    "YAHOO_SOURCE",
    "DataStore",
    "DatasetInfo",
    "Gap",
    "YahooProvider",
    "generate_synthetic_bars",
    "import_csv",
    "normalize_symbol",
    "read_ohlcv_csv",
    "save_synthetic",
    "validate_ohlcv",
]


def save_synthetic(
    store: DataStore,
    symbol: str,
    timeframe: str,
    n_bars: int,
    *,
    seed: int = 0,
    start: str = "2020-01-06",
    start_price: float = 100.0,
) -> DatasetInfo:
    """Generate synthetic bars for ``symbol`` and store them with source "synthetic"."""
    bars = generate_synthetic_bars(
        timeframe, n_bars, seed=seed, start=start, start_price=start_price
    )
    store.save(symbol, timeframe, bars, source=SYNTHETIC_SOURCE)
    return store.info(symbol, timeframe)
