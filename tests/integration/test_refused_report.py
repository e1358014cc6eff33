"""A final report the API refuses (too large here) fails the operation, never loops forever.

Before: the worker retried a 413/422 report every round while the operation stayed
`running` and the worker busy. The API's body limit is set to its minimum (1 KiB) so a
backtest's report (statistics, artifact references, the effective strategy) cannot fit,
while starting it, a download and the download's own report do.
"""

from __future__ import annotations

from tests.support.stack import StackFactory, wait_for


def test_a_report_over_the_body_limit_fails_the_operation_with_the_reason(
    stack_factory: StackFactory,
) -> None:
    _, api = stack_factory.start(workers=1, env={"KTRDR_MAX_BODY_BYTES": "1024"})
    body = {"symbol": "EURUSD", "timeframe": "1h", "provider": "synthetic", "bars": 2000}
    download = api.http.post("/data/downloads/start", json=body)
    assert download.status_code == 202, download.text
    assert api.wait_status(download.json()["id"], {"completed", "failed"}, 60)["status"] == (
        "completed"
    )

    started = api.http.post("/backtests/start", json={"strategy": "sma_crossover"})
    assert started.status_code == 202, started.text
    done = api.wait_status(started.json()["id"], {"completed", "failed"}, 60)
    assert done["status"] == "failed"
    assert done["attempt"] == 1, "a refused report is not a reason to run the job again"
    assert "the API refused this job's completed report (413:" in done["error"]
    assert "limit of 1,024 bytes (KTRDR_MAX_BODY_BYTES)" in done["error"]  # the API's own words
    wait_for(
        lambda: all(w["current_operation_id"] is None for w in api.workers()), 10, "a free worker"
    )
    # The worker took the next job: nothing stuck behind the refused report.
    again = api.http.post("/diagnostics/start", json={"steps": 1, "step_ms": 0})
    assert api.wait_status(again.json()["id"], {"completed", "failed"}, 30)["status"] == (
        "completed"
    )
