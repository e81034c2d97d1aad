"""HTTP load shared by the peer benchmarks: servers as child processes, and passes of concurrent clients.

A *pass* sends each path of a list once (or ``repeat`` times, in order) from ``clients`` threads that take the
next path from a shared cursor, so a pass over distinct tiles asks for every tile exactly once: against a fresh
twin process every request of the first pass is built, not served from the tile cache. Figures are per pass:
requests/s over the wall time, median and p95 latency, bytes, errors (any status outside 200/204).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.common import OUT, free_port

LOGS = OUT / "logs"


@dataclass
class Pass:
    """The outcome of one pass: per-request latencies (ms) of the answered requests, wall time, bytes, errors."""

    label: str
    latencies_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    bytes: int = 0
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status not in (200, 204))

    @property
    def rate(self) -> float:
        return self.ok / self.wall_s if self.wall_s else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")

    @property
    def median(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def p95(self) -> float:
        return self.percentile(0.95)

    def merged(self, other: Pass) -> Pass:
        """Two passes of the same server pooled: latencies together, wall times and bytes added."""
        return Pass(self.label, self.latencies_ms + other.latencies_ms, self.wall_s + other.wall_s,
                    self.bytes + other.bytes, self.statuses + other.statuses)

    def line(self, unit: str = "req") -> str:
        mean_kib = self.bytes / max(self.ok, 1) / 1024
        return (f"{self.label:<34} {self.rate:8.1f} {unit}/s  median {self.median:8.1f} ms  p95 {self.p95:8.1f} ms  "
                f"n={self.ok:<5} mean {mean_kib:7.1f} KiB  errors {self.errors}")


def drive(url: str, paths: Sequence[str], label: str, clients: int = 10, repeat: int = 1,
          timeout: float = 120.0) -> Pass:
    """Send every path ``repeat`` times from ``clients`` threads; one keep-alive connection per client."""
    work = [p for _ in range(repeat) for p in paths]
    result = Pass(label)
    lock = threading.Lock()
    cursor = iter(range(len(work)))

    def client() -> None:
        with httpx.Client(base_url=url, timeout=timeout) as http:
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                started = time.perf_counter()
                try:
                    response = http.get(work[index])
                    status, size = response.status_code, len(response.content)
                except httpx.HTTPError:
                    status, size = -1, 0
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    result.statuses[status] += 1
                    if status in (200, 204):
                        result.latencies_ms.append(elapsed)
                        result.bytes += size

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.wall_s = time.perf_counter() - started
    return result


def ratio_line(ours: Pass, theirs: Pass) -> str:
    """Throughput and p95 of ``ours`` against ``theirs``."""
    rate = ours.rate / theirs.rate if theirs.rate else float("inf")
    return (f"  → {ours.label} / {theirs.label}: throughput {rate:.2f}×, p95 {ours.p95:.1f} vs {theirs.p95:.1f} ms "
            f"({'lower or equal' if ours.p95 <= theirs.p95 else 'HIGHER'})")


class Server:
    """A server in a child process on a free port, ready once ``ready_path`` answers 200; log in bench/out/logs."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None, ready_path: str = "/",
                 cwd: Path | None = None, port: int | None = None, startup_s: float = 600.0):
        self.name, self.argv, self.ready_path, self.cwd, self.startup_s = name, argv, ready_path, cwd, startup_s
        self.port = port or free_port()
        self.env = {**os.environ, **(env or {})}
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_s = 0.0

    def argv_with_port(self) -> list[str]:
        return [a.replace("{port}", str(self.port)) for a in self.argv]

    def __enter__(self) -> Server:
        LOGS.mkdir(parents=True, exist_ok=True)
        log = (LOGS / f"{self.name}.log").open("wb")
        started = time.perf_counter()
        self.proc = subprocess.Popen(self.argv_with_port(), env=self.env, cwd=self.cwd, stdout=log,
                                     stderr=subprocess.STDOUT)
        deadline = started + self.startup_s
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                tail = (LOGS / f"{self.name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} while starting:\n{tail}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=5).status_code == 200:
                    self.started_s = time.perf_counter() - started
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"{self.name} did not answer {self.ready_path} within {self.startup_s:.0f} s")

    def __exit__(self, *_: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def load_average() -> str:
    """The 1/5/15-minute load averages, for the report."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
