"""Where the time of the live pipeline goes: recent durations per stage, summarised for ``GET /ingest/stats``.

Stages of a committed batch: ``wait`` (its oldest message's arrival to the start of the commit), ``parse``,
``store`` (dead letters and readings), ``engine``, ``alarms`` (storing the alarms opened), ``publish`` (events
to the stream), ``commit`` (all of the commit); of the clock: ``state`` (sensor rows written) and ``sweep``. Also
``batch`` (messages per batch), which is a count, not milliseconds.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import numpy as np


class Timings:
    """The last ``keep`` samples of each stage, thread-safe."""

    def __init__(self, keep: int = 2_000):
        self._keep = keep
        self._lock = threading.Lock()
        self._samples: dict[str, deque[tuple[float, float]]] = {}

    def record(self, stage: str, value: float) -> None:
        """Add one sample (milliseconds, or a count for ``batch``)."""
        with self._lock:
            samples = self._samples.get(stage)
            if samples is None:
                samples = self._samples[stage] = deque(maxlen=self._keep)
            samples.append((time.time(), value))

    def summary(self, since: float | None = None) -> dict[str, dict[str, Any]]:
        """``{stage: {n, p50, p95, max}}`` over the recent samples (recorded after ``since``, epoch seconds)."""
        after = -np.inf if since is None else since
        with self._lock:
            copies = {stage: np.array([v for t, v in samples if t > after], float)
                      for stage, samples in self._samples.items()}
        return {stage: {"n": len(v), "p50": round(float(np.percentile(v, 50)), 2),
                        "p95": round(float(np.percentile(v, 95)), 2), "max": round(float(v.max()), 2)}
                for stage, v in copies.items() if len(v)}
