"""Map screens: the district screen at ``/`` (for browsers), the tower and grid views, and what their pages load.

Every script, style and image comes from this service: the vendored deck.gl bundles at ``/static/vendor/…``
(``scripts/ensure_assets.sh``), the page script at ``/static/twin/…``, the basemap drawn from the twin's DEM, the
vector tiles. A page is a thin shell; its script fetches the screen JSON with the API key it holds (``X-API-Key``),
so the screen shows what the key's role may see, and the district screen follows ``/alarms/stream``.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import pathlib
import threading
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from api.deps import PrincipalDep, RoleDep, StoreDep, require
from layers import STAFF, Role
from twin.errors import InvalidQuery, NotFound
from twin.raster import encode_png
from twin.render import colors
from twin.render.bake import MEDIA_TYPE as GROUND_MEDIA_TYPE
from twin.render.bake import Backdrop, bake
from twin.render.basemap import Basemap, hillshade_rgba
from twin.render.district import FIGURES, TileSource, district_screen, load_district
from twin.render.grid import grid_screen, load_grid
from twin.render.ground import ground_layers
from twin.render.offline import OWN_FILES, SERVED_CSP, own_digest, own_file, page_html, vendor_files
from twin.render.screen import Screen
from twin.render.state import StateBoard
from twin.render.tower import load_tower, tower_screen
from twin.store.base import Store

router = APIRouter(tags=["screens"])

HTML_HEADERS = {"Content-Security-Policy": SERVED_CSP, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
TMS = "WebMercatorQuad"
MEDIA = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", "": "text/plain; charset=utf-8"}
_lock = threading.Lock()
#: Layers the district screen reads: its cached JSON is rebuilt when one of them changes.
DISTRICT_LAYERS = ("grids", "buildings", "roads", "fire_stations", "fire_facilities", "sensors", "alarms")
#: Layers its baked ground reads (grid figures for staff also count facilities, sensors and alarms): an alarm does not
#: re-bake the ground of a public figure.
GROUND_LAYERS = ("grids", "buildings", "roads")


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _page(request: Request, title: str, screen_url: str, *, live: bool = False, kind: str) -> Response:
    html = page_html(title=title, screen_url=screen_url, root=_root(request), live=live, kind=kind)
    return Response(html, media_type="text/html; charset=utf-8", headers=HTML_HEADERS)


def _json(document: Any, request: Request | None = None) -> Response:
    """A JSON answer, gzip-compressed (fast level) when it is large and the client accepts it."""
    body = orjson.dumps(document)
    headers = {"Cache-Control": "no-store", "Vary": "Accept-Encoding"}
    if request is not None and len(body) > 4096 and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=4, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)


def _board(request: Request, store: Store) -> StateBoard:
    with _lock:
        board = getattr(request.app.state, "state_board", None)
        if board is None or board.store is not store:
            board = request.app.state.state_board = StateBoard(store)
    return board


def _relief(request: Request, store: Store) -> tuple[Backdrop, bytes, tuple[float, float, float, float], str]:
    """The DEM's shaded relief as a backdrop to bake on and as a PNG, its bounds and the PNG's ETag (once a DEM)."""
    path = store.raster_path("dem")
    stamp = f"{path}:{path.stat().st_mtime_ns}"
    cached = getattr(request.app.state, "screen_basemap", None)
    if cached is None or cached[0] != stamp:
        rgba, bounds = hillshade_rgba(path)
        png = encode_png(rgba)
        etag = '"' + hashlib.blake2b(png, digest_size=12).hexdigest() + '"'
        cached = request.app.state.screen_basemap = (stamp, Backdrop(rgba, bounds), png, bounds, etag)
    return cached[1], cached[2], cached[3], cached[4]


def _basemap_png(request: Request, store: Store) -> tuple[bytes, tuple[float, float, float, float], str]:
    _, png, bounds, etag = _relief(request, store)
    return png, bounds, etag


def _basemap(request: Request, store: Store) -> Basemap:
    _, bounds, etag = _basemap_png(request, store)
    return Basemap(f"{_root(request)}/map/basemap.png?v={etag.strip(chr(34))}", bounds)


def _last_event_id(request: Request) -> int | None:
    runtime = getattr(request.app.state, "iot", None)
    return None if runtime is None else int(runtime.hub.last_id)


def district_page(request: Request) -> Response:
    """The district screen's page (what ``/`` shows a browser)."""
    return _page(request, "深圳北站国际商务区数字孪生 · 消防安全一张图", "map/district.json", live=True,
                 kind="district")


@router.get("/map", summary="The district screen (HTML)", response_class=Response)
def district(request: Request) -> Response:
    """The command-centre screen of the whole district; ``/`` shows the same page to browsers."""
    return district_page(request)


def _district_screen(request: Request, store: Store, role: Role, figure: str) -> tuple[Screen, str, bytes]:
    """The screen, and the ground image baked for it (its digest and bytes)."""
    root = _root(request)
    data = load_district(store, role=role, figure=figure, inline=False, board=_board(request, store),
                         basemap=_basemap(request, store), footprints=True)
    backdrop, _, bounds, _ = _relief(request, store)
    layers = GROUND_LAYERS + (DISTRICT_LAYERS if FIGURES[data.figure][1] else ())
    key = (data.figure, tuple(store.layer_version(layer) for layer in layers), id(backdrop))
    with _lock:
        grounds: dict[Any, tuple[str, bytes]] = request.app.state.__dict__.setdefault("district_grounds", {})
        baked = grounds.get(key)
    if baked is None:
        image = bake(backdrop, ground_layers(data))
        baked = (hashlib.blake2b(image, digest_size=16).hexdigest(), image)
        with _lock:
            if len(grounds) >= 8:
                grounds.pop(next(iter(grounds)))
            grounds[key] = baked
    data.ground = Basemap(f"{root}/map/ground/{baked[0]}.webp", bounds)
    tiles = TileSource(f"{root}/collections/buildings/tiles/{TMS}/{{z}}/{{y}}/{{x}}",
                       f"{root}/collections/sensors/tiles/{TMS}/{{z}}/{{y}}/{{x}}" if data.staff else None)
    return district_screen(data, tiles), baked[0], baked[1]


def _district_document(request: Request, store: Store, role: Role, figure: str) -> dict[str, Any]:
    """The district screen as JSON, cached until one of the layers it reads changes (a new alarm, a write …)."""
    staff = role in STAFF or role is Role.ADMIN
    key = (staff, figure, _root(request), tuple(store.layer_version(layer) for layer in DISTRICT_LAYERS))
    with _lock:
        cache: dict[Any, tuple[dict[str, Any], str, bytes]] = request.app.state.__dict__.setdefault(
            "district_cache", {})
        entry = cache.get(key)
    if entry is None:
        screen, digest, image = _district_screen(request, store, role, figure)
        entry = (screen.to_dict(), digest, image)
        with _lock:
            if len(cache) >= 8:
                cache.pop(next(iter(cache)))
            cache[key] = entry
    return entry[0]


def _ground_image(request: Request, digest: str) -> bytes | None:
    """A baked ground image still held by the caches (its URL names its content: no key needed)."""
    with _lock:
        grounds = request.app.state.__dict__.get("district_grounds", {})
        found = next((image for d, image in grounds.values() if d == digest), None)
        if found is None:  # a page holding a screen whose ground was since re-baked
            cache = request.app.state.__dict__.get("district_cache", {})
            found = next((image for _, d, image in cache.values() if d == digest), None)
        return found


@router.get("/map/district.json", summary="The district screen (deck.gl JSON)")
def district_json(request: Request, store: StoreDep, role: RoleDep,
                  figure: Annotated[str, Query(description=", ".join(FIGURES))] = "population") -> Response:
    """The district screen for the caller's role: public layers for everyone; states, alarms, sensors for staff."""
    if figure not in FIGURES:
        raise InvalidQuery(f"unknown figure {figure!r}; use one of {', '.join(FIGURES)}")
    since = _last_event_id(request)  # read before the states, so no event falls between them
    document = _district_document(request, store, role, figure)
    if document["twin"].get("live") is not None:
        document = {**document, "twin": {**document["twin"], "live": {**document["twin"]["live"], "since": since}}}
    return _json(document, request)


@router.get("/map/state", summary="Building states")
def building_states(request: Request, store: StoreDep, role: RoleDep,
                    buildings: Annotated[str | None, Query(description="building ids (comma-separated)")] = None,
                    ) -> Response:
    """States of the buildings that are not ``normal`` (of ``buildings`` only, when given), for staff."""
    require(role, STAFF, "building states")
    try:
        ids = [int(b) for b in buildings.split(",") if b.strip()] if buildings else None
    except ValueError:
        raise InvalidQuery(f"buildings must be building ids, got {buildings!r}") from None
    since = _last_event_id(request)
    states = _board(request, store).states(ids)
    return _json({"states": {str(k): v for k, v in states.items()}, "since": since,
                  "labels": colors.STATE_LABELS})


@router.get("/map/session", summary="Who the screen's key belongs to")
def session(principal: PrincipalDep) -> Response:
    """The role and name of the key the page sends (``public`` without one)."""
    return _json({"role": principal.role.value, "name": principal.name})


@router.get("/map/basemap.png", summary="The basemap: shaded relief of the twin's DEM", response_class=Response)
def basemap(request: Request, store: StoreDep) -> Response:
    """A PNG drawn from the twin's own DEM (Web Mercator); its bounds are in the screen JSON."""
    png, _, etag = _basemap_png(request, store)
    headers = {"ETag": etag, "Cache-Control": "public, max-age=86400"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(png, media_type="image/png", headers=headers)


@router.get("/map/ground/{digest}.webp", summary="The district screen's baked ground", response_class=Response,
            include_in_schema=False)
def ground(request: Request, digest: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]) -> Response:
    """Relief, grid choropleth, roads and footprints in one image; its name is its digest, so it never changes."""
    image = _ground_image(request, digest)
    if image is None:
        raise NotFound(f"no ground image {digest!r} (the screen it belonged to has changed: reload it)")
    return Response(image, media_type=GROUND_MEDIA_TYPE,
                    headers={"Cache-Control": "private, max-age=31536000, immutable"})


@router.get("/map/buildings/{building_id}", summary="The tower view (HTML)", response_class=Response)
def tower_page(request: Request, building_id: Annotated[int, Path(ge=1)]) -> Response:
    """One building's fire model in 3D (the page asks for an inspector's or operator's key)."""
    return _page(request, f"建筑 {building_id} · 消防设施三维模型", f"map/buildings/{building_id}/screen.json",
                 kind="tower")


@router.get("/map/buildings/{building_id}/screen.json", summary="The tower view (deck.gl JSON)")
def tower_json(request: Request, store: StoreDep, role: RoleDep, building_id: Annotated[int, Path(ge=1)]) -> Response:
    """Floors, refuge floors, facilities and sensors of one building (staff)."""
    require(role, STAFF, "the fire model of a building")
    return _json(tower_screen(load_tower(store, building_id, basemap=_basemap(request, store))).to_dict(), request)


@router.get("/map/grids/{code}", summary="The grid view (HTML)", response_class=Response)
def grid_page(request: Request, code: Annotated[str, Path(pattern=r"^[0-9A-Za-z]{1,32}$")]) -> Response:
    """One management grid with its buildings, sensors and open alarms."""
    return _page(request, f"网格 {code}", f"map/grids/{code}/screen.json", kind="grid")


@router.get("/map/grids/{code}/screen.json", summary="The grid view (deck.gl JSON)")
def grid_json(request: Request, store: StoreDep, role: RoleDep,
              code: Annotated[str, Path(pattern=r"^[0-9A-Za-z]{1,32}$")]) -> Response:
    """One grid for the caller's role (sensors and alarms for staff)."""
    return _json(grid_screen(load_grid(store, code, role=role, basemap=_basemap(request, store))).to_dict(), request)


IMMUTABLE = "public, max-age=31536000, immutable"


@functools.cache
def _gzipped(path: pathlib.Path, _mtime_ns: int) -> bytes:
    return gzip.compress(path.read_bytes(), compresslevel=9, mtime=0)


def _static(request: Request, path: pathlib.Path, cache_control: str) -> Response:
    """A static file, gzip-compressed once and kept in memory when the client accepts it."""
    media_type = MEDIA[path.suffix if path.suffix in MEDIA else ""]
    headers = {"Cache-Control": cache_control, "Vary": "Accept-Encoding", "X-Content-Type-Options": "nosniff"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        body = _gzipped(path, path.stat().st_mtime_ns)
        return Response(body, media_type=media_type, headers={**headers, "Content-Encoding": "gzip"})
    return FileResponse(path, media_type=media_type, headers=headers)


@router.get("/static/vendor/{path:path}", summary="Vendored browser bundles", response_class=Response,
            include_in_schema=False)
async def vendor(request: Request, path: str) -> Response:
    """A file unpacked by ``scripts/ensure_assets.sh`` (versioned path, cached for good)."""
    files = await run_in_threadpool(vendor_files)
    item = files.get(path)
    if item is None:
        raise NotFound(f"no vendored file {path!r}")
    return await run_in_threadpool(_static, request, item.path, IMMUTABLE)


@router.get("/static/twin/{name}", summary="The screens' page scripts and style", response_class=Response,
            include_in_schema=False)
def own_static(request: Request, name: str, v: str | None = None) -> Response:
    """A page script or ``screen.css``; cached for good when asked for by its current digest (``?v=``)."""
    if name not in OWN_FILES:
        raise NotFound(f"no static file {name!r}")
    return _static(request, own_file(name), IMMUTABLE if v == own_digest(name) else "no-cache")
