"""Telemetry overhead benchmark (run by hand, not part of the test suite).

    .venv/bin/python bench/bench_telemetry.py [--requests 2000] [--repeats 3]

Each case runs the same workload with telemetry off and on (instrumentation plus OTLP
export to a local in-process receiver, standing in for Jaeger), interleaved so machine
noise hits both sides alike, and reports the overhead in percent. Results go to
``bench/results/telemetry-<timestamp>.json`` with machine and package versions.

Cases today: throughput of a small instrumented FastAPI app (uvicorn subprocess), on a
plain route and on a route making an outbound httpx call. To add the API throughput or a
backtest's duration later, write a function ``(telemetry, otlp_endpoint, args) -> float``
returning "higher is better" (requests/s) or set ``lower_is_better`` for durations, and
register it in ``CASES``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
APP_SCRIPT = REPO_ROOT / "tests" / "telemetry" / "instrumented_app.py"
RESULTS_DIR = REPO_ROOT / "bench" / "results"
PACKAGES = (
    "ktrdr",
    "fastapi",
    "uvicorn",
    "httpx",
    "prometheus-client",
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-http",
    "opentelemetry-instrumentation-fastapi",
    "opentelemetry-instrumentation-httpx",
)


@dataclass(frozen=True)
class Case:
    name: str
    unit: str
    run: Callable[[bool, str, argparse.Namespace], float]
    lower_is_better: bool = False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        self.port = _free_port()
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


def _app_throughput(route: str) -> Callable[[bool, str, argparse.Namespace], float]:
    def run(telemetry: bool, otlp_endpoint: str, args: argparse.Namespace) -> float:
        with AppProcess(telemetry, otlp_endpoint) as app:
            warm_up = [f"{route}/warm-{i}" for i in range(200)]
            asyncio.run(_hammer(app.base_url, warm_up, args.concurrency))
            paths = [f"{route}/op-{i}" for i in range(args.requests)]
            return asyncio.run(_hammer(app.base_url, paths, args.concurrency))

    return run


CASES: dict[str, Case] = {
    "app_plain_route": Case("app_plain_route", "requests/s", _app_throughput("/api/v1/operations")),
    "app_outbound_call": Case("app_outbound_call", "requests/s", _app_throughput("/api/v1/chain")),
    # "api_throughput": Case(...)  -- once ktrdr.api exists: start `ktrdr api` the same way.
    # "backtest_duration": Case(..., unit="s", lower_is_better=True)
}


def _overhead_pct(case: Case, off: float, on: float) -> float:
    # Positive = telemetry costs something, for throughput and durations alike.
    return ((on - off) / off if case.lower_is_better else (off - on) / off) * 100.0


def _environment() -> dict[str, object]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "packages": versions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()

    results = []
    with ReceiverProcess() as receiver:
        for name in args.cases:
            case = CASES[name]
            samples: dict[str, list[float]] = {"off": [], "on": []}
            for _ in range(args.repeats):
                for mode in ("off", "on"):
                    samples[mode].append(case.run(mode == "on", receiver.endpoint, args))
            off, on = statistics.median(samples["off"]), statistics.median(samples["on"])
            overhead = _overhead_pct(case, off, on)
            results.append(
                {
                    **{k: v for k, v in asdict(case).items() if k != "run"},
                    "off_median": off,
                    "on_median": on,
                    "overhead_pct": overhead,
                    "samples": samples,
                }
            )
            print(
                f"{name:20s} off {off:10.1f}  on {on:10.1f} {case.unit}  overhead {overhead:+.1f}%"
            )
        spans_received = receiver.close()

    report = {
        "benchmark": "telemetry overhead",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": vars(args),
        "environment": _environment(),
        "spans_received": spans_received,
        "results": results,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"telemetry-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"spans received by the OTLP receiver: {spans_received}")
    print(f"results: {out.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
