"""Two API processes on one PostgreSQL database: two dispatchers racing for the same
workers must still never put two operations on one worker."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from ktrdr.local_stack import LocalStack
from tests.support.stack import (
    FAST_LIVENESS,
    StackFactory,
    assert_one_job_at_a_time_per_worker,
    free_port,
    wait_for,
)


def test_two_apis_share_the_queue_without_double_booking(
    stack_factory: StackFactory, request: pytest.FixtureRequest
) -> None:
    env = {"KTRDR_DATABASE_URL": request.getfixturevalue("fresh_postgres_url")}
    stack, api = stack_factory.start(workers=2, env=env)
    second = LocalStack(
        data_home=stack.data_home / "second-api",
        api_port=free_port(),
        worker_ports=[],
        extra_env={**FAST_LIVENESS, **env},
    )
    second.start_api()
    try:
        urls = [stack.api_url, second.api_url]

        def submit(i: int) -> str:
            response = httpx.post(
                f"{urls[i % 2]}/api/v1/diagnostics/start",
                json={"steps": 1, "step_ms": 20, "label": f"two-{i}"},
                timeout=30,
            )
            assert response.status_code == 202, response.text
            return str(response.json()["id"])

        with ThreadPoolExecutor(max_workers=8) as pool:
            ids = set(pool.map(submit, range(30)))

        def finished() -> list[dict] | None:
            ops = [api.op(op_id) for op_id in ids]
            return ops if all(o["status"] == "completed" for o in ops) else None

        ops = wait_for(finished, 60, "all 30 operations to complete")
    finally:
        assert second.api is not None
        second.api.kill()
    assert all(o["attempt"] == 1 for o in ops)
    assert len(assert_one_job_at_a_time_per_worker(ops)) == 2
    second_log = second.data_home / "logs" / "api.log"
    assert "dispatched to" in second_log.read_text(), "the second API dispatched too"
