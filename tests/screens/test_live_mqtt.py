"""The district screen follows readings published over MQTT to a real Mosquitto: device → broker → the service's
ingester → alarm engine → the page's alarm stream → the building's colour, within two seconds."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.main import create_app
from tests.api.conftest import LiveServer
from tests.iot.conftest import PRODUCTION_BROKER, Broker, Publisher
from tests.screens.conftest import Screen, assert_recoloured_within_two_seconds
from twin.auth import create_key
from twin.iot import IotRuntime, IotSettings, MqttSettings, RuleSettings
from twin.samplebuild import copy_sample
from twin.settings import Settings
from twin.store.base import FeatureQuery, Filter, Op
from twin.store.geopackage import GeoPackageStore

pytestmark = pytest.mark.slow


@dataclass
class MqttTwin:
    """A live twin ingesting from its own broker, and a device-side publisher."""

    url: str
    store: GeoPackageStore
    keys: dict[str, str]
    publisher: Publisher


@pytest.fixture(scope="module")
def mqtt_twin(sample_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MqttTwin]:
    """Mosquitto (production settings) and the twin over a private sample copy with its MQTT ingester running."""
    folder = tmp_path_factory.mktemp("screens-mqtt")
    copy_sample(sample_path, folder)
    broker = Broker(tmp_path_factory.mktemp("screens-mosquitto"), PRODUCTION_BROKER).start()
    run = uuid.uuid4().hex[:10]
    prefix = f"s-{run}/twin"
    settings = IotSettings(  # through a shared subscription: that path, end to end (the live fixture's is plain)
        mqtt=MqttSettings(url=broker.url, client_id=f"twin-screen-{run}", topic_prefix=prefix, share_group="twin",
                          batch_window_ms=20, reconnect_min_s=1, reconnect_max_s=2),
        rules=RuleSettings(state_event_min_s=0), tick_s=0.5, stream_ping_s=0.3)
    store = GeoPackageStore(folder / sample_path.name)
    keys = {role: create_key(store, role, f"screen mqtt test ({role})")[1] for role in ("operator",)}
    app = create_app(Settings(), store=store, iot=settings)
    publisher = Publisher(broker.port, prefix)
    try:
        with LiveServer(app) as live:
            runtime: IotRuntime = app.state.iot
            assert runtime.ingester is not None and runtime.ingester.wait_connected(10), "the ingester did not connect"
            time.sleep(0.2)  # the SUBACK
            yield MqttTwin(live.url, store, keys, publisher)
    finally:
        publisher.close()
        store.close()
        broker.stop()


def test_a_reading_published_over_mqtt_recolours_its_building_within_two_seconds(
        mqtt_twin: MqttTwin, open_screen: Callable[[str], Screen]) -> None:
    screen = open_screen(f"{mqtt_twin.url}/#key={mqtt_twin.keys['operator']}")

    def publish(sensor: int, ts: str) -> str:
        sent = time.monotonic()
        mqtt_twin.publisher.send(sensor, {"ts": ts, "value": 9.5})  # QoS 1: returns on the broker's PUBACK
        return f"PUBACK after {time.monotonic() - sent:.2f} s"

    sensor = assert_recoloured_within_two_seconds(screen, mqtt_twin.store, publish, "district-mqtt-reading")
    # the reading went through the ingester into the store, and the alarm is listed on the page
    stored = mqtt_twin.store.count("readings", FeatureQuery(filters=(Filter("sensor_id", Op.EQ, sensor),)))
    assert stored >= 1
    assert "预警" in screen.js("document.getElementById('alarms').textContent")
    screen.assert_clean()
