"""The event stream: alarm and sensor-state events with increasing ids, a replay buffer, and waiting readers.

Publishers (the ingester's thread, request threads) call :meth:`EventHub.publish` from any thread. Readers (one per
Server-Sent-Events connection) keep a cursor, the id of the last event they sent, and read everything after it from
the ring buffer; they never hold a queue of their own, so a slow screen costs nothing but its cursor. A reader that
falls further behind than the buffer holds (or reconnects with an id from before it) gets a ``reset`` event and
should reload ``GET /alarms``.

Ids start at the hub's creation time in milliseconds and go up by one per event, so they keep increasing across
restarts of the service (a restart loses the buffer: a client reconnecting with an older id gets ``reset``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class Event:
    """One event: its id, its kind (``alarm``, ``sensor``), its JSON body and what filters look at."""

    id: int
    kind: str
    body: bytes
    grid_code: str | None
    building_id: int | None
    tags: frozenset[str]

    def sse(self) -> bytes:
        """The event as a Server-Sent-Events frame."""
        return b"id: %d\nevent: %s\ndata: %s\n\n" % (self.id, self.kind.encode(), self.body)

    @property
    def data(self) -> dict[str, Any]:
        """The JSON body, decoded."""
        decoded: dict[str, Any] = orjson.loads(self.body)
        return decoded


@dataclass(frozen=True)
class EventFilter:
    """Which events a reader wants; an empty criterion lets everything through.

    ``grids`` are grid-code prefixes (a community's code matches its grids), ``tags`` alarm types, severities,
    sensor types, statuses or the event kind.
    """

    grids: tuple[str, ...] = ()
    buildings: frozenset[int] = frozenset()
    tags: frozenset[str] = frozenset()

    def matches(self, event: Event) -> bool:
        """True when ``event`` passes every criterion that is set."""
        if self.grids and not (event.grid_code and event.grid_code.startswith(self.grids)):
            return False
        if self.buildings and event.building_id not in self.buildings:
            return False
        return not self.tags or bool(self.tags & event.tags)


class EventHub:
    """A bounded, thread-safe log of recent events that async readers wait on."""

    def __init__(self, capacity: int = 20_000, first_id: int | None = None):
        self._lock = threading.Lock()
        self._buffer: deque[Event] = deque(maxlen=capacity)
        self._next_id = int(time.time() * 1000) if first_id is None else first_id
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.closed = False

    @property
    def last_id(self) -> int:
        """Id of the newest event (one less than the first id when there is none)."""
        with self._lock:
            return self._next_id - 1

    def publish(self, kind: str, data: Mapping[str, Any], *, grid_code: str | None = None,
                building_id: int | None = None, tags: Iterable[str] = ()) -> Event:
        """Add an event (thread-safe) and wake every reader."""
        body = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS, default=str)
        with self._lock:
            event = Event(self._next_id, kind, body, grid_code, building_id, frozenset({kind, *tags}))
            self._next_id += 1
            self._buffer.append(event)
            waiters = list(self._waiters)
        for loop, flag in waiters:
            try:
                loop.call_soon_threadsafe(flag.set)
            except RuntimeError:  # that reader's loop is gone
                self._waiters.discard((loop, flag))
        return event

    def after(self, cursor: int) -> tuple[list[Event], bool]:
        """Events with ids above ``cursor``, and whether some were lost (the cursor is older than the buffer)."""
        with self._lock:
            if not self._buffer:
                return [], cursor < self._next_id - 1
            first = self._buffer[0].id
            if cursor >= self._next_id - 1:
                return [], cursor > self._next_id - 1
            start = max(cursor + 1 - first, 0)
            events = [self._buffer[i] for i in range(start, len(self._buffer))]
            return events, cursor + 1 < first

    def register(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Event]:
        """A wake-up flag for a reader on the running event loop."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
        return waiter

    def unregister(self, waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        """Stop waking ``waiter``."""
        with self._lock:
            self._waiters.discard(waiter)

    def close(self) -> None:
        """Wake every reader so its stream can end."""
        self.closed = True
        with self._lock:
            waiters = list(self._waiters)
        for loop, flag in waiters:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(flag.set)
