"""setup_telemetry / instrument_app / instrument_httpx, exercised on a real FastAPI process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from ktrdr.telemetry.setup import _keep_contract_http_metric_names, resolve_traces_endpoint
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

from .conftest import REPO_ROOT, WORKLOAD_SCRIPT, RunningApp, free_port, subprocess_env

CONTRACT_HTTP_METRICS = (
    "http_server_duration_milliseconds",
    "http_server_active_requests",
    "http_server_request_size_bytes",
    "http_server_response_size_bytes",
    "http_client_duration_milliseconds",
)
ROUTE_TEMPLATE = "/api/v1/operations/{operation_id}"


def scrape(app: RunningApp) -> list[Sample]:
    text = httpx.get(f"{app.base_url}/metrics", timeout=10).text
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def series(samples: list[Sample], name: str) -> set[tuple[tuple[str, str], ...]]:
    return {tuple(sorted(s.labels.items())) for s in samples if s.name == name}


def test_http_metrics_exposed_with_contract_names(start_app: Callable[..., RunningApp]) -> None:
    app = start_app()
    httpx.get(f"{app.base_url}/api/v1/operations/op-1", timeout=10).raise_for_status()
    httpx.post(f"{app.base_url}/api/v1/echo", content=b"x" * 100, timeout=10).raise_for_status()
    # Makes an outbound httpx call, for the client histogram.
    httpx.get(f"{app.base_url}/api/v1/chain/op-2", timeout=10).raise_for_status()

    samples = scrape(app)
    names = {s.name for s in samples}
    for metric in CONTRACT_HTTP_METRICS:
        assert any(n.startswith(metric) for n in names), f"{metric} missing; got {sorted(names)}"
    assert "http_server_duration_milliseconds_bucket" in names
    assert "http_client_duration_milliseconds_count" in names
    for name in ("process_cpu_seconds_total", "python_gc_collections_total", "python_info"):
        assert name in names
    target_info = next(s for s in samples if s.name == "target_info")
    assert target_info.labels["service_name"] == "ktrdr-telemetry-test-app"
    assert target_info.labels["deployment_environment"] == "test"
    assert target_info.labels["worker_kind"] == "test"
    assert target_info.labels["service_instance_id"].startswith("test-app-")


def test_route_labels_hold_template_so_ids_add_no_series(
    start_app: Callable[..., RunningApp],
) -> None:
    app = start_app()
    with httpx.Client(base_url=app.base_url, timeout=10) as client:
        client.get("/api/v1/operations/op-first").raise_for_status()
        before = scrape(app)
        for i in range(1000):
            client.get(f"/api/v1/operations/op-{i:04d}").raise_for_status()
    after = scrape(app)

    for name in ("http_server_duration_milliseconds_count", "http_server_active_requests"):
        assert series(after, name) == series(before, name)
    targets = {
        s.labels.get("http_target")
        for s in after
        if s.name == "http_server_duration_milliseconds_count"
    }
    assert ROUTE_TEMPLATE in targets
    assert not any("op-0" in str(s.labels) for s in after)


def test_metrics_endpoint_negotiates_openmetrics(start_app: Callable[..., RunningApp]) -> None:
    app = start_app()
    # Prometheus 2.x's scrape Accept header.
    accept = (
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
        "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    )
    reply = httpx.get(f"{app.base_url}/metrics", headers={"Accept": accept}, timeout=10)
    assert reply.headers["content-type"].startswith("application/openmetrics-text")
    assert reply.text.rstrip().endswith("# EOF")
    plain = httpx.get(f"{app.base_url}/metrics", timeout=10)
    assert plain.headers["content-type"].startswith("text/plain")


def _by_name(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    matches = [s for s in spans if s.name == name]
    assert matches, f"no span {name!r}; got {sorted({s.name for s in spans})}"
    return matches[0]


def test_spans_reach_collector_with_parent_links(
    start_app: Callable[..., RunningApp], otlp_receiver: OtlpReceiver
) -> None:
    app = start_app(OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.endpoint)
    body = httpx.get(f"{app.base_url}/api/v1/chain/op-42", timeout=10).json()

    def complete(spans: list[ReceivedSpan]) -> bool:
        names = {s.name for s in spans}
        return {"GET /api/v1/chain/{operation_id}", f"GET {ROUTE_TEMPLATE}"} <= names

    spans = otlp_receiver.wait_for(complete, timeout_s=15)
    outer = _by_name(spans, "GET /api/v1/chain/{operation_id}")
    lookup = _by_name(spans, "operations.lookup")
    client = next(s for s in spans if s.name == "GET" and s.parent_span_id == lookup.span_id)
    inner = _by_name(spans, f"GET {ROUTE_TEMPLATE}")

    assert {s.trace_id for s in (outer, lookup, client, inner)} == {body["trace_id"]}
    assert lookup.parent_span_id == outer.span_id
    assert lookup.span_id == body["span_id"]
    # Crossed an HTTP hop: the W3C traceparent header carried the client span as parent.
    assert inner.parent_span_id == client.span_id
    assert outer.service_name == "ktrdr-telemetry-test-app"
    assert lookup.attributes["operation.id"] == "op-42"
    assert outer.resource["service.version"]
    assert outer.resource["worker.id"].startswith("test-app-")

    # The log line written inside the span carries its ids and the operation id.
    lines = [json.loads(line) for line in app.stderr().splitlines() if line.startswith("{")]
    logged = next(line for line in lines if line["message"] == "looking up operation")
    assert logged["trace_id"] == body["trace_id"]
    assert logged["span_id"] == body["span_id"]
    assert logged["operation_id"] == "op-42"


def test_unreachable_collector_keeps_workload_fast_and_logs_quiet() -> None:
    closed_port = free_port()  # bound then released: nothing listens there
    result = subprocess.run(
        [
            sys.executable,
            str(WORKLOAD_SCRIPT),
            "--spans",
            "200",
            "--endpoint",
            f"http://127.0.0.1:{closed_port}",
        ],
        cwd=REPO_ROOT,
        env=subprocess_env(OTEL_BSP_SCHEDULE_DELAY="20", OTEL_BSP_MAX_EXPORT_BATCH_SIZE="20"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    timings = json.loads(result.stdout.strip().splitlines()[-1])
    assert timings["workload_s"] < 2.0
    assert timings["shutdown_s"] < 10.0
    assert "Traceback" not in result.stderr
    problems = [
        line for line in result.stderr.splitlines() if '"WARNING"' in line or '"ERROR"' in line
    ]
    # Rate limiting: a handful of lines, not one (or two) per failed batch.
    assert 1 <= len(problems) <= 5, "\n".join(problems)


@pytest.mark.parametrize(
    ("argument", "env", "expected"),
    [
        (None, {}, None),
        ("http://jaeger:4318", {}, "http://jaeger:4318/v1/traces"),
        ("http://jaeger:4318/v1/traces", {}, "http://jaeger:4318/v1/traces"),
        (None, {"KTRDR_OTLP_ENDPOINT": "http://a:4318/"}, "http://a:4318/v1/traces"),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://b:4318"}, "http://b:4318/v1/traces"),
        (None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:1/x"}, "http://c:1/x"),
        (
            None,
            {"KTRDR_OTLP_ENDPOINT": "http://a:1", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://b:2"},
            "http://a:1/v1/traces",
        ),
        ("http://arg:1", {"KTRDR_OTLP_ENDPOINT": "http://a:1"}, "http://arg:1/v1/traces"),
    ],
)
def test_resolve_traces_endpoint_order(
    monkeypatch: pytest.MonkeyPatch,
    argument: str | None,
    env: dict[str, str],
    expected: str | None,
) -> None:
    for name in (
        "KTRDR_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert resolve_traces_endpoint(argument) == expected


def test_semconv_opt_in_http_is_widened_to_keep_contract_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "database,http")
    _keep_contract_http_metric_names()
    assert os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] == "database,http/dup"


def test_semconv_new_only_mode_still_exposes_contract_names(
    start_app: Callable[..., RunningApp],
) -> None:
    app = start_app(OTEL_SEMCONV_STABILITY_OPT_IN="http")
    httpx.get(f"{app.base_url}/api/v1/chain/op-1", timeout=10).raise_for_status()
    names = {s.name for s in scrape(app)}
    assert "http_server_duration_milliseconds_count" in names
    assert "http_client_duration_milliseconds_count" in names


def test_app_without_telemetry_still_serves_metrics(
    start_app: Callable[..., RunningApp],
) -> None:
    app = start_app(telemetry=False)
    names = {s.name for s in scrape(app)}
    assert "process_cpu_seconds_total" in names
    assert not any(n.startswith("http_server") for n in names)
