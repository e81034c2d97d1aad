"""The one typed store interface that every backend (GeoPackage, PostGIS) implements.

Geometries cross this boundary in lon/lat (EPSG:4326, x = longitude); distances are in metres, measured in
EPSG:4547 (CGCS2000 3-degree Gauss-Krüger, CM 114E). Frames returned are indexed by the layer's key (``id``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from shapely import box
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry

from layers import LAYERS, Layer
from twin.cql2 import ast as cql2
from twin.errors import InvalidQuery

#: CRS of every geometry that crosses the store interface.
STORAGE_CRS = "EPSG:4326"
#: CRS in which the stores measure lengths, areas and distances.
METRIC_CRS = "EPSG:4547"


@dataclass(frozen=True)
class BBox:
    """An axis-aligned box in lon/lat; degenerate boxes (a line or a point) are allowed."""

    minx: float
    miny: float
    maxx: float
    maxy: float

    def __post_init__(self) -> None:
        values = (self.minx, self.miny, self.maxx, self.maxy)
        if not all(math.isfinite(v) for v in values):
            raise InvalidQuery(f"bbox values must be finite numbers, got {values}")
        if self.minx > self.maxx or self.miny > self.maxy:
            raise InvalidQuery(f"bbox must be minx,miny,maxx,maxy with min <= max, got {values}")

    @classmethod
    def from_sequence(cls, values: Sequence[float]) -> BBox:
        """Build from ``[minx, miny, maxx, maxy]``; a 6-value 3D box drops its z values."""
        if len(values) == 6:
            values = (values[0], values[1], values[3], values[4])
        if len(values) != 4:
            raise InvalidQuery(f"bbox needs 4 (or 6) numbers, got {len(values)}")
        return cls(*(float(v) for v in values))

    def as_tuple(self) -> tuple[float, float, float, float]:
        """``(minx, miny, maxx, maxy)``."""
        return (self.minx, self.miny, self.maxx, self.maxy)

    def to_polygon(self) -> BaseGeometry:
        """The box as a shapely geometry (a polygon, or a line/point when degenerate).

        A zero-width box is returned as the line or point it is: GEOS treats a collapsed polygon as invalid and
        its predicates then miss geometries that cross it.
        """
        minx, miny, maxx, maxy = self.as_tuple()
        if minx == maxx and miny == maxy:
            return Point(minx, miny)
        if minx == maxx or miny == maxy:
            return LineString([(minx, miny), (maxx, maxy)])
        return box(minx, miny, maxx, maxy)


class Predicate(StrEnum):
    """Spatial predicate between a stored geometry and the query geometry."""

    INTERSECTS = "intersects"
    WITHIN = "within"  # stored geometry within the query geometry
    CONTAINS = "contains"  # stored geometry contains the query geometry


class Op(StrEnum):
    """Attribute comparison operators that both stores evaluate identically."""

    EQ = "="
    NE = "<>"
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IN = "in"
    LIKE = "like"  # SQL LIKE with % and _ wildcards, case-sensitive
    IS_NULL = "is_null"
    NOT_NULL = "not_null"


@dataclass(frozen=True)
class Filter:
    """``field op value``; ``value`` is a sequence for ``IN`` and ignored for the null tests."""

    field: str
    op: Op
    value: Any = None


@dataclass(frozen=True)
class Sort:
    """One sort key."""

    field: str
    descending: bool = False


@dataclass(frozen=True)
class TimeRange:
    """A closed interval on the layer's temporal field; an open end is ``None``. Datetimes are timezone-aware."""

    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        for value in (self.start, self.end):
            if value is not None and value.tzinfo is None:
                raise InvalidQuery("datetimes must carry a timezone (use Z for UTC)")
        if self.start and self.end and self.start > self.end:
            raise InvalidQuery("time interval start is after its end")


#: The largest ``limit`` or ``offset`` a store takes: both stores' SQL integers are signed 64-bit.
MAX_ROWS = 2**63 - 1


@dataclass(frozen=True)
class FeatureQuery:
    """What to read from a layer: spatial and attribute filters, order, paging and the properties to return."""

    bbox: BBox | None = None
    geometry: BaseGeometry | None = None
    predicate: Predicate = Predicate.INTERSECTS
    filters: tuple[Filter, ...] = ()
    time: TimeRange | None = None
    sort: tuple[Sort, ...] = ()
    limit: int | None = None
    offset: int = 0
    properties: tuple[str, ...] | None = None
    #: A CQL2 filter (``twin.cql2``), ANDed with everything above; geometry literals in lon/lat.
    expr: cql2.Expr | None = None

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 0:
            raise InvalidQuery("limit must not be negative")
        if self.offset < 0:
            raise InvalidQuery("offset must not be negative")
        for name, value in (("limit", self.limit), ("offset", self.offset)):
            if value is not None and value > MAX_ROWS:
                raise InvalidQuery(f"{name} must be at most {MAX_ROWS}")


@dataclass(frozen=True)
class TileRequest:
    """A vector tile of one or more spatial layers in the WebMercatorQuad tile matrix set."""

    layer_ids: tuple[str, ...]
    z: int
    x: int
    y: int
    extent: int = 4096
    buffer: int = 64
    max_features: int = 20_000

    def __post_init__(self) -> None:
        if not 0 <= self.z <= 24:
            raise InvalidQuery(f"zoom {self.z} is outside 0..24")
        size = 1 << self.z
        if not (0 <= self.x < size and 0 <= self.y < size):
            raise InvalidQuery(f"tile {self.z}/{self.x}/{self.y} is outside the tile matrix (0..{size - 1})")
        if not self.layer_ids:
            raise InvalidQuery("a tile needs at least one layer")
        if self.extent < 256 or self.buffer < 0 or self.max_features < 1:
            raise InvalidQuery("tile extent must be >= 256, buffer >= 0 and max_features >= 1")


class Store(ABC):
    """A twin's storage engine. Every method is safe to call from several threads."""

    layers: tuple[Layer, ...] = LAYERS

    @abstractmethod
    def count(self, layer_id: str, query: FeatureQuery | None = None, *, cap: int | None = None) -> int:
        """Number of features matching ``query`` (its limit and offset are ignored).

        With ``cap``, counting stops there: the answer is ``min(matches, cap)``, at the cost of reading at most
        ``cap`` rows — how a caller asks "exactly, if there are no more than this many".
        """

    @abstractmethod
    def query(self, layer_id: str, query: FeatureQuery | None = None) -> gpd.GeoDataFrame | pd.DataFrame:
        """Features matching ``query``: a GeoDataFrame (EPSG:4326) for spatial layers, a DataFrame for tables.

        Rows come in the query's sort order, then by key; without a sort, by key.
        """

    @abstractmethod
    def get(self, layer_id: str, feature_id: int) -> gpd.GeoDataFrame | pd.DataFrame:
        """The one-row frame for ``feature_id``; raises ``NotFound`` if there is none."""

    @abstractmethod
    def nearest(
        self, layer_id: str, point: Point, k: int = 5, filters: Sequence[Filter] = ()
    ) -> gpd.GeoDataFrame:
        """The ``k`` features nearest to ``point`` (lon/lat), nearest first, with a ``distance_m`` column."""

    @abstractmethod
    def within_distance(
        self, layer_id: str, geometry: BaseGeometry, distance_m: float, filters: Sequence[Filter] = ()
    ) -> gpd.GeoDataFrame:
        """Features within ``distance_m`` metres of ``geometry`` (lon/lat), nearest first, with ``distance_m``."""

    @abstractmethod
    def aggregate_by_grid(
        self,
        layer_id: str,
        filters: Sequence[Filter] = (),
        grid_level: str = "grid",
        sums: Sequence[str] = (),
    ) -> pd.DataFrame:
        """Counts (and sums of numeric ``sums`` fields) per grid cell of ``grid_level``, indexed by grid code.

        A feature belongs to the cell that contains its representative point; a table row with a ``grid_code``
        belongs to that cell (or to its ancestor at ``grid_level``). Cells with no features are included with 0.
        """

    @abstractmethod
    def extent(self, layer_id: str) -> BBox | None:
        """The bounding box of a spatial layer, or ``None`` when it is empty."""

    @abstractmethod
    def time_extent(self, layer_id: str) -> tuple[datetime | None, datetime | None]:
        """Earliest and latest value of the layer's temporal field, ``(None, None)`` when it has none."""

    @abstractmethod
    def insert(self, layer_id: str, frame: gpd.GeoDataFrame | pd.DataFrame) -> list[int]:
        """Validate and insert rows in one transaction; returns their ids. Nothing is written if any row fails."""

    @abstractmethod
    def append(self, layer_id: str, frame: gpd.GeoDataFrame | pd.DataFrame) -> int:
        """Validate and insert rows in one transaction, skipping rows whose unique key is already stored.

        The unique key is the layer's ``unique_key`` (readings: sensor and timestamp) and the id where the frame
        gives ids. This is the idempotent write for data delivered more than once (MQTT QoS 1, gateway retries).
        Returns how many rows were new. Invalid rows fail the whole call, as in :meth:`insert`.
        """

    @abstractmethod
    def update(self, layer_id: str, feature_id: int, changes: Mapping[str, Any]) -> None:
        """Validate and apply ``changes`` (field → value, ``geometry`` → shapely in lon/lat) to one feature."""

    @abstractmethod
    def update_many(self, layer_id: str, frame: pd.DataFrame) -> int:
        """Validate and apply one row of changes per feature, all in one transaction; returns how many were updated.

        ``frame`` is indexed by feature id (index named after the layer key, or a key column) and holds only the
        fields to set; a null clears an optional field. Geometries are not changed here (use :meth:`update`).
        Ids that are not stored are skipped. Nothing is written if any row fails validation.
        """

    @abstractmethod
    def delete(self, layer_id: str, ids: Sequence[int]) -> int:
        """Delete features by id in one transaction; returns how many were deleted."""

    @abstractmethod
    def replace_layer(self, layer_id: str, frame: gpd.GeoDataFrame | pd.DataFrame) -> int:
        """Replace a layer's whole content with ``frame`` in one transaction (bulk load); returns the row count."""

    @abstractmethod
    def tile(self, request: TileRequest) -> bytes:
        """A Mapbox Vector Tile (WebMercatorQuad) with one MVT layer per requested layer, named by layer id.

        Feature ids are the layer keys; properties are the catalogue fields (dates and datetimes as ISO text).
        Layers outside their zoom range are left out; each layer keeps at most ``max_features`` features.
        An empty tile is ``b""``.
        """

    @abstractmethod
    def layer_version(self, layer_id: str) -> int:
        """A number that grows whenever the layer's content changes (caches of tiles and responses key on it).

        It is shared by every process using the same data, so a write through one API worker invalidates the
        others' caches.
        """

    @contextmanager
    def tile_reader(self) -> Iterator[TileReader]:
        """A reader of layer versions and tiles; a store may serve both from one connection (PostGIS does).

        Read the versions first, then the tile: the tile is then at least as new as the versions it is keyed on.
        """
        yield TileReader(self)

    @abstractmethod
    def raster_path(self, raster_id: str) -> Path:
        """Path of the raster's Cloud-Optimized GeoTIFF; ``NotFound`` for an unknown or missing raster."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and files."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TileReader:
    """Versions and tiles read through the store's ordinary methods (the default :meth:`Store.tile_reader`)."""

    def __init__(self, store: Store):
        self.store = store

    def versions(self, layer_ids: Sequence[str]) -> tuple[int, ...]:
        """The layers' change counters (:meth:`Store.layer_version`), in order."""
        return tuple(self.store.layer_version(layer_id) for layer_id in layer_ids)

    def tile(self, request: TileRequest) -> bytes:
        """The tile (:meth:`Store.tile`)."""
        return self.store.tile(request)


def empty_frame(layer: Layer, extra: Mapping[str, str] | None = None) -> gpd.GeoDataFrame | pd.DataFrame:
    """An empty frame with the layer's columns (and ``extra`` name → dtype), indexed by the key."""
    columns = {f.name: pd.Series(dtype="object") for f in layer.fields}
    for name, dtype in (extra or {}).items():
        columns[name] = pd.Series(dtype=dtype)
    frame = pd.DataFrame(columns, index=pd.Index([], dtype="int64", name=layer.key))
    if layer.is_spatial:
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=STORAGE_CRS, index=frame.index), crs=STORAGE_CRS)
    return frame


ChangeSet = Mapping[str, Any]
