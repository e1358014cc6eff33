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
    stack, api = stack_factory.start(workers=1, env=env)
    # The second API gets a worker of its own: each API then hears half of the final
    # reports, and a report makes that API dispatch at once -- so both dispatchers take
    # work, while either may hand an operation to either worker (one registry, one queue).
    second = LocalStack(
        data_home=stack.data_home / "second-api",
        api_port=free_port(),
        worker_ports=[free_port()],
        extra_env={**FAST_LIVENESS, **env},
    )
    stack_factory.stacks.append(second)  # killed, and its logs checked for 500s, at the end
    second.start()
    second.wait_for_workers(2)
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
    assert len(ids) == 30 and all(o["attempt"] == 1 for o in ops)
    assert len(assert_one_job_at_a_time_per_worker(ops)) == 2
    for home in (stack.data_home, second.data_home):
        log = (home / "logs" / "api.log").read_text()
        assert "dispatched to" in log, f"the API in {home} never dispatched"
