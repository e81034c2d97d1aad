"""The collections: one per catalogue layer the caller may read."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api import html
from api.deps import FormatDep, LayerDep, RoleDep, StoreDep
from api.links import GEOJSON, HTML, JSON, base_url, link, self_links
from layers import LAYERS, Layer
from twin.crs import CRS84_URI, SUPPORTED_CRS_URIS
from twin.store.base import Store

router = APIRouter(tags=["collections"])

STORAGE_CRS_URI = "http://www.opengis.net/def/crs/EPSG/0/4326"


def _extent(store: Store, layer: Layer) -> dict[str, Any]:
    extent: dict[str, Any] = {}
    if layer.is_spatial:
        box = store.extent(layer.id)
        if box is not None:
            extent["spatial"] = {"bbox": [list(box.as_tuple())], "crs": CRS84_URI}
    if layer.temporal_field:
        start, end = store.time_extent(layer.id)
        if start or end:
            interval = [t.isoformat().replace("+00:00", "Z") if t else None for t in (start, end)]
            extent["temporal"] = {"interval": [interval], "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    return extent


def describe(request: Request, store: Store, layer: Layer) -> dict[str, Any]:
    """The collection document of ``layer``."""
    root = base_url(request)
    path = f"/collections/{layer.id}"
    doc: dict[str, Any] = {
        "id": layer.id,
        "title": f"{layer.title_zh} · {layer.title_en}",
        "description": layer.description,
        # tables are served as GeoJSON features with null geometry: still OGC API – Features items ("record" would
        # claim OGC API – Records, whose record model they do not follow)
        "itemType": "feature",
        "links": [
            *self_links(request, path, layer.title_en),
            link(f"{root}{path}/items", "items", GEOJSON, f"{layer.title_en} items (GeoJSON)"),
            link(f"{root}{path}/items?f=html", "items", HTML, f"{layer.title_en} items (HTML)"),
            link(f"{root}{path}/queryables", "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                 "application/schema+json", f"{layer.title_en} queryables"),
            link(f"{root}{path}/sortables", "http://www.opengis.net/def/rel/ogc/1.0/sortables",
                 "application/schema+json", f"{layer.title_en} sortables"),
        ],
        "extent": _extent(store, layer),
    }
    if layer.is_spatial:
        doc["crs"] = list(SUPPORTED_CRS_URIS)
        doc["storageCrs"] = STORAGE_CRS_URI
        doc["geometryType"] = layer.geometry_type.value
        doc["minZoom"], doc["maxZoom"] = layer.zoom.min_zoom, layer.zoom.max_zoom
    return doc


@router.get("/collections", summary="The collections")
def collections(request: Request, store: StoreDep, role: RoleDep, fmt: FormatDep) -> Response:
    """Every collection the caller's role may read."""
    readable = [layer for layer in LAYERS if layer.readable_by(role)]
    docs = [describe(request, store, layer) for layer in readable]
    if fmt == "html":
        rows = [{"id": d["id"], "title": d["title"], "itemType": d["itemType"]} for d in docs]
        return html.page("Collections", html.table(rows, ["id", "title", "itemType"]))
    return JSONResponse({"links": self_links(request, "/collections", "Collections"), "collections": docs})


@router.get("/collections/{collection_id}", summary="One collection")
def collection(request: Request, store: StoreDep, layer: LayerDep, fmt: FormatDep) -> Response:
    """Metadata of one collection: title, extent, CRS list and links."""
    doc = describe(request, store, layer)
    if fmt == "html":
        fields = [{"name": f.name, "zh": f.title_zh, "en": f.title_en, "type": f.type.value} for f in layer.fields]
        body = f"<p>{doc['description']}</p>" + html.table(fields, ["name", "zh", "en", "type"])
        return html.page(doc["title"], body)
    return JSONResponse(doc, media_type=JSON)
