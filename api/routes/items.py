"""OGC API – Features items: feature collections with paging and CRS, single features, and queryables.

Tables (readings, alarms, inspections; ``itemType: record``) are served the same way, as features whose geometry
is ``null``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

import pandas as pd
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from api import html
from api.deps import FormatDep, LayerDep, SettingsDep, StoreDep
from api.features import dumps, features, queryables
from api.links import GEOJSON, HTML, JSON, base_url, link
from api.params import (
    BBoxDep,
    FilterDep,
    OutputCrsDep,
    PagingDep,
    PropertiesDep,
    PropertyFiltersDep,
    SortDep,
    TimeDep,
)
from layers import Layer
from twin.cql2.ast import GEOMETRY_PROPERTY
from twin.crs import CRS84, CrsRef
from twin.errors import InvalidQuery, NotFound
from twin.store.base import FeatureQuery
from twin.store.counting import number_matched

router = APIRouter(tags=["features"])

SCHEMA_JSON = "application/schema+json"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
_HTML_ROWS = 200


def items_query(layer: LayerDep, paging: PagingDep, bbox: BBoxDep, time: TimeDep, properties: PropertiesDep,
                sort: SortDep, expr: FilterDep, filters: PropertyFiltersDep) -> FeatureQuery:
    """Every query-parameter group of the items route, as one store query."""
    if bbox is not None and not layer.is_spatial:
        raise InvalidQuery(f"{layer.id!r} is a table without geometry; it takes no bbox")
    return FeatureQuery(bbox=bbox, filters=filters, time=time, sort=sort, limit=paging.limit, offset=paging.offset,
                        properties=properties, expr=expr)


ItemsQueryDep = Annotated[FeatureQuery, Depends(items_query)]


def _url(request: Request, **changes: object) -> str:
    """The URL of this request with some parameters replaced (``None`` removes one); other parameters are kept."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    params.extend((k, str(v)) for k, v in changes.items() if v is not None)
    query = urlencode(params)
    return f"{base_url(request)}{request.url.path}" + (f"?{query}" if query else "")


def _content_crs(layer: Layer, crs: CrsRef) -> dict[str, str]:
    return {"Content-Crs": f"<{crs.uri}>"} if layer.is_spatial else {}


def _timestamp() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@router.get("/collections/{collection_id}/items", summary="Features of a collection",
            response_class=Response, responses={200: {"content": {GEOJSON: {}, HTML: {}}}})
def items(request: Request, store: StoreDep, settings: SettingsDep, layer: LayerDep, fmt: FormatDep,
          query: ItemsQueryDep, crs: OutputCrsDep) -> Response:
    """A page of features (GeoJSON), filtered by ``bbox``, ``datetime``, properties and CQL2, in ``crs``."""
    frame = store.query(layer.id, query)
    returned = len(frame)
    limit = settings.api.exact_count_limit
    matched = number_matched(store, layer.id, query, returned, threshold=limit)
    assert query.limit is not None
    links = [
        link(_url(request, f="json"), "self", GEOJSON, "This page (GeoJSON)"),
        link(_url(request, f="html"), "alternate", HTML, "This page (HTML)"),
        link(f"{base_url(request)}/collections/{layer.id}", "collection", JSON, layer.title_en),
    ]
    more = returned == query.limit and (not matched.exact or query.offset + returned < matched.value)
    if more:
        links.append(link(_url(request, offset=query.offset + returned, limit=query.limit), "next", GEOJSON,
                          "Next page"))
    if query.offset > 0:
        links.append(link(_url(request, offset=max(0, query.offset - query.limit), limit=query.limit), "prev",
                          GEOJSON, "Previous page"))
    if fmt == "html":
        return _html_page(layer, frame, links)
    document = {
        "type": "FeatureCollection",
        "features": features(layer, frame, crs),
        "numberMatched": matched.value,
        "numberReturned": returned,
        "timeStamp": _timestamp(),
        "links": links,
    }
    return Response(dumps(document), media_type=GEOJSON, headers=_content_crs(layer, crs))


@router.get("/collections/{collection_id}/items/{feature_id}", summary="One feature",
            response_class=Response, responses={200: {"content": {GEOJSON: {}, HTML: {}}}})
def item(request: Request, feature_id: str, store: StoreDep, layer: LayerDep, fmt: FormatDep,
         crs: OutputCrsDep) -> Response:
    """One feature by id (404 when there is none), in ``crs``."""
    unknown = set(request.query_params) - {"f", "crs"}
    if unknown:
        raise InvalidQuery(f"unknown query parameter(s) {', '.join(sorted(unknown))} for a single feature")
    if not (feature_id.isascii() and feature_id.isdecimal()):
        raise NotFound(f"{layer.id} has no feature with id {feature_id!r}")
    frame = store.get(layer.id, int(feature_id))
    root = base_url(request)
    path = f"/collections/{layer.id}/items/{feature_id}"
    links = [
        link(f"{root}{path}?f=json", "self", GEOJSON, "This feature (GeoJSON)"),
        link(f"{root}{path}?f=html", "alternate", HTML, "This feature (HTML)"),
        link(f"{root}/collections/{layer.id}", "collection", JSON, layer.title_en),
    ]
    if fmt == "html":
        return _html_page(layer, frame, links)
    document = {**features(layer, frame, crs)[0], "links": links}
    return Response(dumps(document), media_type=GEOJSON, headers=_content_crs(layer, crs))


@router.get("/collections/{collection_id}/queryables", summary="Queryable properties of a collection",
            response_class=Response, responses={200: {"content": {SCHEMA_JSON: {}, HTML: {}}}})
def collection_queryables(request: Request, layer: LayerDep, fmt: FormatDep) -> Response:
    """A JSON Schema of the properties ``filter`` and the property filters (``?use=office``) may use."""
    return _schema_document(request, layer, fmt, "queryables")


@router.get("/collections/{collection_id}/sortables", summary="Sortable properties of a collection",
            response_class=Response, responses={200: {"content": {SCHEMA_JSON: {}, HTML: {}}}})
def collection_sortables(request: Request, layer: LayerDep, fmt: FormatDep) -> Response:
    """A JSON Schema of the properties ``sortby`` may use (every queryable but the geometry)."""
    return _schema_document(request, layer, fmt, "sortables")


def _schema_document(request: Request, layer: Layer, fmt: str, kind: str) -> Response:
    url = f"{base_url(request)}/collections/{layer.id}/{kind}"
    schema = queryables(layer, url)
    if kind == "sortables":
        schema["properties"].pop(GEOMETRY_PROPERTY, None)
    if fmt == "html":
        rows = [{"name": k, "type": v.get("type", v.get("format", "")), "title": v.get("title", "")}
                for k, v in schema["properties"].items()]
        return html.page(f"{kind.title()} · {layer.title_en}", html.table(rows, ["name", "type", "title"]))
    return JSONResponse(schema, media_type=SCHEMA_JSON)


def _html_page(layer: Layer, frame: pd.DataFrame, links: list[dict[str, str]]) -> Response:
    docs = features(layer, frame, CRS84)[:_HTML_ROWS]
    columns = ["id", *(docs[0]["properties"] if docs else [])]
    rows = [{"id": d["id"], **d["properties"]} for d in docs]
    return html.page(f"{layer.title_zh} · {layer.title_en}", html.links_list(links) + html.table(rows, columns))
