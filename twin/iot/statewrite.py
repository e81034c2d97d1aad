"""Sensor rows (status, last value, last seen) to write from the engine state, in slices for ``Store.update_many``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.iot.engine import EngineState


@dataclass
class Slice:
    """Rows taken from the state's dirty marks, as frames ready for ``Store.update_many``."""

    rows: np.ndarray
    status_rows: np.ndarray
    frames: list[pd.DataFrame]

    @property
    def size(self) -> int:
        """How many sensor rows the slice writes."""
        return len(self.rows)

    def give_back(self, state: EngineState) -> None:
        """Mark the rows dirty again (their write failed)."""
        state.dirty[self.rows] = True
        state.status_dirty[self.status_rows] = True


def take_slice(state: EngineState, limit: int, *, values: bool = True) -> Slice | None:
    """Up to ``limit`` dirty rows, status changes first, cleared from the dirty marks; ``None`` when none are dirty.

    Without ``values`` only rows whose status changed are taken (rows that only have a new last value wait).

    Rows are sorted by id within the slice (the store walks its table in order). Rows whose status did not change
    write last value and last seen only, which spares the store's index on status; rows never seen write status only.
    """
    changed = np.flatnonzero(state.status_dirty)
    rows = changed[:limit]
    if len(rows) < limit and values:
        rows = np.concatenate([rows, np.flatnonzero(state.dirty & ~state.status_dirty)[: limit - len(rows)]])
    if not len(rows):
        return None
    status_rows = rows[state.status_dirty[rows]]
    frames = state_frames(state, rows)
    state.dirty[rows] = False
    state.status_dirty[rows] = False
    return Slice(rows, status_rows, frames)


def state_frames(state: EngineState, rows: np.ndarray) -> list[pd.DataFrame]:
    """Frames indexed by sensor id: status where it changed, last value and last seen where known."""
    rows = rows[np.argsort(state.directory.ids[rows], kind="stable")]
    ids = state.directory.ids[rows]
    value, seen = state.last_value[rows], state.last_seen_ms[rows]
    known = np.isfinite(value) & np.isfinite(seen)
    status = state.status_dirty[rows]
    frames = []
    for mask, columns in ((known & status, ("status", "last_value", "last_seen")),
                          (known & ~status, ("last_value", "last_seen")),
                          (~known, ("status",))):
        if not mask.any():
            continue
        data = {"status": state.status[rows][mask].astype(str),
                "last_value": value[mask],
                "last_seen": pd.to_datetime(np.nan_to_num(seen[mask]).astype("int64"), unit="ms", utc=True)}
        frames.append(pd.DataFrame({c: data[c] for c in columns}, index=pd.Index(ids[mask], name="id")))
    return frames
