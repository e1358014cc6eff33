"""A 1,000,000-bar backtest through API + worker equals the library call exactly, read back
through the artifact routes as JSON, CSV and Parquet; its record stays small."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ktrdr.engine.backtest import BacktestResult, run_backtest
from ktrdr.engine.data import DataStore
from ktrdr.engine.strategy import load_strategy
from tests.support.stack import Api, StackFactory

SYMBOL, TIMEFRAME, BARS = "BIGX", "1m", 1_000_000
# The record and the worker's report: statistics and references, never the tables.
MAX_RECORD_BYTES = 10_000


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, dict[str, Any], Any]]:
    factory = StackFactory(tmp_path_factory.mktemp("big"))
    stack, api = factory.start(workers=1)
    download = api.http.post(
        "/data/downloads/start",
        json={"symbol": SYMBOL, "timeframe": TIMEFRAME, "provider": "synthetic",
              "bars": BARS, "seed": 11},
    ).json()  # fmt: skip
    assert api.wait_status(download["id"], {"completed", "failed"}, 60)["status"] == "completed"
    op = api.http.post(
        "/backtests/start",
        json={"strategy": "sma_crossover", "symbol": SYMBOL, "timeframe": TIMEFRAME},
    ).json()
    done = api.wait_status(op["id"], {"completed", "failed"}, 90)
    assert done["status"] == "completed", done["error"]
    strategy = load_strategy("sma_crossover")
    strategy = strategy.model_copy(
        update={"data": strategy.data.model_copy(update={"symbol": SYMBOL, "timeframe": TIMEFRAME})}
    )
    bars = DataStore(stack.data_home / "data").load(
        SYMBOL, TIMEFRAME, None, None, warmup_bars=strategy.warmup_bars()
    )
    with httpx.Client(base_url=api.base_url + "/api/v1", timeout=120) as http:
        yield api, done, (run_backtest(strategy, bars), http)
    factory.stop_all()


def _table(http: httpx.Client, op_id: str, name: str, fmt: str) -> pd.DataFrame:
    response = http.get(f"/operations/{op_id}/results/{name}", params={"format": fmt})
    assert response.status_code == 200, response.text
    if fmt == "json":
        rows = json.loads(response.content)
        return pd.DataFrame({k: [row[k] for row in rows] for k in rows[0]}, copy=False)
    if fmt == "csv":
        assert response.headers["content-type"].startswith("text/csv")
        return pd.read_csv(io.BytesIO(response.content))
    return pq.read_table(io.BytesIO(response.content)).to_pandas()


def _times(column: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(column, utc=True, format="ISO8601")
    return pd.DatetimeIndex(stamps).as_unit("ns").asi8


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet"])
def test_trades_and_equity_equal_the_library_call(big: tuple, fmt: str) -> None:
    _, done, (expected, http) = big
    assert isinstance(expected, BacktestResult) and len(expected.trade_table) > 1_000
    trades = _table(http, done["id"], "trades", fmt)
    columns = expected.trade_table.columns()
    assert list(trades.columns) == list(columns)
    for name, values in columns.items():
        if name.endswith("_time"):
            assert np.array_equal(_times(trades[name]), pd.DatetimeIndex(values).as_unit("ns").asi8)
        else:
            assert trades[name].tolist() == np.asarray(values).tolist(), name
    equity = _table(http, done["id"], "equity", fmt)
    assert len(equity) == len(expected.equity_curve) == expected.statistics.bars
    assert equity["equity"].tolist() == expected.equity_curve.tolist()
    assert np.array_equal(
        _times(equity["timestamp"]), expected.equity_curve.index.as_unit("ns").asi8
    )


def test_record_is_small_and_results_keep_their_old_shape(big: tuple) -> None:
    api, done, (expected, http) = big
    assert len(json.dumps(done)) < MAX_RECORD_BYTES
    assert done["result"]["statistics"] == json.loads(json.dumps(expected.statistics.to_dict()))
    first = http.get(f"/operations/{done['id']}/results/trades", params={"limit": 3})
    assert first.json() == [t.to_dict() for t in expected.trades[:3]]
    assert first.headers["x-total-rows"] == "3"
    curve = http.get(f"/operations/{done['id']}/results", params={"part": "equity_curve"})
    assert curve.json() == expected.to_dict(max_equity_points=5_000)["equity_curve"]
    missing = api.http.get(f"/operations/{done['id']}/results/positions")
    assert missing.status_code == 404 and "tables: equity_curve, trades" in missing.text
