"""Parameters of a data download: market data into the workers' local store.

A CSV to import is uploaded first (``POST /api/v1/data/uploads``) and referenced here by
artifact key and sha256: the file never sits in the operation's parameters. The backend
checks the upload at submission with the engine's own CSV reader (parsing only, no
storage), so a bad file is a 4xx naming each bad row before anything is queued."""

from __future__ import annotations

import io
from enum import StrEnum
from typing import Any

import pandas as pd
from pydantic import ConfigDict, Field, model_validator

from ktrdr.bounds import RequestModel, UtcDateTime
from ktrdr.engine.data.calendars import market_of
from ktrdr.engine.data.csv_import import infer_timeframe, read_ohlcv_csv
from ktrdr.engine.data.synthetic import check_synthetic_span
from ktrdr.engine.errors import DataValidationError
from ktrdr.engine.timeframes import TIMEFRAMES, check_timeframe

# Synthetic bars without a start begin here (a Monday), so the same request gives the same bars.
SYNTHETIC_DEFAULT_START = "2020-01-06"
UPLOAD_KEY_PATTERN = r"^uploads/[0-9a-f]{64}\.csv$"
UPLOAD_HINT = (
    "upload the file first (POST /api/v1/data/uploads with the file as the body returns "
    "its key and sha256; `ktrdr data import FILE.csv` does both steps)"
)


class Provider(StrEnum):
    # Deterministic generated bars, clearly not market data: for offline use and tests.
    SYNTHETIC = "synthetic"
    YAHOO = "yahoo"  # real market data; needs network access and the `download` extra
    CSV = "csv"  # an uploaded CSV file, referenced by artifact key and checksum


class DataDownloadParams(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"symbol": "EURUSD", "timeframe": "1h", "provider": "synthetic", "bars": 5000},
                {
                    "symbol": "AAPL", "timeframe": "1d", "provider": "yahoo",
                    "start": "2020-01-01T00:00:00Z", "end": "2024-01-01T00:00:00Z",
                },
            ]
        }
    )  # fmt: skip

    symbol: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._=^-]+$")
    timeframe: str | None = Field(
        None, description=f"one of {', '.join(TIMEFRAMES)}; csv: inferred when left out"
    )
    provider: Provider = Provider.SYNTHETIC
    start: UtcDateTime | None = Field(None, description="yahoo: first day; synthetic: first bar")
    end: UtcDateTime | None = Field(None, description="yahoo: end (exclusive)")
    bars: int = Field(5_000, ge=10, le=5_000_000, description="synthetic: number of bars")
    seed: int = Field(0, ge=0, description="synthetic: random seed (same seed, same bars)")
    upload_key: str | None = Field(
        None, pattern=UPLOAD_KEY_PATTERN, description="csv: key returned by POST /data/uploads"
    )
    upload_sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="csv: sha256 returned with the key"
    )
    merge: bool = Field(False, description="keep stored bars; new ones win at equal times")
    csv_delimiter: str | None = Field(
        None, pattern=r"^(,|;|\t|\|)$", description="csv: column separator; default: detected"
    )
    csv_decimal: str | None = Field(
        None, pattern=r"^[.,]$", description="csv: decimal mark; default: detected"
    )
    adjusted: bool = Field(False, description="csv: use the Adj Close column as the close")

    @model_validator(mode="before")
    @classmethod
    def _no_inline_csv(cls, data: object) -> object:
        if isinstance(data, dict) and "csv_text" in data:
            raise ValueError(f"csv_text is no longer accepted: {UPLOAD_HINT}")
        return data

    @model_validator(mode="after")
    def _check(self) -> DataDownloadParams:
        self.symbol = self.symbol.strip().upper()
        if self.timeframe is None and self.provider != Provider.CSV:
            raise ValueError(f"timeframe is required for provider {self.provider.value}")
        if self.timeframe is not None:
            check_timeframe(self.timeframe)
        if self.provider == Provider.SYNTHETIC and self.timeframe is not None:
            check_synthetic_span(
                self.timeframe,
                self.bars,
                start=self.synthetic_start(),
                market=market_of(self.symbol),
            )
        if self.provider == Provider.YAHOO and not (self.start and self.end):
            raise ValueError("provider yahoo needs start and end dates")
        if self.start and self.end and self.start >= self.end:
            raise ValueError("start must be before end")
        uploaded = self.upload_key is not None or self.upload_sha256 is not None
        if self.provider == Provider.CSV and not (self.upload_key and self.upload_sha256):
            raise ValueError(f"provider csv needs upload_key and upload_sha256: {UPLOAD_HINT}")
        if self.provider != Provider.CSV and uploaded:
            raise ValueError("upload_key and upload_sha256 are only for provider csv")
        return self

    def synthetic_start(self) -> str:
        """Where generated bars begin: the request's start, or the fixed default."""
        return self.start.isoformat() if self.start else SYNTHETIC_DEFAULT_START

    def resolved_timeframe(self) -> str:
        assert self.timeframe is not None  # required, or inferred from the CSV, above
        return self.timeframe

    def read_csv(self, data: bytes) -> pd.DataFrame:
        """An uploaded CSV's bars with this request's options (ValueError naming each
        problem and its row)."""
        return _read_csv(
            data, delimiter=self.csv_delimiter, decimal=self.csv_decimal, adjusted=self.adjusted
        )


def check_uploaded_csv(params: dict[str, Any], data: bytes) -> dict[str, Any]:
    """At submission: reject a bad CSV (ValueError -> 4xx) and settle its timeframe (the
    file's own; a given one must agree). Returns the parameters to store."""
    request = DataDownloadParams.model_validate(params)
    bars = request.read_csv(data)
    return {**params, "timeframe": _csv_timeframe(bars.index, request.timeframe)}


def _csv_timeframe(index: pd.DatetimeIndex, given: str | None) -> str:
    """The file's own timeframe; a given one must agree with it."""
    try:
        found = infer_timeframe(index)
    except ValueError as exc:
        if given is not None:
            return given  # too few bars to tell: trust what was said
        raise ValueError(f"CSV rejected: {exc}") from None
    if given is not None and given != found:
        raise ValueError(
            f"CSV rejected: its bars are {found} apart (timeframe {found}), but the timeframe "
            f"given is {given}; leave --timeframe out to use {found}, or import a {given} file"
        )
    return found


def _read_csv(data: bytes, **options: Any) -> pd.DataFrame:
    try:
        return read_ohlcv_csv(io.StringIO(data.decode("utf-8-sig")), **options)
    except DataValidationError as exc:
        shown = exc.problems[:20]
        more = f"; and {len(exc.problems) - 20} more" if len(exc.problems) > 20 else ""
        raise ValueError("CSV rejected: " + "; ".join(shown) + more) from None
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"CSV rejected: cannot parse it ({exc})") from None
