"""CSV provider: ``date,open,high,low,close,volume`` files, validated before anything is stored."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ktrdr.engine.data.store import DataStore
from ktrdr.engine.data.validation import OHLCV_COLUMNS, validate_ohlcv
from ktrdr.engine.errors import DataValidationError
from ktrdr.engine.timeframes import TIMEFRAMES

CSV_SOURCE = "csv"
_DATE_NAMES = ("date", "datetime", "timestamp", "time", "date_time", "dt")
# Header line is line 1, so data row i (0-based) is on line i + 2.
_FIRST_DATA_LINE = 2


def read_ohlcv_csv(
    source: str | bytes | os.PathLike[str] | io.TextIOBase,
    *,
    date_column: str | None = None,
    delimiter: str | None = None,
    decimal: str | None = None,
    adjusted: bool = False,
) -> pd.DataFrame:
    """Parse and validate an OHLCV CSV; raise DataValidationError listing every bad row.

    ``source`` is a path, an open text file, or the file's text (str with a newline) or
    bytes. Column names are case-insensitive; the date column may be called date,
    datetime, timestamp or time (or be named with ``date_column``). Naive dates are UTC.
    The delimiter (``,`` ``;`` tab ``|``) and decimal mark (``.`` or ``,``) are detected
    unless given. An ``Adj Close`` column is used only with ``adjusted`` (open, high and
    low then scaled by Adj Close / Close); either way ``bars.attrs["notes"]`` says which
    close was used. Rows are numbered as lines of the file (the header is line 1).
    """
    name = str(source) if isinstance(source, os.PathLike) else "CSV"
    text = _text_of(source)
    delimiter = delimiter or _sniff_delimiter(text)
    decimal = decimal or _sniff_decimal(text, delimiter)
    raw = pd.read_csv(io.StringIO(text), dtype=str, skipinitialspace=True, sep=delimiter)
    raw.columns = [str(c).strip() for c in raw.columns]
    if decimal != ".":
        raw = raw.apply(lambda col: col.str.replace(".", "", regex=False).str.replace(
            decimal, ".", regex=False) if col.name.lower() in OHLCV_COLUMNS or _is_adj(
            col.name) else col)  # fmt: skip
    lower = {c.lower(): c for c in raw.columns}
    notes = _choose_close(raw, lower, adjusted, name)
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
    bars.attrs["notes"] = notes
    return bars


def infer_timeframe(index: pd.DatetimeIndex) -> str:
    """The timeframe whose bar length is the commonest spacing of the timestamps (daily
    stock data is mostly 1 day apart, 3 over weekends: 1d); ValueError if none fits."""
    if len(index) < 2:
        raise ValueError("one bar cannot tell its timeframe; give --timeframe")
    steps = pd.Series(np.diff(index.as_unit("ns").asi8)).mode()
    step = pd.Timedelta(int(steps.min()), unit="ns")
    for timeframe, length in TIMEFRAMES.items():
        if length == step:
            return timeframe
    raise ValueError(
        f"the bars are mostly {step} apart, which is no supported timeframe "
        f"({', '.join(TIMEFRAMES)}); resample the file or give --timeframe"
    )


_ADJ_NAMES = ("adj close", "adj_close", "adjclose", "adjusted close", "adjusted_close")


def _is_adj(column: str) -> bool:
    return column.strip().lower() in _ADJ_NAMES


def _choose_close(raw: pd.DataFrame, lower: dict[str, str], adjusted: bool, name: str) -> list[str]:
    """Use Adj Close when asked (scaling open/high/low alike), say so either way."""
    adj = next((lower[n] for n in _ADJ_NAMES if n in lower), None)
    if not adjusted:
        if adj is None:
            return ["close: the Close column"]
        return [
            f"close: the Close column; {adj!r} is present and not used (prices as traded; "
            "pass --adjusted for split- and dividend-adjusted prices)"
        ]
    if adj is None or "close" not in lower:
        raise DataValidationError(
            [f"--adjusted needs an 'Adj Close' column next to Close (found: "
             f"{', '.join(raw.columns)})"],
            source=name,
        )  # fmt: skip
    close = pd.to_numeric(raw[lower["close"]], errors="coerce")
    adj_values = pd.to_numeric(raw[adj], errors="coerce")
    factor = adj_values / close
    for col in ("open", "high", "low"):
        if col in lower:
            raw[lower[col]] = (pd.to_numeric(raw[lower[col]], errors="coerce") * factor).astype(str)
    raw[lower["close"]] = raw[adj]
    return [f"close: {adj!r} (adjusted); open, high and low scaled by {adj} / Close"]


def _text_of(source: str | bytes | os.PathLike[str] | io.TextIOBase) -> str:
    if isinstance(source, bytes):
        return source.decode("utf-8-sig")
    if isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source):
        return Path(source).read_text(encoding="utf-8-sig")
    if isinstance(source, str):
        return source.removeprefix("\ufeff")
    return str(source.read()).removeprefix("\ufeff")


def _sniff_delimiter(text: str) -> str:
    """The candidate that splits the header into the most columns."""
    header = text.lstrip().split("\n", 1)[0]
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


_COMMA_DECIMAL = re.compile(r"\d,\d")


def _sniff_decimal(text: str, delimiter: str) -> str:
    """',' when the delimiter is not a comma and numbers are written like 1,2345."""
    if delimiter == ",":
        return "."
    sample = "\n".join(text.splitlines()[1:50])
    return "," if _COMMA_DECIMAL.search(sample) else "."


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
