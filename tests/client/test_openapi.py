"""OpenAPI quality for generated clients: every public route has a summary and a
description, and answers with a typed schema (a model, not a bare `object`)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from ktrdr.api.app import create_app
from ktrdr.config import ApiSettings

# Untyped today, each for a reason; the list may only shrink (a new route must be typed).
KNOWN_UNTYPED = {
    # a free-form status document; wants a HealthPublic model
    ("get", "/api/v1/health"),
    # Prometheus' HTTP service-discovery format, consumed by Prometheus, not by clients
    ("get", "/api/v1/sd/workers"),
    # one result part of any type (`?part=`); typed per-part routes are on branch `lean`
    ("get", "/api/v1/operations/{operation_id}/results"),
    # the data catalog; wants a DatasetsPublic(data, count) model
    ("get", "/api/v1/data"),
}


def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = create_app(ApiSettings(), registry=CollectorRegistry()).openapi()
    return spec


def _untyped(schema: dict[str, Any] | None) -> bool:
    if schema is None:
        return False  # no body (204)
    if "$ref" in schema:
        return False
    if schema.get("type") == "array":
        return _untyped(schema.get("items"))
    return not schema.get("properties")


def test_public_routes_have_summaries_and_typed_responses() -> None:
    untyped, undocumented = set(), []
    for path, item in _spec()["paths"].items():
        for method, op in item.items():
            if not (op.get("summary") and op.get("description")):
                undocumented.append(f"{method.upper()} {path}")
            for code, response in op["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if code.startswith("2") and _untyped(schema):
                    untyped.add((method, path))
    assert undocumented == []
    assert untyped == KNOWN_UNTYPED
