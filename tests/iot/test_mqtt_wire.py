"""The MQTT 5 packets of the ingester's link, against byte strings written out from the specification."""

from __future__ import annotations

import pytest

from twin.iot import mqtt_wire as wire

# PUBLISH QoS 1, topic "a/b", packet id 7, properties: Payload Format Indicator 1 (3 bytes with their length), "hi"
PUBLISH_QOS1 = b"\x32\x0c" + b"\x00\x03a/b" + b"\x00\x07" + b"\x02\x01\x01" + b"hi"
# PUBLISH QoS 0 (no packet id), topic "t", no properties, empty payload
PUBLISH_QOS0 = b"\x30\x04" + b"\x00\x01t" + b"\x00"
SUBACK_QOS1 = b"\x90\x04" + b"\x00\x01" + b"\x00" + b"\x01"
PINGRESP = b"\xd0\x00"


def test_packets_split_anywhere_come_out_whole_and_in_order() -> None:
    big_payload = b"x" * 20_000  # a remaining length of three bytes
    body = b"\x00\x01t" + b"\x01\x02" + b"\x00" + big_payload
    big = b"\x32" + wire.varint(len(body)) + body
    stream = SUBACK_QOS1 + PUBLISH_QOS1 + PINGRESP + big + PUBLISH_QOS0
    expected = [(7, 1, "a/b", b"hi"), (258, 1, "t", big_payload), (0, 0, "t", b"")]

    whole = wire.PacketReader().feed(stream)
    assert whole[0] == expected
    assert [c.kind for c in whole[1]] == [wire.SUBACK, wire.PINGRESP]

    reader = wire.PacketReader()
    publishes, kinds = [], []
    for i in range(len(stream)):  # a byte at a time: every cut through a header, a length or a body
        got, controls = reader.feed(stream[i:i + 1])
        publishes += got
        kinds += [c.kind for c in controls]
    assert publishes == expected and kinds == [wire.SUBACK, wire.PINGRESP]
    assert not reader.buffer


@pytest.mark.parametrize(("stream", "complaint"), [
    (b"\x34\x05\x00\x01t\x00\x01", "QoS 2"),  # QoS 2 on a QoS 1 subscription
    (b"\x30\x03\x00\x09t", "overruns"),  # a topic longer than the packet
    (b"\x62\x02\x00\x01", "unexpected packet type 6"),  # PUBREL: this client never publishes QoS 2
    (b"\x30\xff\xff\xff\xff\x01", "longer than four bytes"),  # a remaining length of five bytes
    (b"\x30\x05\x00\x02\xff\xfe\x00", "malformed PUBLISH"),  # a topic that is not UTF-8
])
def test_malformed_packets_are_protocol_errors(stream: bytes, complaint: str) -> None:
    with pytest.raises(wire.ProtocolError, match=complaint):
        wire.PacketReader().feed(stream)


def test_pubacks_are_four_bytes_each_in_the_order_given() -> None:
    assert wire.pubacks([1, 65535, 258]) == b"\x40\x02\x00\x01" + b"\x40\x02\xff\xff" + b"\x40\x02\x01\x02"
    assert wire.pubacks([]) == b""


def test_connect_carries_the_session_and_the_credentials() -> None:
    packet = wire.connect("twin-ingest", keepalive_s=60, session_expiry_s=604_800, receive_maximum=4000,
                          username="u", password="p")
    properties = b"\x11" + (604_800).to_bytes(4, "big") + b"\x21" + (4000).to_bytes(2, "big")
    body = (b"\x00\x04MQTT" + b"\x05" + b"\xc0" + b"\x00\x3c" + bytes([len(properties)]) + properties
            + b"\x00\x0btwin-ingest" + b"\x00\x01u" + b"\x00\x01p")
    assert packet == b"\x10" + bytes([len(body)]) + body  # user name, password, clean start off
    assert wire.subscribe(1, "twin/sensors/+/readings") == (b"\x82\x1d\x00\x01\x00" + b"\x00\x17twin/sensors/+/readings"
                                                            + b"\x01")


def test_acknowledgements_and_disconnects_with_their_properties() -> None:
    # CONNACK: session present, success, Server Keep Alive 30 and a User Property
    props = b"\x13\x00\x1e" + b"\x26\x00\x01k\x00\x01v"
    assert wire.connack(b"\x01\x00" + bytes([len(props)]) + props) == (True, 0, {0x13: 30, 0x26: ("k", "v")})
    assert wire.connack(b"\x00\x87") == (False, 0x87, {})  # MQTT 3-style: no properties
    assert wire.suback(b"\x00\x01\x00\x80") == (1, [0x80], {})
    reason = b"\x1f\x00\x04bye!"
    assert wire.disconnect(b"\x8b" + bytes([len(reason)]) + reason) == (0x8B, {0x1F: "bye!"})
    assert wire.disconnect(b"") == (0, {})
    assert wire.reason_text(0x87) == "0x87 not authorized"
    with pytest.raises(wire.ProtocolError, match="unknown property"):
        wire.connack(b"\x00\x00\x02\x7f\x00")
