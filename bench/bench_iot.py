"""Live IoT ingest: 270,000 simulated sensors through a real Mosquitto into the twin, beside a bare counting subscriber.

Run: python bench/bench_iot.py [--steady 120] [--burst 60] [--gateway 60] [--quick] [--store postgis-URL]
     [--phases steady,burst,flood,gw-steady,gw-burst,gw-flood,gw-drain|none] [--direct 10]
     [--bare link|paho] [--no-bare]

Everything runs on this machine (127.0.0.1) and stops by itself:

* a Mosquitto on a free port with the production settings of ``docs/iot.md``;
* the twin (``uvicorn api.main:create_app``) in its own process over a copy of a 270,000-sensor GeoPackage (built once
  into ``bench/out/iot/``), or with ``--store postgresql+psycopg://…`` over that twin loaded into PostGIS (the
  database is migrated and every layer replaced), with the MQTT ingester (plain subscription unless
  ``TWIN_MQTT_SHARE_GROUP`` is set; batches; acknowledged after commit);
* a bare subscriber in its own process that only counts (QoS 1, persistent session): the ceiling; on the twin's own
  MQTT link, acknowledging every read at once (``--bare paho``: a paho-mqtt client instead);
* publisher processes that play the sensors (raw MQTT 3.1.1 packets written in bulk, ``bench/mqtt_raw.py``, so the
  load generator leaves the cores to the broker and the twin): one reading a minute each (4,500 msg/s) for
  ``--steady`` seconds, then a 5× burst for ``--burst`` seconds, then a flood (as fast as the publishers go), then
  gateways batching 100 readings a message at the same reading rates for ``--gateway`` seconds;
* ``gw-drain``: the twin stops (its session stays with the broker), publishers put ``--drain-messages`` gateway
  messages into the broker, then a bare subscriber with its own session drains its copy, then the twin restarts and
  drains its own: the ingest capacity with no publisher competing for the two cores;
* an SSE client on ``/alarms/stream``: about once a second a residual-current sensor reports 480 mA, and the time from
  its publish to its alarm event on the stream is the latency.

After the phases, ``--direct N`` commits N gateway batches (200 messages × 100 readings) in the bench's own process,
without the broker, and on PostGIS times ``Store.append`` beside a bare COPY of the same kind of rows.

Printed per phase: messages and readings offered, readings/s the twin stored and the bare subscriber received, losses
(published − stored, published − counted), p95 publish→alarm latency, and where the twin's time went (p50/p95 per
pipeline stage from ``GET /ingest/stats``: inbox wait, parse, store, engine, publish, whole commit, sensor-state
writes), and the CPU seconds each process used (publishers, broker, twin, bare subscriber).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import OUT, cpu_seconds, free_port, summarize
from bench.iot_clients import Sse, counter_process, publisher_process, start_broker, start_twin
from bench.iot_direct import direct_commit

SENSORS = 270_000
#: The counters of ``GET /ingest/stats`` that restarts of the twin carry over.
CARRIED = ("stored", "duplicates", "dead_letters", "alarms_opened")


# -- the bench ------------------------------------------------------------------------------------------------


def dataset() -> Path:
    base = OUT / "iot" / "bench_iot.gpkg"
    if not base.exists():
        from twin.samplebuild import build_sample

        print(f"building the {SENSORS:,}-sensor twin once into {base.parent} …", flush=True)
        build_sample(base.parent, n_sensors=SENSORS, filename=base.name)
    return base


class TwinProcess:
    """The twin in its own process. A restart takes up the same broker session; counters carry over restarts."""

    def __init__(self, location: str, broker_port: int, key: str):
        self.location, self.broker_port = location, broker_port
        self.client_id = f"bench-ingest-{uuid.uuid4().hex[:6]}"
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.headers = {"Authorization": f"Bearer {key}"}
        self.carried: Counter[str] = Counter()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wait: bool = True) -> None:
        self.proc = start_twin(self.location, self.broker_port, self.http_port, self.client_id)
        if wait:
            self.wait_connected()

    def wait_connected(self) -> None:
        deadline = time.time() + 120
        while True:
            try:
                if (self.raw_stats().get("mqtt") or {}).get("connected"):
                    return
            except httpx.HTTPError:
                pass
            if time.time() > deadline or self.proc is None or self.proc.poll() is not None:
                raise RuntimeError("the twin did not start")
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop once what was received is committed (its counters carry over to the next start)."""
        last, settled = self.raw_stats(), 0
        while settled < 10:
            time.sleep(0.1)
            now = self.raw_stats()
            settled = settled + 1 if committed(now) == committed(last) else 0
            last = now
        for name in CARRIED:
            self.carried[name] += int(last[name])
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.proc = None

    def raw_stats(self, **params: Any) -> dict[str, Any]:
        out: dict[str, Any] = httpx.get(f"{self.url}/ingest/stats", headers=self.headers, params=params,
                                        timeout=30).json()
        return out

    def stats(self) -> dict[str, Any]:
        """``GET /ingest/stats`` with the counters of earlier runs added."""
        out = self.raw_stats()
        return {**out, **{name: int(out[name]) + self.carried[name] for name in CARRIED}}


def committed(s: dict[str, Any]) -> int:
    """Readings the twin has dealt with: stored, recognised as duplicates, or dead-lettered."""
    return int(s["stored"] + s["duplicates"] + s["dead_letters"])


def publish(args: argparse.Namespace, ctx: dict[str, Any], *, rate: float, duration: float, batch: int,
            flood: int, probe: bool) -> tuple[int, int, dict[int, float], float]:
    """Run the publisher processes; returns messages and readings sent, the probes' publish times, CPU seconds."""
    queue: Any = mp.Queue()
    n_pub = args.publishers
    per_probe = [ctx["probes"][i::n_pub] for i in range(n_pub)] if probe else [[] for _ in range(n_pub)]
    # each publisher plays its own sensors, so no sensor reports twice in one millisecond
    procs = [mp.Process(target=publisher_process, args=(
        ctx["broker_port"], ctx["ids"][i::n_pub], ctx["normal"][i::n_pub], per_probe[i], rate / n_pub, duration,
        batch, args.probe_every * n_pub, queue, flood // n_pub if flood else 0)) for i in range(n_pub)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    probe_times: dict[int, float] = {}
    for r in results:
        probe_times.update(r[2])
    return sum(r[0] for r in results), sum(r[1] for r in results), probe_times, sum(r[4] for r in results)


def print_stages(twin: TwinProcess, since: float) -> None:
    stages = twin.raw_stats(timings_since=since).get("timings_ms", {})
    print(" " * 22 + "twin stages (p50/p95 ms; batch in messages): " + ", ".join(
        f"{stage} {v['p50']:g}/{v['p95']:g}" for stage, v in stages.items()), flush=True)


def run_phase(name: str, args: argparse.Namespace, ctx: dict[str, Any], *, rate: float, duration: float,
              batch: int = 1, flood: int = 0, probe: bool = True) -> dict[str, Any]:
    twin: TwinProcess = ctx["twin"]
    first = twin.stats()
    before, before_stored = committed(first), first["stored"]
    counted_before = ctx["readings"].value
    cpu_before = {name: cpu_seconds(pid) for name, pid in ctx["pids"]().items()}
    started = time.time()
    sent_msgs, sent, probe_times, publisher_cpu = publish(args, ctx, rate=rate, duration=duration, batch=batch,
                                                          flood=flood, probe=probe)
    published_at = time.time()
    done = stored = counted = 0
    twin_done = None
    bare_done = None if ctx["bare"] else started
    deadline = time.time() + args.drain
    while time.time() < deadline and (twin_done is None or bare_done is None):
        now_stats = twin.stats()
        done, stored = committed(now_stats) - before, now_stats["stored"] - before_stored
        counted = ctx["readings"].value - counted_before
        if twin_done is None and done >= sent:
            twin_done = time.time()
        if bare_done is None and counted >= sent:
            bare_done = time.time()
        time.sleep(0.1)
    twin_done = twin_done or time.time()
    bare_done = bare_done or time.time()
    cpu = {name: cpu_seconds(pid) - cpu_before.get(name, 0.0) for name, pid in ctx["pids"]().items()}
    wall = max(twin_done, bare_done) - started
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
          + (f"bare counted {counted:>9,} at {row['bare_per_s']:>7,.0f}/s, not yet {sent - counted:,} | " if ctx["bare"]
             else "no bare subscriber | ")
          + f"publish→alarm {summarize(latencies) if latencies else 'n/a'}", flush=True)
    print(" " * 22 + f"CPU seconds over {wall:.0f} s (2 cores: {2 * wall:.0f}): publishers {publisher_cpu:.0f}, "
          + ", ".join(f"{name} {seconds:.0f}" for name, seconds in cpu.items()), flush=True)
    print_stages(twin, started)
    return row


def drain_phase(name: str, args: argparse.Namespace, ctx: dict[str, Any], *, batch: int,
                messages: int) -> dict[str, Any]:
    """A backlog in the broker, drained first by a bare subscriber, then by the restarted twin."""
    twin: TwinProcess = ctx["twin"]
    port = ctx["broker_port"]
    bare_id = f"bench-drain-count-{uuid.uuid4().hex[:6]}"
    counted, ready, stop = mp.Value("q", 0), mp.Event(), mp.Event()

    def bare_subscriber() -> mp.Process:
        proc = mp.Process(target=counter_process, args=(port, bare_id, mp.Value("q", 0), counted, ready, stop,
                                                        args.bare))
        proc.start()
        assert ready.wait(10), "the bare subscriber did not subscribe"
        return proc

    proc = bare_subscriber()  # its session from now on: the broker queues its copy of the backlog
    stop.set()
    proc.join(timeout=10)
    twin.stop()
    published = time.time()
    sent_msgs, sent, _, _ = publish(args, ctx, rate=0, duration=0, batch=batch, flood=messages, probe=False)
    print(f"{name:>20}: {sent_msgs:,} messages, {sent:,} readings queued at the broker in "
          f"{time.time() - published:.1f} s while the twin was down", flush=True)

    ready.clear()
    stop.clear()
    started = time.time()
    proc = bare_subscriber()
    deadline = started + args.drain
    while counted.value < sent and time.time() < deadline:
        time.sleep(0.02)
    bare_s = time.time() - started
    stop.set()
    proc.join(timeout=10)
    bare_per_s = counted.value / bare_s

    before = committed({name: twin.carried[name] for name in CARRIED})
    started = time.time()
    twin.start(wait=False)
    first_at = first_done = None
    done = 0
    deadline = started + args.drain
    while time.time() < deadline:
        try:
            done = committed(twin.stats()) - before
        except httpx.HTTPError:
            done = 0
        if done > 0 and first_at is None:
            first_at, first_done = time.time(), done
        if done >= sent:
            break
        time.sleep(0.05)
    finished = time.time()
    twin_per_s = done / (finished - started)
    flowing = (done - (first_done or 0)) / max(finished - (first_at or started), 1e-9)
    print(f"{'':>20}  bare subscriber drained {counted.value:,} readings at {bare_per_s:,.0f}/s | twin committed "
          f"{done:,} at {twin_per_s:,.0f}/s from its restart (process start and directory load included), "
          f"{flowing:,.0f}/s from its first commit; not yet {sent - done:,}", flush=True)
    print_stages(twin, started)
    return {"phase": name, "messages": sent_msgs, "readings": sent, "offered_per_s": 0.0, "stored": done,
            "done": done, "twin_per_s": twin_per_s, "flowing_per_s": flowing, "counted": counted.value,
            "bare_per_s": bare_per_s, "missing_twin": sent - done, "missing_bare": sent - counted.value,
            "latency": [], "probes": 0, "live_uncounted": sent}


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
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:  # the figures depend on it: see docs/iot.md, PostgreSQL settings
        settings = {name: conn.execute(sa.text(f"SHOW {name}")).scalar() for name in ("shared_buffers", "max_wal_size")}
    engine.dispose()
    print("PostgreSQL " + ", ".join(f"{k} {v}" for k, v in settings.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=4500.0, help="steady readings/s (270,000 sensors a minute)")
    parser.add_argument("--steady", type=float, default=120.0)
    parser.add_argument("--burst", type=float, default=60.0)
    parser.add_argument("--burst-factor", type=float, default=5.0)
    parser.add_argument("--gateway", type=float, default=60.0, help="seconds of each gateway phase")
    parser.add_argument("--batch", type=int, default=100, help="readings per gateway message")
    parser.add_argument("--flood", type=int, default=60_000, help="messages sent as fast as possible")
    parser.add_argument("--drain-messages", type=int, default=20_000,
                        help="gateway messages queued at the broker for the gw-drain phase")
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--probe-every", type=float, default=1.0, help="seconds between alarm probes")
    parser.add_argument("--drain", type=float, default=180.0, help="longest wait for the twin to catch up (s)")
    parser.add_argument("--quick", action="store_true", help="short phases (a sanity run of about a minute)")
    parser.add_argument("--store", default="geopackage",
                        help="geopackage (default), or a PostGIS URL whose database is migrated and overwritten")
    parser.add_argument("--direct", type=int, default=10,
                        help="in-process gateway batches committed after the MQTT phases (0: none)")
    parser.add_argument("--bare", choices=("link", "paho"), default="link",
                        help="the bare subscriber's client: the twin's own MQTT link (the ceiling of its receive "
                             "path; default) or paho-mqtt (a general-purpose client)")
    parser.add_argument("--no-bare", action="store_true",
                        help="live phases without the bare subscriber beside the twin (on a machine too slow for "
                             "both: the twin then has the cores to itself; the drain phase keeps its own)")
    parser.add_argument("--phases", default="all",
                        help="comma-separated subset of: steady,burst,flood,gw-steady,gw-burst,gw-flood,gw-drain; "
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
    twin = TwinProcess(location, broker_port, key)
    twin.start(wait=False)
    messages, readings = mp.Value("q", 0), mp.Value("q", 0)
    ready, stop = mp.Event(), mp.Event()
    counter = mp.Process(target=counter_process, args=(broker_port, f"bench-count-{uuid.uuid4().hex[:6]}", messages,
                                                       readings, ready, stop, args.bare))
    if args.no_bare:
        ready.set()
    else:
        counter.start()
    sse = Sse(twin.url, twin.headers)
    try:
        twin.wait_connected()
        assert ready.wait(10), "the bare subscriber did not subscribe"
        sse.start()
        time.sleep(1.0)
        def pids() -> dict[str, int]:  # the processes whose CPU time a phase reports (the twin's changes)
            running = {"broker": broker.pid, "twin": twin.proc.pid if twin.proc else 0}
            return {**running, "bare": counter.pid} if counter.pid else running

        ctx = {"twin": twin, "broker_port": broker_port, "ids": ids, "normal": normal, "pids": pids,
               "probes": probes[::-1], "readings": readings, "sse": sse, "bare": not args.no_bare}
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
            "gw-drain": lambda: drain_phase(f"drain {args.batch}/msg", args, ctx, batch=args.batch,
                                            messages=args.drain_messages),
        }
        chosen = list(phases) if args.phases == "all" else [] if args.phases == "none" else [
            p.strip() for p in args.phases.split(",")]
        unknown = set(chosen) - set(phases)
        if unknown:
            raise SystemExit(f"unknown phases {sorted(unknown)}; choose from {list(phases)}")
        rows = [phases[name]() for name in chosen]
        published = sum(r["readings"] for r in rows)
        final = twin.stats()
        deadline = time.time() + args.drain
        while committed(final) < published and time.time() < deadline:  # the last backlog
            time.sleep(0.5)
            final = twin.stats()
        print(f"\ntotals: {published:,} readings published; the twin stored {final['stored']:,}, recognised "
              f"{final['duplicates']:,} duplicates, dead-lettered {final['dead_letters']:,}: lost "
              f"{published - committed(final):,}; the bare subscriber "
              f"{f'lost {published - readings.value:,}' if not args.no_bare else 'was off'}; "
              f"alarms opened {final['alarms_opened']:,}")
        all_latency = [x for r in rows for x in r["latency"]]
        if all_latency:
            print(f"publish → alarm on the SSE stream, all phases: {summarize(all_latency)}")
        if args.direct:
            direct_commit(location, ids, normal, args.direct, args.batch)
        for flood in (r for r in rows if r["phase"].startswith(("flood", "drain"))):
            print(f"{flood['phase']}: the twin stored {flood['twin_per_s']:,.0f} readings/s, "
                  f"{100 * flood['twin_per_s'] / max(flood['bare_per_s'], 1e-9):.0f}% of the bare subscriber's "
                  f"{flood['bare_per_s']:,.0f}/s")
    finally:
        sse.stop.set()
        stop.set()
        if counter.is_alive():
            counter.join(timeout=10)
        if twin.proc is not None:
            twin.proc.terminate()
            try:
                twin.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                twin.proc.kill()
        broker.terminate()
        broker.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
