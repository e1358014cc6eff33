"""Local OHLCV store: one Parquet file per symbol and timeframe, UTC timestamps.

Layout: ``<root>/<SYMBOL>/<timeframe>.parquet``; the data's origin ("synthetic", "csv",
"yahoo") is kept in the file's metadata.
"""

from __future__ import annotations

import builtins
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ktrdr.engine.data.cache import BarsCache
from ktrdr.engine.data.calendars import Market, expected_bars
from ktrdr.engine.data.validation import OHLCV_COLUMNS, validate_ohlcv
from ktrdr.engine.errors import DataNotFoundError, DataValidationError
from ktrdr.engine.timeframes import TIMEFRAMES, check_timeframe, did_you_mean

_META_KEY = b"ktrdr"
# Counting gaps against a calendar walks every expected bar: bounded for minute data.
_MAX_CALENDAR_GRID = 5_000_000
# Letters, digits and the punctuation of real tickers (BRK.B, EURUSD=X, ^GSPC, BTC-USD).
_SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9._=^-]{0,31}$")
FIX_HINT = (
    "import a CSV with `ktrdr data import` or generate synthetic data with `ktrdr data synth`"
)


@dataclass(frozen=True)
class DatasetInfo:
    """One stored series, as listed by :meth:`DataStore.list`."""

    symbol: str
    timeframe: str
    first: pd.Timestamp
    last: pd.Timestamp
    rows: int
    source: str

    def to_dict(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "rows": self.rows,
            "source": self.source,
        }


@dataclass(frozen=True)
class Gap:
    """A stretch of missing bars between two stored bars."""

    after: pd.Timestamp
    before: pd.Timestamp
    missing_bars: int
    weekend_only: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "after": self.after.isoformat(),
            "before": self.before.isoformat(),
            "missing_bars": self.missing_bars,
            "weekend_only": self.weekend_only,
        }


def normalize_symbol(symbol: str) -> str:
    """Upper-case ``symbol`` and refuse anything that is not a plain ticker (no paths)."""
    norm = symbol.strip().upper()
    if not _SYMBOL_RE.match(norm):
        raise ValueError(
            f"invalid symbol {symbol!r}; use letters, digits and . _ = ^ - (e.g. EURUSD, BTC-USD)"
        )
    return norm


def to_utc(value: str | pd.Timestamp) -> pd.Timestamp:
    """Parse a timestamp; naive values are taken as UTC."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


class DataStore:
    """OHLCV bars on disk under ``root`` (a directory; created on first save)."""

    def __init__(self, root: str | os.PathLike[str], *, cache: BarsCache | None = None) -> None:
        self.root = Path(root)
        # Decoded files kept in memory between loads (a worker's; the library reads afresh).
        self.cache = cache

    def path(self, symbol: str, timeframe: str) -> Path:
        check_timeframe(timeframe)
        return self.root / normalize_symbol(symbol) / f"{timeframe}.parquet"

    def exists(self, symbol: str, timeframe: str) -> bool:
        return self.path(symbol, timeframe).is_file()

    def save(
        self,
        symbol: str,
        timeframe: str,
        bars: pd.DataFrame,
        *,
        source: str,
        merge: bool = False,
    ) -> Path:
        """Validate and store ``bars``; ``merge`` keeps stored bars, new ones win at equal times."""
        bars = _standardize(bars)
        if merge and self.exists(symbol, timeframe):
            old = self._read(symbol, timeframe)
            bars = pd.concat([old[~old.index.isin(bars.index)], bars]).sort_index()
        problems = validate_ohlcv(bars)
        if problems:
            raise DataValidationError(problems, source=f"{symbol} {timeframe}")
        target = self.path(symbol, timeframe)
        target.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(bars, preserve_index=True)
        meta = {"symbol": normalize_symbol(symbol), "timeframe": timeframe, "source": source}
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), _META_KEY: json.dumps(meta).encode()}
        )
        # Write then rename so a reader never sees a half-written file.
        tmp = target.with_suffix(".parquet.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, target)
        return target

    def load(
        self,
        symbol: str,
        timeframe: str,
        start: str | pd.Timestamp | None = None,
        end: str | pd.Timestamp | None = None,
        warmup_bars: int = 0,
    ) -> pd.DataFrame:
        """Bars from ``start`` to ``end`` (both inclusive) plus up to ``warmup_bars`` before start.

        Indicator warm-up comes from history before ``start``, never from the window itself.
        """
        start_ts = to_utc(start) if start is not None else None
        end_ts = to_utc(end) if end is not None else None
        if start_ts is not None and end_ts is not None and start_ts > end_ts:
            raise ValueError(f"start {start_ts.isoformat()} is after end {end_ts.isoformat()}")
        if warmup_bars < 0:
            raise ValueError(f"warmup_bars must be 0 or more, got {warmup_bars}")
        bars = self._read(symbol, timeframe)
        lo = 0 if start_ts is None else int(bars.index.searchsorted(start_ts, side="left"))
        hi = len(bars) if end_ts is None else int(bars.index.searchsorted(end_ts, side="right"))
        if hi <= lo:
            raise DataNotFoundError(
                f"no {normalize_symbol(symbol)} {timeframe} bars between "
                f"{start_ts.isoformat() if start_ts is not None else 'the beginning'} and "
                f"{end_ts.isoformat() if end_ts is not None else 'the end'}; stored data covers "
                f"{bars.index[0].isoformat()} to {bars.index[-1].isoformat()}; "
                "pick dates inside it"
            )
        return bars.iloc[max(0, lo - warmup_bars) : hi]

    def info(self, symbol: str, timeframe: str) -> DatasetInfo:
        """Summary of one stored series (reads only the timestamp column)."""
        path = self._existing_path(symbol, timeframe)
        pf = pq.ParquetFile(path)
        meta = json.loads((pf.schema_arrow.metadata or {}).get(_META_KEY, b"{}"))
        ts = pf.read(columns=["timestamp"]).column("timestamp").to_numpy()
        index = pd.DatetimeIndex(ts).tz_localize("UTC") if len(ts) else pd.DatetimeIndex([])
        return DatasetInfo(
            symbol=normalize_symbol(symbol),
            timeframe=timeframe,
            first=index[0],
            last=index[-1],
            rows=len(index),
            source=str(meta.get("source", "unknown")),
        )

    def list(self) -> builtins.list[DatasetInfo]:
        """Every stored series, sorted by symbol then timeframe order."""
        out: builtins.list[DatasetInfo] = []
        if not self.root.is_dir():
            return out
        order = {tf: i for i, tf in enumerate(TIMEFRAMES)}
        for sym_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            files = [f for f in sym_dir.glob("*.parquet") if f.stem in order]
            for f in sorted(files, key=lambda f: order[f.stem]):
                out.append(self.info(sym_dir.name, f.stem))
        return out

    def gaps(self, symbol: str, timeframe: str, market: Market | None = None) -> builtins.list[Gap]:
        """Places where bars are missing: against ``market``'s calendar when given (a
        closed market is not a gap), else on the plain timeframe grid (weekend-only gaps
        flagged)."""
        bar = check_timeframe(timeframe)
        index = self._read(symbol, timeframe).index
        if len(index) < 2:
            return []
        if market is not None and (index[-1] - index[0]) / bar <= _MAX_CALENDAR_GRID:
            return _calendar_gaps(index, market, bar)
        # asi8 is in the index's own unit (pandas 3 defaults to microseconds): use ns.
        step = np.diff(index.as_unit("ns").asi8)
        where = np.nonzero(step > bar.value)[0]
        out = []
        for i in where:
            after, before = index[i], index[i + 1]
            missing = int(step[i] // bar.value) - 1
            if missing < 1:
                continue  # off-grid spacing shorter than two bars: not a missing bar
            inner = pd.date_range(after + bar, before - bar, freq=bar)
            weekend = bool(len(inner)) and bool((inner.day_of_week >= 5).all())
            out.append(Gap(after=after, before=before, missing_bars=missing, weekend_only=weekend))
        return out

    def symbols(self) -> builtins.list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def _existing_path(self, symbol: str, timeframe: str) -> Path:
        path = self.path(symbol, timeframe)
        if path.is_file():
            return path
        sym = normalize_symbol(symbol)
        known = self.symbols()
        if sym in known:
            have = sorted(f.stem for f in (self.root / sym).glob("*.parquet"))
            hint = f"; {sym} is stored for timeframe(s) {', '.join(have)}" if have else ""
        else:
            hint = did_you_mean(sym, known)
        raise DataNotFoundError(
            f"no data for {sym} {timeframe} in the data store{hint}; {FIX_HINT}", where=str(path)
        )

    def _read(self, symbol: str, timeframe: str) -> pd.DataFrame:
        path = self._existing_path(symbol, timeframe)
        return _read_file(path) if self.cache is None else self.cache.get(path, _read_file)


def _read_file(path: Path) -> pd.DataFrame:
    bars = pd.read_parquet(path)
    index = pd.DatetimeIndex(bars.index, name="timestamp")
    bars.index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    return bars


def _standardize(bars: pd.DataFrame) -> pd.DataFrame:
    """Lower-case OHLCV columns as float64 on a UTC DatetimeIndex named ``timestamp``."""
    renamed = bars.rename(columns={c: str(c).strip().lower() for c in bars.columns})
    missing = [c for c in OHLCV_COLUMNS if c not in renamed.columns]
    if missing:
        raise DataValidationError(
            [f"missing column(s) {', '.join(missing)}; provide open, high, low, close, volume"]
        )
    out = renamed[list(OHLCV_COLUMNS)].astype("float64")
    if not isinstance(out.index, pd.DatetimeIndex):
        raise DataValidationError(["index is not a DatetimeIndex; index bars by timestamp"])
    index = out.index.tz_localize("UTC") if out.index.tz is None else out.index.tz_convert("UTC")
    out.index = pd.DatetimeIndex(index, name="timestamp")
    return out


def _calendar_gaps(index: pd.DatetimeIndex, market: Market, bar: pd.Timedelta) -> list[Gap]:
    """Runs of bars the market had (between the first and last stored bar) that are not
    stored, each with the stored bars around it."""
    expected = expected_bars(market, index[0], index[-1], bar)
    missing = np.nonzero(~expected.isin(index))[0]
    if len(missing) == 0:
        return []
    breaks = np.nonzero(np.diff(missing) > 1)[0]
    starts = np.concatenate(([missing[0]], missing[breaks + 1]))
    ends = np.concatenate((missing[breaks], [missing[-1]]))
    return [
        Gap(after=expected[a - 1], before=expected[b + 1], missing_bars=int(b - a + 1),
            weekend_only=False)
        for a, b in zip(starts, ends, strict=True)
        if a > 0 and b + 1 < len(expected)
    ]  # fmt: skip
