"""The service's landing page, conformance, collections, health and errors, over real HTTP."""

from __future__ import annotations

import httpx

from layers import LAYERS, Role


def _assert_ogc_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"code", "description"}
    assert body["status"] == status
    assert "Traceback" not in body["description"]
    return body


def test_landing_page_links(http: httpx.Client) -> None:
    response = http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    rels = {link["rel"]: link["href"] for link in response.json()["links"]}
    for rel in ("self", "service-desc", "conformance", "data"):
        assert rel in rels
    assert http.get(rels["service-desc"]).json()["openapi"].startswith("3.")
    assert "conformsTo" in http.get(rels["conformance"]).json()


def test_landing_page_html_on_request(http: httpx.Client) -> None:
    as_param = http.get("/", params={"f": "html"})
    as_accept = http.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    for response in (as_param, as_accept):
        assert response.headers["content-type"].startswith("text/html")
        assert "北站" in response.text


def test_collections_list_only_what_the_public_may_read(http: httpx.Client) -> None:
    docs = http.get("/collections").json()["collections"]
    ids = {doc["id"] for doc in docs}
    expected = {layer.id for layer in LAYERS if layer.readable_by(Role.PUBLIC)}
    assert ids == expected
    assert "buildings" in ids and "fire_facilities" not in ids and "sensors" not in ids


def test_collection_document(http: httpx.Client) -> None:
    doc = http.get("/collections/buildings").json()
    assert doc["itemType"] == "feature"
    minx, miny, maxx, maxy = doc["extent"]["spatial"]["bbox"][0]
    # the district lies around the station at 114.0239 E, 22.6119 N
    assert minx < 114.0239 < maxx and miny < 22.6119 < maxy
    assert maxx - minx < 0.2 and maxy - miny < 0.2
    assert "http://www.opengis.net/def/crs/EPSG/0/4547" in doc["crs"]
    assert any(link["rel"] == "items" for link in doc["links"])


def test_health(http: httpx.Client) -> None:
    body = http.get("/health").json()
    assert body["status"] == "ok"
    assert body["grids"] > 0


def test_unknown_collection_is_404_ogc_body(http: httpx.Client) -> None:
    body = _assert_ogc_error(http.get("/collections/no_such_layer"), 404)
    assert "no_such_layer" in body["description"]


def test_unknown_path_is_404_ogc_body(http: httpx.Client) -> None:
    _assert_ogc_error(http.get("/nowhere"), 404)


def test_staff_layer_needs_credentials(http: httpx.Client) -> None:
    response = http.get("/collections/fire_facilities")
    body = _assert_ogc_error(response, 401)
    assert "inspector" in body["description"]
    assert response.headers["www-authenticate"] == "Bearer"


def test_bad_format_is_400(http: httpx.Client) -> None:
    _assert_ogc_error(http.get("/collections", params={"f": "xml"}), 400)
