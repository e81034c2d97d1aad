"""The district screen's baked ground and the tower's floor list, without a browser."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from shapely.geometry import LineString, box

from layers import Role
from twin.render import colors as c
from twin.render.bake import Backdrop, Fill, Stroke, bake
from twin.render.basemap import Basemap
from twin.render.district import TileSource, district_screen, load_district
from twin.render.ground import ground_layers, hit_features
from twin.render.tower import load_tower, tower_screen
from twin.store.base import FeatureQuery, Filter, Op
from twin.store.geopackage import GeoPackageStore

BOUNDS = (114.00, 22.60, 114.01, 22.61)  # about 1 km a side


@pytest.fixture(scope="module")
def store(sample_path: Path) -> GeoPackageStore:
    return GeoPackageStore(sample_path)


def _decoded(image: bytes) -> np.ndarray:
    assert image[:4] == b"RIFF" and image[8:12] == b"WEBP"
    return np.asarray(Image.open(io.BytesIO(image)).convert("RGB")).astype(int)


def _pixel(pixels: np.ndarray, lon: float, lat: float) -> np.ndarray:
    h, w, _ = pixels.shape
    west, south, east, north = BOUNDS
    # a 1 km box: Mercator is close enough to linear in latitude here for a pixel look-up
    return pixels[int((north - lat) / (north - south) * (h - 1)), int((lon - west) / (east - west) * (w - 1))]


def test_bake_blends_fills_and_metre_wide_strokes_over_the_relief() -> None:
    relief = np.zeros((100, 100, 4), dtype=np.uint8)
    relief[..., :3], relief[..., 3] = (40, 40, 40), 255
    backdrop = Backdrop(relief, BOUNDS, size=512)
    square = box(114.002, 22.602, 114.004, 22.604)
    road = LineString([(114.006, 22.601), (114.006, 22.609)])
    pixels = _decoded(bake(backdrop, [Fill([square], (250, 20, 20, 255)),
                                      Stroke([road], (20, 250, 20, 255), 40.0, min_px=1.0)]))
    assert pixels.shape[:2] == (512, 512) or max(pixels.shape[:2]) == 512
    inside = _pixel(pixels, 114.003, 22.603)
    assert inside[0] > 200 and inside[1] < 60, inside
    on_road = _pixel(pixels, 114.006, 22.605)
    assert on_road[1] > 200 and on_road[0] < 60, on_road
    beside = _pixel(pixels, 114.0068, 22.605)  # about 80 m east of the 40 m road's axis
    assert abs(beside - 40).max() < 20, beside


def test_bake_draws_translucent_fills_translucent() -> None:
    relief = np.full((10, 10, 4), 255, dtype=np.uint8)
    relief[..., :3] = 0
    pixels = _decoded(bake(Backdrop(relief, BOUNDS, size=128), [Fill([box(*BOUNDS)], (200, 200, 200, 128))]))
    centre = pixels[64, 64]
    assert 80 < centre[0] < 120, centre  # half of 200 over black


def test_the_ground_holds_every_footprint_and_the_states_are_drawn_over_it(store: GeoPackageStore) -> None:
    data = load_district(store, role=Role.OPERATOR, inline=False, footprints=True)
    layers = ground_layers(data)
    fills = [layer for layer in layers if isinstance(layer, Fill)]
    assert len(fills[0].geometries) == len(data.grids)
    footprints = fills[-1]
    assert len(footprints.geometries) == store.count("buildings")
    assert footprints.colors == c.state_color("normal")  # the image does not follow alarms ...
    # ... the low buildings in another state are drawn over it in their colour, the high-rises extruded
    assert data.flagged is not None and data.high_rises is not None
    low = {int(i) for i in data.states.index} - {int(i) for i in data.high_rises.index}
    assert {int(i) for i in data.flagged.index} == low
    # (the sample's states are all on high-rises: put a low building in the fault state)
    small = store.query("buildings", FeatureQuery(filters=(Filter("height_m", Op.LT, 30.0),), limit=1))
    data.states = pd.concat([data.states, pd.Series({int(small.index[0]): "fault"}, dtype=object)])
    data.flagged = small
    data.ground = Basemap("/map/ground/x.webp", BOUNDS)
    document = district_screen(data, TileSource("/b/{z}/{y}/{x}", "/s/{z}/{y}/{x}")).to_dict()
    alarmed = next(layer for layer in document["deck"]["layers"] if layer["id"] == "alarmed")
    assert alarmed["extruded"] is False
    assert [f["properties"]["state"] for f in alarmed["data"]["features"]] == ["fault"]
    assert "alarmed" in document["twin"]["live"]["layers"]
    hit = hit_features(data)
    assert len(hit["grids"]) == len(data.grids) and len(hit["roads"]) == len(data.roads)
    assert all(r["width"] > 0 and r["paths"] for r in hit["roads"])
    assert all(g["rings"] and "网格员" in g["tip"] for g in hit["grids"])
    # the public view has no states to draw
    public = load_district(store, role=Role.PUBLIC, inline=False, footprints=True)
    assert ground_layers(public)[-1].colors == c.state_color("normal") and public.flagged is None


def test_with_a_ground_image_the_flat_layers_leave_the_deck(store: GeoPackageStore) -> None:
    data = load_district(store, role=Role.PUBLIC, inline=False, footprints=True)
    data.ground = Basemap("/map/ground/x.webp", BOUNDS)
    document = district_screen(data, TileSource("/b/{z}/{y}/{x}")).to_dict()
    ids = [layer["id"] for layer in document["deck"]["layers"]]
    assert "grids" not in ids and "roads" not in ids and "communities" not in ids
    assert ids[0] == "basemap" and "/map/ground/x.webp" in document["deck"]["layers"][0]["image"]
    assert document["twin"]["defer"] == ["buildings"] and document["twin"]["hit"]["grids"]
    labels = next(layer for layer in document["deck"]["layers"] if layer["id"] == "labels")
    names = {record["label"] for record in labels["data"]}
    assert set(data.communities["name"]) <= names and set(data.fire_stations["name"]) <= names


def test_tower_floor_list_is_top_first_with_refuge_floors_and_panels(store: GeoPackageStore) -> None:
    towers = store.query("buildings", FeatureQuery(filters=(Filter("height_m", Op.GT, 100.0),)))
    building = int(towers.sort_values("height_m", ascending=False).index[0])
    screen = tower_screen(load_tower(store, building))
    floors = screen.to_dict()["twin"]["floors"]
    levels = store.query("levels", FeatureQuery(filters=(Filter("building_id", Op.EQ, building),)))
    assert [f["id"] for f in floors] == [int(i) for i in levels.sort_values("elevation_m", ascending=False).index]
    refuge = {int(i) for i in levels.index[levels["is_refuge"].fillna(False).astype(bool)]}
    assert {f["id"] for f in floors if f["refuge"]} == refuge
    assert all(f["panel"]["title"].startswith(f["name"]) and "设施" in f["summary"] for f in floors)
