"""Bulk writes into PostGIS with ``COPY … FROM STDIN``: normalized frames encoded as CSV by Arrow, or binary.

A normalized frame (:func:`twin.validate.normalize_frame`) becomes an Arrow table, one whole column at a time:
geometries as hex EWKB with SRID 4326 (``geometry_in`` parses it directly), datetimes as ISO text with a ``Z``,
dates as ``YYYY-MM-DD``, booleans as ``true``/``false``, nulls as unquoted empty fields and every present value
quoted (so an empty string stays an empty string). Arrow's C++ CSV writer does the formatting, and psycopg
streams the chunks to the server, so loading costs no per-row Python work and bounded memory.
"""

from __future__ import annotations

import binascii
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import shapely
import sqlalchemy as sa
from psycopg import sql

from layers import FieldType, Layer
from twin.store.pg_schema import GEOMETRY_COLUMN, SRID

#: Rows per CSV chunk sent to the server (bounds memory on million-row loads).
CHUNK_ROWS = 50_000
_WRITE_OPTIONS = pa_csv.WriteOptions(include_header=False, quoting_style="all_valid", batch_size=8192)


def driver_connection(conn: sa.Connection) -> psycopg.Connection[tuple[object, ...]]:
    """The psycopg connection under a SQLAlchemy connection (same session, same transaction)."""
    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    return raw


def _arrow_column(kind: FieldType, column: pd.Series) -> pa.Array:
    if kind is FieldType.REAL:
        return pa.array(column.to_numpy(dtype="float64", na_value=np.nan), type=pa.float64(), from_pandas=True)
    if kind is FieldType.DATE:
        return pa.array(column.to_numpy(dtype=object), type=pa.date32(), from_pandas=True)
    if kind is FieldType.DATETIME:
        return pa.array(column, type=pa.timestamp("ms", tz="UTC"), from_pandas=True)
    types = {FieldType.INTEGER: pa.int64(), FieldType.TEXT: pa.large_string(), FieldType.BOOLEAN: pa.bool_()}
    return pa.array(column, type=types[kind], from_pandas=True)


def ewkb_hex(geoms: np.ndarray, *, has_z: bool, srid: int = SRID) -> pa.Array:
    """``SRID=<srid>;<hex WKB>`` of shapely geometries (PostGIS's text input), as an Arrow string array.

    shapely writes the WKB in one C call, ``binascii`` turns the whole buffer into hex digits at once and Arrow prepends
    the SRID: several times faster than ``shapely.to_wkb(hex=True, include_srid=True)``, with no Python string
    per geometry.
    """
    wkb = pa.array(shapely.to_wkb(geoms, output_dimension=3 if has_z else 2, byte_order=1, flavor="extended"),
                   type=pa.large_binary())
    n = len(wkb)
    offsets = np.frombuffer(wkb.buffers()[1], dtype=np.int64)[wkb.offset : wkb.offset + n + 1]
    data = np.frombuffer(wkb.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    digits = binascii.hexlify(data.data)
    hexes = pa.LargeStringArray.from_buffers(n, pa.py_buffer((offsets - offsets[0]) * 2), pa.py_buffer(digits))
    prefix = pa.scalar(f"SRID={srid};", type=pa.large_string())
    return pc.binary_join_element_wise(prefix, hexes, pa.scalar("", type=pa.large_string()))


@dataclass(frozen=True)
class Payload:
    """Rows ready for COPY: the columns, in CSV (an Arrow table, written in chunks) or PostgreSQL binary format."""

    columns: list[str]
    rows: int
    csv: pa.Table | None = None
    binary: bytes | None = None


def encode(layer: Layer, frame: pd.DataFrame, ids: np.ndarray | None) -> Payload:
    """The frame's rows for COPY (the key first when ``ids`` is given).

    Fields that are null in every row are left out, so the server fills in NULL (and loads read less). Frames of
    fixed-width columns only without nulls (readings, the ingest hot path) go in PostgreSQL's binary format, built
    with one numpy record array; everything else as CSV.
    """
    binary = _binary(layer, frame, ids)
    if binary is not None:
        return binary
    names: list[str] = []
    arrays: list[pa.Array] = []
    if ids is not None:
        names.append(layer.key)
        arrays.append(pa.array(np.asarray(ids, dtype="int64")))
    if layer.is_spatial and isinstance(frame, gpd.GeoDataFrame):
        names.append(GEOMETRY_COLUMN)
        arrays.append(ewkb_hex(np.asarray(frame.geometry.to_numpy(), dtype=object), has_z=layer.has_z))
    for field in layer.fields:
        if field.name not in frame.columns:  # a partial frame (update_many): only the fields it changes
            continue
        column = frame[field.name]
        if len(column) and column.isna().all():
            continue
        names.append(field.name)
        arrays.append(_arrow_column(field.type, column))
    return Payload(names, len(frame), csv=pa.Table.from_arrays(arrays, names=names))


_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
_BINARY_TRAILER = b"\xff\xff"
_PG_EPOCH = np.datetime64("2000-01-01T00:00:00", "ms")


def _fixed_width(kind: FieldType, column: pd.Series) -> tuple[str, np.ndarray] | None:
    """The big-endian binary COPY format and values of a column without nulls, ``None`` for variable widths."""
    if kind is FieldType.INTEGER:
        return ">i8", column.to_numpy(dtype="int64")
    if kind is FieldType.REAL:
        return ">f8", column.to_numpy(dtype="float64")
    if kind is FieldType.BOOLEAN:
        return "u1", column.to_numpy(dtype=bool).astype("u1")
    if kind is FieldType.DATE:  # days since 2000-01-01
        days = np.array(column.to_numpy(dtype=object), dtype="datetime64[D]")
        return ">i4", (days - _PG_EPOCH.astype("datetime64[D]")).astype("int32")
    if kind is FieldType.DATETIME:  # microseconds since 2000-01-01 UTC
        stamps = column.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ms]")
        return ">i8", (stamps - _PG_EPOCH).astype("int64") * 1000
    return None


def _binary(layer: Layer, frame: pd.DataFrame, ids: np.ndarray | None) -> Payload | None:
    if layer.is_spatial and isinstance(frame, gpd.GeoDataFrame):
        return None
    names: list[str] = []
    parts: list[tuple[str, np.ndarray]] = []
    if ids is not None:
        names.append(layer.key)
        parts.append((">i8", np.asarray(ids, dtype="int64")))
    for field in layer.fields:
        if field.name not in frame.columns:
            continue
        column = frame[field.name]
        null = column.isna().to_numpy()
        if len(column) and null.all():
            continue
        encoded = None if null.any() else _fixed_width(field.type, column)
        if encoded is None:
            return None
        names.append(field.name)
        parts.append(encoded)
    layout = [("fields", ">i2")]
    for i, (fmt, _) in enumerate(parts):
        layout += [(f"size{i}", ">i4"), (f"value{i}", fmt)]
    records = np.empty(len(frame), dtype=np.dtype(layout))
    records["fields"] = len(parts)
    for i, (fmt, values) in enumerate(parts):
        records[f"size{i}"] = np.dtype(fmt).itemsize
        records[f"value{i}"] = values
    return Payload(names, len(frame), binary=_BINARY_HEADER + records.tobytes() + _BINARY_TRAILER)


def csv_chunks(table: pa.Table, chunk_rows: int = CHUNK_ROWS) -> Iterator[bytes]:
    """CSV bytes of ``table`` in chunks of ``chunk_rows`` rows."""
    for start in range(0, table.num_rows, chunk_rows):
        sink = io.BytesIO()
        pa_csv.write_csv(table.slice(start, chunk_rows), sink, _WRITE_OPTIONS)
        yield sink.getvalue()


def copy_statement(table: str, columns: Sequence[str], fmt: str = "csv") -> sql.Composed:
    """``COPY "table" ("c1", …) FROM STDIN WITH (FORMAT csv|binary)``."""
    assert fmt in ("csv", "binary")
    return sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT " + fmt + ")").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns))


def copy_in(conn: sa.Connection, table: str, payload: Payload) -> int:
    """Stream ``payload`` into ``table`` with COPY inside the connection's transaction; returns the rows copied."""
    if payload.rows == 0:
        return 0
    fmt = "binary" if payload.binary is not None else "csv"
    with driver_connection(conn).cursor() as cursor, \
            cursor.copy(copy_statement(table, payload.columns, fmt)) as copy:
        if payload.binary is not None:
            copy.write(payload.binary)
        else:
            assert payload.csv is not None
            for chunk in csv_chunks(payload.csv):
                copy.write(chunk)
    return payload.rows
