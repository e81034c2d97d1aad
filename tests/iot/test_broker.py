"""The broker itself: Mosquitto's defaults lose queued QoS 1 messages, the documented settings do not; the ingester
reconnects after a broker restart; and the machine's own broker (127.0.0.1:1883) works end to end."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from api.main import create_app
from tests.api.conftest import LiveServer
from tests.iot.conftest import PRODUCTION_BROKER, Broker, Publisher, TwinStore, wait_until
from tests.iot.test_live import stamp
from twin.iot import IotRuntime, IotSettings, MqttSettings
from twin.settings import Settings
from twin.store.base import FeatureQuery, Filter, Op
from twin.store.geopackage import GeoPackageStore


class Counter:
    """A persistent-session QoS 1 subscriber that only counts."""

    def __init__(self, port: int, topic: str):
        self.count = 0
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"count-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.port, self.topic = port, topic

    def _on_message(self, *_: object) -> None:
        with self.lock:
            self.count += 1

    def connect(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", self.port, clean_start=False, properties=props)
        self.client.loop_start()
        self.client.subscribe(self.topic, qos=1)
        assert self.subscribed.wait(5)

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def queued_while_away(broker: Broker, n: int) -> int:
    """Messages a subscriber receives of ``n`` published while its persistent session was offline."""
    topic = f"q-{uuid.uuid4().hex[:8]}/sensors/1/readings"
    counter = Counter(broker.port, topic)
    counter.connect()
    counter.disconnect()
    publisher = Publisher(broker.port, "unused")
    publisher.send_many([(topic, b'{"ts": "2026-11-25T08:00:00Z", "value": 1}')] * n)
    publisher.close()
    counter.connect()
    last, still = -1, 0
    while still < 10:  # until nothing more arrives for a second
        time.sleep(0.1)
        still = still + 1 if counter.count == last else 0
        last = counter.count
    counter.disconnect()
    return counter.count


@pytest.mark.slow
def test_default_mosquitto_drops_queued_messages_and_the_documented_settings_do_not(tmp_path: Path) -> None:
    n = 3000
    (tmp_path / "default").mkdir()
    default = Broker(tmp_path / "default", "").start()  # Mosquitto's defaults
    try:
        lost_default = n - queued_while_away(default, n)
    finally:
        default.stop()
    (tmp_path / "production").mkdir()
    production = Broker(tmp_path / "production", PRODUCTION_BROKER).start()
    try:
        lost_production = n - queued_while_away(production, n)
    finally:
        production.stop()
    assert lost_default >= n - 1100  # max_queued_messages 1000 (+ the in-flight window) by default
    assert lost_production == 0


@pytest.mark.slow
def test_the_ingester_reconnects_after_the_broker_restarts(tmp_path: Path, iot_store: TwinStore) -> None:
    broker = Broker(tmp_path, PRODUCTION_BROKER).start()
    run = uuid.uuid4().hex[:8]
    settings = IotSettings(mqtt=MqttSettings(url=broker.url, client_id=f"restart-{run}", topic_prefix=f"r-{run}",
                                             batch_window_ms=20, reconnect_min_s=1, reconnect_max_s=2))
    store = iot_store.store
    app = create_app(Settings(), store=store, iot=settings)
    try:
        with LiveServer(app):
            runtime: IotRuntime = app.state.iot
            assert runtime.ingester.wait_connected(10)
            broker.stop()
            wait_until(lambda: not runtime.ingester.connected.is_set(), timeout=10)
            broker.start()
            assert runtime.ingester.wait_connected(15)
            publisher = Publisher(broker.port, f"r-{run}")
            publisher.send(7, {"ts": stamp(), "value": 0.5})
            publisher.close()
            wait_until(lambda: store.count("readings", FeatureQuery(
                filters=(Filter("sensor_id", Op.EQ, 7), Filter("ts", Op.GT, stamp(60))))) == 1)
    finally:
        broker.stop()


def _count_of(store: object, sensor: int, since: str) -> int:
    return store.count("readings", FeatureQuery(filters=(Filter("sensor_id", Op.EQ, sensor),  # type: ignore[attr-defined]
                                                         Filter("ts", Op.GT, since))))


@pytest.mark.slow
def test_readings_published_after_a_broker_restart_while_the_ingester_is_away_are_kept(
        tmp_path: Path, iot_store: TwinStore) -> None:
    broker = Broker(tmp_path, PRODUCTION_BROKER).start()
    run = uuid.uuid4().hex[:8]
    settings = IotSettings(mqtt=MqttSettings(url=broker.url, client_id=f"away-{run}", topic_prefix=f"a-{run}",
                                             batch_window_ms=20, reconnect_min_s=1, reconnect_max_s=2))
    assert settings.mqtt.share_group == "", "the default subscription is plain: the broker keeps it over a restart"
    store = iot_store.store
    since = stamp(60)
    try:
        first = create_app(Settings(), store=store, iot=settings)
        with LiveServer(first):
            assert first.state.iot.ingester.wait_connected(10)
        broker.stop()  # the ingester is away; its session (and subscription) is saved with the broker's state
        broker.start()
        publisher = Publisher(broker.port, f"a-{run}")
        for i in range(20):
            publisher.send(7, {"ts": stamp(20 - i), "value": 0.5})
        publisher.close()
        second = create_app(Settings(), store=store, iot=settings)
        with LiveServer(second):
            assert second.state.iot.ingester.wait_connected(10)
            wait_until(lambda: _count_of(store, 7, since) == 20)
    finally:
        broker.stop()


@pytest.mark.slow
def test_mosquitto_keeps_a_plain_subscription_over_its_restart_but_not_a_shared_one(tmp_path: Path) -> None:
    """The broker fact behind the default ``share_group = ""`` (docs/iot.md, "Several ingesters")."""
    broker = Broker(tmp_path, PRODUCTION_BROKER).start()
    try:
        counters = {kind: Counter(broker.port, f"{prefix}k-{kind}/#") for kind, prefix in
                    (("plain", ""), ("shared", "$share/g/"))}
        for counter in counters.values():
            counter.connect()
            counter.disconnect()
        broker.stop()
        broker.start()
        publisher = Publisher(broker.port, "unused")
        publisher.send_many([("k-plain/1", b"1"), ("k-shared/1", b"1")])
        publisher.close()
        for counter in counters.values():  # come back without subscribing: only the restored session delivers
            counter.client.reconnect()
            counter.client.loop_start()
        wait_until(lambda: counters["plain"].count == 1, timeout=10)
        time.sleep(0.5)  # the shared one had as long and more
        got = {kind: counter.count for kind, counter in counters.items()}
        for counter in counters.values():
            counter.disconnect()
    finally:
        broker.stop()
    assert got == {"plain": 1, "shared": 0}, got


def test_an_ingester_granted_less_than_qos_1_says_readings_can_be_lost(tmp_path: Path) -> None:
    broker = Broker(tmp_path, f"{PRODUCTION_BROKER}max_qos 0\n").start()  # a misconfigured broker
    run = uuid.uuid4().hex[:8]
    settings = IotSettings(mqtt=MqttSettings(url=broker.url, client_id=f"qos0-{run}", topic_prefix=f"n-{run}"))
    store = GeoPackageStore.create(tmp_path / "empty.gpkg")
    runtime = IotRuntime(store, settings)
    try:
        runtime.start()
        assert runtime.ingester.wait_connected(10)
        error = runtime.ingester.status()["last_error"]
        assert "QoS 0" in error and "lost" in error and f"n-{run}/sensors/+/readings" in error
    finally:
        runtime.stop()
        store.close()
        broker.stop()


def _system_broker_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=1).close()
        return True
    except OSError:
        return False


def test_the_machine_broker_on_1883_end_to_end(iot_store: TwinStore) -> None:
    assert _system_broker_up(), "Mosquitto should listen on 127.0.0.1:1883 on development and CI machines"
    run = uuid.uuid4().hex[:8]
    settings = IotSettings(mqtt=MqttSettings(url="mqtt://127.0.0.1:1883", client_id=f"sys-{run}",
                                             topic_prefix=f"s-{run}/twin", session_expiry_s=60, batch_window_ms=20))
    store = iot_store.store
    app = create_app(Settings(), store=store, iot=settings)
    with LiveServer(app):
        runtime: IotRuntime = app.state.iot
        assert runtime.ingester.wait_connected(10)
        time.sleep(0.2)
        publisher = Publisher(1883, f"s-{run}/twin")
        publisher.send(store.get("sensors", 17).iloc[0]["code"], {"ts": stamp(), "value": 0.5})  # by code
        publisher.close()
        wait_until(lambda: runtime.stats.stored == 1)
        assert runtime.stats.dead_letters == 0


def test_the_documented_broker_settings_are_the_ones_the_tests_run_with() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "iot.md").read_text(encoding="utf-8")
    documented = {line.split("#")[0].strip() for line in docs.splitlines()}
    missing = [line for line in PRODUCTION_BROKER.splitlines() if line.strip() and line.strip() not in documented]
    assert not missing, f"docs/iot.md lacks {missing}"
