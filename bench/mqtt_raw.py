"""A lean QoS 1 MQTT 3.1.1 publisher for the IoT bench: packets encoded by hand and written to the socket in bulk.

The bench's publishers play 270,000 sensors. Through paho each message costs the load generator tens of microseconds
of Python (a publish call, the network thread's packet, the PUBACK's callback): on two cores that is CPU taken from
the broker and the twin under test. Here a message is a few byte operations and a send covers every message due in
one tick; a reader thread counts PUBACKs (four bytes each in MQTT 3.1.1) so the caller can bound what is in flight.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from twin.iot.mqtt_wire import utf8, varint


class RawPublisher:
    """Publishes QoS 1 messages over one TCP connection (clean session, no keepalive) and counts their PUBACKs."""

    def __init__(self, host: str, port: int, client_id: str, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = utf8("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 0) + utf8(client_id)
        self.sock.sendall(b"\x10" + varint(len(body)) + body)
        connack = self._read_exactly(4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise ConnectionError(f"the broker refused the connection: CONNACK {connack.hex()}")
        self.sock.settimeout(None)
        self.acked = 0
        self.error: str | None = None
        self._next_id = 0
        self._reader = threading.Thread(target=self._count_acks, name="raw-mqtt-acks", daemon=True)
        self._reader.start()

    def _read_exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            data += chunk
        return data

    def _count_acks(self) -> None:
        pending = b""
        while True:
            try:
                chunk = self.sock.recv(1 << 16)
            except OSError:
                return
            if not chunk:
                return
            pending += chunk
            whole = len(pending) // 4 * 4
            # every packet the broker sends a QoS 1 publisher here is a PUBACK: 0x40 0x02 and the packet id
            if pending[0:whole:4].strip(b"\x40") or pending[1:whole:4].strip(b"\x02"):
                self.error = "the broker sent something other than PUBACKs"
                return
            self.acked += whole // 4
            pending = pending[whole:]

    def publish_many(self, messages: Iterable[tuple[str, bytes]]) -> int:
        """Send QoS 1 PUBLISH packets for (topic, payload) pairs in one write; returns how many."""
        out = bytearray()
        count = 0
        for topic, payload in messages:
            self._next_id = self._next_id % 65_535 + 1
            head = utf8(topic)
            out += b"\x32" + varint(len(head) + 2 + len(payload)) + head
            out += struct.pack("!H", self._next_id) + payload
            count += 1
        if out:
            self.sock.sendall(out)
        return count

    def close(self) -> None:
        """DISCONNECT, then close the socket."""
        try:
            self.sock.sendall(b"\xe0\x00")
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._reader.join(timeout=5)
