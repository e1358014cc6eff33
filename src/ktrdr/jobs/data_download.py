"""Parameters of a data download: market data into the workers' local store.

A CSV sent for import is validated here, with the engine's own CSV reader (parsing only,
no storage), so a bad file is a 4xx naming each bad row before anything is queued."""

from __future__ import annotations

import io
from enum import StrEnum

import pandas as pd
from pydantic import Field, model_validator

from ktrdr.bounds import CSV_TEXT_MAX, RequestModel, UtcDateTime
from ktrdr.engine.data.csv_import import read_ohlcv_csv
from ktrdr.engine.errors import DataValidationError
from ktrdr.engine.timeframes import TIMEFRAMES


class Provider(StrEnum):
    # Deterministic generated bars, clearly not market data: for offline use and tests.
    SYNTHETIC = "synthetic"
    YAHOO = "yahoo"  # real market data; needs network access and the `download` extra
    CSV = "csv"  # a CSV file's text sent with the request


class DataDownloadParams(RequestModel):
    symbol: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._=^-]+$")
    timeframe: str = Field(description=f"one of {', '.join(TIMEFRAMES)}")
    provider: Provider = Provider.SYNTHETIC
    start: UtcDateTime | None = Field(None, description="yahoo: first day; synthetic: first bar")
    end: UtcDateTime | None = Field(None, description="yahoo: end (exclusive)")
    bars: int = Field(5_000, ge=10, le=5_000_000, description="synthetic: number of bars")
    seed: int = Field(0, ge=0, description="synthetic: random seed (same seed, same bars)")
    csv_text: str | None = Field(None, max_length=CSV_TEXT_MAX, description="csv: the file's text")
    merge: bool = Field(False, description="keep stored bars; new ones win at equal times")

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
        if self.provider == Provider.CSV and not self.csv_text:
            raise ValueError("provider csv needs csv_text (the CLI reads the file for you)")
        if self.provider != Provider.CSV and self.csv_text:
            raise ValueError("csv_text is only for provider csv")
        if self.provider == Provider.CSV:
            _check_csv(self.csv_text or "")
        return self


def _check_csv(text: str) -> None:
    """Reject a bad CSV at submission (4xx), every problem with its row and a fix."""
    try:
        read_ohlcv_csv(io.StringIO(text))
    except DataValidationError as exc:
        shown = exc.problems[:20]
        more = f"; and {len(exc.problems) - 20} more" if len(exc.problems) > 20 else ""
        raise ValueError("CSV rejected: " + "; ".join(shown) + more) from None
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"CSV rejected: cannot parse it ({exc})") from None
