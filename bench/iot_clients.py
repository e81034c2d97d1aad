"""The processes and clients of the IoT bench: a Mosquitto with production settings, the twin, publishers that play
the sensors, a bare subscriber that only counts (on the twin's own MQTT link, or paho), and an SSE client timing
alarm events."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import free_port
from bench.mqtt_raw import RawPublisher
from twin.iot.settings import MOSQUITTO_PRODUCTION

PREFIX = "bench"


# -- processes ------------------------------------------------------------------------------------------------


def start_broker(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = workdir / "mosquitto.conf"
    user = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n{user}persistence_location {workdir}/\n"
                    + MOSQUITTO_PRODUCTION)
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, port


def start_twin(location: str, broker_port: int, http_port: int, client_id: str) -> subprocess.Popen[bytes]:
    """The twin with its MQTT ingester; the same ``client_id`` on a restart takes up the same broker session."""
    where = {"TWIN_DATABASE_URL": location} if "://" in location else {"TWIN_GPKG_PATH": location}
    env = {**os.environ, **where, "TWIN_MQTT_URL": f"mqtt://127.0.0.1:{broker_port}",
           "TWIN_MQTT_CLIENT_ID": client_id, "TWIN_MQTT_TOPIC_PREFIX": PREFIX,
           "TWIN_IOT_STREAM_PING_S": "1",
           # the phases pause between them (drains, floods): that is not sensors going offline
           "TWIN_ALARM_OFFLINE_AFTER_INTERVALS": "1000"}
    return subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host",
                             "127.0.0.1", "--port", str(http_port), "--log-level", "warning"], env=env,
                            cwd=Path(__file__).resolve().parent.parent)


def counter_process(port: int, client_id: str, messages: Any, readings: Any, ready: Any, stop: Any,
                    kind: str = "link") -> None:
    """The bare subscriber: QoS 1, persistent session ``client_id``, counts messages and readings, nothing else.

    ``kind`` "link": the twin's own MQTT link (``twin/iot/mqtt_link.py``), acknowledging each read at once — the
    ceiling of the twin's receive path; "paho": a paho-mqtt client, the usual general-purpose subscriber.
    """
    if kind == "paho":
        _count_with_paho(port, client_id, messages, readings, ready, stop)
        return
    from twin.iot.mqtt_link import MqttLink
    from twin.iot.settings import MqttSettings

    class Counting:
        def link_up(self, epoch: int, session_present: bool) -> None:
            pass

        def subscribed(self, epoch: int, reason_code: int) -> None:
            ready.set()

        def received(self, epoch: int, publishes: list[Any]) -> None:
            n = sum(p[3].count(b'"value"') for p in publishes)
            with messages.get_lock():
                messages.value += len(publishes)
                readings.value += n
            link.ack(epoch, [p[0] for p in publishes])

        def link_down(self, epoch: int, reason: str) -> None:
            pass

    link = MqttLink(MqttSettings(url=f"mqtt://127.0.0.1:{port}", client_id=client_id, topic_prefix=PREFIX,
                                 receive_maximum=65_535, session_expiry_s=3600), Counting())
    link.start()
    stop.wait()
    link.stop()


def _count_with_paho(port: int, client_id: str, messages: Any, readings: Any, ready: Any, stop: Any) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        n = msg.payload.count(b'"value"')
        with messages.get_lock():
            messages.value += 1
            readings.value += n

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.on_subscribe = lambda *_: ready.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 65535
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.subscribe(f"{PREFIX}/sensors/+/readings", qos=1)
    client.loop_start()
    stop.wait()
    client.disconnect()
    client.loop_stop()


class _Stamps:
    """RFC 3339 text of a time to the millisecond, the date and seconds part formatted once a second."""

    def __init__(self) -> None:
        self.second, self.head = -1, ""

    def __call__(self, at: float) -> str:
        ms = int(at * 1000)
        if ms // 1000 != self.second:
            self.second = ms // 1000
            self.head = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.second))
        return f"{self.head}.{ms % 1000:03d}Z"


def publisher_process(port: int, ids: np.ndarray, normal: np.ndarray, probes: list[int], rate: float,
                      duration: float, batch: int, probe_every: float, out: Any, flood: int = 0) -> None:
    """Publish at ``rate`` readings/s for ``duration`` s (``batch`` readings a message), or ``flood`` messages at once.

    Puts (messages, readings, {probe sensor: publish time}, seconds taken, CPU seconds used) on ``out``.
    """
    client = RawPublisher("127.0.0.1", port, f"bench-pub-{uuid.uuid4().hex[:6]}")
    rng = np.random.default_rng(os.getpid())
    order = rng.permutation(len(ids))
    topics = [f"{PREFIX}/sensors/{i}/readings" for i in ids.tolist()]
    values = normal.astype(float).tolist()
    stamp_of = _Stamps()
    cursor, sent_msgs, sent_readings, probe_times = 0, 0, 0, {}
    window = 30_000  # messages awaiting their PUBACK (MQTT packet ids are 16-bit: stay well below 65,535)
    cpu_before = time.process_time()
    started = time.time()
    next_probe = started + probe_every
    limit = flood if flood else None
    most = max(1, min(2_000, len(ids) // batch))  # messages a chunk
    stamped = 0.0
    while True:
        now = time.time()
        if limit is None and now - started >= duration:
            break
        due = limit if limit is not None else int((now - started) * rate / batch) - sent_msgs
        while due > 0:
            room = window - (sent_msgs - client.acked)
            if room <= 0:  # the broker pushes back: so do we (and the offer drops)
                time.sleep(0.001)
                continue
            # one stamp a chunk, a millisecond later than the last: a chunk holds each sensor at most once
            stamped = max(time.time(), stamped + 0.001)
            ts = stamp_of(stamped)
            chunk: list[tuple[str, bytes]] = []
            for _ in range(min(due, room, most)):
                if batch == 1:
                    k = order[cursor % len(order)]
                    cursor += 1
                    chunk.append((topics[k], orjson.dumps({"ts": ts, "value": values[k]})))
                    sent_readings += 1
                else:
                    ks = order[np.arange(cursor, cursor + batch) % len(order)]
                    cursor += batch
                    chunk.append((f"{PREFIX}/sensors/gw-{os.getpid()}/readings", orjson.dumps(
                        [{"sensor_id": int(ids[k]), "ts": ts, "value": float(normal[k])} for k in ks])))
                    sent_readings += batch
            sent = client.publish_many(chunk)
            sent_msgs += sent
            due -= sent
        if probes and time.time() >= next_probe and limit is None:
            sensor = probes.pop()
            at = time.time()
            probe_times[sensor] = at
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}Z"
            sent_msgs += client.publish_many([(f"{PREFIX}/sensors/{sensor}/readings",
                                               orjson.dumps({"ts": ts, "value": 480.0}))])
            sent_readings += 1
            next_probe += probe_every
        if limit is not None:
            break
        time.sleep(0.005)
    deadline = time.time() + 120
    while client.acked < sent_msgs and time.time() < deadline and client.error is None:
        time.sleep(0.01)
    took = time.time() - started
    if client.error or client.acked < sent_msgs:
        print(f"publisher: {sent_msgs - client.acked:,} messages not acknowledged ({client.error or 'timed out'})",
              flush=True)
    client.close()
    out.put((sent_msgs, sent_readings, probe_times, took, time.process_time() - cpu_before))


class Sse(threading.Thread):
    """Receive times of alarm events by sensor id."""

    def __init__(self, url: str, headers: dict[str, str]):
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.received: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():  # the twin restarts in the drain phase: reconnect
            try:
                self._listen()
            except httpx.HTTPError:
                time.sleep(0.5)

    def _listen(self) -> None:
        with httpx.Client(timeout=httpx.Timeout(10, read=30)) as client, \
                client.stream("GET", f"{self.url}/alarms/stream", headers=self.headers,
                              params={"type": "alarm"}) as response:
            for line in response.iter_lines():
                if self.stop.is_set():
                    return
                if line.startswith("data:"):
                    event = orjson.loads(line[5:])
                    if event.get("action") == "opened" and event.get("alarm_type") == "residual_current_high":
                        self.received.setdefault(int(event["sensor_id"]), time.time())
