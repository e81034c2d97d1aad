"""The ingester's MQTT 5 connection: one network thread that connects, subscribes, reads in bulk and reconnects.

Field devices send one small message each; through a general-purpose client every message costs several system
calls (paho reads a packet's first byte, its length and its body separately, and queues each PUBACK on its own). This
link reads up to :data:`READ_SIZE` bytes at a time, splits them into packets in one pass, and hands every PUBLISH of
a read to :class:`LinkEvents` at once; PUBACKs of a committed batch go out in one write. Everything else a
subscriber needs is here: persistent session (``clean_start`` false, Session Expiry Interval), Receive Maximum,
keepalive pings, TLS, user name and password, and reconnecting with exponential backoff.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from twin.iot import mqtt_wire as wire
from twin.iot.settings import MqttSettings

log = logging.getLogger("twin.iot.mqtt")

#: Bytes read from the socket at once.
READ_SIZE = 1 << 18
#: The packet id of the link's one SUBSCRIBE.
SUBSCRIBE_ID = 1


class LinkEvents(Protocol):
    """What the link tells its owner; called on the network thread."""

    def link_up(self, epoch: int, session_present: bool) -> None:
        """The broker accepted connection ``epoch`` (CONNACK); the link subscribes next."""

    def subscribed(self, epoch: int, reason_code: int) -> None:
        """The broker's SUBACK: the granted QoS, or a failure reason (0x80 and above)."""

    def received(self, epoch: int, publishes: list[wire.Publish]) -> None:
        """PUBLISH packets of one read from the socket, in arrival order."""

    def link_down(self, epoch: int, reason: str) -> None:
        """The connection ended, or could not be made; the link tries again after a backoff."""


#: PUBLISH packets and other packets split from one read.
_Packets = tuple[list[wire.Publish], list[wire.Control]]


class _Closed(Exception):
    """The connection ended (the reason is the message)."""


class MqttLink:
    """Keeps one subscribing connection to the broker up until :meth:`stop`.

    Each connection gets a new *epoch*; :meth:`ack` only acknowledges messages of the connection that is up (after a
    reconnect the broker sends what was not acknowledged again).
    """

    def __init__(self, settings: MqttSettings, events: LinkEvents):
        self.settings = settings
        self.events = events
        self.epoch = 0
        self._stopping = threading.Event()
        #: (epoch, bytes) to write: only those of the connection that is up go out (None: whichever is up)
        self._outgoing: list[tuple[int | None, bytes]] = []
        self._out_lock = threading.Lock()
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    # -- the owner's side ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retrying with backoff until the broker answers)."""
        self._stopping.clear()
        with self._out_lock:
            self._outgoing.clear()
        self._thread = threading.Thread(target=self._run, name="twin-mqtt-link", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect normally (the broker keeps the session and queues for it) and end the network thread."""
        self._stopping.set()
        self._send_soon(None, wire.DISCONNECT_PACKET)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def ack(self, epoch: int, packet_ids: Sequence[int]) -> bool:
        """Acknowledge ``packet_ids`` received on connection ``epoch``; False (and nothing sent) if it is gone."""
        if epoch != self.epoch or self._sock is None or not packet_ids:
            return False
        self._send_soon(epoch, wire.pubacks(packet_ids))
        return True

    def _send_soon(self, epoch: int | None, data: bytes) -> None:
        with self._out_lock:
            first = not self._outgoing
            self._outgoing.append((epoch, data))
        if first:
            with contextlib.suppress(BlockingIOError):  # a full wake-up pipe: the thread is awake already
                self._wake_write.send(b"\x00")

    # -- the network thread --------------------------------------------------------------------------------------

    def _run(self) -> None:
        delay = self.settings.reconnect_min_s
        while not self._stopping.is_set():
            try:
                sock, keepalive, reader, after_connack = self._open()
            except (OSError, wire.ProtocolError, _Closed) as err:
                self.events.link_down(self.epoch, f"connect failed: {err}")
                if self._stopping.wait(delay):
                    break
                delay = min(delay * 2, self.settings.reconnect_max_s)
                continue
            delay = self.settings.reconnect_min_s
            reason = "stopped"
            try:
                self._serve(sock, keepalive, reader, after_connack)
            except (OSError, wire.ProtocolError, _Closed) as err:
                reason = str(err) or type(err).__name__
            finally:
                self._sock = None
                self.epoch += 1  # acknowledgements of what came before belong to a closed connection
                sock.close()
            self.events.link_down(self.epoch, reason)
            if not self._stopping.is_set():
                self._stopping.wait(delay)

    def _open(self) -> tuple[socket.socket, float, wire.PacketReader, _Packets]:
        """TCP (and TLS), CONNECT, CONNACK; then the socket, the keepalive the broker wants, and the reader.

        The reader comes with the packets that arrived in the CONNACK's read: a session's queued messages may follow
        the CONNACK at once.
        """
        address = self.settings.address()
        sock = socket.create_connection((address.host, address.port), timeout=10)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if address.tls:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=address.host)
            sock.sendall(wire.connect(self.settings.client_id, keepalive_s=self.settings.keepalive_s,
                                      session_expiry_s=self.settings.session_expiry_s,
                                      receive_maximum=self.settings.receive_maximum,
                                      username=address.username, password=address.password))
            reader = wire.PacketReader()
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    raise _Closed("the broker closed the connection before its CONNACK")
                publishes, controls = reader.feed(chunk)
                if controls:
                    break
            if controls[0].kind != wire.CONNACK:
                raise wire.ProtocolError("the broker's first packet was not a CONNACK")
            session_present, code, props = wire.connack(controls[0].body)
            if code >= 0x80:
                detail = props.get(wire.REASON_STRING)
                raise _Closed(f"connect refused: {wire.reason_text(code)}" + (f" ({detail})" if detail else ""))
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        self._sock = sock
        keepalive = float(props.get(wire.SERVER_KEEP_ALIVE, self.settings.keepalive_s))  # type: ignore[arg-type]
        log.info("MQTT connected (session present: %s); subscribing to %s", session_present,
                 self.settings.topic_filter)
        self.events.link_up(self.epoch, session_present)
        return sock, keepalive, reader, (publishes, controls[1:])

    def _serve(self, sock: socket.socket, keepalive: float, reader: wire.PacketReader, first: _Packets) -> None:
        """Subscribe, then read, ping and write until the connection ends."""
        epoch = self.epoch
        sock.sendall(wire.subscribe(SUBSCRIBE_ID, self.settings.topic_filter))
        last_sent = last_heard = time.monotonic()
        selector = selectors.DefaultSelector()
        selector.register(sock, selectors.EVENT_READ, "broker")
        selector.register(self._wake_read, selectors.EVENT_READ, "wake")
        try:
            self._dispatch(epoch, *first)
            chunk = b""
            while True:
                if chunk:
                    last_heard = time.monotonic()
                    self._dispatch(epoch, *reader.feed(chunk))
                chunk = b""
                if self._flush(sock, epoch):
                    last_sent = time.monotonic()
                if self._stopping.is_set():
                    return
                now = time.monotonic()
                if keepalive and now - last_sent >= keepalive:
                    sock.sendall(wire.PINGREQ_PACKET)
                    last_sent = now
                if keepalive and now - last_heard > 2 * keepalive:
                    raise _Closed(f"nothing from the broker for {now - last_heard:.0f} s (keepalive {keepalive:g} s)")
                wait = max(0.05, min(keepalive - (now - last_sent), 2 * keepalive - (now - last_heard))) \
                    if keepalive else 1.0
                for key, _ in selector.select(wait):
                    if key.data == "wake":
                        with contextlib.suppress(BlockingIOError):
                            while self._wake_read.recv(4096):
                                pass
                    else:
                        chunk = sock.recv(READ_SIZE)
                        if not chunk:
                            raise _Closed("the broker closed the connection")
                        while isinstance(sock, ssl.SSLSocket) and sock.pending():
                            chunk += sock.recv(READ_SIZE)
        finally:
            selector.close()

    def _flush(self, sock: socket.socket, epoch: int) -> bool:
        """Write what other threads queued for this connection (acknowledgements, DISCONNECT); True if any.

        Acknowledgements queued for an earlier connection are dropped: their packet ids mean other messages now.
        """
        with self._out_lock:
            queued, self._outgoing = self._outgoing, []
        data = b"".join(chunk for owner, chunk in queued if owner is None or owner == epoch)
        if data:
            sock.sendall(data)
        return bool(data)

    def _dispatch(self, epoch: int, publishes: list[wire.Publish], controls: list[wire.Control]) -> None:
        if publishes:
            self.events.received(epoch, publishes)
        for packet in controls:
            if packet.kind == wire.SUBACK:
                packet_id, codes, _props = wire.suback(packet.body)
                if packet_id == SUBSCRIBE_ID and codes:
                    self.events.subscribed(epoch, codes[0])
            elif packet.kind == wire.DISCONNECT:
                code, props = wire.disconnect(packet.body)
                detail = props.get(wire.REASON_STRING)
                raise _Closed(f"the broker disconnected: {wire.reason_text(code)}" + (f" ({detail})" if detail else ""))
            elif packet.kind == wire.CONNACK:
                raise wire.ProtocolError("a second CONNACK")
            # PINGRESP, and PUBACKs (never expected: we publish nothing) only show the broker is there
