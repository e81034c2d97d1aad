"""MapLibre GL JS as a real client of the twin's tiles: style, TileJSON and MVT, in headless Chromium, offline.

A tiny page at the test server's own origin (fulfilled by Playwright, so no test route is added to the service)
loads the vendored maplibre-gl bundle from ``/static/vendor/`` (``scripts/ensure_assets.sh``) and opens the twin's
MapLibre style ``/styles/twin``. The map must draw from the twin's tiles with no error event, find buildings with
``queryRenderedFeatures``, never ask anything of another host, and paint more than the background. Runs on both
stores (``api_backend``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.browser import is_local
from twin.errors import Unavailable
from twin.render.offline import vendor_files

pytest.importorskip("playwright.sync_api", reason="pip install playwright (see pyproject dev deps)")

STATION = (114.0239, 22.6119)
PAGE = "/__maplibre_client_test.html"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"  # git-ignored; screenshots to look at after a run
IDLE_TIMEOUT_MS = 90_000

_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>twin · MapLibre</title>
<link rel="stylesheet" href="{css}">
<style>html, body, #map {{ margin: 0; width: 100%; height: 100%; }}</style>
<script src="{js}"></script></head>
<body><div id="map"></div><script>
window.twinErrors = [];
window.twinIdle = false;
const map = new maplibregl.Map({{
  container: "map", style: "/styles/twin", center: {center}, zoom: 16, pitch: 45, bearing: -20,
  canvasContextAttributes: {{preserveDrawingBuffer: true}}, attributionControl: false
}});
window.twinMap = map;
map.on("error", (event) => window.twinErrors.push(String((event.error && event.error.message) || event)));
map.once("load", () => map.once("idle", () => {{ window.twinIdle = true; }}));
</script></body></html>
"""


def _maplibre_files() -> tuple[str, str]:
    """URL paths of the vendored maplibre-gl script and style sheet."""
    try:
        files = {item.name: item for item in vendor_files().values() if item.package == "maplibre-gl"}
    except Unavailable as err:
        pytest.fail(f"{err}: run scripts/ensure_assets.sh (scripts/test.sh does)")
    if {"dist/maplibre-gl.js", "dist/maplibre-gl.css"} - set(files):
        pytest.fail("maplibre-gl is not vendored: run scripts/ensure_assets.sh (scripts/test.sh does)")
    return (f"/static/vendor/{files['dist/maplibre-gl.js'].url_path}",
            f"/static/vendor/{files['dist/maplibre-gl.css'].url_path}")


def test_maplibre_draws_the_twin_from_its_own_style_and_tiles(browser: Any, sample_server: str,
                                                              api_backend: str) -> None:
    js, css = _maplibre_files()
    html = _HTML.format(js=js, css=css, center=json.dumps(list(STATION)))
    context = browser.new_context(viewport={"width": 800, "height": 600})
    page = context.new_page()
    requested: list[str] = []
    tiles: list[tuple[int, str | None]] = []
    console_errors: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("response", lambda response: tiles.append((response.status, response.headers.get("content-encoding")))
            if "/tiles/WebMercatorQuad/" in response.url and "tilejson" not in response.url else None)
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: console_errors.append(str(error)))
    page.route(sample_server + PAGE, lambda route: route.fulfill(status=200, content_type="text/html", body=html))
    try:
        page.goto(sample_server + PAGE)
        page.wait_for_function("window.twinIdle === true || window.twinErrors.length > 0", timeout=IDLE_TIMEOUT_MS)
        errors = page.evaluate("window.twinErrors")
        assert errors == [], errors
        assert console_errors == [], console_errors
        # every request stayed on this machine, and tiles came from the twin (gzip-compressed: the browser asks)
        assert [url for url in requested if not is_local(url)] == []
        assert any(url.startswith(f"{sample_server}/styles/twin") for url in requested)
        assert any("tilejson.json" in url for url in requested)
        assert tiles and all(status in (200, 204) for status, _ in tiles), tiles
        assert any(status == 200 and encoding == "gzip" for status, encoding in tiles), tiles
        buildings = page.evaluate(
            "window.twinMap.queryRenderedFeatures({layers: ['buildings-extrusion']})"
            ".map((f) => ({id: f.id, height: f.properties.height_m, layer: f.sourceLayer}))")
        assert len(buildings) > 10
        assert {b["layer"] for b in buildings} == {"buildings"}
        assert all(b["height"] is not None for b in buildings)
        ARTIFACTS.mkdir(exist_ok=True)
        shot = page.screenshot(path=str(ARTIFACTS / f"maplibre-{api_backend}.png"))
        pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"))
        background = np.array([236, 239, 241])  # the style's background colour
        painted = (np.abs(pixels.astype(int) - background).sum(axis=2) > 30).mean()
        assert painted > 0.05, f"only {painted:.1%} of the map differs from the background"
    finally:
        context.close()
