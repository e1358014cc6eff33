"""Content negotiation of render_metrics."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter

from ktrdr.telemetry.metrics_endpoint import render_metrics

PROMETHEUS_2_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
PROMETHEUS_3_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("ktrdr_demo_total", "Demo.", registry=registry).inc(
        exemplar={"trace_id": "0af7651916cd43dd8448eb211c80319c"}
    )
    return registry


@pytest.mark.parametrize("accept", [PROMETHEUS_2_ACCEPT, PROMETHEUS_3_ACCEPT])
def test_prometheus_scrapers_get_openmetrics_with_exemplars(
    registry: CollectorRegistry, accept: str
) -> None:
    body, content_type = render_metrics(accept, registry)
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    text = body.decode()
    assert text.endswith("# EOF\n")
    assert 'ktrdr_demo_total 1.0 # {trace_id="0af7651916cd43dd8448eb211c80319c"}' in text


@pytest.mark.parametrize("accept", [None, "", "*/*", "text/plain", "application/json"])
def test_other_clients_get_plain_text(registry: CollectorRegistry, accept: str | None) -> None:
    body, content_type = render_metrics(accept, registry)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    text = body.decode()
    assert "ktrdr_demo_total 1.0" in text
    assert "trace_id" not in text
