"""The sensor directory: every sensor's id, code, type, place and thresholds as arrays, looked up in bulk.

Loaded from the store's ``sensors`` layer (joined to ``buildings`` for the grid code and names, and ``levels`` for
floor names). Rows are in id order, so ids resolve to rows with one ``searchsorted``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from twin.store.base import FeatureQuery, Store

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
ObjArray = npt.NDArray[np.object_]

SENSOR_FIELDS = ("code", "type", "building_id", "level_id", "unit", "threshold_low", "threshold_high",
                 "reporting_interval_s", "status", "last_value", "last_seen")


@dataclass(frozen=True)
class Directory:
    """Sensor rows in id order. ``building_id``/``level_id`` are -1 where a sensor has none."""

    ids: IntArray
    codes: ObjArray
    types: ObjArray
    building_id: IntArray
    level_id: IntArray
    grid_code: ObjArray
    unit: ObjArray
    low: FloatArray
    high: FloatArray
    interval_s: FloatArray
    status: ObjArray
    last_value: FloatArray
    last_seen_ms: FloatArray  # NaN where never seen
    building_name: ObjArray
    level_name: ObjArray

    def __len__(self) -> int:
        return len(self.ids)

    def rows_of_ids(self, ids: npt.ArrayLike) -> IntArray:
        """Rows of sensor ids; -1 for an unknown id."""
        wanted = np.asarray(ids, dtype=np.int64)
        rows = np.searchsorted(self.ids, wanted)
        rows = np.minimum(rows, max(len(self.ids) - 1, 0))
        found = (len(self.ids) > 0) & (self.ids[rows] == wanted) if len(self.ids) else np.zeros(len(wanted), bool)
        return np.where(found, rows, -1).astype(np.int64)

    def rows_of_codes(self, codes: npt.ArrayLike) -> IntArray:
        """Rows of sensor codes; -1 for an unknown code."""
        index = self._code_index
        return np.array([index.get(c, -1) for c in np.asarray(codes, dtype=object)], dtype=np.int64)

    @property
    def _code_index(self) -> dict[str, int]:
        cached: dict[str, int] | None = self.__dict__.get("_codes")
        if cached is None:
            cached = {str(c): i for i, c in enumerate(self.codes)}
            object.__setattr__(self, "_codes", cached)
        return cached

    def place(self, row: int) -> str:
        """Building and floor names of a sensor, for alarm messages (``汇德大厦 40F``)."""
        building = str(self.building_name[row] or "") or (f"建筑{self.building_id[row]}"
                                                          if self.building_id[row] >= 0 else "")
        level = str(self.level_name[row] or "")
        return f"{building} {level}".strip()


def _int_column(frame: pd.DataFrame, name: str) -> IntArray:
    return frame[name].astype("Int64").fillna(-1).to_numpy(dtype=np.int64)


def _float_column(frame: pd.DataFrame, name: str) -> FloatArray:
    return frame[name].to_numpy(dtype="float64", na_value=np.nan)


def epoch_ms(series: pd.Series) -> FloatArray:
    """A UTC datetime series as float milliseconds since the epoch (NaN for NaT)."""
    if not len(series):
        return np.zeros(0)
    naive = pd.to_datetime(series, utc=True).dt.tz_convert(None).to_numpy(dtype="datetime64[ms]")
    out = naive.view(np.int64).astype(np.float64)
    out[np.isnat(naive)] = np.nan
    return out


def load_directory(store: Store) -> Directory:
    """Read the sensor directory from ``store`` (one query per layer)."""
    sensors = store.query("sensors", FeatureQuery(properties=SENSOR_FIELDS))
    buildings = store.query("buildings", FeatureQuery(properties=("name", "grid_code")))
    levels = store.query("levels", FeatureQuery(properties=("name",)))
    ids = sensors.index.to_numpy(dtype=np.int64)
    building_id = _int_column(sensors, "building_id")
    level_id = _int_column(sensors, "level_id")
    b_name = buildings["name"].astype(object).where(buildings["name"].notna(), None)
    grid = pd.Series(buildings["grid_code"].astype(object).to_numpy(), index=buildings.index)
    names = pd.Series(b_name.to_numpy(), index=buildings.index)
    level_names = pd.Series(levels["name"].astype(object).to_numpy(), index=levels.index)
    return Directory(
        ids=ids,
        codes=sensors["code"].astype(object).to_numpy(),
        types=sensors["type"].astype(object).to_numpy(),
        building_id=building_id,
        level_id=level_id,
        grid_code=grid.reindex(building_id).astype(object).where(lambda s: s.notna(), None).to_numpy(),
        unit=sensors["unit"].astype(object).where(sensors["unit"].notna(), None).to_numpy(),
        low=_float_column(sensors, "threshold_low"),
        high=_float_column(sensors, "threshold_high"),
        interval_s=sensors["reporting_interval_s"].to_numpy(dtype="float64", na_value=np.nan),
        status=sensors["status"].astype(object).to_numpy(),
        last_value=_float_column(sensors, "last_value"),
        last_seen_ms=epoch_ms(sensors["last_seen"]),
        building_name=names.reindex(building_id).astype(object).where(lambda s: s.notna(), None).to_numpy(),
        level_name=level_names.reindex(level_id).astype(object).where(lambda s: s.notna(), None).to_numpy(),
    )
