"""Import and export of layers (GeoPackage, GeoJSON, GeoParquet, Shapefile, CSV for tables), and copying whole twins."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from layers import LAYERS, FieldType, Layer
from twin.crs import WGS84, from_crs, resolve_crs, to_crs
from twin.errors import InvalidQuery, NotFound, ValidationFailed
from twin.store.base import Store
from twin.store.checks import known_layer

FORMATS = {
    ".gpkg": "gpkg",
    ".geojson": "geojson",
    ".json": "geojson",
    ".parquet": "parquet",
    ".geoparquet": "parquet",
    ".shp": "shp",
    ".csv": "csv",
}
_OGR_DRIVERS = {"gpkg": "GPKG", "geojson": "GeoJSON", "shp": "ESRI Shapefile"}
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def format_of(path: Path, fmt: str | None = None) -> str:
    """The file format named by ``fmt`` or by the path's suffix."""
    chosen = fmt or FORMATS.get(path.suffix.lower())
    if chosen not in set(FORMATS.values()):
        known = ", ".join(sorted(set(FORMATS.values())))
        raise InvalidQuery(f"{path}: unknown format {fmt or path.suffix!r}; use one of {known}")
    return chosen


def _restore_short_names(layer: Layer, frame: pd.DataFrame) -> pd.DataFrame:
    """Map Shapefile's 10-character field names back to catalogue names where the match is unambiguous."""
    renames = {}
    for column in frame.columns:
        if column == "geometry" or layer.has_field(column) or column == layer.key:
            continue
        matches = [f.name for f in layer.fields if len(f.name) > 10 and f.name[:10] == column]
        if len(matches) == 1:
            renames[column] = matches[0]
    return frame.rename(columns=renames)


def read_file(path: Path, layer: Layer, *, crs: str | None = None, source_layer: str | None = None) -> pd.DataFrame:
    """Read ``path`` into a frame in lon/lat, ready for validation against ``layer``."""
    if not path.exists():
        raise NotFound(f"{path}: no such file")
    fmt = format_of(path)
    try:
        if fmt == "parquet":
            frame: pd.DataFrame = gpd.read_parquet(path) if layer.is_spatial else pd.read_parquet(path)
        elif fmt == "csv":
            frame = pd.read_csv(path)
        else:
            frame = pyogrio.read_dataframe(path, layer=source_layer, read_geometry=layer.is_spatial)
    except (OSError, ValueError, pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as err:
        raise ValidationFailed(f"cannot read: {err}", source=str(path)) from None
    frame = _restore_short_names(layer, frame)
    if layer.key in frame.columns:
        frame = frame.set_index(layer.key)
    if isinstance(frame, gpd.GeoDataFrame) and layer.is_spatial:
        frame = _to_lonlat(frame, path, crs)
    return frame


def _to_lonlat(frame: gpd.GeoDataFrame, path: Path, crs: str | None) -> gpd.GeoDataFrame:
    if crs is not None:
        given = resolve_crs(crs)
        if frame.crs is not None and given.kind == "proj" and not given.crs.equals(frame.crs):
            stated = frame.crs.to_string()
            raise ValidationFailed(f"file says its CRS is {stated} but --crs says {crs}", source=str(path))
        if given.kind != "proj":  # GCJ-02 / BD-09 files carry no usable CRS of their own
            return from_crs(frame.set_crs(None, allow_override=True), given)
        if frame.crs is None:
            frame = frame.set_crs(given.crs)
    if frame.crs is None:
        raise ValidationFailed("has no CRS; give one with --crs (e.g. EPSG:4547 or GCJ-02)", source=str(path))
    return frame if frame.crs.equals(WGS84.crs) else frame.to_crs(WGS84.crs)


def import_file(
    store: Store,
    path: Path,
    layer_id: str,
    *,
    mode: str = "append",
    crs: str | None = None,
    source_layer: str | None = None,
    progress: Progress = _quiet,
) -> int:
    """Load a file into a layer in one transaction (``append`` or ``replace``); returns the number of rows.

    Every row is validated against the catalogue before anything is written, so bad input leaves the store as
    it was.
    """
    if mode not in ("append", "replace"):
        raise InvalidQuery(f"mode must be append or replace, not {mode!r}")
    layer = known_layer(layer_id)
    frame = read_file(path, layer, crs=crs, source_layer=source_layer)
    progress(f"read {len(frame):,} rows from {path.name}")
    if mode == "replace":
        return store.replace_layer(layer_id, _with_source(frame, path))
    return len(store.insert(layer_id, _with_source(frame, path)))


def _with_source(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    frame.attrs["source"] = str(path)
    return frame


def _for_file(layer: Layer, frame: pd.DataFrame, fmt: str) -> pd.DataFrame:
    """Columns in a form every format keeps: dates and datetimes as ISO text where the format lacks the type."""
    out = frame.reset_index()
    for f in layer.fields:
        if f.name not in out.columns:
            continue
        if f.type is FieldType.DATE:
            out[f.name] = out[f.name].map(lambda d: d.isoformat() if d is not None and not pd.isna(d) else None)
        elif f.type is FieldType.DATETIME and fmt in ("shp", "csv"):
            out[f.name] = out[f.name].map(
                lambda t: t.isoformat().replace("+00:00", "Z") if t is not None and not pd.isna(t) else None
            )
    return out


def export_layer(
    store: Store, layer_id: str, path: Path, *, fmt: str | None = None, crs: str = "EPSG:4326",
    progress: Progress = _quiet,
) -> int:
    """Write a whole layer to ``path`` in ``crs``; returns the number of rows written."""
    layer = known_layer(layer_id)
    fmt = format_of(path, fmt)
    if not layer.is_spatial and fmt in ("geojson", "shp"):
        raise InvalidQuery(f"{layer_id!r} is a table without geometry; export it as gpkg, parquet or csv")
    if layer.is_spatial and fmt == "csv":
        raise InvalidQuery(f"{layer_id!r} has geometries; export it as gpkg, geojson, parquet or shp")
    frame = store.query(layer_id)
    progress(f"read {len(frame):,} rows of {layer_id}")
    target = resolve_crs(crs)
    if isinstance(frame, gpd.GeoDataFrame) and target != WGS84:
        if target.kind != "proj" and fmt != "geojson":
            raise InvalidQuery(f"{crs} has no CRS definition a {fmt} file can record; export it as geojson")
        frame = to_crs(frame, target)
    out = _for_file(layer, frame, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        out.to_parquet(path)
    elif fmt == "csv":
        out.to_csv(path, index=False)
    else:
        if path.exists() and fmt != "gpkg":
            path.unlink()
        kwargs = {"encoding": "UTF-8"} if fmt == "shp" else {}
        with warnings.catch_warnings():
            # Shapefile cuts names to 10 characters (import maps them back); GCJ-02/BD-09 have no CRS definition.
            warnings.filterwarnings("ignore", message="Normalized/laundered field name")
            warnings.filterwarnings("ignore", message="'crs' was not provided")
            pyogrio.write_dataframe(out, path, layer=layer_id, driver=_OGR_DRIVERS[fmt], **kwargs)
    progress(f"wrote {len(out):,} rows to {path}")
    return len(out)


def copy_twin(source: Store, target: Store, layers: tuple[Layer, ...] = LAYERS) -> dict[str, int]:
    """Replace every layer of ``target`` with ``source``'s, ids kept (e.g. the sample GeoPackage into PostGIS).

    Each layer is one :meth:`Store.replace_layer` (one transaction; COPY on PostGIS). Returns rows per layer.
    """
    copied = {}
    for layer in layers:
        frame = source.query(layer.id)
        target.replace_layer(layer.id, frame)
        copied[layer.id] = len(frame)
    return copied
