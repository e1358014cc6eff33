"""Client pieces without a stack: constants mirror the API's, errors map statuses,
the notebook view of a result."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest

from ktrdr import constants
from ktrdr.cli.client import API_KEY_ENV
from ktrdr.client import (
    BacktestResult,
    Conflict,
    ConnectionFailed,
    Operation,
    ServerError,
    ValidationFailed,
    calls,
)
from ktrdr.client.errors import error_for


def test_client_constants_mirror_the_api() -> None:
    assert calls.API_PREFIX == constants.API_PREFIX
    assert calls.IDEMPOTENCY_HEADER == constants.IDEMPOTENCY_HEADER
    assert calls.DEFAULT_API_URL == constants.DEFAULT_API_URL
    assert calls.API_KEY_ENV == API_KEY_ENV


def test_error_statuses_map_to_types_with_the_detail() -> None:
    invalid = error_for(422, {"detail": "strategy: bad", "errors": [{"loc": "x"}]}, "")
    assert isinstance(invalid, ValidationFailed) and str(invalid) == "strategy: bad"
    assert invalid.errors == [{"loc": "x"}]
    assert isinstance(error_for(409, {"detail": "busy"}, ""), Conflict)
    down = error_for(502, None, "bad gateway")
    assert isinstance(down, ServerError) and str(down) == "bad gateway"


def _result() -> BacktestResult:
    op = Operation.from_api(
        {"id": "op1", "type": "backtesting", "status": "completed", "params": None}
    )
    equity = [
        {"timestamp": f"2020-01-0{i + 1}T00:00:00+00:00", "equity": v}
        for i, v in enumerate([100.0, 110.0, 99.0, 121.0])
    ]
    return BacktestResult(op, {"total_return_pct": 21.0, "num_trades": 0}, [], equity)


def test_html_view_has_the_stats_and_an_equity_sparkline() -> None:
    view = _result()._repr_html_()
    assert "<th style='text-align:left'>Total return %</th><td>21.00</td>" in view
    assert "<th style='text-align:left'>Trades</th><td>0</td>" in view
    # scaled to the range: the low (99) at the bottom (y=40), the high (121) at the top
    assert "points='0.0,38.2 80.0,20.0 160.0,40.0 240.0,0.0'" in view


def test_empty_trades_and_drawdown() -> None:
    result = _result()
    assert result.trades.empty and isinstance(result.trades.index, pd.DatetimeIndex)
    assert result.drawdown_pct.round(6).tolist() == [0.0, 0.0, -10.0, 0.0]
    assert result.equity.index[0] == pd.Timestamp("2020-01-01", tz="UTC")


def test_retry_rule_resends_only_what_is_safe() -> None:
    settings = calls.Settings.resolve("http://x", "", 1.0, retries=2, backoff_s=0.5)
    start = calls.start("diagnostic", {}, None)
    cancel = calls.cancel("op1")
    lost = httpx.ReadError("reset")
    refused = httpx.ConnectError("refused")
    assert start.headers[calls.IDEMPOTENCY_HEADER]  # every start carries a key
    assert settings.retry_delay_s(start, lost, 0) == 0.5
    assert settings.retry_delay_s(calls.get_operation("op1"), lost, 1) == 1.0
    assert settings.retry_delay_s(cancel, refused, 0) == 0.5  # never reached the API
    with pytest.raises(ConnectionFailed):
        settings.retry_delay_s(cancel, lost, 0)  # the API may have cancelled already
    with pytest.raises(ConnectionFailed, match="after 3 attempt"):
        settings.retry_delay_s(start, refused, 2)


def test_empty_api_key_sends_none_even_with_the_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTRDR_API_KEY", "from-env")
    assert calls.Settings.resolve(None, None, 1, 0, 0).api_key == "from-env"
    assert calls.Settings.resolve(None, "", 1, 0, 0).http_options()["headers"] == {}
