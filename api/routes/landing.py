"""Landing page, conformance declaration and health check."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api import html
from api.deps import FormatDep, SettingsDep, StoreDep
from api.links import JSON, OPENAPI, base_url, link, self_links
from api.openapi import openapi_30
from api.routes.screens import district_page
from twin.errors import Unavailable

router = APIRouter(tags=["service"])

_FEATURES = "http://www.opengis.net/spec/ogcapi-features"
_CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/landing-page",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    # OGC API – Features: Part 1 Core, Part 2 CRS, Part 3 Filtering, Part 8 Sorting (tests/api/test_items.py …)
    f"{_FEATURES}-1/1.0/conf/core",
    f"{_FEATURES}-1/1.0/conf/geojson",
    f"{_FEATURES}-1/1.0/conf/html",
    f"{_FEATURES}-1/1.0/conf/oas30",
    f"{_FEATURES}-2/1.0/conf/crs",
    f"{_FEATURES}-3/1.0/conf/queryables",
    f"{_FEATURES}-3/1.0/conf/queryables-query-parameters",
    f"{_FEATURES}-3/1.0/conf/filter",
    f"{_FEATURES}-3/1.0/conf/features-filter",
    f"{_FEATURES}-8/1.0/conf/sorting",
    # CQL2 (tests/cql2, tests/store/test_contract_cql2.py, tests/api/test_filter.py)
    f"{_CQL2}/cql2-text",
    f"{_CQL2}/cql2-json",
    f"{_CQL2}/basic-cql2",
    f"{_CQL2}/advanced-comparison-operators",
    f"{_CQL2}/basic-spatial-functions",
    f"{_CQL2}/basic-spatial-functions-plus",
    f"{_CQL2}/spatial-functions",
    f"{_CQL2}/temporal-functions",
    f"{_CQL2}/property-property",
]


@router.get("/", summary="Landing page")
def landing(request: Request, settings: SettingsDep, fmt: FormatDep) -> Response:
    """Links to the API definition, the conformance declaration and the collections."""
    root = base_url(request)
    doc: dict[str, Any] = {
        "title": settings.api.title,
        "description": "深圳北站国际商务区数字孪生：建筑、超高层消防设施模型、网格与物联感知设备。",
        "links": [
            *self_links(request, "/", "This document"),
            link(f"{root}/api", "service-desc", OPENAPI, "The API definition (OpenAPI 3.0)"),
            link(f"{root}/docs", "service-doc", "text/html", "The API documentation"),
            link(f"{root}/conformance", "conformance", JSON, "Conformance classes"),
            link(f"{root}/collections", "data", JSON, "Collections"),
            link(f"{root}/health", "status", JSON, "Health"),
        ],
    }
    if fmt == "html" and "f" not in request.query_params:
        return district_page(request)  # a browser opening / gets the district screen; ?f=html the link list
    if fmt == "html":
        return html.page(settings.api.title, f"<p>{doc['description']}</p>" + html.links_list(doc["links"]))
    return JSONResponse(doc)


@router.get("/api", summary="The API definition (OpenAPI 3.0)")
def api_definition(request: Request) -> JSONResponse:
    """The OpenAPI 3.0 document of this service (``/openapi.json`` is FastAPI's 3.1 one, for ``/docs``)."""
    return JSONResponse(openapi_30(request.app), media_type=OPENAPI)


@router.get("/conformance", summary="Conformance declaration")
def conformance(fmt: FormatDep) -> Response:
    """The conformance classes this service really passes."""
    if fmt == "html":
        return html.page("Conformance", html.links_list([{"href": c, "rel": "conformance"} for c in CONFORMANCE]))
    return JSONResponse({"conformsTo": CONFORMANCE})


@router.get("/health", summary="Health check")
def health(store: StoreDep) -> JSONResponse:
    """``ok`` with the store kind when the store answers a query; 503 otherwise."""
    try:
        grids = store.count("grids")
    except Unavailable:
        raise
    except Exception as err:  # any failure to answer means unhealthy
        raise Unavailable(f"store does not answer: {type(err).__name__}") from err
    return JSONResponse({"status": "ok", "store": type(store).__name__, "grids": grids})
