"""Small helpers shared by the benchmark scripts: timing summaries, resident memory, CPU time, free ports."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def summarize(samples_ms: list[float]) -> str:
    """``median / p95 / max`` of millisecond samples."""
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):.2f} ms, p95 {p95:.2f} ms, max {ordered[-1]:.2f} ms (n={len(ordered)})"


def time_ms(fn: Callable[[], object]) -> tuple[float, object]:
    """Run ``fn`` once; returns (milliseconds, result)."""
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000, result


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shenzhen_gpkg() -> Path:
    """bench/out/shenzhen.gpkg, the 1,000,000-building set (dem.tif and void_risk.tif beside it), built on first use."""
    big = OUT / "shenzhen.gpkg"
    if not big.exists():
        OUT.mkdir(exist_ok=True)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "twin.cli", "sample", "--scale", "shenzhen", "--dir", str(OUT),
                        "--name", "shenzhen.gpkg"], check=True, stderr=subprocess.DEVNULL)
        print(f"built the Shenzhen-scale set: {time.perf_counter() - started:.0f} s")
    return big


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process has used so far (from /proc; 0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks
