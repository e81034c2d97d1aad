"""Types that describe a layer: its fields, geometry, CRS, access roles, style and zoom range.

This module declares; it performs no I/O and imports nothing else from the project.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class FieldType(StrEnum):
    """Storage type of an attribute, shared by every store backend."""

    INTEGER = "integer"
    REAL = "real"
    TEXT = "text"
    BOOLEAN = "boolean"
    DATE = "date"  # ISO 8601 calendar date, e.g. 2026-11-25
    DATETIME = "datetime"  # RFC 3339 UTC instant, e.g. 2026-11-25T08:00:00Z


class GeometryType(StrEnum):
    """Geometry type of a layer; ``NONE`` marks a non-spatial table."""

    POINT = "Point"
    LINESTRING = "LineString"
    POLYGON = "Polygon"
    MULTIPOLYGON = "MultiPolygon"
    NONE = "None"


class Role(StrEnum):
    """Access roles, from least to most privileged."""

    PUBLIC = "public"
    INSPECTOR = "inspector"
    OPERATOR = "operator"
    DEVICE = "device"
    ADMIN = "admin"


#: Roles that may read non-public fire-safety detail.
STAFF: frozenset[Role] = frozenset({Role.INSPECTOR, Role.OPERATOR, Role.ADMIN})
EVERYONE: frozenset[Role] = frozenset(Role)


@dataclass(frozen=True)
class Field:
    """One attribute of a layer.

    Names are snake_case and carry their unit where they have one (``height_m``).
    """

    name: str
    type: FieldType
    title_zh: str
    title_en: str
    required: bool = False
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    indexed: bool = False
    description: str = ""


@dataclass(frozen=True)
class ZoomRange:
    """Web-Mercator zoom levels at which a layer is drawn in tiles."""

    min_zoom: int = 0
    max_zoom: int = 22


RGBA = tuple[int, int, int, int]


@dataclass(frozen=True)
class Style:
    """Default look of a layer, read by tiles, MapLibre styles and pydeck renderers."""

    fill: RGBA = (120, 144, 156, 160)
    line: RGBA = (55, 71, 79, 255)
    line_width_px: float = 1.0
    point_radius_px: float = 4.0
    extrude_field: str | None = None
    color_field: str | None = None
    colors: tuple[tuple[str, RGBA], ...] = ()
    label_field: str | None = None


@dataclass(frozen=True)
class Layer:
    """A vector layer or a non-spatial table of the twin, declared once for every part of the system."""

    id: str
    title_zh: str
    title_en: str
    description: str
    geometry_type: GeometryType
    fields: tuple[Field, ...]
    key: str = "id"
    has_z: bool = False
    storage_crs: str = "EPSG:4326"
    read_roles: frozenset[Role] = EVERYONE
    write_roles: frozenset[Role] = frozenset({Role.ADMIN})
    style: Style = field(default_factory=Style)
    zoom: ZoomRange = field(default_factory=ZoomRange)
    temporal_field: str | None = None
    search_fields: tuple[str, ...] = ()
    #: A natural key that must stay unique besides the id (every store enforces it; a clash is a conflict).
    unique_key: tuple[str, ...] = ()

    @property
    def is_spatial(self) -> bool:
        """True for layers with a geometry column."""
        return self.geometry_type is not GeometryType.NONE

    @property
    def single_indexed_fields(self) -> tuple[Field, ...]:
        """The ``indexed`` fields that need an index of their own.

        A field that leads ``unique_key`` is served by the unique index already; a second index on it would only
        slow every write (for readings, one more random B-tree insert per row).
        """
        lead = self.unique_key[0] if self.unique_key else None
        return tuple(f for f in self.fields if f.indexed and f.name != lead)

    @property
    def field_names(self) -> tuple[str, ...]:
        """Names of the attribute fields, without the key and the geometry."""
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> Field:
        """The field called ``name``; raises ``KeyError`` if the layer has none."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"layer {self.id!r} has no field {name!r}")

    def has_field(self, name: str) -> bool:
        """True if the layer declares a field called ``name``."""
        return any(f.name == name for f in self.fields)

    def readable_by(self, role: Role) -> bool:
        """True if ``role`` may read this layer."""
        return role in self.read_roles or role is Role.ADMIN


@dataclass(frozen=True)
class RasterLayer:
    """A raster of the twin, stored as a Cloud-Optimized GeoTIFF beside the GeoPackage."""

    id: str
    title_zh: str
    title_en: str
    description: str
    filename: str
    storage_crs: str
    unit: str
    value_range: tuple[float, float]
    colormap: str
    resolution_m: float
    read_roles: frozenset[Role] = EVERYONE
