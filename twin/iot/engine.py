"""The alarm engine's core: state + a batch of readings (or the clock) → new alarms and sensor-state changes.

No I/O and no clock: every time comes from the readings or from the caller's ``now_ms``, so the same inputs give the
same outputs. :class:`EngineState` holds one row per sensor (numpy arrays, 270,000 sensors fit easily) and is updated
in place for speed; :meth:`EngineState.snapshot` / :meth:`EngineState.restore` undo a step whose writes failed.
The stateful wrapper that writes through the store and publishes events is :mod:`twin.iot.service`.

Rules, in order:

* A reading older than (or as old as) the sensor's last one changes nothing: redelivered and out-of-order readings
  are stored (idempotently) but not re-evaluated.
* A threshold breach (:mod:`twin.iot.rules`) raises an alarm on its *rising edge* only, and not while an alarm of
  the same type for the same sensor is still unresolved, so a value hovering at its threshold raises one alarm.
* **GB 50116 4.1.6 two-trigger confirmation**: a fire detector (smoke, heat) that triggers alone raises a
  ``pre_alarm``; if another detector on the same floor of the same building is in breach, or breached within
  ``confirm_window_s`` before, a ``fire_alarm`` is raised for the floor instead (one per floor until resolved).
  Sensors without a level are zoned by building.
* **Offline**: a sensor silent for longer than ``offline_after_intervals`` × its reporting interval (counted from
  when the engine went live, if later) goes offline and raises an ``offline`` alarm, unless it raised one in the last
  ``offline_realarm_s`` (a flapping sensor raises one) or more than ``offline_storm_fraction`` of the sensors go silent
  together (one ``ingest_outage`` alarm instead: the likely cause is upstream).
* Sensor-state events (status changes) go out at most once per ``state_event_min_s`` per sensor; the latest status
  always goes out in the end.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from twin.iot.directory import Directory
from twin.iot.payload import Readings
from twin.iot.rules import ALARM_TEXT, Thresholds, alarm_type, thresholds
from twin.iot.settings import RuleSettings

IntArray = npt.NDArray[np.int64]
AlarmKey = tuple[Any, ...]
MONITORED = ("online", "alarm")


@dataclass(frozen=True)
class AlarmDraft:
    """An alarm the engine wants opened; ``key`` identifies it for de-duplication until it is resolved."""

    key: AlarmKey
    sensor_id: int | None
    building_id: int | None
    level_id: int | None
    grid_code: str | None
    alarm_type: str
    severity: str
    message: str
    opened_ms: int
    value: float | None = None


@dataclass(frozen=True)
class StateChange:
    """A sensor's status as the screens should now show it."""

    row: int
    sensor_id: int
    status: str
    previous: str
    at_ms: int
    value: float | None


@dataclass
class Outcome:
    """What one step produced."""

    alarms: list[AlarmDraft] = field(default_factory=list)
    changes: list[StateChange] = field(default_factory=list)
    evaluated: int = 0


@dataclass
class Snapshot:
    """Enough of the state to undo one step."""

    rows: IntArray
    arrays: dict[str, np.ndarray]
    unresolved: dict[AlarmKey, int]
    floors: dict[tuple[int, int], dict[int, int]]
    offline_alarm_ms: dict[int, int]
    pending: set[int]


_ROW_ARRAYS = ("status", "reported", "last_value", "last_seen_ms", "breach", "last_event_ms", "dirty", "status_dirty")


class EngineState:
    """Per-sensor live state, the unresolved alarms by key and the recent fire triggers by floor."""

    def __init__(self, directory: Directory, rules: RuleSettings, live_since_ms: int,
                 unresolved: dict[AlarmKey, int] | None = None):
        self.directory = directory
        self.rules = rules
        self.thresholds: Thresholds = thresholds(directory, rules)
        n = len(directory)
        self.status = directory.status.astype(object).copy()
        self.reported = self.status.copy()
        self.last_value = directory.last_value.copy()
        self.last_seen_ms = directory.last_seen_ms.copy()
        rows = np.arange(n, dtype=np.int64)
        self.breach = self.thresholds.breach(rows, self.last_value)
        self.last_event_ms = np.full(n, -np.inf)
        self.dirty = np.zeros(n, bool)
        self.status_dirty = np.zeros(n, bool)
        self.live_since_ms = live_since_ms
        self.unresolved: dict[AlarmKey, int] = dict(unresolved or {})
        self.floors: dict[tuple[int, int], dict[int, int]] = {}
        self.offline_alarm_ms: dict[int, int] = {}
        self.pending: set[int] = set()  # rows whose status differs from what the screens were last told
        self.recent_offline: deque[int] = deque()  # when sensors went offline, within the storm window

    # -- undo -------------------------------------------------------------------------------------------------

    def snapshot(self, rows: IntArray) -> Snapshot:
        """The state of ``rows`` and the small maps, for :meth:`restore`."""
        rows = np.unique(rows)
        return Snapshot(rows, {name: getattr(self, name)[rows].copy() for name in _ROW_ARRAYS},
                        dict(self.unresolved), copy.deepcopy(self.floors), dict(self.offline_alarm_ms),
                        set(self.pending))

    def restore(self, snap: Snapshot) -> None:
        """Undo everything since ``snap`` was taken (the step touched only its rows)."""
        for name, values in snap.arrays.items():
            getattr(self, name)[snap.rows] = values
        self.unresolved, self.floors, self.offline_alarm_ms = snap.unresolved, snap.floors, snap.offline_alarm_ms
        self.pending = snap.pending

    # -- lifecycle --------------------------------------------------------------------------------------------

    def bind(self, key: AlarmKey, alarm_id: int) -> None:
        """Record the stored id of the alarm opened for ``key``."""
        self.unresolved[key] = alarm_id

    def resolved(self, alarm_id: int) -> None:
        """Forget a resolved alarm, so its condition may raise a new one."""
        for key in [k for k, v in self.unresolved.items() if v == alarm_id]:
            del self.unresolved[key]

    # -- helpers ----------------------------------------------------------------------------------------------

    def _floor(self, row: int) -> tuple[int, int]:
        return int(self.directory.building_id[row]), int(self.directory.level_id[row])

    def _draft(self, row: int, kind: str, severity: str, at_ms: int, value: float | None, key: AlarmKey,
               text: str | None = None) -> AlarmDraft:
        d = self.directory
        unit = d.unit[row] if d.unit[row] not in (None, "state") else None
        shown = f"（{value:g} {unit}）" if value is not None and unit else ""
        message = f"{d.place(row)} {text or ALARM_TEXT.get(kind, kind)}{shown}".strip()
        building, level = self._floor(row)
        return AlarmDraft(key, int(d.ids[row]), building if building >= 0 else None, level if level >= 0 else None,
                          d.grid_code[row], kind, severity, message, at_ms, value)

    def _set_status(self, row: int, status: str) -> None:
        if self.status[row] != status:
            self.status[row] = status
            self.status_dirty[row] = True
            self.pending.add(row)

    def due_events(self, now_ms: int) -> list[StateChange]:
        """Status changes not yet sent whose sensor has been quiet long enough (the debounce)."""
        if not self.pending:
            return []
        gap = self.rules.state_event_min_s * 1000
        out = []
        for row in sorted(self.pending):
            if now_ms - self.last_event_ms[row] < gap:
                continue
            self.pending.discard(row)
            if self.status[row] == self.reported[row]:
                continue  # changed and changed back: nothing to tell
            value = self.last_value[row]
            seen = self.last_seen_ms[row]
            out.append(StateChange(row, int(self.directory.ids[row]), str(self.status[row]), str(self.reported[row]),
                                   int(seen) if np.isfinite(seen) else now_ms,
                                   float(value) if np.isfinite(value) else None))
            self.reported[row] = self.status[row]
            self.last_event_ms[row] = now_ms
        return out


def _is_unresolved(state: EngineState, key: AlarmKey) -> bool:
    return key in state.unresolved


def _open(state: EngineState, outcome: Outcome, draft: AlarmDraft) -> None:
    state.unresolved[draft.key] = 0  # pending until the store gives it an id (see EngineState.bind)
    outcome.alarms.append(draft)


def _confirming(state: EngineState, row: int, floor: tuple[int, int], at_ms: int) -> bool:
    window = state.rules.confirm_window_s * 1000
    for other, last in state.floors.get(floor, {}).items():
        if other != row and (state.breach[other] != 0 or at_ms - last <= window):
            return True
    return False


def step(state: EngineState, readings: Readings, now_ms: int) -> Outcome:
    """Evaluate a batch of valid readings against the rules; updates ``state`` and returns what happened."""
    outcome = Outcome()
    if len(readings):
        order = np.lexsort((readings.ts_ms, readings.row))
        rows, ts, values = readings.row[order], readings.ts_ms[order], readings.value[order]
        seen = np.nan_to_num(state.last_seen_ms[rows], nan=-np.inf)
        fresh = ts > seen
        fresh[1:] &= ~((rows[1:] == rows[:-1]) & (ts[1:] == ts[:-1]))  # same sensor and instant twice
        rows, ts, values = rows[fresh], ts[fresh], values[fresh]
        outcome.evaluated = len(rows)
    if outcome.evaluated:
        breach = state.thresholds.breach(rows, values)
        first = np.ones(len(rows), bool)
        first[1:] = rows[1:] != rows[:-1]
        previous = np.empty_like(breach)
        previous[1:] = breach[:-1]
        previous[first] = state.breach[rows[first]]
        interesting = np.flatnonzero((breach != 0) | (previous != 0))
        for i in interesting[np.argsort(ts[interesting], kind="stable")].tolist():
            _evaluate(state, outcome, int(rows[i]), int(ts[i]), float(values[i]), int(breach[i]), int(previous[i]))
        last = np.ones(len(rows), bool)
        last[:-1] = rows[1:] != rows[:-1]
        latest_rows = rows[last]
        state.last_value[latest_rows] = values[last]
        state.last_seen_ms[latest_rows] = ts[last]
        state.breach[latest_rows] = breach[last]
        state.dirty[latest_rows] = True
        wanted = np.where(breach[last] != 0, "alarm", "online").astype(object)
        current = state.status[latest_rows]
        changed = (current != wanted) & (current != "fault")
        for row, status in zip(latest_rows[changed].tolist(), wanted[changed].tolist(), strict=True):
            state._set_status(row, status)
    outcome.changes = state.due_events(now_ms)
    return outcome


def _evaluate(state: EngineState, outcome: Outcome, row: int, at_ms: int, value: float, breach: int,
              previous: int) -> None:
    """One reading that breaches, or ends a breach: triggers, edges and alarms."""
    d = state.directory
    sensor_type = str(d.types[row])
    trigger = bool(state.thresholds.fire_trigger[row])
    floor = state._floor(row)
    if breach == 0:
        return
    if trigger:
        if breach != previous:
            if floor[0] >= 0 and _confirming(state, row, floor, at_ms):
                key: AlarmKey = ("floor", *floor)
                if not _is_unresolved(state, key):
                    _open(state, outcome, state._draft(row, sensor_type, "fire_alarm", at_ms, value, key,
                                                       ALARM_TEXT["fire_alarm"]))
            else:
                key = ("sensor", int(d.ids[row]), sensor_type)
                if not _is_unresolved(state, key):
                    _open(state, outcome, state._draft(row, sensor_type, "pre_alarm", at_ms, value, key))
        if floor[0] >= 0:
            state.floors.setdefault(floor, {})[row] = at_ms
        return
    if breach != previous:
        kind = alarm_type(sensor_type, breach)
        key = ("sensor", int(d.ids[row]), kind)
        if not _is_unresolved(state, key):
            _open(state, outcome, state._draft(row, kind, "threshold", at_ms, value, key))


def sweep(state: EngineState, now_ms: int) -> Outcome:
    """Take silent sensors offline (with their alarms) and send the state events that are due."""
    outcome = Outcome()
    d, rules = state.directory, state.rules
    monitored = np.isin(state.status, MONITORED)
    since = np.fmax(np.nan_to_num(state.last_seen_ms, nan=-np.inf), state.live_since_ms)
    silent = np.flatnonzero(monitored & (since + rules.offline_after_intervals * d.interval_s * 1000 < now_ms))
    # forget old fire triggers so the per-floor maps stay small
    window = rules.confirm_window_s * 1000
    for floor in list(state.floors):
        kept = {r: t for r, t in state.floors[floor].items() if state.breach[r] != 0 or now_ms - t <= window}
        if kept:
            state.floors[floor] = kept
        else:
            del state.floors[floor]
    if len(silent):
        # a storm: many sensors silent within the storm window (not only in this sweep) — one outage alarm, and no
        # per-sensor offline alarms while it is unresolved
        window_ms = rules.offline_storm_window_s * 1000
        while state.recent_offline and state.recent_offline[0] < now_ms - window_ms:
            state.recent_offline.popleft()
        state.recent_offline.extend([now_ms] * len(silent))
        total = len(state.directory)
        storm = len(state.recent_offline) >= max(50, rules.offline_storm_fraction * max(total, 1))
        if storm and not _is_unresolved(state, ("outage",)):
            text = f"{ALARM_TEXT['ingest_outage']}（{len(state.recent_offline)} 台）"
            _open(state, outcome, AlarmDraft(("outage",), None, None, None, None, "ingest_outage", "offline", text,
                                             now_ms))
        outage = _is_unresolved(state, ("outage",))
        realarm = rules.offline_realarm_s * 1000
        for row in silent.tolist():
            state._set_status(row, "offline")
            state.breach[row] = 0
            sensor_id = int(d.ids[row])
            key = ("sensor", sensor_id, "offline")
            if outage or _is_unresolved(state, key) or now_ms - state.offline_alarm_ms.get(sensor_id, -realarm - 1) \
                    <= realarm:
                continue
            state.offline_alarm_ms[sensor_id] = now_ms
            _open(state, outcome, state._draft(row, "offline", "offline", now_ms, None, key))
    outcome.changes = state.due_events(now_ms)
    return outcome


def unresolved_keys(alarms: list[dict[str, Any]]) -> dict[AlarmKey, int]:
    """The de-duplication keys of stored alarms that are still open or acknowledged (rows of the alarms table)."""
    keys: dict[AlarmKey, int] = {}
    for a in alarms:
        if a.get("status") == "resolved":
            continue
        if a.get("severity") == "fire_alarm" and a.get("building_id") is not None:
            level = a.get("level_id")
            keys[("floor", int(a["building_id"]), -1 if level is None else int(level))] = int(a["id"])
        elif a.get("alarm_type") == "ingest_outage":
            keys[("outage",)] = int(a["id"])
        elif a.get("sensor_id") is not None:
            keys[("sensor", int(a["sensor_id"]), str(a["alarm_type"]))] = int(a["id"])
    return keys


def carry_over(old: EngineState, directory: Directory) -> EngineState:
    """A state for a reloaded ``directory`` that keeps what ``old`` knew about the sensors in both."""
    new = EngineState(directory, old.rules, old.live_since_ms, old.unresolved)
    rows_old = old.directory.rows_of_ids(directory.ids)
    kept = np.flatnonzero(rows_old >= 0)
    for name in _ROW_ARRAYS:
        getattr(new, name)[kept] = getattr(old, name)[rows_old[kept]]
    new.offline_alarm_ms = dict(old.offline_alarm_ms)
    remap = {int(r): int(n) for n, r in zip(kept.tolist(), rows_old[kept].tolist(), strict=True)}
    new.floors = {f: {remap[r]: t for r, t in m.items() if r in remap} for f, m in old.floors.items()}
    new.pending = {remap[r] for r in old.pending if r in remap}
    return new
