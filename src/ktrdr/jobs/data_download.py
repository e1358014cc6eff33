"""Parameters of a data download: market data into the workers' local store.

A CSV sent for import is validated here, with the engine's own CSV reader (parsing only,
no storage), so a bad file is a 4xx naming each bad row before anything is queued."""

from __future__ import annotations

import io
from datetime import datetime
from enum import StrEnum
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ktrdr.engine.data.csv_import import infer_timeframe, read_ohlcv_csv
from ktrdr.engine.errors import DataValidationError
from ktrdr.engine.timeframes import TIMEFRAMES, check_timeframe


class Provider(StrEnum):
    # Deterministic generated bars, clearly not market data: for offline use and tests.
    SYNTHETIC = "synthetic"
    YAHOO = "yahoo"  # real market data; needs network access and the `download` extra
    CSV = "csv"  # a CSV file's text sent with the request


class DataDownloadParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._=^-]+$")
    timeframe: str | None = Field(
        None, description=f"one of {', '.join(TIMEFRAMES)}; csv: inferred when left out"
    )
    provider: Provider = Provider.SYNTHETIC
    start: datetime | None = Field(None, description="yahoo: first day; synthetic: first bar")
    end: datetime | None = Field(None, description="yahoo: end (exclusive)")
    bars: int = Field(5_000, ge=10, le=5_000_000, description="synthetic: number of bars")
    seed: int = Field(0, ge=0, description="synthetic: random seed (same seed, same bars)")
    csv_text: str | None = Field(None, max_length=50_000_000, description="csv: the file's text")
    merge: bool = Field(False, description="keep stored bars; new ones win at equal times")
    csv_delimiter: str | None = Field(
        None, pattern=r"^(,|;|\t|\|)$", description="csv: column separator; default: detected"
    )
    csv_decimal: str | None = Field(
        None, pattern=r"^[.,]$", description="csv: decimal mark; default: detected"
    )
    adjusted: bool = Field(False, description="csv: use the Adj Close column as the close")

    @model_validator(mode="after")
    def _check(self) -> DataDownloadParams:
        self.symbol = self.symbol.strip().upper()
        if self.timeframe is None and self.provider != Provider.CSV:
            raise ValueError(f"timeframe is required for provider {self.provider.value}")
        if self.timeframe is not None:
            check_timeframe(self.timeframe)
        if self.provider == Provider.YAHOO and not (self.start and self.end):
            raise ValueError("provider yahoo needs start and end dates")
        if self.start and self.end and self.start >= self.end:
            raise ValueError("start must be before end")
        if self.provider == Provider.CSV and not self.csv_text:
            raise ValueError("provider csv needs csv_text (the CLI reads the file for you)")
        if self.provider != Provider.CSV and self.csv_text:
            raise ValueError("csv_text is only for provider csv")
        if self.provider == Provider.CSV:
            bars = self.read_csv()
            self.timeframe = _csv_timeframe(bars.index, self.timeframe)
        return self

    def resolved_timeframe(self) -> str:
        assert self.timeframe is not None  # required, or inferred from the CSV, above
        return self.timeframe

    def read_csv(self) -> pd.DataFrame:
        """The CSV's bars with this request's options (ValueError naming each problem)."""
        return _read_csv(
            self.csv_text or "", delimiter=self.csv_delimiter, decimal=self.csv_decimal,
            adjusted=self.adjusted,
        )  # fmt: skip


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


def _read_csv(text: str, **options: Any) -> pd.DataFrame:
    """Reject a bad CSV at submission (4xx), every problem with its row and a fix."""
    try:
        return read_ohlcv_csv(io.StringIO(text), **options)
    except DataValidationError as exc:
        shown = exc.problems[:20]
        more = f"; and {len(exc.problems) - 20} more" if len(exc.problems) > 20 else ""
        raise ValueError("CSV rejected: " + "; ".join(shown) + more) from None
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"CSV rejected: cannot parse it ({exc})") from None
