"""Platform benchmark: dispatch latency and throughput of the real local stack (run by hand).

    .venv/bin/python bench/bench_platform.py [--latency-ops 200] [--throughput-ops 500]

Starts the API and two workers as processes (``LocalStack``, SQLite under a temporary
data home, span export off) and measures, with zero-work diagnostic operations
(``steps=0``), so that what is timed is the platform itself:

* latency: operations submitted one after another; client-observed (before the POST to
  the first poll that sees ``completed``; polls every ``--poll-ms``) and record-based
  (``created_at`` -> ``completed_at`` on the operation), split into queue wait
  (``created_at`` -> ``started_at``, i.e. until the dispatcher's claim) and run
  (``started_at`` -> ``completed_at``: send to worker, job, report);
* throughput: ``--throughput-ops`` submitted at once from a thread pool, timed until
  none is pending or running (client clock), and from the records (first ``created_at``
  to last ``completed_at``).

Results (issue #19): a ``--backtest-bars`` backtest (default 1,000,000) through the
platform, submit -> completed on the client clock, against the library call on the same
stored bars in the same run (``DataStore.load`` + ``run_backtest``, and ``run_backtest``
alone), with the record / report / artifact sizes and the time of each table route; and
the listing latency (``GET /operations``, a page of 50) with ``--listing-ops`` operations
in the store, on SQLite and on PostgreSQL (127.0.0.1:5432); and (``--store-bars``) a
backtest's data loading from the object store, cold and warm cache, against the local data
directory (bench/platform_store.py); and (``--replica-ops``) the dispatch throughput of
one vs two API processes on one PostgreSQL database (bench/platform_replicas.py).

Writes ``bench/results/platform-<UTC timestamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from benchlib import (
    REPO_ROOT,
    RESULTS_DIR,
    environment,
    free_port,
    machine_lines,
    summary_ms,
    timestamp,
    without_otlp_env,
    write_json,
)
from ktrdr.local_stack import LocalStack
from platform_replicas import measure_replicas, replicas_markdown
from platform_results import measure_celery, measure_large_backtest, measure_listing
from platform_store import measure_data_loading, store_markdown

PACKAGES = ("ktrdr", "fastapi", "uvicorn", "sqlalchemy", "httpx", "pydantic")
ZERO_WORK = {"steps": 0, "step_ms": 0}
NOT_FINISHED = ("pending", "running")


def _at(op: dict[str, Any], field: str) -> datetime:
    return datetime.fromisoformat(op[field])


def _seconds(op: dict[str, Any], start: str, end: str) -> float:
    return (_at(op, end) - _at(op, start)).total_seconds()


def _submit(http: httpx.Client) -> str:
    response = http.post("/diagnostics/start", json=ZERO_WORK)
    response.raise_for_status()
    return str(response.json()["id"])


def _wait_completed(
    http: httpx.Client, op_id: str, poll_s: float, timeout_s: float = 30.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        op: dict[str, Any] = http.get(f"/operations/{op_id}").json()
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
        op = _wait_completed(http, _submit(http), poll_s)
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


def measure_throughput(http: httpx.Client, count: int, threads: int) -> dict[str, Any]:
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
        time.sleep(0.02)
    else:
        raise TimeoutError("throughput run did not finish in 600 s")
    elapsed_s = time.perf_counter() - started
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
        "submit_s": submitted_s,
        "client_elapsed_s": elapsed_s,
        "client_ops_per_s": count / elapsed_s,
        "record_elapsed_s": record_s,
        "record_ops_per_s": count / record_s,
        "submit_ops_per_s": count / submitted_s,
        "per_worker": per_worker,
        "record_queue_wait": summary_ms([_seconds(op, "created_at", "started_at") for op in ops]),
        "record_run": summary_ms([_seconds(op, "started_at", "completed_at") for op in ops]),
    }


def _celery_markdown(report: dict[str, Any]) -> list[str]:
    celery, lat, thr = report.get("celery"), report.get("latency"), report.get("throughput")
    if not (celery and lat and thr):
        return []
    ours, theirs = lat["client_observed"], celery["latency_client_observed"]
    return [
        f"## Reference: Celery {celery['celery']} + Redis, {celery['workers']} worker processes "
        "(same run, same machine)",
        "",
        "| measure | KTRDR | Celery + Redis | KTRDR / Celery |",
        "|---|---:|---:|---:|",
        f"| zero-work round trip, client p50 (ms) | {ours['median_ms']:.1f} "
        f"| {theirs['median_ms']:.1f} | {ours['median_ms'] / theirs['median_ms']:.1f}× |",
        f"| zero-work round trip, client p95 (ms) | {ours['p95_ms']:.1f} "
        f"| {theirs['p95_ms']:.1f} | {ours['p95_ms'] / theirs['p95_ms']:.1f}× |",
        f"| burst of {thr['operations']}, ops/s | {thr['client_ops_per_s']:.1f} "
        f"| {celery['throughput']['ops_per_s']:.1f} "
        f"| {thr['client_ops_per_s'] / celery['throughput']['ops_per_s']:.2f} |",
        "",
        "KTRDR's client polls its record every `--poll-ms`; Celery's client waits on the",
        "Redis result backend. Celery workers: prefork, concurrency 1 each (one task at a",
        "time per worker, like KTRDR's).",
        "",
    ]


def _results_markdown(report: dict[str, Any]) -> list[str]:
    lines: list[str] = _celery_markdown(report)
    big = report.get("large_backtest")
    if big:
        p, lib, run = (big["platform_submit_to_completed"], big["library_load_and_run"],
                       big["library_run_backtest"])  # fmt: skip
        lines += [
            f"## A {big['bars']:,}-bar backtest ({big['trades']:,} trades), {big['runs']} runs",
            "",
            "| measure | median (ms) | min (ms) | max (ms) |",
            "|---|---:|---:|---:|",
            f"| platform: submit -> completed (client) | {p['median_ms']:.0f} "
            f"| {p['min_ms']:.0f} | {p['max_ms']:.0f} |",
            *(
                f"|   record: {label} | {big[key]['median_ms']:.0f} "
                f"| {big[key]['min_ms']:.0f} | {big[key]['max_ms']:.0f} |"
                for label, key in (
                    ("queue wait", "record_queue_wait"),
                    ("run on the worker", "record_run"),
                )
            ),
            f"| library: DataStore.load + run_backtest | {lib['median_ms']:.0f} "
            f"| {lib['min_ms']:.0f} | {lib['max_ms']:.0f} |",
            f"| library: run_backtest | {run['median_ms']:.0f} | {run['min_ms']:.0f} "
            f"| {run['max_ms']:.0f} |",
            "",
            f"- platform / run_backtest: **{big['ratio_to_library_run']:.2f}×**; platform / "
            f"(load + run): {big['ratio_to_library_load_and_run']:.2f}×",
            f"- goal 2 × run_backtest + 100 ms = {big['goal_s'] * 1000:.0f} ms: "
            f"{'met' if big['goal_met'] else 'not met'}",
            f"- operation record {big['record_bytes']:,} bytes; result in the report "
            f"{big['report_result_bytes']:,} bytes; artifacts "
            + ", ".join(f"{k} {v:,} bytes" for k, v in big["artifact_bytes"].items()),
            "- table routes (ms): "
            + ", ".join(f"{k} {v:.0f}" for k, v in big["table_route_ms"].items()),
            "",
        ]
    for listing in report.get("listing", []):
        lines += [
            f"## Listing with {listing['operations']:,} operations ({listing['database']})",
            "",
            "| request | median (ms) | p95 (ms) | max (ms) | response bytes |",
            "|---|---:|---:|---:|---:|",
            *(
                f"| {name} | {listing[name]['median_ms']:.1f} | {listing[name]['p95_ms']:.1f} "
                f"| {listing[name]['max_ms']:.1f} | {listing[name]['response_bytes']:,} |"
                for name in ("page_of_50", "filtered_page_of_50")
            ),
            "",
        ]
    return lines


def _markdown(report: dict[str, Any]) -> str:
    if "latency" not in report:
        return "\n".join(
            [f"# Platform benchmark — {report['date']}", "", *_results_markdown(report),
             *store_markdown(report), *replicas_markdown(report),
             "## Machine", "", *machine_lines(report["environment"]), ""]
        )  # fmt: skip
    lat, thr = report["latency"], report["throughput"]
    rows = [
        ("client-observed submit -> completed", lat["client_observed"]),
        ("record created_at -> completed_at", lat["record_created_to_completed"]),
        ("  of which queue wait (created -> started)", lat["record_queue_wait"]),
        ("  of which run (started -> completed)", lat["record_run"]),
    ]
    lines = [
        f"# Platform benchmark — {report['date']}",
        "",
        "Real local stack (API + 2 workers as processes, SQLite, span export off), zero-work",
        "diagnostic operations (`steps=0`).",
        "",
        f"## Latency: {lat['operations']} sequential operations (client polls every "
        f"{report['settings']['poll_ms']} ms)",
        "",
        "| measure | median (ms) | p95 (ms) | min (ms) | max (ms) |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {s['median_ms']:.1f} | {s['p95_ms']:.1f} | {s['min_ms']:.1f} "
            f"| {s['max_ms']:.1f} |"
            for name, s in rows
        ),
        "",
        "Server time per route during the latency run (FastAPI instrumentation's",
        "`http_server_duration_milliseconds`, whole-ms resolution per request):",
        "",
        "| process | route | requests per operation | mean server time (ms) |",
        "|---|---|---:|---:|",
        *(
            f"| {proc} | `{route}` | {row['requests_per_operation']:.2f} "
            f"| {row['mean_server_ms']:.1f} |"
            for proc, routes in lat["server_time_by_route"].items()
            for route, row in routes.items()
        ),
        "",
        f"## Throughput: {thr['operations']} submitted at once ({thr['submit_threads']} threads)",
        "",
        f"- client clock: {thr['client_elapsed_s']:.2f} s -> "
        f"**{thr['client_ops_per_s']:.1f} ops/s**",
        f"- records (first created_at -> last completed_at): {thr['record_elapsed_s']:.2f} s -> "
        f"{thr['record_ops_per_s']:.1f} ops/s",
        f"- submission alone: {thr['submit_s']:.2f} s ({thr['submit_ops_per_s']:.1f} submits/s)",
        f"- per worker: {thr['per_worker']}",
        f"- per-operation run (started -> completed): median "
        f"{thr['record_run']['median_ms']:.1f} ms, p95 {thr['record_run']['p95_ms']:.1f} ms",
        "",
        *_results_markdown(report),
        *store_markdown(report),
        *replicas_markdown(report),
        "## Machine",
        "",
        *machine_lines(report["environment"]),
        "",
    ]
    return "\n".join(lines)


def _print_summary(results: dict[str, Any]) -> None:
    if "latency" in results:
        lat, throughput = results["latency"], results["throughput"]
        print(
            f"latency client median {lat['client_observed']['median_ms']:.1f} ms "
            f"p95 {lat['client_observed']['p95_ms']:.1f} ms; record median "
            f"{lat['record_created_to_completed']['median_ms']:.1f} ms p95 "
            f"{lat['record_created_to_completed']['p95_ms']:.1f} ms"
        )
        print(f"throughput {throughput['client_ops_per_s']:.1f} ops/s (client clock)")
    if "large_backtest" in results:
        big = results["large_backtest"]
        print(
            f"{big['bars']:,}-bar backtest: platform "
            f"{big['platform_submit_to_completed']['median_ms']:.0f} ms, library run "
            f"{big['library_run_backtest']['median_ms']:.0f} ms "
            f"({big['ratio_to_library_run']:.2f}x), record {big['record_bytes']:,} bytes"
        )
    if "celery" in results:
        c = results["celery"]
        print(
            f"celery: p50 {c['latency_client_observed']['median_ms']:.1f} ms, "
            f"{c['throughput']['ops_per_s']:.1f} ops/s"
        )
    if "api_replicas" in results:
        r = results["api_replicas"]
        print(
            f"dispatch on PostgreSQL: 1 API {r['apis_1']['ops_per_s']:.1f} ops/s, "
            f"2 APIs {r['apis_2']['ops_per_s']:.1f} ops/s"
        )
    if "data_loading" in results:
        d = results["data_loading"]
        print(
            f"data loading {d['bars']:,} bars: local {d['local']['median_ms']:.0f} ms, "
            f"store cold {d['cold']['median_ms']:.0f} ms, warm {d['warm']['median_ms']:.0f} ms"
        )
    for listing in results.get("listing", []):
        print(f"listing {listing['database']}: {listing['page_of_50']['median_ms']:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ops", type=int, default=200)
    parser.add_argument("--warmup-ops", type=int, default=20)
    parser.add_argument("--throughput-ops", type=int, default=500)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--poll-ms", type=float, default=5.0)
    parser.add_argument("--backtest-bars", type=int, default=1_000_000, help="0: skip")
    parser.add_argument("--backtest-runs", type=int, default=5)
    parser.add_argument("--listing-ops", type=int, default=10_000, help="0: skip")
    parser.add_argument("--listing-requests", type=int, default=50)
    parser.add_argument("--listing-databases", default="sqlite,postgresql")
    parser.add_argument("--store-bars", type=int, default=1_000_000, help="0: skip")
    parser.add_argument("--store-runs", type=int, default=5)
    parser.add_argument("--replica-ops", type=int, default=200, help="0: skip")
    parser.add_argument("--skip-dispatch", action="store_true", help="only the result parts")
    parser.add_argument(
        "--celery-venv", default="/work/benchenv-lean", help="Celery reference env; '' skips"
    )
    args = parser.parse_args()
    results: dict[str, Any] = {}

    without_otlp_env()
    with tempfile.TemporaryDirectory(prefix="ktrdr-bench-") as tmp:
        stack = LocalStack(
            data_home=Path(tmp),
            api_port=free_port(),
            worker_ports=[free_port(), free_port()],
            extra_env={"KTRDR_LOG_LEVEL": "WARNING"},
        )
        stack.start()
        try:
            limits = httpx.Limits(
                max_connections=args.threads, max_keepalive_connections=args.threads
            )
            with httpx.Client(
                base_url=f"{stack.api_url}/api/v1", timeout=60, limits=limits
            ) as http:
                if not args.skip_dispatch:
                    measure_latency(http, args.warmup_ops, args.poll_ms / 1000)
                    processes = {"api": stack.api_url, **{w.name: w.url for w in stack.workers}}
                    before = {name: route_times(url) for name, url in processes.items()}
                    latency = measure_latency(http, args.latency_ops, args.poll_ms / 1000)
                    latency["server_time_by_route"] = {
                        name: route_breakdown(before[name], route_times(url), args.latency_ops)
                        for name, url in processes.items()
                    }
                    results["latency"] = latency
                    results["throughput"] = measure_throughput(
                        http, args.throughput_ops, args.threads
                    )
                if args.backtest_bars:
                    results["large_backtest"] = measure_large_backtest(
                        http, Path(tmp), args.backtest_bars, args.backtest_runs,
                        args.poll_ms / 1000,
                    )  # fmt: skip
        finally:
            stack.stop()
        if args.celery_venv and not args.skip_dispatch:
            results["celery"] = measure_celery(
                Path(args.celery_venv), args.latency_ops, args.warmup_ops, args.throughput_ops
            )
        if args.replica_ops:
            results["api_replicas"] = measure_replicas(Path(tmp), args.replica_ops, args.threads)
        if args.store_bars:
            results["data_loading"] = measure_data_loading(
                Path(tmp), args.store_bars, args.store_runs
            )
        if args.listing_ops:
            results["listing"] = [
                measure_listing(kind, Path(tmp), args.listing_ops, args.listing_requests)
                for kind in args.listing_databases.split(",")
            ]

    stamp = timestamp()
    report: dict[str, Any] = {
        "benchmark": "platform dispatch",
        "date": stamp,
        "settings": vars(args),
        "environment": environment(PACKAGES),
        **results,
    }
    out = write_json("platform", stamp, report)
    md = RESULTS_DIR / f"platform-{stamp}.md"
    md.write_text(_markdown(report))
    _print_summary(results)
    print(f"results: {out.relative_to(REPO_ROOT)}, {md.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
