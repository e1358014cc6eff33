"""Requests waiting for operations to end: `GET /operations/{id}?wait_s=` (a long poll).

A client that wants the outcome asks once and is answered when the operation ends,
instead of polling its record every few milliseconds (each poll is a request the API
serves next to the work it waits for). The transition that ends an operation wakes its
waiters in this process; a transition on another API replica is seen by the waiter's
own re-read once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

# A waiter re-reads the record at least this often (an end on another replica).
RECHECK_S = 1.0


class EndWaiters:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: dict[str, asyncio.Event] = {}
        self._counts: dict[str, int] = {}

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def notify(self, operation_id: str) -> None:
        """Thread-safe: called by the transition that ended `operation_id`."""
        loop = self._loop
        if loop is None or loop.is_closed() or operation_id not in self._events:
            return  # nobody waits: no hop onto the event loop
        loop.call_soon_threadsafe(self._set, operation_id)

    def _set(self, operation_id: str) -> None:
        event = self._events.get(operation_id)
        if event is not None:
            event.set()

    @contextlib.contextmanager
    def watch(self, operation_id: str) -> Iterator[asyncio.Event]:
        """An event set when the operation ends; register it before reading the record,
        so an end between the read and the wait is not missed."""
        event = self._events.setdefault(operation_id, asyncio.Event())
        self._counts[operation_id] = self._counts.get(operation_id, 0) + 1
        try:
            yield event
        finally:
            self._counts[operation_id] -= 1
            if not self._counts[operation_id]:
                del self._counts[operation_id]
                del self._events[operation_id]
