"""Write transactions of the PostGIS store, each a function of a SQLAlchemy connection inside a transaction.

The store validates first (:mod:`twin.validate`) and owns the transaction; these functions turn normalized data
into SQL and COPY. Ids follow the GeoPackage store's rules:

* without ids in the frame, ids come from the layer's identity sequence (in frame order);
* explicit ids must be new (``Conflict`` names the first one that is not); they are checked and written under a
  ``SHARE ROW EXCLUSIVE`` table lock, which waits for and holds off every other writer of the layer, and the
  sequence is moved past them with ``ALTER SEQUENCE … RESTART`` — transactional, unlike ``setval`` — so later
  ids continue after them and an id is never handed out twice;
* ``replace`` numbers rows 1..n (or keeps the frame's ids) and restarts the sequence after the highest.

Big replacements drop the layer's secondary indexes, COPY, and build the indexes again (a sorted GiST build is
far faster than a million index insertions).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects.postgresql import insert as pg_insert

from layers import Layer
from twin.errors import Conflict
from twin.store import pg_copy
from twin.store.pg_schema import (
    GEOMETRY_COLUMN,
    METADATA,
    PARTITIONED,
    SRID,
    VERSIONS_TABLE,
    default_partition,
    month_start,
    next_month,
    partition_ddl,
    partition_name,
    table_of,
)
from twin.validate import GEOMETRY

#: Replacements of at least this many rows rebuild the secondary indexes after loading instead of maintaining them.
REBUILD_INDEXES_ROWS = 20_000
#: ``maintenance_work_mem`` of those index builds (the server default, 64 MB, makes a GiST build spill to disk).
INDEX_BUILD_MEMORY = "256MB"
Sequence_ = tuple[str, str]  # schema and name of an identity sequence


def lock(conn: sa.Connection, layer: Layer, mode: str) -> None:
    """``LOCK TABLE`` the layer's table in ``mode`` (``ROW EXCLUSIVE`` or ``SHARE ROW EXCLUSIVE``)."""
    assert mode in ("ROW EXCLUSIVE", "SHARE ROW EXCLUSIVE")
    statement = sql.SQL("LOCK TABLE {} IN " + mode + " MODE").format(sql.Identifier(layer.id))
    pg_copy.driver_connection(conn).execute(statement)


def next_ids(conn: sa.Connection, sequence: Sequence_, n: int) -> np.ndarray:
    """``n`` fresh ids from the sequence, ascending."""
    rows = conn.execute(sa.text("SELECT nextval(CAST(:seq AS regclass)) FROM generate_series(1, :n)"),
                        {"seq": sql.Identifier(*sequence).as_string(None), "n": n}).all()
    return np.sort(np.array([r[0] for r in rows], dtype="int64"))


def restart_after(conn: sa.Connection, sequence: Sequence_, max_id: int, *, force: bool = False) -> None:
    """Move the sequence so that the next id is above ``max_id`` (``force``: exactly ``max_id + 1``).

    Never moves it back unless forced: ids are never handed out twice.
    """
    raw = pg_copy.driver_connection(conn)
    if not force:
        row = raw.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(sql.Identifier(*sequence))).fetchone()
        assert row is not None
        last = int(str(row[0]))
        upcoming = last + 1 if row[1] else last
        if max_id < upcoming:
            return
    raw.execute(sql.SQL("ALTER SEQUENCE {} RESTART WITH {}").format(
        sql.Identifier(*sequence), sql.Literal(int(max_id) + 1)))


def _clash(conn: sa.Connection, layer: Layer, ids: np.ndarray) -> None:
    table = table_of(layer)
    key = table.c[layer.key]
    found = conn.execute(sa.select(key).where(key == sa.any_(sa.literal(ids.tolist(), sa.ARRAY(sa.BigInteger()))))
                         .order_by(key).limit(1)).scalar_one_or_none()
    if found is not None:
        raise Conflict(f"{layer.id} already has a feature with id {found}")


def insert(conn: sa.Connection, layer: Layer, frame: pd.DataFrame, sequence: Sequence_,
           ids: np.ndarray | None) -> list[int]:
    """Insert a normalized frame; explicit ``ids`` must be new (``Conflict``), else ids come from the sequence."""
    if ids is None:
        lock(conn, layer, "ROW EXCLUSIVE")  # before drawing ids: writers with explicit ids hold this off
        drawn = next_ids(conn, sequence, len(frame))
        pg_copy.copy_in(conn, layer.id, pg_copy.encode(layer, frame, drawn))
        return [int(i) for i in drawn]
    lock(conn, layer, "SHARE ROW EXCLUSIVE")
    _clash(conn, layer, ids)
    pg_copy.copy_in(conn, layer.id, pg_copy.encode(layer, frame, ids))
    restart_after(conn, sequence, int(ids.max()))
    return [int(i) for i in ids]


def copy_new(conn: sa.Connection, layer: Layer, payload: pg_copy.Payload) -> int:
    """COPY rows (without ids) straight into the table: the fast path of ``append`` when every row is new.

    A stored duplicate aborts the transaction with a unique violation; the store then takes :func:`append`.
    """
    return pg_copy.copy_in(conn, layer.id, payload)


def append(conn: sa.Connection, layer: Layer, payload: pg_copy.Payload, sequence: Sequence_,
           ids: np.ndarray | None) -> int:
    """Insert the rows whose id (when given) and unique key are not stored yet; returns how many were new.

    The rows go through a temporary table and ``INSERT … SELECT … WHERE NOT EXISTS … ON CONFLICT DO NOTHING``:
    stored rows are skipped before they draw an id, ids are checked explicitly (a partitioned table cannot hold
    a unique index on ``id`` alone) and duplicates inside the batch land once, the first one winning.
    """
    if ids is not None:
        lock(conn, layer, "SHARE ROW EXCLUSIVE")
    staging = f"twin_append_{layer.id}"
    raw = pg_copy.driver_connection(conn)
    names = sql.SQL(", ").join(sql.Identifier(c) for c in payload.columns)
    raw.execute(sql.SQL("CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA")
                .format(sql.Identifier(staging), names, sql.Identifier(layer.id)))
    pg_copy.copy_in(conn, staging, payload)
    statement = sql.SQL("INSERT INTO {target} ({names}) SELECT {names} FROM {staging} s").format(
        target=sql.Identifier(layer.id), names=names, staging=sql.Identifier(staging))
    # Skip stored rows before the insert (a conflicting row would still draw an id from the sequence).
    keys = [list(layer.unique_key)] if layer.unique_key else []
    if ids is not None:
        keys.append([layer.key])
    for key in keys:
        same = sql.SQL(" AND ").join(sql.SQL("t.{c} = s.{c}").format(c=sql.Identifier(c)) for c in key)
        statement += sql.SQL(" {} NOT EXISTS (SELECT 1 FROM {} t WHERE {})").format(
            sql.SQL("WHERE" if key is keys[0] else "AND"), sql.Identifier(layer.id), same)
    statement += sql.SQL(" ON CONFLICT DO NOTHING")
    with raw.cursor() as cursor:
        cursor.execute(statement)
        added = cursor.rowcount
    if ids is not None and len(ids):
        restart_after(conn, sequence, int(ids.max()))
    return int(added)


def storage_value(value: Any, *, has_z: bool = False) -> Any:
    """A normalized change value as the driver binds it."""
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, dt.datetime | dt.date | str | bool | int | float) or value is None:
        return value
    if isinstance(value, shapely.Geometry):
        return shapely.to_wkb(value, output_dimension=3 if has_z else 2, byte_order=1)
    return value


def update(conn: sa.Connection, layer: Layer, feature_id: int, changes: Mapping[str, Any]) -> bool:
    """Apply normalized changes to one row; False when there is no such row."""
    table = table_of(layer)
    key = table.c[layer.key]
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name == GEOMETRY:
            wkb = storage_value(value, has_z=layer.has_z)
            values[GEOMETRY_COLUMN] = sa.func.ST_GeomFromWKB(sa.literal(wkb, sa.LargeBinary()), SRID)
        else:
            values[name] = sa.literal(storage_value(value), table.c[name].type)
    if not values:
        return conn.execute(sa.select(sa.literal(1)).where(key == feature_id)).first() is not None
    return conn.execute(sa.update(table).where(key == feature_id).values(values)).rowcount > 0


def update_many(conn: sa.Connection, layer: Layer, frame: pd.DataFrame) -> int:
    """Apply a normalized frame of changes (fields only, indexed by id); returns the rows updated.

    The changes are COPYed into a temporary table, then one ``UPDATE … FROM`` joins it on the key.
    """
    names = [name for name in frame.columns if layer.has_field(name)]
    if not names or frame.empty:
        return 0
    staging = f"twin_update_{layer.id}"
    raw = pg_copy.driver_connection(conn)
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in [layer.key, *names])
    raw.execute(sql.SQL("CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA")
                .format(sql.Identifier(staging), columns, sql.Identifier(layer.id)))
    payload = pg_copy.encode(layer, frame[names], frame.index.to_numpy(dtype="int64"))
    pg_copy.copy_in(conn, staging, payload)  # columns null in every row are left out: NULL in staging too
    assignments = sql.SQL(", ").join(sql.SQL("{c} = s.{c}").format(c=sql.Identifier(c)) for c in names)
    statement = sql.SQL("UPDATE {target} t SET {assignments} FROM {staging} s WHERE t.{key} = s.{key}").format(
        target=sql.Identifier(layer.id), assignments=assignments, staging=sql.Identifier(staging),
        key=sql.Identifier(layer.key))
    with raw.cursor() as cursor:
        cursor.execute(statement)
        return int(cursor.rowcount)


def delete(conn: sa.Connection, layer: Layer, ids: list[int]) -> int:
    """Delete rows by id; returns how many there were."""
    table = table_of(layer)
    key = table.c[layer.key]
    statement = sa.delete(table).where(key == sa.any_(sa.literal(ids, sa.ARRAY(sa.BigInteger()))))
    return int(conn.execute(statement).rowcount)


def replace(conn: sa.Connection, layer: Layer, frame: pd.DataFrame, ids: np.ndarray, sequence: Sequence_) -> None:
    """Replace a layer's rows (the bulk-load path): truncate, COPY, rebuild indexes, restart the sequence."""
    table = table_of(layer)
    raw = pg_copy.driver_connection(conn)
    raw.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(layer.id)))
    rebuild = len(frame) >= REBUILD_INDEXES_ROWS
    if rebuild:
        conn.execute(sa.text("SELECT set_config('maintenance_work_mem', :memory, true)"),
                     {"memory": INDEX_BUILD_MEMORY})
        for index in table.indexes:
            index.drop(conn)
    pg_copy.copy_in(conn, layer.id, pg_copy.encode(layer, frame, ids))
    if rebuild:
        for index in table.indexes:
            index.create(conn)
    raw.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(layer.id)))
    restart_after(conn, sequence, int(ids.max()) if len(ids) else 0, force=True)


def months(layer: Layer, values: pd.Series | Any) -> set[dt.datetime]:
    """The calendar months (UTC) that a partitioned layer's rows with these partition-key values fall in."""
    if layer.id not in PARTITIONED:
        return set()
    stamps = pd.to_datetime(pd.Series(values), utc=True).dropna()
    if stamps.empty:
        return set()
    starts = np.unique(stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[M]"))
    return {month_start(pd.Timestamp(s).to_pydatetime()) for s in starts}


def existing_partitions(conn: sa.Connection, layer: Layer) -> set[str]:
    """Names of the partitions of a partitioned layer."""
    rows = conn.execute(sa.text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                "WHERE i.inhparent = CAST(:parent AS regclass)"),
                        {"parent": sql.Identifier(layer.id).as_string(None)}).all()
    return {r[0] for r in rows}


def create_partitions(conn: sa.Connection, layer: Layer, starts: set[dt.datetime]) -> set[str]:
    """Create the monthly partitions starting at ``starts`` that do not exist yet; returns every partition name.

    Rows already in the DEFAULT partition for such a month (written by other tools) move into the new partition:
    the default is detached, the partition created, the rows moved and the default attached again.
    """
    raw = pg_copy.driver_connection(conn)
    parent, default = sql.Identifier(layer.id), sql.Identifier(default_partition(layer.id))
    raw.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(parent))
    names = existing_partitions(conn, layer)
    key = sql.Identifier(PARTITIONED[layer.id])
    for start in sorted(starts):
        if partition_name(layer.id, start) in names:
            continue
        in_range = sql.SQL("{} >= {} AND {} < {}").format(key, sql.Literal(start), key, sql.Literal(next_month(start)))
        stranded = raw.execute(sql.SQL("SELECT 1 FROM {} WHERE {} LIMIT 1").format(default, in_range)).fetchone()
        if stranded:
            raw.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(parent, default))
        raw.execute(partition_ddl(layer.id, start))
        if stranded:
            raw.execute(sql.SQL("INSERT INTO {} SELECT * FROM {} WHERE {}").format(parent, default, in_range))
            raw.execute(sql.SQL("DELETE FROM {} WHERE {}").format(default, in_range))
            raw.execute(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} DEFAULT").format(parent, default))
        names.add(partition_name(layer.id, start))
    return names


def bump_version(conn: sa.Connection, layer: Layer) -> None:
    """Count one more change of the layer (call it last in the write transaction: it locks the counter row)."""
    versions = METADATA.tables[VERSIONS_TABLE]
    statement = pg_insert(versions).values(layer_id=layer.id, version=1)
    statement = statement.on_conflict_do_update(index_elements=[versions.c.layer_id],
                                                set_={"version": versions.c.version + 1})
    conn.execute(statement)


def version(conn: sa.Connection, layer: Layer) -> int:
    """The layer's change counter (0 before its first write)."""
    versions = METADATA.tables[VERSIONS_TABLE]
    found = conn.execute(sa.select(versions.c.version).where(versions.c.layer_id == layer.id)).scalar_one_or_none()
    return int(found or 0)


def conflict(layer: Layer, err: BaseException) -> Conflict:
    """A readable ``Conflict`` for a violated unique constraint."""
    diag = getattr(getattr(err, "orig", err), "diag", None)
    name = getattr(diag, "constraint_name", None) or ""
    for constraint in METADATA.tables[layer.id].constraints:
        # a partition's copy of a constraint is named after the partition: readings_p2026_11_sensor_id_ts_key
        suffix = str(constraint.name).removeprefix(layer.id)
        if name and (name == constraint.name or (name.startswith(layer.id) and name.endswith(suffix))):
            if isinstance(constraint, sa.PrimaryKeyConstraint):
                return Conflict(f"{layer.id} already has a row with the same {layer.key}")
            columns = ", ".join(c.name for c in getattr(constraint, "columns", ()))
            return Conflict(f"{layer.id} already has a row with the same {columns}")
    detail = getattr(diag, "message_detail", None) or str(getattr(err, "orig", err)).splitlines()[0]
    return Conflict(f"{layer.id}: {detail}")
