"""What the live pipeline reports: counters, stored batches, commit results, and alarms as JSON."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from twin.iot.payload import Parsed, Readings


def now_ms() -> int:
    """The wall clock in milliseconds since the epoch."""
    return int(time.time() * 1000)


@dataclass
class IngestStats:
    """Counters since the runtime started (the dead-letter table keeps the durable count)."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    dead_by_reason: Counter[str] = field(default_factory=Counter)
    alarms_opened: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {"received": self.received, "stored": self.stored, "duplicates": self.duplicates,
                "dead_letters": self.dead_letters, "dead_letters_by_reason": dict(self.dead_by_reason),
                "alarms_opened": self.alarms_opened, "batches": self.batches}


@dataclass(frozen=True)
class StoredBatch:
    """A batch whose readings and dead letters are stored, waiting for :meth:`IotRuntime.evaluate`."""

    parsed: Parsed
    unique: Readings  # each (sensor, timestamp) once, in key order
    new: int  # readings the store did not hold yet
    received: int  # messages or items received, for the counters


@dataclass(frozen=True)
class CommitResult:
    """What one committed batch did."""

    accepted: int
    stored: int
    duplicates: int
    dead_letters: list[str]
    alarms: list[int]


def iso_ms(ms: float | None) -> str | None:
    """Milliseconds since the epoch as RFC 3339 UTC text (``None`` for a missing value)."""
    if ms is None or not np.isfinite(ms):
        return None
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").isoformat().replace("+00:00", "Z")


def alarm_record(row: pd.Series | dict[str, Any], alarm_id: int) -> dict[str, Any]:
    """An alarm as JSON (datetimes as RFC 3339)."""
    out: dict[str, Any] = {"id": int(alarm_id)}
    for name, value in dict(row).items():
        if name == "id":
            continue
        if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
            out[name] = None
        elif isinstance(value, pd.Timestamp):
            out[name] = value.isoformat().replace("+00:00", "Z")
        elif isinstance(value, np.integer):
            out[name] = int(value)
        else:
            out[name] = value
    return out
