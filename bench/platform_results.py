"""bench_platform's result measurements: a large backtest through the platform against
the library call in the same run, the size of its record and report, and the listing
latency with many operations in the store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import secrets
import statistics
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from benchlib import free_port, summary_ms
from ktrdr.db.engine import make_engine, upgrade_schema
from ktrdr.db.tables import OperationRow
from ktrdr.engine.backtest import run_backtest
from ktrdr.engine.data import DataStore
from ktrdr.engine.strategy import load_strategy
from ktrdr.local_stack import LocalStack
from ktrdr.operations.summary import summarise_params, summarise_result

BACKTEST_SYMBOL, BACKTEST_TIMEFRAME, BACKTEST_STRATEGY = "BENCHX", "1m", "sma_crossover"
POSTGRES_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


def _wait(http: httpx.Client, op_id: str, poll_s: float, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        op: dict[str, Any] = http.get(f"/operations/{op_id}").json()
        if op["status"] not in ("pending", "running"):
            if op["status"] != "completed":
                raise RuntimeError(f"{op_id} ended {op['status']}: {op.get('error')}")
            return op
        time.sleep(poll_s)
    raise TimeoutError(f"{op_id} not completed after {timeout_s} s")


def _seconds(op: dict[str, Any], start: str, end: str) -> float:
    return (datetime.fromisoformat(op[end]) - datetime.fromisoformat(op[start])).total_seconds()


def measure_large_backtest(
    http: httpx.Client, data_home: Path, bars: int, runs: int, poll_s: float
) -> dict[str, Any]:
    """Submit -> completed of a ``bars``-bar backtest (client clock), runs interleaved with
    the library call on the same stored bars (load + run, and run alone)."""
    download = http.post(
        "/data/downloads/start",
        json={"symbol": BACKTEST_SYMBOL, "timeframe": BACKTEST_TIMEFRAME,
              "provider": "synthetic", "bars": bars, "seed": 5},
    ).json()  # fmt: skip
    _wait(http, download["id"], poll_s, 300)
    body = {"strategy": BACKTEST_STRATEGY, "symbol": BACKTEST_SYMBOL,
            "timeframe": BACKTEST_TIMEFRAME}  # fmt: skip
    strategy = load_strategy(BACKTEST_STRATEGY)
    strategy = strategy.model_copy(
        update={"data": strategy.data.model_copy(
            update={"symbol": BACKTEST_SYMBOL, "timeframe": BACKTEST_TIMEFRAME})}
    )  # fmt: skip
    store = DataStore(data_home / "data")

    def library() -> tuple[float, float, int]:
        started = time.perf_counter()
        loaded = store.load(BACKTEST_SYMBOL, BACKTEST_TIMEFRAME, None, None,
                            warmup_bars=strategy.warmup_bars())  # fmt: skip
        loaded_at = time.perf_counter()
        result = run_backtest(strategy, loaded)
        done = time.perf_counter()
        return done - started, done - loaded_at, len(result.trade_table)

    def platform() -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        op = _wait(http, http.post("/backtests/start", json=body).json()["id"], poll_s, 300)
        return time.perf_counter() - started, op

    library(), platform()  # warm-up: numba compiles in both processes, caches fill
    load_before = list(os.getloadavg())
    platform_s, library_s, run_s, records = [], [], [], []
    trades = 0
    for _ in range(runs):
        elapsed, op = platform()
        platform_s.append(elapsed)
        records.append(op)
        total, run_only, trades = library()
        library_s.append(total)
        run_s.append(run_only)
    last = records[-1]
    lib_run = statistics.median(run_s)
    median_platform = statistics.median(platform_s)
    return {
        "bars": bars,
        "trades": trades,
        "runs": runs,
        "platform_submit_to_completed": summary_ms(platform_s),
        "record_queue_wait": summary_ms([_seconds(o, "created_at", "started_at") for o in records]),
        "record_run": summary_ms([_seconds(o, "started_at", "completed_at") for o in records]),
        "library_load_and_run": summary_ms(library_s),
        "library_run_backtest": summary_ms(run_s),
        "ratio_to_library_run": median_platform / lib_run,
        "ratio_to_library_load_and_run": median_platform / statistics.median(library_s),
        "goal_s": 2 * lib_run + 0.1,
        "goal_met": median_platform <= 2 * lib_run + 0.1,
        # The machine is shared: the 1-minute load average before and after the runs.
        "load_average": [load_before[0], os.getloadavg()[0]],
        "record_bytes": len(json.dumps(last)),
        "report_result_bytes": len(json.dumps(last["result"])),
        "artifact_bytes": {
            part: ref["size_bytes"] for part, ref in last["result"]["artifacts"].items()
        },
        "table_route_ms": _table_routes(http, last["id"]),
    }


def _table_routes(http: httpx.Client, op_id: str) -> dict[str, float]:
    out = {}
    for table in ("trades", "equity"):
        for fmt in ("parquet", "csv", "json"):
            started = time.perf_counter()
            response = http.get(f"/operations/{op_id}/results/{table}", params={"format": fmt})
            response.raise_for_status()
            out[f"{table}.{fmt}"] = (time.perf_counter() - started) * 1000
    return out


def _fill(url: str, count: int) -> None:
    """``count`` completed backtests with realistic (heavy) parameters and results."""
    engine = make_engine(url)
    upgrade_schema(engine)
    params = {"strategy": "name: big\n" + "# strategy file line\n" * 2_000, "symbol": "EURUSD",
              "timeframe": "1h", "start": None, "end": None, "capital": 100_000.0}  # fmt: skip
    trades_ref = {"key": "k", "sha256": "0" * 64, "size_bytes": 1}
    stats = {"total_return_pct": 1.0, "sharpe_ratio": 0.5, "num_trades": 800}
    result = {"strategy_name": "big", "artifacts": {"trades": trades_ref}, "statistics": stats}
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        at = now - timedelta(seconds=count - i)
        rows.append({
            "id": f"op_backtesting_{at:%Y%m%d_%H%M%S}_{secrets.token_hex(4)}",
            "type": "backtesting", "status": "completed", "params": params,
            "params_hash": secrets.token_hex(8), "attempt": 1, "max_attempts": 3,
            "created_at": at, "queued_at": at, "pending_since": at, "started_at": at,
            "completed_at": at, "updated_at": at, "progress_percent": 100.0,
            "result": result, "params_summary": summarise_params(params),
            "result_summary": summarise_result(result), "worker_id": "w-1",
        })  # fmt: skip
    with engine.begin() as conn:
        conn.execute(OperationRow.__table__.insert(), rows)  # type: ignore[attr-defined]
    # What autovacuum does within a minute of a bulk load (SQLite: ANALYZE's statistics):
    # without it PostgreSQL's visibility map is empty, every index-only count(*) visits the
    # heap and the planner guesses one row, so the listing measures the load, not the store.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(
            text("VACUUM ANALYZE operations" if engine.dialect.name != "sqlite" else "ANALYZE")
        )
    engine.dispose()


@contextmanager
def _database(kind: str, data_home: Path):  # type: ignore[no-untyped-def]
    if kind == "sqlite":
        yield f"sqlite:///{data_home / 'listing.db'}"
        return
    import psycopg

    name = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure_listing(kind: str, data_home: Path, count: int, requests: int) -> dict[str, Any]:
    """GET /operations (a page of 50, newest first, with the total) on an API whose store
    holds ``count`` operations; and with a status + type filter."""
    home = data_home / f"listing-{kind}"
    home.mkdir()
    with _database(kind, home) as url:
        _fill(url, count)
        env = {"KTRDR_DATABASE_URL": url, "KTRDR_LOG_LEVEL": "WARNING"}
        stack = LocalStack(data_home=home, api_port=free_port(), worker_ports=[], extra_env=env)
        stack.start()
        try:
            with httpx.Client(base_url=f"{stack.api_url}/api/v1", timeout=30) as http:
                out: dict[str, Any] = {"database": kind, "operations": count}
                for name, query in (
                    ("page_of_50", {"limit": 50}),
                    ("filtered_page_of_50", {"limit": 50, "status": "completed",
                                             "type": "backtesting"}),
                ):  # fmt: skip
                    times, size = [], 0
                    for _ in range(requests + 5):
                        started = time.perf_counter()
                        response = http.get("/operations", params=query)
                        times.append(time.perf_counter() - started)
                        response.raise_for_status()
                        assert response.json()["count"] == count
                        size = len(response.content)
                    out[name] = {**summary_ms(times[5:]), "response_bytes": size}
                return out
        finally:
            stack.stop()


CELERY_REQUIREMENT = "celery[redis]==5.7.0"


def measure_celery(venv: Path, ops: int, warmup_ops: int, throughput_ops: int) -> dict[str, Any]:
    """The Celery + Redis reference (bench/celery_reference.py) in its own environment,
    created on first use: Celery is measured here, never a KTRDR dependency."""
    import subprocess
    import sys

    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", CELERY_REQUIREMENT], check=True)
    script = Path(__file__).with_name("celery_reference.py")
    out = subprocess.run(
        [str(python), str(script), "--ops", str(ops), "--warmup-ops", str(warmup_ops),
         "--throughput-ops", str(throughput_ops), "--workers", "2"],
        capture_output=True, text=True, check=True, timeout=900,
        env={"PATH": "/usr/bin:/bin", "BENCH_CELERY_QUEUE": f"ktrdr-bench-{secrets.token_hex(4)}"},
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result
