"""HTTP batch ingest for gateways: ``POST /ingest/readings`` (JSON array or NDJSON), and the ingest counters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from api.deps import SettingsDep
from api.iotdeps import DeviceDep, RuntimeDep, StaffDep
from twin.errors import PayloadTooLarge

router = APIRouter(tags=["ingest"])

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines")
MAX_REASONS = 100


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit:,} bytes; send smaller batches")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than {limit:,} bytes; send smaller batches")
        chunks.append(chunk)
    return b"".join(chunks)


def _ndjson(content_type: str) -> bool | None:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in NDJSON_TYPES:
        return True
    if kind == "application/json":
        return False
    return None


@router.post("/ingest/readings", summary="Ingest a batch of readings (gateways)")
async def ingest_readings(request: Request, runtime: RuntimeDep, settings: SettingsDep,
                          _caller: DeviceDep) -> dict[str, Any]:
    """Store readings sent as a JSON array of ``{"sensor_id", "ts", "value"}`` or as NDJSON.

    Duplicates (same sensor and timestamp) are stored once; refused items go to the dead-letter table and are
    listed in ``reasons``. The response comes after the batch is committed, so a gateway may delete what it sent.
    """
    body = await _body(request, settings.api.max_body_bytes)
    ndjson = _ndjson(request.headers.get("content-type", ""))

    def work() -> Any:
        return runtime.commit(runtime.parse_http(body, ndjson=ndjson))

    result = await run_in_threadpool(work)
    return {
        "accepted": result.accepted,
        "stored": result.stored,
        "duplicates": result.duplicates,
        "dead_lettered": len(result.dead_letters),
        "reasons": result.dead_letters[:MAX_REASONS],
        "alarms": result.alarms,
    }


@router.get("/ingest/stats", summary="Ingest counters")
def ingest_stats(runtime: RuntimeDep, _caller: StaffDep, timings_since: Annotated[float | None, Query(
        description="timings of samples recorded after this instant only (seconds since the epoch)")] = None,
                 ) -> dict[str, Any]:
    """Counters since start (messages, readings stored, duplicates, dead letters by reason) and the MQTT link.

    ``timings_ms``: p50/p95/max of recent durations per pipeline stage (see ``twin.iot.timings``).
    """
    stats = runtime.stats.as_dict()
    stats["dead_letters_stored"] = runtime.store.count("dead_letters")
    stats["live"] = runtime.live
    stats["mqtt"] = runtime.ingester.status() if runtime.ingester is not None else None
    stats["last_event_id"] = runtime.hub.last_id
    stats["timings_ms"] = runtime.timings.summary(timings_since)
    return stats
