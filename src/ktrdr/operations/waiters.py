"""Requests waiting for operations to end: `GET /operations/{id}?wait_s=` (a long poll).

A client that wants the outcome asks once and is answered when the operation ends,
instead of polling its record every few milliseconds (each poll is a request the API
serves next to the work it waits for). The transition that ends an operation wakes its
waiters in this process and hands them the final record it has just written, so the
answer needs no second read of the store; a transition on another API replica is seen
by the waiter's own re-read once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from ktrdr.operations.schemas import OperationPublic

# A waiter re-reads the record at least this often (an end on another replica).
RECHECK_S = 1.0


@dataclass
class Watch:
    """Set when the operation ends; ``ended`` is its final record (written by this process)."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    ended: OperationPublic | None = None


class EndWaiters:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watches: dict[str, Watch] = {}
        self._counts: dict[str, int] = {}

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def notify(self, operation: OperationPublic) -> None:
        """Thread-safe: called by the transition that ended ``operation``."""
        loop = self._loop
        if loop is None or loop.is_closed() or operation.id not in self._watches:
            return  # nobody waits: no hop onto the event loop
        loop.call_soon_threadsafe(self._set, operation)

    def _set(self, operation: OperationPublic) -> None:
        watch = self._watches.get(operation.id)
        if watch is not None:
            watch.ended = operation
            watch.event.set()

    @contextlib.contextmanager
    def watch(self, operation_id: str) -> Iterator[Watch]:
        """Register before reading the record, so an end between the read and the wait
        is not missed."""
        watch = self._watches.setdefault(operation_id, Watch())
        self._counts[operation_id] = self._counts.get(operation_id, 0) + 1
        try:
            yield watch
        finally:
            self._counts[operation_id] -= 1
            if not self._counts[operation_id]:
                del self._counts[operation_id]
                del self._watches[operation_id]
