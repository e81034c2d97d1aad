"""GeoPackage binary geometries: the ``GP`` header with its envelope, followed by ISO WKB.

Encoding and decoding work on whole arrays through ``shapely.to_wkb`` / ``shapely.from_wkb``; the only per-row
Python work is gluing a fixed 40-byte header to each WKB string, or cutting it off again.

The header (GeoPackage 1.4, clause 2.1.3) is ``magic "GP"``, ``version 0``, a flags byte, the ``int32`` srs id and
an optional envelope. We always write little-endian headers with an xy envelope ``[minx, maxx, miny, maxy]``
(flags ``0b00000011``), so the R-tree trigger functions read the bounds straight from the header. Blobs written by
other software may have no envelope, a z/m envelope or big-endian headers; the decoder handles all of them.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Callable, Sequence

import numpy as np
import shapely

MAGIC = b"GP"
_FLAG_LITTLE_ENDIAN = 0b0000_0001
_FLAG_ENVELOPE_XY = 0b0000_0010  # envelope indicator 1, shifted left by one
_FLAG_EMPTY = 0b0001_0000
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
#: Header length in bytes for every possible flags byte.
_HEADER_LENGTH = tuple(8 + _ENVELOPE_BYTES.get((flags >> 1) & 0b111, 0) for flags in range(256))
HEADER_DTYPE = np.dtype(
    [("magic", "S2"), ("version", "u1"), ("flags", "u1"), ("srs_id", "<i4"), ("envelope", "<f8", (4,))]
)
HEADER_BYTES = HEADER_DTYPE.itemsize  # 40


def encode(geoms: np.ndarray, *, srs_id: int = 4326, has_z: bool = False) -> tuple[list[bytes | None], np.ndarray]:
    """GeoPackage blobs for an array of shapely geometries, and their ``(n, 4)`` bounds ``minx, miny, maxx, maxy``.

    Missing geometries become ``None``; empty ones carry the empty flag and a NaN envelope.
    """
    geoms = np.asarray(geoms, dtype=object)
    wkb = shapely.to_wkb(geoms, output_dimension=3 if has_z else 2, byte_order=1, flavor="iso")
    bounds = shapely.bounds(geoms)
    header = np.zeros(len(geoms), dtype=HEADER_DTYPE)
    header["magic"] = MAGIC
    header["flags"] = np.where(shapely.is_empty(geoms), _FLAG_EMPTY, 0) | _FLAG_LITTLE_ENDIAN | _FLAG_ENVELOPE_XY
    header["srs_id"] = srs_id
    header["envelope"] = bounds[:, [0, 2, 1, 3]]
    raw = memoryview(header.tobytes())
    size = HEADER_BYTES
    blobs = [None if w is None else bytes(raw[i * size : (i + 1) * size]) + w for i, w in enumerate(wkb.tolist())]
    return blobs, bounds


def encode_one(geom: shapely.Geometry | None, *, srs_id: int = 4326, has_z: bool = False) -> bytes | None:
    """The GeoPackage blob of one geometry."""
    return encode(np.array([geom], dtype=object), srs_id=srs_id, has_z=has_z)[0][0]


def decode(blobs: Sequence[bytes | None]) -> np.ndarray:
    """Shapely geometries (an object array) from GeoPackage blobs; ``None`` stays missing."""
    lengths = _HEADER_LENGTH
    first = next((b for b in blobs if b is not None), None)
    if first is not None and first[:2] != MAGIC:
        raise ValueError("not a GeoPackage geometry blob (no 'GP' magic)")
    wkb = np.array([None if b is None else b[lengths[b[3]] :] for b in blobs], dtype=object)
    return shapely.from_wkb(wkb)


def envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
    """``(minx, maxx, miny, maxy)`` of a blob, from its header when it has one; ``None`` for null or empty."""
    if blob is None or len(blob) < 8 or blob[:2] != MAGIC:
        return None
    flags = blob[3]
    if flags & _FLAG_EMPTY:
        return None
    order = "<" if flags & _FLAG_LITTLE_ENDIAN else ">"
    if (flags >> 1) & 0b111:
        values = struct.unpack_from(order + "4d", blob, 8)
        return values[0], values[1], values[2], values[3]
    geom = shapely.from_wkb(blob[8:])
    if geom.is_empty:
        return None
    minx, miny, maxx, maxy = geom.bounds
    return minx, maxx, miny, maxy


def _is_empty(blob: bytes | None) -> int | None:
    if blob is None:
        return None
    return 1 if envelope(blob) is None else 0


def _bound(index: int) -> Callable[[bytes | None], float | None]:
    def bound(blob: bytes | None) -> float | None:
        env = envelope(blob)
        return None if env is None else env[index]

    return bound


def register_functions(conn: sqlite3.Connection) -> None:
    """Define ``ST_IsEmpty`` and ``ST_MinX/MaxX/MinY/MaxY``, which the GeoPackage R-tree triggers call.

    GDAL provides these in its own connections; plain ``sqlite3`` does not, so every connection we open
    registers them before it writes.
    """
    conn.create_function("ST_IsEmpty", 1, _is_empty, deterministic=True)
    for index, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        conn.create_function(name, 1, _bound(index), deterministic=True)
