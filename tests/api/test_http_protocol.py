"""The servers' HTTP protocol (httptools) keeps h11's 16 KiB cap on a request's head,
whether the head arrives at once or trickles in, and refuses nothing below it."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from ktrdr.http_protocol import MAX_HEAD_BYTES, CappedHttpToolsProtocol


async def echo_length(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = str(size).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def address() -> Iterator[tuple[str, int]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(echo_length, http=CappedHttpToolsProtocol, loop="uvloop",
                            log_config=None, lifespan="off")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield sock.getsockname()
    server.should_exit = True
    thread.join(10)


def exchange(address: tuple[str, int], *chunks: bytes, pause_s: float | None = None) -> bytes:
    """Send ``chunks`` (with ``pause_s``: one by one, stopping once answered), read all."""
    with socket.create_connection(address, timeout=5) as conn:
        for chunk in chunks:
            if pause_s is not None:
                if select.select([conn], [], [], 0)[0]:
                    break  # answered (refused) before the end: read it before a reset
                time.sleep(pause_s)
            conn.sendall(chunk)
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_WR)
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while data := conn.recv(65536):
                received += data
        return received


def request(head_extra: bytes = b"", body: bytes = b"") -> bytes:
    return (b"POST /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + head_extra
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)  # fmt: skip


def test_an_ordinary_request_and_a_large_body_pass(address: tuple[str, int]) -> None:
    body = b"b" * 200_000  # first read holds head and body: no false refusal
    answer = exchange(address, request(b"X-A: " + b"a" * 8000 + b"\r\n", body))
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"200000")


def test_keep_alive_requests_each_get_the_whole_cap(address: tuple[str, int]) -> None:
    one = b"GET /x HTTP/1.1\r\nHost: t\r\nX-A: " + b"a" * 10_000 + b"\r\n\r\n"
    with socket.create_connection(address, timeout=5) as conn:
        for _ in range(3):  # 30 KB of heads on one connection, each under the cap
            conn.sendall(one)
            assert conn.recv(65536).startswith(b"HTTP/1.1 200")


def test_a_head_over_the_cap_at_once_is_431(address: tuple[str, int]) -> None:
    answer = exchange(address, request(b"X-A: " + b"a" * MAX_HEAD_BYTES + b"\r\n"))
    assert answer.startswith(b"HTTP/1.1 431")


def test_many_small_headers_over_the_cap_are_431(address: tuple[str, int]) -> None:
    many = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 50) for i in range(400))
    assert exchange(address, request(many)).startswith(b"HTTP/1.1 431")


def test_an_endless_header_that_trickles_in_is_431(address: tuple[str, int]) -> None:
    # Never completes a header: the parser would buffer it for ever.
    chunks = [b"GET /x HTTP/1.1\r\nHost: t\r\nX-A: "] + [b"a" * 1024] * 40
    assert exchange(address, *chunks, pause_s=0.002).startswith(b"HTTP/1.1 431")


def test_an_endless_url_is_431(address: tuple[str, int]) -> None:
    chunks = [b"GET /"] + [b"u" * 1024] * 40
    assert exchange(address, *chunks, pause_s=0.002).startswith(b"HTTP/1.1 431")
