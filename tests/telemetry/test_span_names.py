"""The API's server spans get the same name and http.route from the compiled route
patterns as from the FastAPI instrumentation's own route walk."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import _flatten_routes, _get_default_span_details
from prometheus_client import CollectorRegistry

from ktrdr.api.app import create_app
from ktrdr.config import ApiSettings
from ktrdr.telemetry.span_names import fast_span_details


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(ApiSettings(), registry=CollectorRegistry())


def scopes(app: FastAPI) -> list[dict[str, Any]]:
    paths = {"/", "/nowhere", "/api/v1/nowhere/at/all", "/console/static/x.js", ""}
    for route in _flatten_routes(app.routes):
        path = getattr(route, "path", "")
        paths.add(re.sub(r"{[^}]+}", "op-1", path))
        paths.add(re.sub(r"{[^}]+}", "a/b", path))  # a parameter does not match a slash
    methods = ("GET", "POST", "DELETE", "HEAD", "PURGE")
    return [{"type": "http", "app": app, "path": p, "method": m, "root_path": ""}
            for p in sorted(paths) for m in methods]  # fmt: skip


def test_every_route_and_method_is_named_as_the_instrumentation_names_it(app: FastAPI) -> None:
    fast = fast_span_details(_get_default_span_details)
    named = 0
    for scope in scopes(app):
        expected = _get_default_span_details(scope)
        assert fast(scope) == expected, scope["method"] + " " + scope["path"]
        named += bool(expected[1])
    assert named > 40  # the routes themselves were matched, not only the fallback
