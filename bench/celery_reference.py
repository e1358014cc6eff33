"""Celery + Redis reference for bench_platform: the same zero-work round trip and burst.

Runs in the benchmark's own environment (Celery is not a KTRDR dependency), e.g.

    /work/benchenv-lean/bin/python bench/celery_reference.py --ops 200 --throughput-ops 500

Starts ``--workers`` Celery worker processes (prefork pool, ``--concurrency 1`` each: one
task at a time per worker, like KTRDR's workers) on a queue of its own in the Redis at
``--redis`` (broker and result backend), then measures a no-op task: client-observed
submit -> result (``AsyncResult.get``) one after another, and a burst submitted at once
until every result is in. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from celery import Celery

QUEUE = os.environ.get("BENCH_CELERY_QUEUE", "ktrdr-bench")
REDIS = os.environ.get("BENCH_CELERY_REDIS", "redis://127.0.0.1:6379/0")
app = Celery("celery_reference", broker=REDIS, backend=REDIS)
app.conf.update(
    task_default_queue=QUEUE,
    worker_prefetch_multiplier=1,
    task_acks_late=False,
    result_expires=600,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop")
def noop() -> int:
    return 0


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[min(len(ordered) - 1, int(0.95 * (len(ordered) - 1) + 0.5))] * 1000,
        "min_ms": ordered[0] * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--warmup-ops", type=int, default=20)
    parser.add_argument("--throughput-ops", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    args = parser.parse_args()

    here = Path(__file__).resolve().parent
    env = {**os.environ, "BENCH_CELERY_QUEUE": QUEUE, "BENCH_CELERY_REDIS": REDIS,
           "PYTHONPATH": str(here)}  # fmt: skip

    def command(i: int) -> list[str]:
        return [
            sys.executable, "-m", "celery", "-A", "celery_reference", "worker", "-Q", QUEUE,
            "--pool", "prefork", "--concurrency", "1", "-n", f"bench{i}-{QUEUE}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING",
        ]  # fmt: skip

    quiet = subprocess.DEVNULL
    workers = [
        subprocess.Popen(command(i), env=env, cwd=here, stdout=quiet, stderr=quiet)
        for i in range(args.workers)
    ]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            replies = app.control.ping(timeout=0.5) or []
            if sum(1 for r in replies for name in r if QUEUE in name) >= args.workers:
                break
        else:
            raise TimeoutError("celery workers did not come up")
        for _ in range(args.warmup_ops):
            noop.delay().get(timeout=30)
        samples = []
        for _ in range(args.ops):
            started = time.perf_counter()
            noop.delay().get(timeout=30)
            samples.append(time.perf_counter() - started)
        started = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            pending = list(pool.map(lambda _: noop.delay(), range(args.throughput_ops)))
        submitted_s = time.perf_counter() - started
        for result in pending:
            result.get(timeout=120)
        elapsed_s = time.perf_counter() - started
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
    import celery
    import redis

    print(json.dumps({
        "celery": celery.__version__, "redis_py": redis.__version__,
        "workers": args.workers, "latency_client_observed": _ms(samples), "operations": args.ops,
        "throughput": {"operations": args.throughput_ops, "submit_s": submitted_s,
                       "elapsed_s": elapsed_s, "ops_per_s": args.throughput_ops / elapsed_s},
    }))  # fmt: skip


if __name__ == "__main__":
    main()
