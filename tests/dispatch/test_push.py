"""The dispatcher's lean push client against a real socket server: keep-alive, errors as
httpx's exceptions (the dispatcher's failure handling depends on them), the trace."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ktrdr import lean_http
from ktrdr.dispatch.push import WorkerPush

Reply = Callable[[bytes, bytes], Awaitable[bytes | None]]


def answer(status: int, body: bytes, *, close: bool = False) -> bytes:
    extra = b"connection: close\r\n" if close else b""
    return b"HTTP/1.1 %d X\r\ncontent-length: %d\r\n%s\r\n%s" % (status, len(body), extra, body)


@asynccontextmanager
async def server(reply: Reply) -> AsyncIterator[tuple[str, list[bytes], list[int]]]:
    """A one-route HTTP/1.1 server; yields its URL, the request heads, one id per connection."""
    heads: list[bytes] = []
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(id(writer))
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                heads.append(head)
                out = await reply(head, await reader.readexactly(length))
                if out is None:
                    break
                writer.write(out)
                await writer.drain()
                if b"connection: close" in out:
                    break
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/diagnostics/start", heads, connections
    finally:
        srv.close()


async def accept(_head: bytes, body: bytes) -> bytes:
    return answer(202, b'{"accepted":true,"echo":' + body + b"}")


def test_pushes_reuse_one_connection_and_return_the_answer() -> None:
    async def run() -> None:
        async with server(accept) as (url, heads, connections):
            client = WorkerPush(timeout_s=5)
            for n in range(3):
                status, body = await client.post_json(url, f'{{"n":{n}}}', {"x-a": "b"})
                assert (status, body) == (202, b'{"accepted":true,"echo":{"n":%d}}' % n)
            assert len(connections) == 1, "kept alive"
            assert b"POST /diagnostics/start HTTP/1.1" in heads[0] and b"x-a: b" in heads[0]
            client.close()

    asyncio.run(run())


def test_a_refusal_is_an_http_status_error_with_the_workers_text() -> None:
    async def busy(_head: bytes, _body: bytes) -> bytes:
        return answer(409, b'{"detail":"worker is busy with op-1"}')

    async def run() -> None:
        async with server(busy) as (url, _heads, _connections):
            client = WorkerPush(timeout_s=5)
            with pytest.raises(httpx.HTTPStatusError) as caught:
                await client.post_json(url, "{}", {})
            client.close()
            assert caught.value.response.status_code == 409
            assert "busy with op-1" in caught.value.response.text

    asyncio.run(run())


def test_an_unreachable_worker_is_a_connect_error() -> None:
    async def run() -> None:
        async with server(accept) as (url, _heads, _connections):
            pass  # closed: nothing listens on the port any more
        with pytest.raises(httpx.ConnectError):
            await WorkerPush(timeout_s=5).post_json(url, "{}", {})

    asyncio.run(run())


def test_a_connection_the_worker_closed_or_that_idled_is_not_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def close_each(_head: bytes, _body: bytes) -> bytes:
        return answer(202, b"{}", close=True)

    async def run() -> None:
        async with server(close_each) as (url, _heads, connections):
            client = WorkerPush(timeout_s=5)
            for _ in range(3):
                assert (await client.post_json(url, "{}", {}))[0] == 202
            assert len(connections) == 3
        async with server(accept) as (url, _heads, connections):
            client = WorkerPush(timeout_s=5)
            await client.post_json(url, "{}", {})
            monkeypatch.setattr(lean_http, "IDLE_REUSE_S", 0.0)  # idle past the reuse limit
            await client.post_json(url, "{}", {})
            client.close()
            assert len(connections) == 2

    asyncio.run(run())


def test_a_worker_that_never_answers_is_a_timeout_and_a_half_answer_an_error() -> None:
    async def silent(_head: bytes, _body: bytes) -> bytes | None:
        await asyncio.sleep(10)
        return None

    async def half(_head: bytes, _body: bytes) -> bytes:
        return b"HTTP/1.1 202 X\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{"

    async def run() -> None:
        async with server(silent) as (url, _heads, _connections):
            with pytest.raises(httpx.TimeoutException):
                await WorkerPush(timeout_s=0.2).post_json(url, "{}", {})
        async with server(half) as (url, _heads, _connections):
            with pytest.raises(httpx.RemoteProtocolError):
                await WorkerPush(timeout_s=5).post_json(url, "{}", {})

    asyncio.run(run())


def test_each_push_is_a_client_span_whose_context_the_worker_receives() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    async def run() -> list[bytes]:
        async with server(accept) as (url, heads, _connections):
            client = WorkerPush(timeout_s=5)
            with tracer.start_as_current_span("operations.dispatch"):
                await client.post_json(url, "{}", {})
            client.close()
            return heads

    original = lean_http._tracer
    lean_http._tracer = provider.get_tracer("ktrdr.lean_http")
    try:
        heads = asyncio.run(run())
    finally:
        lean_http._tracer = original
    spans = {s.name: s for s in exporter.get_finished_spans()}
    client, dispatch = spans["POST"], spans["operations.dispatch"]
    assert client.kind == trace.SpanKind.CLIENT
    assert client.parent is not None and client.parent.span_id == dispatch.context.span_id
    assert client.attributes is not None and client.attributes["http.status_code"] == 202
    ctx = client.context
    expected = f"traceparent: 00-{ctx.trace_id:032x}-{ctx.span_id:016x}-".encode()
    assert expected in heads[0]
