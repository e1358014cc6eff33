"""What an indicator is: its parameter model, outputs, function and warm-up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

PriceSource = Literal["open", "high", "low", "close", "hl2", "hlc3", "ohlc4"]


class Params(BaseModel):
    """Base of every indicator's parameters: unknown names are errors, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Outputs = dict[str, pd.Series]


@dataclass(frozen=True)
class IndicatorSpec:
    """An indicator: its parameter model, output names (first is the default) and function."""

    name: str
    params_model: type[Params]
    outputs: tuple[str, ...]
    compute: Callable[[pd.DataFrame, Any], Outputs]
    description: str
    # Bars of history needed before values are trustworthy (recursive ones need extra
    # bars for the seed to fade).
    warmup: Callable[[Any], int]

    @property
    def primary_output(self) -> str:
        return self.outputs[0]


def price(bars: pd.DataFrame, source: str) -> pd.Series:
    """The price series a ``source`` name refers to (close, hlc3, ...)."""
    if source in ("open", "high", "low", "close", "volume"):
        return bars[source].astype(float)
    o, h, low, c = bars["open"], bars["high"], bars["low"], bars["close"]
    combos = {"hl2": (h + low) / 2, "hlc3": (h + low + c) / 3, "ohlc4": (o + h + low + c) / 4}
    return combos[source]


def frame(df: pd.DataFrame) -> Outputs:
    return {str(k): v for k, v in df.items()}


def hlc(b: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    return b["high"], b["low"], b["close"]
