"""Sweeps and walk-forwards through `ktrdr.client` on the real stack: `results` is exactly
what the API's sweep-results route returns, sync and async alike; cancel and misuse raise
the typed errors with the API's messages."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pandas as pd
import pytest

from ktrdr.client import (
    AsyncKtrdrClient,
    BadRequest,
    Conflict,
    KtrdrClient,
    OperationFailed,
    SweepResult,
    ValidationFailed,
    WalkforwardResult,
)
from tests.client.conftest import SYMBOL, ClientStack

pytestmark = pytest.mark.integration

SWEEP_STRATEGY = f"""
name: sma_sweep
data: {{symbol: {SYMBOL}, timeframe: 1h}}
indicators:
  - {{id: sma_fast, type: sma, params: {{period: 10}}}}
  - {{id: sma_slow, type: sma, params: {{period: 30}}}}
decisions:
  signals:
    - crossover: {{fast: sma_fast, slow: sma_slow}}
costs: {{commission: 0.0002, slippage: 0.0}}
search:
  parameters:
    indicators.sma_fast.params.period: {{range: [4, 16, 4]}}
    indicators.sma_slow.params.period: {{values: [30, 50]}}
"""
FAST, SLOW = "indicators.sma_fast.params.period", "indicators.sma_slow.params.period"
# 59 x 2 combinations in chunks of 2: still running when it is cancelled.
LONG_STRATEGY = SWEEP_STRATEGY.replace("{range: [4, 16, 4]}", "{range: [2, 61, 1]}")


def api_rows(stack: ClientStack, op_id: str, **params: Any) -> dict[str, Any]:
    """The sweep-results route, read with plain HTTP (not through the client)."""
    response = httpx.get(
        f"{stack.url}/api/v1/operations/{op_id}/sweep-results",
        params={"limit": 10_000, **params},
        headers={"Authorization": f"Bearer {stack.key('admin')}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def expected_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"combination": r["combination"], "stage": r["stage"], "window": r["window"],
             **r["params"], **r["statistics"]}
            for r in rows
        ],
        index=pd.Index([r["key"] for r in rows], name="key", dtype="object"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def sweep(client_stack: ClientStack) -> SweepResult:
    return client_stack.client.run_sweep(
        SWEEP_STRATEGY, method="grid", chunk_size=3, min_trades=1, timeout_s=120
    )


def test_sweep_results_are_the_api_rows_exactly(
    client_stack: ClientStack, sweep: SweepResult
) -> None:
    page = api_rows(client_stack, sweep.id)
    assert page["count"] == 8 and len(page["data"]) == 8
    pd.testing.assert_frame_equal(sweep.results, expected_frame(page["data"]))
    # Best first, as the API ranks them; the same best as the sweep's own summary.
    assert page["sort"] == "sharpe" and page["order"] == "desc"
    assert sweep.best is not None and sweep.results.index[0] == sweep.best["key"]
    assert sweep.results.loc[sweep.best["key"], FAST] == sweep.best["params"][FAST]
    assert sweep.param_names == [FAST, SLOW]
    assert sorted(zip(sweep.results[FAST], sweep.results[SLOW], strict=True)) == [
        (f, s) for f in (4, 8, 12, 16) for s in (30, 50)
    ]
    # Paging (3 rows a page) gives the same rows in the same order as one page.
    assert client_stack.client.sweep_rows(sweep.id, page_size=3) == page["data"]
    listed = client_stack.client.sweeps(status="completed")
    assert sweep.id in [op.id for op in listed.data]
    assert "<table" in sweep._repr_html_()


def test_async_client_reads_the_same_sweep_and_runs_a_walkforward(
    client_stack: ClientStack, sweep: SweepResult
) -> None:
    async def run() -> tuple[SweepResult, WalkforwardResult]:
        async with AsyncKtrdrClient(client_stack.url, api_key=client_stack.key("admin")) as k:
            same = await k.sweep_result(sweep.id)
            op = await k.start_walkforward(
                SWEEP_STRATEGY, train_bars=1000, test_bars=500, method="grid", chunk_size=4
            )
            await k.wait(op, timeout_s=180)
            return same, await k.walkforward_result(op)

    same, wf = asyncio.run(run())
    pd.testing.assert_frame_equal(same.results, sweep.results)
    page = api_rows(client_stack, wf.id)
    pd.testing.assert_frame_equal(wf.results, expected_frame(page["data"]))
    assert set(wf.results["stage"]) == {"in_sample", "out_of_sample"}
    windows = wf.summary["windows"]
    assert list(wf.windows.index) == [w["window"] for w in windows]
    for w in windows:
        row = wf.windows.loc[w["window"]]
        assert row[f"params.{FAST}"] == w["params"][FAST]
        assert row["out_of_sample.total_return_pct"] == w["out_of_sample"]["total_return_pct"]
    stitched = wf.summary["stitched_equity"]
    assert len(wf.stitched_equity) == len(stitched)
    assert wf.stitched_equity["equity"].iloc[-1] == stitched[-1][1]


def test_cancel_and_misuse_raise_typed_errors(
    client_stack: ClientStack, sweep: SweepResult
) -> None:
    k: KtrdrClient = client_stack.client
    op = k.start_sweep(LONG_STRATEGY, method="grid", chunk_size=2)
    cancelled = k.cancel(op)
    assert (cancelled.id, cancelled.type, cancelled.status) == (op.id, "sweep", "cancelled")
    assert k.cancel(op).status == "cancelled"  # a repeated cancel is harmless
    with pytest.raises(Conflict) as ended_already:
        k.cancel(sweep.id)
    assert ended_already.value.message == (
        f"operation {sweep.id} is completed and cannot become cancelled; "
        "allowed from completed: none (it is final)"
    )
    with pytest.raises(OperationFailed) as ended:
        k.wait(op, timeout_s=30)
    assert ended.value.operation.status == "cancelled"
    with pytest.raises(BadRequest, match=f"operation {op.id} is a sweep, not a walkforward"):
        k.walkforward_result(op)
    # Not a campaign at all: the API's own 422 text.
    download = k.operations(type="data_download", limit=1).data[0]
    with pytest.raises(ValidationFailed) as not_campaign:
        k.sweep_rows(download.id)
    assert not_campaign.value.message.startswith(
        f"operation {download.id} is a data_download, not a sweep or walk-forward"
    )
    with pytest.raises(ValidationFailed) as no_space:
        k.start_sweep("sma_crossover")
    assert "search" in no_space.value.message
