"""The district screen in a real browser: offline, drawn, in Chinese, and live."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import numpy as np
import pytest

from tests.screens.conftest import (
    Screen,
    ScreenServer,
    assert_recoloured_within_two_seconds,
    blank_share,
    distinct_colours,
)
from twin.store.base import FeatureQuery, Filter, Op

pytestmark = pytest.mark.slow

#: In-page check that the CJK font really draws Chinese: distinct characters give distinct, non-empty glyphs
#: (a missing font draws every character as the same empty box, "tofu").
GLYPHS = """(family) => {
  const draw = (ch) => { const c = document.createElement('canvas'); c.width = c.height = 48;
    const g = c.getContext('2d'); g.fillStyle = '#000'; g.fillRect(0, 0, 48, 48); g.fillStyle = '#fff';
    g.font = '40px ' + family; g.textBaseline = 'top'; g.fillText(ch, 4, 4);
    return Array.from(g.getImageData(0, 0, 48, 48).data.filter((_, i) => i % 4 === 0)); };
  const a = draw('深'), b = draw('圳'), box = draw('\\u{10FFFD}');
  const ink = (px) => px.filter((v) => v > 128).length;
  const same = (x, y) => x.every((v, i) => v === y[i]);
  return {inkA: ink(a), inkB: ink(b), differ: !same(a, b), notTofu: !same(a, box),
          fontLoaded: document.fonts.check('16px "Noto Sans CJK SC"')};
}"""


def _assert_chinese_renders(screen: Screen, pixels: np.ndarray, name: str) -> None:
    title = screen.js("document.getElementById('title').textContent")
    assert "深圳北站" in title
    family = screen.js("getComputedStyle(document.getElementById('title')).fontFamily")
    glyphs = screen.js(GLYPHS, family)
    assert glyphs["fontLoaded"], "Noto Sans CJK SC is not installed (scripts/ensure_browser.sh)"
    assert glyphs["differ"] and glyphs["notTofu"] and min(glyphs["inkA"], glyphs["inkB"]) > 40, glyphs
    box = screen.page.locator("#title").bounding_box()
    crop = pixels[int(box["y"]):int(box["y"] + box["height"]), int(box["x"]):int(box["x"] + box["width"])]
    bright = (crop.max(axis=2) > 170).mean()
    assert 0.03 < bright < 0.6, f"the title region of {name} looks empty or filled ({bright:.2%} bright pixels)"


def _assert_canvas_drawn(pixels: np.ndarray) -> None:
    map_area = pixels[80:760, 200:920]  # between the legend and the side panel
    assert blank_share(map_area) < 0.2, "the map canvas is mostly background"
    assert distinct_colours(map_area) > 500, "the map canvas has too few colours to be a drawn map"


def test_public_district_screen_is_offline_drawn_and_chinese(screen_server: ScreenServer,
                                                           open_screen: Callable[[str], Screen]) -> None:
    screen = open_screen(screen_server.url + "/")
    took = screen.wait_ready()
    pixels = screen.screenshot("district-public")
    # the building tiles come in after the first full frame
    screen.wait_for("window.twinScreen.complete", 60, "the deferred layers")
    screen.screenshot("district-public-complete")
    screen.assert_clean()
    assert any(url.endswith("/static/vendor/deck.gl@9.3.11/dist.min.js") for url in screen.requests)
    assert any("/collections/buildings/tiles/WebMercatorQuad/" in url for url in screen.requests)
    _assert_canvas_drawn(pixels)
    _assert_chinese_renders(screen, pixels, "the public district screen")
    assert "登录" in screen.js("document.getElementById('auth').textContent")
    # grids and roads are drawn in the baked ground, yet still answer the pointer
    grid = screen_server.store.query("grids", FeatureQuery(filters=(Filter("level", Op.EQ, "grid"),), limit=1))
    inner = grid.geometry.iloc[0].buffer(-0.0004)
    point = inner.representative_point() if not inner.is_empty else grid.geometry.iloc[0].representative_point()
    hit = screen.js("(p) => window.twinScreen.hit(p)", [point.x, point.y])
    assert hit is not None and ("网格编码" in hit["tip"] or "路宽" in hit["tip"]), hit
    assert screen.js("document.getElementById('alarms').children.length") == 0  # alarms are staff data
    assert took < 60


def test_staff_district_screen_lists_alarms_and_colours_buildings(screen_server: ScreenServer,
                                                                 open_screen: Callable[[str], Screen]) -> None:
    screen = open_screen(f"{screen_server.url}/#key={screen_server.keys['operator']}")
    screen.wait_ready()
    screen.wait_for("window.twinScreen.streaming", 30, "the alarm stream")
    pixels = screen.screenshot("district-operator")
    screen.assert_clean()
    assert "#key=" not in screen.page.url  # the key leaves the address bar at once
    assert "已登录" in screen.js("document.getElementById('auth').textContent")
    alarms = screen.js("document.getElementById('alarms').textContent")
    assert "未处置告警" in alarms and "火警" in alarms
    # the sample's confirmed fire alarm colours its building red
    fire = screen_server.store.query("alarms", FeatureQuery(filters=(Filter("severity", Op.EQ, "fire_alarm"),
                                                                     Filter("status", Op.EQ, "open"))))
    building = int(fire["building_id"].iloc[0])
    assert screen.js("(id) => window.twinScreen.stateOf(id)", building) == "fire_alarm"
    _assert_canvas_drawn(pixels)


def test_a_reading_sent_to_the_ingest_recolours_its_building_within_two_seconds(
        screen_server: ScreenServer, open_screen: Callable[[str], Screen]) -> None:
    screen = open_screen(f"{screen_server.url}/#key={screen_server.keys['operator']}")

    def post(sensor: int, ts: str) -> str:
        sent = time.monotonic()
        response = httpx.post(f"{screen_server.url}/ingest/readings", json=[{"sensor_id": sensor, "ts": ts,
                                                                               "value": 9.5}],
                              headers={"X-API-Key": screen_server.keys["device"]}, timeout=10)
        assert response.status_code == 200, response.text
        assert response.json()["alarms"], "a smoke reading over the threshold should open a pre-alarm"
        return f"the ingest answered after {time.monotonic() - sent:.2f} s"

    assert_recoloured_within_two_seconds(screen, screen_server.store, post, "district-reading")
    screen.assert_clean()
    listed = screen.js("document.getElementById('alarms').textContent")
    assert "预警" in listed


def test_the_grid_figure_can_be_changed(screen_server: ScreenServer, open_screen: Callable[[str], Screen]) -> None:
    screen = open_screen(f"{screen_server.url}/?figure=buildings")
    screen.wait_ready()
    assert screen.js("document.getElementById('figure').value") == "buildings"
    legend = screen.js("document.getElementById('legend').textContent")
    assert "网格 · 建筑数" in legend
    screen.page.select_option("#figure", "super_high_rises")
    screen.wait_for("document.getElementById('legend').textContent.includes('超高层建筑数')", 30, "the new legend")
    assert "figure=super_high_rises" in screen.page.url
    screen.assert_clean()


def test_building_states_need_a_staff_key(screen_server: ScreenServer) -> None:
    assert httpx.get(f"{screen_server.url}/map/state").status_code == 401
    ok = httpx.get(f"{screen_server.url}/map/state", headers={"X-API-Key": screen_server.keys["inspector"]})
    assert ok.status_code == 200 and isinstance(ok.json()["states"], dict)
