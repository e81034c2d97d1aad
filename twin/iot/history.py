"""Reading history of one sensor over a time range, downsampled to min/max/mean per bucket so a month draws fast.

Uses only :meth:`Store.query` (filter on the sensor, the layer's time range, sorted by time) and numpy bucketing, so
every store backend serves it unchanged.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from twin.errors import InvalidQuery
from twin.store.base import FeatureQuery, Filter, Op, Sort, Store, TimeRange

_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_SHORT = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|min|h|d)")
_ISO = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")
#: Bucket sizes chosen automatically when none is asked for, in seconds.
NICE_BUCKETS = (1, 5, 10, 30, 60, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400, 604800)


def parse_bucket(text: str) -> float:
    """A bucket size in seconds from ``"300"``, ``"5m"``, ``"1h"``, ``"1d"`` or ISO 8601 ``"PT5M"``."""
    value = text.strip()
    seconds: float | None = None
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        seconds = float(value)
    elif (m := _SHORT.fullmatch(value)) is not None:
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    elif (m := _ISO.fullmatch(value.upper())) is not None and value.upper() not in ("P", "PT"):
        days, hours, minutes, secs = (float(g) if g else 0.0 for g in m.groups())
        seconds = days * 86400 + hours * 3600 + minutes * 60 + secs
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise InvalidQuery(f"bucket must be a positive duration such as 300, 5m, 1h or PT5M, got {text!r}")
    return seconds


@dataclass(frozen=True)
class History:
    """Raw points (``bucket_s`` is None) or buckets of one sensor between ``start`` and ``end``."""

    sensor_id: int
    start: datetime
    end: datetime
    bucket_s: float | None
    points: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"sensor_id": self.sensor_id, "start": _iso(self.start), "end": _iso(self.end),
                "bucket_s": self.bucket_s, "count": len(self.points), "points": self.points}


def _iso(t: datetime | pd.Timestamp) -> str:
    return pd.Timestamp(t).isoformat().replace("+00:00", "Z")


def buckets(ts_ms: np.ndarray, values: np.ndarray, start_ms: int, bucket_ms: int) -> list[dict[str, Any]]:
    """min/max/mean/count per bucket (aligned to ``start_ms``), for the buckets that hold readings."""
    if not len(ts_ms):
        return []
    index = (ts_ms - start_ms) // bucket_ms
    edges = np.flatnonzero(np.diff(index)) + 1
    starts = np.concatenate([[0], edges])
    counts = np.diff(np.concatenate([starts, [len(index)]]))
    mins = np.minimum.reduceat(values, starts)
    maxs = np.maximum.reduceat(values, starts)
    means = np.add.reduceat(values, starts) / counts
    times = pd.to_datetime(start_ms + index[starts] * bucket_ms, unit="ms", utc=True)
    return [{"t": _iso(t), "min": float(lo), "max": float(hi), "mean": round(float(mu), 6), "count": int(n)}
            for t, lo, hi, mu, n in zip(times, mins, maxs, means, counts, strict=True)]


#: The range a history may ask for: readings are kept to the millisecond since the Unix epoch.
EARLIEST = pd.Timestamp("1970-01-01T00:00:00Z")
LATEST = pd.Timestamp("2200-01-01T00:00:00Z")


def sensor_history(store: Store, sensor_id: int, *, start: datetime | None = None, end: datetime | None = None,
                   bucket_s: float | None = None, max_points: int = 2000) -> History:
    """Readings of ``sensor_id`` in ``[start, end]`` (default: the 24 hours up to now).

    With ``bucket_s`` the readings are reduced to buckets of that size; without it, raw readings come back unless
    there are more than ``max_points``, in which case the smallest :data:`NICE_BUCKETS` size that fits is used.
    """
    store.get("sensors", sensor_id)  # NotFound for an unknown sensor
    if end is None:
        end = pd.Timestamp.now(tz="UTC").to_pydatetime()
    if start is None:
        start = end - timedelta(days=1)
    for name, bound in (("start", start), ("end", end)):
        if not EARLIEST <= pd.Timestamp(bound) <= LATEST:
            raise InvalidQuery(f"{name} {pd.Timestamp(bound).isoformat()} is outside {EARLIEST.year}–{LATEST.year}")
    time_range = TimeRange(start, end)
    frame = store.query("readings", FeatureQuery(filters=(Filter("sensor_id", Op.EQ, sensor_id),),
                                                 time=time_range, sort=(Sort("ts"),), properties=("ts", "value")))
    ts = frame["ts"].dt.tz_convert(None).to_numpy(dtype="datetime64[ms]").view(np.int64)
    values = frame["value"].to_numpy(dtype=np.float64, na_value=np.nan)
    start_ms = int(pd.Timestamp(start).value // 1_000_000)
    if bucket_s is None and len(ts) > max_points:
        span = max((pd.Timestamp(end) - pd.Timestamp(start)).total_seconds(), 1.0)
        bucket_s = next((b for b in NICE_BUCKETS if span / b <= max_points), NICE_BUCKETS[-1])
    if bucket_s is None:
        times = pd.to_datetime(ts, unit="ms", utc=True)
        points = [{"t": _iso(t), "value": float(v)} for t, v in zip(times, values, strict=True)]
        return History(sensor_id, start, end, None, points)
    if (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds() / bucket_s > 100 * max_points:
        raise InvalidQuery(f"bucket {bucket_s:g} s is too small for this range; use a larger one")
    bucket_ms = max(round(bucket_s * 1000), 1)
    aligned = start_ms - start_ms % bucket_ms  # buckets on round boundaries (00:05:00, not 00:03:17)
    return History(sensor_id, start, end, bucket_s, buckets(ts, values, aligned, bucket_ms))
