"""The MQTT ingester: persistent session, QoS 1, batches acknowledged after commit.

* **Nothing lost**: the connection (:mod:`twin.iot.mqtt_link`, MQTT 5) uses a fixed client id, ``clean_start`` false
  and a Session Expiry Interval, so the broker keeps its subscription and queues readings while it is away; messages
  are acknowledged (PUBACK) only once their batch is committed, so a crash before the commit means the broker
  delivers them again.
* **Nothing twice**: redelivered readings hit the store's idempotent append (unique on sensor and timestamp) and the
  engine ignores readings that are not newer than what it has seen.
* **Keeping up**: the link reads the socket in bulk and hands over every message of a read at once; they go to an
  in-memory inbox; a parser thread takes up to ``batch_messages`` messages (or what arrived within
  ``batch_window_ms``) and parses them in bulk while ``committers`` threads store the batches before it side by side
  (on PostGIS each COPY runs in a server process of its own); then, one batch at a time and in arrival order, the
  engine evaluates a stored batch and its messages are acknowledged in one write.
  A large Receive Maximum lets the broker keep many messages in flight while a batch commits; a shared
  subscription (``TWIN_MQTT_SHARE_GROUP``) lets several ingesters split the load, at a cost (see the settings).
* **Subscribed means ready**: :meth:`MqttIngester.wait_connected` and ``status()["connected"]`` wait for the broker's
  SUBACK, not just the CONNACK.
* **Reconnects** with exponential backoff; acknowledgements are only sent on the connection the message came in on
  (a redelivery after a reconnect is acknowledged when it is committed again).

See ``docs/iot.md`` for the broker settings production needs (Mosquitto's defaults drop messages under load).
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from twin.iot import mqtt_wire as wire
from twin.iot.mqtt_link import MqttLink
from twin.iot.payload import Message, Parsed
from twin.iot.settings import MqttSettings

if TYPE_CHECKING:
    from twin.iot.service import IotRuntime

log = logging.getLogger("twin.iot.mqtt")

T = TypeVar("T")

#: Batches' worth of messages (or bytes) the inbox holds before the link stops reading from the broker.
INBOX_BATCHES = 4

#: (connection epoch, packet id, QoS, topic, payload, arrival on the monotonic clock)
Received = tuple[int, int, int, str, bytes, float]


class MqttIngester:
    """Subscribes to the readings topic and feeds committed batches through :meth:`IotRuntime.commit`."""

    def __init__(self, runtime: IotRuntime, settings: MqttSettings):
        self.runtime = runtime
        self.settings = settings
        self._inbox: deque[Received] = deque()
        self._inbox_bytes = 0
        inbox_lock = threading.Lock()
        self._wake = threading.Condition(inbox_lock)  # messages arrived (or a batch is full)
        self._room = threading.Condition(inbox_lock)  # the inbox has room again
        self._stopping = threading.Event()
        #: Set while the link is connected *and* the broker has granted the subscription.
        self.connected = threading.Event()
        self.last_error: str | None = None
        self.committed_messages = 0
        self._parser: threading.Thread | None = None
        self._committers: list[threading.Thread] = []
        #: Parsed batches (numbered in arrival order) waiting for a committer: one, parsed while others commit.
        self._parsed: queue.Queue[tuple[int, list[Received], Parsed]] = queue.Queue(maxsize=1)
        #: The number of the next batch to evaluate and acknowledge.
        self._turn = 0
        self._turn_changed = threading.Condition()
        self.link = MqttLink(settings, self)

    # -- what the link reports (on its network thread) --------------------------------------------------------

    def link_up(self, epoch: int, session_present: bool) -> None:
        """Connected (CONNACK); the link subscribes next."""

    def subscribed(self, epoch: int, reason_code: int) -> None:
        """The broker's SUBACK: ready if granted (and warn where only QoS 0 was granted)."""
        topic_filter = self.settings.topic_filter
        if reason_code >= 0x80:  # e.g. not authorised: stay "not connected" so the status says so
            self.last_error = f"subscription to {topic_filter} refused: {wire.reason_text(reason_code)}"
            log.error("MQTT %s", self.last_error)
            return
        if reason_code < 1:  # e.g. Mosquitto's max_qos 0: readings come, but the broker will not keep them for us
            self.last_error = (f"the broker granted {topic_filter} only QoS {reason_code}: readings it could not "
                               "deliver are lost (QoS 1 needed; check the broker's max_qos)")
            log.error("MQTT %s", self.last_error)
        self.connected.set()

    def received(self, epoch: int, publishes: list[wire.Publish]) -> None:
        """Messages of one read from the socket, into the inbox.

        While the inbox holds :data:`INBOX_BATCHES` batches' worth, this waits (and so does the link's reading: the
        rest stays with the broker). Mosquitto 2.0 stops holding to the Receive Maximum once acknowledgements flow
        (measured: each PUBACK let another window's worth through), so the window alone does not bound the inbox.
        """
        now = time.monotonic()
        items = [(epoch, mid, qos, topic, payload, now) for mid, qos, topic, payload in publishes]
        size = sum(len(item[4]) for item in items)
        most, most_bytes = INBOX_BATCHES * self.settings.batch_messages, INBOX_BATCHES * self.settings.batch_bytes
        with self._wake:
            while (len(self._inbox) >= most or self._inbox_bytes >= most_bytes) and not self._stopping.is_set():
                self._room.wait(0.5)
            was_empty = not self._inbox
            self._inbox.extend(items)
            self._inbox_bytes += size
            # the first message starts a batch's window (the parser then waits for it); a full batch closes it
            if was_empty or len(self._inbox) >= self.settings.batch_messages \
                    or self._inbox_bytes >= self.settings.batch_bytes:
                self._wake.notify()

    def link_down(self, epoch: int, reason: str) -> None:
        """The connection ended or could not be made (the link retries with backoff)."""
        self.connected.clear()
        if not self._stopping.is_set():
            self.last_error = reason
            log.warning("MQTT %s; reconnecting with backoff", reason)

    # -- start and stop ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect (retrying in the background until the broker answers); start the parser and the committers."""
        self.settings.address()  # a bad TWIN_MQTT_URL fails here, not on the network thread
        self._stopping.clear()
        self.link.start()
        self._turn = 0
        while not self._parsed.empty():  # a batch left from before a stop: the broker delivers it again
            self._parsed.get_nowait()
        self._parser = threading.Thread(target=self._parse_loop, name="twin-mqtt-parse", daemon=True)
        self._committers = [threading.Thread(target=self._commit_loop, name=f"twin-mqtt-commit-{i}", daemon=True)
                            for i in range(self.settings.committers)]
        for thread in (self._parser, *self._committers):
            thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Commit the batch in hand, then disconnect; what was not committed stays with the broker."""
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        for thread in (self._parser, *self._committers):
            if thread is not None:
                thread.join(timeout=timeout)
        self.link.stop()
        self.connected.clear()
        with self._wake:
            self._inbox.clear()
            self._inbox_bytes = 0

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """Block until the client is connected and subscribed (or ``timeout``)."""
        return self.connected.wait(timeout)

    # -- the parser and the committers ------------------------------------------------------------------------

    def _take(self) -> list[Received]:
        """The next batch: up to ``batch_messages`` messages or ``batch_bytes`` of payload, whichever comes first.

        Gateways' messages hold many readings, hence the byte cap. A batch closes ``batch_window_ms`` after its
        oldest message arrived; after a long commit that deadline may have passed already: the batch then goes at once.
        """
        window = self.settings.batch_window_ms / 1000
        most, most_bytes = self.settings.batch_messages, self.settings.batch_bytes
        with self._wake:
            while not self._inbox and not self._stopping.is_set():
                self._wake.wait(0.5)
            deadline = (self._inbox[0][5] if self._inbox else time.monotonic()) + window
            while len(self._inbox) < most and self._inbox_bytes < most_bytes and not self._stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._wake.wait(left)
            batch: list[Received] = []
            size = 0
            while self._inbox and len(batch) < most and (not batch or size + len(self._inbox[0][4]) <= most_bytes):
                item = self._inbox.popleft()
                size += len(item[4])
                batch.append(item)
            self._inbox_bytes -= size
            self._room.notify_all()
            return batch

    def _parse_loop(self) -> None:
        sequence = 0
        while not self._stopping.is_set():
            batch = self._take()
            if not batch:
                continue
            parsed = self._retrying("parse", batch, functools.partial(self._parse, batch))
            if parsed is None:
                return
            while True:  # wait for a committer; at stop they still take this one
                try:
                    self._parsed.put((sequence, batch, parsed), timeout=0.5)
                    sequence += 1
                    break
                except queue.Full:
                    if not any(t.is_alive() for t in self._committers):
                        return

    def _parse(self, batch: list[Received]) -> Parsed:
        timings = self.runtime.timings
        timings.record("wait", 1000 * (time.monotonic() - batch[0][5]))
        timings.record("batch", len(batch))
        started = time.perf_counter()
        parsed = self.runtime.parse_messages([Message(item[3], item[4]) for item in batch])
        timings.record("parse", 1000 * (time.perf_counter() - started))
        return parsed

    def _commit_loop(self) -> None:
        while True:
            try:
                sequence, batch, parsed = self._parsed.get(timeout=0.2)
            except queue.Empty:
                if self._stopping.is_set() and (self._parser is None or not self._parser.is_alive()):
                    return
                continue
            if not self._commit(sequence, batch, parsed):
                return

    def _retrying(self, what: str, batch: list[Received], run: Callable[[], T]) -> T | None:
        """``run()`` until it succeeds (backing off while the store is failing); ``None`` if stopped meanwhile."""
        delay = 0.1
        while True:
            try:
                return run()
            except Exception as err:  # the store is down or busy: keep the batch, do not acknowledge
                self.last_error = f"{what} failed: {err}"
                log.exception("MQTT batch of %d messages: %s failed; retrying in %.1f s", len(batch), what, delay)
                if self._stopping.wait(delay):
                    return None
                delay = min(delay * 2, 5.0)

    def _commit(self, sequence: int, batch: list[Received], parsed: Parsed) -> bool:
        """Store ``batch`` (beside the other committers), then in arrival order evaluate and acknowledge it.

        Every step retries while the store is failing. False if the ingester stopped first: the batch is then not
        acknowledged, and the broker delivers it again (its readings are stored once).
        """
        started = time.perf_counter()
        stored = self._retrying("store", batch, lambda: self.runtime.store_batch(parsed, received=len(batch)))
        if stored is None:
            return False
        stored_at = time.perf_counter()
        with self._turn_changed:
            while self._turn != sequence:
                if self._stopping.is_set():
                    return False
                self._turn_changed.wait(0.2)
        try:
            if self._retrying("evaluate", batch, lambda: self.runtime.evaluate(stored)) is None:
                return False
            epoch = self.link.epoch
            self.link.ack(epoch, [mid for msg_epoch, mid, qos, *_ in batch if msg_epoch == epoch and qos > 0])
            self.committed_messages += len(batch)
        finally:
            with self._turn_changed:
                self._turn += 1
                self._turn_changed.notify_all()
        timings = self.runtime.timings
        timings.record("turn", 1000 * (time.perf_counter() - stored_at))
        timings.record("commit", 1000 * (time.perf_counter() - started))
        return True

    def status(self) -> dict[str, Any]:
        """Connection state and counters, for ``GET /ingest/stats``."""
        return {"connected": self.connected.is_set(), "subscription": self.settings.topic_filter,
                "client_id": self.settings.client_id, "inbox": len(self._inbox),
                "committed_messages": self.committed_messages, "last_error": self.last_error}
