"""Shared fixtures for the engine tests: small synthetic series and hand-made bars."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from ktrdr.engine.data import generate_synthetic_bars


@pytest.fixture(scope="session")
def bars_1h() -> pd.DataFrame:
    """3,000 synthetic hourly bars (deterministic)."""
    return generate_synthetic_bars("1h", 3000, seed=7)


BarsFactory = Callable[[list[float], list[float]], pd.DataFrame]


@pytest.fixture
def make_bars() -> BarsFactory:
    """Daily bars from opens and closes; high/low just wrap them."""

    def make(opens: list[float], closes: list[float]) -> pd.DataFrame:
        index = pd.date_range("2024-01-01", periods=len(opens), freq="1D", tz="UTC")
        return pd.DataFrame(
            {
                "open": opens,
                "high": [max(o, c) + 1 for o, c in zip(opens, closes, strict=True)],
                "low": [min(o, c) - 1 for o, c in zip(opens, closes, strict=True)],
                "close": closes,
                "volume": [1000.0] * len(opens),
            },
            index=index,
        )

    return make
