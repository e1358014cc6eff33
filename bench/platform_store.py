"""bench_platform's artifact-store part: a backtest's data loading from the object store
(cold cache, warm cache) against the local data directory, in the same run.

The S3-compatible server is moto's standalone server on this machine (what the tests use;
no MinIO or cloud store is reachable here), so "cold" measures the store path (HEAD, GET,
checksum, cache admission) with a loopback network and an in-memory Python server, not a
real object store's bandwidth. What runs is the worker's own code: the runner's
``bars_for(ctx, ...).load(...)`` with the worker's RemoteArtifactStore.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx

from benchlib import free_port, summary_ms
from ktrdr.artifacts import artifact_store
from ktrdr.engine.data import DataStore, generate_synthetic_bars
from ktrdr.worker.job import JobContext
from ktrdr.worker.runners.stores import bars_for, publish_bars

SYMBOL, TIMEFRAME = "EURUSD", "1m"
_AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}


def _moto(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    assert exe, "moto_server not installed (dev dependency moto[server])"
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(endpoint, timeout=1)
            return proc, endpoint
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto_server did not start")


def _ctx(home: Path, url: str | None) -> JobContext:
    store = artifact_store(home, url)
    return cast(JobContext, SimpleNamespace(artifacts=store, data_home=str(home)))


def measure_data_loading(tmp: Path, bars: int, runs: int) -> dict[str, Any]:
    import os

    import boto3

    proc, endpoint = _moto(tmp / "moto.log")
    os.environ.update({**_AWS, "AWS_ENDPOINT_URL": endpoint})
    try:
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
            Bucket=bucket
        )
        url = f"s3://{bucket}/artifacts"
        frame = generate_synthetic_bars(TIMEFRAME, bars, seed=1)
        local = DataStore(tmp / "local-data")
        local.save(SYMBOL, TIMEFRAME, frame, source="synthetic")
        writer = _ctx(tmp / "writer", url)
        bars_for(writer, SYMBOL, TIMEFRAME).save(SYMBOL, TIMEFRAME, frame, source="synthetic")
        started = time.perf_counter()
        publish_bars(writer, SYMBOL, TIMEFRAME)
        upload_s = time.perf_counter() - started
        size = local.path(SYMBOL, TIMEFRAME).stat().st_size

        timings: dict[str, list[float]] = {"local": [], "cold": [], "warm": []}
        for run in range(runs):
            reader = _ctx(tmp / f"reader-{run}", url)  # an empty cache: a new pod
            t0 = time.perf_counter()
            cold = bars_for(reader, SYMBOL, TIMEFRAME).load(SYMBOL, TIMEFRAME)
            timings["cold"].append(time.perf_counter() - t0)
            # Local and warm in alternating order: neither always pays for the other.
            for source in ("local", "warm") if run % 2 else ("warm", "local"):
                t0 = time.perf_counter()
                if source == "local":
                    loaded = local.load(SYMBOL, TIMEFRAME)
                else:
                    loaded = bars_for(reader, SYMBOL, TIMEFRAME).load(SYMBOL, TIMEFRAME)
                timings[source].append(time.perf_counter() - t0)
                assert loaded.equals(cold)
        local_median = summary_ms(timings["local"])["median_ms"]
        return {
            "bars": bars,
            "parquet_bytes": size,
            "runs": runs,
            "upload_s": upload_s,
            "store": "moto_server (in-memory, loopback)",
            **{k: summary_ms(v) for k, v in timings.items()},
            "cold_over_local": summary_ms(timings["cold"])["median_ms"] / local_median,
            "warm_over_local": summary_ms(timings["warm"])["median_ms"] / local_median,
        }
    finally:
        proc.kill()
        proc.wait(5)


def store_markdown(report: dict[str, Any]) -> list[str]:
    s = report.get("data_loading")
    if not s:
        return []
    rows = [
        ("local data directory (DataStore.load)", s["local"]),
        ("object store, cold cache (new pod)", s["cold"]),
        ("object store, warm cache (same pod again)", s["warm"]),
    ]
    return [
        f"## Data loading: {s['bars']:,} bars ({s['parquet_bytes'] / 1e6:.1f} MB Parquet), "
        f"{s['runs']} runs",
        "",
        "A backtest's data-loading step through the worker's code (`bars_for(...).load`);",
        f"store: {s['store']}. Upload once: {s['upload_s'] * 1000:.0f} ms.",
        "",
        "| source | median (ms) | min (ms) | max (ms) |",
        "|---|---:|---:|---:|",
        *(
            f"| {n} | {v['median_ms']:.1f} | {v['min_ms']:.1f} | {v['max_ms']:.1f} |"
            for n, v in rows
        ),
        "",
        f"- cold / local: **{s['cold_over_local']:.2f}×**; warm / local: "
        f"**{s['warm_over_local']:.2f}×** (a warm read is one HEAD request plus the local read)",
        "",
    ]
