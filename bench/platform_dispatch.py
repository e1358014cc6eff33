"""bench_platform's dispatch measurements: zero-work latency and burst throughput of a
real local stack, optionally of another source tree (the "before" of a before/after run
in one invocation: same machine, same minutes, same harness)."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from benchlib import cpu_seconds, free_port, summary_ms
from ktrdr.local_stack import LocalStack

ZERO_WORK = {"steps": 0, "step_ms": 0}
NOT_FINISHED = ("pending", "running")
# Each read waits up to this long for the end (GET /operations/{id}?wait_s=, a long poll);
# code without the parameter answers at once and the client polls every --poll-ms.
WAIT_S = 5.0


def _at(op: dict[str, Any], field: str) -> datetime:
    return datetime.fromisoformat(op[field])


def _seconds(op: dict[str, Any], start: str, end: str) -> float:
    return (_at(op, end) - _at(op, start)).total_seconds()


def _submit(http: httpx.Client) -> str:
    response = http.post("/diagnostics/start", json=ZERO_WORK)
    response.raise_for_status()
    return str(response.json()["id"])


def wait_completed(
    http: httpx.Client, op_id: str, poll_s: float, timeout_s: float = 30.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        op: dict[str, Any] = http.get(f"/operations/{op_id}", params={"wait_s": WAIT_S}).json()
        if op["status"] not in NOT_FINISHED:
            if op["status"] != "completed":
                raise RuntimeError(f"{op_id} ended {op['status']}: {op.get('error')}")
            return op
        time.sleep(poll_s)
    raise TimeoutError(f"{op_id} not completed after {timeout_s} s")


RouteTimes = dict[str, tuple[float, float]]


def route_times(base_url: str) -> RouteTimes:
    """``"METHOD target" -> (requests, total server ms)`` from a process's /metrics."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    out: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "http_server_duration_milliseconds":
            continue
        for sample in family.samples:
            key = f"{sample.labels.get('http_method')} {sample.labels.get('http_target')}"
            slot = out.setdefault(key, [0.0, 0.0])
            if sample.name.endswith("_count"):
                slot[0] += sample.value
            elif sample.name.endswith("_sum"):
                slot[1] += sample.value
    return {k: (v[0], v[1]) for k, v in out.items()}


def route_breakdown(before: RouteTimes, after: RouteTimes, operations: int) -> dict[str, Any]:
    """Per route between two snapshots: requests per operation and mean server time."""
    rows: dict[str, Any] = {}
    for key, (count, total_ms) in after.items():
        count -= before.get(key, (0.0, 0.0))[0]
        total_ms -= before.get(key, (0.0, 0.0))[1]
        if count > 0:
            rows[key] = {
                "requests_per_operation": count / operations,
                "mean_server_ms": total_ms / count,
            }
    return rows


def measure_latency(http: httpx.Client, count: int, poll_s: float) -> dict[str, Any]:
    client_s: list[float] = []
    records: list[dict[str, Any]] = []
    for _ in range(count):
        started = time.perf_counter()
        op = wait_completed(http, _submit(http), poll_s)
        client_s.append(time.perf_counter() - started)
        records.append(op)
    return {
        "operations": count,
        "client_observed": summary_ms(client_s),
        "record_created_to_completed": summary_ms(
            [_seconds(op, "created_at", "completed_at") for op in records]
        ),
        "record_queue_wait": summary_ms(
            [_seconds(op, "created_at", "started_at") for op in records]
        ),
        "record_run": summary_ms([_seconds(op, "started_at", "completed_at") for op in records]),
        "samples_client_s": client_s,
    }


def measure_throughput(
    http: httpx.Client, count: int, threads: int, poll_s: float, pids: list[int]
) -> dict[str, Any]:
    cpu_before = cpu_seconds(*pids)
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        ids = list(pool.map(lambda _: _submit(http), range(count)))
    submitted_s = time.perf_counter() - started
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        body = http.get(
            "/operations", params={"status": list(NOT_FINISHED), "type": "diagnostic", "limit": 1}
        ).json()
        if body["count"] == 0:
            break
        time.sleep(poll_s)
    else:
        raise TimeoutError("throughput run did not finish in 600 s")
    elapsed_s = time.perf_counter() - started
    cpu_s = cpu_seconds(*pids) - cpu_before
    ops = [http.get(f"/operations/{op_id}").json() for op_id in ids]
    failed = [op["id"] for op in ops if op["status"] != "completed"]
    if failed:
        raise RuntimeError(f"{len(failed)} operations did not complete, e.g. {failed[0]}")
    first = min(_at(op, "created_at") for op in ops)
    last = max(_at(op, "completed_at") for op in ops)
    record_s = (last - first).total_seconds()
    per_worker: dict[str, int] = {}
    for op in ops:
        per_worker[op["worker_id"]] = per_worker.get(op["worker_id"], 0) + 1
    return {
        "operations": count,
        "submit_threads": threads,
        "poll_ms": poll_s * 1000,
        "submit_s": submitted_s,
        "client_elapsed_s": elapsed_s,
        "client_ops_per_s": count / elapsed_s,
        "record_elapsed_s": record_s,
        "record_ops_per_s": count / record_s,
        "submit_ops_per_s": count / submitted_s,
        "api_cpu_ms_per_operation": cpu_s * 1000 / count,
        "per_worker": per_worker,
        "record_queue_wait": summary_ms([_seconds(op, "created_at", "started_at") for op in ops]),
        "record_run": summary_ms([_seconds(op, "started_at", "completed_at") for op in ops]),
    }


def run_dispatch(
    data_home: Path, args: Any, src: Path | None = None, after_start: Any = None
) -> dict[str, Any]:
    """Latency and throughput of a fresh stack (API + 2 workers), on ``src``'s code if given
    (PYTHONPATH of the started processes) or this checkout's. ``after_start(http)`` runs
    other measurements on the same stack before it stops."""
    env = {"KTRDR_LOG_LEVEL": "WARNING"}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    stack = LocalStack(data_home=data_home, api_port=free_port(),
                       worker_ports=[free_port(), free_port()], extra_env=env)  # fmt: skip
    stack.start()
    results: dict[str, Any] = {"code": str(src or "this checkout")}
    try:
        limits = httpx.Limits(max_connections=args.threads, max_keepalive_connections=args.threads)
        with httpx.Client(base_url=f"{stack.api_url}/api/v1", timeout=60, limits=limits) as http:
            if not args.skip_dispatch:
                poll_s = args.poll_ms / 1000
                measure_latency(http, args.warmup_ops, poll_s)
                processes = {"api": stack.api_url, **{w.name: w.url for w in stack.workers}}
                before = {name: route_times(url) for name, url in processes.items()}
                latency = measure_latency(http, args.latency_ops, poll_s)
                latency["server_time_by_route"] = {
                    name: route_breakdown(before[name], route_times(url), args.latency_ops)
                    for name, url in processes.items()
                }
                latency["load_average"] = list(os.getloadavg())
                results["latency"] = latency
                assert stack.api is not None and stack.api.process is not None
                results["throughput"] = measure_throughput(
                    http, args.throughput_ops, args.threads, args.throughput_poll_ms / 1000,
                    [stack.api.process.pid],
                )  # fmt: skip
                results["throughput"]["load_average"] = list(os.getloadavg())
            if after_start is not None:
                results.update(after_start(http))
    finally:
        stack.stop()
    return results


def comparison_markdown(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Before/after table of one run (both stacks measured back to back)."""
    rows = [
        ("client p50 submit -> completed (ms)", "latency", "client_observed", "median_ms"),
        ("client p95 (ms)", "latency", "client_observed", "p95_ms"),
        ("record p50 created -> completed (ms)", "latency", "record_created_to_completed",
         "median_ms"),
        ("record p50 queue wait (ms)", "latency", "record_queue_wait", "median_ms"),
        ("record p50 run (ms)", "latency", "record_run", "median_ms"),
    ]  # fmt: skip
    lines = [
        f"## Before / after in this run (before: `{before['code']}`)",
        "",
        "| measure | before | after | after / before |",
        "|---|---:|---:|---:|",
    ]
    for label, part, measure, stat in rows:
        b, a = before[part][measure][stat], after[part][measure][stat]
        lines.append(f"| {label} | {b:.1f} | {a:.1f} | {a / b:.2f} |")
    burst = (
        ("burst ops/s (client clock)", "client_ops_per_s"),
        ("burst ops/s (records)", "record_ops_per_s"),
        ("API CPU per operation in the burst (ms)", "api_cpu_ms_per_operation"),
    )
    for label, key in burst:
        b, a = before["throughput"][key], after["throughput"][key]
        lines.append(f"| {label} | {b:.1f} | {a:.1f} | {a / b:.2f} |")
    loads = [before["latency"]["load_average"][0], after["latency"]["load_average"][0]]
    lines += ["", f"1-minute load average after each latency run: before {loads[0]:.1f}, "
              f"after {loads[1]:.1f}.", ""]  # fmt: skip
    return lines
