"""Property-based pass over the whole HTTP API: schemathesis derives requests from the OpenAPI 3.0 document at /api.

Every documented operation (reads, tiles, rasters, the inspectors' questions, IoT, screens, and the writes, sent
with an admin key so they get past authorization) is called with valid, boundary and invalid inputs against a live
server over a private copy of the sample twin. No answer may be a server error, every answer must have a documented
status and content type, and every 4xx must be an OGC exception body. Generation is derandomized and bounded so the
run is the same on every machine and stays well under a minute.

The regression tests below pin each bug the fuzzing found, with plain httpx.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from schemathesis.engine import Status, events

from api.main import create_app
from tests.api.conftest import LiveServer
from twin.auth import create_key
from twin.settings import Settings
from twin.store.geopackage import GeoPackageStore

#: Fuzzed examples per operation (the examples and coverage phases add their own, deterministic, cases).
MAX_EXAMPLES = 6
SEED = 20261125
#: Not request/response: the alarm event stream stays open until the client leaves.
NOT_FUZZED = ["/alarms/stream"]
CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance", "ogc_exception_body"]


def _is_ogc_exception(status: int, content: bytes | None) -> bool:
    try:
        body = json.loads(content or b"")
    except ValueError:
        return False
    return (isinstance(body, dict) and isinstance(body.get("code"), str) and isinstance(body.get("description"), str)
            and body.get("status") == status)


@schemathesis.check
def ogc_exception_body(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                       case: schemathesis.Case) -> bool | None:
    """Every 4xx answer is an OGC exception body (``code``, ``description``, ``status``)."""
    if 400 <= response.status_code < 500 and not _is_ogc_exception(response.status_code, response.content):
        raise AssertionError(f"{response.status_code} without an OGC exception body: {response.content[:200]!r}")
    return None


@pytest.fixture
def fuzz_target(sample_copy: Path) -> Iterator[tuple[str, str]]:
    """A server over a private copy of the sample (writes are fuzzed too) and an admin key for it."""
    store = GeoPackageStore(sample_copy)
    _, key = create_key(store, "admin", "schemathesis")
    try:
        with LiveServer(create_app(Settings(), store=store)) as live:
            yield live.url, key
    finally:
        store.close()


def _schema(url: str, key: str) -> schemathesis.BaseSchema:
    config = schemathesis.Config()
    project = config.projects.default
    project.update(headers={"X-API-Key": key}, workers=1, request_timeout=30, continue_on_failure=True)
    project.seed = SEED
    project.phases.update(phases=["examples", "coverage", "fuzzing"])
    project.phases.coverage.unexpected_methods = set()  # 405s: test_other_methods_are_405 below
    project.generation.update(max_examples=MAX_EXAMPLES, deterministic=True, database="none")
    project.checks.update(included_check_names=CHECKS)
    return schemathesis.openapi.from_url(f"{url}/api", config=config).exclude(path=NOT_FUZZED)


def _failures(event: events.ScenarioFinished) -> list[str]:
    found = []
    for checks in event.recorder.checks.values():
        for check in checks:
            if check.status is Status.FAILURE and check.failure_info is not None:
                info = check.failure_info
                found.append(f"{event.label}: {info.failure.title}: {info.failure.message}\n  {info.code_sample}")
    return found


def test_no_input_makes_a_server_error(fuzz_target: tuple[str, str]) -> None:
    url, key = fuzz_target
    failures: list[str] = []
    errors: list[str] = []
    scenarios = 0
    for event in schemathesis.engine.from_schema(_schema(url, key)).execute():
        if isinstance(event, events.ScenarioFinished):
            scenarios += 1
            failures.extend(_failures(event))
        elif isinstance(event, events.NonFatalError | events.FatalError):
            errors.append(f"{getattr(event, 'label', '')}: {event.info.format()}")
    assert scenarios > 50, f"only {scenarios} scenarios ran"
    assert not errors, "\n".join(errors)
    assert not failures, f"{len(failures)} failure(s):\n" + "\n".join(dict.fromkeys(failures))


# --- regressions: each bug the fuzzing found, as a plain request ------------------------------------------------


@pytest.fixture
def admin(fuzz_target: tuple[str, str]) -> Iterator[httpx.Client]:
    url, key = fuzz_target
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as client:
        yield client


def _assert_ogc(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert _is_ogc_exception(response.status_code, response.content), response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


def test_nearest_to_a_point_outside_the_metric_crs_is_400(admin: httpx.Client) -> None:
    # was 500: the distance in EPSG:4547 is infinite there, and JSON has no infinity
    body = _assert_ogc(admin.get("/nearest", params={"lon": 15.0, "lat": 0.0}), 400)
    assert "EPSG:4547" in str(body["description"])
    near = admin.get("/nearest", params={"lon": 114.0239, "lat": 22.6119, "k": 1})
    assert near.status_code == 200 and len(near.json()["facilities"]) == 1


def test_style_is_documented_with_its_media_type(admin: httpx.Client) -> None:
    # the style's Content-Type was not the one /api documented
    media = "application/vnd.mapbox.style+json"
    assert admin.get("/styles/twin").headers["content-type"].startswith(media)
    documented = admin.get("/api").json()["paths"]["/styles/{style_id}"]["get"]["responses"]["200"]["content"]
    assert media in documented


def test_api_documents_errors_as_ogc_exceptions(admin: httpx.Client) -> None:
    doc = admin.get("/api").json()
    assert "HTTPValidationError" not in json.dumps(doc)
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            default = operation["responses"].get("default")
            assert default is not None, f"{method} {path} documents no error response"
            assert default["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/exception"}


@pytest.mark.parametrize("path", ["/collections/buildings/items", "/alarms"])
def test_an_offset_beyond_64_bits_is_400(admin: httpx.Client, path: str) -> None:
    # was 500: OverflowError binding the offset to SQLite's 64-bit INTEGER
    body = _assert_ogc(admin.get(path, params={"offset": "1730135309370244464640"}), 400)
    assert "offset" in str(body["description"])
    assert admin.get(path, params={"offset": str(2**63 - 1)}).status_code == 200


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/collections"), ("PUT", "/facilities/1"),
                                              ("POST", "/collections/buildings/items")])
def test_other_methods_are_405(admin: httpx.Client, method: str, path: str) -> None:
    _assert_ogc(admin.request(method, path), 405)


def test_tile_answers_are_documented(admin: httpx.Client) -> None:
    # an empty tile is 204 with no body: /api documented only a JSON 200, so its answers did not conform
    empty = admin.get("/collections/grids/tiles/WebMercatorQuad/0/0/0")
    assert empty.status_code == 204 and not empty.content and "content-type" not in empty.headers
    paths = admin.get("/api").json()["paths"]
    for path in ("/tiles/{tms_id}/{z}/{y}/{x}", "/collections/{collection_id}/tiles/{tms_id}/{z}/{y}/{x}"):
        responses = paths[path]["get"]["responses"]
        assert {"200", "204", "304"} <= responses.keys()
        assert list(responses["200"]["content"]) == ["application/vnd.mapbox-vector-tile"]
    png = paths["/rasters/{raster_id}/tiles/{tms_id}/{z}/{y}/{x}.png"]["get"]["responses"]["200"]["content"]
    assert list(png) == ["image/png"]


def test_path_identifiers_are_enumerated(admin: httpx.Client) -> None:
    # clients (and the fuzzer) learn the valid collection, raster and tile matrix set ids from /api
    parameters = admin.get("/api").json()["paths"]["/rasters/{raster_id}/tiles/{tms_id}/{z}/{y}/{x}.png"]["get"][
        "parameters"]
    enums = {p["name"]: p["schema"].get("enum") for p in parameters if p["in"] == "path"}
    assert enums["raster_id"] == ["dem", "void_risk"] and enums["tms_id"] == ["WebMercatorQuad"]
    assert admin.get("/rasters/elevation").status_code == 404


@pytest.mark.parametrize(("filter_", "lang"), [
    ("(" * 5000 + "height_m > 100" + ")" * 5000, "cql2-text"),
    ("NOT " * 3000 + "height_m > 100", "cql2-text"),
    ("S_INTERSECTS(geometry, " + "GEOMETRYCOLLECTION(" * 1000 + "POINT(114.02 22.61)" + ")" * 1000 + ")", "cql2-text"),
    ('{"op":"not","args":[' * 1000 + "true" + "]}" * 1000, "cql2-json"),
])
def test_a_filter_nested_too_deeply_is_400(admin: httpx.Client, filter_: str, lang: str) -> None:
    # was 500: RecursionError in the CQL2 parsers
    body = _assert_ogc(admin.get("/collections/buildings/items", params={"filter": filter_, "filter-lang": lang}), 400)
    assert "nests deeper than" in str(body["description"])


def test_a_filter_nested_100_levels_still_works(admin: httpx.Client) -> None:
    plain = admin.get("/collections/buildings/items", params={"filter": "height_m > 100", "limit": 1}).json()
    nested = admin.get("/collections/buildings/items",
                       params={"filter": "(" * 100 + "height_m > 100" + ")" * 100, "limit": 1})
    assert nested.status_code == 200 and nested.json()["numberMatched"] == plain["numberMatched"]


def test_a_filter_geometry_beyond_the_crs_is_400(admin: httpx.Client) -> None:
    # was 500: OverflowError transforming the geometry from EPSG:3857
    response = admin.get("/collections/buildings/items", params={
        "filter": "S_INTERSECTS(geometry, BBOX(1e300, 1e300, 1e301, 1e301))",
        "filter-crs": "http://www.opengis.net/def/crs/EPSG/0/3857"})
    assert "outside the area" in str(_assert_ogc(response, 400)["description"])


def test_patching_a_facility_id_beyond_64_bits_is_404(admin: httpx.Client) -> None:
    # was 500: OverflowError binding the id to SQLite's 64-bit INTEGER
    _assert_ogc(admin.patch("/facilities/99999999999999999999", json={"status": "fault"}), 404)


def test_a_feature_id_in_other_digits_is_404(admin: httpx.Client) -> None:
    # was 200 with feature 3: str.isdecimal() accepts Arabic-Indic digits and int() reads them
    _assert_ogc(admin.get("/collections/buildings/items/\u0663"), 404)
    assert admin.get("/collections/buildings/items/3").status_code == 200
