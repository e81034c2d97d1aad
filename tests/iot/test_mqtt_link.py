"""The ingester's MQTT link against real Mosquitto brokers: redelivery of what was not acknowledged, credentials,
a broker that stops answering, and the Receive Maximum with bulk acknowledgements."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

from tests.iot.conftest import PRODUCTION_BROKER, Broker, Publisher, wait_until
from twin.iot import mqtt_wire as wire
from twin.iot.mqtt_link import MqttLink
from twin.iot.settings import MqttSettings


class Recorder:
    """Link events, kept for the test to look at."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[tuple[int, wire.Publish]] = []
        self.subscriptions: list[tuple[int, int]] = []
        self.downs: list[str] = []

    def link_up(self, epoch: int, session_present: bool) -> None:
        pass

    def subscribed(self, epoch: int, reason_code: int) -> None:
        with self.lock:
            self.subscriptions.append((epoch, reason_code))

    def received(self, epoch: int, publishes: list[wire.Publish]) -> None:
        with self.lock:
            self.messages += [(epoch, p) for p in publishes]

    def link_down(self, epoch: int, reason: str) -> None:
        with self.lock:
            self.downs.append(reason)


def _settings(broker_url: str, prefix: str, **kw: object) -> MqttSettings:
    return MqttSettings(url=broker_url, client_id=f"link-{uuid.uuid4().hex[:8]}", topic_prefix=prefix,
                        reconnect_min_s=0.2, reconnect_max_s=1.0, **kw)  # type: ignore[arg-type]


def test_what_was_not_acknowledged_comes_again_on_the_next_connection(tmp_path: Path) -> None:
    broker = Broker(tmp_path, PRODUCTION_BROKER).start()
    prefix = f"r-{uuid.uuid4().hex[:6]}"
    events = Recorder()
    link = MqttLink(_settings(broker.url, prefix), events)
    try:
        link.start()
        wait_until(lambda: events.subscriptions, timeout=10)
        publisher = Publisher(broker.port, prefix)
        publisher.send_many([(publisher.topic(i), f'{{"n": {i}}}'.encode()) for i in range(3)])
        wait_until(lambda: len(events.messages) == 3)
        first_epoch = events.messages[0][0]
        assert link.ack(first_epoch, [events.messages[0][1][0]])  # the first is acknowledged, two are not
        time.sleep(0.5)
        broker.stop()  # the connection ends with two unacknowledged
        wait_until(lambda: events.downs, timeout=10)
        assert not link.ack(first_epoch, [m[1][0] for m in events.messages[1:]])  # too late: that link is gone
        broker.start()
        wait_until(lambda: len(events.messages) == 5, timeout=15)
        again = events.messages[3:]
        assert all(epoch > first_epoch for epoch, _ in again)
        assert sorted(p[3] for _, p in again) == [b'{"n": 1}', b'{"n": 2}']
        publisher.close()
    finally:
        link.stop()
        broker.stop()


def test_bad_credentials_are_reported_and_good_ones_connect(tmp_path: Path) -> None:
    passwords = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "ingest", "s3cret"], check=True)
    os.chmod(passwords, 0o600)
    broker = Broker(tmp_path, f"{PRODUCTION_BROKER}allow_anonymous false\npassword_file {passwords}\n").start()
    prefix = f"a-{uuid.uuid4().hex[:6]}"
    host = broker.url.removeprefix("mqtt://")
    try:
        refused = Recorder()
        link = MqttLink(_settings(f"mqtt://ingest:wrong@{host}", prefix), refused)
        link.start()
        wait_until(lambda: refused.downs, timeout=10)
        link.stop()
        assert "connect refused: 0x86 bad user name or password" in refused.downs[0] or \
            "connect refused: 0x87 not authorized" in refused.downs[0], refused.downs
        assert not refused.subscriptions
        accepted = Recorder()
        link = MqttLink(_settings(f"mqtt://ingest:s3cret@{host}", prefix), accepted)
        link.start()
        wait_until(lambda: accepted.subscriptions, timeout=10)
        link.stop()
        assert accepted.subscriptions[0][1] == 1 and not accepted.downs[:-1]
    finally:
        broker.stop()


def test_a_broker_that_stops_answering_is_left_and_found_again(tmp_path: Path) -> None:
    broker = Broker(tmp_path, PRODUCTION_BROKER).start()
    assert broker.process is not None
    events = Recorder()
    link = MqttLink(_settings(broker.url, f"k-{uuid.uuid4().hex[:6]}", keepalive_s=1), events)
    try:
        link.start()
        wait_until(lambda: events.subscriptions, timeout=10)
        time.sleep(3)  # idle for three keepalives: the pings keep the connection
        assert not events.downs
        os.kill(broker.process.pid, signal.SIGSTOP)  # alive, silent
        try:
            wait_until(lambda: events.downs, timeout=10)
            assert "nothing from the broker" in events.downs[0]
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
        wait_until(lambda: len(events.subscriptions) >= 2, timeout=15)
    finally:
        link.stop()
        broker.stop()


def test_the_receive_maximum_holds_the_first_window_and_bulk_acknowledgements_move_everything(tmp_path: Path) -> None:
    """The broker sends Receive Maximum messages, then waits for PUBACKs; bulk PUBACKs keep everything flowing.

    (Mosquitto 2.0.11 holds to the window only until acknowledgements flow: each PUBACK then lets about another
    window through, so the later windows are not asserted; the ingester bounds its inbox itself.)
    """
    broker = Broker(tmp_path, PRODUCTION_BROKER).start()
    prefix = f"m-{uuid.uuid4().hex[:6]}"
    events = Recorder()
    link = MqttLink(_settings(broker.url, prefix, receive_maximum=50), events)
    try:
        link.start()
        wait_until(lambda: events.subscriptions, timeout=10)
        publisher = Publisher(broker.port, prefix)
        publisher.send_many([(publisher.topic(i % 97), b"%d" % i) for i in range(5_000)])
        wait_until(lambda: len(events.messages) >= 50)
        time.sleep(0.5)
        assert len(events.messages) == 50  # the window the link asked for, and not one more unacknowledged
        acked, deadline = 0, time.monotonic() + 30
        while acked < 5_000 and time.monotonic() < deadline:
            with events.lock:
                fresh = events.messages[acked:]
            if fresh:
                assert link.ack(fresh[0][0], [p[0] for _, p in fresh])
                acked += len(fresh)
            time.sleep(0.01)
        publisher.close()
        assert sorted(int(p[3]) for _, p in events.messages) == list(range(5_000))
    finally:
        link.stop()
        broker.stop()


def test_messages_in_the_same_read_as_the_connack_are_delivered() -> None:
    """A broker resuming a session may send queued PUBLISHes right behind the CONNACK, in one TCP segment."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    publish = b"\x32\x0a" + b"\x00\x03a/b" + b"\x00\x05" + b"\x00" + b"hi"

    def broker() -> None:  # one connection: CONNACK (session present) and a queued PUBLISH in one write
        conn, _ = server.accept()
        with conn:
            conn.recv(4096)  # CONNECT
            conn.sendall(b"\x20\x03\x01\x00\x00" + publish)
            conn.recv(4096)  # SUBSCRIBE
            conn.sendall(b"\x90\x04\x00\x01\x00\x01")
            conn.settimeout(5)
            with contextlib.suppress(OSError):
                conn.recv(4096)  # until the link goes

    thread = threading.Thread(target=broker, daemon=True)
    thread.start()
    events = Recorder()
    link = MqttLink(_settings(f"mqtt://127.0.0.1:{port}", "a"), events)
    try:
        link.start()
        wait_until(lambda: events.subscriptions, timeout=10)
        assert [p for _, p in events.messages] == [(5, 1, "a/b", b"hi")]
        assert not events.downs
    finally:
        link.stop()
        server.close()
