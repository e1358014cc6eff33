"""Issue 4 acceptance on real processes: API + workers + CLI, traces to an OTLP receiver.

The in-test OTLP/HTTP receiver stands in for Jaeger. One module-scoped stack (2 workers,
tracing on) runs a fixed workload once -- a data download, a backtest from the CLI,
3 diagnostics that complete and 1 that fails -- and the trace, error, metric, exemplar
and cardinality tests all assert on that workload with exact values. The restart and
no-collector tests need stacks of their own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from ktrdr.local_stack import LocalStack
from ktrdr.operations.model import OperationType
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.stack import Api, StackFactory, free_port, wait_for

pytestmark = pytest.mark.integration

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
OP_ROUTE = "/api/v1/operations/{operation_id}"
BARS = 3000
# Export spans quickly instead of after the default 5 s batch delay.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100"}
HTTP_CONTRACT_FAMILIES = {
    "http_server_duration_milliseconds": "histogram",
    "http_server_active_requests": "gauge",
    "http_server_request_size_bytes": "histogram",
    "http_server_response_size_bytes": "histogram",
    "http_client_duration_milliseconds": "histogram",
}
BACKTEST_PHASES = ("data_loading", "strategy_init", "simulation", "results")


# ------------------------------------------------------------------------------ helpers


def clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment without any OTLP settings, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "KTRDR_OTLP"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


def run_cli(*args: str, env: dict[str, str], timeout_s: float = 60) -> tuple[int, str, float]:
    """Run ``python -m ktrdr.cli.main`` and return (exit code, stdout, wall seconds)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    wall_s = time.monotonic() - started
    assert done.returncode == 0, f"ktrdr {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return done.returncode, done.stdout, wall_s


def scrape(url: str, accept: str | None = None) -> str:
    headers = {"Accept": accept} if accept else {}
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
    response.raise_for_status()
    return response.text


def families(url: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(scrape(url))}


def samples(fams: dict[str, Any], family: str, suffix: str = "") -> list[Sample]:
    return [s for s in fams[family].samples if s.name == family + suffix]


def value(fams: dict[str, Any], family: str, suffix: str = "", **labels: str) -> float:
    """Sum of the samples of ``family + suffix`` whose labels include ``labels``."""
    return sum(
        s.value
        for s in samples(fams, family, suffix)
        if all(s.labels.get(k) == v for k, v in labels.items())
    )


def label_sets(fams: dict[str, Any], family: str) -> set[tuple[str, frozenset[Any]]]:
    """Every series of ``family`` (sample name + labels), values left out."""
    return {(s.name, frozenset(s.labels.items())) for s in fams[family].samples}


def trace_of(spans: Iterable[ReceivedSpan], trace_id: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.trace_id == trace_id]


def only(spans: Iterable[ReceivedSpan], name: str) -> ReceivedSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"expected one {name!r} span, got {len(found)}"
    return found[0]


def ancestry(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[ReceivedSpan]:
    """``span`` and its parents up to the root, following parent_span_id."""
    chain = [span]
    while chain[-1].parent_span_id is not None:
        parent = by_id.get(chain[-1].parent_span_id)
        assert parent is not None, (
            f"parent {chain[-1].parent_span_id} of {chain[-1].name!r} never arrived; "
            f"chain so far {[s.name for s in chain]}"
        )
        chain.append(parent)
        assert len(chain) < 50, "parent cycle"
    return chain


# ------------------------------------------------------------- the shared traced stack


@dataclass
class Workload:
    stack: LocalStack
    api: Api
    receiver: OtlpReceiver
    download: dict[str, Any]
    backtest: dict[str, Any]
    completed_diagnostics: list[dict[str, Any]]
    failed_diagnostic: dict[str, Any]

    @property
    def worker_urls(self) -> list[str]:
        return [w.url for w in self.stack.workers]

    def spans_of(self, op: dict[str, Any], *names: str) -> list[ReceivedSpan]:
        """The op's trace once every span in ``names`` has arrived."""

        def complete(spans: list[ReceivedSpan]) -> bool:
            got = {s.name for s in trace_of(spans, op["trace_id"])}
            return set(names) <= got

        return trace_of(self.receiver.wait_for(complete, timeout_s=15), op["trace_id"])


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workload]:
    receiver = OtlpReceiver()
    factory = StackFactory(tmp_path_factory.mktemp("e2e"))
    try:
        # A heartbeat timeout above the fast 2 s: on a loaded machine a worker can stay
        # silent that long, be declared lost and run an operation twice (two traces' worth).
        stack, api = factory.start(
            workers=2,
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "KTRDR_HEARTBEAT_TIMEOUT_S": "8",
                **FAST_EXPORT,
            },
        )
        response = api.http.post(
            "/data/downloads/start",
            json={"symbol": "EURUSD", "timeframe": "1h", "provider": "synthetic", "bars": BARS},
        )
        assert response.status_code == 202, response.text
        download = api.wait_status(response.json()["id"], {"completed"}, 60)

        _, stdout, _ = run_cli(
            "backtest", "run", "sma_crossover", "--symbol", "EURUSD",
            "--url", stack.api_url, "--json",
            env=clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, **FAST_EXPORT),
        )  # fmt: skip
        backtest = json.loads(stdout)
        assert backtest["status"] == "completed", backtest

        started = [api.start_diagnostic(steps=2, step_ms=10) for _ in range(3)]
        failing = api.start_diagnostic(steps=2, step_ms=10, fail_at_step=1)
        completed = [api.wait_status(op["id"], {"completed"}, 30) for op in started]
        failed = api.wait_status(failing["id"], {"failed"}, 30)
        yield Workload(stack, api, receiver, download, backtest, completed, failed)
    finally:
        factory.stop_all()
        receiver.close()


# ------------------------------------------------------------------------------- tests


def test_cli_backtest_is_one_trace_from_cli_root_to_worker_phases(workload: Workload) -> None:
    op = workload.backtest
    phase_names = [f"backtest.{p}" for p in BACKTEST_PHASES]
    spans = workload.spans_of(
        op, "cli.backtest_run", "operations.create", "workers.select", "operations.dispatch",
        "worker.job", *phase_names,
    )  # fmt: skip
    by_id = {s.span_id: s for s in spans}
    assert len(op["trace_id"]) == 32 and int(op["trace_id"], 16) != 0

    # The CLI span is the root of the operation's trace.
    root = only(spans, "cli.backtest_run")
    assert root.parent_span_id is None
    assert root.service_name == "ktrdr-cli"
    assert root.attributes["operation.id"] == op["id"]
    assert [s for s in spans if s.parent_span_id is None] == [root], "a single root"

    # The API's server span for the start request, a child of the CLI's HTTP client span
    # (`POST`, the seed's name) under the CLI span (traceparent).
    server = [
        s
        for s in spans
        if s.service_name == "ktrdr-api"
        and s.attributes.get("http.route") == "/api/v1/backtests/start"
    ]
    assert len(server) == 1, [s.name for s in spans]
    client = by_id[server[0].parent_span_id or ""]
    assert (client.name, client.service_name) == ("POST", "ktrdr-cli")
    assert client.parent_span_id == root.span_id
    create = only(spans, "operations.create")
    assert create.service_name == "ktrdr-api"
    assert create.parent_span_id == server[0].span_id
    assert create.attributes["operation.id"] == op["id"]

    # The dispatch that reached the worker, and the selection inside it.
    assert op["attempt"] == 1, op
    job = only(spans, "worker.job")
    dispatch = by_id[job.parent_span_id or ""]
    assert dispatch.name == "operations.dispatch", "worker.job hangs off the dispatch span"
    assert dispatch.service_name == "ktrdr-api"
    assert dispatch.attributes["operation.id"] == op["id"]
    assert dispatch.attributes["worker.id"] == op["worker_id"]
    select = [
        s for s in spans if s.name == "workers.select" and s.parent_span_id == dispatch.span_id
    ]
    assert len(select) == 1
    attrs = select[0].attributes
    for key in ("workers.total", "workers.capable", "workers.available"):
        assert isinstance(attrs[key], int), (key, attrs[key])
    assert attrs["workers.total"] == 2 and attrs["workers.capable"] == 2
    assert 1 <= attrs["workers.available"] <= 2
    assert attrs["worker.selected"] == op["worker_id"]
    assert attrs["outcome"] == "selected"

    # The worker: stable service name per kind set, worker id as an attribute.
    assert job.service_name == "ktrdr-worker-general"
    assert job.resource["service.instance.id"] == op["worker_id"]
    assert job.attributes["worker.id"] == op["worker_id"]
    assert job.attributes["operation.id"] == op["id"]
    assert job.attributes["operation.outcome"] == "completed"
    worker_server = [
        s for s in spans if s.service_name == "ktrdr-worker-general" and s.name.startswith("POST /")
    ]
    assert len(worker_server) == 1 and worker_server[0].name == "POST /backtests/start"
    assert by_id[worker_server[0].parent_span_id or ""].service_name == "ktrdr-api"

    # The worker's final report is sent inside the job's span, so the completion — the
    # API's report handler and its state transition — belongs to this trace too.
    report_server = [
        s for s in spans
        if s.service_name == "ktrdr-api"
        and s.attributes.get("http.route") == "/api/v1/operations/{operation_id}/report"
    ]  # fmt: skip
    assert len(report_server) == 1
    report_client = by_id[report_server[0].parent_span_id or ""]
    assert report_client.service_name == "ktrdr-worker-general"
    assert report_client.parent_span_id == job.span_id
    transitions = [s for s in spans if s.name == "operation.state_transition"]
    completed = [s for s in transitions if s.attributes.get("operation.to") == "completed"]
    assert len(completed) == 1
    assert completed[0].attributes["operation.from"] == "running"

    # Every phase: child of worker.job, tagged with the operation, chain ends at the CLI.
    expected_chain = ["worker.job", "operations.dispatch", "operations.create"]
    for name in phase_names:
        phase = only(spans, name)
        assert phase.service_name == "ktrdr-worker-general"
        assert phase.attributes["operation.id"] == op["id"]
        assert phase.attributes["phase"] == name.removeprefix("backtest.")
        assert phase.status_code != 2
        chain = [s.name for s in ancestry(phase, by_id)]
        assert chain[1:4] == expected_chain, chain
        assert chain[4:] == [server[0].name, "POST", "cli.backtest_run"], chain
    assert only(spans, "backtest.simulation").attributes["backtest.bars"] > 0
    trades = only(spans, "backtest.results").attributes["backtest.trades"]
    assert trades == op["result"]["artifacts"]["trades"]["rows"] > 0
    # The whole trace crosses exactly the three services.
    assert {s.service_name for s in spans} == {"ktrdr-cli", "ktrdr-api", "ktrdr-worker-general"}


def test_a_request_without_trace_context_starts_its_own_trace(workload: Workload) -> None:
    """A large traced request must not leave its span current on the keep-alive connection.

    Reading a body over 64 KiB makes uvicorn pause and resume the socket from inside the
    request's task, and on asyncio the next request on that connection then inherits the
    finished request's context (CPython #140947) -- so an untraced heartbeat would join an
    unrelated operation's trace. The servers start every request from an empty context.
    """
    trace_id, parent_id = "5" * 32, "6" * 16
    listing_route = "/api/v1/workers"

    def listings(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
        return [s for s in spans if s.attributes.get("http.route") == listing_route]

    listings_before = len(listings(workload.receiver.spans()))
    big = {"steps": 1, "step_ms": 1, "padding": "x" * 200_000}
    with httpx.Client(base_url=workload.api.http.base_url, timeout=10) as client:
        traced = client.post(
            "/diagnostics/start", json=big, headers={"traceparent": f"00-{trace_id}-{parent_id}-01"}
        )
        assert traced.status_code == 422, traced.text  # "padding" is not a diagnostic field
        # The same keep-alive connection, no trace context.
        assert client.get("/workers").status_code == 200

    def both_arrived(spans: list[ReceivedSpan]) -> bool:
        return bool(trace_of(spans, trace_id)) and len(listings(spans)) > listings_before

    spans = workload.receiver.wait_for(both_arrived, timeout_s=15)
    traced = [s for s in trace_of(spans, trace_id) if s.name == "POST /api/v1/diagnostics/start"]
    assert [s.parent_span_id for s in traced] == [parent_id]
    untraced = listings(spans)[listings_before:]
    assert len(untraced) == 1
    assert untraced[0].parent_span_id is None, "the untraced request joined another trace"
    assert untraced[0].trace_id != trace_id
    # Nor did any worker heartbeat (its trace starts at the worker's client span) join
    # another request's trace: the only API spans in its trace are its own.
    heartbeat = "POST /api/v1/workers/{worker_id}/heartbeat"
    beats = [s for s in spans if s.name == heartbeat]
    assert beats
    for beat in beats:
        others = {
            s.name for s in trace_of(spans, beat.trace_id)
            if s.service_name == "ktrdr-api" and not s.name.startswith(heartbeat)
        }  # fmt: skip
        assert not others, f"a heartbeat joined the trace of {others}"


def test_failing_job_marks_its_spans_as_errors(workload: Workload) -> None:
    op = workload.failed_diagnostic
    assert "diagnostic failure requested at step 1" in op["error"]
    spans = workload.spans_of(op, "worker.job", "diagnostic.steps")
    job = only(spans, "worker.job")
    assert job.status_code == 2, "worker.job status ERROR"
    assert job.attributes["operation.id"] == op["id"]
    assert job.attributes["operation.outcome"] == "failed"
    phase = only(spans, "diagnostic.steps")
    assert phase.status_code == 2, "phase span status ERROR"
    assert phase.parent_span_id == job.span_id
    # The completed ones are not errors.
    ok = workload.spans_of(workload.completed_diagnostics[0], "worker.job")
    assert only(ok, "worker.job").status_code != 2


def test_metrics_on_api_and_workers_match_the_workload(workload: Workload) -> None:
    api = families(workload.stack.api_url)
    workers = [families(url) for url in workload.worker_urls]

    for fams in (api, *workers):
        for name, kind in HTTP_CONTRACT_FAMILIES.items():
            assert fams[name].type == kind, name
            assert fams[name].samples, name
        assert any(n.startswith("process_") for n in fams)
        assert any(n.startswith("python_gc_") for n in fams)
        assert samples(fams, "python_info") and samples(fams, "target_info")
    assert samples(api, "target_info")[0].labels["service_name"] == "ktrdr-api"
    for fams in workers:
        assert samples(fams, "target_info")[0].labels["service_name"] == "ktrdr-worker-general"

    # HTTP values: every start request counted once, under its route template.
    def server_count(fams: dict[str, Any], target: str, status: str) -> float:
        return value(
            fams, "http_server_duration_milliseconds", "_count",
            http_target=target, http_method="POST", http_status_code=status,
        )  # fmt: skip

    assert server_count(api, "/api/v1/diagnostics/start", "202") == 4
    assert server_count(api, "/api/v1/backtests/start", "202") == 1
    assert server_count(api, "/api/v1/data/downloads/start", "202") == 1
    assert sum(server_count(w, "/diagnostics/start", "202") for w in workers) == 4
    assert sum(server_count(w, "/backtests/start", "202") for w in workers) == 1
    # The API's dispatches are its httpx client requests (6 operations, each sent once).
    assert value(api, "http_client_duration_milliseconds", "_count", http_status_code="202") == 6
    for fams in workers:  # workers report to the API over httpx
        assert value(fams, "http_client_duration_milliseconds", "_count", http_method="POST") > 0

    # Backend lifecycle metrics, with their types.
    kinds = {
        "ktrdr_operations_finished": "counter",
        "ktrdr_operation_duration_seconds": "histogram",
        "ktrdr_operation_queue_wait_seconds": "histogram",
        "ktrdr_backtests_completed": "counter",
        "ktrdr_data_downloads": "counter",
        "ktrdr_worker_operations": "counter",
        "ktrdr_operations_active": "gauge",
        "ktrdr_operations_queued": "gauge",
        "ktrdr_workers_registered": "gauge",
        "ktrdr_workers_available": "gauge",
    }
    for name, kind in kinds.items():
        assert api[name].type == kind, name

    def finished(op_type: str, status: str) -> float:
        return value(api, "ktrdr_operations_finished", "_total", type=op_type, status=status)

    assert finished("diagnostic", "completed") == 3
    assert finished("diagnostic", "failed") == 1
    assert finished("diagnostic", "cancelled") == 0
    assert finished("backtesting", "completed") == 1
    assert finished("data_download", "completed") == 1
    assert finished("training", "completed") == 0
    duration = "ktrdr_operation_duration_seconds"
    assert value(api, duration, "_count", type="diagnostic", status="completed") == 3
    assert value(api, duration, "_count", type="diagnostic", status="failed") == 1
    assert value(api, duration, "_count", type="backtesting", status="completed") == 1
    assert value(api, "ktrdr_operation_queue_wait_seconds", "_count", type="diagnostic") == 4
    assert value(api, "ktrdr_backtests_completed", "_total") == 1
    assert value(api, "ktrdr_data_downloads", "_total", status="completed") == 1
    per_worker = {
        (s.labels["worker_id"], s.labels["type"]): s.value
        for s in samples(api, "ktrdr_worker_operations", "_total")
    }
    assert sum(per_worker.values()) == 6
    worker_ids = {w["id"] for w in workload.api.workers()}
    assert {wid for wid, _ in per_worker} <= worker_ids
    assert per_worker[(workload.backtest["worker_id"], "backtesting")] >= 1
    for gauge in ("ktrdr_operations_active", "ktrdr_operations_queued"):
        # Every operation type is exported (0 when idle), campaigns included.
        assert {s.labels["type"]: s.value for s in samples(api, gauge)} == {
            t.value: 0 for t in OperationType
        }
    assert value(api, "ktrdr_workers_registered", kind="diagnostic") == 2
    assert value(api, "ktrdr_workers_available", kind="backtesting") == 2

    # Worker-side job metrics, summed over both workers.
    def phase_count(op_type: str, phase: str) -> float:
        return sum(
            value(w, "ktrdr_job_phase_duration_seconds", "_count", type=op_type, phase=phase)
            for w in workers
        )

    assert workers[0]["ktrdr_job_phase_duration_seconds"].type == "histogram"
    assert phase_count("diagnostic", "steps") == 4, "the failed one records its phase too"
    for phase in BACKTEST_PHASES:
        assert phase_count("backtesting", phase) == 1, phase
    assert phase_count("data_download", "fetch") == 1
    bars = sum(value(w, "ktrdr_backtest_bars_simulated", "_total") for w in workers)
    spans = workload.spans_of(workload.backtest, "backtest.simulation")
    assert bars == only(spans, "backtest.simulation").attributes["backtest.bars"] > 0
    assert sum(value(w, "ktrdr_data_rows_downloaded", "_total") for w in workers) == BARS

    # Lifecycle is counted once, in the backend: never on a worker.
    for fams in workers:
        lifecycle = [
            s
            for name in ("ktrdr_operations_finished", "ktrdr_worker_operations")
            if name in fams
            for s in fams[name].samples
            if s.value > 0
        ]
        assert lifecycle == []
        assert "ktrdr_operations_active" not in fams


def test_duration_exemplars_carry_each_operations_trace_id(workload: Workload) -> None:
    response = httpx.get(
        f"{workload.stack.api_url}/metrics", headers={"Accept": OPENMETRICS}, timeout=10
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    fams = {f.name: f for f in parse_openmetrics(response.text)}
    exemplars: dict[tuple[str, str], set[str]] = {}
    for s in fams["ktrdr_operation_duration_seconds"].samples:
        if s.name.endswith("_bucket") and s.exemplar is not None:
            key = (s.labels["type"], s.labels["status"])
            exemplars.setdefault(key, set()).add(s.exemplar.labels["trace_id"])

    assert exemplars[("backtesting", "completed")] == {workload.backtest["trace_id"]}
    assert exemplars[("data_download", "completed")] == {workload.download["trace_id"]}
    assert exemplars[("diagnostic", "failed")] == {workload.failed_diagnostic["trace_id"]}
    completed_ids = {op["trace_id"] for op in workload.completed_diagnostics}
    assert exemplars[("diagnostic", "completed")] <= completed_ids
    # The exemplar is a working link: that trace reached the collector.
    received = {s.trace_id for s in workload.receiver.spans()}
    assert workload.backtest["trace_id"] in received
    assert workload.failed_diagnostic["trace_id"] in received


def test_a_thousand_unknown_ids_add_no_http_series(workload: Workload) -> None:
    url = workload.stack.api_url
    names = ("http_server_duration_milliseconds", "http_server_active_requests")
    with httpx.Client(base_url=url + "/api/v1", timeout=10) as client:
        assert client.get("/operations/op_warm_up_unknown").status_code == 404
        families(url)  # the scrape itself is recorded after it answers: warm it up
        before = families(url)
        for i in range(1000):
            response = client.get(f"/operations/op_unknown_{i:04d}")
            assert response.status_code == 404
    after = families(url)

    for name in names:
        assert label_sets(after, name) == label_sets(before, name), name
    targets = {s.labels.get("http_target") for s in samples(after, names[0], "_count")}
    assert OP_ROUTE in targets, sorted(t for t in targets if t)
    assert not any("op_unknown" in str(t) for t in targets)

    def not_found(fams: dict[str, Any]) -> float:
        return value(
            fams, names[0], "_count",
            http_target=OP_ROUTE, http_method="GET", http_status_code="404",
        )  # fmt: skip

    assert not_found(after) - not_found(before) == 1000


def test_active_and_queued_gauges_are_right_after_api_restart(
    stack_factory: StackFactory,
) -> None:
    # A long heartbeat timeout: this test is about gauges read from state, not liveness.
    stack, api = stack_factory.start(workers=1, env={"KTRDR_HEARTBEAT_TIMEOUT_S": "60"})
    running = api.start_diagnostic(steps=600, step_ms=100)  # a minute: still running at the end
    api.wait_status(running["id"], {"running"}, 20)
    queued = [api.start_diagnostic(steps=1, step_ms=1) for _ in range(2)]
    assert all(api.op(op["id"])["status"] == "pending" for op in queued)

    def gauges() -> tuple[float, float]:
        fams = families(stack.api_url)
        return (
            value(fams, "ktrdr_operations_active", type="diagnostic"),
            value(fams, "ktrdr_operations_queued", type="diagnostic"),
        )

    assert gauges() == (1, 2)
    assert stack.api is not None
    stack.api.kill()
    stack.start_api()
    assert gauges() == (1, 2), "first scrape after the restart"
    assert api.op(running["id"])["status"] == "running"
    for op in (running, *queued):
        api.http.post(f"/operations/{op['id']}/cancel")


def test_unreachable_collector_slows_nothing(stack_factory: StackFactory) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    stack, api = stack_factory.start(
        workers=1, env={"OTEL_EXPORTER_OTLP_ENDPOINT": closed, **FAST_EXPORT}
    )
    started = time.monotonic()
    op = api.start_diagnostic(steps=2, step_ms=10)
    api.wait_status(op["id"], {"completed"}, 20)
    assert time.monotonic() - started < 10

    args = ("ops", "list", "--url", stack.api_url, "--json")
    with_endpoint = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=closed, **FAST_EXPORT)
    without = clean_env()
    walls: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(2):  # interleaved; the minimum filters out noise from other jobs
        for key, env in (("without", without), ("with", with_endpoint)):
            _, stdout, wall_s = run_cli(*args, env=env)
            assert [o["id"] for o in json.loads(stdout)["data"]] == [op["id"]]
            walls[key].append(wall_s)
    fastest = {key: min(values) for key, values in walls.items()}
    assert fastest["with"] < 10, walls
    assert fastest["with"] - fastest["without"] < 3, walls
    # The stack kept working while its exporters failed.
    assert Counter(o["status"] for o in api.http.get("/operations").json()["data"]) == {
        "completed": 1
    }


# ------------------------------------------- more flows on the same stack (issues 10, 18)
#
# This fixture adds operations to the shared stack, so the tests that use it come after
# every test that counts the workload above (pytest runs a module's tests in order).

SEED_SPANS = {
    # name: the service that emits it (docs: ARCHITECTURE.md "Telemetry contract" and
    # the seed's telemetry audit)
    "operations.create": "ktrdr-api",
    "operations.list": "ktrdr-api",
    "operation.register": "ktrdr-api",
    "operation.state_transition": "ktrdr-api",
    "workers.list": "ktrdr-api",
    "workers.select": "ktrdr-api",
    "backtest.data_loading": "ktrdr-worker-general",
    "backtest.strategy_init": "ktrdr-worker-general",
    "backtest.simulation": "ktrdr-worker-general",
    "cli.backtest_run": "ktrdr-cli",
    "GET": "ktrdr-cli",
    "POST": "ktrdr-cli",
}
USER_TRACE_ID, USER_SPAN_ID = "7" * 32, "8" * 16


@dataclass
class Flows:
    failed_backtest: dict[str, Any]
    cancelled_by_traced_request: dict[str, Any]
    cancelled: dict[str, Any]
    waited: dict[str, Any]


@pytest.fixture(scope="module")
def flows(workload: Workload) -> Flows:
    api = workload.api
    # A backtest that fails ON THE WORKER: its data file is gone after the download.
    response = api.http.post(
        "/data/downloads/start",
        json={"symbol": "GBPUSD", "timeframe": "1h", "provider": "synthetic", "bars": 500},
    )
    assert response.status_code == 202, response.text
    api.wait_status(response.json()["id"], {"completed"}, 60)
    (workload.stack.data_home / "data" / "GBPUSD" / "1h.parquet").unlink()
    response = api.http.post(
        "/backtests/start", json={"strategy": "sma_crossover", "symbol": "GBPUSD"}
    )
    assert response.status_code == 202, response.text
    failed = api.wait_status(response.json()["id"], {"failed"}, 60)

    # Both workers busy, a third operation waits through several dispatch rounds.
    busy = [api.start_diagnostic(steps=300, step_ms=100) for _ in range(2)]
    for op in busy:
        api.wait_status(op["id"], {"running"}, 20)
    waiting = api.start_diagnostic(steps=1, step_ms=1)
    wait_for(
        lambda: (
            value(
                families(workload.stack.api_url),
                "ktrdr_operations_oldest_queued_age_seconds",
                type="diagnostic",
            )
            >= 1.5
        ),
        20,
        "the third operation to wait 1.5 s (several dispatch rounds of 0.2 s)",
    )
    # A user's cancel sent from a trace of its own, and a plain one.
    traced = api.http.post(
        f"/operations/{busy[0]['id']}/cancel",
        headers={"traceparent": f"00-{USER_TRACE_ID}-{USER_SPAN_ID}-01"},
    )
    assert traced.status_code == 200, traced.text
    assert api.http.post(f"/operations/{busy[1]['id']}/cancel").status_code == 200
    cancelled = [api.wait_status(op["id"], {"cancelled"}, 20) for op in busy]
    waited = api.wait_status(waiting["id"], {"completed"}, 20)
    # The listings of the seed (operations.list, workers.list).
    assert api.http.get("/operations").status_code == 200
    api.workers()
    return Flows(failed, cancelled[0], cancelled[1], waited)


def test_every_seed_span_name_is_emitted_by_its_service(workload: Workload, flows: Flows) -> None:
    def complete(spans: list[ReceivedSpan]) -> bool:
        return set(SEED_SPANS) <= {(s.name) for s in spans}

    spans = workload.receiver.wait_for(complete, timeout_s=15)
    for name, service in SEED_SPANS.items():
        services = {s.service_name for s in spans if s.name == name}
        assert service in services, (name, services)


def _transitions(spans: list[ReceivedSpan]) -> list[tuple[str, str]]:
    found = [
        s
        for s in spans
        if s.name == "operation.state_transition" and s.attributes["operation.changed"]
    ]
    found.sort(key=lambda s: ["pending", "running"].index(s.attributes["operation.from"]))
    return [(s.attributes["operation.from"], s.attributes["operation.to"]) for s in found]


def test_every_transition_has_a_span_in_the_operations_own_trace(
    workload: Workload, flows: Flows
) -> None:
    ops = [
        workload.download, workload.backtest, *workload.completed_diagnostics,
        workload.failed_diagnostic, flows.failed_backtest, flows.cancelled_by_traced_request,
        flows.cancelled, flows.waited,
    ]  # fmt: skip
    for op in ops:
        final = op["status"]

        def both(spans: list[ReceivedSpan], op: dict[str, Any] = op) -> bool:
            return len(_transitions(trace_of(spans, op["trace_id"]))) >= 2

        spans = trace_of(workload.receiver.wait_for(both, timeout_s=15), op["trace_id"])
        assert _transitions(spans) == [("pending", "running"), ("running", final)], op["id"]
        claim = [s for s in spans if s.attributes.get("operation.to") == "running"]
        assert claim[0].attributes["worker.id"] == op["worker_id"]
        assert claim[0].attributes["operation.id"] == op["id"]


def test_a_waiting_operation_has_one_wait_span_not_a_span_pair_per_round(
    workload: Workload, flows: Flows
) -> None:
    spans = workload.spans_of(flows.waited, "operations.wait", "worker.job")
    names = Counter(s.name for s in spans)
    assert names["operations.dispatch"] == 1 and names["workers.select"] == 1, names
    wait = only(spans, "operations.wait")
    # >= 1.5 s of waiting at one round per 0.2 s poll (and per wake-up).
    assert wait.attributes["dispatch.rounds_without_worker"] >= 5, wait.attributes
    assert [e[0] for e in wait.events] == ["no worker"]
    assert wait.events[0][1]["outcome"] == "no_workers_available"
    assert wait.attributes["operation.id"] == flows.waited["id"]


def test_a_cancel_lands_in_the_operations_trace_linked_to_the_request(
    workload: Workload, flows: Flows
) -> None:
    op = flows.cancelled_by_traced_request

    def arrived(spans: list[ReceivedSpan]) -> bool:
        return any(
            s.name == "operation.state_transition"
            and s.attributes.get("operation.to") == "cancelled"
            and s.trace_id == op["trace_id"]
            for s in spans
        ) and bool(trace_of(spans, USER_TRACE_ID))

    spans = workload.receiver.wait_for(arrived, timeout_s=15)
    [transition] = [
        s for s in trace_of(spans, op["trace_id"])
        if s.name == "operation.state_transition" and s.attributes["operation.to"] == "cancelled"
        and s.attributes["operation.changed"]  # the worker's later report is a no-op repeat
    ]  # fmt: skip
    # Linked to the request's server span, which names the operation's trace in turn.
    [(linked_trace, linked_span)] = transition.links
    assert linked_trace == USER_TRACE_ID
    [request] = [s for s in trace_of(spans, USER_TRACE_ID) if s.span_id == linked_span]
    assert request.attributes["operation.trace_id"] == op["trace_id"]
    assert request.parent_span_id == USER_SPAN_ID
    assert not [s for s in trace_of(spans, USER_TRACE_ID) if s.name == "operation.state_transition"]


def test_a_cancel_is_an_event_not_an_error(workload: Workload, flows: Flows) -> None:
    for op in (flows.cancelled_by_traced_request, flows.cancelled):
        spans = workload.spans_of(op, "worker.job", "diagnostic.steps")
        for name in ("worker.job", "diagnostic.steps"):
            span = only(spans, name)
            assert span.status_code != 2, (name, span.status_code)
            assert [e[0] for e in span.events] == ["cancelled"], (name, span.events)
        assert all(s.status_code != 2 for s in spans), [s.name for s in spans if s.status_code]


def test_failed_operations_link_finds_a_backtest_that_failed_on_its_worker(
    workload: Workload, flows: Flows
) -> None:
    from urllib.parse import parse_qs, urlsplit

    from ktrdr.dashboards.operations import build

    [link] = [x for x in build().links if x.title.startswith("Failed")]
    query = parse_qs(urlsplit(link.url).query)
    tags = json.loads(query["tags"][0])

    def jaeger_search(spans: list[ReceivedSpan]) -> set[str]:
        """Trace ids Jaeger's search (service, operation, tags) would list."""
        return {
            s.trace_id
            for s in spans
            if s.service_name == query["service"][0]
            and s.name == query["operation"][0]
            and all(str(s.attributes.get(k)).lower() == v for k, v in tags.items())
        }

    failed = {flows.failed_backtest["trace_id"], workload.failed_diagnostic["trace_id"]}
    spans = workload.receiver.wait_for(lambda ss: failed <= jaeger_search(ss), timeout_s=15)
    found = jaeger_search(spans)
    assert failed <= found
    for ok in (workload.backtest, flows.cancelled, flows.waited, *workload.completed_diagnostics):
        assert ok["trace_id"] not in found
    # Issue 18.6: the user's error names what is missing, not the worker's directories.
    error = flows.failed_backtest["error"]
    assert "no data for GBPUSD 1h" in error, error
    assert str(workload.stack.data_home) not in error and "/data" not in error, error
