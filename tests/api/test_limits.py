"""RequestLimits: a body that does not arrive in time is a 408; one that does passes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from fastapi import HTTPException

from ktrdr.api.limits import RequestLimits


async def read_all(scope: Any, receive: Any, send: Any) -> None:
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    scope["read"] = True


def run(receive: Any, timeout_s: float) -> dict[str, Any]:
    scope: dict[str, Any] = {"type": "http", "headers": [(b"content-length", b"10")]}
    limits = RequestLimits(read_all, max_body_bytes=100, body_timeout_s=timeout_s)

    async def send(_message: Any) -> None:
        pass

    asyncio.run(limits(scope, receive, send))
    return scope


def test_a_body_that_never_arrives_is_a_408_after_the_timeout() -> None:
    async def never() -> dict[str, Any]:
        await asyncio.sleep(60)
        raise AssertionError("not reached")

    started = time.monotonic()
    with pytest.raises(HTTPException) as refused:
        run(never, 0.2)
    assert refused.value.status_code == 408
    assert 0.15 < time.monotonic() - started < 5


def test_a_body_that_trickles_past_the_deadline_is_a_408() -> None:
    async def trickle() -> dict[str, Any]:
        await asyncio.sleep(0.1)
        return {"type": "http.request", "body": b"x", "more_body": True}

    with pytest.raises(HTTPException) as refused:
        run(trickle, 0.35)  # each part is in time; the whole body is not
    assert refused.value.status_code == 408


def test_a_body_in_parts_within_the_time_passes() -> None:
    parts = [b"12345", b"67890"]

    async def two_parts() -> dict[str, Any]:
        await asyncio.sleep(0.01)
        body = parts.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(parts)}

    assert run(two_parts, 2.0)["read"]
