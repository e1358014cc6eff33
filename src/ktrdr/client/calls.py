"""The one request/response layer both clients share: every API call as a `Call`
(method, path, body, how to parse the answer), the retry rule, and error mapping.

The sync and async clients only *send* calls; nothing here does I/O."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from ktrdr.client.errors import ConnectionFailed, error_for
from ktrdr.client.models import Dataset, DeletedData, Operation, OperationPage, Worker

T = TypeVar("T")

# Same names as the API's (ktrdr.constants), copied so the client imports nothing of it;
# tests/client/test_calls.py checks they stay equal.
API_PREFIX = "/api/v1"
IDEMPOTENCY_HEADER = "Idempotency-Key"
API_KEY_ENV = "KTRDR_API_KEY"
API_URL_ENV = "KTRDR_API_URL"
DEFAULT_API_URL = "http://127.0.0.1:8000"

START_PATHS = {
    "backtesting": "/backtests/start",
    "training": "/training/start",
    "data_download": "/data/downloads/start",
    "diagnostic": "/diagnostics/start",
    "sweep": "/sweeps/start",
    "walkforward": "/walkforwards/start",
}
CAMPAIGN_TYPES = ("sweep", "walkforward")
# The API's largest sweep-results page.
RESULTS_PAGE_MAX = 10_000


def _identity(body: Any) -> Any:
    return body


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def replay_safe(self) -> bool:
        """Safe to send again after a reply may have been lost: reads, and starts that
        carry an idempotency key (the API answers a repeat with the first operation)."""
        return self.method == "GET" or IDEMPOTENCY_HEADER in self.headers


@dataclass(frozen=True)
class Settings:
    base_url: str
    api_key: str | None
    timeout_s: float
    retries: int
    backoff_s: float

    @classmethod
    def resolve(
        cls,
        base_url: str | None,
        api_key: str | None,
        timeout_s: float,
        retries: int,
        backoff_s: float,
    ) -> Settings:
        url = (base_url or os.environ.get(API_URL_ENV) or DEFAULT_API_URL).rstrip("/")
        # api_key="" means "send no key", even when KTRDR_API_KEY is set.
        key = (os.environ.get(API_KEY_ENV) if api_key is None else api_key) or None
        return cls(url, key, timeout_s, retries, backoff_s)

    def http_options(self) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return {
            "base_url": self.base_url + API_PREFIX,
            "headers": headers,
            "timeout": self.timeout_s,
        }

    def retry_delay_s(self, call: Call[Any], exc: httpx.TransportError, attempt: int) -> float:
        """Seconds to wait before resending `call`, or ConnectionFailed when to give up.

        A refused connection never reached the API, so any call may be resent; after
        other transport errors the API may have acted, so only replay-safe calls are."""
        unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
        if attempt >= self.retries or not (unsent or call.replay_safe):
            raise ConnectionFailed(
                f"cannot reach the KTRDR API at {self.base_url} ({type(exc).__name__}: "
                f"{exc}) after {attempt + 1} attempt(s); start it with `ktrdr up` or set "
                f"{API_URL_ENV}"
            ) from exc
        return float(self.backoff_s * 2**attempt)


def finish(call: Call[T], response: httpx.Response) -> T:
    """The parsed body, or the typed error carrying the API's message."""
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if response.status_code >= 400:
        raise error_for(response.status_code, body, response.text)
    return call.parse(body)


# ------------------------------------------------------------------ the API's calls


def start(op_type: str, params: dict[str, Any], idempotency_key: str | None) -> Call[Operation]:
    # Every start carries a key, so a retry after a lost reply cannot queue a twin.
    key = idempotency_key or str(uuid.uuid4())
    path = START_PATHS.get(op_type)
    body: Any = params if path else {"type": op_type, "params": params}
    return Call(
        "POST",
        path or "/operations",
        Operation.from_api,
        json=body,
        headers={IDEMPOTENCY_HEADER: key},
    )


def drop_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def list_operations(
    status: list[str] | str | None, type: list[str] | str | None, limit: int, offset: int
) -> Call[OperationPage]:
    params = drop_none(status=status, type=type, limit=limit, offset=offset)
    return Call("GET", "/operations", OperationPage.from_api, params=params)


def get_operation(operation_id: str) -> Call[Operation]:
    return Call("GET", f"/operations/{operation_id}", Operation.from_api)


def cancel(operation_id: str) -> Call[Operation]:
    return Call("POST", f"/operations/{operation_id}/cancel", Operation.from_api)


def results(operation_id: str, part: str | None = None) -> Call[Any]:
    # `?part=` works before and after the dedicated /results/trades routes exist.
    params = drop_none(part=part)
    return Call("GET", f"/operations/{operation_id}/results", _identity, params=params)


def sweep_results(
    operation_id: str,
    *,
    sort: str | None = None,
    order: str | None = None,
    stage: str | None = None,
    window: int | None = None,
    limit: int = RESULTS_PAGE_MAX,
    offset: int = 0,
) -> Call[dict[str, Any]]:
    """One page of a campaign's evaluated parameter sets (best first by default)."""
    params = drop_none(
        sort=sort, order=order, stage=stage, window=window, limit=limit, offset=offset
    )
    return Call("GET", f"/operations/{operation_id}/sweep-results", dict, params=params)


def next_offset(page: dict[str, Any]) -> int | None:
    """Where the next sweep-results page starts, or None after the last one."""
    end = int(page["offset"]) + len(page["data"])
    return end if page["data"] and end < int(page["count"]) else None


def ensure_campaign(op: Operation, op_type: str) -> Operation:
    if op.type != op_type:
        from ktrdr.client.errors import BadRequest

        raise BadRequest(f"operation {op.id} is a {op.type}, not a {op_type}")
    return op


def workers(include_gone: bool) -> Call[list[Worker]]:
    return Call(
        "GET",
        "/workers",
        lambda body: [Worker.from_api(w) for w in body.get("data", [])],
        params={"include_gone": str(include_gone).lower()},
    )


def datasets() -> Call[list[Dataset]]:
    return Call("GET", "/data", lambda body: [Dataset.from_api(d) for d in body.get("data", [])])


def delete_data(symbol: str, timeframe: str) -> Call[DeletedData]:
    path = f"/data/{quote(symbol, safe='')}/{quote(timeframe, safe='')}"
    return Call("DELETE", path, DeletedData.from_api)


def health() -> Call[dict[str, Any]]:
    return Call("GET", "/health", lambda body: dict(body or {}))


def body_of(**values: Any) -> dict[str, Any]:
    """Request parameters: unset ones left out (the API's defaults apply), times as ISO."""
    return {
        k: v.isoformat() if hasattr(v, "isoformat") else v
        for k, v in values.items()
        if v is not None
    }


def operation_id(operation: str | Operation) -> str:
    return operation.id if isinstance(operation, Operation) else operation


def ensure_completed(op: Operation) -> Operation:
    if op.status != "completed":
        from ktrdr.client.errors import OperationFailed

        why = op.error or op.status_reason or "no reason given"
        raise OperationFailed(f"operation {op.id} ended {op.status}: {why}", op)
    return op


BACKTEST_PARTS = ("statistics", "trades", "equity_curve")
