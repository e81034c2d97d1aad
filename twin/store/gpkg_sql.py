r"""Attribute filters, time ranges and sort keys as parameterised SQLite ``WHERE`` / ``ORDER BY`` clauses.

Identifiers come only from the catalogue and are always quoted; values always travel as parameters. The storage
encodings match :mod:`twin.store.gpkg_codec`: DATETIME as ``YYYY-MM-DDTHH:MM:SS.fffZ`` text (so text order is time
order), DATE as ``YYYY-MM-DD``, BOOLEAN as 0/1.

Semantics both stores share: comparisons and ``<>`` never match NULL; ``like`` is case-sensitive with ``%`` and
``_`` wildcards and ``\\`` as the escape character (PostgreSQL's default), and applies to text fields only; sorting
puts NULLs last in either direction and breaks ties by ascending id; instants compare at millisecond precision,
the precision the store keeps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd

from layers import Field, FieldType, Layer
from twin.errors import InvalidQuery
from twin.store.base import Filter, Op, Sort, TimeRange
from twin.store.gpkg_schema import quote
from twin.values import coerce_value, parse_instant

_COMPARISONS = {Op.EQ: "=", Op.NE: "<>", Op.LT: "<", Op.LE: "<=", Op.GT: ">", Op.GE: ">="}


def format_instant(stamp: pd.Timestamp | dt.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.fffZ`` (the GeoPackage datetime format) of an aware instant, truncated to the ms."""
    stamp = pd.Timestamp(stamp).tz_convert("UTC")
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def key_field(layer: Layer) -> Field:
    """The layer's key as an INTEGER field, so filters and sorts on ``id`` go through the same code."""
    return Field(layer.key, FieldType.INTEGER, "编号", "Id")


def lookup(layer: Layer, name: str) -> Field:
    """The field called ``name`` (the key included), or ``InvalidQuery``."""
    if name == layer.key:
        return key_field(layer)
    if not layer.has_field(name):
        raise InvalidQuery(f"layer {layer.id!r} has no field {name!r}")
    return layer.field(name)


def storage_value(field: Field, value: Any) -> Any:
    """A coerced Python value as SQLite stores it for ``field``."""
    if value is None:
        return None
    if field.type is FieldType.BOOLEAN:
        return int(bool(value))
    if field.type is FieldType.DATE:
        return value.isoformat()
    if field.type is FieldType.DATETIME:
        return format_instant(value)
    return value


def _instant(value: Any, op: Op) -> str:
    """An instant as stored text, rounded so that a millisecond-precision column compares exactly."""
    stamp = parse_instant(value)
    rounded = stamp.ceil("ms") if op in (Op.GE, Op.LT) else stamp.floor("ms")
    return format_instant(rounded)


def _parameter(field: Field, value: Any, op: Op) -> Any:
    if value is None:
        raise InvalidQuery(f"filter on {field.name!r} compares with null; use is_null / not_null")
    try:
        if field.type is FieldType.DATETIME:
            return _instant(value, op)
        return storage_value(field, coerce_value(field, value))
    except ValueError as err:
        raise InvalidQuery(f"filter on {field.name!r}: {err}") from None


def like_to_glob(pattern: str) -> str:
    r"""A LIKE pattern (``%``, ``_``, ``\\`` escape) as an equivalent, case-sensitive SQLite GLOB pattern."""
    out: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            out.append(f"[{char}]" if char in "*?[" else char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        elif char in "*?[":
            out.append(f"[{char}]")
        else:
            out.append(char)
    if escaped:
        out.append("\\")
    return "".join(out)


def filter_clause(layer: Layer, item: Filter, alias: str = "t") -> tuple[str, list[Any]]:
    """One filter as SQL with its parameters."""
    field = lookup(layer, item.field)
    column = f"{alias}.{quote(field.name)}"
    try:
        op = Op(item.op)
    except ValueError:
        raise InvalidQuery(f"unknown operator {item.op!r}; use one of {', '.join(o.value for o in Op)}") from None
    if op is Op.IS_NULL:
        return f"{column} IS NULL", []
    if op is Op.NOT_NULL:
        return f"{column} IS NOT NULL", []
    if op is Op.LIKE:
        if field.type is not FieldType.TEXT:
            raise InvalidQuery(f"'like' needs a text field; {field.name!r} is {field.type.value}")
        if not isinstance(item.value, str):
            raise InvalidQuery(f"'like' on {field.name!r} needs a text pattern")
        return f"{column} GLOB ?", [like_to_glob(item.value)]
    if op is Op.IN:
        if isinstance(item.value, str | bytes) or not isinstance(item.value, Sequence):
            raise InvalidQuery(f"'in' on {field.name!r} needs a list of values")
        values = [_parameter(field, v, Op.EQ) for v in item.value]
        if not values:
            return "0", []
        return f"{column} IN ({', '.join('?' * len(values))})", values
    return f"{column} {_COMPARISONS[op]} ?", [_parameter(field, item.value, op)]


def time_clause(layer: Layer, time: TimeRange | None, alias: str = "t") -> tuple[list[str], list[Any]]:
    """The closed interval on the layer's temporal field."""
    if time is None:
        return [], []
    if layer.temporal_field is None:
        raise InvalidQuery(f"layer {layer.id!r} has no time field; it takes no datetime filter")
    column = f"{alias}.{quote(layer.temporal_field)}"
    clauses: list[str] = []
    params: list[Any] = []
    if time.start is not None:
        clauses.append(f"{column} >= ?")
        params.append(_instant(time.start, Op.GE))
    if time.end is not None:
        clauses.append(f"{column} <= ?")
        params.append(_instant(time.end, Op.LE))
    return clauses, params


def where_clause(
    layer: Layer, filters: Sequence[Filter] = (), time: TimeRange | None = None, alias: str = "t",
    extra: Sequence[tuple[str, Sequence[Any]]] = (),
) -> tuple[str, list[Any]]:
    """``WHERE …`` (or ``""``) joining the filters, the time range and any ``extra`` clauses with AND."""
    clauses: list[str] = []
    params: list[Any] = []
    for sql, values in extra:
        clauses.append(sql)
        params.extend(values)
    for item in filters:
        sql, values = filter_clause(layer, item, alias)
        clauses.append(sql)
        params.extend(values)
    time_sql, time_params = time_clause(layer, time, alias)
    clauses.extend(time_sql)
    params.extend(time_params)
    return ("WHERE " + " AND ".join(f"({c})" for c in clauses)) if clauses else "", params


def order_clause(layer: Layer, sort: Sequence[Sort] = (), alias: str = "t") -> str:
    """``ORDER BY`` the sort keys (NULLs last), then the key ascending."""
    keys = []
    for item in sort:
        field = lookup(layer, item.field)
        keys.append(f"{alias}.{quote(field.name)} {'DESC' if item.descending else 'ASC'} NULLS LAST")
    keys.append(f"{alias}.{quote(layer.key)} ASC")
    return "ORDER BY " + ", ".join(keys)
