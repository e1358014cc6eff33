"""Rendering of ``GET /metrics`` with Prometheus content negotiation.

Prometheus asks for ``application/openmetrics-text`` first; only that format carries
exemplars (the trace ids on duration histograms), so negotiating matters. Anything else
(curl, older scrapers) gets the classic text format.

Serve it directly from the API and every worker, without a redirect::

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        body, content_type = render_metrics(request.headers.get("accept"))
        return Response(body, media_type=content_type)
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder


def render_metrics(
    accept_header: str | None, registry: CollectorRegistry = REGISTRY
) -> tuple[bytes, str]:
    """Return ``(body, content_type)`` for the format the scraper accepts."""
    encoder, content_type = choose_encoder(accept_header or "")
    return encoder(registry), content_type
