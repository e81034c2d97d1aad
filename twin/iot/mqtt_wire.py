"""MQTT 5 packets a subscribing ingester needs, encoded and decoded in bulk (OASIS MQTT Version 5.0).

The ingester's connection (:mod:`twin.iot.mqtt_link`) reads the socket in large chunks and hands them to
:class:`PacketReader`, which splits them into packets without a system call per packet; PUBLISH packets come out as
plain tuples, and PUBACKs for a committed batch are encoded together by :func:`pubacks` and written in one send.
Only what a QoS ≤ 1 subscriber meets is supported: CONNECT, CONNACK, SUBSCRIBE, SUBACK, PUBLISH, PUBACK, PINGREQ,
PINGRESP and DISCONNECT; anything else from the broker is a protocol error.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

CONNACK, PUBLISH, PUBACK, SUBACK, PINGRESP, DISCONNECT = 2, 3, 4, 9, 13, 14
PINGREQ_PACKET = b"\xc0\x00"
#: DISCONNECT, reason 0x00 (normal: the broker keeps the session).
DISCONNECT_PACKET = b"\xe0\x00"

#: Reason codes (MQTT 5, 2.4) by value, for messages; 0x80 and above are failures.
REASONS = {
    0x00: "success", 0x01: "granted QoS 1", 0x02: "granted QoS 2", 0x04: "disconnect with will message",
    0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error", 0x83: "implementation specific error",
    0x84: "unsupported protocol version", 0x85: "client identifier not valid", 0x86: "bad user name or password",
    0x87: "not authorized", 0x88: "server unavailable", 0x89: "server busy", 0x8A: "banned",
    0x8B: "server shutting down", 0x8C: "bad authentication method", 0x8D: "keep alive timeout",
    0x8E: "session taken over", 0x8F: "topic filter invalid", 0x90: "topic name invalid",
    0x93: "receive maximum exceeded", 0x95: "packet too large", 0x97: "quota exceeded",
    0x99: "payload format invalid", 0x9B: "QoS not supported", 0x9C: "use another server", 0x9D: "server moved",
    0x9E: "shared subscriptions not supported", 0x9F: "connection rate exceeded", 0xA0: "maximum connect time",
    0xA2: "wildcard subscriptions not supported",
}

# property identifier → kind: b byte, h two-byte integer, i four-byte integer, v variable byte integer,
# s UTF-8 string, d binary data, p UTF-8 string pair (MQTT 5, 2.2.2.2)
_PROPERTY_KINDS = {
    0x01: "b", 0x02: "i", 0x03: "s", 0x08: "s", 0x09: "d", 0x0B: "v", 0x11: "i", 0x12: "s", 0x13: "h", 0x15: "s",
    0x16: "d", 0x17: "b", 0x18: "i", 0x19: "b", 0x1A: "s", 0x1C: "s", 0x1F: "s", 0x21: "h", 0x22: "h", 0x23: "h",
    0x24: "b", 0x25: "b", 0x26: "p", 0x27: "i", 0x28: "b", 0x29: "b", 0x2A: "b",
}
SESSION_EXPIRY_INTERVAL, SERVER_KEEP_ALIVE, REASON_STRING, RECEIVE_MAXIMUM = 0x11, 0x13, 0x1F, 0x21

#: A received PUBLISH: (packet id, QoS, topic, payload); the packet id is 0 for QoS 0.
Publish = tuple[int, int, str, bytes]


class ProtocolError(Exception):
    """The broker sent something this client cannot accept; the connection is dropped and made again."""


def reason_text(code: int) -> str:
    """``0x87 not authorized`` and the like."""
    return f"0x{code:02X} {REASONS.get(code, 'unknown reason')}"


def varint(n: int) -> bytes:
    """MQTT's variable byte integer."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | 0x80 if n else digit)
        if not n:
            return bytes(out)


def utf8(text: str) -> bytes:
    """A UTF-8 string with its two-byte length."""
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + varint(len(body)) + body


def connect(client_id: str, *, keepalive_s: int, session_expiry_s: int, receive_maximum: int,
            username: str | None = None, password: str | None = None, clean_start: bool = False) -> bytes:
    """CONNECT with a Session Expiry Interval and a Receive Maximum."""
    flags = (0x80 if username is not None else 0) | (0x40 if password is not None else 0) | (0x02 if clean_start else 0)
    properties = (bytes([SESSION_EXPIRY_INTERVAL]) + struct.pack("!I", session_expiry_s)
                  + bytes([RECEIVE_MAXIMUM]) + struct.pack("!H", receive_maximum))
    body = utf8("MQTT") + bytes([5, flags]) + struct.pack("!H", keepalive_s) + varint(len(properties)) + properties
    body += utf8(client_id)
    if username is not None:
        body += utf8(username)
    if password is not None:
        body += utf8(password)
    return _packet(0x10, body)


def subscribe(packet_id: int, topic_filter: str, qos: int = 1) -> bytes:
    """SUBSCRIBE to one filter (no properties; options: the maximum QoS only)."""
    return _packet(0x82, struct.pack("!H", packet_id) + b"\x00" + utf8(topic_filter) + bytes([qos]))


def pubacks(packet_ids: Sequence[int]) -> bytes:
    """PUBACKs (reason 0x00, the two-byte short form) for ``packet_ids``, back to back."""
    return struct.pack(f"!{len(packet_ids)}I", *(0x40020000 | mid for mid in packet_ids))


def _read_varint(data: bytes | bytearray | memoryview, at: int) -> tuple[int, int]:
    """(value, position after it) of a variable byte integer at ``at``; raises IndexError if cut short."""
    value, shift = 0, 0
    for i in range(at, at + 4):
        byte = data[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i + 1
        shift += 7
    raise ProtocolError("a variable byte integer longer than four bytes")


def properties(data: bytes, at: int) -> tuple[dict[int, object], int]:
    """The properties at ``at`` (length first) as {identifier: value}, and the position after them."""
    length, at = _read_varint(data, at)
    end = at + length
    found: dict[int, object] = {}
    while at < end:
        ident, at = _read_varint(data, at)
        kind = _PROPERTY_KINDS.get(ident)
        value: object
        if kind == "b":
            value, at = data[at], at + 1
        elif kind == "h":
            value, at = struct.unpack_from("!H", data, at)[0], at + 2
        elif kind == "i":
            value, at = struct.unpack_from("!I", data, at)[0], at + 4
        elif kind == "v":
            value, at = _read_varint(data, at)
        elif kind in ("s", "d"):
            size = struct.unpack_from("!H", data, at)[0]
            raw = bytes(data[at + 2:at + 2 + size])
            value, at = (raw.decode(errors="replace") if kind == "s" else raw), at + 2 + size
        elif kind == "p":
            pair = []
            for _ in range(2):
                size = struct.unpack_from("!H", data, at)[0]
                pair.append(bytes(data[at + 2:at + 2 + size]).decode(errors="replace"))
                at += 2 + size
            value = tuple(pair)
        else:
            raise ProtocolError(f"unknown property 0x{ident:02X}")
        found[ident] = value
    if at != end:
        raise ProtocolError("properties overrun their length")
    return found, end


@dataclass
class Control:
    """A packet other than PUBLISH: its type, flags and body (fixed header removed)."""

    kind: int
    flags: int
    body: bytes = field(repr=False)


@dataclass
class PacketReader:
    """Splits the byte stream from the broker into packets; keeps an incomplete tail for the next chunk."""

    buffer: bytearray = field(default_factory=bytearray)

    def feed(self, chunk: bytes) -> tuple[list[Publish], list[Control]]:
        """Add ``chunk``; return the PUBLISH packets and the other packets it completed, each in arrival order."""
        buf = self.buffer
        buf += chunk
        publishes: list[Publish] = []
        controls: list[Control] = []
        at, size = 0, len(buf)
        while size - at >= 2:
            first = buf[at]
            try:
                length, start = _read_varint(buf, at + 1)
            except IndexError:
                break
            end = start + length
            if end > size:
                break
            kind = first >> 4
            if kind == PUBLISH:
                try:
                    publishes.append(_publish(buf, first, start, end))
                except (IndexError, UnicodeDecodeError) as err:
                    raise ProtocolError(f"a malformed PUBLISH: {err}") from err
            elif kind in (CONNACK, PUBACK, SUBACK, PINGRESP, DISCONNECT):
                controls.append(Control(kind, first & 0x0F, bytes(buf[start:end])))
            else:
                raise ProtocolError(f"unexpected packet type {kind} from the broker")
            at = end
        del buf[:at]
        return publishes, controls


def _publish(buf: bytearray, first: int, start: int, end: int) -> Publish:
    qos = (first >> 1) & 0x03
    if qos > 1:
        raise ProtocolError(f"a PUBLISH with QoS {qos} on a subscription granted at most QoS 1")
    topic_end = start + 2 + (buf[start] << 8 | buf[start + 1])
    if topic_end > end:
        raise ProtocolError("a PUBLISH whose topic overruns the packet")
    topic = buf[start + 2:topic_end].decode()
    at = topic_end
    packet_id = 0
    if qos:
        packet_id, at = buf[at] << 8 | buf[at + 1], at + 2
    length, at = _read_varint(buf, at)  # the PUBLISH's properties: nothing here needs them
    at += length
    if at > end:
        raise ProtocolError("a PUBLISH whose header overruns the packet")
    return packet_id, qos, topic, bytes(buf[at:end])


def connack(body: bytes) -> tuple[bool, int, dict[int, object]]:
    """(session present, reason code, properties) of a CONNACK."""
    if len(body) < 2:
        raise ProtocolError("a CONNACK shorter than two bytes")
    props, _ = properties(body, 2) if len(body) > 2 else ({}, 2)
    return bool(body[0] & 0x01), body[1], props


def suback(body: bytes) -> tuple[int, list[int], dict[int, object]]:
    """(packet id, reason codes, properties) of a SUBACK."""
    packet_id = struct.unpack_from("!H", body, 0)[0]
    props, at = properties(body, 2)
    return packet_id, list(body[at:]), props


def disconnect(body: bytes) -> tuple[int, dict[int, object]]:
    """(reason code, properties) of a DISCONNECT from the broker (no body: 0x00)."""
    if not body:
        return 0, {}
    props, _ = properties(body, 1) if len(body) > 1 else ({}, 1)
    return body[0], props
