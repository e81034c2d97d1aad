"""The production store: PostGIS, for many API workers and sensors writing all day against one database.

``PostGISStore(url)`` opens a database whose tables were made by the migrations (``twin db upgrade``, or
:meth:`PostGISStore.create`); ``TWIN_DATABASE_URL=postgresql+psycopg://…`` makes :func:`twin.store.opening.open_store`
choose it. It answers exactly as the GeoPackage store does (the contract suite in ``tests/store`` runs on both):
the SQL lives in ``pg_read`` / ``pg_write`` / ``pg_tiles``, built from SQLAlchemy and GeoAlchemy2 expressions over
the catalogue's tables (``pg_schema``); bulk writes go through COPY (``pg_copy``); connections, pool, timeouts and
the ``Unavailable`` translation are in ``pg_engine``.

Every write is one transaction, validated before it starts (:mod:`twin.validate`), so a failed write leaves
nothing; a duplicate key is a ``Conflict``. Every method is safe to call from several threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import sqlalchemy as sa
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from layers import Layer, get_raster
from twin.errors import Conflict, InvalidQuery, NotFound, Unavailable, ValidationFailed
from twin.store import pg_copy, pg_read, pg_tiles, pg_write
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
from twin.store.pg_engine import PostGISSettings, create_engine, translated
from twin.store.pg_schema import GEOMETRY_COLUMN, PARTITIONED, partition_name
from twin.validate import has_ids, normalize_changes, normalize_frame

#: Writes of at least this many rows are bulk writes (see ``PostGISSettings.bulk_statement_timeout_s``).
BULK_ROWS = 100_000


class PostGISStore(Store):
    """A twin held in a PostGIS database.

    ``raster_dir`` is where the rasters' COGs live (rasters stay files beside the database; default: the sample
    folder). ``settings`` tune the pool and timeouts (default: from ``TWIN_PG_*`` variables). Opening checks that
    the catalogue's tables are there (``ValidationFailed`` naming ``twin db upgrade`` if not) and raises
    ``Unavailable`` when the database cannot be reached.
    """

    def __init__(self, url: str, *, raster_dir: str | os.PathLike[str] | None = None,
                 settings: PostGISSettings | None = None):
        self.settings = settings or PostGISSettings()
        self.url = url
        self.display_url = sa.make_url(url).render_as_string(hide_password=True)
        if raster_dir is None:
            from twin.settings import StoreSettings

            raster_dir = StoreSettings().sample_dir
        self.raster_dir = Path(raster_dir)
        self.engine = create_engine(url, self.settings)
        self._closed = False
        self._partitions: dict[str, set[str]] = {}
        self._partitions_lock = threading.Lock()
        try:
            self._sequences = self._check_schema()
        except BaseException:
            self.engine.dispose()
            raise

    @classmethod
    def create(cls, url: str, *, raster_dir: str | os.PathLike[str] | None = None,
               settings: PostGISSettings | None = None) -> PostGISStore:
        """Bring the database's schema up to date (``twin db upgrade``) and open it."""
        from twin.migrations import upgrade

        upgrade(url)
        return cls(url, raster_dir=raster_dir, settings=settings)

    # -- connections and transactions -------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        if self._closed:
            raise Unavailable(f"the PostGIS store {self.display_url} is closed")
        with translated(self.settings), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _writing(self, layer: Layer, rows: int = 0) -> Iterator[sa.Connection]:
        """One transaction; rolled back on any error, unique violations raised as ``Conflict``.

        Writes of ``BULK_ROWS`` rows or more (imports, bulk loads) run under the bulk statement timeout.
        """
        if self._closed:
            raise Unavailable(f"the PostGIS store {self.display_url} is closed")
        try:
            with translated(self.settings), self.engine.begin() as conn:
                if rows >= BULK_ROWS:
                    timeout_ms = round(self.settings.bulk_statement_timeout_s * 1000)
                    conn.execute(sa.text("SELECT set_config('statement_timeout', :ms, true)"),
                                 {"ms": str(timeout_ms)})
                yield conn
        except (sa.exc.IntegrityError, psycopg.errors.IntegrityError) as err:
            orig = getattr(err, "orig", err)
            if isinstance(orig, psycopg.errors.UniqueViolation | psycopg.errors.ExclusionViolation):
                raise pg_write.conflict(layer, err) from None
            raise
        except (sa.exc.DataError, psycopg.errors.DataError) as err:
            detail = str(getattr(err, "orig", err)).strip().splitlines()[0]
            raise ValidationFailed(f"the database refused the data: {detail}", source=layer.id) from None

    def close(self) -> None:
        """Close every pooled connection."""
        self._closed = True
        self.engine.dispose()

    def _check_schema(self) -> dict[str, tuple[str, str]]:
        """Check that every catalogue table and column exists; returns each layer's id sequence."""
        names = [layer.id for layer in self.layers]
        with self._reading() as conn:
            columns = conn.execute(sa.text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = ANY(:names)"), {"names": names}).all()
            self._check_columns(columns)
            sequences = conn.execute(sa.text(
                "SELECT t.name, n.nspname, c.relname FROM unnest(CAST(:names AS text[])) AS t(name) "
                "JOIN pg_class c ON c.oid = CAST(pg_get_serial_sequence(format('%I', t.name), 'id') AS regclass) "
                "JOIN pg_namespace n ON n.oid = c.relnamespace"), {"names": names}).all()
        found = {name: (schema, sequence) for name, schema, sequence in sequences}
        if without := [name for name in names if name not in found]:
            raise ValidationFailed(f"tables {', '.join(without)} have no id sequence", source=self.display_url)
        return found

    def _check_columns(self, columns: Sequence[Any]) -> None:
        present: dict[str, set[str]] = {}
        for table, column in columns:
            present.setdefault(table, set()).add(column)
        missing = [layer.id for layer in self.layers if layer.id not in present]
        if missing:
            raise ValidationFailed(f"lacks the catalogue tables {', '.join(missing)}; run `twin db upgrade`",
                                   source=self.display_url)
        for layer in self.layers:
            expected = {layer.key, *layer.field_names} | ({GEOMETRY_COLUMN} if layer.is_spatial else set())
            if absent := sorted(expected - present[layer.id]):
                raise ValidationFailed(f"table {layer.id!r} lacks the columns {', '.join(absent)}; "
                                       "run `twin db upgrade`", source=self.display_url)

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
            return pg_read.count(conn, layer, query, cap)

    def query(self, layer_id: str, query: FeatureQuery | None = None) -> gpd.GeoDataFrame | pd.DataFrame:
        """Features matching ``query``, in its sort order then by id (a GeoDataFrame in EPSG:4326 for layers)."""
        layer, query = self._query(layer_id, query)
        with self._reading() as conn:
            return pg_read.select(conn, layer, query)

    def get(self, layer_id: str, feature_id: int) -> gpd.GeoDataFrame | pd.DataFrame:
        """The one-row frame for ``feature_id``; ``NotFound`` if there is none."""
        layer = known_layer(layer_id)
        with self._reading() as conn:
            frame = pg_read.by_ids(conn, layer, [as_feature_id(feature_id)])
        if frame.empty:
            raise NotFound(f"{layer_id} has no feature with id {feature_id}")
        return frame

    def nearest(self, layer_id: str, point: Point, k: int = 5, filters: Sequence[Filter] = ()) -> gpd.GeoDataFrame:
        """The ``k`` features nearest to ``point`` (lon/lat), nearest first, with ``distance_m`` (EPSG:4547)."""
        layer = spatial_layer(layer_id)
        k = nearest_count(point, k)
        with self._reading() as conn:
            return pg_read.nearest(conn, layer, point, k, tuple(filters))

    def within_distance(self, layer_id: str, geometry: BaseGeometry, distance_m: float,
                        filters: Sequence[Filter] = ()) -> gpd.GeoDataFrame:
        """Features within ``distance_m`` metres (EPSG:4547) of ``geometry``, nearest first, with ``distance_m``."""
        layer = spatial_layer(layer_id)
        distance = distance_metres(geometry, distance_m)
        with self._reading() as conn:
            return pg_read.within_distance(conn, layer, geometry, distance, tuple(filters))

    def aggregate_by_grid(self, layer_id: str, filters: Sequence[Filter] = (), grid_level: str = "grid",
                          sums: Sequence[str] = ()) -> pd.DataFrame:
        """Counts (and sums of ``sums`` fields) per grid cell of ``grid_level``, indexed by grid code."""
        layer = known_layer(layer_id)
        with self._reading() as conn:
            conn.execute(sa.text("SELECT set_config('max_parallel_workers_per_gather', :n, true)"),
                         {"n": str(self.settings.aggregate_parallel_workers)})
            return pg_read.aggregate_by_grid(conn, layer, tuple(filters), grid_level, tuple(sums))

    def extent(self, layer_id: str) -> BBox | None:
        """The exact bounding box of a spatial layer, ``None`` when it is empty."""
        layer = spatial_layer(layer_id)
        with self._reading() as conn:
            return pg_read.extent(conn, layer)

    def time_extent(self, layer_id: str) -> tuple[datetime | None, datetime | None]:
        """Earliest and latest value of the layer's temporal field, ``(None, None)`` when there is none."""
        layer = known_layer(layer_id)
        if layer.temporal_field is None:
            return None, None
        with self._reading() as conn:
            low, high = pg_read.time_range(conn, layer)
        return _instant(low), _instant(high)

    def layer_version(self, layer_id: str) -> int:
        """The layer's change counter (bumped inside every write transaction), shared by every process."""
        layer = known_layer(layer_id)
        with self._reading() as conn:
            return pg_write.version(conn, layer)

    def tile(self, request: TileRequest) -> bytes:
        """A Mapbox Vector Tile built by ``ST_AsMVT``, one MVT layer per requested layer drawn at this zoom."""
        with self.tile_reader() as reader:
            return reader.tile(request)

    @contextmanager
    def tile_reader(self) -> Iterator[TileReader]:
        """Layer versions and tiles read on one pooled connection (one checkout per tile request).

        In autocommit mode: each read sees every write committed before it, and no transaction is opened and
        rolled back around them.
        """
        with self._reading() as conn:
            yield pg_tiles.PgTileReader(self, conn.execution_options(isolation_level="AUTOCOMMIT"))

    def raster_path(self, raster_id: str) -> Path:
        """Path of the raster's COG in ``raster_dir``; ``NotFound`` for an unknown or missing raster."""
        try:
            raster = get_raster(raster_id)
        except KeyError as err:
            raise NotFound(str(err.args[0])) from None
        path = self.raster_dir / raster.filename
        if not path.is_file():
            raise NotFound(f"raster {raster_id!r} has no file at {path}")
        return path

    # -- writes -----------------------------------------------------------------------------------------------

    def _normalized(self, layer_id: str, frame: Any, verb: str) -> tuple[Layer, pd.DataFrame, np.ndarray | None]:
        layer = known_layer(layer_id)
        frame = normalize_frame(layer, frame, source=frame_source(frame, f"{verb} {layer_id}"))
        ids = frame.index.to_numpy(dtype="int64") if has_ids(layer, frame) else None
        return layer, frame, ids

    def insert(self, layer_id: str, frame: gpd.GeoDataFrame | pd.DataFrame) -> list[int]:
        """Validate and insert rows in one transaction; returns their ids. Nothing is written if any row fails."""
        layer, frame, ids = self._normalized(layer_id, frame, "insert into")
        if frame.empty:
            return []
        self._prepare_partitions(layer, frame)
        with self._writing(layer, len(frame)) as conn:
            written = pg_write.insert(conn, layer, frame, self._sequences[layer.id], ids)
            pg_write.bump_version(conn, layer)
        return written

    def append(self, layer_id: str, frame: gpd.GeoDataFrame | pd.DataFrame) -> int:
        """Validate and insert the rows whose unique key (and id, when given) is new; returns how many were new."""
        layer, frame, ids = self._normalized(layer_id, frame, "append to")
        if frame.empty:
            return 0
        self._prepare_partitions(layer, frame)
        payload = pg_copy.encode(layer, frame, ids)
        if ids is None:  # the common case, all rows new: one COPY; a stored duplicate rolls it back
            try:
                with self._writing(layer, len(frame)) as conn:
                    pg_write.copy_new(conn, layer, payload)
                    pg_write.bump_version(conn, layer)
                return len(frame)
            except Conflict:
                pass
        with self._writing(layer, len(frame)) as conn:
            added = pg_write.append(conn, layer, payload, self._sequences[layer.id], ids)
            if added:
                pg_write.bump_version(conn, layer)
        return added

    def update(self, layer_id: str, feature_id: int, changes: Mapping[str, Any]) -> None:
        """Validate and apply ``changes`` to one feature (``NotFound`` for an unknown id)."""
        layer = known_layer(layer_id)
        fid = as_feature_id(feature_id)
        changes = normalize_changes(layer, changes, source=f"update of {layer_id}", feature_id=fid)
        key = PARTITIONED.get(layer.id)
        if key is not None and changes.get(key) is not None:
            self._prepare_partitions(layer, pd.DataFrame({key: [changes[key]]}))
        with self._writing(layer) as conn:
            if not pg_write.update(conn, layer, fid, changes):
                raise NotFound(f"{layer_id} has no feature with id {feature_id}")
            if changes:
                pg_write.bump_version(conn, layer)

    def update_many(self, layer_id: str, frame: pd.DataFrame) -> int:
        """Validate and apply one row of changes per feature in one transaction (COPY, then one UPDATE … FROM)."""
        layer = known_layer(layer_id)
        frame = update_frame(layer, frame)
        if frame.empty:
            return 0
        key = PARTITIONED.get(layer.id)
        if key is not None and key in frame.columns:
            self._prepare_partitions(layer, frame)
        with self._writing(layer, len(frame)) as conn:
            updated = pg_write.update_many(conn, layer, frame)
            if updated:
                pg_write.bump_version(conn, layer)
        return updated

    def delete(self, layer_id: str, ids: Sequence[int]) -> int:
        """Delete features by id in one transaction; returns how many were deleted (unknown ids are skipped)."""
        layer = known_layer(layer_id)
        if isinstance(ids, str | bytes) or not isinstance(ids, Sequence | np.ndarray):
            raise InvalidQuery("delete needs a list of ids")
        wanted = [as_feature_id(i) for i in ids]
        if not wanted:
            return 0
        with self._writing(layer) as conn:
            deleted = pg_write.delete(conn, layer, wanted)
            if deleted:
                pg_write.bump_version(conn, layer)
        return deleted

    def replace_layer(self, layer_id: str, frame: gpd.GeoDataFrame | pd.DataFrame) -> int:
        """Replace a layer's content in one transaction (bulk load with COPY); ids come from the frame or run 1..n."""
        layer, frame, ids = self._normalized(layer_id, frame, "replace")
        if ids is None:
            ids = np.arange(1, len(frame) + 1, dtype="int64")
        self._prepare_partitions(layer, frame)
        with self._writing(layer, max(len(frame), BULK_ROWS)) as conn:
            pg_write.replace(conn, layer, frame, ids, self._sequences[layer.id])
            pg_write.bump_version(conn, layer)
        return len(frame)

    def _prepare_partitions(self, layer: Layer, frame: pd.DataFrame) -> None:
        """Create the monthly partitions the rows of ``frame`` need (in their own, short transaction)."""
        key = PARTITIONED.get(layer.id)
        if key is None or key not in frame.columns:
            return
        months = pg_write.months(layer, frame[key])
        with self._partitions_lock:
            known = self._partitions.get(layer.id)
            if known is None:
                with self._reading() as conn:
                    known = self._partitions[layer.id] = pg_write.existing_partitions(conn, layer)
            if all(partition_name(layer.id, m) in known for m in months):
                return
            with self._writing(layer) as conn:
                self._partitions[layer.id] = pg_write.create_partitions(conn, layer, months)



def _instant(value: Any) -> datetime | None:
    """A stored instant as an aware UTC datetime at millisecond precision."""
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.floor("ms").to_pydatetime()





__all__ = ["PostGISSettings", "PostGISStore"]
