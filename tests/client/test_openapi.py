"""OpenAPI quality for generated clients: every public route has a summary and a
description, answers with a typed schema (a model, not a bare `object`), and every request
body carries an example that its own model accepts."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from ktrdr.api.app import create_app
from ktrdr.config import ApiSettings


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(ApiSettings(), registry=CollectorRegistry())


def _untyped(schema: dict[str, Any] | None) -> bool:
    if schema is None:
        return False  # no body (204)
    if "$ref" in schema:
        return False
    if schema.get("type") == "array":
        return _untyped(schema.get("items"))
    return not schema.get("properties")


def _operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in app.openapi()["paths"].items()
        for method, op in item.items()
    ]


def test_public_routes_have_summaries_and_typed_responses(app: FastAPI) -> None:
    untyped, undocumented = [], []
    for method, path, op in _operations(app):
        if not (op.get("summary") and op.get("description")):
            undocumented.append(f"{method.upper()} {path}")
        for code, response in op["responses"].items():
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if code.startswith("2") and _untyped(schema):
                untyped.append(f"{method.upper()} {path}")
    assert undocumented == []
    assert untyped == []


def test_every_request_body_has_an_example(app: FastAPI) -> None:
    spec = app.openapi()
    components = spec["components"]["schemas"]
    missing = []
    for method, path, op in _operations(app):
        for media, content in op.get("requestBody", {}).get("content", {}).items():
            schema = content.get("schema", {})
            ref = schema.get("$ref", "").rpartition("/")[2]
            examples = content.get("example") or content.get("examples")
            if not (examples or components.get(ref, {}).get("examples")):
                missing.append(f"{method.upper()} {path} ({media})")
    assert missing == []


def _routes(routes: list[Any]) -> list[APIRoute]:
    """Every APIRoute, inside included routers too (FastAPI keeps those as wrappers)."""
    found = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += _routes(route.original_router.routes)
    return found


def _body_models(app: FastAPI) -> dict[str, type[BaseModel]]:
    found = {}
    for route in _routes(app.routes):
        if route.body_field is not None:
            model = route.body_field.field_info.annotation
            if isinstance(model, type) and issubclass(model, BaseModel):
                found[f"{next(iter(route.methods))} {route.path}"] = model
    return found


def test_request_examples_are_accepted_by_their_models(app: FastAPI) -> None:
    models = _body_models(app)
    assert len(models) >= 11  # every JSON body route: starts, campaigns, worker reports
    for route, model in models.items():
        examples = model.model_json_schema().get("examples")
        assert examples, f"{route}: {model.__name__} has no example"
        for example in examples:
            model.model_validate(example)  # raises with the field at fault
