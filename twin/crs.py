"""Coordinate reference systems of the twin: resolving CRS references and transforming coordinates and geometries.

Everything here works in x = longitude/easting, y = latitude/northing order (pyproj ``always_xy=True``), whatever
the authority axis order of the CRS; only ``swap_axes`` changes the order, for API input and output in authority
order (``CrsRef.axis_swapped``). Besides the CRSs PROJ knows, two Chinese basemap systems are supported: GCJ-02
(Amap, Tencent) and BD-09 (Baidu), which have no EPSG code; transforms to or from them go through WGS 84 and
``twin.chinacrs``. A Shenzhen local grid is given as a user-supplied PROJ string or WKT.

>>> ref = resolve_crs("EPSG:4547")
>>> ref.uri, ref.axis_swapped
('http://www.opengis.net/def/crs/EPSG/0/4547', True)
>>> x, y = transform_xy(114.0239, 22.6119, WGS84, ref)
>>> round(float(x)), round(float(y))
(502457, 2501559)
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal, TypeAlias

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry

from twin import chinacrs
from twin.errors import InvalidQuery

CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GCJ02_URI = "urn:x-beizhan:def:crs:GCJ-02"
BD09_URI = "urn:x-beizhan:def:crs:BD-09"
_EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{code}"

Kind = Literal["proj", "gcj02", "bd09"]
Array = npt.NDArray[np.float64]
Geoms: TypeAlias = BaseGeometry | Sequence[BaseGeometry | None] | npt.NDArray[np.object_] | gpd.GeoSeries


@dataclass(frozen=True)
class CrsRef:
    """A resolved CRS: its canonical URI, a display name, its kind and the pyproj ``CRS`` behind it.

    ``kind`` is ``"proj"`` for every CRS pyproj handles, ``"gcj02"`` or ``"bd09"`` for the Chinese basemap
    systems; for those two ``crs`` is their geodetic base, EPSG:4326, although their coordinates are lon/lat and
    offset from it. ``axis_swapped`` is True when the authority axis order puts latitude/northing first.
    Equality and hashing use the URI, name, kind and axis order, not the pyproj object.
    """

    uri: str
    name: str
    kind: Kind
    crs: CRS = field(compare=False, repr=False)
    axis_swapped: bool

    def __str__(self) -> str:
        return self.uri


_EPSG_FORMS = (
    re.compile(r"EPSG:(\d+)", re.IGNORECASE),
    re.compile(r"https?://www\.opengis\.net/def/crs/EPSG/0/(\d+)", re.IGNORECASE),
    re.compile(r"urn:ogc:def:crs:EPSG:[\d.]*:(\d+)", re.IGNORECASE),
)
_CRS84_FORMS = {"CRS84", "OGC:CRS84", CRS84_URI.upper(), CRS84_URI.upper().replace("HTTP:", "HTTPS:")}
_GCJ02_FORMS = {"GCJ-02", "GCJ02", GCJ02_URI.upper()}
_BD09_FORMS = {"BD-09", "BD09", BD09_URI.upper()}
_WKT_START = re.compile(r"[A-Z_]+\s*\[", re.IGNORECASE)


@lru_cache(maxsize=256)
def resolve_crs(spec: str) -> CrsRef:
    """Resolve a CRS reference; raise ``InvalidQuery`` for one that is unknown or not a 2D horizontal CRS.

    Accepted: ``CRS84``, ``OGC:CRS84`` or the OGC CRS84 URI; ``EPSG:<code>``, its OGC URI or URN, for any code
    PROJ knows; any of these as a safe CURIE (``[EPSG:4547]``); the GCJ-02 and BD-09 URIs or the aliases
    ``GCJ-02``, ``GCJ02``, ``BD-09``, ``BD09`` (case-insensitive); a PROJ string (``+proj=...``), WKT or PROJJSON.
    Results are cached, so resolving on every request is cheap.
    """
    if not isinstance(spec, str):
        raise InvalidQuery(f"a CRS must be given as a string, got {type(spec).__name__}")
    text = spec.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1].strip()
    upper = text.upper()
    if upper in _GCJ02_FORMS:
        return CrsRef(GCJ02_URI, "GCJ-02 (Amap/Tencent, lon/lat; WGS 84 based)", "gcj02", CRS.from_epsg(4326), False)
    if upper in _BD09_FORMS:
        return CrsRef(BD09_URI, "BD-09 (Baidu, lon/lat; WGS 84 based)", "bd09", CRS.from_epsg(4326), False)
    if upper in _CRS84_FORMS:
        return _proj_ref(CRS84_URI, CRS.from_user_input("OGC:CRS84"), spec)
    for form in _EPSG_FORMS:
        if match := form.fullmatch(text):
            code = int(match.group(1))
            try:
                crs = CRS.from_epsg(code)
            except CRSError:
                raise InvalidQuery(f"unknown CRS {_short(spec)}: no EPSG CRS has code {code}") from None
            return _proj_ref(_EPSG_URI.format(code=code), crs, spec)
    if (text.startswith("+") and "+proj=" in text) or text.startswith("{") or _WKT_START.match(text):
        try:
            crs = CRS.from_user_input(text)
        except CRSError as err:
            reason = str(err).rpartition("Internal Proj Error: ")[2].rstrip(")") or "unparsable"
            raise InvalidQuery(f"invalid custom CRS {_short(spec)}: {reason}") from None
        return _proj_ref(text, crs, spec)
    raise InvalidQuery(
        f"unknown CRS {_short(spec)}: use CRS84, EPSG:<code> or its OGC URI, GCJ-02, BD-09, a PROJ string or WKT"
    )


def _short(spec: str) -> str:
    """Quote ``spec`` on one line for an error message, cut to 60 characters."""
    return repr(spec if len(spec) <= 60 else spec[:57] + "...")


def _proj_ref(uri: str, crs: CRS, spec: str) -> CrsRef:
    """Wrap a pyproj CRS in a ``CrsRef``, refusing anything that has no 2D horizontal coordinates."""
    if not (crs.is_geographic or crs.is_projected) or len(crs.axis_info) < 2:
        raise InvalidQuery(f"CRS {_short(spec)} ({crs.name}) is not a geographic or projected CRS")
    return CrsRef(uri, crs.name, "proj", crs, _northing_first(crs))


def _northing_first(crs: CRS) -> bool:
    """Whether the CRS's first axis is latitude or northing (judged by axis name, then direction)."""
    first = crs.axis_info[0]
    name = first.name.lower()
    if "lat" in name or name.startswith(("north", "south")):
        return True
    if "lon" in name or name.startswith(("east", "west")):
        return False
    return first.direction.lower() in ("north", "south")


CRS84 = resolve_crs(CRS84_URI)
WGS84 = resolve_crs("EPSG:4326")
CGCS2000 = resolve_crs("EPSG:4490")
METRIC = resolve_crs("EPSG:4547")
WEB_MERCATOR = resolve_crs("EPSG:3857")
GCJ02 = resolve_crs(GCJ02_URI)
BD09 = resolve_crs(BD09_URI)
#: The CRSs the OGC API advertises, CRS84 (the default) first.
SUPPORTED_CRS_URIS: tuple[str, ...] = tuple(r.uri for r in (CRS84, WGS84, CGCS2000, METRIC, WEB_MERCATOR, GCJ02, BD09))

_Step = Callable[[npt.ArrayLike, npt.ArrayLike], tuple[Array, Array]]
_FROM_WGS84: dict[str, _Step] = {"gcj02": chinacrs.wgs84_to_gcj02, "bd09": chinacrs.wgs84_to_bd09}
_TO_WGS84: dict[str, _Step] = {"gcj02": chinacrs.gcj02_to_wgs84, "bd09": chinacrs.bd09_to_wgs84}
_DIRECT: dict[tuple[str, str], _Step] = {
    ("gcj02", "bd09"): chinacrs.gcj02_to_bd09,
    ("bd09", "gcj02"): chinacrs.bd09_to_gcj02,
}

_OFFSET_SAMPLE_DEG = 0.0005  # bbox edge sampling step when GCJ-02/BD-09 is involved
_MAX_EDGE_SAMPLES = 20_000
_TRANSFORMERS: dict[tuple[str, str], Transformer] = {}
_TRANSFORMERS_LOCK = threading.Lock()
_MAX_TRANSFORMERS = 256


def _transformer(src: CrsRef, dst: CrsRef) -> Transformer:
    """Return the process-wide pyproj Transformer for two proj CRSs, built once (~50 ms for EPSG:4547).

    pyproj (>= 3.1) makes a shared Transformer thread-safe by keeping its PROJ object per thread; each new thread
    rebuilds that object on first use, so a fixed worker pool pays the cost once per worker and pair.
    """
    key = (src.uri, dst.uri)
    transformer = _TRANSFORMERS.get(key)
    if transformer is None:
        with _TRANSFORMERS_LOCK:
            transformer = _TRANSFORMERS.get(key)
            if transformer is None:
                transformer = Transformer.from_crs(src.crs, dst.crs, always_xy=True)
                if len(_TRANSFORMERS) >= _MAX_TRANSFORMERS:  # custom CRSs could otherwise grow it without bound
                    del _TRANSFORMERS[next(iter(_TRANSFORMERS))]
                _TRANSFORMERS[key] = transformer
    return transformer


def _proj_xy(x: Array, y: Array, src: CrsRef, dst: CrsRef) -> tuple[Array, Array]:
    if src == dst:
        return x, y
    tx, ty = _transformer(src, dst).transform(x, y)
    return np.asarray(tx, dtype=np.float64), np.asarray(ty, dtype=np.float64)


def transform_xy(x: npt.ArrayLike, y: npt.ArrayLike, src: CrsRef, dst: CrsRef) -> tuple[Array, Array]:
    """Transform x (lon/easting) and y (lat/northing) arrays from ``src`` to ``dst``; returns new float arrays.

    GCJ-02 and BD-09 go to each other directly and to anything else through WGS 84. Points a PROJ transform
    cannot handle come back as ``inf``.
    """
    xs, ys = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    xs, ys = np.array(xs), np.array(ys)
    if src == dst:
        return xs, ys
    if (src.kind, dst.kind) in _DIRECT:
        return _DIRECT[src.kind, dst.kind](xs, ys)
    if src.kind != "proj":
        xs, ys = _TO_WGS84[src.kind](xs, ys)
        src = WGS84
    if dst.kind != "proj":
        return _FROM_WGS84[dst.kind](*_proj_xy(xs, ys, src, WGS84))
    return _proj_xy(xs, ys, src, dst)


def _coords_step(src: CrsRef, dst: CrsRef) -> Callable[[Array], Array]:
    """Make a ``shapely.transform`` function that maps x and y and leaves z unchanged."""

    def step(coords: Array) -> Array:
        out = coords.copy()
        out[:, 0], out[:, 1] = transform_xy(coords[:, 0], coords[:, 1], src, dst)
        return out

    return step


def _as_geometry_array(geoms: Geoms) -> npt.NDArray[np.object_]:
    return np.asarray([geoms] if isinstance(geoms, BaseGeometry) else geoms, dtype=object)


def transform_geometries(geoms: Geoms, src: CrsRef, dst: CrsRef) -> npt.NDArray[np.object_]:
    """Transform shapely geometries (array, sequence or GeoSeries) in one vectorised pass; z values are kept.

    ``None`` stays ``None``; 2D geometries stay 2D and 3D ones stay 3D.
    """
    array = _as_geometry_array(geoms)
    if src == dst:
        return array.copy()
    return np.asarray(shapely.transform(array, _coords_step(src, dst), include_z=True), dtype=object)


def transform_geometry(geom: BaseGeometry, src: CrsRef, dst: CrsRef) -> BaseGeometry:
    """Transform one shapely geometry from ``src`` to ``dst``."""
    result: BaseGeometry = transform_geometries(geom, src, dst)[0]
    return result


def transform_bbox(
    bbox: Sequence[float], src: CrsRef, dst: CrsRef, densify: int = 100
) -> tuple[float, float, float, float]:
    """Return the ``(minx, miny, maxx, maxy)`` box in ``dst`` that encloses ``bbox`` from ``src``.

    Edges are sampled at ``densify`` inner points besides the corners (PROJ's ``transform_bounds`` between proj
    CRSs), enough to enclose curved edge images to a centimetre for boxes up to half a degree. With GCJ-02/BD-09
    on either side, samples are at least every 0.0005 degrees (BD-09 ripples by ~40 m every 0.12 degrees).
    Raises ``InvalidQuery`` for a malformed box.
    """
    values = tuple(float(v) for v in bbox)
    if len(values) != 4 or not all(np.isfinite(values)) or values[0] > values[2] or values[1] > values[3]:
        raise InvalidQuery(f"bbox must be 4 finite numbers minx,miny,maxx,maxy with min <= max, got {values}")
    if src == dst:
        return (values[0], values[1], values[2], values[3])
    if src.kind == "proj" and dst.kind == "proj":
        bounds = _transformer(src, dst).transform_bounds(*values, densify_pts=densify)
        return (bounds[0], bounds[1], bounds[2], bounds[3])
    tx, ty = transform_xy(*_edge_points(values, densify), src, dst)
    degrees = (values[2] - values[0], values[3] - values[1]) if src.kind != "proj" else (np.ptp(tx), np.ptp(ty))
    needed = min(int(max(degrees) / _OFFSET_SAMPLE_DEG), _MAX_EDGE_SAMPLES)
    if needed > densify:
        tx, ty = transform_xy(*_edge_points(values, needed), src, dst)
    return (float(np.min(tx)), float(np.min(ty)), float(np.max(tx)), float(np.max(ty)))


def _edge_points(bbox: tuple[float, ...], inner: int) -> tuple[Array, Array]:
    """Sample the four edges of ``bbox``: corners plus ``inner`` evenly spaced points on each edge."""
    minx, miny, maxx, maxy = bbox
    t = np.linspace(0.0, 1.0, inner + 2)
    along_x, along_y = minx + (maxx - minx) * t, miny + (maxy - miny) * t
    xs = np.concatenate([along_x, np.full_like(t, maxx), along_x, np.full_like(t, minx)])
    ys = np.concatenate([np.full_like(t, miny), along_y, np.full_like(t, maxy), along_y])
    return xs, ys


def _frame_ref(frame: gpd.GeoDataFrame | gpd.GeoSeries) -> CrsRef:
    """Find the CRS of a frame's geometries: its ``.crs``, or ``attrs["crs_uri"]`` for GCJ-02/BD-09."""
    crs = frame.crs
    if crs is not None:
        if crs == WGS84.crs:
            return WGS84
        authority = crs.to_authority(min_confidence=100)
        if authority and authority[0] in ("EPSG", "OGC"):
            return resolve_crs(":".join(authority))
        return _proj_ref(crs.to_wkt(), crs, crs.name)
    if uri := frame.attrs.get("crs_uri"):
        return resolve_crs(uri)
    raise ValueError("the frame has no CRS: set .crs, or attrs['crs_uri'] for GCJ-02/BD-09 data")


def _with_geometries(frame: gpd.GeoDataFrame, geoms: npt.NDArray[np.object_], dst: CrsRef) -> gpd.GeoDataFrame:
    """Copy ``frame`` with ``geoms`` (in ``dst``) as its active geometry column."""
    out = frame.copy()
    out[frame.geometry.name] = gpd.GeoSeries(geoms, index=frame.index)
    proj = dst.kind == "proj"
    out = out.set_crs(dst.crs if proj else None, allow_override=True)
    if proj:
        out.attrs.pop("crs_uri", None)
    else:
        out.attrs["crs_uri"] = dst.uri
    return out


def to_crs(frame: gpd.GeoDataFrame, dst: CrsRef | str) -> gpd.GeoDataFrame:
    """Copy ``frame`` (normally EPSG:4326) with its active geometry transformed to ``dst``.

    For a proj CRS the result's ``.crs`` is that CRS. GCJ-02 and BD-09 cannot be represented by geopandas: the
    result's ``.crs`` is None and ``attrs["crs_uri"]`` holds the URI (``from_crs`` reads it back).
    """
    target = dst if isinstance(dst, CrsRef) else resolve_crs(dst)
    geoms = transform_geometries(frame.geometry.values, _frame_ref(frame), target)
    return _with_geometries(frame, geoms, target)


def from_crs(
    data: gpd.GeoDataFrame | Geoms, src: CrsRef | str | None = None
) -> gpd.GeoDataFrame | npt.NDArray[np.object_]:
    """Bring a frame or geometries from ``src`` back to EPSG:4326.

    A GeoDataFrame comes back as a GeoDataFrame with ``.crs`` EPSG:4326; ``src`` defaults to the frame's own
    CRS (see ``to_crs``). Geometries (array, sequence, GeoSeries or one geometry) come back as an array and need
    ``src``.
    """
    source = src if isinstance(src, CrsRef) else resolve_crs(src) if src is not None else None
    if isinstance(data, gpd.GeoDataFrame):
        geoms = transform_geometries(data.geometry.values, source or _frame_ref(data), WGS84)
        return _with_geometries(data, geoms, WGS84)
    if source is None:
        if not isinstance(data, gpd.GeoSeries):
            raise ValueError("from_crs needs src for geometries that carry no CRS")
        source = _frame_ref(data)
    return transform_geometries(data, source, WGS84)


def _swap_xy(coords: Array) -> Array:
    out = coords.copy()
    out[:, 0], out[:, 1] = coords[:, 1], coords[:, 0]
    return out


def swap_axes(geoms: Geoms) -> BaseGeometry | npt.NDArray[np.object_]:
    """Swap x and y of every coordinate (z kept), for input or output in authority axis order.

    One geometry gives one geometry; anything else gives an array.
    """
    if isinstance(geoms, BaseGeometry):
        return shapely.transform(geoms, _swap_xy, include_z=True)
    return np.asarray(shapely.transform(_as_geometry_array(geoms), _swap_xy, include_z=True), dtype=object)


def to_metric(geoms_4326: Geoms) -> npt.NDArray[np.object_]:
    """Geometries in lon/lat (EPSG:4326) projected to EPSG:4547 metres, for lengths, areas and distances."""
    return transform_geometries(geoms_4326, WGS84, METRIC)


def metric_distance_m(a_geoms: Geoms, b_geoms: Geoms) -> Array:
    """Element-wise (broadcast) distances in metres, measured in EPSG:4547, between lon/lat geometries."""
    return np.asarray(shapely.distance(to_metric(a_geoms), to_metric(b_geoms)), dtype=np.float64)
