"""The screens' routes over HTTP: pages, their assets, JSON documents and who may read them."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.screens.conftest import ScreenServer

URL_IN_PAGE = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


def test_a_browser_gets_the_district_screen_and_json_clients_the_landing_page(screen_server: ScreenServer) -> None:
    page = httpx.get(f"{screen_server.url}/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.headers["content-type"].startswith("text/html")
    assert "消防安全一张图" in page.text and "twin-boot" in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    for url in URL_IN_PAGE.findall(page.text):
        assert url.startswith("/") or url.startswith("data:"), f"the page references {url}"
        if url.startswith("/"):
            assert httpx.get(screen_server.url + url).status_code == 200, url
    landing = httpx.get(f"{screen_server.url}/", headers={"Accept": "application/json"})
    assert landing.headers["content-type"].startswith("application/json") and "links" in landing.json()
    assert httpx.get(f"{screen_server.url}/", params={"f": "json"}).json()["links"]
    links = httpx.get(f"{screen_server.url}/", params={"f": "html"})
    assert links.headers["content-type"].startswith("text/html") and "twin-boot" not in links.text


def test_vendored_bundles_are_served_versioned_and_nothing_else(screen_server: ScreenServer) -> None:
    bundle = httpx.get(f"{screen_server.url}/static/vendor/deck.gl@9.3.11/dist.min.js")
    assert bundle.status_code == 200 and "immutable" in bundle.headers["cache-control"]
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert bundle.headers["content-encoding"] == "gzip" and "max-age=31536000" in bundle.headers["cache-control"]
    plain = httpx.get(f"{screen_server.url}/static/vendor/deck.gl@9.3.11/dist.min.js",
                      headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == bundle.content
    assert int(bundle.headers["content-length"]) < len(plain.content) / 2
    worker = httpx.get(f"{screen_server.url}/static/vendor/@loaders.gl/mvt@4.4.3/dist/mvt-worker.js")
    assert worker.status_code == 200
    for path in ("/static/vendor/deck.gl@9.3.11/../../../pyproject.toml", "/static/vendor/manifest.json",
                 "/static/twin/../bake.py",
                 "/static/twin/../offline.py", "/static/twin/nothing.js"):
        assert httpx.get(screen_server.url + path).status_code == 404, path


def test_page_scripts_are_cached_by_digest(screen_server: ScreenServer) -> None:
    page = httpx.get(f"{screen_server.url}/map").text
    scripts = re.findall(r'src="(/static/twin/[a-z]+\.js\?v=[0-9a-f]+)"', page)
    assert [s.split("?")[0].rsplit("/", 1)[1] for s in scripts] == [
        "core.js", "labels.js", "hit.js", "layers.js", "panels.js", "live.js", "screen.js"]
    for url in scripts:
        answer = httpx.get(screen_server.url + url)
        assert answer.status_code == 200 and "immutable" in answer.headers["cache-control"], url
    stale = httpx.get(f"{screen_server.url}/static/twin/screen.js?v=0000")
    assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"


def test_the_district_ground_is_baked_and_content_addressed(screen_server: ScreenServer) -> None:
    public = httpx.get(f"{screen_server.url}/map/district.json").json()
    assert public["twin"]["defer"] == ["buildings"]
    ground = next(layer for layer in public["deck"]["layers"] if layer["id"] == "basemap")
    url = ground["image"].strip('"')
    assert re.fullmatch(r"/map/ground/[0-9a-f]{32}\.webp", url), url
    image = httpx.get(screen_server.url + url)
    assert image.headers["content-type"] == "image/webp" and image.content[8:12] == b"WEBP"
    assert "immutable" in image.headers["cache-control"]
    hit = public["twin"]["hit"]
    assert len(hit["grids"]) > 100 and len(hit["roads"]) > 50
    assert "网格编码" in hit["grids"][0]["tip"] and hit["grids"][0]["href"].startswith("map/grids/")
    assert httpx.get(f"{screen_server.url}/map/ground/{'0' * 32}.webp").status_code == 404
    assert httpx.get(f"{screen_server.url}/map/ground/nothex.webp").status_code in (400, 404, 422)


def test_the_district_json_follows_the_role(screen_server: ScreenServer) -> None:
    public = httpx.get(f"{screen_server.url}/map/district.json").json()
    staff = httpx.get(f"{screen_server.url}/map/district.json",
                      headers={"X-API-Key": screen_server.keys["inspector"]}).json()
    public_layers = {layer["id"] for layer in public["deck"]["layers"]}
    staff_layers = {layer["id"] for layer in staff["deck"]["layers"]}
    # grids, communities and roads are baked into the ground image ("basemap"); labels are one text layer
    assert {"basemap", "buildings", "high-rises", "towers", "fire-stations", "labels"} <= public_layers
    assert "hydrants" not in public_layers and "sensors" not in public_layers and public["twin"]["live"] is None
    assert {"hydrants", "sensors"} <= staff_layers and staff["twin"]["live"]["states"]
    assert isinstance(staff["twin"]["live"]["since"], int)
    figures = [choice[0] for choice in staff["twin"]["controls"]["figure"]["choices"]]
    assert "open_alarms" in figures
    assert "open_alarms" not in [c[0] for c in public["twin"]["controls"]["figure"]["choices"]]
    # a public caller asking for a staff figure gets the default one
    assert httpx.get(f"{screen_server.url}/map/district.json",
                     params={"figure": "open_alarms"}).json()["twin"]["controls"]["figure"]["current"] == "population"
    assert httpx.get(f"{screen_server.url}/map/district.json", params={"figure": "nope"}).status_code == 400
    tiles = next(layer for layer in public["deck"]["layers"] if layer["id"] == "buildings")
    assert tiles["@@type"] == "MVTLayer" and tiles["data"].startswith("/collections/buildings/tiles/")


@pytest.mark.parametrize("key,role", [(None, "public"), ("operator", "operator")])
def test_session_names_the_role(screen_server: ScreenServer, key: str | None, role: str) -> None:
    headers = {"X-API-Key": screen_server.keys[key]} if key else {}
    assert httpx.get(f"{screen_server.url}/map/session", headers=headers).json()["role"] == role


def test_basemap_is_drawn_from_the_dem(screen_server: ScreenServer) -> None:
    png = httpx.get(f"{screen_server.url}/map/basemap.png")
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
    again = httpx.get(f"{screen_server.url}/map/basemap.png", headers={"If-None-Match": png.headers["etag"]})
    assert again.status_code == 304
