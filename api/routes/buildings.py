"""The inspectors' questions: building search, fire profiles, nearest facilities, grid summaries, inspections."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import PrincipalDep, RoleDep, StoreDep, require
from layers import STAFF, Role
from layers.catalogue import FACILITY_TYPES, GRID_LEVELS, INSPECTION_RESULTS
from twin.errors import InvalidQuery
from twin.inspection import (
    SummaryCache,
    fire_profile,
    grid_summary,
    nearest_facilities,
    record_inspection,
    search_buildings,
    update_facility,
)
from twin.records import json_records

router = APIRouter(tags=["inspection"])

INSPECTORS = frozenset({Role.INSPECTOR, Role.ADMIN})


def summary_cache(request: Request) -> SummaryCache:
    """The app's grid-summary cache (one per process, over the app's one store)."""
    cache = getattr(request.app.state, "summary_cache", None)
    if cache is None:
        cache = request.app.state.summary_cache = SummaryCache()
    return cache


SummaryCacheDep = Annotated[SummaryCache, Depends(summary_cache)]


@router.get("/buildings/search", summary="Find buildings by name, address or code")
def search(store: StoreDep, q: Annotated[str, Query(min_length=1, max_length=100, description="text to find")],
           limit: Annotated[int, Query(ge=1, le=100)] = 20) -> JSONResponse:
    """Buildings whose code, Chinese name or address contains ``q`` (exact code first, then names)."""
    hits = search_buildings(store, q, limit)
    records = json_records(hits, ["code", "name", "address", "use", "height_m", "floors_above", "grid_code"])
    for record, point in zip(records, hits.geometry.representative_point(), strict=True):
        record["lon"], record["lat"] = round(point.x, 7), round(point.y, 7)
    return JSONResponse({"query": q, "buildings": records})


@router.get("/buildings/{building_id}/fire-profile", summary="A building's fire profile")
def profile(store: StoreDep, role: RoleDep, building_id: int) -> JSONResponse:
    """Levels with refuge floors, facilities and sensors per level, alarms, inspections and fire-code checks."""
    require(role, STAFF, "the fire profile")
    return JSONResponse(fire_profile(store, building_id))


FacilityType = Annotated[str | None, Query(description=f"one of {', '.join(FACILITY_TYPES)}")]


def _nearest_response(frame: Any) -> JSONResponse:
    records = json_records(frame, ["code", "type", "status", "building_id", "distance_m"])
    for record, point in zip(records, frame.geometry, strict=True):
        record["lon"], record["lat"] = round(point.x, 7), round(point.y, 7)
        record["distance_m"] = round(record["distance_m"], 2)
    return JSONResponse({"facilities": records})


def _check_type(facility_type: str | None) -> None:
    if facility_type is not None and facility_type not in FACILITY_TYPES:
        raise InvalidQuery(f"unknown facility type {facility_type!r}")


@router.get("/buildings/{building_id}/nearest", summary="Facilities nearest to a building")
def nearest_to_building(store: StoreDep, role: RoleDep, building_id: int, type: FacilityType = None,
                        k: Annotated[int, Query(ge=1, le=100)] = 5) -> JSONResponse:
    """The ``k`` facilities (e.g. ``type=outdoor_hydrant``) nearest to the building's footprint, in metres."""
    require(role, STAFF, "fire facilities")
    _check_type(type)
    return _nearest_response(nearest_facilities(store, building_id=building_id, facility_type=type, k=k))


@router.get("/nearest", summary="Facilities nearest to a point")
def nearest_to_point(store: StoreDep, role: RoleDep, lon: Annotated[float, Query(ge=-180, le=180)],
                     lat: Annotated[float, Query(ge=-90, le=90)], type: FacilityType = None,
                     k: Annotated[int, Query(ge=1, le=100)] = 5) -> JSONResponse:
    """The ``k`` facilities nearest to lon/lat (EPSG:4326), in metres."""
    require(role, STAFF, "fire facilities")
    _check_type(type)
    return _nearest_response(nearest_facilities(store, lon=lon, lat=lat, facility_type=type, k=k))


@router.get("/grids/summary", summary="Figures per grid cell")
def summary(store: StoreDep, role: RoleDep, cache: SummaryCacheDep,
            level: Annotated[str, Query(description=", ".join(GRID_LEVELS))] = "grid",
            code: Annotated[list[str] | None, Query(description="only these cells")] = None) -> JSONResponse:
    """Buildings, super high-rises, faulty facilities, offline sensors and open alarms per cell of ``level``.

    Cached per level until one of the layers it counts changes.
    """
    require(role, STAFF, "grid summaries")
    table = grid_summary(store, level, code, cache=cache)
    return JSONResponse({"level": level, "cells": json_records(table, key="code")})


class InspectionIn(BaseModel):
    """An inspection to record."""

    model_config = ConfigDict(extra="forbid")

    result: str = Field(description=", ".join(INSPECTION_RESULTS))
    facility_id: int | None = None
    notes: str | None = Field(default=None, max_length=2000)
    inspected_at: dt.datetime | None = None


@router.post("/buildings/{building_id}/inspections", summary="Record an inspection", status_code=201)
def inspect(store: StoreDep, principal: PrincipalDep, building_id: int, body: InspectionIn) -> JSONResponse:
    """Record an inspection of the building or one of its facilities (inspector role)."""
    require(principal.role, INSPECTORS, "recording inspections")
    inspection_id = record_inspection(store, building_id, principal.name, body.result,
                                      facility_id=body.facility_id, notes=body.notes,
                                      inspected_at=body.inspected_at)
    return JSONResponse({"id": inspection_id, "building_id": building_id}, status_code=201)


@router.patch("/facilities/{facility_id}", summary="Change a facility's status or inspection dates")
def patch_facility(store: StoreDep, role: RoleDep, facility_id: int,
                   changes: Annotated[dict[str, Any], Body(examples=[{"status": "fault"}])]) -> JSONResponse:
    """Set ``status`` (normal, fault, disabled), ``last_inspected`` or ``next_inspection`` (inspector role)."""
    require(role, INSPECTORS, "changing facilities")
    update_facility(store, facility_id, changes)
    [record] = json_records(store.get("fire_facilities", facility_id), ["code", "type", "status", "last_inspected",
                                                                         "next_inspection"])
    return JSONResponse(record)
