"""uvicorn's httptools protocol with a cap on the size of a request's head.

llhttp bounds neither the URL nor the headers: a client that sends an endless header
line (or endless headers) would grow the parser's buffers without limit. h11, which the
servers used before, refused a head over ``h11_max_incomplete_event_size``; this keeps
that limit with the faster parser. Two counts, because the parser calls back only with
complete pieces: the URL and header bytes of a complete head (one that arrived at
once), and the raw bytes received while the head is still incomplete (one that
trickles in or never ends). Past the cap the client gets a 431 and the connection
closes.
"""

from __future__ import annotations

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 16 * 1024
_MESSAGE = b"the request's URL and headers are larger than 16 KiB\n"
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\n"
    b"connection: close\r\n\r\n%s" % (len(_MESSAGE), _MESSAGE)
)


class HeadTooLarge(httptools.HttpParserError):
    pass


class CappedHttpToolsProtocol(HttpToolsProtocol):
    max_head_bytes = MAX_HEAD_BYTES
    # Between requests, or between a request's first byte and its last header.
    _in_head = True
    _head_bytes = 0  # URL and header bytes of the last complete head
    _raw_head_bytes = 0  # bytes received since the current head began

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._raw_head_bytes += len(data)
        super().data_received(data)
        # Still inside the head after the parser saw all of it: the parser's pending
        # pieces are at most this big.
        if (
            self._in_head
            and self._raw_head_bytes > self.max_head_bytes
            and not self.transport.is_closing()
        ):
            self._refuse()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._raw_head_bytes = 0
        # Counted once here, not in a callback per header: the parser holds at most this
        # head plus one read (the raw count above bounds a head spread over reads).
        self._head_bytes = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if self._head_bytes > self.max_head_bytes:
            raise HeadTooLarge("request head too large")  # answered in send_400_response
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # what arrives next is the next request's head

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers every parser error with a 400; a callback's refusal of a too
        # large head is one of them, and gets its own status.
        if self._head_bytes > self.max_head_bytes:
            self._refuse()
        else:
            super().send_400_response(msg)

    def _refuse(self) -> None:
        self.logger.warning("request head larger than %d bytes: refused", self.max_head_bytes)
        self.transport.write(_TOO_LARGE)
        self.transport.close()
