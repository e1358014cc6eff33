"""Two API processes on one PostgreSQL database: two dispatchers racing for the same
workers must still never put two operations on one worker."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import httpx
import pytest

from ktrdr.local_stack import LocalStack
from tests.support.stack import FAST_LIVENESS, StackFactory, free_port, wait_for


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
    runs: dict[str, list[tuple[float, float]]] = {}
    for o in ops:
        runs.setdefault(o["result"]["worker_id"], []).append(
            (o["result"]["started_unix_s"], o["result"]["ended_unix_s"])
        )
    assert len(runs) == 2
    for worker_id, spans in runs.items():
        spans.sort()
        for (_, end), (start, _) in pairwise(spans):
            assert start >= end, f"{worker_id} ran two operations at once"
    second_log = second.data_home / "logs" / "api.log"
    assert "dispatched to" in second_log.read_text(), "the second API dispatched too"
