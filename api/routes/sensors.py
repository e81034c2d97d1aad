"""A sensor's reading history, downsampled for charts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import StoreDep
from api.iotdeps import RuntimeDep, StaffDep
from twin.errors import InvalidQuery
from twin.iot.history import parse_bucket, sensor_history
from twin.values import parse_instant

router = APIRouter(tags=["sensors"])


def _instant(name: str, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return parse_instant(value).to_pydatetime()
    except ValueError as err:
        raise InvalidQuery(f"{name}: {err}") from None


@router.get("/sensors/{sensor_id}/readings", summary="Reading history of a sensor")
def readings(
    sensor_id: int,
    store: StoreDep,
    runtime: RuntimeDep,
    _caller: StaffDep,
    start: Annotated[str | None, Query(description="RFC 3339; default: 24 h before end")] = None,
    end: Annotated[str | None, Query(description="RFC 3339; default: now")] = None,
    bucket: Annotated[str | None, Query(description="bucket size: 300, 5m, 1h, 1d or PT5M")] = None,
) -> dict[str, Any]:
    """Raw readings, or min/max/mean/count per ``bucket``; long ranges are bucketed automatically to stay small."""
    return sensor_history(store, sensor_id, start=_instant("start", start), end=_instant("end", end),
                          bucket_s=parse_bucket(bucket) if bucket else None,
                          max_points=runtime.settings.history_max_points).as_dict()
