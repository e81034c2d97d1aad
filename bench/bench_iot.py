"""Live IoT ingest: 270,000 simulated sensors through a real Mosquitto into the twin, beside a bare counting subscriber.

Run: python bench/bench_iot.py [--steady 120] [--burst 60] [--gateway 60] [--quick]

Everything runs on this machine (127.0.0.1) and stops by itself:

* a Mosquitto on a free port with the production settings of ``docs/iot.md``;
* the twin (``uvicorn api.main:create_app``) in its own process over a copy of a 270,000-sensor GeoPackage (built once
  into ``bench/out/iot/``), with the MQTT ingester (shared subscription, batches, ack after commit);
* a bare subscriber in its own process that only counts (QoS 1, persistent session): the ceiling;
* publisher processes that play the sensors: one reading a minute each (4,500 msg/s) for ``--steady`` seconds, then
  a 5× burst for ``--burst`` seconds, then a flood (as fast as the publishers go), then gateways batching 100 readings
  a message at the same reading rates for ``--gateway`` seconds;
* an SSE client on ``/alarms/stream``: about once a second a residual-current sensor reports 480 mA, and the time from
  its publish to its alarm event on the stream is the latency.

Printed per phase: messages and readings offered, readings/s the twin stored and the bare subscriber received, losses
(published − stored, published − counted), and p95 publish→alarm latency.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import OUT, free_port, summarize

SENSORS = 270_000
PREFIX = "bench"
BROKER_SETTINGS = """\
persistence true
autosave_interval 60
max_inflight_messages 0
max_queued_messages 1000000
max_queued_bytes 0
persistent_client_expiration 14d
"""


# -- processes ------------------------------------------------------------------------------------------------


def start_broker(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = workdir / "mosquitto.conf"
    user = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n{user}persistence_location {workdir}/\n"
                    + BROKER_SETTINGS)
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, port


def start_twin(gpkg: Path, broker_port: int, http_port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TWIN_GPKG_PATH": str(gpkg), "TWIN_MQTT_URL": f"mqtt://127.0.0.1:{broker_port}",
           "TWIN_MQTT_CLIENT_ID": f"bench-ingest-{uuid.uuid4().hex[:6]}", "TWIN_MQTT_TOPIC_PREFIX": PREFIX,
           "TWIN_IOT_STREAM_PING_S": "1",
           # the phases pause between them (drains, floods): that is not sensors going offline
           "TWIN_ALARM_OFFLINE_AFTER_INTERVALS": "1000"}
    return subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host",
                             "127.0.0.1", "--port", str(http_port), "--log-level", "warning"], env=env,
                            cwd=Path(__file__).resolve().parent.parent)


def counter_process(port: int, messages: Any, readings: Any, ready: Any, stop: Any) -> None:
    """The bare subscriber: QoS 1, persistent session, counts messages and readings, nothing else."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        n = msg.payload.count(b'"value"')
        with messages.get_lock():
            messages.value += 1
            readings.value += n

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-count-{uuid.uuid4().hex[:6]}",
                         protocol=mqtt.MQTTv5)
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


def publisher_process(port: int, ids: np.ndarray, normal: np.ndarray, probes: list[int], rate: float,
                      duration: float, batch: int, probe_every: float, out: Any, flood: int = 0) -> None:
    """Publish at ``rate`` readings/s for ``duration`` s (``batch`` readings a message), or ``flood`` messages at once.

    Puts (messages, readings, {probe sensor: publish time}, seconds taken) on ``out``.
    """
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}",
                         protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    acked = [0]

    def on_publish(*_: Any) -> None:
        acked[0] += 1

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    rng = np.random.default_rng(os.getpid())
    order = rng.permutation(len(ids))
    cursor, sent_msgs, sent_readings, probe_times = 0, 0, 0, {}
    window = 30_000  # messages awaiting their PUBACK (MQTT message ids are 16-bit: stay well below 65,535)
    started = time.time()
    next_probe = started + probe_every
    limit = flood if flood else None
    while True:
        now = time.time()
        if limit is None and now - started >= duration:
            break
        due = limit if limit is not None else int((now - started) * rate / batch) - sent_msgs
        for _ in range(max(due, 0)):
            while sent_msgs - acked[0] >= window:  # the broker pushes back: so do we (and the offer drops)
                time.sleep(0.001)
            at = time.time()  # per message: a sensor never reports twice in one millisecond
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}Z"
            if batch == 1:
                k = order[cursor % len(order)]
                cursor += 1
                topic = f"{PREFIX}/sensors/{ids[k]}/readings"
                body = orjson.dumps({"ts": ts, "value": float(normal[k])})
                sent_readings += 1
            else:
                ks = order[np.arange(cursor, cursor + batch) % len(order)]
                cursor += batch
                topic = f"{PREFIX}/sensors/gw-{os.getpid()}/readings"
                body = orjson.dumps([{"sensor_id": int(ids[k]), "ts": ts, "value": float(normal[k])} for k in ks])
                sent_readings += batch
            client.publish(topic, body, qos=1)
            sent_msgs += 1
        if probes and time.time() >= next_probe and limit is None:
            sensor = probes.pop()
            at = time.time()
            probe_times[sensor] = at
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}Z"
            client.publish(f"{PREFIX}/sensors/{sensor}/readings", orjson.dumps({"ts": ts, "value": 480.0}), qos=1)
            sent_msgs += 1
            sent_readings += 1
            next_probe += probe_every
        if limit is not None:
            break
        time.sleep(0.005)
    deadline = time.time() + 120
    while acked[0] < sent_msgs and time.time() < deadline:
        time.sleep(0.01)
    took = time.time() - started
    client.disconnect()
    client.loop_stop()
    out.put((sent_msgs, sent_readings, probe_times, took))


# -- the bench ------------------------------------------------------------------------------------------------


class Sse(threading.Thread):
    """Receive times of alarm events by sensor id."""

    def __init__(self, url: str, headers: dict[str, str]):
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.received: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
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


def dataset() -> Path:
    base = OUT / "iot" / "bench_iot.gpkg"
    if not base.exists():
        from twin.samplebuild import build_sample

        print(f"building the {SENSORS:,}-sensor twin once into {base.parent} …", flush=True)
        build_sample(base.parent, n_sensors=SENSORS, filename=base.name)
    return base


def stats(url: str, headers: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = httpx.get(f"{url}/ingest/stats", headers=headers, timeout=30).json()
    return out


def committed(s: dict[str, Any]) -> int:
    """Readings the twin has dealt with: stored, recognised as duplicates, or dead-lettered."""
    return int(s["stored"] + s["duplicates"] + s["dead_letters"])


def run_phase(name: str, args: argparse.Namespace, ctx: dict[str, Any], *, rate: float, duration: float,
              batch: int = 1, flood: int = 0, probe: bool = True) -> dict[str, Any]:
    url, headers, port = ctx["url"], ctx["headers"], ctx["broker_port"]
    first = stats(url, headers)
    before, before_stored = committed(first), first["stored"]
    counted_before = ctx["readings"].value
    queue: Any = mp.Queue()
    n_pub = args.publishers
    per_probe = [ctx["probes"][i::n_pub] for i in range(n_pub)] if probe else [[] for _ in range(n_pub)]
    started = time.time()
    # each publisher plays its own sensors, so no sensor reports twice in one millisecond
    procs = [mp.Process(target=publisher_process, args=(
        port, ctx["ids"][i::n_pub], ctx["normal"][i::n_pub], per_probe[i], rate / n_pub, duration, batch,
        args.probe_every * n_pub, queue, flood // n_pub if flood else 0)) for i in range(n_pub)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    published_at = time.time()
    sent_msgs = sum(r[0] for r in results)
    sent = sum(r[1] for r in results)
    probe_times: dict[int, float] = {}
    for r in results:
        probe_times.update(r[2])
    done = stored = counted = 0
    twin_done = bare_done = None
    deadline = time.time() + args.drain
    while time.time() < deadline and (twin_done is None or bare_done is None):
        now_stats = stats(url, headers)
        done, stored = committed(now_stats) - before, now_stats["stored"] - before_stored
        counted = ctx["readings"].value - counted_before
        if twin_done is None and done >= sent:
            twin_done = time.time()
        if bare_done is None and counted >= sent:
            bare_done = time.time()
        time.sleep(0.1)
    twin_done = twin_done or time.time()
    bare_done = bare_done or time.time()
    ctx["probes"] = [p for p in ctx["probes"] if p not in probe_times]
    time.sleep(1.0)
    latencies = [(ctx["sse"].received[s] - t) * 1000 for s, t in probe_times.items() if s in ctx["sse"].received]
    row = {"phase": name, "messages": sent_msgs, "readings": sent,
           "offered_per_s": sent / max(published_at - started, 1e-9), "stored": stored, "done": done,
           "twin_per_s": done / max(twin_done - started, 1e-9), "counted": counted,
           "bare_per_s": counted / max(bare_done - started, 1e-9), "missing_twin": sent - done,
           "missing_bare": sent - counted, "latency": latencies, "probes": len(probe_times)}
    print(f"{name:>20}: {sent_msgs:>8,} msgs, {sent:>9,} readings offered at {row['offered_per_s']:>7,.0f}/s | "
          f"twin committed {done:>9,} ({stored:,} new) at {row['twin_per_s']:>7,.0f}/s, not yet {sent - done:,} | "
          f"bare counted {counted:>9,} at {row['bare_per_s']:>7,.0f}/s, not yet {sent - counted:,} | "
          f"publish→alarm {summarize(latencies) if latencies else 'n/a'}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=4500.0, help="steady readings/s (270,000 sensors a minute)")
    parser.add_argument("--steady", type=float, default=120.0)
    parser.add_argument("--burst", type=float, default=60.0)
    parser.add_argument("--burst-factor", type=float, default=5.0)
    parser.add_argument("--gateway", type=float, default=60.0, help="seconds of each gateway phase")
    parser.add_argument("--batch", type=int, default=100, help="readings per gateway message")
    parser.add_argument("--flood", type=int, default=60_000, help="messages sent as fast as possible")
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--probe-every", type=float, default=1.0, help="seconds between alarm probes")
    parser.add_argument("--drain", type=float, default=180.0, help="longest wait for the twin to catch up (s)")
    parser.add_argument("--quick", action="store_true", help="short phases (a sanity run of about a minute)")
    args = parser.parse_args()
    if args.quick:
        args.steady, args.burst, args.gateway, args.flood = 15.0, 10.0, 10.0, 20_000
    from twin.auth import create_key
    from twin.store.base import FeatureQuery
    from twin.store.geopackage import GeoPackageStore

    workdir = Path(tempfile.mkdtemp(prefix="bench-iot-"))
    gpkg = workdir / "twin.gpkg"
    shutil.copy2(dataset(), gpkg)
    store = GeoPackageStore(gpkg)
    _, key = create_key(store, "operator", "bench")
    sensors = store.query("sensors", FeatureQuery(properties=("type", "threshold_low", "threshold_high", "status")))
    store.close()
    low, high = sensors["threshold_low"].to_numpy(float), sensors["threshold_high"].to_numpy(float)
    normal = np.where(np.isfinite(low) & np.isfinite(high), (low + high) / 2,
                      np.where(np.isfinite(low), low * 1.3, np.where(np.isfinite(high), high * 0.3, 0.0)))
    probe_mask = ((sensors["type"] == "residual_current") & (sensors["status"] == "online")).to_numpy()
    probes = sensors.index[probe_mask].tolist()
    ids = sensors.index.to_numpy(np.int64)[~probe_mask]  # probes report only their alarm reading
    normal = normal[~probe_mask]
    print(f"{len(ids) + len(probes):,} sensors; {len(probes):,} residual-current ones kept as alarm probes",
          flush=True)

    broker, broker_port = start_broker(workdir)
    http_port = free_port()
    twin = start_twin(gpkg, broker_port, http_port)
    messages, readings = mp.Value("q", 0), mp.Value("q", 0)
    ready, stop = mp.Event(), mp.Event()
    counter = mp.Process(target=counter_process, args=(broker_port, messages, readings, ready, stop))
    counter.start()
    url, headers = f"http://127.0.0.1:{http_port}", {"Authorization": f"Bearer {key}"}
    sse = Sse(url, headers)
    try:
        deadline = time.time() + 120
        while True:
            try:
                if (stats(url, headers).get("mqtt") or {}).get("connected"):
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or twin.poll() is not None:
                raise RuntimeError("the twin did not start")
            time.sleep(0.5)
        assert ready.wait(10), "the bare subscriber did not subscribe"
        sse.start()
        time.sleep(1.0)
        ctx = {"url": url, "headers": headers, "broker_port": broker_port, "ids": ids, "normal": normal,
               "probes": probes[::-1], "readings": readings, "sse": sse}
        rows = [
            run_phase("steady 1/msg", args, ctx, rate=args.rate, duration=args.steady),
            run_phase(f"burst {args.burst_factor:g}x 1/msg", args, ctx, rate=args.rate * args.burst_factor,
                      duration=args.burst),
            run_phase("flood 1/msg", args, ctx, rate=0, duration=0, flood=args.flood, probe=False),
            run_phase(f"steady {args.batch}/msg", args, ctx, rate=args.rate, duration=args.gateway, batch=args.batch),
            run_phase(f"burst {args.burst_factor:g}x {args.batch}/msg", args, ctx,
                      rate=args.rate * args.burst_factor, duration=args.gateway, batch=args.batch),
            run_phase(f"flood {args.batch}/msg", args, ctx, rate=0, duration=0, batch=args.batch,
                      flood=max(args.flood // 20, 2 * args.publishers), probe=False),
        ]
        published = sum(r["readings"] for r in rows)
        final = stats(url, headers)
        deadline = time.time() + args.drain
        while committed(final) < published and time.time() < deadline:  # the last backlog
            time.sleep(0.5)
            final = stats(url, headers)
        print(f"\ntotals: {published:,} readings published; the twin stored {final['stored']:,}, recognised "
              f"{final['duplicates']:,} duplicates, dead-lettered {final['dead_letters']:,}: lost "
              f"{published - committed(final):,}; the bare subscriber lost {published - readings.value:,}; "
              f"alarms opened {final['alarms_opened']:,}")
        all_latency = [x for r in rows for x in r["latency"]]
        if all_latency:
            print(f"publish → alarm on the SSE stream, all phases: {summarize(all_latency)}")
        for flood in (rows[2], rows[5]):
            print(f"{flood['phase']}: the twin stored {flood['twin_per_s']:,.0f} readings/s, "
                  f"{100 * flood['twin_per_s'] / max(flood['bare_per_s'], 1e-9):.0f}% of the bare subscriber's "
                  f"{flood['bare_per_s']:,.0f}/s")
    finally:
        sse.stop.set()
        stop.set()
        counter.join(timeout=10)
        twin.terminate()
        try:
            twin.wait(timeout=60)
        except subprocess.TimeoutExpired:
            twin.kill()
        broker.terminate()
        broker.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
