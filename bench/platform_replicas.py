"""bench_platform's API-replica part: dispatch throughput of 1 vs 2 API processes on one
PostgreSQL database (127.0.0.1:5432), same workers count, same run.

Each configuration gets a fresh database and two workers; with two APIs each has one
worker registered through it (both dispatch to both: one registry, one queue) and the
burst of zero-work diagnostics is submitted round-robin to the APIs. Timed on the client
clock until nothing is pending or running.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from benchlib import free_port
from ktrdr.local_stack import LocalStack

_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
ZERO_WORK = {"steps": 0, "step_ms": 0}


def _database() -> tuple[str, str]:
    import psycopg

    name = f"ktrdr_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _drop(name: str) -> None:
    import psycopg

    with psycopg.connect(_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _burst(urls: list[str], count: int, threads: int) -> dict[str, Any]:
    clients = [httpx.Client(base_url=f"{u}/api/v1", timeout=60) for u in urls]
    try:
        started = time.perf_counter()

        def submit(i: int) -> str:
            response = clients[i % len(clients)].post("/diagnostics/start", json=ZERO_WORK)
            response.raise_for_status()
            return str(response.json()["id"])

        with ThreadPoolExecutor(threads) as pool:
            ids = list(pool.map(submit, range(count)))
        while True:
            body = (
                clients[0]
                .get("/operations", params={"status": ["pending", "running"], "limit": 1})
                .json()
            )
            if body["count"] == 0:
                break
            if time.perf_counter() - started > 600:
                raise TimeoutError("burst did not finish in 600 s")
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        done = [clients[0].get(f"/operations/{i}").json()["status"] for i in ids]
        assert done.count("completed") == count, "every operation completed"
        return {"operations": count, "elapsed_s": elapsed, "ops_per_s": count / elapsed}
    finally:
        for client in clients:
            client.close()


def measure_replicas(tmp: Path, count: int, threads: int) -> dict[str, Any]:
    out: dict[str, Any] = {"database": "postgresql 127.0.0.1:5432", "workers": 2}
    for replicas in (1, 2):
        name, url = _database()
        env = {"KTRDR_DATABASE_URL": url, "KTRDR_LOG_LEVEL": "WARNING"}
        per_api = [2] if replicas == 1 else [1, 1]
        stacks = [
            LocalStack(data_home=tmp / f"replicas-{replicas}-{i}", api_port=free_port(),
                       worker_ports=[free_port() for _ in range(n)], extra_env=env)
            for i, n in enumerate(per_api)
        ]  # fmt: skip
        try:
            for stack in stacks:
                stack.start()
            stacks[-1].wait_for_workers(2)
            _burst([s.api_url for s in stacks], count // 10, threads)  # warm-up
            out[f"apis_{replicas}"] = _burst([s.api_url for s in stacks], count, threads)
        finally:
            for stack in stacks:
                stack.stop()
            _drop(name)
    out["two_over_one"] = out["apis_2"]["ops_per_s"] / out["apis_1"]["ops_per_s"]
    return out


def replicas_markdown(report: dict[str, Any]) -> list[str]:
    r = report.get("api_replicas")
    if not r:
        return []
    return [
        f"## Dispatch throughput: 1 vs 2 API replicas on PostgreSQL, {r['workers']} workers",
        "",
        "| APIs | operations | seconds | ops/s |",
        "|---:|---:|---:|---:|",
        *(
            f"| {n} | {r[f'apis_{n}']['operations']} | {r[f'apis_{n}']['elapsed_s']:.2f} "
            f"| {r[f'apis_{n}']['ops_per_s']:.1f} |"
            for n in (1, 2)
        ),
        "",
        f"- 2 APIs / 1 API: **{r['two_over_one']:.2f}×** (the same 2 cores run every"
        " process: a second replica adds a second dispatch loop, and dispatch is bound by"
        " its round trips to the database and the workers, not by CPU)",
        "",
    ]
