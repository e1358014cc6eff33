"""Issue 5 acceptance: the dashboards and rules against REAL processes and a REAL Prometheus.

The local stack (API + 2 workers as processes) runs a workload of downloads, backtests
(succeeding and failing), a failing and a cancelled diagnostic and a few 4xx. A real
Prometheus, configured from ``deploy/prometheus/prometheus.local.yml`` (workers found
through the API's HTTP service discovery, the real rule files), scrapes it every second.
Then every dashboard expression, template variable and rule expression goes through
Prometheus's HTTP API: any error fails the test, so does an empty panel the workload must
fill, and the main counters must show exactly what the workload did. Finally exemplars
must carry the operations' trace ids, and a killed worker's ``up`` must turn 0.
"""

from __future__ import annotations

import math
import shutil
import subprocess
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
from tests.deploy.conftest import PROMETHEUS_DIR, RULE_FILES, load_yaml
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

# Panels that are not required by workload_panel_queries() (HTTP errors, downloads) but
# that this test's workload does fill: they must show data too.
ALSO_FILLED_HERE = {
    "4xx error rate",
    "Errors by status code",
    "Data rows downloaded per worker",
    "Data downloads (window)",
    "Training runs (window)",
    "Training epochs per worker",
}

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
        body = response.json()
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

    def scalar(self, expr: str) -> float | None:
        result = self.query(expr)
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


def run_workload(api: Api, prom: Prometheus, data_home: Path) -> Workload:
    started = time.time()
    trace_ids: set[str] = set()

    def start(path: str, body: dict[str, Any]) -> str:
        response = api.http.post(path, json=body)
        assert response.status_code == 202, f"{path} {body}: {response.text}"
        return str(response.json()["id"])

    def finish(op_id: str, status: str, timeout_s: float = 30) -> dict[str, Any]:
        op = api.wait_status(op_id, {"completed", "failed", "cancelled"}, timeout_s)
        assert op["status"] == status, f"{op_id}: expected {status}, got {op}"
        assert op["trace_id"], op
        trace_ids.add(op["trace_id"])
        return op

    def not_found() -> None:
        response = api.http.get("/operations/no-such-operation")
        assert response.status_code == 404, response.text

    # A 4xx first, so that its series exists before the next one and rate() shows it.
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
    (data_home / "data" / "GBPUSD" / "1h.parquet").unlink()

    # One short training run of the model-driven example.
    training = start("/training/start", {"strategy": "fuzzy_nn", "symbol": "EURUSD", "epochs": 2})
    finish(training, "completed")

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

    # Failures: a backtest whose data file is gone, a diagnostic failing on purpose.
    failing_backtest = start("/backtests/start", {"strategy": "sma_crossover", "symbol": "GBPUSD"})
    failing_diagnostic = start("/diagnostics/start", {"steps": 2, "step_ms": 10, "fail_at_step": 1})
    finish(failing_backtest, "failed")
    finish(failing_diagnostic, "failed")

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

    # More 4xx: the same 404 again (now an increase of an existing series) and a 422.
    not_found()
    bad = api.http.post(
        "/backtests/start", json={"strategy": "no_such_strategy", "symbol": "EURUSD"}
    )
    assert 400 <= bad.status_code < 500, bad.text

    return Workload(started, trace_ids, len(SUCCESSFUL_STRATEGIES))


def wait_for_value(prom: Prometheus, expr: str, value: float) -> None:
    wait_for(lambda: prom.scalar(expr) == value, 20, f"{expr} == {value}", interval_s=0.2)


def wait_for_final_scrape(prom: Prometheus, backtests_completed: int) -> None:
    expected = {
        ("backtesting", "completed"): backtests_completed,
        ("backtesting", "failed"): 1,
        ("diagnostic", "failed"): 1,
        ("diagnostic", "cancelled"): 1,
        ("data_download", "completed"): 2,
        ("training", "completed"): 1,
    }

    def seen() -> bool:
        got = {
            (dict(k)["type"], dict(k)["status"]): v
            for k, v in prom.values(f'ktrdr_operations_finished_total{{job="{API_JOB}"}}').items()
        }
        return all(got.get(key) == value for key, value in expected.items())

    wait_for(seen, 20, "prometheus to scrape the final operation counters", interval_s=0.2)
    # Then one more successful scrape of every target (a failed one has a timestamp too),
    # so the last HTTP requests and the worker-side counters are in.
    after = time.time()
    ktrdr_up = 'up{job=~"ktrdr-.*"}'
    wait_for(
        lambda: prom.scalar(f"count(timestamp({ktrdr_up}) > {after:.3f} and {ktrdr_up} == 1)") == 3,
        10,
        "a scrape of the API and both workers after the workload",
        interval_s=0.2,
    )


def check_panels(prom: Prometheus, window: tuple[float, float]) -> list[str]:
    start, end = window
    required = {(q.dashboard_uid, q.panel_title, q.ref_id) for q in workload_panel_queries()}
    problems: list[str] = []
    for q in all_panel_queries():
        expr = substitute(q.expr, VARIABLES)
        where = f"{q.dashboard_uid} / {q.panel_title} [{q.ref_id}]: {expr}"
        try:
            result = prom.query(expr, at=end) if q.instant else prom.query_range(expr, start, end)
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
    [q] = [q for q in all_panel_queries() if q.panel_title == title and q.ref_id == "A"]
    return q


@pytest.mark.timeout(180)
def test_dashboards_and_rules_against_live_prometheus(
    stack_factory: StackFactory, start_prometheus: Callable[[str], Prometheus]
) -> None:
    stack, api = stack_factory.start(workers=2)
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

    workload = run_workload(api, prom, stack.data_home)
    wait_for_final_scrape(prom, workload.backtests_completed)
    end = time.time()
    # Range queries step 1 s from the start: a whole number of steps puts the last
    # evaluation exactly at `end`, after the final scrape (not up to 1 s before it).
    window = (end - math.ceil(end - workload.start + 5), end)

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

    # 4. Values: exactly what the workload did.
    finished = f'ktrdr_operations_finished_total{{job="{API_JOB}"'
    assert (
        prom.scalar(f'{finished}, type="backtesting", status="completed"}}')
        == workload.backtests_completed
    )
    assert prom.scalar(f'{finished}, type="backtesting", status="failed"}}') == 1
    assert prom.scalar(f'{finished}, type="diagnostic", status="failed"}}') == 1
    assert prom.scalar(f'{finished}, type="diagnostic", status="cancelled"}}') == 1
    assert prom.scalar(f'{finished}, type="data_download", status="completed"}}') == 2
    assert (
        prom.scalar(f'ktrdr_backtests_completed_total{{job="{API_JOB}"}}')
        == workload.backtests_completed
    )
    assert (
        prom.scalar(f'sum(ktrdr_worker_operations_total{{job="{API_JOB}"}})')
        # downloads, backtests, the failing backtest, 2 diagnostics, the training run
        == 2 + workload.backtests_completed + 3 + 1
    )
    registered = prom.values(f'ktrdr_workers_registered{{job="{API_JOB}"}}')
    by_kind = {dict(k)["kind"]: v for k, v in registered.items()}
    for kind in DEFAULT_WORKER_KINDS:
        assert by_kind.get(kind) == 2, by_kind
    assert prom.scalar(substitute(_panel("Registered workers").expr, VARIABLES)) == 2
    assert prom.scalar(substitute(_panel("Busy workers").expr, VARIABLES)) == 0
    success = prom.scalar(
        substitute(_panel("Success rate (window)").expr, {**VARIABLES, "kind": "backtesting"})
    )
    n = workload.backtests_completed
    assert success is not None and success == pytest.approx(n / (n + 1), rel=1e-6)
    finished_window = prom.values(
        substitute(_panel("Finished in window by type and status").expr, VARIABLES)
    )
    window_counts = {(dict(k)["type"], dict(k)["status"]): v for k, v in finished_window.items()}
    # increase() extrapolates to the end of the window (Prometheus does, Grafana shows it):
    # close to, never below, the real count.
    assert n <= window_counts[("backtesting", "completed")] <= 1.5 * n, window_counts
    assert 1 <= window_counts[("diagnostic", "cancelled")] <= 1.5, window_counts
    assert 1 <= window_counts[("training", "completed")] <= 1.5, window_counts
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
    four_xx = prom.query_range(substitute(_panel("4xx error rate").expr, VARIABLES), *window)
    assert max(finite_values(four_xx)) > 0, "the repeated 404 must show as a 4xx rate"
    bars = prom.scalar(f'sum(ktrdr_backtest_bars_simulated_total{{job="{WORKERS_JOB}"}})')
    assert bars is not None and bars >= n * 1000, bars
    rows = prom.scalar(f'sum(ktrdr_data_rows_downloaded_total{{job="{WORKERS_JOB}"}})')
    assert rows == 2 * DOWNLOAD_BARS

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
    assert exemplar_trace_ids <= workload.trace_ids, (
        f"exemplar trace ids {exemplar_trace_ids} are not the operations' {workload.trace_ids}"
    )

    # 6. A killed worker stays a target (SD lists lost workers) and its up turns 0.
    victim = stack.workers[0]
    instance = victim.url.removeprefix("http://")
    up = f'up{{job="{WORKERS_JOB}", instance="{instance}"}}'
    assert set(prom.values(up).values()) == {1.0}
    victim.kill()
    wait_for(
        lambda: (v := prom.values(up)) and set(v.values()) == {0.0},
        15,
        f"{up} to turn 0 after the kill",
        interval_s=0.2,
    )

    def lost_and_down() -> list[dict[str, Any]]:
        return [
            t
            for t in prom.api("targets", state="active")["activeTargets"]
            if t["labels"]["job"] == WORKERS_JOB
            and t["labels"]["instance"] == instance
            and t["labels"].get("worker_state") == "lost"
            and t["health"] == "down"
        ]

    wait_for(lost_and_down, 15, f"{instance} listed as lost and scraped as down", interval_s=0.2)
    assert set(prom.values(up).values()) == {0.0}
    other = stack.workers[1].url.removeprefix("http://")
    assert set(prom.values(f'up{{job="{WORKERS_JOB}", instance="{other}"}}').values()) == {1.0}
