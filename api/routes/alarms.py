"""Alarms: the list with filters, the operator lifecycle (acknowledge, resolve) and the live event stream (SSE)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import SettingsDep, StoreDep
from api.iotdeps import OperatorDep, RuntimeDep, StaffDep
from twin.errors import InvalidQuery
from twin.iot.events import EventFilter, EventHub
from twin.iot.records import alarm_record
from twin.store.base import FeatureQuery, Filter, Op, Sort, TimeRange
from twin.values import parse_instant

router = APIRouter(tags=["alarms"])


class Actor(BaseModel):
    """Who acts on an alarm: the operator's name, when the key is shared by a console (default: the key's name)."""

    by: str | None = Field(default=None, min_length=1, max_length=100, description="the operator's name")


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def _interval(text: str | None) -> TimeRange | None:
    """``start/end`` (either may be ``..`` or empty) or a single instant, as in OGC API ``datetime``."""
    if not text:
        return None
    parts = text.split("/")
    if len(parts) > 2:
        raise InvalidQuery(f"datetime must be an instant or start/end, got {text!r}")
    try:
        ends = [None if p in ("", "..") else parse_instant(p).to_pydatetime() for p in parts]
    except ValueError as err:
        raise InvalidQuery(f"datetime: {err}") from None
    return TimeRange(ends[0], ends[-1]) if len(ends) == 2 else TimeRange(ends[0], ends[0])


def _grid_prefix(grid: str) -> str:
    if not grid.isalnum():
        raise InvalidQuery(f"grid must be a grid code (letters and digits), got {grid!r}")
    return grid


@router.get("/alarms", summary="Alarms, newest first")
def list_alarms(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    _caller: StaffDep,
    status: Annotated[str | None, Query(description="open, acknowledged, resolved (comma-separated)")] = None,
    building: Annotated[int | None, Query(description="building id")] = None,
    grid: Annotated[str | None, Query(description="grid code or the code of any ancestor (district …)")] = None,
    type: Annotated[str | None, Query(description="alarm types, e.g. smoke,offline (comma-separated)")] = None,
    severity: Annotated[str | None, Query(description="pre_alarm, fire_alarm, threshold, offline, fault")] = None,
    datetime: Annotated[str | None, Query(description="opened at: instant or start/end, '..' open")] = None,
    limit: Annotated[int, Query(ge=1)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Alarms matching every given filter, ``opened_at`` descending, with ``numberMatched`` and a next link."""
    if limit > settings.api.max_limit:
        raise InvalidQuery(f"limit must be at most {settings.api.max_limit}")
    filters: list[Filter] = []
    if statuses := _csv(status):
        filters.append(Filter("status", Op.IN, statuses))
    if building is not None:
        filters.append(Filter("building_id", Op.EQ, building))
    if grid:
        filters.append(Filter("grid_code", Op.LIKE, _grid_prefix(grid) + "%"))
    if types := _csv(type):
        filters.append(Filter("alarm_type", Op.IN, types))
    if severities := _csv(severity):
        filters.append(Filter("severity", Op.IN, severities))
    query = FeatureQuery(filters=tuple(filters), time=_interval(datetime), sort=(Sort("opened_at", descending=True),),
                         limit=limit, offset=offset)
    frame = store.query("alarms", query)
    matched = store.count("alarms", query)
    alarms = [alarm_record(row, int(i)) for i, row in frame.iterrows()]
    links = []
    if offset + len(alarms) < matched:
        links.append({"rel": "next", "type": "application/json",
                      "href": str(request.url.include_query_params(offset=offset + limit, limit=limit))})
    return {"alarms": alarms, "numberMatched": matched, "numberReturned": len(alarms), "links": links}


@router.post("/alarms/{alarm_id}/acknowledge", summary="Acknowledge an open alarm")
async def acknowledge(alarm_id: int, runtime: RuntimeDep, caller: OperatorDep,
                      actor: Actor | None = None) -> dict[str, Any]:
    """Acknowledge: open → acknowledged, with who and when (409 from any other status)."""
    return await run_in_threadpool(runtime.acknowledge, alarm_id, (actor and actor.by) or caller.name)


@router.post("/alarms/{alarm_id}/resolve", summary="Resolve an alarm")
async def resolve(alarm_id: int, runtime: RuntimeDep, caller: OperatorDep,
                  actor: Actor | None = None) -> dict[str, Any]:
    """Resolve: open or acknowledged → resolved, with who and when; the alarm stays listed as history."""
    return await run_in_threadpool(runtime.resolve, alarm_id, (actor and actor.by) or caller.name)


def _cursor(hub: EventHub, header: str | None, query: int | None) -> int:
    raw = header if header is not None else query
    if raw is None:
        return hub.last_id
    try:
        return int(raw)
    except ValueError:
        raise InvalidQuery(f"Last-Event-ID must be an event id (an integer), got {raw!r}") from None


async def _events(hub: EventHub, cursor: int, wanted: EventFilter, ping_s: float) -> AsyncIterator[bytes]:
    waiter = hub.register()
    flag = waiter[1]
    try:
        yield b"retry: 2000\n: connected\n\n"
        while True:
            flag.clear()
            events, lost = hub.after(cursor)
            if lost:
                cursor = events[0].id - 1 if events else hub.last_id
                yield b'id: %d\nevent: reset\ndata: {"reason": "events were missed; reload GET /alarms"}\n\n' % cursor
            for event in events:
                cursor = event.id
                if wanted.matches(event):
                    yield event.sse()
            if hub.closed:
                return
            if events:
                continue
            try:
                await asyncio.wait_for(flag.wait(), ping_s)
            except TimeoutError:
                yield b": ping\n\n"
    finally:
        hub.unregister(waiter)


@router.get("/alarms/stream", summary="Live alarm and sensor-state events (Server-Sent Events)")
def stream(
    runtime: RuntimeDep,
    _caller: StaffDep,
    grid: Annotated[str | None, Query(description="grid code prefixes (comma-separated)")] = None,
    building: Annotated[str | None, Query(description="building ids (comma-separated)")] = None,
    type: Annotated[str | None, Query(description="alarm/sensor types, severities, statuses or alarm|sensor")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    since: Annotated[int | None, Query(description="replay after this event id (like Last-Event-ID)")] = None,
) -> StreamingResponse:
    """``event: alarm`` (opened/acknowledged/resolved) and ``event: sensor`` (status changes), each with an ``id``.

    Reconnect with ``Last-Event-ID`` to get every event after it from the replay buffer; if it is older than the
    buffer, an ``event: reset`` says to reload ``GET /alarms`` first.
    """
    try:
        buildings = frozenset(int(b) for b in _csv(building))
    except ValueError:
        raise InvalidQuery(f"building must be building ids, got {building!r}") from None
    wanted = EventFilter(tuple(_grid_prefix(g) for g in _csv(grid)), buildings, frozenset(_csv(type)))
    hub = runtime.hub
    cursor = _cursor(hub, last_event_id, since)
    return StreamingResponse(_events(hub, cursor, wanted, runtime.settings.stream_ping_s),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
