"""Real API + worker processes: concurrency, queueing, idempotency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.s3 import store_options
from tests.support.stack import (
    StackFactory,
    assert_one_job_at_a_time_per_worker,
    free_port,
    wait_for,
)


@pytest.mark.parametrize(
    ("database", "store"), [("sqlite", "local"), ("postgresql", "local"), ("postgresql", "s3")]
)
def test_fifty_concurrent_operations_each_complete_once_one_at_a_time_per_worker(
    stack_factory: StackFactory, database: str, store: str, request: pytest.FixtureRequest
) -> None:
    options = store_options(request, store)
    env = options.pop("env")
    if database == "postgresql":
        env["KTRDR_DATABASE_URL"] = request.getfixturevalue("fresh_postgres_url")
    stack, api = stack_factory.start(workers=2, env=env, **options)

    def submit(i: int) -> str:
        response = httpx.post(
            f"{stack.api_url}/api/v1/diagnostics/start",
            json={"steps": 2, "step_ms": 10, "label": f"n{i}"},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(submit, range(50)))
    assert len(set(ids)) == 50

    def all_done() -> list[dict] | None:
        page = api.http.get("/operations", params={"limit": 100}).json()
        ops = page["data"]
        return ops if all(o["status"] == "completed" for o in ops) else None

    ops = wait_for(all_done, 60, "all 50 operations to complete")
    assert len(ops) == 50
    assert {o["id"] for o in ops} == set(ids)
    assert all(o["attempt"] == 1 for o in ops), "each ran exactly once"
    labels = sorted(o["result_summary"]["label"] for o in ops)
    assert labels == sorted(f"n{i}" for i in range(50))
    per_worker = assert_one_job_at_a_time_per_worker(ops)
    assert len(per_worker) == 2, "both workers took work"
    leftovers = api.http.get("/operations", params={"status": ["pending", "running"]}).json()
    assert leftovers["count"] == 0
    assert all(w["current_operation_id"] is None for w in api.workers())


def test_no_capable_worker_queues_with_202_and_runs_when_one_arrives(
    stack_factory: StackFactory,
) -> None:
    stack, api = stack_factory.start(workers=0)
    op = api.start_diagnostic(steps=1, step_ms=1)
    assert op["status"] == "pending"
    assert api.op(op["id"])["status"] == "pending"
    stack.start_worker(free_port())
    done = api.wait_status(op["id"], {"completed"}, 20)
    assert done["attempt"] == 1


def test_same_idempotency_key_yields_one_operation(stack_factory: StackFactory) -> None:
    _, api = stack_factory.start(workers=1)
    headers = {"Idempotency-Key": "retry-me-1"}
    body = {"steps": 1, "step_ms": 1}
    first = api.http.post("/diagnostics/start", json=body, headers=headers)
    second = api.http.post("/diagnostics/start", json=body, headers=headers)
    assert first.status_code == 202 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert api.http.get("/operations").json()["count"] == 1
    other = api.http.post("/diagnostics/start", json={"steps": 2}, headers=headers)
    assert other.status_code == 409
    assert "different parameters" in other.json()["detail"]
