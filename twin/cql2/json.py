"""A reader for CQL2 JSON (OGC 21-065), producing the same AST as the text parser.

Input is a JSON document (text) or an already decoded object. Errors raise
:class:`~twin.cql2.ast.CqlSyntaxError` whose position is a JSON pointer to the offending member (``/args/1``), or
the 1-based character position when the text is not JSON at all. Operator names are case-insensitive
(``isNull``, ``t_metBy``).

>>> parse('{"op": "<", "args": [{"property": "height_m"}, 24]}')
Comparison(op=<CompOp.LT: '<'>, left=Property(name='height_m'), right=Literal(value=24))
"""

from __future__ import annotations

import json
from typing import Any

from twin.cql2 import ast
from twin.cql2.geometry import date_value, from_geojson, instant_value, make_bbox

_COMPARISONS = {op.value: op for op in ast.CompOp}
_SPATIAL = {op.value: op for op in ast.SpatialOp}
_TEMPORAL = {op.value: op for op in ast.TemporalOp}
_GEOJSON_TYPES = {"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon",
                  "GeometryCollection"}


def parse(document: str | bytes | dict[str, Any] | bool) -> ast.Expr:
    """Read a CQL2 JSON filter (text or decoded) into an expression."""
    too_deep = f"the filter nests deeper than {_MAX_CONTAINERS} arrays and objects"
    if isinstance(document, str | bytes):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as err:
            raise ast.CqlSyntaxError(f"not JSON: {err.msg}", err.pos + 1) from None
        except RecursionError:
            raise ast.CqlSyntaxError(too_deep, "/") from None
    if _depth(document) > _MAX_CONTAINERS:
        raise ast.CqlSyntaxError(too_deep, "/")
    return _expr(document, "")


#: Each level of the expression tree is an object and its ``args`` array.
_MAX_CONTAINERS = 2 * ast.MAX_NESTING + 8  # and room for GeoJSON coordinates


def _depth(document: object) -> int:
    """How deeply arrays and objects nest in a decoded JSON document (without recursing)."""
    deepest = 0
    stack = [(document, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if level <= _MAX_CONTAINERS:
            stack.extend((child, level + 1) for child in children)
    return deepest


def _fail(message: str, pointer: str) -> ast.CqlSyntaxError:
    return ast.CqlSyntaxError(message, pointer or "/")


def _args(node: dict[str, Any], pointer: str, count: int | None) -> list[Any]:
    args = node.get("args")
    if not isinstance(args, list):
        raise _fail(f"operator {node.get('op')!r} needs an 'args' array", pointer)
    if count is not None and len(args) != count:
        raise _fail(f"operator {node['op']!r} takes {count} arguments, got {len(args)}", f"{pointer}/args")
    return args


def _expr(node: Any, pointer: str) -> ast.Expr:
    if isinstance(node, bool):
        return ast.Const(node)
    if not isinstance(node, dict) or not isinstance(node.get("op"), str):
        raise _fail("expected a boolean expression: an object with 'op' and 'args', true or false", pointer)
    op = node["op"].lower()
    at = f"{pointer}/args"
    if op in ("and", "or"):
        args = _args(node, pointer, None)
        if len(args) < 2:
            raise _fail(f"{op!r} needs at least two arguments", at)
        parts = tuple(_expr(a, f"{at}/{i}") for i, a in enumerate(args))
        return ast.And(parts) if op == "and" else ast.Or(parts)
    if op == "not":
        return ast.Not(_expr(_args(node, pointer, 1)[0], f"{at}/0"))
    if op in _COMPARISONS:
        left, right = _args(node, pointer, 2)
        return ast.Comparison(_COMPARISONS[op], _scalar(left, f"{at}/0"), _scalar(right, f"{at}/1"))
    if op == "like":
        value, pattern = _args(node, pointer, 2)
        return ast.Like(_scalar(value, f"{at}/0"), _scalar(pattern, f"{at}/1"))
    if op == "between":
        value, low, high = _args(node, pointer, 3)
        return ast.Between(_scalar(value, f"{at}/0"), _scalar(low, f"{at}/1"), _scalar(high, f"{at}/2"))
    if op == "in":
        value, items = _args(node, pointer, 2)
        if not isinstance(items, list) or not items:
            raise _fail("'in' needs a non-empty array of values as its second argument", f"{at}/1")
        values = tuple(_scalar(v, f"{at}/1/{i}") for i, v in enumerate(items))
        return ast.In(_scalar(value, f"{at}/0"), values)
    if op == "isnull":
        return ast.IsNull(_scalar(_args(node, pointer, 1)[0], f"{at}/0"))
    if op in _SPATIAL:
        left, right = _args(node, pointer, 2)
        return ast.SpatialPredicate(_SPATIAL[op], _spatial(left, f"{at}/0"), _spatial(right, f"{at}/1"))
    if op in _TEMPORAL:
        left, right = _args(node, pointer, 2)
        return ast.TemporalPredicate(_TEMPORAL[op], _temporal(left, f"{at}/0"), _temporal(right, f"{at}/1"))
    raise _fail(f"unknown or unsupported operator {node['op']!r}", f"{pointer}/op")


def _property(node: dict[str, Any], pointer: str) -> ast.Property:
    name = node["property"]
    if not isinstance(name, str) or not name:
        raise _fail("'property' must be a non-empty string", f"{pointer}/property")
    return ast.Property(name)


def _scalar(node: Any, pointer: str) -> ast.Scalar:
    if isinstance(node, bool | str):
        return ast.Literal(node)
    if isinstance(node, int | float):
        return ast.Literal(node)
    if isinstance(node, dict) and len(node) == 1:
        if "property" in node:
            return _property(node, pointer)
        if "date" in node or "timestamp" in node:
            return _instant(node, pointer)
    raise _fail("expected a property, a string, a number, a boolean, a date or a timestamp", pointer)


def _instant(node: dict[str, Any], pointer: str) -> ast.Literal:
    key = "date" if "date" in node else "timestamp"
    text = node[key]
    try:
        if not isinstance(text, str):
            raise ValueError(f"'{key}' must be a string")
        return ast.Literal(date_value(text) if key == "date" else instant_value(text))
    except ValueError as err:
        raise _fail(str(err), f"{pointer}/{key}") from None


def _temporal(node: Any, pointer: str) -> ast.TemporalOperand:
    if isinstance(node, dict) and len(node) == 1:
        if "property" in node:
            return _property(node, pointer)
        if "date" in node or "timestamp" in node:
            return _instant(node, pointer)
        if "interval" in node:
            ends = node["interval"]
            if not isinstance(ends, list) or len(ends) != 2:
                raise _fail("'interval' must be an array of two ends", f"{pointer}/interval")
            start, end = (_interval_end(v, f"{pointer}/interval/{i}") for i, v in enumerate(ends))
            return ast.Interval(start, end)
    raise _fail("expected a property, a date, a timestamp or an interval", pointer)


def _interval_end(node: Any, pointer: str) -> ast.Property | ast.Literal | None:
    if node == "..":
        return None
    if isinstance(node, str):
        try:
            return ast.Literal(date_value(node) if len(node) == 10 else instant_value(node))
        except ValueError as err:
            raise _fail(str(err), pointer) from None
    if isinstance(node, dict) and len(node) == 1:
        if "property" in node:
            return _property(node, pointer)
        if "date" in node or "timestamp" in node:
            return _instant(node, pointer)
    raise _fail("expected '..', a date or timestamp string, a date, a timestamp or a property", pointer)


def _spatial(node: Any, pointer: str) -> ast.SpatialOperand:
    if isinstance(node, dict):
        if set(node) == {"property"}:
            return _property(node, pointer)
        if set(node) == {"bbox"}:
            values = node["bbox"]
            if not isinstance(values, list) or not all(isinstance(v, int | float) for v in values):
                raise _fail("'bbox' must be an array of numbers", f"{pointer}/bbox")
            try:
                return ast.GeometryLiteral(make_bbox(values))
            except ValueError as err:
                raise _fail(str(err), f"{pointer}/bbox") from None
        if node.get("type") in _GEOJSON_TYPES:
            try:
                return ast.GeometryLiteral(from_geojson(node))
            except ValueError as err:
                raise _fail(str(err), pointer) from None
    raise _fail("expected a property, a GeoJSON geometry or a bbox", pointer)
