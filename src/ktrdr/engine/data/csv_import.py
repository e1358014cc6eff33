"""CSV provider: ``date,open,high,low,close,volume`` files, validated before anything is stored."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ktrdr.engine.data.store import DataStore
from ktrdr.engine.data.validation import OHLCV_COLUMNS, validate_ohlcv
from ktrdr.engine.errors import DataValidationError

CSV_SOURCE = "csv"
_DATE_NAMES = ("date", "datetime", "timestamp", "time", "date_time", "dt")
# Header line is line 1, so data row i (0-based) is on line i + 2.
_FIRST_DATA_LINE = 2


def read_ohlcv_csv(
    source: str | os.PathLike[str] | io.TextIOBase, *, date_column: str | None = None
) -> pd.DataFrame:
    """Parse and validate an OHLCV CSV; raise DataValidationError listing every bad row.

    Column names are case-insensitive; the date column may be called date, datetime,
    timestamp or time (or be named with ``date_column``). Naive dates are taken as UTC.
    Rows are numbered as lines of the file (the header is line 1).
    """
    name = str(source) if isinstance(source, str | os.PathLike) else "CSV"
    raw = pd.read_csv(source, dtype=str, skipinitialspace=True)
    raw.columns = [str(c).strip() for c in raw.columns]
    lower = {c.lower(): c for c in raw.columns}
    date_col = _find_date_column(lower, date_column)
    missing = [c for c in OHLCV_COLUMNS if c not in lower]
    if date_col is None or missing:
        need = ([] if date_col else ["a date column (date/datetime/timestamp)"]) + missing
        raise DataValidationError(
            [
                f"missing column(s): {', '.join(need)}; the header must be "
                f"date,open,high,low,close,volume (found: {', '.join(raw.columns)})"
            ],
            source=name,
        )
    lines = np.arange(len(raw)) + _FIRST_DATA_LINE
    problems: list[str] = []
    stamps = pd.to_datetime(raw[date_col], errors="coerce", utc=True, format="mixed")
    bars = pd.DataFrame(index=pd.DatetimeIndex(stamps, name="timestamp"))
    # Rows already reported (a cell or the date that does not parse) are left out of the
    # checks below, so each problem is named once.
    bad_date = np.array(bars.index.isna())  # a copy: pandas caches the mask it returns
    reported = bad_date.copy()
    for col in OHLCV_COLUMNS:
        text = raw[lower[col]]
        values = pd.to_numeric(text, errors="coerce")
        bad = (values.isna() & text.notna() & (text.str.strip().str.lower() != "nan")).to_numpy()
        for line in lines[bad][:20]:
            problems.append(f"row {line}: {col} is not a number; write it like 1.2345")
        reported |= bad
        bars[col] = values.to_numpy(dtype=float)
    for line in lines[bad_date][:20]:
        problems.append(
            f"row {line}: date {raw[date_col].iloc[line - _FIRST_DATA_LINE]!r} is not a "
            "date; use ISO format like 2024-01-31 or 2024-01-31T13:00:00Z"
        )
    bars, lines = bars[~reported], lines[~reported]
    bars["volume"] = bars["volume"].fillna(0.0)
    problems += validate_ohlcv(bars, row_numbers=lines)
    if problems:
        raise DataValidationError(problems, source=name)
    return bars


def import_csv(
    store: DataStore,
    symbol: str,
    timeframe: str,
    source: str | os.PathLike[str] | io.TextIOBase,
    *,
    date_column: str | None = None,
    merge: bool = False,
) -> Path:
    """Validate a CSV and store it as ``symbol``/``timeframe`` with source "csv"."""
    bars = read_ohlcv_csv(source, date_column=date_column)
    return store.save(symbol, timeframe, bars, source=CSV_SOURCE, merge=merge)


def _find_date_column(lower: dict[str, str], requested: str | None) -> str | None:
    if requested is not None:
        return lower.get(requested.lower())
    for name in _DATE_NAMES:
        if name in lower:
            return lower[name]
    return None
