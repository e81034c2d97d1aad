"""Rasters: metadata, PNG tiles with a colour map, point values and zonal statistics over features."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import numpy as np
import orjson
import shapely
from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from api.deps import RoleDep, StoreDep, require
from api.links import JSON, base_url, link
from layers import RASTERS, RasterLayer, Role, get_raster
from twin.errors import InvalidQuery, NotFound
from twin.raster import open_raster, render_tile, sample_points, zonal_stats
from twin.store.base import FeatureQuery, Filter, Op, Store
from twin.store.checks import known_layer

router = APIRouter(tags=["rasters"])

PNG = "image/png"
MAX_ZONES = 5_000


def _raster(raster_id: str, role: Role) -> RasterLayer:
    try:
        raster = get_raster(raster_id)
    except KeyError as err:
        raise NotFound(str(err.args[0])) from None
    require(role, raster.read_roles, f"raster {raster_id!r}")
    return raster


def _describe(request: Request, store: Store, raster: RasterLayer) -> dict[str, Any]:
    root = base_url(request)
    source = open_raster(store.raster_path(raster.id))
    dataset = source.dataset()
    return {
        "id": raster.id,
        "title": f"{raster.title_zh} · {raster.title_en}",
        "description": raster.description,
        "crs": source.crs.uri,
        "bounds": list(dataset.bounds),
        "size": [dataset.width, dataset.height],
        "resolution_m": list(dataset.res),
        "overviews": dataset.overviews(1),
        "unit": raster.unit,
        "valueRange": list(raster.value_range),
        "colormap": raster.colormap,
        "links": [
            link(f"{root}/rasters/{raster.id}", "self", JSON, raster.title_en),
            {**link(f"{root}/rasters/{raster.id}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}.png", "item", PNG,
                    "PNG tiles"), "templated": True},
            link(f"{root}/rasters/{raster.id}/point", "http://www.opengis.net/def/rel/ogc/1.0/data", JSON,
                 "Value at a point (?lon=&lat=)"),
        ],
    }


@router.get("/rasters", summary="Rasters")
def rasters(request: Request, store: StoreDep, role: RoleDep) -> JSONResponse:
    """The twin's rasters (DEM, underground-void risk) the caller may read."""
    readable = [r for r in RASTERS if role in r.read_roles or role is Role.ADMIN]
    return JSONResponse({"rasters": [_describe(request, store, r) for r in readable]})


@router.get("/rasters/{raster_id}", summary="A raster")
def raster(request: Request, store: StoreDep, role: RoleDep, raster_id: str) -> JSONResponse:
    """Metadata of one raster: CRS, bounds, resolution, unit, overviews and links."""
    return JSONResponse(_describe(request, store, _raster(raster_id, role)))


@router.get("/rasters/{raster_id}/tiles/{tms_id}/{z}/{y}/{x}.png", summary="A raster tile", response_class=Response,
            responses={200: {"description": "A PNG tile", "content": {PNG: {}}},
                       304: {"description": "Unchanged since the ETag in If-None-Match"}})
def raster_tile(
    request: Request,
    store: StoreDep,
    role: RoleDep,
    raster_id: str,
    tms_id: str,
    z: Annotated[int, Path(ge=0, le=24)],
    y: Annotated[int, Path(ge=0)],
    x: Annotated[int, Path(ge=0)],
    colormap: Annotated[str | None, Query(description="terrain, risk or gray")] = None,
    rescale: Annotated[str | None, Query(description="min,max of the colour ramp")] = None,
) -> Response:
    """A 256×256 RGBA PNG of the raster in the tile, coloured; transparent off the raster and on nodata."""
    meta = _raster(raster_id, role)
    value_range = meta.value_range
    if rescale is not None:
        try:
            low, high = (float(v) for v in rescale.split(","))
        except ValueError:
            raise InvalidQuery(f"rescale must be 'min,max', got {rescale!r}") from None
        value_range = (low, high)
    path = store.raster_path(raster_id)
    etag = '"' + hashlib.blake2b(f"{path.stat().st_mtime_ns}|{tms_id}|{z}|{y}|{x}|{colormap}|{value_range}".encode(),
                                 digest_size=12).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=3600"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    data = render_tile(path, z, x, y, tms=tms_id, colormap=colormap or meta.colormap, value_range=value_range)
    return Response(data, media_type=PNG, headers=headers)


@router.get("/rasters/{raster_id}/point", summary="Raster value at a point")
def raster_point(
    store: StoreDep,
    role: RoleDep,
    raster_id: str,
    lon: Annotated[float, Query(ge=-180, le=180)],
    lat: Annotated[float, Query(ge=-90, le=90)],
) -> JSONResponse:
    """The raster's value at lon/lat (EPSG:4326); ``null`` off the raster or on nodata."""
    meta = _raster(raster_id, role)
    value = float(sample_points(store.raster_path(raster_id), [lon], [lat])[0])
    return JSONResponse({"raster": raster_id, "lon": lon, "lat": lat, "unit": meta.unit,
                         "value": None if np.isnan(value) else value})


@router.post("/rasters/{raster_id}/zonal", summary="Zonal statistics")
def raster_zonal(
    store: StoreDep,
    role: RoleDep,
    raster_id: str,
    body: Annotated[dict[str, Any], Body(examples=[{"collection": "buildings", "ids": [1, 2, 3]},
                                                   {"geometry": {"type": "Polygon", "coordinates": [[]]}}])],
) -> JSONResponse:
    """Statistics of the raster under a GeoJSON geometry (lon/lat) or under features of a collection.

    Body: ``{"geometry": GeoJSON}``, or ``{"collection": "buildings", "ids": [..]}``, or
    ``{"collection": "grids", "codes": [..]}`` (features by ``code``).
    """
    _raster(raster_id, role)
    if "geometry" in body:
        try:
            geometry = shapely.from_geojson(_json(body["geometry"]))
        except (shapely.errors.GEOSException, ValueError, TypeError) as err:
            raise InvalidQuery(f"geometry is not valid GeoJSON: {err}") from None
        keys: list[Any] = ["geometry"]
        geoms = [geometry]
    elif "collection" in body:
        layer = known_layer(str(body["collection"]))
        if not layer.is_spatial or not layer.readable_by(role):
            raise InvalidQuery(f"collection {layer.id!r} is not a readable spatial collection")
        if "ids" in body:
            selector = Filter(layer.key, Op.IN, [int(i) for i in body["ids"]])
        elif "codes" in body and layer.has_field("code"):
            selector = Filter("code", Op.IN, [str(c) for c in body["codes"]])
        else:
            raise InvalidQuery("give 'geometry', or 'collection' with 'ids' (or 'codes')")
        if len(selector.value) > MAX_ZONES:
            raise InvalidQuery(f"at most {MAX_ZONES} features per request")
        frame = store.query(layer.id, FeatureQuery(filters=(selector,)))
        keys, geoms = list(frame.index), list(frame.geometry)
    else:
        raise InvalidQuery("give 'geometry', or 'collection' with 'ids' (or 'codes')")
    stats = zonal_stats(store.raster_path(raster_id), geoms).astype(float)
    records = stats.where(stats.notna(), None).to_dict(orient="records")
    zones = [{"id": int(key) if isinstance(key, np.integer) else key, **record}
             for key, record in zip(keys, records, strict=True)]
    return JSONResponse({"raster": raster_id, "zones": zones})


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
