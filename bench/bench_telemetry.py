"""Telemetry overhead benchmark (run by hand, not part of the test suite).

    .venv/bin/python bench/bench_telemetry.py [--requests 2000] [--repeats 5] [--cases ...]

Each case runs the same workload with telemetry off and on, against two sets of processes
started side by side (one without, one with span export over OTLP/HTTP to a receiver in
its own process, standing in for Jaeger). Samples alternate between the two (off/on, then
on/off, ...) so machine noise hits both sides alike; the overhead is computed from the
medians and, for its spread, from each repeat's adjacent off/on pair. Results go to
``bench/results/telemetry-<timestamp>.json`` and ``.md`` with machine and versions.

Cases:

* ``app_plain_route`` / ``app_outbound_call``: throughput of a small instrumented FastAPI
  app (``tests/telemetry/instrumented_app.py``, uvicorn subprocess); "off" there is no
  OpenTelemetry at all;
* ``api_operations`` / ``api_health``: throughput of the real API (``LocalStack``) on
  ``GET /api/v1/operations`` (50 stored operations) and ``GET /api/v1/health``;
* ``backtest_duration``: ``started_at -> completed_at`` of an ``sma_crossover`` backtest
  on 200,000 synthetic 1h bars through the real stack (API + one worker).

For the real stack "off" means no ``OTEL_EXPORTER_OTLP_ENDPOINT``: FastAPI/httpx
instrumentation, Prometheus metrics and a ``TracerProvider`` (for trace ids) are always
on, so the figure is the cost of recording and exporting spans.

A case is a function ``(telemetry, otlp_endpoint, args) -> context manager yielding a
sampler``; the sampler returns one figure (requests/s, or seconds with
``lower_is_better``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from benchlib import (
    REPO_ROOT,
    RESULTS_DIR,
    cpu_seconds,
    environment,
    free_port,
    machine_lines,
    percentile,
    timestamp,
    without_otlp_env,
    write_json,
)
from ktrdr.local_stack import LocalStack

APP_SCRIPT = REPO_ROOT / "tests" / "telemetry" / "instrumented_app.py"
PACKAGES = (
    "ktrdr",
    "fastapi",
    "uvicorn",
    "httpx",
    "sqlalchemy",
    "prometheus-client",
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-http",
    "opentelemetry-instrumentation-fastapi",
    "opentelemetry-instrumentation-httpx",
)


@dataclass(frozen=True)
class Sample:
    value: float
    # CPU seconds the server processes used per unit of work (request, backtest): far
    # less disturbed than wall-clock figures when other jobs share the machine.
    cpu_s_per_unit: float


Sampler = Callable[[], Sample]


def _throughput_sample(base_url: str, paths: list[str], concurrency: int, *pids: int) -> Sample:
    cpu_before = cpu_seconds(*pids)
    rate = asyncio.run(_hammer(base_url, paths, concurrency))
    return Sample(rate, (cpu_seconds(*pids) - cpu_before) / len(paths))


@dataclass(frozen=True)
class Case:
    name: str
    unit: str
    open: Callable[[bool, str, argparse.Namespace], AbstractContextManager[Sampler]]
    lower_is_better: bool = False
    # Name of the command-line option giving this case's number of repeats.
    repeats_option: str = "repeats"


class ReceiverProcess:
    """The test suite's OTLP receiver in its own process.

    In this process it would compete with the load-generating client for the GIL and
    inflate the measured overhead.
    """

    _CODE = (
        "import sys\n"
        "from tests.support.otlp_receiver import OtlpReceiver\n"
        "r = OtlpReceiver()\n"
        "print(r.endpoint, flush=True)\n"
        "sys.stdin.read()\n"
        "print(len(r.spans()), flush=True)\n"
    )

    def __enter__(self) -> ReceiverProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-c", self._CODE],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.endpoint = self.process.stdout.readline().strip()
        return self

    def close(self) -> int:
        """Stop the receiver; return how many spans it received."""
        out, _ = self.process.communicate(timeout=30)
        return int(out.strip() or 0)

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class AppProcess:
    """The test suite's instrumented app in a uvicorn subprocess."""

    def __init__(self, telemetry: bool, otlp_endpoint: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env["KTRDR_OTLP_ENDPOINT"] = otlp_endpoint
        args = [sys.executable, str(APP_SCRIPT), "--port", str(self.port)]
        if not telemetry:
            args.append("--no-telemetry")
        self.process = subprocess.Popen(
            args, cwd=REPO_ROOT, env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app exited with {self.process.returncode}")
            try:
                httpx.get(f"{self.base_url}/openapi.json", timeout=1.0).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError("app did not start")

    def __enter__(self) -> AppProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


async def _hammer(base_url: str, paths: list[str], concurrency: int) -> float:
    """Send every path with ``concurrency`` requests in flight; return requests/s."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for path in paths:
        queue.put_nowait(path)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            while not queue.empty():
                (await client.get(queue.get_nowait())).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(paths) / (time.perf_counter() - started)


@contextmanager
def _app_session(
    route: str, telemetry: bool, otlp_endpoint: str, args: argparse.Namespace
) -> Iterator[Sampler]:
    with AppProcess(telemetry, otlp_endpoint) as app:
        warm_up = [f"{route}/warm-{i}" for i in range(200)]
        asyncio.run(_hammer(app.base_url, warm_up, args.concurrency))
        paths = [f"{route}/op-{i}" for i in range(args.requests)]
        yield lambda: _throughput_sample(app.base_url, paths, args.concurrency, app.process.pid)


def _app_throughput(
    route: str,
) -> Callable[[bool, str, argparse.Namespace], AbstractContextManager[Sampler]]:
    return lambda telemetry, endpoint, args: _app_session(route, telemetry, endpoint, args)


# ------------------------------------------------------------------ the real stack


@contextmanager
def _stack(telemetry: bool, otlp_endpoint: str, workers: int) -> Iterator[LocalStack]:
    """API + ``workers`` workers; span export only with ``telemetry``."""
    env = {"KTRDR_LOG_LEVEL": "WARNING"}
    if telemetry:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp_endpoint
    with tempfile.TemporaryDirectory(prefix="ktrdr-bench-") as tmp:
        stack = LocalStack(
            data_home=Path(tmp),
            api_port=free_port(),
            worker_ports=[free_port() for _ in range(workers)],
            extra_env=env,
        )
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()


def _run_operation(
    http: httpx.Client, path: str, body: dict[str, Any], timeout_s: float = 300.0
) -> dict[str, Any]:
    """Submit and wait; return the completed operation record."""
    response = http.post(path, json=body)
    response.raise_for_status()
    op_id = response.json()["id"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        op: dict[str, Any] = http.get(f"/operations/{op_id}").json()
        if op["status"] == "completed":
            return op
        if op["status"] not in ("pending", "running"):
            raise RuntimeError(f"{path} {body} ended {op['status']}: {op.get('error')}")
        time.sleep(0.02)
    raise TimeoutError(f"{op_id} not completed after {timeout_s} s")


@contextmanager
def _api_session(
    path: str, telemetry: bool, otlp_endpoint: str, args: argparse.Namespace
) -> Iterator[Sampler]:
    with _stack(telemetry, otlp_endpoint, workers=1) as stack:
        with httpx.Client(base_url=f"{stack.api_url}/api/v1", timeout=30) as http:
            # Something to list: the default page of operations is full.
            for _ in range(args.stored_operations):
                _run_operation(http, "/diagnostics/start", {"steps": 0, "step_ms": 0})
        asyncio.run(_hammer(stack.api_url, [path] * 200, args.concurrency))
        assert stack.api is not None and stack.api.process is not None
        api_pid = stack.api.process.pid
        yield lambda: _throughput_sample(
            stack.api_url, [path] * args.requests, args.concurrency, api_pid
        )


def _api_throughput(
    path: str,
) -> Callable[[bool, str, argparse.Namespace], AbstractContextManager[Sampler]]:
    return lambda telemetry, endpoint, args: _api_session(path, telemetry, endpoint, args)


BACKTEST = {"strategy": "sma_crossover", "symbol": "EURUSD"}


@contextmanager
def _backtest_session(
    telemetry: bool, otlp_endpoint: str, args: argparse.Namespace
) -> Iterator[Sampler]:
    download = {
        "symbol": "EURUSD",
        "timeframe": "1h",
        "provider": "synthetic",
        "bars": args.bars,
        "seed": 1,
    }
    with (
        _stack(telemetry, otlp_endpoint, workers=1) as stack,
        httpx.Client(base_url=f"{stack.api_url}/api/v1", timeout=60) as http,
    ):
        _run_operation(http, "/data/downloads/start", download)
        _run_operation(http, "/backtests/start", BACKTEST)  # warm-up: imports, numba, caches

        pids = [p.process.pid for p in (stack.api, *stack.workers) if p and p.process]

        def sample() -> Sample:
            cpu_before = cpu_seconds(*pids)
            op = _run_operation(http, "/backtests/start", BACKTEST)
            cpu_s = cpu_seconds(*pids) - cpu_before
            started = datetime.fromisoformat(op["started_at"])
            return Sample(
                (datetime.fromisoformat(op["completed_at"]) - started).total_seconds(), cpu_s
            )

        yield sample


CASES: dict[str, Case] = {
    "app_plain_route": Case("app_plain_route", "requests/s", _app_throughput("/api/v1/operations")),
    "app_outbound_call": Case("app_outbound_call", "requests/s", _app_throughput("/api/v1/chain")),
    "api_operations": Case("api_operations", "requests/s", _api_throughput("/api/v1/operations")),
    "api_health": Case("api_health", "requests/s", _api_throughput("/api/v1/health")),
    "backtest_duration": Case(
        "backtest_duration",
        "s",
        _backtest_session,
        lower_is_better=True,
        repeats_option="backtest_repeats",
    ),
}


def _overhead_pct(off: float, on: float, lower_is_better: bool) -> float:
    # Positive = telemetry costs something, for throughput and durations alike.
    return ((on - off) / off if lower_is_better else (off - on) / off) * 100.0


def _compare(off: list[float], on: list[float], lower_is_better: bool) -> dict[str, Any]:
    """Overhead of the medians; spread from each repeat's adjacent off/on pair."""
    pairs = [_overhead_pct(a, b, lower_is_better) for a, b in zip(off, on, strict=True)]
    off_median, on_median = statistics.median(off), statistics.median(on)
    return {
        "off_median": off_median,
        "on_median": on_median,
        "overhead_pct": _overhead_pct(off_median, on_median, lower_is_better),
        "pair_overhead_pct": {
            "median": statistics.median(pairs),
            "p10": percentile(pairs, 10),
            "p90": percentile(pairs, 90),
            "min": min(pairs),
            "max": max(pairs),
        },
        "samples": {"off": off, "on": on},
    }


def run_case(case: Case, endpoint: str, args: argparse.Namespace) -> dict[str, Any]:
    """Both sides open at once; samples alternate off/on, on/off, ... ."""
    got: dict[str, list[Sample]] = {"off": [], "on": []}
    with (
        case.open(False, endpoint, args) as sample_off,
        case.open(True, endpoint, args) as sample_on,
    ):
        samplers = {"off": sample_off, "on": sample_on}
        for repeat in range(getattr(args, case.repeats_option)):
            for mode in ("off", "on") if repeat % 2 == 0 else ("on", "off"):
                got[mode].append(samplers[mode]())
    return {
        "name": case.name,
        "unit": case.unit,
        "lower_is_better": case.lower_is_better,
        **_compare(
            [s.value for s in got["off"]], [s.value for s in got["on"]], case.lower_is_better
        ),
        "server_cpu_ms_per_unit": _compare(
            [s.cpu_s_per_unit * 1000 for s in got["off"]],
            [s.cpu_s_per_unit * 1000 for s in got["on"]],
            lower_is_better=True,
        ),
    }


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Telemetry overhead — {report['date']}",
        "",
        "n repeats per side, off/on alternating; "
        f"{report['settings']['requests']} requests per throughput sample at concurrency "
        f"{report['settings']['concurrency']}. Overhead from the medians; spread from each "
        "repeat's adjacent off/on pair (median [min, max]).",
        "",
        "| case | n | unit | off (median) | on (median) | overhead | pairwise overhead |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    for r in report["results"]:
        spread = r["pair_overhead_pct"]
        lines.append(
            f"| {r['name']} | {len(r['samples']['off'])} | {r['unit']} "
            f"| {r['off_median']:.3f} | {r['on_median']:.3f} "
            f"| {r['overhead_pct']:+.1f}% | {spread['median']:+.1f}% "
            f"[{spread['min']:+.1f}, {spread['max']:+.1f}] |"
        )
    lines += [
        "",
        "Server CPU time per unit of work (request or backtest), from /proc of the server",
        "processes (API; API + worker for the backtest; 10 ms ticks summed over a sample):",
        "",
        "| case | off (ms CPU) | on (ms CPU) | overhead | pairwise overhead |",
        "|---|---:|---:|---:|---|",
    ]
    for r in report["results"]:
        cpu = r["server_cpu_ms_per_unit"]
        spread = cpu["pair_overhead_pct"]
        lines.append(
            f"| {r['name']} | {cpu['off_median']:.3f} | {cpu['on_median']:.3f} "
            f"| {cpu['overhead_pct']:+.1f}% | {spread['median']:+.1f}% "
            f"[{spread['min']:+.1f}, {spread['max']:+.1f}] |"
        )
    lines += [
        "",
        f"Spans received by the OTLP receiver: {report['spans_received']}.",
        "",
        "## Machine",
        "",
        *machine_lines(report["environment"]),
        f"- load average at start: {report['load_average_start']}",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backtest-repeats", type=int, default=15)
    parser.add_argument("--stored-operations", type=int, default=50)
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--note", default="", help="free text kept in the results")
    args = parser.parse_args()

    without_otlp_env()
    load_start = os.getloadavg()
    results = []
    with ReceiverProcess() as receiver:
        for name in args.cases:
            result = run_case(CASES[name], receiver.endpoint, args)
            results.append(result)
            cpu = result["server_cpu_ms_per_unit"]
            print(
                f"{name:18s} off {result['off_median']:10.3f}  on {result['on_median']:10.3f} "
                f"{result['unit']:10s} overhead {result['overhead_pct']:+.1f}%; server CPU "
                f"{cpu['off_median']:.2f} -> {cpu['on_median']:.2f} ms "
                f"({cpu['overhead_pct']:+.1f}%)",
                flush=True,
            )
        spans_received = receiver.close()

    stamp = timestamp()
    report: dict[str, Any] = {
        "benchmark": "telemetry overhead",
        "date": stamp,
        "settings": vars(args),
        "environment": environment(PACKAGES),
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "spans_received": spans_received,
        "results": results,
    }
    out = write_json("telemetry", stamp, report)
    md = RESULTS_DIR / f"telemetry-{stamp}.md"
    md.write_text(_markdown(report))
    print(f"spans received by the OTLP receiver: {spans_received}")
    print(f"results: {out.relative_to(REPO_ROOT)}, {md.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
