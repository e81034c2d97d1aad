"""The embedded store: one OGC GeoPackage file (which QGIS and GDAL open directly), rasters beside it.

Durability and isolation come from SQLite: the file runs in WAL mode with ``synchronous=FULL``, so a committed
write is on disk before ``commit`` returns and survives a crash of the process *and* of the machine (``NORMAL``
would survive a process crash but may lose the last commits on power loss; the price of ``FULL`` is one fsync of
the WAL per write transaction, and reads are unaffected). Every write method is one ``BEGIN IMMEDIATE … COMMIT``
transaction, validated before anything is written and rolled back on any error, so a failed write leaves nothing.

Each thread reads through its own connection (WAL readers never block each other or the writer); writes are
serialised by a lock in this process and by SQLite's write lock across processes.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import urllib.parse
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from layers import Layer, get_raster
from twin.errors import Conflict, Forbidden, InvalidQuery, NotFound, Unavailable, ValidationFailed
from twin.store import gpkg_geometry, gpkg_read, gpkg_tiles, gpkg_write
from twin.store.base import BBox, FeatureQuery, Filter, Store, TileReader, TileRequest
from twin.store.checks import (
    as_feature_id,
    check_query,
    count_cap,
    distance_metres,
    frame_source,
    known_layer,
    nearest_count,
    spatial_layer,
    update_frame,
)
from twin.store.gpkg_schema import check_schema, create_schema, quote, upgrade_schema
from twin.tiles.build import build_tile_from
from twin.validate import has_ids, normalize_changes, normalize_frame

#: How long a writer waits for another process's write lock before giving up (seconds).
BUSY_TIMEOUT_S = 30.0
SYNCHRONOUS = "FULL"
_CACHE_KIB = 32 * 1024
_MMAP_BYTES = 1 << 30


class _Handle:
    """One thread's connection; when the thread ends the handle is collected and the connection closed."""

    __slots__ = ("__weakref__", "conn")

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn


class GeoPackageStore(Store):
    """A twin held in one GeoPackage file.

    ``GeoPackageStore(path)`` opens an existing twin GeoPackage (``NotFound`` if there is no file,
    ``ValidationFailed`` if it is not a GeoPackage with the catalogue's tables); :meth:`create` makes a new one.
    Rasters are looked up in ``raster_dir``, by default the GeoPackage's folder.
    """

    def __init__(self, path: str | os.PathLike[str], *, raster_dir: str | os.PathLike[str] | None = None,
                 readonly: bool = False):
        self.path = Path(path)
        self.raster_dir = Path(raster_dir) if raster_dir is not None else self.path.parent
        self.readonly = readonly
        if not self.path.is_file():
            raise NotFound(f"no GeoPackage at {self.path}")
        self._local = threading.local()
        self._handles: weakref.WeakSet[_Handle] = weakref.WeakSet()
        self._handles_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False
        try:
            if not readonly:
                upgrade_schema(self._conn(), self.layers)  # files made before the catalogue grew
            check_schema(self._conn(), self.layers, str(self.path))
        except BaseException:
            self.close()
            raise

    @classmethod
    def create(cls, path: str | os.PathLike[str], overwrite: bool = False, *,
               raster_dir: str | os.PathLike[str] | None = None) -> GeoPackageStore:
        """Make a new, empty twin GeoPackage at ``path`` (one table per catalogue layer) and open it."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise Conflict(f"{path} already exists; pass overwrite=True to replace it")
        for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
            stale.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN")
            create_schema(conn, cls.layers)
            conn.execute("COMMIT")
        finally:
            conn.close()
        return cls(path, raster_dir=raster_dir)

    # -- connections and transactions -------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?mode={'ro' if self.readonly else 'rw'}"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
        try:
            conn.execute("PRAGMA schema_version").fetchone()  # reads the header: fails here for a non-database
        except sqlite3.DatabaseError as err:
            conn.close()
            raise ValidationFailed(f"not a GeoPackage (SQLite says: {err})", source=str(self.path)) from None
        gpkg_geometry.register_functions(conn)
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if not self.readonly and conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            with suppress(sqlite3.OperationalError):  # another process holds it: stay in rollback-journal mode
                conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
        conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        conn.execute(f"PRAGMA mmap_size = {_MMAP_BYTES}")
        conn.execute("PRAGMA temp_store = MEMORY")
        return conn

    def _conn(self) -> sqlite3.Connection:
        handle = getattr(self._local, "handle", None)
        if handle is not None:
            return handle.conn
        if self._closed:
            raise Unavailable(f"the GeoPackage store {self.path} is closed")
        conn = self._open()
        handle = _Handle(conn)
        weakref.finalize(handle, conn.close)
        with self._handles_lock:
            self._handles.add(handle)
        self._local.handle = handle
        return conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement inside sees the same snapshot."""
        conn = self._conn()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    @contextmanager
    def _writing(self, layer: Layer) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolled back on any error, integrity errors raised as ``Conflict``."""
        if self.readonly:
            raise Forbidden(f"the store {self.path.name} is open read-only")
        with self._write_lock:
            conn = self._conn()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as err:
                raise Unavailable(f"the GeoPackage is busy: {err}") from None
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as err:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(err, sqlite3.IntegrityError):
                    raise gpkg_write.conflict(layer, err) from None
                if isinstance(err, sqlite3.OperationalError) and "locked" in str(err):
                    raise Unavailable(f"the GeoPackage is busy: {err}") from None
                raise

    def close(self) -> None:
        """Close every thread's connection; the last close checkpoints and removes the WAL."""
        self._closed = True
        with self._handles_lock:
            handles = list(self._handles)
            self._handles = weakref.WeakSet()
        self._local = threading.local()
        for handle in handles:
            handle.conn.close()

    # -- reads ------------------------------------------------------------------------------------------------

    def _query(self, layer_id: str, query: FeatureQuery | None) -> tuple[Layer, FeatureQuery]:
        layer = known_layer(layer_id)
        query = query or FeatureQuery()
        check_query(layer, query)
        return layer, query

    def count(self, layer_id: str, query: FeatureQuery | None = None, *, cap: int | None = None) -> int:
        """Number of features matching ``query`` (its limit and offset are ignored), at most ``cap``."""
        layer, query = self._query(layer_id, query)
        cap = count_cap(cap)
        with self._reading() as conn:
            return gpkg_read.count(conn, layer, query, cap)

    def query(self, layer_id: str, query: FeatureQuery | None = None) -> gpd.GeoDataFrame | pd.DataFrame:
        """Features matching ``query``, in its sort order then by id (a GeoDataFrame in EPSG:4326 for layers)."""
        layer, query = self._query(layer_id, query)
        with self._reading() as conn:
            return gpkg_read.select(conn, layer, query)

    def get(self, layer_id: str, feature_id: int) -> gpd.GeoDataFrame | pd.DataFrame:
        """The one-row frame for ``feature_id``; ``NotFound`` if there is none."""
        layer = known_layer(layer_id)
        with self._reading() as conn:
            frame = gpkg_read.by_ids(conn, layer, [as_feature_id(feature_id)])
        if frame.empty:
            raise NotFound(f"{layer_id} has no feature with id {feature_id}")
        return frame

    def nearest(self, layer_id: str, point: Point, k: int = 5, filters: Sequence[Filter] = ()) -> gpd.GeoDataFrame:
        """The ``k`` features nearest to ``point`` (lon/lat), nearest first, with ``distance_m`` (EPSG:4547)."""
        layer = spatial_layer(layer_id)
        k = nearest_count(point, k)
        with self._reading() as conn:
            return gpkg_read.nearest(conn, layer, point, k, tuple(filters))

    def within_distance(self, layer_id: str, geometry: BaseGeometry, distance_m: float,
                        filters: Sequence[Filter] = ()) -> gpd.GeoDataFrame:
        """Features within ``distance_m`` metres (EPSG:4547) of ``geometry``, nearest first, with ``distance_m``."""
        layer = spatial_layer(layer_id)
        distance = distance_metres(geometry, distance_m)
        with self._reading() as conn:
            return gpkg_read.within_distance(conn, layer, geometry, distance, tuple(filters))

    def aggregate_by_grid(self, layer_id: str, filters: Sequence[Filter] = (), grid_level: str = "grid",
                          sums: Sequence[str] = ()) -> pd.DataFrame:
        """Counts (and sums of ``sums`` fields) per grid cell of ``grid_level``, indexed by grid code."""
        layer = known_layer(layer_id)
        with self._reading() as conn:
            return gpkg_read.aggregate_by_grid(conn, layer, tuple(filters), grid_level, tuple(sums))

    def extent(self, layer_id: str) -> BBox | None:
        """The exact bounding box of a spatial layer, ``None`` when it is empty."""
        layer = spatial_layer(layer_id)
        with self._reading() as conn:
            return gpkg_read.extent(conn, layer)

    def time_extent(self, layer_id: str) -> tuple[datetime | None, datetime | None]:
        """Earliest and latest value of the layer's temporal field, ``(None, None)`` when there is none."""
        layer = known_layer(layer_id)
        if layer.temporal_field is None:
            return None, None
        column = quote(layer.temporal_field)
        with self._reading() as conn:
            low, high = conn.execute(f"SELECT min({column}), max({column}) FROM {quote(layer.id)}").fetchone()
        return _instant(low), _instant(high)

    def layer_version(self, layer_id: str) -> int:
        """The layer's change counter (bumped inside every write transaction)."""
        layer = known_layer(layer_id)
        with self._reading() as conn:
            try:
                row = conn.execute("SELECT version FROM twin_layer_versions WHERE table_name = ?",
                                   (layer.id,)).fetchone()
            except sqlite3.OperationalError:  # a read-only file made before the counters existed
                return 0
        return int(row[0]) if row else 0

    def raster_path(self, raster_id: str) -> Path:
        """Path of the raster's COG beside the GeoPackage; ``NotFound`` for an unknown or missing raster."""
        try:
            raster = get_raster(raster_id)
        except KeyError as err:
            raise NotFound(str(err.args[0])) from None
        path = self.raster_dir / raster.filename
        if not path.is_file():
            raise NotFound(f"raster {raster_id!r} has no file at {path}")
        return path

    # -- writes -----------------------------------------------------------------------------------------------

    def insert(self, layer_id: str, frame: gpd.GeoDataFrame | pd.DataFrame) -> list[int]:
        """Validate and insert rows in one transaction; returns their ids. Nothing is written if any row fails."""
        layer = known_layer(layer_id)
        frame = normalize_frame(layer, frame, source=frame_source(frame, f"insert into {layer_id}"))
        if frame.empty:
            return []
        with self._writing(layer) as conn:
            return gpkg_write.insert(conn, layer, frame)

    def append(self, layer_id: str, frame: gpd.GeoDataFrame | pd.DataFrame) -> int:
        """Validate and insert rows in one transaction, skipping rows already stored; returns how many were new."""
        layer = known_layer(layer_id)
        frame = normalize_frame(layer, frame, source=frame_source(frame, f"append to {layer_id}"))
        if frame.empty:
            return 0
        with self._writing(layer) as conn:
            return gpkg_write.append(conn, layer, frame)

    def tile(self, request: TileRequest) -> bytes:
        """A Mapbox Vector Tile from R-tree reads of raw rows (:mod:`gpkg_tiles`) and the vectorised encoder."""
        with self._reading() as conn:
            return build_tile_from(request, partial(gpkg_tiles.layer_rows, conn))

    @contextmanager
    def tile_reader(self) -> Iterator[TileReader]:
        """Layer versions and tiles read in one read transaction (one snapshot)."""
        with self._reading():
            yield TileReader(self)

    def update(self, layer_id: str, feature_id: int, changes: Mapping[str, Any]) -> None:
        """Validate and apply ``changes`` to one feature (``NotFound`` for an unknown id)."""
        layer = known_layer(layer_id)
        fid = as_feature_id(feature_id)
        changes = normalize_changes(layer, changes, source=f"update of {layer_id}", feature_id=fid)
        with self._writing(layer) as conn:
            if not gpkg_write.update(conn, layer, fid, changes):
                raise NotFound(f"{layer_id} has no feature with id {feature_id}")

    def update_many(self, layer_id: str, frame: pd.DataFrame) -> int:
        """Validate and apply one row of changes per feature in one transaction; returns how many were updated."""
        layer = known_layer(layer_id)
        frame = update_frame(layer, frame)
        if frame.empty:
            return 0
        with self._writing(layer) as conn:
            return gpkg_write.update_many(conn, layer, frame)

    def delete(self, layer_id: str, ids: Sequence[int]) -> int:
        """Delete features by id in one transaction; returns how many were deleted (unknown ids are skipped)."""
        layer = known_layer(layer_id)
        if isinstance(ids, str | bytes) or not isinstance(ids, Sequence | np.ndarray):
            raise InvalidQuery("delete needs a list of ids")
        wanted = [as_feature_id(i) for i in ids]
        if not wanted:
            return 0
        with self._writing(layer) as conn:
            return gpkg_write.delete(conn, layer, wanted)

    def replace_layer(self, layer_id: str, frame: gpd.GeoDataFrame | pd.DataFrame) -> int:
        """Replace a layer's content in one transaction (bulk load); ids come from the frame or run 1..n.

        See :func:`twin.store.gpkg_write.replace` for how the load is made fast.
        """
        layer = known_layer(layer_id)
        frame = normalize_frame(layer, frame, source=frame_source(frame, f"replace {layer_id}"))
        ids = frame.index.to_numpy(dtype="int64") if has_ids(layer, frame) else np.arange(1, len(frame) + 1)
        encoded = gpkg_write.encode_bulk(layer, frame, ids)
        with self._writing(layer) as conn:
            gpkg_write.replace(conn, layer, ids, encoded)
        self._checkpoint()
        return len(frame)

    def _checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it (after bulk loads, so the WAL does not stay huge)."""
        with suppress(sqlite3.OperationalError):  # readers in the way: SQLite checkpoints later by itself
            self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")



def _instant(value: str | None) -> datetime | None:
    """A stored DATETIME as an aware UTC datetime (values without an offset are UTC, as GeoPackage says)."""
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).to_pydatetime()



