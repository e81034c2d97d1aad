"""Tests of twin.tiles: tiles decoded by the independent mapbox-vector-tile decoder and compared with its encoder."""

from __future__ import annotations

import itertools
import math

import mapbox_vector_tile
import morecantile
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from mapbox_vector_tile.Mapbox import vector_tile_pb2
from shapely.geometry import LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon, shape

from twin.tiles import TileLayer, encode_tile, encode_tile_with_stats, tile_bounds
from twin.tiles.protobuf import encode_varints, varint, zigzag

Z, X, Y = 15, 26762, 14270  # the tile of 114.02E 22.61N
BOUNDS = tile_bounds(Z, X, Y)
UNIT = (BOUNDS[2] - BOUNDS[0]) / 4096


def m(x: float, y: float) -> tuple[float, float]:
    """EPSG:3857 metres of tile grid coordinates (y down) of the test tile."""
    return BOUNDS[0] + x * UNIT, BOUNDS[3] - y * UNIT


def poly(exterior, *holes) -> Polygon:
    return Polygon([m(*p) for p in exterior], [[m(*p) for p in h] for h in holes])


def layer(geoms, name="l", ids=None, **properties) -> TileLayer:
    return TileLayer(name, np.array(geoms, dtype=object), None if ids is None else np.asarray(ids), properties)


def decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def raw(data: bytes) -> vector_tile_pb2.tile:
    tile = vector_tile_pb2.tile()
    tile.ParseFromString(data)
    return tile


def signed_area(ring) -> float:
    """Surveyor's formula in tile coordinates (y down): positive for MVT exterior rings."""
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring)) / 2


def commands(geom, **options) -> list[int]:
    return list(raw(encode_tile([layer([geom])], BOUNDS, simplify=False, **options)).layers[0].features[0].geometry)


# --- wire format -----------------------------------------------------------------------------------------------------

def test_varints_match_the_protobuf_definition():
    values = [0, 1, 127, 128, 150, 300, 2**14, 2**35 + 3, 2**63, 2**64 - 1]
    assert [varint(v) for v in (1, 150, 300)] == [b"\x01", b"\x96\x01", b"\xac\x02"]
    assert len(varint(2**64 - 1)) == 10
    assert encode_varints(np.array(values, dtype=np.uint64)).tobytes() == b"".join(varint(v) for v in values)
    random = np.random.default_rng(3).integers(0, 2**63, 2000, dtype=np.int64).astype(np.uint64) >> np.uint64(
        np.random.default_rng(4).integers(0, 63))
    assert encode_varints(random).tobytes() == b"".join(varint(int(v)) for v in random)
    assert zigzag(np.array([0, -1, 1, -2, 2, -4096])).tolist() == [0, 1, 2, 3, 4, 8191]


# --- tile bounds -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tile", [(0, 0, 0), (15, 26762, 14270), (3, 7, 0), (22, 3425612, 1826399)])
def test_tile_bounds_match_morecantile(tile):
    z, x, y = tile
    expected = morecantile.tms.get("WebMercatorQuad").xy_bounds(morecantile.Tile(x, y, z))
    assert tile_bounds(z, x, y) == pytest.approx(tuple(expected), abs=1e-6)


def test_tile_bounds_reject_tiles_outside_the_matrix():
    with pytest.raises(ValueError):
        tile_bounds(2, 4, 0)


# --- geometry: the specification's examples, exactly ----------------------------------------------------------------

def test_spec_examples_encode_to_the_spec_command_integers():
    assert commands(Point(m(25, 17))) == [9, 50, 34]
    assert commands(Point(m(25, 17)), extent=512) == [9, 6, 4]  # 25/8 and 17/8 rounded
    assert commands(MultiPoint([m(5, 7), m(3, 2)])) == [17, 10, 14, 3, 9]
    assert commands(LineString([m(2, 2), m(2, 10), m(10, 10)])) == [9, 4, 4, 18, 0, 16, 16, 0]
    assert commands(MultiLineString([[m(2, 2), m(2, 10), m(10, 10)], [m(1, 1), m(3, 5)]])) == [
        9, 4, 4, 18, 0, 16, 16, 0, 9, 17, 17, 10, 4, 8]
    assert commands(poly([(3, 6), (8, 12), (20, 34), (3, 6)])) == [9, 6, 12, 18, 10, 12, 24, 44, 15]
    multipolygon = MultiPolygon([
        poly([(0, 0), (10, 0), (10, 10), (0, 10), (0, 0)]),
        poly([(11, 11), (20, 11), (20, 20), (11, 20), (11, 11)], [(13, 13), (13, 17), (17, 17), (17, 13), (13, 13)]),
    ])
    assert commands(multipolygon) == [9, 0, 0, 26, 20, 0, 0, 20, 19, 0, 15, 9, 22, 2, 26, 18, 0, 0, 18, 17, 0, 15,
                                      9, 4, 13, 26, 0, 8, 8, 0, 0, 7, 15]


def test_feature_types_and_y_axis_pointing_down():
    tile = encode_tile([layer([Point(m(10, 4000)), LineString([m(0, 0), m(5, 5)]), poly([(0, 0), (9, 0), (0, 9)])])],
                       BOUNDS)
    features = raw(tile).layers[0].features
    assert [f.type for f in features] == [1, 2, 3]
    assert decode(tile)["l"]["features"][0]["geometry"]["coordinates"] == [10, 4000]  # near the bottom edge


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_polygon_rings_are_wound_exterior_positive_holes_negative(sign):
    square = shapely.geometry.polygon.orient(
        poly([(100, 100), (300, 100), (300, 300), (100, 300)], [(150, 150), (150, 250), (250, 250), (250, 150)]), sign)
    geometry = decode(encode_tile([layer([square])], BOUNDS))["l"]["features"][0]["geometry"]
    assert geometry["type"] == "Polygon"
    exterior, hole = geometry["coordinates"]
    assert signed_area(exterior) == 200 * 200
    assert signed_area(hole) == -100 * 100
    assert sorted(map(tuple, exterior[:-1])) == [(100, 100), (100, 300), (300, 100), (300, 300)]


def test_multi_geometries_keep_their_parts():
    parts = MultiPolygon([poly([(10, 10), (50, 10), (50, 50), (10, 50)]),
                          poly([(100, 100), (200, 100), (200, 200), (100, 200)], [(120, 120), (120, 140), (140, 140)])])
    lines = MultiLineString([[m(0, 0), m(10, 0)], [m(20, 20), m(30, 40), m(50, 40)]])
    features = decode(encode_tile([layer([parts, lines])], BOUNDS))["l"]["features"]
    polygons = features[0]["geometry"]
    assert polygons["type"] == "MultiPolygon"
    assert [len(p) for p in polygons["coordinates"]] == [1, 2]
    assert all(signed_area(p[0]) > 0 for p in polygons["coordinates"])
    assert signed_area(polygons["coordinates"][1][1]) < 0
    assert features[1]["geometry"] == {"type": "MultiLineString",
                                       "coordinates": [[[0, 0], [10, 0]], [[20, 20], [30, 40], [50, 40]]]}


def test_repeated_points_after_quantization_are_removed_and_z_dropped():
    line = LineString([(*m(0, 0), 5.0), (*m(10.1, 0), 5.0), (*m(9.9, 0.2), 6.0), (*m(20, 0), 7.0)])
    geometry = decode(encode_tile([layer([line])], BOUNDS, simplify=False))["l"]["features"][0]["geometry"]
    assert geometry["coordinates"] == [[0, 0], [10, 0], [20, 0]]


def test_a_last_vertex_snapped_onto_the_first_is_left_to_close_path():
    assert commands(poly([(0, 0), (100, 0), (100, 100), (0.2, 0.1)])) == [9, 0, 0, 18, 200, 0, 0, 200, 15]


def test_holes_go_with_a_degenerate_exterior():
    bow_tie = poly([(0, 0), (100, 0), (0, 100), (100, 100)], [(40, 10), (60, 10), (50, 30)])  # no area: invalid
    tile = encode_tile([layer([bow_tie, poly([(0, 0), (9, 0), (0, 9)])], ids=[1, 2])], BOUNDS, simplify=False)
    assert [f["id"] for f in decode(tile)["l"]["features"]] == [2]


def test_features_keep_input_order_across_geometry_types():
    geoms = [poly([(0, 0), (9, 0), (0, 9)]), Point(m(1, 1)), LineString([m(0, 0), m(4, 4)]), Point(m(2, 2)), None,
             shapely.GeometryCollection([Point(m(3, 3))])]
    features = raw(encode_tile([layer(geoms, ids=[10, 11, 12, 13, 14, 15])], BOUNDS)).layers[0].features
    assert [(f.id, f.type) for f in features] == [(10, 3), (11, 1), (12, 2), (13, 1), (15, 1)]


# --- clipping, degenerate parts, simplification ---------------------------------------------------------------------

def test_geometries_are_clipped_to_the_buffer():
    huge = poly([(-5000, -5000), (9000, -5000), (9000, 9000), (-5000, 9000)])
    line = LineString([m(-1000, 100), m(5000, 100)])
    points = MultiPoint([m(-65, 10), m(-64, 10), m(4160, 4160), m(4161, 0)])
    features = decode(encode_tile([layer([huge, line, points])], BOUNDS, buffer=64))["l"]["features"]
    ring = features[0]["geometry"]["coordinates"][0]
    assert sorted(map(tuple, ring[:-1])) == [(-64, -64), (-64, 4160), (4160, -64), (4160, 4160)]
    assert features[1]["geometry"]["coordinates"] == [[-64, 100], [4160, 100]]
    assert features[2]["geometry"]["coordinates"] == [[-64, 10], [4160, 4160]]
    clipped = decode(encode_tile([layer([huge])], BOUNDS, buffer=0))["l"]["features"][0]["geometry"]
    assert signed_area(clipped["coordinates"][0]) == 4096 * 4096


def test_degenerate_geometries_are_dropped():
    geoms = [
        poly([(10, 10), (10.2, 10), (10.2, 10.2), (10, 10.2)]),                   # collapses to a point
        poly([(10, 10), (20, 10.2), (30, 9.9), (10, 10)]),                        # collapses to a line: no area
        LineString([m(5, 5), m(5.2, 5.1)]),                                       # one point left
        poly([(0, 0), (100, 0), (100, 100), (0, 100)], [(50, 50), (50.3, 50), (50.3, 50.3)]),  # hole collapses
        Point(m(9000, 9000)),                                                     # outside the buffer
        Polygon(),
    ]
    result = encode_tile_with_stats([layer(geoms, ids=[1, 2, 3, 4, 5, 6])], BOUNDS, simplify=False)
    features = decode(result.data)["l"]["features"]
    assert [f["id"] for f in features] == [4]
    assert features[0]["geometry"] == {"type": "Polygon", "coordinates": [[[0, 0], [100, 0], [100, 100], [0, 100],
                                                                           [0, 0]]]}
    assert (result.layers[0].features, result.layers[0].empty, result.layers[0].capped) == (1, 5, 0)


def test_simplification_thins_vertices_at_low_zoom_and_keeps_polygons_valid():
    centre = m(2048, 2048)
    rng = np.random.default_rng(5)
    angles = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    radius = 300 * UNIT * (1 + 0.02 * rng.standard_normal(400))
    wiggly = Polygon(np.c_[centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)])
    assert wiggly.is_valid
    low = tile_bounds(13, X // 4, Y // 4)  # the same shape is a quarter of the size here

    def vertices_and_shape(simplify):
        geometry = decode(encode_tile([layer([wiggly])], low, simplify=simplify))["l"]["features"][0]["geometry"]
        return len(geometry["coordinates"][0]), shape(geometry)

    full, full_shape = vertices_and_shape(False)
    thinned, thinned_shape = vertices_and_shape(True)
    coarse, coarse_shape = vertices_and_shape(4.0)
    assert coarse < thinned < full
    assert thinned < 0.7 * full
    for polygon in (thinned_shape, coarse_shape):
        assert polygon.is_valid
        assert polygon.area == pytest.approx(full_shape.area, rel=0.03)


# --- ids and properties ----------------------------------------------------------------------------------------------

def test_ids_are_written_only_when_given():
    points = [Point(m(1, 1)), Point(m(2, 2))]
    with_ids = raw(encode_tile([layer(points, ids=np.array([7, 2**63 + 5], dtype=np.uint64))], BOUNDS))
    assert [f.id for f in with_ids.layers[0].features] == [7, 2**63 + 5]
    without = raw(encode_tile([layer(points)], BOUNDS))
    assert not any(f.HasField("id") for f in without.layers[0].features)


def test_property_values_of_every_type_and_missing_values():
    n = 5
    tile = encode_tile([layer(
        [Point(m(i, i)) for i in range(n)],
        name="北站=\u5317",
        name_zh=np.array(["深圳北站", "龙华区民治街道", None, "", "深圳北站"], dtype=object),
        count=np.array([-3, 0, 7, 2**40, -(2**63)]),
        big=np.array([1, 2, 3, 4, 2**64 - 1], dtype=np.uint64),
        height=np.array([1.5, np.nan, -0.25, 1e300, 2.0]),
        small=np.array([0.5, 1.0, 2.0, 3.0, 4.0], dtype=np.float32),
        open=np.array([True, False, True, False, True]),
        nullable=pd.Series([1, None, -2, None, 4], dtype="Int64"),
        text=pd.Series(["a", None, "c", "d", "a"], dtype="string"),
        mixed=np.array([True, 1, 1.5, "1", None], dtype=object),
    )], BOUNDS)
    features = decode(tile)["北站=\u5317"]["features"]
    props = [f["properties"] for f in features]
    assert [p.get("name_zh") for p in props] == ["深圳北站", "龙华区民治街道", None, "", "深圳北站"]
    assert [p["count"] for p in props] == [-3, 0, 7, 2**40, -(2**63)]
    assert props[4]["big"] == 2**64 - 1
    assert [p.get("height") for p in props] == [1.5, None, -0.25, 1e300, 2.0]
    assert [p["small"] for p in props] == [0.5, 1.0, 2.0, 3.0, 4.0]
    assert [p["open"] for p in props] == [True, False, True, False, True]
    assert [p.get("nullable") for p in props] == [1, None, -2, None, 4]
    assert [p.get("text") for p in props] == ["a", None, "c", "d", "a"]
    assert [p.get("mixed") for p in props] == [True, 1, 1.5, "1", None]
    assert type(props[0]["mixed"]) is bool and type(props[1]["mixed"]) is int

    values = raw(tile).layers[0].values
    assert all(len(v.ListFields()) == 1 for v in values)
    assert {v.ListFields()[0][0].name for v in values} == {
        "string_value", "int_value", "sint_value", "uint_value", "double_value", "float_value", "bool_value"}
    assert {v.sint_value for v in values if v.HasField("sint_value")} == {-3, -(2**63), -2}


def test_keys_and_values_are_deduplicated_and_common_values_come_first():
    n = 300
    use = np.where(np.arange(n) % 3 == 0, "住宅", "商业").astype(object)
    tile = raw(encode_tile([layer(
        [Point(m(i, i)) for i in range(n)], use=use, alias=use.copy(), serial=np.arange(n), flag=np.arange(n) < 1,
    )], BOUNDS)).layers[0]
    assert list(tile.keys) == ["use", "alias", "serial", "flag"]
    assert len(tile.values) == 2 + n + 2  # 住宅/商业 shared by two columns, 300 serials, True/False
    # 商业 tags 400 features, False 299, 住宅 200.
    first_three = (tile.values[0].string_value, tile.values[1].bool_value, tile.values[2].string_value)
    assert first_three == ("商业", False, "住宅")
    assert tile.values[1].HasField("bool_value")
    assert sum(len(f.tags) for f in tile.features) == 8 * n


def test_several_layers_in_one_tile_and_empty_layers_left_out():
    layers = [layer([Point(m(1, 1))], "sensors"), layer([], "alarms"), layer([Point(m(-900, 0))], "outside"),
              layer([poly([(0, 0), (9, 0), (0, 9)])], "buildings")]
    result = encode_tile_with_stats(layers, BOUNDS, extent=4096)
    tile = raw(result.data)
    assert [(lyr.name, lyr.version, lyr.extent, len(lyr.features)) for lyr in tile.layers] == [
        ("sensors", 2, 4096, 1), ("buildings", 2, 4096, 1)]
    assert [s.features for s in result.layers] == [1, 0, 0, 1]
    assert encode_tile([layer([], "a"), layer([None], "b")], BOUNDS) == b""


def test_feature_cap_keeps_the_first_surviving_features():
    points = [Point(m(-9000, 0))] + [Point(m(i, i)) for i in range(10)]
    result = encode_tile_with_stats([layer(points, ids=range(11))], BOUNDS, max_features=3)
    assert [f["id"] for f in decode(result.data)["l"]["features"]] == [1, 2, 3]
    assert (result.layers[0].features, result.layers[0].empty, result.layers[0].capped, result.capped) == (3, 1, 7, 7)
    assert encode_tile_with_stats([layer(points)], BOUNDS, max_features=50).capped == 0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="unique"):
        encode_tile([layer([], "a"), layer([], "a")], BOUNDS)
    with pytest.raises(ValueError, match="2 values for 1"):
        layer([Point(0, 0)], height=np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="negative"):
        layer([Point(0, 0)], ids=[-1])
    with pytest.raises(ValueError):
        encode_tile([layer([Point(0, 0)])], BOUNDS, buffer=-1)


# --- against the reference encoder, and a property test -------------------------------------------------------------

def random_layer(rng: np.random.Generator, n: int) -> TileLayer:
    geoms = []
    for i in range(n):
        cx, cy = rng.uniform(200, 3900, 2)
        if i % 3 == 0:
            geoms.append(Point(m(cx, cy)))
        elif i % 3 == 1:
            geoms.append(LineString([m(cx + dx, cy + dy) for dx, dy in rng.uniform(-150, 150, (4, 2))]))
        else:
            w, h = rng.uniform(20, 150, 2)
            outer = poly([(cx - w, cy - h), (cx + w, cy - h), (cx + w, cy + h), (cx, cy + h / 3), (cx - w, cy + h)],
                         [(cx - w / 2, cy - h / 2), (cx + w / 2, cy - h / 2), (cx, cy - h / 4)])
            geoms.append(shapely.geometry.polygon.orient(outer, rng.choice([-1.0, 1.0])))
    return layer(geoms, "random", ids=np.arange(1, n + 1), label=np.array([f"楼{i}" for i in range(n)], dtype=object),
                 height=rng.uniform(3, 300, n).round(1), levels=rng.integers(-3, 80, n), lit=rng.random(n) < 0.5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning:mapbox_vector_tile")
def test_same_features_as_the_reference_encoder():
    lyr = random_layer(np.random.default_rng(11), 300)
    columns = {key: np.asarray(values).tolist() for key, values in lyr.properties.items()}
    features = [{"geometry": g, "id": int(i), "properties": {k: v[j] for k, v in columns.items()}}
                for j, (g, i) in enumerate(zip(lyr.geometries, lyr.ids, strict=True))]
    reference = mapbox_vector_tile.encode([{"name": "random", "features": features}],
                                          default_options={"quantize_bounds": BOUNDS})
    ours = decode(encode_tile([lyr], BOUNDS, simplify=False))["random"]["features"]
    theirs = decode(reference)["random"]["features"]
    assert len(ours) == len(theirs) == 300
    for a, b in zip(ours, theirs, strict=True):
        assert (a["id"], a["properties"], a["geometry"]["type"]) == (b["id"], b["properties"], b["geometry"]["type"])
        shape_a, shape_b = shape(a["geometry"]), shape(b["geometry"])
        assert shapely.get_num_coordinates(shape_a) == shapely.get_num_coordinates(shape_b)
        assert shape_a.hausdorff_distance(shape_b) <= math.sqrt(2)
        if a["geometry"]["type"] == "Polygon":
            assert [np.sign(signed_area(r)) for r in a["geometry"]["coordinates"]] == [1, -1]
            assert [np.sign(signed_area(r)) for r in b["geometry"]["coordinates"]] == [1, -1]


@st.composite
def star_polygons(draw):
    """Star-shaped polygons around a centre (so always simple), with a shrunken copy as a hole, in tile units."""
    n = draw(st.integers(3, 24))
    cx, cy = draw(st.floats(600, 3500)), draw(st.floats(600, 3500))
    radii = np.array(draw(st.lists(st.floats(20, 500), min_size=n, max_size=n)))
    angles = np.sort(np.array(draw(st.lists(st.floats(0, 2 * np.pi), min_size=n, max_size=n, unique=True))))
    gaps = np.diff(np.r_[angles, angles[0] + 2 * np.pi])
    if gaps.min() < 0.05 or gaps.max() > np.pi * 0.9:
        angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = np.c_[cx + radii * np.cos(angles), cy + radii * np.sin(angles)]
    hole = ring[::-1] if draw(st.booleans()) else ring
    centre = np.array([cx, cy])
    holes = [centre + 0.3 * (hole - centre)] if draw(st.booleans()) else []
    return Polygon(ring, holes)


@settings(max_examples=150, deadline=None)
@given(star_polygons())
def test_random_polygons_survive_with_the_right_winding_and_area(polygon_in_units):
    metres = shapely.transform(polygon_in_units, lambda c: np.c_[m(c[:, 0], c[:, 1])])
    features = decode(encode_tile([layer([metres])], BOUNDS, simplify=False))["l"]["features"]
    assert len(features) == 1
    geometry = features[0]["geometry"]
    assert geometry["type"] == "Polygon"
    rings = geometry["coordinates"]
    assert len(rings) == 1 + len(polygon_in_units.interiors)
    assert signed_area(rings[0]) > 0
    assert all(signed_area(r) < 0 for r in rings[1:])
    decoded_area = signed_area(rings[0]) + sum(signed_area(r) for r in rings[1:])
    tolerance = polygon_in_units.length * math.sqrt(2) / 2 + 2  # every vertex moves at most half a unit diagonal
    assert abs(decoded_area - polygon_in_units.area) <= tolerance
