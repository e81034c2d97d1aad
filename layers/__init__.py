"""The layer catalogue of the North Station twin: what each layer is, declared once."""

from layers.catalogue import LAYERS, RASTERS, get_layer, get_raster, spatial_layers
from layers.model import (
    EVERYONE,
    STAFF,
    Field,
    FieldType,
    GeometryType,
    Layer,
    RasterLayer,
    Role,
    Style,
    ZoomRange,
)

__all__ = [
    "EVERYONE",
    "LAYERS",
    "RASTERS",
    "STAFF",
    "Field",
    "FieldType",
    "GeometryType",
    "Layer",
    "RasterLayer",
    "Role",
    "Style",
    "ZoomRange",
    "get_layer",
    "get_raster",
    "spatial_layers",
]
