"""Issues 5, 10 and 18: the dashboards and rules against REAL processes and a REAL Prometheus.

The local stack (API + 2 workers as processes) runs a workload of downloads, a training
run, backtests (succeeding and failing), a failing and a cancelled diagnostic and a few
4xx; then both workers are made busy with a third operation queued behind them, one
worker is killed (lost, its operation re-queued), everything left is cancelled and the
other worker leaves cleanly. A real Prometheus, configured from
``deploy/prometheus/prometheus.local.yml`` (workers found through the API's HTTP service
discovery, the real rule files), scrapes it every second. Then every dashboard
expression, template variable and rule expression goes through Prometheus's HTTP API:
any error fails the test, so does an empty panel the workload must fill.

Counter panels must read EXACTLY what the workload did. They are evaluated at the
timestamp of the API's last scrape over a window reaching back before the workload:
every series the panels count exists at 0 from its first scrape (so increase() needs no
extrapolation at the start), and nothing is extrapolated past the last sample at the
end. A series born at 1 would make these panels read one less per series.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from ktrdr.dashboards.constants import API_JOB, WORKERS_JOB
from ktrdr.dashboards.queries import (
    PanelQuery,
    all_panel_queries,
    all_variable_queries,
    substitute,
    workload_panel_queries,
)
from ktrdr.local_stack import LocalStack
from tests.deploy.conftest import PROMETHEUS_DIR, RULE_FILES, load_yaml
from tests.deploy.training_panels import check_training_panels
from tests.support.stack import Api, StackFactory, free_port, wait_for

pytestmark = [pytest.mark.prometheus, pytest.mark.integration]

LOCAL_CONFIG = PROMETHEUS_DIR / "prometheus.local.yml"
LOCAL_API_ADDRESS = "localhost:8000"  # what prometheus.local.yml scrapes; replaced below

# Grafana's variables for a window that covers the whole test; 1 s scrapes make a 15 s
# rate window hold ~15 samples (Grafana would pick 4 x scrape interval or more).
VARIABLES = {"__range": "5m", "__rate_interval": "15s", "__interval": "1s"}

SUCCESSFUL_STRATEGIES = ("sma_crossover", "rsi_fuzzy", "macd_adx_long_short")
DOWNLOAD_BARS = 3000
DEFAULT_WORKER_KINDS = ("backtesting", "data_download", "diagnostic")
SWEEP_STRATEGY = """
name: sma_sweep
data: {symbol: EURUSD, timeframe: 1h}
indicators:
  - {id: fast, type: sma, params: {period: 10}}
  - {id: slow, type: sma, params: {period: 30}}
decisions:
  signals:
    - crossover: {fast: fast, slow: slow}
search:
  parameters:
    indicators.fast.params.period: {values: [5, 10]}
    indicators.slow.params.period: {values: [20, 40]}
"""
SWEEP_COMBINATIONS = 4
SWEEP_CHUNKS = 2

# Panels that are not required by workload_panel_queries() (downloads, training, the lost
# worker) but that this test's workload does fill: they must show data too.
ALSO_FILLED_HERE = {
    "Errors by status code",
    "Data rows downloaded per worker",
    "Data downloads (window)",
    "Training runs (window)",
    "Training epochs per worker",
    "Re-queued operations (window)",
    "Epoch duration P50 / P95",
    "Checkpoint write / read P95",
}

# Instant panels about the workers' state now: empty at the end (the workload ends with
# no worker left), so they must show data over the window instead.
GONE_AT_THE_END = {"Current busy / idle"}

# Recording rules the workload fills (no 5xx happen, so the 5xx rate and ratio stay empty).
RULES_FILLED_HERE = {
    "job:http_server_requests:rate5m",
    "job:http_server_duration_milliseconds:p50_5m",
    "job:http_server_duration_milliseconds:p95_5m",
    "job:http_server_duration_milliseconds:p99_5m",
    "type:ktrdr_operations_finished:increase1h",
    "type:ktrdr_operations_failed:ratio_1h",
    "type:ktrdr_operation_duration_seconds:p50_1h",
    "type:ktrdr_operation_duration_seconds:p95_1h",
    "type:ktrdr_operation_duration_seconds:p95_1d",
    "type:ktrdr_operation_queue_wait_seconds:p95_1h",
}


def prometheus_binary() -> str | None:
    found = shutil.which("prometheus")
    if found:
        return found
    return "/usr/bin/prometheus" if Path("/usr/bin/prometheus").is_file() else None


class PrometheusError(AssertionError):
    pass


@dataclass
class Prometheus:
    """A client for a running Prometheus's HTTP API; errors raise PrometheusError."""

    url: str
    http: httpx.Client

    def api(self, path: str, **params: Any) -> Any:
        response = self.http.get(f"/api/v1/{path}", params=params)
        try:
            body = response.json()
        except ValueError:  # e.g. a plain "Service Unavailable" while it is still starting
            raise PrometheusError(
                f"{path} {params}: HTTP {response.status_code} {response.text[:200]!r}"
            ) from None
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(
                f"{path} {params}: HTTP {response.status_code} "
                f"{body.get('errorType')}: {body.get('error')}"
            )
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("query", **params)
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else []
        if data["resultType"] == "scalar":
            result = [{"metric": {}, "value": data["result"]}]
        return result

    def query_range(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        data = self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step="1")
        result: list[dict[str, Any]] = data["result"]
        return result

    def values(self, expr: str) -> dict[frozenset[tuple[str, str]], float]:
        return {frozenset(s["metric"].items()): float(s["value"][1]) for s in self.query(expr)}

    def scalar(self, expr: str, at: float | None = None) -> float | None:
        result = self.query(expr, at)
        assert len(result) <= 1, f"{expr} returned {len(result)} series"
        return float(result[0]["value"][1]) if result else None


def finite_values(expr_result: list[dict[str, Any]]) -> list[float]:
    samples = [s["value"] for s in expr_result if "value" in s]
    samples += [v for s in expr_result for v in s.get("values", [])]
    return [float(v) for _, v in samples if math.isfinite(float(v))]


def write_config(tmp_path: Path, api_address: str) -> Path:
    """prometheus.local.yml pointed at the test's API, scraping and evaluating every 1 s."""
    config = load_yaml(LOCAL_CONFIG)
    config["global"].update(
        {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    )
    # Rule files are relative to the config file: make them absolute for the copy.
    config["rule_files"] = [str(PROMETHEUS_DIR / pattern) for pattern in config["rule_files"]]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {API_JOB, WORKERS_JOB}
    [static] = jobs[API_JOB]["static_configs"]
    assert static["targets"] == [LOCAL_API_ADDRESS]
    static["targets"] = [api_address]
    [sd] = jobs[WORKERS_JOB]["http_sd_configs"]
    assert sd["url"] == f"http://{LOCAL_API_ADDRESS}/api/v1/sd/workers"
    sd["url"] = f"http://{api_address}/api/v1/sd/workers"
    sd["refresh_interval"] = "1s"
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Callable[[str], Prometheus]]:
    """Starts a real Prometheus scraping the API at the given address; stops it after."""
    binary = prometheus_binary()
    if binary is None:
        pytest.skip(
            "prometheus not found on PATH nor at /usr/bin/prometheus: install Debian's "
            "`prometheus` package (CI does)"
        )
    started: list[tuple[subprocess.Popen[bytes], Prometheus]] = []

    def start(api_address: str) -> Prometheus:
        config = write_config(tmp_path, api_address)
        port = free_port()
        log_path = tmp_path / "prometheus.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--enable-feature=exemplar-storage",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        prom = Prometheus(
            f"http://127.0.0.1:{port}",
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10),
        )
        started.append((process, prom))

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"prometheus exited:\n{log_path.read_text()[-3000:]}")
            try:
                return prom.http.get("/-/ready").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 20, "prometheus to be ready", interval_s=0.1)
        return prom

    yield start
    for process, prom in started:
        prom.http.close()
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@dataclass
class Workload:
    start: float
    trace_ids: set[str]
    backtests_completed: int
    # (worker_id, type) -> operations dispatched to it, from the operations' own records.
    dispatched: dict[tuple[str, str], int]
    victim_id: str
    victim_instance: str
    training_result: dict[str, Any]
    epoch_seconds: list[float]  # the training run's epochs, from its learning curve


def run_workload(api: Api, prom: Prometheus, stack: LocalStack) -> Workload:
    started = time.time()
    trace_ids: set[str] = set()
    dispatched: dict[tuple[str, str], int] = {}

    def start(path: str, body: dict[str, Any]) -> str:
        response = api.http.post(path, json=body)
        assert response.status_code == 202, f"{path} {body}: {response.text}"
        return str(response.json()["id"])

    def finish(op_id: str, status: str, timeout_s: float = 30) -> dict[str, Any]:
        op = api.wait_status(op_id, {"completed", "failed", "cancelled"}, timeout_s)
        assert op["status"] == status, f"{op_id}: expected {status}, got {op}"
        assert op["trace_id"], op
        assert op["attempt"] == 1, op
        trace_ids.add(op["trace_id"])
        key = (op["worker_id"], op["type"])
        dispatched[key] = dispatched.get(key, 0) + 1
        return op

    def not_found() -> None:
        response = api.http.get("/operations/no-such-operation")
        assert response.status_code == 404, response.text

    # A 4xx first: its counter series exists at 0 already, so even the first one counts.
    not_found()

    # Data: one symbol to backtest, one whose file disappears so its backtest fails.
    downloads = [
        start(
            "/data/downloads/start",
            {
                "symbol": s,
                "timeframe": "1h",
                "provider": "synthetic",
                "bars": DOWNLOAD_BARS,
                "seed": 1,
            },
        )
        for s in ("EURUSD", "GBPUSD")
    ]
    for op_id in downloads:
        finish(op_id, "completed")
    (stack.data_home / "data" / "GBPUSD" / "1h.parquet").unlink()

    # One short training run of the model-driven example, checkpointed every epoch.
    training = start(
        "/training/start",
        {"strategy": "fuzzy_nn", "symbol": "EURUSD", "epochs": 2, "checkpoint_every": 1},
    )
    trained = finish(training, "completed", timeout_s=90)
    curve = api.http.get(f"/operations/{training}/curve").json()
    epoch_seconds = [p["duration_s"] for p in curve["points"] if not p["restored"]]

    # Successful backtests one per wave, each wave scraped (API and workers) before the
    # next. Histograms with labels appear at their first observation, so rate() needs a
    # later observation on the same series: with 3 waves over 2 workers some worker runs
    # backtests in two waves, and the API's histograms see several waves.
    for done, strategy in enumerate(SUCCESSFUL_STRATEGIES, start=1):
        op_id = start(
            "/backtests/start", {"strategy": strategy, "symbol": "EURUSD", "timeframe": "1h"}
        )
        finish(op_id, "completed")
        wait_for_value(
            prom,
            f'ktrdr_operations_finished_total{{job="{API_JOB}", type="backtesting", '
            'status="completed"}',
            done,
        )
        wait_for_value(
            prom,
            f'sum(ktrdr_job_phase_duration_seconds_count{{job="{WORKERS_JOB}", '
            'type="backtesting", phase="results"})',
            done,
        )

    # A small sweep: two chunks of two combinations, on both workers.
    sweep = start("/sweeps/start", {"strategy": SWEEP_STRATEGY, "chunk_size": 2})
    # The sweep itself is driven by the backend (never dispatched); its chunks are.
    assert api.wait_status(sweep, {"completed", "failed", "cancelled"}, 60)["status"] == "completed"
    chunks = api.http.get("/operations", params={"parent_id": sweep}).json()["data"]
    assert len(chunks) == SWEEP_CHUNKS
    assert {c["status"] for c in chunks} == {"completed"}
    wait_for_value(
        prom,
        f'ktrdr_campaign_combinations_evaluated_total{{job="{API_JOB}", type="sweep"}}',
        SWEEP_COMBINATIONS,
    )
    wait_for_value(prom, f'ktrdr_sweeps_completed_total{{job="{API_JOB}"}}', 1)
    wait_for_value(
        prom,
        f'ktrdr_campaign_chunk_duration_seconds_count{{job="{API_JOB}", type="sweep"}}',
        SWEEP_CHUNKS,
    )

    # Failures: a backtest whose data file is gone, a diagnostic failing on purpose.
    failing_backtest = start("/backtests/start", {"strategy": "sma_crossover", "symbol": "GBPUSD"})
    failing_diagnostic = start("/diagnostics/start", {"steps": 2, "step_ms": 10, "fail_at_step": 1})
    failed = finish(failing_backtest, "failed")
    finish(failing_diagnostic, "failed")
    # Issue 18.6: the user sees what is missing, not the worker's directories.
    assert "GBPUSD" in failed["error"] and str(stack.data_home) not in failed["error"], failed

    # A cancel while running; the worker stops at its next checkpoint and is free again.
    long_running = start("/diagnostics/start", {"steps": 200, "step_ms": 100})
    api.wait_status(long_running, {"running"}, 15)
    cancel = api.http.post(f"/operations/{long_running}/cancel")
    assert cancel.status_code == 200, cancel.text
    finish(long_running, "cancelled")
    wait_for(
        lambda: all(w["current_operation_id"] is None for w in api.workers()),
        10,
        "the cancelled operation's worker to be free",
    )

    # More 4xx: the same 404 again and a 422.
    not_found()
    bad = api.http.post(
        "/backtests/start", json={"strategy": "no_such_strategy", "symbol": "EURUSD"}
    )
    assert bad.status_code == 422, bad.text

    # Every worker busy and one operation queued behind them: "Available workers" must
    # read 0 (not "no data") and the oldest queued operation's age must grow.
    busy = [start("/diagnostics/start", {"steps": 600, "step_ms": 100}) for _ in range(2)]
    running = [api.wait_status(op_id, {"running"}, 15) for op_id in busy]
    for op in running:
        dispatched[(op["worker_id"], "diagnostic")] = (
            dispatched.get((op["worker_id"], "diagnostic"), 0) + 1
        )
    stuck = start("/diagnostics/start", {"steps": 1, "step_ms": 1})
    available = substitute(_panel("Available workers").expr, VARIABLES)
    oldest = f'ktrdr_operations_oldest_queued_age_seconds{{job="{API_JOB}", type="diagnostic"}}'
    wait_for(
        lambda: prom.scalar(available) == 0 and (prom.scalar(oldest) or 0) >= 1,
        15,
        "Available workers == 0 with an operation queued for a second",
        interval_s=0.2,
    )
    assert prom.scalar(substitute(_panel("Busy workers").expr, VARIABLES)) == 2

    # A worker killed while running: lost, its operation re-queued (and waiting).
    victim = next(w for w in stack.workers if w.url == _worker_url(api, running[0]["worker_id"]))
    victim.kill()
    requeued = api.wait_status(running[0]["id"], {"pending"}, 30)
    assert requeued["attempt"] == 1, requeued
    # Cancel what waits first, so the surviving worker is not given it when it frees up.
    for op_id in (stuck, running[0]["id"], running[1]["id"]):
        response = api.http.post(f"/operations/{op_id}/cancel")
        assert response.status_code == 200, response.text
    for op_id in (stuck, running[0]["id"], running[1]["id"]):
        api.wait_status(op_id, {"cancelled"}, 15)

    # The other worker leaves cleanly: no worker of any kind is left, every kind reads 0.
    survivor = next(w for w in stack.workers if w is not victim)
    assert survivor.stop() is not None
    return Workload(
        started,
        trace_ids,
        len(SUCCESSFUL_STRATEGIES),
        dispatched,
        running[0]["worker_id"],
        victim.url.removeprefix("http://"),
        trained["result"],
        epoch_seconds,
    )


def _worker_url(api: Api, worker_id: str) -> str:
    [url] = [w["url"] for w in api.workers() if w["id"] == worker_id]
    return str(url)


def wait_for_value(prom: Prometheus, expr: str, value: float) -> None:
    wait_for(lambda: prom.scalar(expr) == value, 20, f"{expr} == {value}", interval_s=0.2)


FINISHED_BY_THE_WORKLOAD = {
    ("backtesting", "completed"): len(SUCCESSFUL_STRATEGIES),
    ("backtesting", "failed"): 1,
    ("diagnostic", "failed"): 1,
    # the cancelled one, the two that kept the workers busy, the one queued behind them
    ("diagnostic", "cancelled"): 4,
    ("data_download", "completed"): 2,
    ("training", "completed"): 1,
    ("sweep", "completed"): 1,
    ("sweep_chunk", "completed"): SWEEP_CHUNKS,
}


def wait_for_final_scrape(prom: Prometheus) -> float:
    """Wait until Prometheus has scraped the API after the workload; return that scrape's
    timestamp (the time every exact check is evaluated at)."""

    def seen() -> bool:
        got = {
            (dict(k)["type"], dict(k)["status"]): v
            for k, v in prom.values(f'ktrdr_operations_finished_total{{job="{API_JOB}"}}').items()
        }
        return all(got.get(key) == value for key, value in FINISHED_BY_THE_WORKLOAD.items())

    wait_for(seen, 20, "prometheus to scrape the final operation counters", interval_s=0.2)
    # Then one more successful scrape of the API, so the last HTTP responses are in too.
    # (A failed scrape has an `up` sample too, but no other sample at its timestamp.)
    after = time.time()
    # timestamp() of a plain selector is the sample's own time (of anything else, the
    # evaluation time): filter with `and`, not inside timestamp().
    api_up = f'up{{job="{API_JOB}"}}'
    last_good = f"timestamp({api_up}) and {api_up} == 1"
    at: float = wait_for(
        lambda: (t := prom.scalar(last_good)) is not None and t > after and t,
        10,
        "a scrape of the API after the workload",
        interval_s=0.2,
    )
    return at


def check_panels(prom: Prometheus, window: tuple[float, float]) -> list[str]:
    start, end = window
    required = {(q.dashboard_uid, q.panel_title, q.ref_id) for q in workload_panel_queries()}
    problems: list[str] = []
    for q in all_panel_queries():
        expr = substitute(q.expr, VARIABLES)
        where = f"{q.dashboard_uid} / {q.panel_title} [{q.ref_id}]: {expr}"
        try:
            instant = q.instant and q.panel_title not in GONE_AT_THE_END
            result = prom.query(expr, at=end) if instant else prom.query_range(expr, start, end)
        except PrometheusError as exc:
            problems.append(f"{where} -> {exc}")
            continue
        must = (q.dashboard_uid, q.panel_title, q.ref_id) in required or (
            q.panel_title in ALSO_FILLED_HERE
        )
        if must and not finite_values(result):
            problems.append(f"{where} -> no data ({len(result)} series, none with a number)")
    return problems


def _panel(title: str) -> PanelQuery:
    return _target(title, "A")


def _target(title: str, ref_id: str) -> PanelQuery:
    [q] = [q for q in all_panel_queries() if q.panel_title == title and q.ref_id == ref_id]
    return q


def panel_values(
    prom: Prometheus, title: str, at: float, variables: dict[str, str], *labels: str
) -> dict[tuple[str, ...], float]:
    """An instant panel's series at ``at``, keyed by ``labels``, zeros left out."""
    result = prom.query(substitute(_panel(title).expr, variables), at=at)
    values = {tuple(s["metric"].get(k, "") for k in labels): float(s["value"][1]) for s in result}
    return {k: v for k, v in values.items() if v != 0}


def exactly(value: float | None) -> float | None:
    """Counter panels at the API's scrape time are whole numbers up to float rounding."""
    if value is None:
        return None
    assert value == pytest.approx(round(value), abs=1e-9), f"{value} is not a whole number"
    return float(round(value))


@pytest.mark.timeout(300)
def test_dashboards_and_rules_against_live_prometheus(
    stack_factory: StackFactory, start_prometheus: Callable[[str], Prometheus]
) -> None:
    # A heartbeat timeout well above the fast 2 s: on a loaded machine a training run can
    # starve a worker's reporter thread that long, and only the kill may lose a worker.
    stack, api = stack_factory.start(workers=2, env={"KTRDR_HEARTBEAT_TIMEOUT_S": "8"})
    prom = start_prometheus(f"127.0.0.1:{stack.api_port}")
    worker_instances = {f"127.0.0.1:{port}" for port in stack.worker_ports}

    # Every worker is discovered through the API and scraped successfully.
    def targets_up() -> bool:
        active = prom.api("targets", state="active")["activeTargets"]
        up = {
            t["labels"]["instance"]
            for t in active
            if t["labels"]["job"] == WORKERS_JOB and t["health"] == "up"
        }
        api_up = any(t["labels"]["job"] == API_JOB and t["health"] == "up" for t in active)
        return api_up and up == worker_instances

    wait_for(targets_up, 20, f"api and workers {sorted(worker_instances)} up", interval_s=0.2)
    registered = prom.values(f'ktrdr_workers_registered{{job="{API_JOB}"}}')
    assert {dict(k)["kind"]: v for k, v in registered.items()} == dict.fromkeys(
        (*DEFAULT_WORKER_KINDS, "training"), 2.0
    )

    workload = run_workload(api, prom, stack)
    end = wait_for_final_scrape(prom)
    # Range queries step 1 s from the start: a whole number of steps puts the last
    # evaluation exactly at `end`, the API's last scrape.
    seconds = math.ceil(end - workload.start + 5)
    window = (end - seconds, end)
    exact_vars = {**VARIABLES, "__range": f"{seconds}s", "__rate_interval": f"{seconds}s"}

    # 1. Every panel expression runs; the ones the workload fills have data.
    problems = check_panels(prom, window)
    assert not problems, "dashboard queries failing or empty:\n" + "\n".join(problems)

    # 2. Every template variable finds values.
    for var in all_variable_queries():
        selector = substitute(var.selector, VARIABLES)
        series = prom.api("series", **{"match[]": selector, "start": f"{window[0]:.3f}"})
        values = {s.get(var.label_name) for s in series} - {None}
        assert values, (
            f"{var.dashboard_uid} variable ${var.name}: no {var.label_name} in {selector}"
        )

    # 3. Every rule expression runs; Prometheus's own evaluation of them has no error.
    rules = [rule for path in RULE_FILES for g in load_yaml(path)["groups"] for rule in g["rules"]]
    for rule in rules:
        name = rule.get("record") or rule.get("alert")
        result = prom.query(rule["expr"], at=end)
        if name in RULES_FILLED_HERE:
            assert finite_values(result), f"rule {name} is empty: {rule['expr']}"
    evaluated = {r["name"]: r for g in prom.api("rules")["groups"] for r in g["rules"]}
    assert set(evaluated) == {r.get("record") or r.get("alert") for r in rules}
    for name, r in evaluated.items():
        assert r["health"] == "ok", f"rule {name}: {r['health']} {r.get('lastError')}"

    # 4. Counter panels: exactly what the workload did (issue 10.1, 18.4).
    def stat(title: str) -> float | None:
        return exactly(prom.scalar(substitute(_panel(title).expr, exact_vars), at=end))

    n = workload.backtests_completed
    finished = panel_values(
        prom, "Finished in window by type and status", end, exact_vars, "type", "status"
    )
    assert {k: exactly(v) for k, v in finished.items()} == FINISHED_BY_THE_WORKLOAD
    assert stat("Backtests completed (window)") == n
    success = prom.scalar(substitute(_panel("Success rate (window)").expr, exact_vars), at=end)
    completed = sum(v for (_, s), v in FINISHED_BY_THE_WORKLOAD.items() if s == "completed")
    failed = sum(v for (_, s), v in FINISHED_BY_THE_WORKLOAD.items() if s == "failed")
    assert success == pytest.approx(completed / (completed + failed), rel=1e-9)
    per_worker = panel_values(
        prom, "Operations per worker (window)", end, exact_vars, "worker_id", "type"
    )
    assert {k: exactly(v) for k, v in per_worker.items()} == workload.dispatched
    assert stat("Workers lost (window)") == 1
    requeued = panel_values(prom, "Re-queued operations (window)", end, exact_vars, "type")
    assert {k: exactly(v) for k, v in requeued.items()} == {("diagnostic",): 1}
    training = panel_values(prom, "Training runs (window)", end, exact_vars, "status")
    assert {k: exactly(v) for k, v in training.items()} == {("completed",): 1}
    downloads = panel_values(prom, "Data downloads (window)", end, exact_vars, "status")
    assert {k: exactly(v) for k, v in downloads.items()} == {("completed",): 2}
    runs = panel_values(
        prom,
        "Runs in window by strategy and outcome",
        end,
        exact_vars,
        "type",
        "strategy",
        "status",
    )
    assert {k: exactly(v) for k, v in runs.items()} == {
        ("backtesting", "sma_crossover", "completed"): 1,
        ("backtesting", "rsi_fuzzy", "completed"): 1,
        ("backtesting", "macd_adx_long_short", "completed"): 1,
        ("backtesting", "sma_crossover", "failed"): 1,
        ("training", "fuzzy_nn", "completed"): 1,
    }
    # HTTP errors: a rate over the whole window times its length is the count. Two 404s
    # and a 422 on the API; no 5xx anywhere, and that panel reads 0, not "no data".
    by_code = panel_values(prom, "Errors by status code", end, exact_vars, "job", "status_code")
    assert {k: exactly(v * seconds) for k, v in by_code.items()} == {
        (API_JOB, "404"): 2,
        (API_JOB, "422"): 1,
    }
    four_xx = prom.scalar(substitute(_panel("4xx error rate").expr, exact_vars), at=end)
    assert exactly((four_xx or 0) * seconds) == 3
    assert prom.scalar(substitute(_panel("5xx error rate").expr, exact_vars), at=end) == 0
    # Nothing left: every panel about workers reads 0 (not "no data"), every kind's
    # registered line dropped to 0 instead of stopping.
    for title in ("Registered workers", "Available workers", "Busy workers"):
        assert prom.scalar(substitute(_panel(title).expr, exact_vars), at=end) == 0, title
    registered = prom.values(f'ktrdr_workers_registered{{job="{API_JOB}"}}')
    assert {dict(k)["kind"]: v for k, v in registered.items()} == dict.fromkeys(
        (*DEFAULT_WORKER_KINDS, "training"), 0.0
    )
    oldest = prom.query_range(
        f'ktrdr_operations_oldest_queued_age_seconds{{job="{API_JOB}", type="diagnostic"}}',
        *window,
    )
    ages = finite_values(oldest)
    assert max(ages) >= 1 and ages[-1] == 0, "the stuck operation's age grew, then reset"
    bars = prom.scalar(f'sum(ktrdr_backtest_bars_simulated_total{{job="{WORKERS_JOB}"}})')
    assert bars is None or bars >= n * 1000, bars  # the survivor's series ended with it
    rows = prom.query(
        f'sum by (provider) (max_over_time(ktrdr_data_rows_downloaded_total{{job="{WORKERS_JOB}"}}'
        f"[{seconds}s]))",
        at=end,
    )
    assert {s["metric"]["provider"]: float(s["value"][1]) for s in rows} == {
        "synthetic": 2 * DOWNLOAD_BARS,
        "csv": 0,
        "yahoo": 0,
    }
    # Training checkpoints, resumes and epoch times, against the run's own record.
    check_training_panels(
        lambda title, ref: prom.query(substitute(_target(title, ref).expr, exact_vars), at=end),
        workload.training_result,
        workload.epoch_seconds,
    )
    # Histograms with labels: the series the waves guarantee must have numbers.
    for title, label, wanted in (
        ("Operation duration P50 / P95 by type", "type", {"backtesting"}),
        ("Queue wait P50 / P95 by type", "type", {"backtesting"}),
        (
            "Job phase duration P95 (workers)",
            "phase",
            {"data_loading", "strategy_init", "simulation", "results"},
        ),
    ):
        result = prom.query_range(substitute(_panel(title).expr, VARIABLES), *window)
        with_numbers = {s["metric"].get(label) for s in result if finite_values([s])}
        assert wanted <= with_numbers, f"{title}: only {with_numbers} have numbers"

    # 5. Exemplars on the operation duration carry the operations' trace ids.
    exemplars = prom.api(
        "query_exemplars",
        query=f'ktrdr_operation_duration_seconds_bucket{{job="{API_JOB}"}}',
        start=f"{window[0]:.3f}",
        end=f"{time.time():.3f}",
    )
    exemplar_trace_ids = {
        e["labels"].get("trace_id") for group in exemplars for e in group["exemplars"]
    }
    assert exemplar_trace_ids, f"no exemplars stored: {exemplars}"
    assert exemplar_trace_ids - workload.trace_ids <= {
        op["trace_id"] for op in api.http.get("/operations", params={"limit": 100}).json()["data"]
    }

    # 6. The killed worker: still a target (SD lists lost workers), `up` 0, state "lost"
    # as a metric, and ONE `up` series for its whole life (issue 18.3).
    up = f'up{{job="{WORKERS_JOB}", instance="{workload.victim_instance}"}}'
    assert set(prom.values(up).values()) == {0.0}
    history = prom.query_range(up, *window)
    assert len(history) == 1, [s["metric"] for s in history]
    assert {float(v) for _, v in history[0]["values"]} == {0.0, 1.0}
    for target in prom.api("targets", state="active")["activeTargets"]:
        assert "worker_state" not in target["labels"], target["labels"]
    state = prom.values(f'ktrdr_worker_state{{job="{API_JOB}", worker_id="{workload.victim_id}"}}')
    assert {dict(k)["state"]: v for k, v in state.items()} == {
        "online": 0.0, "draining": 0.0, "lost": 1.0, "offline": 0.0,
    }  # fmt: skip


@pytest.mark.timeout(120)
def test_ktrdr_up_observability_runs_prometheus_on_the_stacks_real_ports(tmp_path: Path) -> None:
    """Issue 10.8: `ktrdr up --observability` on non-default ports starts Debian's
    Prometheus on a configuration generated for those ports; every target is up."""
    if prometheus_binary() is None:
        pytest.skip("prometheus not installed: install Debian's `prometheus` package")
    api_port, worker_port, prom_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "KTRDR_"))}
    env.update({"KTRDR_DATA_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"})
    with (tmp_path / "up.log").open("wb") as log:
        up = subprocess.Popen(
            [
                sys.executable, "-m", "ktrdr.cli.main", "up", "--workers", "1",
                "--api-port", str(api_port), "--worker-port", str(worker_port),
                "--observability", "--prometheus-port", str(prom_port),
            ],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    prom = Prometheus(
        f"http://127.0.0.1:{prom_port}", httpx.Client(base_url=f"http://127.0.0.1:{prom_port}")
    )
    try:

        def all_up() -> list[tuple[str, str]] | None:
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            try:
                active = prom.api("targets", state="active")["activeTargets"]
            except (httpx.HTTPError, PrometheusError):
                return None
            found = [(t["labels"]["job"], t["labels"]["instance"]) for t in active]
            healthy = all(t["health"] == "up" for t in active)
            return found if healthy and len(found) == 2 else None

        targets = wait_for(all_up, 60, "prometheus to scrape the api and its worker", 0.3)
        assert sorted(targets) == [
            (API_JOB, f"127.0.0.1:{api_port}"),
            (WORKERS_JOB, f"127.0.0.1:{worker_port}"),
        ]
        assert "metrics: Prometheus running at" in (tmp_path / "up.log").read_text()
        # The repository's rules are loaded too.
        assert {g["name"] for g in prom.api("rules")["groups"]} >= {"ktrdr-alerts"}
    finally:
        prom.http.close()
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(30)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait(5)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{prom_port}/-/ready", timeout=2)
