"""The dispatcher's pushes to workers: lean HTTP/1.1 (ktrdr.lean_http) on asyncio, one
kept-alive connection per worker."""

from __future__ import annotations

import asyncio
import time

import httpx

from ktrdr import lean_http
from ktrdr.lean_http import Call, Target, parse_head, status_error


class WorkerPush:
    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self._idle: dict[tuple[str, int], list[tuple[float, _Conn]]] = {}

    async def post_json(self, url: str, content: str, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST ``content`` (JSON text); the status and body of a 2xx, else HTTPStatusError."""
        target = Target(url)
        call = Call(target, content.encode(), headers)
        with call.traced() as request:
            try:
                async with asyncio.timeout(self.timeout_s):
                    call.status, reply = await self._exchange(target, request)
            except TimeoutError as exc:
                raise httpx.ReadTimeout(f"no answer from {url} in {self.timeout_s}s") from exc
        if not 200 <= call.status < 300:
            raise status_error(url, call.status, reply)
        return call.status, reply

    async def _exchange(self, target: Target, request: bytes) -> tuple[int, bytes]:
        key = (target.host, target.port)
        conn = self._take(key)
        if conn is None:
            try:
                conn = _Conn(*await asyncio.open_connection(target.host, target.port))
            except OSError as exc:
                raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from exc
        try:
            status, reply, keep = await conn.exchange(request)
        except BaseException:
            conn.close()  # a half-read answer (or a cancel) leaves the connection unusable
            raise
        if keep:
            self._idle.setdefault(key, []).append((time.monotonic(), conn))
        else:
            conn.close()
        return status, reply

    def _take(self, key: tuple[str, int]) -> _Conn | None:
        idle = self._idle.get(key, [])
        now = time.monotonic()
        while idle:
            since, conn = idle.pop()
            if now - since < lean_http.IDLE_REUSE_S and conn.usable():
                return conn
            conn.close()
        return None

    def close(self) -> None:
        for idle in self._idle.values():
            for _, conn in idle:
                conn.close()
        self._idle.clear()


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    def usable(self) -> bool:
        # Closed by the server (an end of stream already read) or by us.
        return not (self.reader.at_eof() or self.writer.is_closing())

    async def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        try:
            self.writer.write(request)
            await self.writer.drain()
            status, fields, keep = parse_head(await self.reader.readuntil(b"\r\n\r\n"))
            if fields.get("transfer-encoding") == "chunked":
                body = await self._chunked()
            elif "content-length" in fields:
                body = await self.reader.readexactly(int(fields["content-length"]))
            else:  # delimited by the end of the connection
                body, keep = await self.reader.read(), False
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise httpx.RemoteProtocolError(f"incomplete answer: {exc}") from exc
        except OSError as exc:
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from exc
        return status, body, keep

    async def _chunked(self) -> bytes:
        chunks: list[bytes] = []
        while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
            chunks.append((await self.reader.readexactly(size + 2))[:-2])
        await self.reader.readuntil(b"\r\n")
        return b"".join(chunks)

    def close(self) -> None:
        self.writer.close()
