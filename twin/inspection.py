"""What fire-safety inspectors ask of the twin.

Find a building, its fire profile, the nearest hydrants, summaries per grid, and the writes an inspection makes.

Pure use of the :class:`~twin.store.base.Store` interface, so both stores answer the same way.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Point

from twin.crs import metric_distance_m, to_metric
from twin.errors import InvalidQuery, NotFound, ValidationFailed
from twin.firecode import FireCodeRules, check_building
from twin.records import json_records
from twin.store.base import MAX_ROWS, FeatureQuery, Filter, Op, Sort, Store

OPEN_ALARMS = ("open", "acknowledged")
FACILITY_COLUMNS = ("code", "type", "status", "last_inspected", "next_inspection")
SENSOR_COLUMNS = ("code", "type", "status", "unit", "last_value", "last_seen", "threshold_low", "threshold_high")
EDITABLE_FACILITY_FIELDS = frozenset({"status", "last_inspected", "next_inspection"})


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_buildings(store: Store, text: str, limit: int = 20) -> pd.DataFrame:
    """Buildings whose code, name or address contains ``text``: exact code first, then name matches, then the rest."""
    text = text.strip()
    if not text:
        raise InvalidQuery("search text is empty")
    if len(text) > 100:
        raise InvalidQuery("search text is longer than 100 characters")
    pattern = f"%{_escape_like(text)}%"
    found = []
    for rank, field in enumerate(("code", "name", "address")):
        frame = store.query("buildings", FeatureQuery(filters=(Filter(field, Op.LIKE, pattern),), limit=limit))
        found.append(frame.assign(_rank=np.where(frame[field] == text, -1, rank)))
    hits = pd.concat(found)
    hits = hits[~hits.index.duplicated(keep="first")]
    return hits.sort_values(["_rank", "height_m"], ascending=[True, False]).drop(columns="_rank").head(limit)


def _by_building(store: Store, layer_id: str, building_id: int, *extra: Filter,
                 sort: tuple[Sort, ...] = (), limit: int | None = None) -> pd.DataFrame:
    query = FeatureQuery(filters=(Filter("building_id", Op.EQ, building_id), *extra), sort=sort, limit=limit)
    return store.query(layer_id, query)


def _overdue(frame: pd.DataFrame, today: dt.date) -> np.ndarray:
    due = frame["next_inspection"]
    return np.array([d is not None and not pd.isna(d) and d < today for d in due], dtype=bool)


def fire_profile(store: Store, building_id: int, *, rules: FireCodeRules | None = None,
                 today: dt.date | None = None, inspections: int = 50) -> dict[str, Any]:
    """Everything an inspector needs about one building, in one document.

    Its levels (refuge floors marked) with the facilities and sensors on each, the outdoor facilities, rescue
    platforms and fire lanes, open alarms, the latest inspections, counts, and the fire-code checks.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    building = store.get("buildings", building_id)
    row = building.iloc[0]
    levels = _by_building(store, "levels", building_id, sort=(Sort("ordinal"),))
    facilities = _by_building(store, "fire_facilities", building_id)
    sensors = _by_building(store, "sensors", building_id)
    platforms = _by_building(store, "rescue_platforms", building_id)
    lanes = _by_building(store, "fire_lanes", building_id)
    alarms = _by_building(store, "alarms", building_id, Filter("status", Op.IN, list(OPEN_ALARMS)),
                          sort=(Sort("opened_at", descending=True),))
    history = _by_building(store, "inspections", building_id, sort=(Sort("inspected_at", descending=True),),
                           limit=inspections)
    hydrants = nearest_facilities(store, building_id=building_id, facility_type="outdoor_hydrant", k=1)
    nearest_hydrant = float(hydrants["distance_m"].iloc[0]) if len(hydrants) else None

    overdue = _overdue(facilities, today) if len(facilities) else np.zeros(0, dtype=bool)
    facility_records = json_records(facilities.assign(overdue=overdue), [*FACILITY_COLUMNS, "level_id", "overdue"])
    for record, z in zip(facility_records, shapely.get_z(facilities.geometry.to_numpy()), strict=True):
        record["z_m"] = None if np.isnan(z) else round(float(z), 2)
    sensor_records = json_records(sensors, [*SENSOR_COLUMNS, "level_id"])
    per_level: dict[Any, dict[str, list[Any]]] = {}
    for kind, records in (("facilities", facility_records), ("sensors", sensor_records)):
        for record in records:
            per_level.setdefault(record.pop("level_id"), {"facilities": [], "sensors": []})[kind].append(record)
    level_records = json_records(levels, ["ordinal", "name", "elevation_m", "height_m", "is_refuge", "use"])
    for record in level_records:
        record.update(per_level.pop(record["id"], {"facilities": [], "sensors": []}))
    outdoor = per_level.pop(None, {"facilities": [], "sensors": []})

    findings = check_building(row, levels, facilities, platforms, lanes, nearest_hydrant, rules)
    status = facilities["status"].value_counts() if len(facilities) else pd.Series(dtype=int)
    return {
        "building": json_records(building)[0],
        "summary": {
            "levels": len(levels), "refuge_floors": int(levels["is_refuge"].fillna(False).sum()) if len(levels) else 0,
            "facilities": len(facilities), "faulty": int(status.get("fault", 0)),
            "disabled": int(status.get("disabled", 0)), "overdue": int(overdue.sum()),
            "sensors": len(sensors), "offline_sensors": int((sensors["status"] == "offline").sum()),
            "open_alarms": len(alarms), "nearest_outdoor_hydrant_m": nearest_hydrant,
            "checks_failed": sum(not f.passed for f in findings),
        },
        "levels": level_records,
        "outdoor": {**outdoor, "rescue_platforms": json_records(platforms), "fire_lanes": json_records(lanes)},
        "alarms": json_records(alarms),
        "inspections": json_records(history),
        "checks": [f.as_dict() for f in findings],
    }


def nearest_facilities(store: Store, *, building_id: int | None = None, lon: float | None = None,
                       lat: float | None = None, facility_type: str | None = None, k: int = 5) -> pd.DataFrame:
    """The ``k`` facilities (of a type) nearest to a building's footprint or to a lon/lat point, with ``distance_m``.

    From a building, distances are measured from its footprint (metres, EPSG:4547), not from its centre.
    """
    if not 1 <= k <= 100:
        raise InvalidQuery("k must be between 1 and 100")
    filters = (Filter("type", Op.EQ, facility_type),) if facility_type else ()
    if building_id is not None:
        footprint = store.get("buildings", building_id).geometry.iloc[0]
        origin = footprint.representative_point()
        # candidates by distance from a point inside, re-ranked by distance from the footprint itself
        candidates = store.nearest("fire_facilities", origin, k + 20, filters)
        if len(candidates):
            candidates["distance_m"] = metric_distance_m(candidates.geometry.to_numpy(),
                                                         np.full(len(candidates), footprint, dtype=object))
        return candidates.sort_values(["distance_m"], kind="stable").head(k)
    if lon is None or lat is None:
        raise InvalidQuery("give a building or a lon/lat point")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidQuery(f"lon/lat out of range: {lon}, {lat}")
    origin = Point(lon, lat)
    if not np.isfinite(shapely.get_coordinates(to_metric([origin]))).all():
        raise InvalidQuery(f"lon/lat {lon}, {lat} lies outside the area where EPSG:4547 measures distances")
    return store.nearest("fire_facilities", origin, k, filters)


#: The layers a grid summary reads; a write to any of them changes the summary.
SUMMARY_LAYERS = ("grids", "buildings", "fire_facilities", "sensors", "alarms")


class SummaryCache:
    """Whole-level grid summaries, kept per level and per change counters of :data:`SUMMARY_LAYERS`.

    The key holds :meth:`~twin.store.base.Store.layer_version` of every layer read, taken before computing, so
    a write to any of them (from this process or, on PostGIS, from any other) makes the entry unreachable; a
    summary computed while a write lands is filed under the counters read before it and is never served after.
    One cache serves one store. At most ``max_entries`` summaries are kept, least recently used evicted first.
    """

    def __init__(self, max_entries: int = 16):
        self.max_entries = max_entries
        self._items: OrderedDict[tuple[object, ...], pd.DataFrame] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def summary(self, store: Store, level: str) -> pd.DataFrame:
        """The summary of every cell of ``level`` (a copy the caller may change)."""
        key = (level, tuple(store.layer_version(layer_id) for layer_id in SUMMARY_LAYERS))
        with self._lock:
            table = self._items.get(key)
            if table is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return table.copy()
            self.misses += 1
        table = _level_summary(store, level)
        with self._lock:
            for stale in [k for k in self._items if k[0] == level]:
                del self._items[stale]  # an older version of this level is never asked for again
            self._items[key] = table
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
        return table.copy()


def _level_summary(store: Store, level: str) -> pd.DataFrame:
    cells = store.query("grids", FeatureQuery(filters=(Filter("level", Op.EQ, level),)))
    if cells.empty:
        raise InvalidQuery(f"no grid cells at level {level!r}; use district, subdistrict, community or grid")
    figures = {
        "buildings": store.aggregate_by_grid("buildings", (), level),
        "super_high_rises": store.aggregate_by_grid("buildings", (Filter("height_m", Op.GT, 100.0),), level),
        "faulty_facilities": store.aggregate_by_grid("fire_facilities", (Filter("status", Op.EQ, "fault"),), level),
        "offline_sensors": store.aggregate_by_grid("sensors", (Filter("status", Op.EQ, "offline"),), level),
        "open_alarms": store.aggregate_by_grid("alarms", (Filter("status", Op.IN, list(OPEN_ALARMS)),), level),
    }
    table = cells.set_index("code")[["name", "parent_code", "population"]]
    for name, counts in figures.items():
        table[name] = counts["count"].reindex(table.index).fillna(0).astype(int)
    return pd.DataFrame(table)


def grid_summary(store: Store, level: str = "grid", codes: Sequence[str] | None = None, *,
                 cache: SummaryCache | None = None) -> pd.DataFrame:
    """Per grid cell of ``level``: buildings, super high-rises, faulty facilities, offline sensors, open alarms.

    With ``cache``, a repeat of a summary whose layers have not changed since is answered from it.
    """
    table = cache.summary(store, level) if cache is not None else _level_summary(store, level)
    if codes is not None:
        unknown = sorted(set(codes) - set(table.index))
        if unknown:
            raise NotFound(f"no {level} with code {', '.join(unknown)}")
        table = table.loc[list(codes)]
    return table


def record_inspection(store: Store, building_id: int, inspector: str, result: str, *,
                      facility_id: int | None = None, notes: str | None = None,
                      inspected_at: dt.datetime | None = None) -> int:
    """Store one inspection of a building (or of one of its facilities); returns its id."""
    store.get("buildings", building_id)  # NotFound for an unknown building
    if facility_id is not None:
        facility = store.get("fire_facilities", facility_id).iloc[0]
        if facility["building_id"] != building_id:
            raise ValidationFailed(f"facility {facility_id} is not in building {building_id}", field="facility_id")
    row = pd.DataFrame([{
        "building_id": building_id, "facility_id": facility_id, "inspector": inspector,
        "inspected_at": pd.Timestamp(inspected_at or dt.datetime.now(dt.UTC)), "result": result, "notes": notes,
    }])
    [inspection_id] = store.insert("inspections", row)
    return inspection_id


def update_facility(store: Store, facility_id: int, changes: dict[str, Any]) -> None:
    """Change a facility's status or inspection dates (the only fields an inspector edits)."""
    unknown = sorted(set(changes) - EDITABLE_FACILITY_FIELDS)
    if unknown:
        raise ValidationFailed(f"only {', '.join(sorted(EDITABLE_FACILITY_FIELDS))} may be changed here",
                               field=unknown[0])
    if not changes:
        raise ValidationFailed("nothing to change")
    if not 0 <= facility_id <= MAX_ROWS:  # beyond the stores' 64-bit keys: there is no such row
        raise NotFound(f"fire_facilities has no feature with id {facility_id}")
    store.update("fire_facilities", facility_id, changes)
