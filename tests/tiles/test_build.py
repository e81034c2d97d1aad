"""GeoPackage tiles built from raw rows (no frame) are byte-identical to tiles built from ``Store.query`` frames."""

from __future__ import annotations

from pathlib import Path

import morecantile
import numpy as np
import pandas as pd
import pytest

from layers import LAYERS, get_layer
from twin.store.base import TileRequest
from twin.store.geopackage import GeoPackageStore
from twin.store.gpkg_codec import python_column
from twin.store.gpkg_tiles import tile_column
from twin.tiles.build import build_tile, tile_properties
from twin.tiles.protobuf import encode_properties

WMQ = morecantile.tms.get("WebMercatorQuad")
STATION = (114.0239, 22.6119)
SPATIAL = tuple(layer.id for layer in LAYERS if layer.is_spatial)


@pytest.fixture(scope="module")
def sample(sample_path: Path):
    with GeoPackageStore(sample_path, readonly=True) as store:
        yield store


@pytest.mark.parametrize("z", [10, 13, 15, 16, 17])
def test_raw_row_tiles_equal_frame_tiles(sample: GeoPackageStore, z: int) -> None:
    built = 0
    for dx in (-1, 0, 1):
        t = WMQ.tile(STATION[0] + dx * 180 / 2**z, STATION[1], z)
        for ids in (SPATIAL, *((layer_id,) for layer_id in SPATIAL)):
            request = TileRequest(ids, t.z, t.x, t.y)
            data = sample.tile(request)
            assert data == build_tile(sample, request), request
            built += bool(data)
    assert built  # the station's tiles are not all empty


def test_feature_cap_keeps_the_first_ids(sample: GeoPackageStore) -> None:
    t = WMQ.tile(*STATION, 15)
    request = TileRequest(("buildings",), 15, t.x, t.y, max_features=7)
    assert sample.tile(request) == build_tile(sample, request)


@pytest.mark.parametrize("layer_id,name,values", [
    ("sensors", "last_seen", ["2026-11-25T07:56:49.000Z", None, "2026-11-25T07:56:49.120Z"]),
    ("sensors", "last_seen", ["2026-11-25 07:56:49", "2026-11-25T08:56:49+08:00", None]),  # not the store's format
    ("fire_facilities", "last_inspected", ["2026-10-21", None]),
    ("fire_facilities", "last_inspected", ["20261021", None]),  # ISO basic form: read, written back extended
    ("levels", "is_refuge", [0, 1, None]),
    ("buildings", "floors_above", [3, None, -2]),
    ("buildings", "height_m", [3.5, None, 12.0]),
    ("buildings", "code", ["B1", None, "楼"]),
])
def test_raw_values_encode_as_frame_values_do(layer_id: str, name: str, values: list) -> None:
    layer = get_layer(layer_id)
    field = layer.field(name)
    expected = tile_properties(layer, pd.DataFrame({name: python_column(field, values)}))
    rows = np.arange(len(values))
    keys, table, tags, counts = encode_properties({name: tile_column(field, values)}, rows)
    want_keys, want_table, want_tags, want_counts = encode_properties(expected, rows)
    assert (keys, table) == (want_keys, want_table)
    assert tags.tolist() == want_tags.tolist() and counts.tolist() == want_counts.tolist()
