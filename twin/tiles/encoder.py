"""A vectorised Mapbox Vector Tile (MVT 2.1) encoder over arrays of shapely geometries in Web Mercator.

Each layer goes through the same array-at-a-time steps, grouped by geometry dimension (points, lines, polygons):
drop what lies outside the tile plus its buffer (by bounding box), clip what crosses it (``shapely.clip_by_rect``),
simplify to about one tile unit (Douglas–Peucker, topology preserving), quantize to the integer tile grid with the y
axis pointing down, remove repeated points, drop degenerate parts (lines of fewer than 2 points, rings of fewer than 3
distinct points or no area), orient exterior rings clockwise on screen (positive area in tile coordinates) and holes
counter-clockwise, and turn every part into MoveTo/LineTo/ClosePath commands with zigzag deltas. All of it runs on
numpy arrays of coordinates; there is no Python loop over features or coordinates. Like most MVT encoders, it does
not repair polygons that snapping to the grid makes self-touching. The protocol-buffer writing, keys, values and
tags included, is in ``twin.tiles.protobuf``.

>>> import shapely
>>> layer = TileLayer("sensors", np.array([shapely.Point(12_693_000, 2_585_000)]), np.array([7], dtype=np.uint64),
...                   {"state": np.array(["online"], dtype=object)})
>>> tile = encode_tile([layer], tile_bounds(15, 26762, 14270))
>>> len(tile) > 0
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import shapely

from twin.tiles import protobuf as pb
from twin.tiles.protobuf import I64, U64, Column

Bounds = tuple[float, float, float, float]
F64 = npt.NDArray[np.float64]

_HALF_WORLD = math.pi * 6378137.0  # half the width of the Web Mercator square, in metres
_POINT, _LINE, _POLYGON = 1, 2, 3  # MVT geometry types
_MOVE_TO, _LINE_TO, _CLOSE_PATH = 1, 2, 15  # command ids; ClosePath with its count of 1: (1 << 3) | 7


@dataclass(frozen=True, eq=False)
class TileLayer:
    """One layer of a tile: geometries in EPSG:3857 metres, optional feature ids and property columns.

    ``geometries`` is a 1-D array (or sequence, or GeoSeries) of shapely geometries, clipped to the tile or not;
    ``None`` and empty geometries are skipped. ``ids`` are non-negative integers written as the features' ``id``.
    ``properties`` maps a column name to one value per geometry: str, int, float or bool (numpy arrays, pandas
    Series including nullable and string dtypes); missing values (None, NaN, ``pd.NA``) are left out of the
    feature, other types are written as their ``str``.
    """

    name: str
    geometries: npt.NDArray[np.object_]
    ids: npt.NDArray[np.integer] | None = None
    properties: Mapping[str, Column] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a tile layer needs a name")
        geometries = np.asarray(self.geometries, dtype=object)
        if geometries.ndim != 1:
            raise ValueError(f"layer {self.name!r}: geometries must be a 1-D array")
        object.__setattr__(self, "geometries", geometries)
        n = len(geometries)
        if self.ids is not None:
            ids = np.asarray(self.ids)
            if ids.shape != (n,) or ids.dtype.kind not in "iu":
                raise ValueError(f"layer {self.name!r}: ids must be {n} integers")
            if ids.dtype.kind == "i" and (ids < 0).any():
                raise ValueError(f"layer {self.name!r}: feature ids must not be negative")
            object.__setattr__(self, "ids", ids.astype(np.uint64))
        for key, column in self.properties.items():
            if len(column) != n:
                raise ValueError(f"layer {self.name!r}: property {key!r} has {len(column)} values for {n} features")


@dataclass(frozen=True)
class LayerStats:
    """What happened to one layer's features: written, skipped as empty or degenerate, dropped by the cap."""

    name: str
    features: int
    empty: int
    capped: int


@dataclass(frozen=True)
class EncodedTile:
    """An encoded tile (``data``, empty when no layer has a feature) and per-layer statistics."""

    data: bytes
    layers: tuple[LayerStats, ...]

    @property
    def capped(self) -> int:
        """Features dropped by ``max_features`` over all layers."""
        return sum(layer.capped for layer in self.layers)


def tile_bounds(z: int, x: int, y: int) -> Bounds:
    """``(minx, miny, maxx, maxy)`` in EPSG:3857 metres of tile ``z/x/y`` of the WebMercatorQuad matrix set."""
    if not (z >= 0 and 0 <= x < 2**z and 0 <= y < 2**z):
        raise ValueError(f"no tile {z}/{x}/{y} in WebMercatorQuad")
    size = 2 * _HALF_WORLD / 2**z
    minx, maxy = -_HALF_WORLD + x * size, _HALF_WORLD - y * size
    return minx, maxy - size, minx + size, maxy


def encode_tile(
    layers: Sequence[TileLayer],
    bounds: Bounds,
    *,
    extent: int = 4096,
    buffer: int = 64,
    simplify: bool | float = True,
    max_features: int | None = None,
) -> bytes:
    """Encode layers into one Mapbox Vector Tile covering ``bounds`` (EPSG:3857); see ``encode_tile_with_stats``."""
    return encode_tile_with_stats(
        layers, bounds, extent=extent, buffer=buffer, simplify=simplify, max_features=max_features).data


def encode_tile_with_stats(
    layers: Sequence[TileLayer],
    bounds: Bounds,
    *,
    extent: int = 4096,
    buffer: int = 64,
    simplify: bool | float = True,
    max_features: int | None = None,
) -> EncodedTile:
    """Encode layers into one Mapbox Vector Tile, and report what was written and dropped.

    ``extent`` is the size of the tile's integer grid and ``buffer`` the margin kept around the tile, in grid units.
    ``simplify`` is the Douglas–Peucker tolerance in grid units (``True``: one unit; ``False`` or 0: none), applied
    to lines and polygons before quantizing, so that low zooms carry fewer vertices. ``max_features`` caps each
    layer: its first features that survive clipping and quantization are kept, the rest counted in
    ``LayerStats.capped``. Layers without features are left out.
    """
    if extent <= 0 or buffer < 0:
        raise ValueError("extent must be positive and buffer not negative")
    if max_features is not None and max_features < 0:
        raise ValueError("max_features must not be negative")
    names = [layer.name for layer in layers]
    if len(set(names)) != len(names):
        raise ValueError(f"layer names must be unique in a tile: {names}")
    tolerance = 1.0 if simplify is True else float(simplify)
    chunks, stats = [], []
    for layer in layers:
        data, layer_stats = _encode_layer(layer, bounds, extent, buffer, tolerance, max_features)
        chunks.append(data)
        stats.append(layer_stats)
    return EncodedTile(b"".join(chunks), tuple(stats))


@dataclass(frozen=True)
class _Grid:
    """The tile's integer grid: origin at the top-left corner, size of a unit in metres, and the clip limits."""

    minx: float
    maxy: float
    unit: float  # along x; ``unit_y`` differs only for bounds that are not square
    unit_y: float
    low: int
    high: int

    @classmethod
    def of(cls, bounds: Bounds, extent: int, buffer: int) -> _Grid:
        minx, miny, maxx, maxy = bounds
        return cls(minx, maxy, (maxx - minx) / extent, (maxy - miny) / extent, -buffer, extent + buffer)

    @property
    def rect(self) -> Bounds:
        """The tile plus its buffer, in metres."""
        return (self.minx + self.low * self.unit, self.maxy - self.high * self.unit_y,
                self.minx + self.high * self.unit, self.maxy - self.low * self.unit_y)

    def quantize(self, coords: F64) -> tuple[I64, I64]:
        """Tile grid coordinates, y down, of EPSG:3857 coordinates."""
        x = np.rint((coords[:, 0] - self.minx) / self.unit).astype(np.int64)
        y = np.rint((self.maxy - coords[:, 1]) / self.unit_y).astype(np.int64)
        return x, y


@dataclass(frozen=True)
class _Geometry:
    """Encoded geometries of a layer's surviving features: their rows, MVT types and command integers."""

    rows: I64
    types: I64
    counts: I64
    commands: U64

    def head(self, n: int) -> _Geometry:
        """The first ``n`` features."""
        return _Geometry(self.rows[:n], self.types[:n], self.counts[:n], self.commands[: int(self.counts[:n].sum())])


def _encode_layer(
    layer: TileLayer, bounds: Bounds, extent: int, buffer: int, tolerance: float, max_features: int | None
) -> tuple[bytes, LayerStats]:
    geometry = _encode_geometries(layer.geometries, _Grid.of(bounds, extent, buffer), tolerance)
    surviving = len(geometry.rows)
    if max_features is not None and surviving > max_features:
        geometry = geometry.head(max_features)
    written = len(geometry.rows)
    stats = LayerStats(layer.name, written, len(layer.geometries) - surviving, surviving - written)
    if not len(geometry.rows):
        return b"", stats
    keys, values, tags, tag_counts = pb.encode_properties(layer.properties, geometry.rows)
    ids = None if layer.ids is None else layer.ids[geometry.rows].astype(np.uint64)
    features = pb.encode_features(geometry.types, geometry.commands, geometry.counts, tags, tag_counts, ids)
    return pb.encode_layer(layer.name, features, keys, values, extent), stats


def _encode_geometries(geoms: npt.NDArray[np.object_], grid: _Grid, tolerance: float) -> _Geometry:
    rect = grid.rect
    box = shapely.bounds(geoms)
    touches = (box[:, 0] <= rect[2]) & (box[:, 2] >= rect[0]) & (box[:, 1] <= rect[3]) & (box[:, 3] >= rect[1])
    dims = shapely.get_dimensions(geoms)
    pieces = []
    rows = np.flatnonzero(touches & (dims == 0))
    if len(rows):
        pieces.append(_points(geoms[rows], rows, grid))
    for dim, encode in ((1, _lines), (2, _polygons)):
        rows = np.flatnonzero(touches & (dims == dim))
        if not len(rows):
            continue
        part = geoms[rows]
        crossing = ~((box[rows, 0] >= rect[0]) & (box[rows, 2] <= rect[2])
                     & (box[rows, 1] >= rect[1]) & (box[rows, 3] <= rect[3]))
        if crossing.any():
            part[crossing] = shapely.clip_by_rect(part[crossing], *rect)
        if tolerance > 0:
            simplifiable = _simplifiable(part, tolerance * grid.unit, 2 if dim == 1 else 5)
            part[simplifiable] = shapely.simplify(part[simplifiable], tolerance * grid.unit, preserve_topology=True)
        pieces.append(encode(part, rows, grid))
    return _merge(pieces)


def _points(geoms: npt.NDArray[np.object_], rows: I64, grid: _Grid) -> _Geometry:
    coords, index = shapely.get_coordinates(geoms, return_index=True)
    x, y = grid.quantize(coords)
    inside = (x >= grid.low) & (x <= grid.high) & (y >= grid.low) & (y <= grid.high)
    x, y, index = x[inside], y[inside], index[inside]
    return _commands(_POINT, x, y, _run_ids(index), rows[index[_starts(index)]])


def _simplifiable(geoms: npt.NDArray[np.object_], tolerance: float, minimum: int) -> npt.NDArray[np.bool_]:
    """Geometries of more than ``minimum`` coordinates that simplification is likely to change.

    Douglas–Peucker drops a vertex only when it lies within the tolerance of a chord; this cheap pre-filter keeps the
    geometries in which some vertex lies within the tolerance of the chord between its neighbours, or of its
    predecessor, and spares the others (most building footprints at high zoom) the GEOS call.
    """
    candidates = np.flatnonzero(shapely.get_num_coordinates(geoms) > minimum)
    coords, index = shapely.get_coordinates(geoms[candidates], return_index=True)
    before, vertex, after = coords[:-2], coords[1:-1], coords[2:]
    chord, offset = after - before, vertex - before
    cross = np.abs(chord[:, 0] * offset[:, 1] - chord[:, 1] * offset[:, 0])
    near = (cross <= tolerance * np.hypot(chord[:, 0], chord[:, 1])) | (np.hypot(*offset.T) <= tolerance)
    result = np.zeros(len(geoms), dtype=bool)
    result[candidates[index[1:-1][near & (index[:-2] == index[2:])]]] = True
    return result


def _lines(geoms: npt.NDArray[np.object_], rows: I64, grid: _Grid) -> _Geometry:
    parts, part_row = _parts(geoms, (1, 2))  # LineString, LinearRing
    coords, part = shapely.get_coordinates(parts, return_index=True)
    x, y = grid.quantize(coords)
    keep = _starts(part) | (x != np.roll(x, 1)) | (y != np.roll(y, 1))
    x, y, part = x[keep], y[keep], part[keep]
    long_enough = np.bincount(part, minlength=len(parts)) >= 2
    x, y, part = x[long_enough[part]], y[long_enough[part]], part[long_enough[part]]
    return _commands(_LINE, x, y, _run_ids(part), rows[part_row[long_enough]])


def _polygons(geoms: npt.NDArray[np.object_], rows: I64, grid: _Grid) -> _Geometry:
    parts, part_row = _parts(geoms, (3,))
    coords, ring, ring_part = _rings(parts)
    x, y = grid.quantize(coords)
    # Drop the closing point of each ring and repeated points, then a last point that came back to the first.
    first = _starts(ring)
    keep = ~np.roll(first, -1) & (first | (x != np.roll(x, 1)) | (y != np.roll(y, 1)))
    x, y, ring = x[keep], y[keep], ring[keep]
    first = _starts(ring)
    head = _heads(first)
    keep = ~(np.roll(first, -1) & ~first & (x == x[head]) & (y == y[head]))
    x, y, ring = x[keep], y[keep], ring[keep]

    # Twice the signed area of each ring (surveyor's formula in tile coordinates, y down).
    first = _starts(ring)
    head = _heads(first)
    following = np.where(np.roll(first, -1), head, np.arange(1, len(ring) + 1) % max(len(ring), 1))
    area = np.bincount(ring, x * y[following] - x[following] * y, minlength=len(ring_part))
    count = np.bincount(ring, minlength=len(ring_part))
    exterior = _starts(ring_part)
    ring_ok = (count >= 3) & (area != 0)
    part_ok = np.zeros(len(parts), dtype=bool)
    part_ok[ring_part[exterior]] = ring_ok[exterior]
    ring_ok &= part_ok[ring_part]

    keep = ring_ok[ring]
    x, y, ring = x[keep], y[keep], ring[keep]
    reverse = (exterior & (area < 0)) | (~exterior & (area > 0))
    if reverse[ring].any():
        first = _starts(ring)
        head = _heads(first)
        local = np.arange(len(ring)) - head
        source = np.where(reverse[ring], head + count[ring] - 1 - local, head + local)
        x, y = x[source], y[source]
    return _commands(_POLYGON, x, y, _run_ids(ring), rows[part_row[ring_part[ring_ok]]])


def _parts(geoms: npt.NDArray[np.object_], types: tuple[int, ...]) -> tuple[npt.NDArray[np.object_], I64]:
    """Single parts of the given shapely type ids, and the index of the geometry each comes from."""
    if np.isin(shapely.get_type_id(geoms), types).all():
        return geoms, np.arange(len(geoms))
    parts, index = shapely.get_parts(geoms, return_index=True)
    wanted = np.isin(shapely.get_type_id(parts), types)
    return parts[wanted], index[wanted]


def _rings(polygons: npt.NDArray[np.object_]) -> tuple[npt.NDArray[np.float64], I64, I64]:
    """Coordinates of polygons' rings (exterior first), the ring of each coordinate and the polygon of each ring."""
    holes = shapely.get_num_interior_rings(polygons)
    if not holes.any():  # a polygon's coordinates are its exterior ring's
        coords, ring = shapely.get_coordinates(polygons, return_index=True)
        return coords, ring, np.arange(len(polygons))
    ring_counts = 1 + holes
    first = np.cumsum(ring_counts) - ring_counts
    rings = np.empty(int(ring_counts.sum()), dtype=object)
    rings[first[holes == 0]] = polygons[holes == 0]
    rings[pb.segment_positions(first[holes > 0], ring_counts[holes > 0])] = shapely.get_rings(polygons[holes > 0])
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    return coords, ring, np.repeat(np.arange(len(polygons)), ring_counts)


def _commands(kind: int, x: I64, y: I64, path: I64, path_row: I64) -> _Geometry:
    """Command integers for vertices grouped in paths (sorted), each path belonging to a feature row (sorted).

    A point feature is one path: MoveTo(n) and n coordinate pairs. A line or ring is MoveTo(1), a pair,
    LineTo(n - 1) and n - 1 pairs, and for a ring ClosePath. Pairs are zigzag deltas from the previous vertex of the
    same feature (the first from the origin).
    """
    path_first = _starts(path)
    counts = np.bincount(path, minlength=len(path_row))
    lengths = 2 * counts + (1 if kind == _POINT else 2 if kind == _LINE else 3)
    start = np.cumsum(lengths) - lengths
    commands = np.empty(int(lengths.sum()), dtype=np.uint64)

    row = path_row[path]
    feature_first = _starts(row)
    dx, dy = np.diff(x, prepend=0), np.diff(y, prepend=0)
    dx[feature_first], dy[feature_first] = x[feature_first], y[feature_first]
    local = np.arange(len(path)) - _heads(path_first)
    at = start[path] + 1 + 2 * local + (0 if kind == _POINT else (local > 0))
    commands[at], commands[at + 1] = pb.zigzag(dx), pb.zigzag(dy)
    if kind == _POINT:
        commands[start] = (counts << 3) | _MOVE_TO
    else:
        commands[start], commands[start + 3] = (1 << 3) | _MOVE_TO, ((counts - 1) << 3) | _LINE_TO
    if kind == _POLYGON:
        commands[start + lengths - 1] = _CLOSE_PATH

    first_paths = np.flatnonzero(_starts(path_row))
    per_feature = np.add.reduceat(lengths, first_paths) if len(first_paths) else lengths[:0]
    rows = path_row[first_paths]
    return _Geometry(rows, np.full(len(rows), kind, dtype=np.int64), per_feature, commands)


def _merge(pieces: list[_Geometry]) -> _Geometry:
    """The geometries of several kinds merged in feature-row order."""
    if not pieces:
        return _Geometry(*(np.zeros(0, dtype=np.int64),) * 3, np.zeros(0, dtype=np.uint64))
    if len(pieces) == 1:
        return pieces[0]
    rows = np.concatenate([p.rows for p in pieces])
    counts = np.concatenate([p.counts for p in pieces])
    order = np.argsort(rows, kind="stable")
    starts = np.cumsum(counts) - counts
    commands = np.concatenate([p.commands for p in pieces])[pb.segment_positions(starts[order], counts[order])]
    return _Geometry(rows[order], np.concatenate([p.types for p in pieces])[order], counts[order], commands)


def _starts(ids: I64) -> npt.NDArray[np.bool_]:
    """True where a run of equal consecutive ids starts."""
    return np.concatenate(([True], ids[1:] != ids[:-1])) if len(ids) else np.zeros(0, dtype=bool)


def _heads(starts: npt.NDArray[np.bool_]) -> I64:
    """For each element, the index of the element that starts its run."""
    return np.maximum.accumulate(np.where(starts, np.arange(len(starts)), 0))


def _run_ids(ids: I64) -> I64:
    """Runs of equal consecutive ids, numbered from 0."""
    return np.cumsum(_starts(ids)) - 1
