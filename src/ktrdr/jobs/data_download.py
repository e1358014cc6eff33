"""Parameters of a data download: market data into the workers' local store.

A CSV to import is uploaded first (``POST /api/v1/data/uploads``) and referenced here by
artifact key and sha256: the file never sits in the operation's parameters. The backend
checks the upload at submission with the engine's own CSV reader (parsing only, no
storage), so a bad file is a 4xx naming each bad row before anything is queued."""

from __future__ import annotations

import io
from datetime import datetime
from enum import StrEnum

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ktrdr.engine.data.csv_import import read_ohlcv_csv
from ktrdr.engine.errors import DataValidationError
from ktrdr.engine.timeframes import TIMEFRAMES

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


class DataDownloadParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._=^-]+$")
    timeframe: str = Field(description=f"one of {', '.join(TIMEFRAMES)}")
    provider: Provider = Provider.SYNTHETIC
    start: datetime | None = Field(None, description="yahoo: first day; synthetic: first bar")
    end: datetime | None = Field(None, description="yahoo: end (exclusive)")
    bars: int = Field(5_000, ge=10, le=5_000_000, description="synthetic: number of bars")
    seed: int = Field(0, ge=0, description="synthetic: random seed (same seed, same bars)")
    upload_key: str | None = Field(
        None, pattern=UPLOAD_KEY_PATTERN, description="csv: key returned by POST /data/uploads"
    )
    upload_sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="csv: sha256 returned with the key"
    )
    merge: bool = Field(False, description="keep stored bars; new ones win at equal times")

    @model_validator(mode="before")
    @classmethod
    def _no_inline_csv(cls, data: object) -> object:
        if isinstance(data, dict) and "csv_text" in data:
            raise ValueError(f"csv_text is no longer accepted: {UPLOAD_HINT}")
        return data

    @model_validator(mode="after")
    def _check(self) -> DataDownloadParams:
        self.symbol = self.symbol.strip().upper()
        if self.timeframe not in TIMEFRAMES:
            raise ValueError(
                f"unknown timeframe {self.timeframe!r}; use one of {', '.join(TIMEFRAMES)}"
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


def read_uploaded_csv(data: bytes) -> pd.DataFrame:
    """The bars of an uploaded CSV file (UTF-8, a byte-order mark allowed)."""
    return read_ohlcv_csv(io.StringIO(data.decode("utf-8-sig")))


def check_uploaded_csv(_params: dict[str, object], data: bytes) -> None:
    """Reject a bad CSV at submission (ValueError -> 4xx), every problem with its row."""
    _check_csv(data)


def _check_csv(data: bytes) -> None:
    try:
        read_uploaded_csv(data)
    except DataValidationError as exc:
        shown = exc.problems[:20]
        more = f"; and {len(exc.problems) - 20} more" if len(exc.problems) > 20 else ""
        raise ValueError("CSV rejected: " + "; ".join(shown) + more) from None
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"CSV rejected: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"CSV rejected: cannot parse it ({exc})") from None
