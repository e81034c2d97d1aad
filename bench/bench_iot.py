"""Live IoT ingest: 270,000 simulated sensors through a real Mosquitto into the twin, beside a bare counting subscriber.

Run: python bench/bench_iot.py [--steady 120] [--burst 60] [--gateway 60] [--quick] [--store postgis-URL]
     [--phases steady,burst,flood,gw-steady,gw-burst,gw-flood|none] [--direct 10]

Everything runs on this machine (127.0.0.1) and stops by itself:

* a Mosquitto on a free port with the production settings of ``docs/iot.md``;
* the twin (``uvicorn api.main:create_app``) in its own process over a copy of a 270,000-sensor GeoPackage (built once
  into ``bench/out/iot/``), or with ``--store postgresql+psycopg://…`` over that twin loaded into PostGIS (the
  database is migrated and every layer replaced), with the MQTT ingester (shared subscription, batches, ack after
  commit);
* a bare subscriber in its own process that only counts (QoS 1, persistent session): the ceiling;
* publisher processes that play the sensors: one reading a minute each (4,500 msg/s) for ``--steady`` seconds, then
  a 5× burst for ``--burst`` seconds, then a flood (as fast as the publishers go), then gateways batching 100 readings
  a message at the same reading rates for ``--gateway`` seconds;
* an SSE client on ``/alarms/stream``: about once a second a residual-current sensor reports 480 mA, and the time from
  its publish to its alarm event on the stream is the latency.

After the phases, ``--direct N`` commits N gateway batches (200 messages × 100 readings) in the bench's own process,
without the broker, and on PostGIS times ``Store.append`` beside a bare COPY of the same kind of rows.

Printed per phase: messages and readings offered, readings/s the twin stored and the bare subscriber received, losses
(published − stored, published − counted), p95 publish→alarm latency, and where the twin's time went (p50/p95 per
pipeline stage from ``GET /ingest/stats``: inbox wait, parse, store, engine, publish, whole commit, sensor-state
writes).
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


def start_twin(location: str, broker_port: int, http_port: int) -> subprocess.Popen[bytes]:
    where = {"TWIN_DATABASE_URL": location} if "://" in location else {"TWIN_GPKG_PATH": location}
    env = {**os.environ, **where, "TWIN_MQTT_URL": f"mqtt://127.0.0.1:{broker_port}",
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
    stages = httpx.get(f"{url}/ingest/stats", headers=headers, params={"timings_since": started},
                       timeout=30).json().get("timings_ms", {})
    row = {"phase": name, "messages": sent_msgs, "readings": sent,
           "offered_per_s": sent / max(published_at - started, 1e-9), "stored": stored, "done": done,
           "twin_per_s": done / max(twin_done - started, 1e-9), "counted": counted,
           "bare_per_s": counted / max(bare_done - started, 1e-9), "missing_twin": sent - done,
           "missing_bare": sent - counted, "latency": latencies, "probes": len(probe_times)}
    print(f"{name:>20}: {sent_msgs:>8,} msgs, {sent:>9,} readings offered at {row['offered_per_s']:>7,.0f}/s | "
          f"twin committed {done:>9,} ({stored:,} new) at {row['twin_per_s']:>7,.0f}/s, not yet {sent - done:,} | "
          f"bare counted {counted:>9,} at {row['bare_per_s']:>7,.0f}/s, not yet {sent - counted:,} | "
          f"publish→alarm {summarize(latencies) if latencies else 'n/a'}", flush=True)
    print(" " * 22 + "twin stages (p50/p95 ms; batch in messages): " + ", ".join(
        f"{stage} {v['p50']:g}/{v['p95']:g}" for stage, v in stages.items()), flush=True)
    return row


def direct_commit(location: str, ids: np.ndarray, normal: np.ndarray, batches: int, per: int) -> None:
    """Gateway batches (200 messages of ``per`` readings) parsed and committed in this process, no broker between:
    what the store, the parser and the engine sustain on their own."""
    from twin.iot import IotRuntime, IotSettings
    from twin.iot.payload import Message
    from twin.store.opening import open_store

    store = open_store(location)
    runtime = IotRuntime(store, IotSettings())
    runtime.state()
    rng = np.random.default_rng(1)
    prepared = []
    for b in range(batches):
        at = time.time() - 3600 + b  # an hour back: no clash with what the publishers stamped
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at))
        messages = []
        for m in range(200):
            ks = rng.integers(0, len(ids), per)
            stamp = f"{ts}.{m:03d}Z"
            messages.append(Message(f"{PREFIX}/sensors/gw-direct/readings", orjson.dumps(
                [{"sensor_id": int(ids[k]), "ts": stamp, "value": float(normal[k])} for k in ks])))
        prepared.append(messages)
    parse_s = commit_s = 0.0
    readings = 0
    for messages in prepared:
        started = time.perf_counter()
        parsed = runtime.parse_messages(messages)
        parsed_at = time.perf_counter()
        result = runtime.commit(parsed)
        commit_s += time.perf_counter() - parsed_at
        parse_s += parsed_at - started
        readings += result.accepted
    if "://" in location:
        append_vs_copy(store, ids, batches, per * 200)
    store.close()
    print(f"in-process gateway batches ({batches} × 200 messages × {per} readings, no broker): parse "
          f"{readings / parse_s:,.0f} readings/s, commit (store + engine) {readings / commit_s:,.0f} readings/s, "
          f"both {readings / (parse_s + commit_s):,.0f} readings/s", flush=True)


def append_vs_copy(store: Any, ids: np.ndarray, batches: int, size: int) -> None:
    """PostGIS only: ``Store.append`` of readings frames beside a bare COPY of the same kind of rows, interleaved."""
    from layers import get_layer
    from twin.store import pg_copy
    from twin.validate import normalize_frame

    layer = get_layer("readings")
    rng = np.random.default_rng(2)
    start = int((time.time() - 7200) * 1000)

    def frame(k: int) -> Any:
        import pandas as pd

        return pd.DataFrame({"sensor_id": ids[rng.integers(0, len(ids), size)],
                             "ts": pd.to_datetime(start + k * size + np.arange(size), unit="ms", utc=True),
                             "value": rng.random(size)})

    append_s = bare_s = 0.0
    for k in range(batches):
        rows = frame(2 * k)
        began = time.perf_counter()
        store.append("readings", rows)
        append_s += time.perf_counter() - began
        payload = pg_copy.encode(layer, normalize_frame(layer, frame(2 * k + 1)), None)  # prepared: no validation
        began = time.perf_counter()
        with store.engine.begin() as conn:
            pg_copy.copy_in(conn, "readings", payload)
        bare_s += time.perf_counter() - began
    total = batches * size
    print(f"readings into PostGIS, {batches} batches of {size:,}: Store.append {total / append_s:,.0f}/s, bare COPY "
          f"{total / bare_s:,.0f}/s ({100 * bare_s / append_s:.0f}% of the bare COPY rate)", flush=True)


def load_postgis(url: str, gpkg: Path) -> None:
    """Migrate ``url`` and replace every layer with the bench twin's content."""
    from twin.migrations import upgrade
    from twin.store.geopackage import GeoPackageStore
    from twin.store.postgis import PostGISStore
    from twin.transfer import copy_twin

    started = time.time()
    upgrade(url)
    source, target = GeoPackageStore(gpkg, readonly=True), PostGISStore(url)
    try:
        copy_twin(source, target)
    finally:
        source.close()
        target.close()
    print(f"loaded the bench twin into PostGIS in {time.time() - started:.0f} s", flush=True)


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
    parser.add_argument("--store", default="geopackage",
                        help="geopackage (default), or a PostGIS URL whose database is migrated and overwritten")
    parser.add_argument("--direct", type=int, default=10,
                        help="in-process gateway batches committed after the MQTT phases (0: none)")
    parser.add_argument("--phases", default="all",
                        help="comma-separated subset of: steady,burst,flood,gw-steady,gw-burst,gw-flood; "
                             "none (only --direct)")
    args = parser.parse_args()
    if args.quick:
        args.steady, args.burst, args.gateway, args.flood = 15.0, 10.0, 10.0, 20_000
    from twin.auth import create_key
    from twin.store.base import FeatureQuery
    from twin.store.opening import open_store

    workdir = Path(tempfile.mkdtemp(prefix="bench-iot-"))
    gpkg = workdir / "twin.gpkg"
    shutil.copy2(dataset(), gpkg)
    location = str(gpkg)
    if args.store != "geopackage":
        location = args.store
        load_postgis(location, gpkg)
    print(f"store: {'PostGIS' if '://' in location else 'GeoPackage'}", flush=True)
    store = open_store(location)
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
    twin = start_twin(location, broker_port, http_port)
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
        phases: dict[str, Any] = {
            "steady": lambda: run_phase("steady 1/msg", args, ctx, rate=args.rate, duration=args.steady),
            "burst": lambda: run_phase(f"burst {args.burst_factor:g}x 1/msg", args, ctx,
                                       rate=args.rate * args.burst_factor, duration=args.burst),
            "flood": lambda: run_phase("flood 1/msg", args, ctx, rate=0, duration=0, flood=args.flood, probe=False),
            "gw-steady": lambda: run_phase(f"steady {args.batch}/msg", args, ctx, rate=args.rate,
                                           duration=args.gateway, batch=args.batch),
            "gw-burst": lambda: run_phase(f"burst {args.burst_factor:g}x {args.batch}/msg", args, ctx,
                                          rate=args.rate * args.burst_factor, duration=args.gateway, batch=args.batch),
            "gw-flood": lambda: run_phase(f"flood {args.batch}/msg", args, ctx, rate=0, duration=0, batch=args.batch,
                                          flood=max(args.flood // 20, 2 * args.publishers), probe=False),
        }
        chosen = list(phases) if args.phases == "all" else [] if args.phases == "none" else [
            p.strip() for p in args.phases.split(",")]
        unknown = set(chosen) - set(phases)
        if unknown:
            raise SystemExit(f"unknown phases {sorted(unknown)}; choose from {list(phases)}")
        rows = [phases[name]() for name in chosen]
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
        if args.direct:
            direct_commit(location, ids, normal, args.direct, args.batch)
        for flood in (r for r in rows if r["phase"].startswith("flood")):
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
