"""Contract: vector tiles decoded with an independent decoder hold the right features, ids and properties."""

from __future__ import annotations

import mapbox_vector_tile
import morecantile
import pytest

from twin.errors import InvalidQuery
from twin.store.base import FeatureQuery, TileRequest
from twin.tiles.build import query_bbox

WMQ = morecantile.tms.get("WebMercatorQuad")
CENTRE = (114.0325, 22.610)  # the middle of the fixture twin


def _tile(z: int) -> tuple[int, int, int]:
    t = WMQ.tile(*CENTRE, z)
    return z, t.x, t.y


def _decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data) if data else {}


def test_tile_holds_every_building_touching_it(store) -> None:
    z, x, y = _tile(16)
    request = TileRequest(("buildings",), z, x, y)
    decoded = _decode(store.tile(request))
    expected = store.query("buildings", FeatureQuery(bbox=query_bbox(request)))
    assert len(expected) > 0
    features = decoded["buildings"]["features"]
    assert sorted(f["id"] for f in features) == sorted(expected.index)
    one = next(f for f in features if f["id"] == expected.index[0])
    row = expected.iloc[0]
    assert one["properties"]["code"] == row["code"]
    assert one["properties"]["height_m"] == pytest.approx(row["height_m"])
    assert one["geometry"]["type"] == "Polygon"


def test_several_layers_in_one_tile(store) -> None:
    z, x, y = _tile(15)
    decoded = _decode(store.tile(TileRequest(("buildings", "grids", "roads"), z, x, y)))
    assert {"buildings", "grids"} <= set(decoded)
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in decoded["grids"]["features"])


def test_layers_outside_their_zoom_range_are_left_out(store) -> None:
    # fire_facilities are drawn from z16 (catalogue), buildings from z12
    z, x, y = _tile(13)
    decoded = _decode(store.tile(TileRequest(("buildings", "fire_facilities"), z, x, y)))
    assert "buildings" in decoded and "fire_facilities" not in decoded


def test_datetime_properties_are_iso_text(store) -> None:
    z, x, y = _tile(17)
    decoded = _decode(store.tile(TileRequest(("sensors",), z, x, y)))
    if "sensors" not in decoded:  # pick a tile around a sensor instead
        sensor = store.query("sensors", FeatureQuery(limit=1)).geometry.iloc[0]
        t = WMQ.tile(sensor.x, sensor.y, 17)
        decoded = _decode(store.tile(TileRequest(("sensors",), 17, t.x, t.y)))
    seen = [f["properties"].get("last_seen") for f in decoded["sensors"]["features"]]
    stamped = [s for s in seen if s is not None]
    assert stamped and all(s.endswith("Z") and "T" in s for s in stamped)


def test_feature_cap(store) -> None:
    z, x, y = _tile(14)
    decoded = _decode(store.tile(TileRequest(("buildings",), z, x, y, max_features=5)))
    assert len(decoded["buildings"]["features"]) == 5


def test_empty_tile_is_empty_bytes(store) -> None:
    assert store.tile(TileRequest(("buildings",), 16, 0, 0)) == b""


def test_tables_have_no_tiles(store) -> None:
    z, x, y = _tile(15)
    with pytest.raises(InvalidQuery):
        store.tile(TileRequest(("readings",), z, x, y))


@pytest.mark.parametrize("z,x,y", [(3, 8, 0), (-1, 0, 0), (30, 0, 0)])
def test_tile_outside_the_matrix_is_rejected(z: int, x: int, y: int) -> None:
    with pytest.raises(InvalidQuery):
        TileRequest(("buildings",), z, x, y)


def test_tile_reader_gives_the_versions_and_the_tile(store) -> None:
    z, x, y = _tile(16)
    request = TileRequest(("buildings", "grids"), z, x, y)
    with store.tile_reader() as reader:
        versions = reader.versions(("buildings", "grids"))
        data = reader.tile(request)
    assert versions == (store.layer_version("buildings"), store.layer_version("grids"))
    assert data == store.tile(request)
    target = int(_decode(data)["buildings"]["features"][0]["id"])
    store.update("buildings", target, {"height_m": 77.25})
    with store.tile_reader() as reader:  # no staleness: the next reader sees the write at once
        after = reader.versions(("buildings", "grids"))
        changed = {f["id"]: f for f in _decode(reader.tile(request))["buildings"]["features"]}
    assert after[0] > versions[0] and after[1] == versions[1]
    assert changed[target]["properties"]["height_m"] == pytest.approx(77.25)
