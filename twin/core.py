"""The analyst's entry point: ``twin.open(...)`` gives a :class:`Twin` whose layers come out as GeoDataFrames."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from layers import LAYERS, RASTERS, Layer
from twin.crs import WGS84, resolve_crs, to_crs, transform_bbox, transform_geometry
from twin.store.base import BBox, FeatureQuery, Filter, Op, Store
from twin.store.checks import known_layer
from twin.store.opening import open_store


def _where(where: Mapping[str, Any] | None) -> tuple[Filter, ...]:
    """``{"use": "office", "height_m": (">", 100)}`` → filters; a list value means ``in``."""
    filters = []
    for name, value in (where or {}).items():
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            filters.append(Filter(name, Op(value[0]), value[1]))
        elif isinstance(value, list | set | frozenset):
            filters.append(Filter(name, Op.IN, list(value)))
        elif value is None:
            filters.append(Filter(name, Op.IS_NULL))
        else:
            filters.append(Filter(name, Op.EQ, value))
    return tuple(filters)


class Twin:
    """A digital twin opened for analysis, backed by a store (the embedded GeoPackage or PostGIS).

    Examples
    --------
    >>> import twin
    >>> t = twin.open()                      # the sample twin, built on first use
    >>> towers = t.layer("buildings", where={"height_m": (">", 100)})
    >>> len(towers)
    138
    >>> towers.crs.to_epsg()
    4326
    >>> metric = t.layer("buildings", crs="EPSG:4547", limit=5)
    >>> metric.crs.to_epsg()
    4547
    >>> t.close()
    """

    def __init__(self, store: Store):
        self.store = store

    @property
    def layers(self) -> tuple[Layer, ...]:
        """The catalogue's layers and tables."""
        return LAYERS

    @property
    def layer_ids(self) -> list[str]:
        """Ids of the layers and tables, in catalogue order."""
        return [layer.id for layer in LAYERS]

    def layer(
        self,
        layer_id: str,
        *,
        crs: str = "EPSG:4326",
        bbox: Sequence[float] | None = None,
        bbox_crs: str = "EPSG:4326",
        geometry: BaseGeometry | None = None,
        where: Mapping[str, Any] | None = None,
        limit: int | None = None,
    ) -> gpd.GeoDataFrame | pd.DataFrame:
        """Read a layer as a GeoDataFrame in ``crs`` (tables come back as DataFrames).

        ``bbox`` is ``(minx, miny, maxx, maxy)`` in ``bbox_crs`` (x = longitude/easting); ``geometry`` is a
        lon/lat shape to intersect; ``where`` maps field → value, ``(op, value)`` or a list of allowed values.
        """
        layer = known_layer(layer_id)
        query_bbox = None
        if bbox is not None:
            source = resolve_crs(bbox_crs)
            box = tuple(float(v) for v in bbox)
            if source != WGS84:
                box = transform_bbox(box, source, WGS84)
            query_bbox = BBox.from_sequence(box)
        frame = self.store.query(
            layer_id, FeatureQuery(bbox=query_bbox, geometry=geometry, filters=_where(where), limit=limit)
        )
        if layer.is_spatial and isinstance(frame, gpd.GeoDataFrame):
            target = resolve_crs(crs)
            return frame if target == WGS84 else to_crs(frame, target)
        return frame

    def feature(self, layer_id: str, feature_id: int) -> pd.Series:
        """One feature (or table row) as a Series."""
        return self.store.get(layer_id, feature_id).iloc[0]

    def nearest(
        self, layer_id: str, lon: float, lat: float, k: int = 5, where: Mapping[str, Any] | None = None
    ) -> gpd.GeoDataFrame:
        """The ``k`` features of ``layer_id`` nearest to a lon/lat point, with ``distance_m``."""
        return self.store.nearest(layer_id, Point(lon, lat), k, _where(where))

    def within(
        self, layer_id: str, geometry: BaseGeometry, distance_m: float, *, crs: str = "EPSG:4326",
        where: Mapping[str, Any] | None = None,
    ) -> gpd.GeoDataFrame:
        """Features within ``distance_m`` metres of ``geometry`` (given in ``crs``), with ``distance_m``."""
        source = resolve_crs(crs)
        shape = geometry if source == WGS84 else transform_geometry(geometry, source, WGS84)
        return self.store.within_distance(layer_id, shape, distance_m, _where(where))

    def by_grid(
        self, layer_id: str, *, level: str = "grid", where: Mapping[str, Any] | None = None, sums: Sequence[str] = ()
    ) -> pd.DataFrame:
        """Counts (and sums) of a layer's features per grid cell of ``level``, indexed by grid code."""
        return self.store.aggregate_by_grid(layer_id, _where(where), level, sums)

    def raster_path(self, raster_id: str) -> Path:
        """Path of a raster's Cloud-Optimized GeoTIFF (open it with ``rasterio.open``)."""
        return self.store.raster_path(raster_id)

    @property
    def raster_ids(self) -> list[str]:
        """Ids of the rasters."""
        return [r.id for r in RASTERS]

    def close(self) -> None:
        """Close the underlying store."""
        self.store.close()

    def __enter__(self) -> Twin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Twin({type(self.store).__name__})"


def open(location: str | Path | None = None) -> Twin:
    """Open a twin: a GeoPackage path, a PostgreSQL URL, or (with no argument) the sample twin.

    The sample is built on first use into ``sample_gis/`` (or ``~/.cache/beizhan-twin`` outside a checkout);
    ``TWIN_DATABASE_URL`` or ``TWIN_GPKG_PATH`` choose another store.
    """
    return Twin(open_store(location))
