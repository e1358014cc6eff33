"""HTTP client for the API with errors turned into one clear line."""

from __future__ import annotations

from typing import Any

import httpx

from ktrdr.constants import API_PREFIX, IDEMPOTENCY_HEADER


class ApiError(Exception):
    """The API answered with an error; `message` is what to show the user."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ApiUnreachable(ApiError):
    pass


def _inject_trace_headers(headers: dict[str, str]) -> None:
    """Carry the CLI span's context to the API (one trace per operation)."""
    from opentelemetry import propagate

    propagate.inject(headers)


class ApiClient:
    def __init__(self, base_url: str, timeout_s: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url + API_PREFIX, timeout=timeout_s)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        headers: dict[str, str] = {}
        if idempotency_key:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        _inject_trace_headers(headers)
        try:
            response = self._http.request(method, path, json=json, params=params, headers=headers)
        except httpx.TransportError as exc:
            raise ApiUnreachable(
                f"cannot reach the KTRDR API at {self.base_url} ({type(exc).__name__}); "
                "start it with `ktrdr up` or point --url / KTRDR_API_URL at it"
            ) from exc
        if response.status_code >= 400:
            raise ApiError(_error_text(response), response.status_code)
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean)

    def post(self, path: str, body: Any = None, *, idempotency_key: str | None = None) -> Any:
        return self.request("POST", path, json=body, idempotency_key=idempotency_key)

    def close(self) -> None:
        self._http.close()


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        detail = body.get("detail") if isinstance(body, dict) else None
    except ValueError:
        detail = None
    return f"{response.status_code}: {detail or response.text[:300] or response.reason_phrase}"
