"""OGC API – Tiles (vector): tile matrix sets, tilesets, tiles with ETags, TileJSON 3.0 and MapLibre styles."""

from __future__ import annotations

import gzip
import hashlib
from typing import Annotated, Any

import morecantile
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from api.deps import RoleDep, StoreDep, require
from api.links import JSON, base_url, link
from layers import LAYERS, Layer, Role
from twin.errors import InvalidQuery, NotFound
from twin.store.base import Store, TileRequest
from twin.store.checks import known_layer
from twin.tiles.cache import TileCache
from twin.tiles.style import maplibre_style

router = APIRouter(tags=["tiles"])

MVT = "application/vnd.mapbox-vector-tile"
STYLE = "application/vnd.mapbox.style+json"
#: What a vector tile request answers besides errors: the tile, an empty tile, or "unchanged" for a known ETag.
TILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "A Mapbox Vector Tile", "content": {MVT: {}}},
    204: {"description": "The tile is empty"},
    304: {"description": "Unchanged since the ETag in If-None-Match"},
}
TMS_ID = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
CENTER = (114.0239, 22.6119)  # 深圳北站
_TMS = morecantile.tms.get(TMS_ID)

Z = Annotated[int, Path(ge=0, le=24, description="tile matrix (zoom)")]
Row = Annotated[int, Path(ge=0, description="tile row (y)")]
Col = Annotated[int, Path(ge=0, description="tile column (x)")]
#: zlib level of gzipped tiles. On the 1,000,000-building set's z14–z16 tiles (30.8 KiB raw): level 1 takes
#: 0.32 ms a tile for 40.5 % of the raw size, level 3 0.43 ms for 39.2 %, level 6 0.84 ms for 37.2 %.
GZIP_LEVEL = 1


async def tile_cache(request: Request) -> TileCache:
    """The app's tile cache (one per process); ``async`` so that FastAPI resolves it without a thread hop."""
    cache = getattr(request.app.state, "tile_cache", None)
    if cache is None:
        cache = request.app.state.tile_cache = TileCache()
    return cache


CacheDep = Annotated[TileCache, Depends(tile_cache)]


def _matrix_set(tms_id: str) -> None:
    if tms_id != TMS_ID:
        raise NotFound(f"tile matrix set {tms_id!r} is not offered; use {TMS_ID}")


def _tile_layers(ids: list[str], role: Role) -> tuple[Layer, ...]:
    layers = []
    for layer_id in ids:
        layer = known_layer(layer_id)
        if not layer.is_spatial:
            raise InvalidQuery(f"{layer_id!r} is a table without geometry; it has no tiles")
        require(role, layer.read_roles, f"collection {layer_id!r}")
        layers.append(layer)
    return tuple(layers)


def _public_spatial(role: Role) -> list[Layer]:
    return [layer for layer in LAYERS if layer.is_spatial and layer.readable_by(role)]


def accepts_gzip(request: Request) -> bool:
    """Whether the client's ``Accept-Encoding`` allows gzip (``gzip;q=0`` refuses it)."""
    for item in request.headers.get("accept-encoding", "").lower().split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def gzip_tile(data: bytes) -> bytes:
    """``data`` gzip-compressed at ``GZIP_LEVEL`` (no timestamp, so equal tiles give equal bytes)."""
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


def tile_response(request: Request, store: Store, cache: TileCache, layers: tuple[Layer, ...],
                  z: int, y: int, x: int) -> Response:
    """The MVT for ``layers`` at z/y/x, with an ETag over the layers' change counters (``304`` when unchanged).

    The versions and the tile come from one :meth:`~twin.store.base.Store.tile_reader` (one database connection
    on PostGIS), versions first. A client that accepts gzip gets the tile gzip-compressed (``Content-Encoding:
    gzip``, as tile servers usually send MVT; browsers, MapLibre and GDAL decode it), compressed once at level
    ``GZIP_LEVEL`` and cached; each encoding has its own ETag.
    """
    ids = tuple(layer.id for layer in layers)
    tile = TileRequest(ids, z, x, y)  # validates the matrix limits
    compressed = accepts_gzip(request)
    with store.tile_reader() as reader:
        versions = reader.versions(ids)
        key = (ids, versions, z, x, y)
        digest = hashlib.blake2b(repr(key).encode(), digest_size=12).hexdigest()
        etag = f'"{digest}-gz"' if compressed else f'"{digest}"'
        headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Authorization, X-API-Key, Accept-Encoding"}
        if digest in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        packed = cache.get((*key, "gzip")) if compressed else None
        if packed is not None:
            return Response(packed, media_type=MVT, headers={**headers, "Content-Encoding": "gzip"})
        data = cache.get(key)
        if data is None:
            data = reader.tile(tile)
            cache.put(key, data)
    if not data:
        return Response(status_code=204, headers=headers)
    if compressed:
        packed = gzip_tile(data)
        cache.put((*key, "gzip"), packed)
        return Response(packed, media_type=MVT, headers={**headers, "Content-Encoding": "gzip"})
    return Response(data, media_type=MVT, headers=headers)


@router.get("/tileMatrixSets", summary="Tile matrix sets")
def tile_matrix_sets(request: Request) -> JSONResponse:
    """The tile matrix sets offered (WebMercatorQuad)."""
    href = f"{base_url(request)}/tileMatrixSets/{TMS_ID}"
    return JSONResponse({"tileMatrixSets": [{"id": TMS_ID, "title": "Google Maps Compatible for the World",
                                             "uri": TMS_URI, "links": [link(href, "self", JSON, TMS_ID)]}]})


@router.get("/tileMatrixSets/{tms_id}", summary="A tile matrix set")
def tile_matrix_set(tms_id: str) -> JSONResponse:
    """The tile matrix set definition (OGC 2DTMS JSON)."""
    _matrix_set(tms_id)
    return JSONResponse(_TMS.model_dump(exclude_none=True, mode="json"))


def _tileset(request: Request, layers: list[Layer], path: str, query: str = "") -> dict[str, Any]:
    root = base_url(request)
    template = f"{root}{path}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}{query}"
    return {
        "title": ", ".join(layer.title_en for layer in layers),
        "dataType": "vector",
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "tileMatrixSetURI": TMS_URI,
        "links": [
            {**link(template, "item", MVT, "Tiles"), "templated": True},
            link(f"{root}/tileMatrixSets/{TMS_ID}", "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", JSON,
                 TMS_ID),
            link(f"{root}{path}/tilejson.json{query}", "describedby", JSON, "TileJSON"),
        ],
        "layers": [{"id": layer.id, "title": layer.title_en, "dataType": "vector",
                    "geometryDimension": {"Point": 0, "LineString": 1}.get(layer.geometry_type.value, 2),
                    "minTileMatrix": str(layer.zoom.min_zoom), "maxTileMatrix": str(layer.zoom.max_zoom)}
                   for layer in layers],
    }


def tilejson(request: Request, store: Store, layers: list[Layer], path: str, query: str = "") -> dict[str, Any]:
    """TileJSON 3.0 for ``layers`` served under ``path``."""
    root = base_url(request)
    boxes = [b for b in (store.extent(layer.id) for layer in layers) if b is not None]
    bounds = [min(b.minx for b in boxes), min(b.miny for b in boxes), max(b.maxx for b in boxes),
              max(b.maxy for b in boxes)] if boxes else [-180, -85.0511, 180, 85.0511]
    return {
        "tilejson": "3.0.0",
        "name": ", ".join(layer.id for layer in layers),
        "scheme": "xyz",
        "tiles": [f"{root}{path}/{{z}}/{{y}}/{{x}}{query}"],
        "minzoom": min(layer.zoom.min_zoom for layer in layers),
        "maxzoom": min(max(layer.zoom.max_zoom for layer in layers), 22),
        "bounds": bounds,
        "center": [*CENTER, 15],
        "vector_layers": [{"id": layer.id, "description": f"{layer.title_zh} {layer.title_en}",
                           "minzoom": layer.zoom.min_zoom, "maxzoom": layer.zoom.max_zoom,
                           "fields": {f.name: f.type.value for f in layer.fields}} for layer in layers],
    }


Collections = Annotated[str | None, Query(description="comma-separated collection ids (default: all readable)")]


def _chosen(collections: str | None, role: Role) -> tuple[Layer, ...]:
    if collections is None:
        return tuple(_public_spatial(role))
    ids = [c.strip() for c in collections.split(",") if c.strip()]
    if not ids:
        raise InvalidQuery("collections must name at least one collection")
    return _tile_layers(ids, role)


@router.get("/tiles/{tms_id}/{z}/{y}/{x}", summary="A tile of several collections", response_class=Response,
            responses=TILE_RESPONSES)
def dataset_tile(request: Request, store: StoreDep, cache: CacheDep, role: RoleDep, tms_id: str, z: Z, y: Row,
                 x: Col, collections: Collections = None) -> Response:
    """One MVT holding several collections (``?collections=buildings,grids,sensors``)."""
    _matrix_set(tms_id)
    return tile_response(request, store, cache, _chosen(collections, role), z, y, x)


@router.get("/tiles/{tms_id}/tilejson.json", summary="TileJSON of several collections")
def dataset_tilejson(request: Request, store: StoreDep, role: RoleDep, tms_id: str,
                     collections: Collections = None) -> JSONResponse:
    """TileJSON 3.0 for the multi-collection tiles."""
    _matrix_set(tms_id)
    layers = list(_chosen(collections, role))
    query = f"?collections={','.join(layer.id for layer in layers)}"
    return JSONResponse(tilejson(request, store, layers, f"/tiles/{tms_id}", query))


@router.get("/collections/{collection_id}/tiles", summary="Tilesets of a collection")
def collection_tilesets(request: Request, role: RoleDep, collection_id: str) -> JSONResponse:
    """The collection's vector tilesets (one per tile matrix set)."""
    [layer] = _tile_layers([collection_id], role)
    path = f"/collections/{layer.id}/tiles/{TMS_ID}"
    return JSONResponse({"tilesets": [{**_tileset(request, [layer], path), "title": layer.title_en}]})


@router.get("/collections/{collection_id}/tiles/{tms_id}", summary="A collection's tileset")
def collection_tileset(request: Request, role: RoleDep, collection_id: str, tms_id: str) -> JSONResponse:
    """Tileset metadata: the tile URL template, the tiling scheme and the layer."""
    _matrix_set(tms_id)
    [layer] = _tile_layers([collection_id], role)
    return JSONResponse(_tileset(request, [layer], f"/collections/{layer.id}/tiles/{tms_id}"))


@router.get("/collections/{collection_id}/tiles/{tms_id}/tilejson.json", summary="TileJSON of a collection")
def collection_tilejson(request: Request, store: StoreDep, role: RoleDep, collection_id: str,
                        tms_id: str) -> JSONResponse:
    """TileJSON 3.0 of one collection."""
    _matrix_set(tms_id)
    layers = list(_tile_layers([collection_id], role))
    return JSONResponse(tilejson(request, store, layers, f"/collections/{collection_id}/tiles/{tms_id}"))


@router.get("/collections/{collection_id}/tiles/{tms_id}/{z}/{y}/{x}", summary="A tile of a collection",
            response_class=Response, responses=TILE_RESPONSES)
def collection_tile(request: Request, store: StoreDep, cache: CacheDep, role: RoleDep, collection_id: str,
                    tms_id: str, z: Z, y: Row, x: Col) -> Response:
    """One MVT of one collection."""
    _matrix_set(tms_id)
    return tile_response(request, store, cache, _tile_layers([collection_id], role), z, y, x)


@router.get("/styles", summary="Map styles")
def styles(request: Request, role: RoleDep) -> JSONResponse:
    """The MapLibre styles offered: the whole twin and one per collection."""
    root = base_url(request)
    ids = ["twin"] + [layer.id for layer in _public_spatial(role)]
    return JSONResponse({"styles": [{"id": i, "links": [link(f"{root}/styles/{i}", "stylesheet",
                                                             STYLE, i)]}
                                    for i in ids]})


@router.get("/styles/{style_id}", summary="A MapLibre style", response_class=JSONResponse,
            responses={200: {"content": {STYLE: {}}}})
def style(request: Request, role: RoleDep, style_id: str) -> JSONResponse:
    """A MapLibre style drawing the twin (``twin``) or one collection from the service's own tiles."""
    root = base_url(request)
    if style_id == "twin":
        layers = _public_spatial(role)
        url = f"{root}/tiles/{TMS_ID}/tilejson.json?collections={','.join(layer.id for layer in layers)}"
        name = "深圳北站数字孪生"
    else:
        layers = list(_tile_layers([style_id], role))
        url = f"{root}/collections/{style_id}/tiles/{TMS_ID}/tilejson.json"
        name = f"{layers[0].title_zh} {layers[0].title_en}"
    document = maplibre_style(name, layers, url, center=CENTER)
    return JSONResponse(document, media_type=STYLE)
