"""A real Mosquitto per test session (production settings, on a free port), a live twin with the MQTT ingester
running, API keys, an MQTT publisher and a Server-Sent-Events reader over a socket.

The twin's store is the sample on both backends (``iot_store`` is parametrized): a private copy of the GeoPackage,
or a PostGIS database of its own (``pytest.mark.postgis``) loaded with the sample once per session, whose tables the
pipeline writes (sensors, alarms, dead letters, API keys, new readings) are put back before each test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest
from fastapi import FastAPI

from api.main import create_app
from tests.api.conftest import LiveServer
from twin.auth import create_key
from twin.iot import IotRuntime, IotSettings, MqttSettings, RuleSettings
from twin.iot.settings import MOSQUITTO_PRODUCTION
from twin.samplebuild import copy_sample
from twin.settings import Settings
from twin.store.base import FeatureQuery, Filter, Op, Store
from twin.store.geopackage import GeoPackageStore

#: The broker settings docs/iot.md asks production to use (the listener and paths are added per test).
PRODUCTION_BROKER = MOSQUITTO_PRODUCTION


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Broker:
    """A mosquitto process on a free port with the given settings; ``restart`` keeps its persisted sessions."""

    def __init__(self, directory: Path, settings: str):
        self.directory = directory
        self.port = free_port()
        self.config = directory / "mosquitto.conf"
        user = "user root\n" if os.geteuid() == 0 else ""
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{user}"
                               f"persistence_location {directory}/\n{settings}")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Broker:
        self.process = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """Mosquitto with the production settings of docs/iot.md."""
    b = Broker(tmp_path_factory.mktemp("mosquitto"), PRODUCTION_BROKER).start()
    yield b
    b.stop()


class Publisher:
    """A device-side MQTT client publishing QoS 1 and waiting for each PUBACK."""

    def __init__(self, url_port: int, prefix: str):
        self.prefix = prefix
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:10]}",
                                  protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", url_port)
        self.client.loop_start()

    def topic(self, sensor: int | str) -> str:
        return f"{self.prefix}/sensors/{sensor}/readings"

    def send(self, sensor: int | str, payload: Any, *, raw: bool = False) -> None:
        body = payload if raw else orjson.dumps(payload)
        self.client.publish(self.topic(sensor), body, qos=1).wait_for_publish(10)

    def send_many(self, items: list[tuple[str, bytes]]) -> None:
        infos = [self.client.publish(topic, body, qos=1) for topic, body in items]
        for info in infos:
            info.wait_for_publish(30)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# -- the store, on both backends ---------------------------------------------------------------------------------

#: Tables the live pipeline writes, restored from the snapshot before each PostGIS test (readings: new rows deleted).
WRITTEN = ("sensors", "alarms", "dead_letters", "api_keys")
SNAPSHOT = "iot_snapshot"


@dataclass(frozen=True)
class PgSample:
    """A PostGIS database holding the sample, and the highest readings id the sample has."""

    url: str
    raster_dir: Path
    readings_max_id: int


def _admin(url: str) -> Any:
    import sqlalchemy as sa

    from twin.store.pg_engine import driver_url

    admin = sa.make_url(driver_url(url)).set(database="postgres")
    return sa.create_engine(admin, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_sample(sample_path: Path) -> Iterator[PgSample]:
    """A database of its own on the test server (``TWIN_TEST_DATABASE_URL``), migrated and loaded with the sample
    (every layer through ``replace_layer``), with a snapshot of the tables the pipeline writes; dropped at the end."""
    import sqlalchemy as sa

    from tests.conftest import postgis_url
    from twin.migrations import upgrade
    from twin.store.pg_engine import driver_url
    from twin.store.postgis import PostGISStore
    from twin.transfer import copy_twin

    base = postgis_url()  # skips (and so fails a run requiring PostGIS) without a database
    name = f"twin_iot_{uuid.uuid4().hex[:10]}"
    admin = _admin(base)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(driver_url(base)).set(database=name).render_as_string(hide_password=False)
    try:
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
        upgrade(url)
        source, target = GeoPackageStore(sample_path, readonly=True), PostGISStore(url, raster_dir=sample_path.parent)
        try:
            copy_twin(source, target)
        finally:
            source.close()
            target.close()
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{SNAPSHOT}"'))
            for table in WRITTEN:
                conn.execute(sa.text(f'CREATE TABLE "{SNAPSHOT}"."{table}" AS SELECT * FROM "{table}"'))
            top = conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM readings")).scalar_one()
        engine.dispose()
        yield PgSample(url, sample_path.parent, int(top))
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _pg_restore(sample: PgSample) -> None:
    import sqlalchemy as sa

    statements = [f"DELETE FROM readings WHERE id > {sample.readings_max_id}"]
    for table in WRITTEN:
        statements += [f'DELETE FROM "{table}"', f'INSERT INTO "{table}" SELECT * FROM "{SNAPSHOT}"."{table}"',
                       f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                       f'coalesce((SELECT max(id) FROM "{table}"), 0) + 1, false)']
    engine = sa.create_engine(sample.url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("; ".join(statements))
    finally:
        engine.dispose()


@dataclass(frozen=True)
class TwinStore:
    """A store holding the sample for one test, and where it is (a GeoPackage path or a database URL)."""

    store: Store
    location: str


@pytest.fixture(params=["geopackage", pytest.param("postgis", marks=pytest.mark.postgis)])
def iot_store(request: pytest.FixtureRequest, tmp_path: Path, sample_path: Path) -> Iterator[TwinStore]:
    """The sample, writable, on each backend: a private GeoPackage copy, or the session's PostGIS sample restored."""
    if request.param == "geopackage":
        copy_sample(sample_path, tmp_path)
        path = tmp_path / sample_path.name
        opened: Store = GeoPackageStore(path)
        location = str(path)
    else:
        from twin.store.postgis import PostGISStore

        sample: PgSample = request.getfixturevalue("pg_sample")
        _pg_restore(sample)
        opened, location = PostGISStore(sample.url, raster_dir=sample.raster_dir), sample.url
    yield TwinStore(opened, location)
    opened.close()


@dataclass
class Live:
    """A running twin with the ingester: its URL, store, runtime, keys and settings."""

    url: str
    app: FastAPI
    store: Store
    settings: IotSettings
    keys: dict[str, str]
    publisher: Publisher
    pick: dict[str, int] = field(default_factory=dict)

    @property
    def runtime(self) -> IotRuntime:
        runtime: IotRuntime = self.app.state.iot
        return runtime

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def readings_of(self, sensor_id: int) -> int:
        return self.store.count("readings", FeatureQuery(filters=(Filter("sensor_id", Op.EQ, sensor_id),)))


def wait_until(check: Callable[[], Any], timeout: float = 15.0, every: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value {value!r})")
        time.sleep(every)


def quiet_sensors(store: Store) -> dict[str, int]:
    """Online sensors of each type on floors where no sensor is in alarm (so a breach starts a fresh story)."""
    sensors = store.query("sensors", FeatureQuery(properties=("type", "building_id", "level_id", "status")))
    hot = sensors[sensors["status"] != "online"][["building_id", "level_id"]].drop_duplicates()
    calm = sensors.merge(hot, on=["building_id", "level_id"], how="left", indicator=True)
    calm.index = sensors.index
    calm = calm[(calm["_merge"] == "left_only") & (calm["status"] == "online")]
    picks = {}
    for kind in ("smoke", "heat", "hydrant_pressure", "residual_current", "gas"):
        picks[kind] = int(calm[calm["type"] == kind].index[0])
    smoke = calm[calm["type"] == "smoke"]
    floor = smoke.groupby(["building_id", "level_id"]).filter(lambda g: len(g) >= 2).iloc[:2]
    picks["smoke_a"], picks["smoke_b"] = (int(i) for i in floor.index)
    return picks


@pytest.fixture
def live(broker: Broker, iot_store: TwinStore) -> Iterator[Live]:
    """The twin over the sample (each backend), ingesting from the session's broker under a unique topic prefix."""
    run = uuid.uuid4().hex[:10]
    prefix = f"t-{run}/twin"
    settings = IotSettings(
        mqtt=MqttSettings(url=broker.url, client_id=f"twin-ingest-{run}", topic_prefix=prefix,
                          batch_window_ms=20, reconnect_min_s=1, reconnect_max_s=2),
        rules=RuleSettings(state_event_min_s=0, confirm_window_s=180),
        tick_s=0.5, stream_ping_s=0.3, state_values_every_s=0,
    )
    store = iot_store.store
    keys = {role: create_key(store, role, f"test {role}")[1] for role in ("device", "operator", "inspector")}
    picks = quiet_sensors(store)
    app = create_app(Settings(), store=store, iot=settings)
    publisher = Publisher(broker.port, prefix)
    with LiveServer(app) as server:
        runtime: IotRuntime = app.state.iot
        assert runtime.ingester is not None and runtime.ingester.wait_connected(10)
        time.sleep(0.2)  # the SUBACK
        yield Live(server.url, app, store, settings, keys, publisher, picks)
    publisher.close()


class SseReader:
    """Reads ``GET /alarms/stream`` over a real socket in a thread; ``events`` fills as frames arrive."""

    def __init__(self, url: str, headers: dict[str, str], params: dict[str, str] | None = None):
        self.events: list[dict[str, Any]] = []
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, headers, params or {}), daemon=True)
        self._thread.start()
        assert self.connected.wait(10), "the stream did not open"

    def _run(self, url: str, headers: dict[str, str], params: dict[str, str]) -> None:
        with httpx.Client(timeout=httpx.Timeout(10, read=5)) as client, \
                client.stream("GET", f"{url}/alarms/stream", headers=headers, params=params) as response:
            frame: dict[str, Any] = {}
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith(": connected"):
                    self.connected.set()
                elif line == "":
                    if "data" in frame:
                        self.events.append(frame)
                    frame = {}
                elif line.startswith(("id:", "event:", "data:")):
                    name, _, value = line.partition(":")
                    frame[name] = value.strip()
                    if name == "data":
                        frame["json"] = orjson.loads(value)

    def wait_for(self, check: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> dict[str, Any]:
        found: dict[str, Any] = wait_until(lambda: next((e for e in self.events if check(e)), None), timeout)
        return found

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
