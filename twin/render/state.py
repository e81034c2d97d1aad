"""The state of each building on the screens: normal, offline sensors, fault, pre-alarm or fire alarm.

:func:`building_states` is a pure function of the open alarms and the facility/sensor status counts; the
:class:`StateBoard` reads those from a store, caching the heavy counts on the layers' change counters, so a screen
can ask again after every alarm event.

The rules, most urgent first: an open (or acknowledged) fire alarm → ``fire_alarm``; a pre-alarm → ``pre_alarm``;
a fault or threshold alarm, or at least ``fault_share`` of the building's facilities faulty → ``fault``; an offline
alarm, or at least ``offline_share`` of its sensors offline → ``offline``; else ``normal``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from twin.render.colors import SEVERITY_STATE, STATES
from twin.store.base import FeatureQuery, Filter, Op, Store

OPEN_STATUSES = ("open", "acknowledged")


@dataclass(frozen=True)
class StateRules:
    """Shares of faulty facilities and offline sensors that colour a building without an alarm."""

    fault_share: float = 0.05
    offline_share: float = 0.05


def status_shares(frame: pd.DataFrame, status: str) -> pd.Series:
    """Per ``building_id``, the share of rows whose ``status`` is ``status``."""
    if frame.empty:
        return pd.Series(dtype=float)
    rows = frame.dropna(subset=["building_id"])
    flags = (rows["status"] == status).astype(float)
    return flags.groupby(rows["building_id"].astype("int64")).mean()


def building_states(alarms: pd.DataFrame, fault_share: pd.Series | None = None,
                    offline_share: pd.Series | None = None, rules: StateRules | None = None) -> pd.Series:
    """The state of every building that is not ``normal``, indexed by building id.

    ``alarms`` are the unresolved alarms (``building_id``, ``severity``); the shares come from
    :func:`status_shares` of the facilities (``fault``) and sensors (``offline``).
    """
    rules = rules or StateRules()
    rank = {s: i for i, s in enumerate(STATES)}
    best: dict[int, int] = {}

    def raise_to(ids: Sequence[int], state: str) -> None:
        level = rank[state]
        for building in ids:
            if best.get(building, 0) < level:
                best[building] = level

    if fault_share is not None and len(fault_share):
        raise_to([int(i) for i in fault_share.index[fault_share >= rules.fault_share]], "fault")
    if offline_share is not None and len(offline_share):
        raise_to([int(i) for i in offline_share.index[offline_share >= rules.offline_share]], "offline")
    if not alarms.empty:
        rows = alarms.dropna(subset=["building_id"])
        if "status" in rows.columns:
            rows = rows[rows["status"].isin(OPEN_STATUSES)]
        for severity, group in rows.groupby("severity"):
            state = SEVERITY_STATE.get(str(severity))
            if state is not None:
                raise_to([int(b) for b in group["building_id"].unique()], state)
    states = pd.Series({b: STATES[level] for b, level in best.items() if level > 0}, dtype=object)
    states.index = states.index.astype("int64")
    states.index.name = "building_id"
    return states.sort_index()


class StateBoard:
    """Building states read from a store; the facility and sensor shares are cached until those layers change."""

    def __init__(self, store: Store, rules: StateRules | None = None):
        self.store = store
        self.rules = rules or StateRules()
        self._lock = threading.Lock()
        self._shares: dict[str, tuple[int, pd.Series]] = {}

    def _share(self, layer_id: str, status: str) -> pd.Series:
        version = self.store.layer_version(layer_id)
        with self._lock:
            cached = self._shares.get(layer_id)
            if cached is not None and cached[0] == version:
                return cached[1]
        frame = self.store.query(layer_id, FeatureQuery(properties=("building_id", "status")))
        shares = status_shares(frame, status)
        with self._lock:
            self._shares[layer_id] = (version, shares)
        return shares

    def open_alarms(self, buildings: Sequence[int] | None = None) -> pd.DataFrame:
        """Unresolved alarms (of ``buildings`` only, when given)."""
        filters = [Filter("status", Op.IN, list(OPEN_STATUSES))]
        if buildings is not None:
            filters.append(Filter("building_id", Op.IN, [int(b) for b in buildings]))
        return self.store.query("alarms", FeatureQuery(filters=tuple(filters)))

    def states(self, buildings: Sequence[int] | None = None) -> pd.Series:
        """States of the buildings that are not ``normal`` (of ``buildings`` only, when given)."""
        if buildings is not None and not buildings:
            return pd.Series(dtype=object)
        states = building_states(self.open_alarms(buildings), self._share("fire_facilities", "fault"),
                                 self._share("sensors", "offline"), self.rules)
        if buildings is not None:
            states = states[states.index.isin([int(b) for b in buildings])]
        return states
