"""The protocol-buffer side of Mapbox Vector Tiles (``vector_tile.proto``, MVT 2.1), written with numpy.

Apart from names, keys, string values and floating-point values, everything in a tile is a varint: field keys,
lengths, feature ids, tags, geometry types and geometry commands. So a whole layer's features are laid out as one
uint64 array of such integers ("tokens") and varint-encoded in one vectorised pass (``encode_features``). A layer's
property columns become its deduplicated ``keys`` and ``values`` tables and each feature's tags
(``encode_properties``), the values typed string, int (sint when negative), uint, double, float or bool, and
ordered by how many features use them so that the commonest values get one-byte indices.
Nothing here knows about geometry; ``twin.tiles.encoder`` builds the command integers.

>>> encode_varints(np.array([1, 150, 300], dtype=np.uint64)).tobytes().hex()
'019601ac02'
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

U8 = npt.NDArray[np.uint8]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
Column: TypeAlias = npt.NDArray[np.generic] | pd.Series
Uniques: TypeAlias = npt.NDArray[np.generic] | pd.api.extensions.ExtensionArray

# Field keys, (field number << 3) | wire type; wire type 0 = varint, 1 = fixed64, 2 = length-delimited, 5 = fixed32.
TILE_LAYERS = 0x1A
LAYER_NAME, LAYER_FEATURES, LAYER_KEYS, LAYER_VALUES, LAYER_EXTENT, LAYER_VERSION = 0x0A, 0x12, 0x1A, 0x22, 0x28, 0x78
FEATURE_ID, FEATURE_TAGS, FEATURE_TYPE, FEATURE_GEOMETRY = 0x08, 0x12, 0x18, 0x22
VALUE_STRING, VALUE_FLOAT, VALUE_DOUBLE, VALUE_INT, VALUE_UINT, VALUE_SINT, VALUE_BOOL = (
    0x0A, 0x15, 0x19, 0x20, 0x28, 0x30, 0x38)

_LIMITS = [np.uint64(1 << (7 * k)) for k in range(1, 10)]


def varint(value: int) -> bytes:
    """The varint bytes of one non-negative integer below 2**64."""
    if not 0 <= value < 1 << 64:
        raise ValueError(f"varint out of range: {value}")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def length_delimited(key: int, payload: bytes) -> bytes:
    """A length-delimited field: its key, the payload's length and the payload."""
    return bytes((key,)) + varint(len(payload)) + payload


def varint_sizes(values: U64) -> I64:
    """Number of bytes (1–10) of the varint of each value."""
    sizes = np.ones(values.shape, dtype=np.int64)
    for limit in _LIMITS:
        above = values >= limit
        if not above.any():
            break
        sizes += above
    return sizes


def encode_varints(values: U64, sizes: I64 | None = None) -> U8:
    """The concatenated varints of ``values`` (uint64), as a uint8 array; ``sizes`` may pass ``varint_sizes``."""
    if sizes is None:
        sizes = varint_sizes(values)
    ends = np.cumsum(sizes)
    out = np.empty(int(ends[-1]) if len(ends) else 0, dtype=np.uint8)
    out[ends - sizes] = (values.astype(np.uint8) & 0x7F) | ((sizes > 1).view(np.uint8) << 7)
    longer, byte = np.flatnonzero(sizes > 1), 1  # then the further bytes of the (few) longer varints
    while len(longer):
        remaining = sizes[longer] - byte
        out[ends[longer] - remaining] = ((values[longer] >> np.uint64(7 * byte)).astype(np.uint8) & 0x7F) | (
            (remaining > 1).view(np.uint8) << 7)
        longer, byte = longer[remaining > 1], byte + 1
    return out


def zigzag(values: I64) -> U64:
    """ZigZag-encode signed integers (MVT geometry parameters and ``sint_value``): 0, -1, 1, -2 → 0, 1, 2, 3."""
    values = values.astype(np.int64, copy=False)
    return ((values << 1) ^ (values >> 63)).view(np.uint64)


def segment_positions(starts: I64, lengths: I64) -> I64:
    """Concatenated ``range(start, start + length)`` for each segment, without a Python loop."""
    total = int(lengths.sum())
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(total, dtype=np.int64)


def segment_sums(values: I64, lengths: I64) -> I64:
    """Sum of ``values`` over consecutive segments of the given lengths (zero-length segments sum to 0)."""
    cumulative = np.concatenate(([0], np.cumsum(values)))
    ends = np.cumsum(lengths)
    return cumulative[ends] - cumulative[ends - lengths]


def encode_features(
    types: I64,
    geometry: U64,
    geometry_counts: I64,
    tags: U64,
    tag_counts: I64,
    ids: U64 | None = None,
) -> bytes:
    """The ``features`` fields of a layer: for each feature, ``0x12 <length> Feature``.

    ``geometry`` holds the command integers of all features one after the other, ``geometry_counts[i]`` of them for
    feature ``i``; ``tags`` likewise holds the (key index, value index) pairs, ``tag_counts[i]`` integers per
    feature (features without tags get no ``tags`` field). ``types`` are 1 point, 2 line string, 3 polygon; ``ids``
    are written when given.
    """
    n = len(types)
    if n == 0:
        return b""
    geometry_sizes = varint_sizes(geometry)
    geometry_bytes = segment_sums(geometry_sizes, geometry_counts)
    tag_bytes = segment_sums(varint_sizes(tags), tag_counts)
    has_tags = tag_counts > 0
    body = 3 + varint_sizes(geometry_bytes.astype(np.uint64)) + geometry_bytes  # type (2 bytes) + geometry field
    body += np.where(has_tags, 1 + varint_sizes(tag_bytes.astype(np.uint64)) + tag_bytes, 0)
    token_counts = 6 + geometry_counts + np.where(has_tags, 2 + tag_counts, 0)
    if ids is not None:
        body += 1 + varint_sizes(ids)
        token_counts += 2

    ends = np.cumsum(token_counts)
    tokens = np.empty(int(ends[-1]), dtype=np.uint64)
    at = ends - token_counts
    tokens[at], tokens[at + 1] = LAYER_FEATURES, body
    at = at + 2
    if ids is not None:
        tokens[at], tokens[at + 1] = FEATURE_ID, ids
        at += 2
    tokens[at[has_tags]], tokens[at[has_tags] + 1] = FEATURE_TAGS, tag_bytes[has_tags]
    at += 2 * has_tags
    tokens[segment_positions(at, tag_counts)] = tags
    at += tag_counts
    tokens[at], tokens[at + 1], tokens[at + 2], tokens[at + 3] = FEATURE_TYPE, types, FEATURE_GEOMETRY, geometry_bytes
    tokens[segment_positions(at + 4, geometry_counts)] = geometry
    return encode_varints(tokens).tobytes()


def prefixed_payloads(tokens: U64, payload: U8, payload_lengths: I64) -> tuple[U8, I64]:
    """Rows of varint ``tokens`` (a 2-D array), each followed by its slice of the raw ``payload`` bytes.

    Returns the bytes and the length of each row's bytes.
    """
    sizes = varint_sizes(tokens.ravel())
    encoded = encode_varints(tokens.ravel(), sizes)
    prefix_lengths = sizes.reshape(tokens.shape).sum(axis=1)
    lengths = prefix_lengths + payload_lengths
    ends = np.cumsum(lengths)
    out = np.empty(int(ends[-1]) if len(ends) else 0, dtype=np.uint8)
    starts = ends - lengths
    out[segment_positions(starts, prefix_lengths)] = encoded
    out[segment_positions(starts + prefix_lengths, payload_lengths)] = payload
    return out, lengths


def _utf8(strings: npt.NDArray[np.object_]) -> tuple[U8, I64]:
    data = [s.encode() for s in strings]
    return (np.frombuffer(b"".join(data), dtype=np.uint8),
            np.fromiter(map(len, data), dtype=np.int64, count=len(data)))


def encode_strings(key: int, strings: npt.NDArray[np.object_]) -> bytes:
    """Length-delimited fields ``key <length> <utf-8>``, one per string (a layer's keys)."""
    payload, lengths = _utf8(strings)
    tokens = np.empty((len(strings), 2), dtype=np.uint64)
    tokens[:, 0], tokens[:, 1] = key, lengths
    return prefixed_payloads(tokens, payload, lengths)[0].tobytes()


def encode_values(kind: str, values: npt.NDArray[np.generic]) -> tuple[U8, I64]:
    """Layer ``values`` fields (``0x22 <length> Value``) for an array of values of one kind, and their lengths.

    Kinds: ``string`` (object array of str), ``double`` (float64), ``float`` (float32), ``int`` (int64; negative
    values are written as ``sint_value``, the others as ``int_value``), ``uint`` (uint64, ``uint_value``), ``bool``.
    """
    n = len(values)
    tokens = np.empty((n, 4), dtype=np.uint64)
    tokens[:, 0] = LAYER_VALUES
    if kind == "string":
        payload, lengths = _utf8(values.astype(object))
        unsigned = lengths.astype(np.uint64)
        tokens[:, 1], tokens[:, 2], tokens[:, 3] = 1 + varint_sizes(unsigned) + lengths, VALUE_STRING, unsigned
        return prefixed_payloads(tokens, payload, lengths)
    if kind in ("double", "float"):
        raw = values.astype("<f8" if kind == "double" else "<f4").view(np.uint8)
        width = 8 if kind == "double" else 4
        tokens[:, 1], tokens[:, 2] = 1 + width, VALUE_DOUBLE if kind == "double" else VALUE_FLOAT
        return prefixed_payloads(tokens[:, :3], raw, np.full(n, width, dtype=np.int64))
    if kind == "int":
        signed = values.astype(np.int64)
        negative = signed < 0
        tokens[:, 3] = np.where(negative, zigzag(signed), signed.view(np.uint64))
        tokens[:, 2] = np.where(negative, VALUE_SINT, VALUE_INT)
    elif kind == "uint":
        tokens[:, 2], tokens[:, 3] = VALUE_UINT, values.astype(np.uint64)
    elif kind == "bool":
        tokens[:, 2], tokens[:, 3] = VALUE_BOOL, values.astype(np.uint64)
    else:
        raise ValueError(f"unknown value kind {kind!r}")
    tokens[:, 1] = 1 + varint_sizes(tokens[:, 3])
    return prefixed_payloads(tokens, np.zeros(0, dtype=np.uint8), np.zeros(n, dtype=np.int64))


def encode_layer(name: str, features: bytes, keys: bytes, values: bytes, extent: int) -> bytes:
    """A ``layers`` field of a tile (``0x1a <length> Layer``), version 2, from already encoded parts."""
    body = b"".join((
        bytes((LAYER_VERSION, 2)),
        length_delimited(LAYER_NAME, name.encode()),
        features,
        keys,
        values,
        bytes((LAYER_EXTENT,)) + varint(extent),
    ))
    return length_delimited(TILE_LAYERS, body)



_KINDS = {"string": object, "int": np.int64, "uint": np.uint64, "double": np.float64, "float": np.float32,
          "bool": np.bool_}


def encode_properties(properties: Mapping[str, Column], rows: I64) -> tuple[bytes, bytes, U64, I64]:
    """A layer's ``keys`` and ``values`` fields and its features' tags, for the features at ``rows``.

    Keys and values are deduplicated per layer (a value of one kind once, whichever columns hold it); missing
    values give no tag. Returns (keys bytes, values bytes, tags, number of tag integers per feature).
    """
    names: list[str] = []
    codes: list[I64] = []
    maps: list[I64] = []
    pending: dict[str, list[tuple[int, I64, npt.NDArray[np.generic]]]] = {kind: [] for kind in _KINDS}
    for name, column in properties.items():
        column_codes, uniques = _factorize(column, rows)
        if len(uniques):
            for kind, positions, values in _classify(uniques):
                pending[kind].append((len(maps), positions, values))
            names.append(name)
            codes.append(column_codes)
            maps.append(np.empty(len(uniques), dtype=np.int64))

    encoded, lengths, offset = [], [], 0
    for kind, entries in pending.items():
        if entries:
            if len(entries) == 1:  # one column's uniques are unique already
                uniques = entries[0][2]
                value_codes = np.arange(len(uniques))
            else:
                value_codes, uniques = pd.factorize(np.concatenate([values for _, _, values in entries]))
            data, data_lengths = encode_values(kind, np.asarray(uniques, dtype=_KINDS[kind]))
            encoded.append(data)
            lengths.append(data_lengths)
            start = 0
            for column, positions, _ in entries:
                maps[column][positions] = offset + value_codes[start : start + len(positions)]
                start += len(positions)
            offset += len(uniques)

    matrix = np.full((len(rows), len(names)), -1, dtype=np.int64)
    for column, (column_codes, mapping) in enumerate(zip(codes, maps, strict=True)):
        present = column_codes >= 0
        matrix[present, column] = mapping[column_codes[present]]
    present = matrix >= 0
    used = matrix[present]
    # Commonest values first, so that most tags are one-byte varints.
    order = np.argsort(-np.bincount(used, minlength=offset), kind="stable")
    rank = np.empty(offset, dtype=np.int64)
    rank[order] = np.arange(offset)
    key_index = np.broadcast_to(np.arange(len(names)), matrix.shape)
    tags = np.stack((key_index[present], rank[used]), axis=1).ravel().astype(np.uint64)
    table = b""
    if offset:
        value_lengths = np.concatenate(lengths)
        starts = np.cumsum(value_lengths) - value_lengths
        table = np.concatenate(encoded)[segment_positions(starts[order], value_lengths[order])].tobytes()
    keys = encode_strings(LAYER_KEYS, np.array(names, dtype=object))
    return keys, table, tags, 2 * present.sum(axis=1)


def _factorize(column: Column, rows: I64) -> tuple[I64, Uniques]:
    """Codes (-1 where missing) and unique values of a column at the given rows."""
    values = column.array[rows] if isinstance(column, pd.Series) else np.asarray(column)[rows]
    if values.dtype != object or pd.api.types.infer_dtype(values, skipna=True) not in (
            "mixed", "mixed-integer", "mixed-integer-float"):
        codes, uniques = pd.factorize(values)
        return codes, uniques
    # Hashing alone would merge True with 1 and False with 0: factorize booleans apart.
    is_bool = np.fromiter((isinstance(v, bool | np.bool_) for v in values), dtype=bool, count=len(values))
    bool_codes, bool_uniques = pd.factorize(values[is_bool])
    other_codes, other_uniques = pd.factorize(values[~is_bool])
    codes = np.empty(len(values), dtype=np.int64)
    codes[is_bool] = bool_codes
    codes[~is_bool] = np.where(other_codes >= 0, other_codes + len(bool_uniques), -1)
    return codes, np.concatenate((np.asarray(bool_uniques, dtype=object), np.asarray(other_uniques, dtype=object)))


def _classify(uniques: Uniques) -> list[tuple[str, I64, npt.NDArray[np.generic]]]:
    """Split a column's unique values by MVT value kind: (kind, positions among the uniques, values)."""
    values = uniques.to_numpy() if isinstance(uniques, pd.api.extensions.ExtensionArray | pd.Index) else (
        np.asarray(uniques))
    every = np.arange(len(values))
    kind = values.dtype.kind
    if kind == "b":
        return [("bool", every, values)]
    if kind in "iu":
        big = values >= 2**63 if kind == "u" else np.zeros(len(values), dtype=bool)
        return [(k, np.flatnonzero(m), values[m]) for k, m in (("int", ~big), ("uint", big)) if m.any()]
    if kind == "f":
        return [("float" if values.dtype == np.float32 else "double", every, values)]
    inferred = pd.api.types.infer_dtype(values, skipna=True) if kind == "O" else ""
    if inferred == "string":
        return [("string", every, values)]
    if inferred == "integer" and len(values) and values.min() >= -(2**63) and values.max() < 2**63:
        return [("int", every, values.astype(np.int64))]  # integers as fetched from a database: one kind
    if kind != "O":  # numpy strings, dates and anything else: written as text
        return [("string", every, values.astype(str).astype(object))]
    kinds = np.array([_kind_of(v) for v in values])
    return [(k, np.flatnonzero(kinds == k), np.array([v if k != "string" else str(v) for v in values[kinds == k]],
                                                     dtype=_KINDS[k]))
            for k in _KINDS if (kinds == k).any()]


def _kind_of(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, numbers.Integral):
        if -(2**63) <= int(value) < 2**63:
            return "int"
        if 0 <= int(value) < 2**64:
            return "uint"
        raise ValueError(f"integer property value out of the 64-bit range: {value}")
    if isinstance(value, np.float32):
        return "float"
    if isinstance(value, numbers.Real):
        return "double"
    return "string"
