"""HTTP client for the API with errors turned into one clear line."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from ktrdr.constants import API_PREFIX, IDEMPOTENCY_HEADER

API_KEY_ENV = "KTRDR_API_KEY"


class ApiError(Exception):
    """The API answered with an error; `message` is what to show the user."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ApiUnreachable(ApiError):
    pass


def _inject_trace_headers(headers: dict[str, str]) -> None:
    """Carry the current span's context to the API (one trace per operation)."""
    from opentelemetry import propagate

    propagate.inject(headers)


# The user API key for this process: `ktrdr --api-key` (or KTRDR_API_KEY) sets it once for
# every command. It is not KTRDR_API_TOKEN, the workers' shared registration secret.
_api_key: str | None = None


def use_api_key(key: str | None) -> None:
    global _api_key
    _api_key = key or None


@contextmanager
def _client_span(method: str, url: str) -> Iterator[Any]:
    """The seed's ``GET``/``POST`` client span around one API call (a no-op span when
    tracing is off). Made by hand: the httpx instrumentation takes ~2 s to import, which
    a CLI command cannot afford; this needs only the OpenTelemetry API."""
    from opentelemetry import trace

    tracer = trace.get_tracer("ktrdr.cli.http")
    attributes = {"http.method": method, "http.url": url}
    with tracer.start_as_current_span(
        method, kind=trace.SpanKind.CLIENT, attributes=attributes
    ) as span:
        yield span


def current_api_key() -> str | None:
    return _api_key or os.environ.get(API_KEY_ENV) or None


class ApiClient:
    def __init__(self, base_url: str, timeout_s: float = 30.0, *, api_key: str | None = None):
        self.base_url = base_url.rstrip("/")
        key = api_key or current_api_key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(
            base_url=self.base_url + API_PREFIX, headers=headers, timeout=timeout_s
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        content_type: str | None = None,
    ) -> Any:
        headers: dict[str, str] = {"Content-Type": content_type} if content_type else {}
        if idempotency_key:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        with _client_span(method, f"{self.base_url}{API_PREFIX}{path}") as span:
            _inject_trace_headers(headers)
            try:
                response = self._http.request(
                    method, path, json=json, content=content, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                raise ApiUnreachable(
                    f"cannot reach the KTRDR API at {self.base_url} ({type(exc).__name__}); "
                    "start it with `ktrdr up` or point --url / KTRDR_API_URL at it"
                ) from exc
            span.set_attribute("http.status_code", response.status_code)
        if response.status_code >= 400:
            message = _error_text(response)
            if response.status_code == 401:
                message += f" — pass --api-key or set {API_KEY_ENV} (ask the operator for a key)"
            raise ApiError(message, response.status_code)
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean)

    def post(self, path: str, body: Any = None, *, idempotency_key: str | None = None) -> Any:
        return self.request("POST", path, json=body, idempotency_key=idempotency_key)

    def upload(self, path: str, content: bytes, media_type: str) -> Any:
        """POST raw bytes (a file upload) and return the JSON answer."""
        return self.request("POST", path, content=content, content_type=media_type)

    def close(self) -> None:
        self._http.close()


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        detail = body.get("detail") if isinstance(body, dict) else None
    except ValueError:
        detail = None
    if detail and response.status_code < 500:
        return str(detail)  # the API's own message says what to fix; the exit code says 4xx
    return f"{response.status_code}: {detail or response.text[:300] or response.reason_phrase}"
