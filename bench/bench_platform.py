"""Platform benchmark: dispatch latency and throughput of the real local stack (run by hand).

    .venv/bin/python bench/bench_platform.py [--latency-ops 200] [--throughput-ops 500]

Starts the API and two workers as processes (``LocalStack``, SQLite under a temporary
data home, span export off) and measures, with zero-work diagnostic operations
(``steps=0``), so that what is timed is the platform itself:

* latency: operations submitted one after another; client-observed (before the POST to
  the first read that sees ``completed``: ``GET /operations/{id}?wait_s=``, a long poll
  answered at the end; code without it answers at once and the client then polls every
  ``--poll-ms``) and record-based
  (``created_at`` -> ``completed_at`` on the operation), split into queue wait
  (``created_at`` -> ``started_at``, i.e. until the dispatcher's claim) and run
  (``started_at`` -> ``completed_at``: send to worker, job, report);
* throughput: ``--throughput-ops`` submitted at once from a thread pool, timed until
  none is pending or running (client clock, checked every ``--throughput-poll-ms``), and
  from the records (first ``created_at`` to last ``completed_at``), with the API's CPU
  time per operation;
* with ``--before-src DIR`` (e.g. ``src`` of a worktree at main), the same two first on
  that code, then on this checkout's: before/after in one run, back to back.

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
from pathlib import Path
from typing import Any

import httpx

from benchlib import (
    REPO_ROOT,
    RESULTS_DIR,
    environment,
    machine_lines,
    timestamp,
    without_otlp_env,
    write_json,
)
from platform_dispatch import comparison_markdown, run_dispatch
from platform_replicas import measure_replicas, replicas_markdown
from platform_results import measure_celery, measure_large_backtest, measure_listing
from platform_store import measure_data_loading, store_markdown

PACKAGES = ("ktrdr", "fastapi", "uvicorn", "sqlalchemy", "httpx", "pydantic")


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
        "KTRDR's client waits with `GET /operations/{id}?wait_s=` (a long poll; code",
        "without it answers at once and the client polls every `--poll-ms`); Celery's",
        "client waits on the Redis result backend. Celery workers: prefork, concurrency 1",
        "each (one task at a time per worker, like KTRDR's).",
        "",
        f"- goal p50 within 2× Celery's ({2 * theirs['median_ms']:.1f} ms): "
        f"{'met' if ours['median_ms'] <= 2 * theirs['median_ms'] else 'not met'}",
        f"- goal burst throughput ≥ 50 % of Celery's "
        f"({celery['throughput']['ops_per_s'] / 2:.1f} ops/s): "
        f"{'met' if 2 * thr['client_ops_per_s'] >= celery['throughput']['ops_per_s'] else 'not'}"
        f"{'' if 2 * thr['client_ops_per_s'] >= celery['throughput']['ops_per_s'] else ' met'}",
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
            *(
                f"|     worker phase: {name} | {ms['median_ms']:.0f} | {ms['min_ms']:.0f} "
                f"| {ms['max_ms']:.0f} |"
                for name, ms in big.get("worker_phases", {}).items()
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
        f"## Latency: {lat['operations']} sequential operations (long poll; without it the "
        f"client polls every {report['settings']['poll_ms']} ms)",
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
        "`http_server_duration_milliseconds`, whole-ms resolution per request; a GET with",
        "`wait_s` counts its wait):",
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
        f"## Throughput: {thr['operations']} submitted at once ({thr['submit_threads']} threads; "
        f"the end is polled every {thr['poll_ms']:.0f} ms)",
        "",
        f"- client clock: {thr['client_elapsed_s']:.2f} s -> "
        f"**{thr['client_ops_per_s']:.1f} ops/s**",
        f"- records (first created_at -> last completed_at): {thr['record_elapsed_s']:.2f} s -> "
        f"{thr['record_ops_per_s']:.1f} ops/s",
        f"- submission alone: {thr['submit_s']:.2f} s ({thr['submit_ops_per_s']:.1f} submits/s)",
        f"- API CPU per operation: {thr['api_cpu_ms_per_operation']:.1f} ms",
        f"- per worker: {thr['per_worker']}",
        f"- per-operation run (started -> completed): median "
        f"{thr['record_run']['median_ms']:.1f} ms, p95 {thr['record_run']['p95_ms']:.1f} ms",
        "",
        *(comparison_markdown(report["before"], report) if "before" in report else []),
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
    parser.add_argument("--poll-ms", type=float, default=5.0, help="without the long poll")
    parser.add_argument(
        "--throughput-poll-ms", type=float, default=100.0,
        help="how often the burst's end is checked (each check is a request to the API)",
    )  # fmt: skip
    parser.add_argument(
        "--before-src", default="",
        help="also measure the dispatch on this source tree first (e.g. a worktree of main's "
        "src): before/after in one run",
    )  # fmt: skip
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
        if args.before_src and not args.skip_dispatch:
            before = run_dispatch(Path(tmp) / "before", args, Path(args.before_src))
            results["before"] = before

        def large_backtest(http: httpx.Client) -> dict[str, Any]:
            if not args.backtest_bars:
                return {}
            big = measure_large_backtest(http, Path(tmp) / "after", args.backtest_bars,
                                         args.backtest_runs, args.poll_ms / 1000)  # fmt: skip
            return {"large_backtest": big}

        results.update(run_dispatch(Path(tmp) / "after", args, after_start=large_backtest))
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
