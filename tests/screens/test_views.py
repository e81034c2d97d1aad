"""The tower and grid views, and the standalone files of ``twin render``, in a real browser."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from tests.screens.conftest import Screen, ScreenServer, blank_share, distinct_colours
from twin.cli_render import render_app
from twin.store.base import FeatureQuery, Filter, Op

pytestmark = pytest.mark.slow


def _fire_alarm_building(server: ScreenServer) -> int:
    alarms = server.store.query("alarms", FeatureQuery(filters=(Filter("severity", Op.EQ, "fire_alarm"),)))
    return int(alarms["building_id"].iloc[0])


def _drawn(pixels: np.ndarray) -> None:
    area = pixels[80:760, 180:920]
    assert blank_share(area) < 0.5 and distinct_colours(area) > 300


def test_tower_view_needs_a_key(screen_server: ScreenServer, open_screen: Callable[[str], Screen]) -> None:
    building = _fire_alarm_building(screen_server)
    assert httpx.get(f"{screen_server.url}/map/buildings/{building}/screen.json").status_code == 401
    screen = open_screen(f"{screen_server.url}/map/buildings/{building}")
    screen.wait_for("document.getElementById('status').textContent.includes('API 密钥')", 60, "the key prompt")
    # the 401 of the screen JSON is the page asking for a key, not an error of the page
    screen.errors[:] = [e for e in screen.errors if "401" not in e]
    screen.assert_clean()
    assert screen.js("document.querySelector('#auth input[type=password]') !== null")


def test_tower_view_stacks_floors_and_a_click_lists_a_floor(screen_server: ScreenServer,
                                                            open_screen: Callable[[str], Screen]) -> None:
    building = _fire_alarm_building(screen_server)
    screen = open_screen(f"{screen_server.url}/map/buildings/{building}#key={screen_server.keys['inspector']}")
    screen.wait_ready()
    pixels = screen.screenshot("tower")
    screen.assert_clean()
    _drawn(pixels)
    panel = screen.js("document.getElementById('panel').textContent")
    assert "避难层" in panel and "消防设施" in panel
    # click the top floor where nothing else is drawn over it: the panel lists what is on that floor
    levels = screen_server.store.query("levels", FeatureQuery(filters=(Filter("building_id", Op.EQ, building),)))
    level_id, level = next(iter(levels.sort_values("elevation_m", ascending=False).iterrows()))
    target = _clickable(screen, level, int(level_id))
    assert target is not None, "no point of the top floor is in plain view"
    screen.page.mouse.click(*target)
    screen.wait_for(f"document.querySelector('#panel h2').textContent.startsWith('{level['name']} ')", 20,
                    "the floor's panel")
    floor = screen.js("document.getElementById('panel').textContent")
    assert "标高" in floor and "消防设施" in floor and "物联设备" in floor
    screen.screenshot("tower-floor-clicked")


def test_tower_view_lists_floors_with_refuge_floors_marked(screen_server: ScreenServer,
                                                           open_screen: Callable[[str], Screen]) -> None:
    building = _fire_alarm_building(screen_server)
    levels = screen_server.store.query("levels", FeatureQuery(filters=(Filter("building_id", Op.EQ, building),)))
    screen = open_screen(f"{screen_server.url}/map/buildings/{building}#key={screen_server.keys['inspector']}")
    screen.wait_ready()
    items = screen.js("[...document.querySelectorAll('#floors li')].map((li) => "
                      "({level: Number(li.dataset.level), text: li.textContent, "
                      "refuge: li.classList.contains('refuge')}))")
    assert len(items) == len(levels)
    by_elevation = levels.sort_values("elevation_m", ascending=False)
    assert [i["level"] for i in items] == [int(i) for i in by_elevation.index]  # top floor first
    refuge = {int(i) for i in levels.index[levels["is_refuge"].fillna(False).astype(bool)]}
    assert refuge and {i["level"] for i in items if i["refuge"]} == refuge
    assert all("避难层" in i["text"] for i in items if i["refuge"])
    assert all("设施" in i["text"] and "设备" in i["text"] for i in items)
    # a floor with an alarm is marked, and clicking it lists its facilities and sensors with their status
    alarms = screen_server.store.query("alarms", FeatureQuery(filters=(Filter("building_id", Op.EQ, building),
                                                                       Filter("status", Op.EQ, "open"))))
    level_id = int(alarms["level_id"].dropna().iloc[0])
    name = str(levels.loc[level_id, "name"])
    item = screen.page.locator(f"#floors li[data-level='{level_id}']")
    assert "火警" in item.text_content() or "预警" in item.text_content()
    item.click()
    screen.wait_for(f"document.querySelector('#panel h2').textContent.startsWith('{name} ')", 10, "the floor's panel")
    panel = screen.js("document.getElementById('panel').textContent")
    assert "消防设施" in panel and "物联设备" in panel and ("在线" in panel or "离线" in panel or "报警" in panel)
    assert "火警" in panel or "预警" in panel
    refuge_name = str(levels.loc[min(refuge), "name"])
    screen.page.locator(f"#floors li[data-level='{min(refuge)}']").click()
    screen.wait_for(f"document.querySelector('#panel h2').textContent.startsWith('{refuge_name} ')", 10,
                    "the refuge floor's panel")
    assert "避难层" in screen.js("document.getElementById('panel').textContent")
    screen.screenshot("tower-floor-list")
    screen.assert_clean()


def _clickable(screen: Screen, level: Any, level_id: int) -> tuple[float, float] | None:
    """A pixel where the floor's slab is the object drawn on top (points can hide parts of it)."""
    ring = list(level.geometry.exterior.coords)[:-1]
    cx, cy = level.geometry.centroid.x, level.geometry.centroid.y
    top = float(level["elevation_m"]) + float(level["height_m"]) * 0.99
    for x0, y0 in ring:
        for share in (0.15, 0.3, 0.5, 0.7):
            lon, lat = x0 + (cx - x0) * share, y0 + (cy - y0) * share
            x, y = screen.js("(p) => window.twinScreen.project(p)", [lon, lat, top])[:2]
            picked = screen.js("([x, y]) => { const o = window.twinScreen.deck.pickObject({x, y, radius: 0}); "
                               "const top = document.elementFromPoint(x, y); "  # not under the side panel
                               "return top && top.tagName === 'CANVAS' && o && o.object ? [o.layer.id, o.object.id] "
                               ": null; }", [x, y])
            if picked == ["levels", level_id]:
                return x, y
    return None


def test_grid_view_shows_buildings_sensors_and_alarms(screen_server: ScreenServer,
                                                      open_screen: Callable[[str], Screen]) -> None:
    building = screen_server.store.get("buildings", _fire_alarm_building(screen_server)).iloc[0]
    code = building["grid_code"]
    public = httpx.get(f"{screen_server.url}/map/grids/{code}/screen.json").json()
    assert "sensors" not in {layer["id"] for layer in public["deck"]["layers"]}  # staff data
    screen = open_screen(f"{screen_server.url}/map/grids/{code}#key={screen_server.keys['operator']}")
    screen.wait_ready()
    pixels = screen.screenshot("grid")
    screen.assert_clean()
    _drawn(pixels)
    layers = screen.js("window.twinScreen.deck.props.layers.map((l) => l.id)")
    assert {"grid", "buildings", "sensors", "alarms"} <= set(layers)
    panel = screen.js("document.getElementById('panel').textContent")
    assert "网格员" in panel and "火警" in panel
    assert httpx.get(f"{screen_server.url}/map/grids/nosuchgrid/screen.json").status_code == 404


@pytest.mark.parametrize("args", [["district"], ["tower", "13"], ["grid", "440309004001012"]],
                         ids=["district", "tower", "grid"])
def test_twin_render_writes_standalone_files_that_request_nothing(
        args: list[str], sample_path: Path, tmp_path: Path, open_screen: Callable[[str], Screen]) -> None:
    out = tmp_path / f"{args[0]}.html"
    result = CliRunner().invoke(render_app, [*args, "--out", str(out), "--store", str(sample_path)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "http-equiv=\"Content-Security-Policy\"" in html
    assert not re.search(r"^<(script src|link)=", html, re.MULTILINE)  # every script and style is inline
    screen = open_screen(out.as_uri())
    screen.wait_ready()
    pixels = screen.screenshot(f"standalone-{args[0]}")
    assert screen.requests == [out.as_uri()], screen.requests  # the file itself, and nothing else
    screen.assert_clean()
    _drawn(pixels)
