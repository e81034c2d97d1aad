"""The live pipeline around the pure engine: commit readings, raise alarms, keep sensor state, publish events.

One :class:`IotRuntime` per running twin. Both ingest paths (MQTT, HTTP) end in :meth:`IotRuntime.commit`, which, in
this order and under one lock: stores the dead letters, appends the readings (idempotent on sensor and timestamp),
runs :func:`twin.iot.engine.step`, stores the alarms it opened, and only then publishes events. If a write fails the
engine state is rolled back and the error propagates, so the MQTT batch is not acknowledged and comes again.

Sensor rows (status, last value, last seen) are written by :meth:`IotRuntime.tick` in budgeted slices, status changes
first: a store write per sensor per reading would cost more than the readings themselves.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
import pandas as pd

from twin.errors import Conflict, InvalidQuery
from twin.iot.directory import Directory, load_directory
from twin.iot.engine import AlarmDraft, EngineState, Outcome, StateChange, carry_over, step, sweep, unresolved_keys
from twin.iot.events import EventHub
from twin.iot.payload import Message, Parsed, Readings, parse_http, parse_messages
from twin.iot.records import CommitResult, IngestStats, StoredBatch, alarm_record, iso_ms, now_ms
from twin.iot.settings import IotSettings
from twin.iot.statewrite import take_slice
from twin.iot.timings import Timings
from twin.store.base import FeatureQuery, Filter, Op, Store

log = logging.getLogger("twin.iot")


class IotRuntime:
    """Directory, engine state, event hub and counters of a running twin, and the MQTT ingester when configured."""

    def __init__(self, store: Store, settings: IotSettings | None = None, *, hub: EventHub | None = None):
        self.store = store
        self.settings = settings or IotSettings()
        self.hub = hub or EventHub(self.settings.replay_events)
        self.stats = IngestStats()
        self.timings = Timings()
        self._lock = threading.RLock()
        self._state: EngineState | None = None
        self._directory: Directory | None = None
        self._directory_loaded = 0.0
        # the store holds the last values written at the last stop: the first pass is due an interval after the start
        # (after an outage the store's time goes to the backlog of readings first)
        self._values_written = time.monotonic()
        self._live = threading.Event()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.ingester: Any = None  # twin.iot.mqtt.MqttIngester, when a broker is configured
        self._topics: dict[str, int | str | None] = {}

    # -- lifecycle --------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the ticker, and the MQTT ingester if ``TWIN_MQTT_URL`` is set (which makes the runtime live)."""
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick_loop, name="twin-iot-tick", daemon=True)
        self._ticker.start()
        if self.settings.mqtt.enabled:
            from twin.iot.mqtt import MqttIngester

            self.go_live()
            self.ingester = MqttIngester(self, self.settings.mqtt)
            self.ingester.start()

    def stop(self) -> None:
        """Stop the ingester (unacknowledged messages stay with the broker), write pending state, end streams."""
        if self.ingester is not None:
            self.ingester.stop()
            self.ingester = None
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=30)
            self._ticker = None
        if self._live.is_set():
            try:  # status changes (the map colours) first; last values catch up on the next start
                self.write_state(budget=self.settings.state_writes_on_stop, all_values=True)
            except Exception:  # the store may be gone already; the next start reloads from what was written
                log.exception("could not write the sensor state on shutdown")
        self.hub.close()

    def go_live(self) -> None:
        """Start offline detection (from now on, sensors must report)."""
        if not self._live.is_set():
            with self._lock:
                self.state().live_since_ms = now_ms()
                self._live.set()

    @property
    def live(self) -> bool:
        """True once the runtime ingests (MQTT configured, or a first HTTP batch arrived)."""
        return self._live.is_set()

    # -- directory and state ----------------------------------------------------------------------------------

    def directory(self) -> Directory:
        """The sensor directory, loaded on first use (read without the commit lock: the parser runs beside commits)."""
        loaded = self._directory
        if loaded is not None:
            return loaded
        with self._lock:
            if self._directory is None:
                self._directory = load_directory(self.store)
                self._directory_loaded = time.monotonic()
            return self._directory

    def state(self) -> EngineState:
        """The engine state, built on first use from the store's sensors and unresolved alarms."""
        with self._lock:
            if self._state is None:
                alarms = self.store.query("alarms", FeatureQuery(
                    filters=(Filter("status", Op.IN, ["open", "acknowledged"]),)))
                records = [{"id": i, **r} for i, r in zip(alarms.index, alarms.to_dict("records"), strict=True)]
                self._state = EngineState(self.directory(), self.settings.rules, now_ms(), unresolved_keys(records))
            return self._state

    def refresh_directory(self) -> bool:
        """Reload the directory (new devices) unless it was loaded recently; True if it was reloaded."""
        with self._lock:
            if time.monotonic() - self._directory_loaded < self.settings.directory_refresh_s:
                return False
            self._directory = load_directory(self.store)
            self._directory_loaded = time.monotonic()
            if self._state is not None:
                self._state = carry_over(self._state, self._directory)
            return True

    # -- parsing ----------------------------------------------------------------------------------------------

    def parse_messages(self, messages: list[Message]) -> Parsed:
        """Parse MQTT messages; an unknown sensor reloads the directory (rate-limited) and parses again."""
        def run() -> Parsed:
            if len(self._topics) > 1_000_000:
                self._topics.clear()
            return parse_messages(messages, self.directory(), prefix=self.settings.mqtt.topic_prefix,
                                  now_ms=now_ms(), max_future_s=self.settings.max_future_s,
                                  max_payload=self.settings.dead_letter_payload_bytes, topics=self._topics)
        parsed = run()
        if any(d.category == "unknown_sensor" for d in parsed.dead) and self.refresh_directory():
            parsed = run()
        return parsed

    def parse_http(self, body: bytes, *, ndjson: bool | None) -> Parsed:
        """Parse an HTTP batch (JSON array or NDJSON), with the same directory refresh."""
        def run() -> Parsed:
            return parse_http(body, self.directory(), ndjson=ndjson, now_ms=now_ms(),
                              max_future_s=self.settings.max_future_s,
                              max_payload=self.settings.dead_letter_payload_bytes)
        parsed = run()
        if any(d.category == "unknown_sensor" for d in parsed.dead) and self.refresh_directory():
            parsed = run()
        return parsed

    # -- the commit path --------------------------------------------------------------------------------------

    def commit(self, parsed: Parsed, *, received: int | None = None) -> CommitResult:
        """Store a batch, then evaluate it: :meth:`store_batch` and :meth:`evaluate` in one call."""
        return self.evaluate(self.store_batch(parsed, received=received))

    def store_batch(self, parsed: Parsed, *, received: int | None = None) -> StoredBatch:
        """Store the dead letters and readings of a batch, in the store's transactions; nothing is evaluated yet.

        Runs outside the engine lock, so batches can be stored side by side (on PostGIS each COPY is a server process
        of its own); :meth:`evaluate` then takes them in order. Readings are idempotent, so a batch stored again after
        a failure only counts duplicates.
        """
        self.go_live()
        started = time.perf_counter()
        if parsed.dead:
            self.store.insert("dead_letters", pd.DataFrame({
                "received_at": pd.to_datetime([d.received_ms for d in parsed.dead], unit="ms", utc=True),
                "source": [d.source for d in parsed.dead], "topic": [d.topic for d in parsed.dead],
                "payload": [d.payload for d in parsed.dead], "reason": [d.reason for d in parsed.dead],
            }))
        unique = parsed.readings.in_key_order()
        new = self.store.append("readings", unique.frame()) if len(unique) else 0
        self.timings.record("store", 1000 * (time.perf_counter() - started))
        total = received if received is not None else len(parsed.readings) + len(parsed.dead)
        return StoredBatch(parsed, unique, new, total)

    def evaluate(self, batch: StoredBatch) -> CommitResult:
        """Run the engine over a stored batch, store the alarms it opened, then publish.

        Under the engine lock, one batch at a time; the engine state is rolled back if storing the alarms fails, so
        evaluating the batch again is safe.
        """
        clock = time.perf_counter
        parsed, unique = batch.parsed, batch.unique
        with self._lock:
            started = clock()
            state = self.state()
            if parsed.directory is not None and parsed.directory is not state.directory:
                unique = unique.rows_in(state.directory)  # the directory was reloaded after parsing
            snap = state.snapshot(unique.row)
            try:
                outcome = step(state, unique, now_ms())
                evaluated = clock()
                ids = self._open_alarms(state, outcome.alarms)
            except BaseException:
                state.restore(snap)
                raise
            opened = clock()
            readings = len(parsed.readings)
            self.stats.received += batch.received
            self.stats.stored += batch.new
            self.stats.duplicates += readings - batch.new
            self.stats.dead_letters += len(parsed.dead)
            self.stats.dead_by_reason.update(d.category for d in parsed.dead)
            self.stats.batches += 1
            self._publish(state, outcome, ids)
            done = clock()
        for stage, ms in (("engine", evaluated - started), ("alarms", opened - evaluated), ("publish", done - opened),
                          ("evaluate", done - started)):
            self.timings.record(stage, 1000 * ms)
        return CommitResult(readings, batch.new, readings - batch.new, [d.reason for d in parsed.dead], ids)

    def _open_alarms(self, state: EngineState, drafts: list[AlarmDraft]) -> list[int]:
        if not drafts:
            return []
        frame = pd.DataFrame({
            "sensor_id": pd.array([d.sensor_id for d in drafts], dtype="Int64"),
            "building_id": pd.array([d.building_id for d in drafts], dtype="Int64"),
            "level_id": pd.array([d.level_id for d in drafts], dtype="Int64"),
            "grid_code": [d.grid_code for d in drafts], "alarm_type": [d.alarm_type for d in drafts],
            "severity": [d.severity for d in drafts], "status": ["open"] * len(drafts),
            "message": [d.message for d in drafts],
            "opened_at": pd.to_datetime([d.opened_ms for d in drafts], unit="ms", utc=True),
        })
        ids = self.store.insert("alarms", frame)
        for draft, alarm_id in zip(drafts, ids, strict=True):
            state.bind(draft.key, alarm_id)
        self.stats.alarms_opened += len(ids)
        return ids

    def _publish(self, state: EngineState, outcome: Outcome, ids: list[int]) -> None:
        d = state.directory
        for draft, alarm_id in zip(outcome.alarms, ids, strict=True):
            row = int(d.rows_of_ids([draft.sensor_id])[0]) if draft.sensor_id is not None else -1
            self.publish_alarm({
                "id": alarm_id, "sensor_id": draft.sensor_id, "building_id": draft.building_id,
                "level_id": draft.level_id, "grid_code": draft.grid_code, "alarm_type": draft.alarm_type,
                "severity": draft.severity, "status": "open", "message": draft.message,
                "opened_at": iso_ms(draft.opened_ms), "acknowledged_at": None, "acknowledged_by": None,
                "resolved_at": None, "resolved_by": None, "value": draft.value,
                "sensor_code": d.codes[row] if row >= 0 else None, "sensor_type": d.types[row] if row >= 0 else None,
            }, "opened")
        for change in outcome.changes:
            self._publish_change(state, change)

    def publish_alarm(self, alarm: dict[str, Any], action: str) -> None:
        """Send an alarm event (``opened``, ``acknowledged``, ``resolved``)."""
        tags = {str(alarm.get(k)) for k in ("alarm_type", "severity", "sensor_type", "status") if alarm.get(k)}
        self.hub.publish("alarm", {"action": action, **alarm}, grid_code=alarm.get("grid_code"),
                         building_id=alarm.get("building_id"), tags=tags)

    def _publish_change(self, state: EngineState, change: StateChange) -> None:
        d, row = state.directory, change.row
        building = int(d.building_id[row])
        level = int(d.level_id[row])
        self.hub.publish("sensor", {
            "sensor_id": change.sensor_id, "code": d.codes[row], "type": d.types[row], "status": change.status,
            "previous": change.previous, "value": change.value, "at": iso_ms(change.at_ms),
            "building_id": building if building >= 0 else None, "level_id": level if level >= 0 else None,
            "grid_code": d.grid_code[row],
        }, grid_code=d.grid_code[row], building_id=building if building >= 0 else None,
            tags={str(d.types[row]), change.status})

    # -- the clock: offline sweep and sensor-state writes -----------------------------------------------------

    def tick(self, at_ms: int | None = None) -> Outcome:
        """Sweep for offline sensors (when live), store their alarms, publish, and write a slice of sensor rows."""
        at_ms = now_ms() if at_ms is None else at_ms
        outcome = Outcome()
        if self.live:
            with self._lock:
                state = self.state()
                snap = state.snapshot(np.flatnonzero(np.isin(state.status, ("online", "alarm"))))
                try:
                    outcome = sweep(state, at_ms)
                    ids = self._open_alarms(state, outcome.alarms)
                except BaseException:
                    state.restore(snap)
                    raise
                self._publish(state, outcome, ids)
            self.write_state(self.settings.state_writes_per_tick)
        return outcome

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.settings.tick_s):
            try:
                self.tick()
            except Exception:  # a store hiccup: the next tick tries again
                log.exception("IoT tick failed")

    def write_state(self, budget: int | None, *, all_values: bool = False) -> int:
        """Write up to ``budget`` changed sensor rows (status changes first); returns how many.

        Rows go in slices of ``state_write_chunk`` through ``Store.update_many``, one transaction each, with a
        short pause between them, so that reading commits waiting for the store's write lock get in between.
        Status changes go at every call; rows with only a new last value go in passes at most every
        ``state_values_every_s`` (a pass may span several calls), and always with ``all_values``.
        """
        written = 0
        chunk = max(self.settings.state_write_chunk, 1)
        values = all_values or time.monotonic() - self._values_written >= self.settings.state_values_every_s
        while budget is None or written < budget:
            limit = chunk if budget is None else min(chunk, budget - written)
            with self._lock:
                if self._state is None:
                    break
                state = self._state
                piece = take_slice(state, limit, values=values)
            if piece is None or (values and piece.size < limit):
                self._values_written = time.monotonic() if values else self._values_written  # the pass is done
            if piece is None:
                break
            started = time.perf_counter()
            try:
                for frame in piece.frames:
                    self.store.update_many("sensors", frame)
            except Exception:
                with self._lock:  # write them next time
                    piece.give_back(state)
                raise
            self.timings.record("state", 1000 * (time.perf_counter() - started))
            written += piece.size
            time.sleep(self.settings.state_write_pause_s)
        return written

    # -- the alarm lifecycle (operator actions) ---------------------------------------------------------------

    def acknowledge(self, alarm_id: int, by: str) -> dict[str, Any]:
        """Move an alarm from open to acknowledged, recording who and when; ``Conflict`` from any other status."""
        return self._transition(alarm_id, by, "acknowledged", ("open",))

    def resolve(self, alarm_id: int, by: str) -> dict[str, Any]:
        """Move an open or acknowledged alarm to resolved, recording who and when; the row stays as history."""
        return self._transition(alarm_id, by, "resolved", ("open", "acknowledged"))

    def _transition(self, alarm_id: int, by: str, to: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not by or not by.strip():
            raise InvalidQuery("say who does this ('by')")
        with self._lock:
            row = self.store.get("alarms", alarm_id).iloc[0]
            if row["status"] not in allowed:
                raise Conflict(f"alarm {alarm_id} is {row['status']}; only {' or '.join(allowed)} alarms can be {to}")
            at = pd.Timestamp(now_ms(), unit="ms", tz="UTC")
            prefix = "acknowledged" if to == "acknowledged" else "resolved"
            changes: dict[str, Any] = {"status": to, f"{prefix}_at": at, f"{prefix}_by": by.strip()}
            self.store.update("alarms", alarm_id, changes)
            if to == "resolved" and self._state is not None:
                self._state.resolved(alarm_id)
            record = alarm_record(self.store.get("alarms", alarm_id).iloc[0], alarm_id)
            self.publish_alarm(record, to)
        return record


def readings_only(readings: Readings) -> Parsed:
    """Readings already validated elsewhere (benchmarks, notebooks) as a :class:`Parsed` with no dead letters."""
    return Parsed(readings, [])
