"""Lowering: rewrite a CQL2 expression into the few node types every store translates, checked against a layer.

After :func:`lower` an expression holds only ``And Or Not Const Comparison Like In IsNull SpatialPredicate``, and:

* every ``Comparison`` has a property on the left (operands were swapped and the operator flipped), and a
  property-property comparison relates fields of one type family;
* ``Like`` and ``In`` have a property on the left and literals on the right;
* every ``SpatialPredicate`` is ``op(Property("geometry"), GeometryLiteral)``;
* ``Between`` became two comparisons, temporal predicates became comparisons of interval ends (see
  :mod:`twin.cql2.ast` for the table), and anything made of literals only was evaluated to a ``Const``.

An open interval end compared with a property becomes ``p = p`` (true unless ``p`` is NULL) or ``p <> p`` (false
unless NULL), which keeps three-valued logic exact. Names, types and shapes the layer cannot answer raise
``InvalidQuery``.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Callable
from typing import Any

import shapely

from layers import FieldType, Layer
from twin.cql2 import ast
from twin.errors import InvalidQuery

_FLIP = {ast.CompOp.EQ: ast.CompOp.EQ, ast.CompOp.NE: ast.CompOp.NE, ast.CompOp.LT: ast.CompOp.GT,
         ast.CompOp.LE: ast.CompOp.GE, ast.CompOp.GT: ast.CompOp.LT, ast.CompOp.GE: ast.CompOp.LE}
_PYTHON_OPS: dict[ast.CompOp, Callable[[Any, Any], bool]] = {
    ast.CompOp.EQ: operator.eq, ast.CompOp.NE: operator.ne, ast.CompOp.LT: operator.lt,
    ast.CompOp.LE: operator.le, ast.CompOp.GT: operator.gt, ast.CompOp.GE: operator.ge,
}
_SPATIAL_CONVERSE = {ast.SpatialOp.WITHIN: ast.SpatialOp.CONTAINS, ast.SpatialOp.CONTAINS: ast.SpatialOp.WITHIN}
_SHAPELY = {
    ast.SpatialOp.INTERSECTS: shapely.intersects, ast.SpatialOp.EQUALS: shapely.equals,
    ast.SpatialOp.DISJOINT: shapely.disjoint, ast.SpatialOp.TOUCHES: shapely.touches,
    ast.SpatialOp.WITHIN: shapely.within, ast.SpatialOp.OVERLAPS: shapely.overlaps,
    ast.SpatialOp.CROSSES: shapely.crosses, ast.SpatialOp.CONTAINS: shapely.contains,
}
_FAMILY = {FieldType.INTEGER: "number", FieldType.REAL: "number", FieldType.TEXT: "text",
           FieldType.BOOLEAN: "boolean", FieldType.DATE: "date", FieldType.DATETIME: "timestamp"}
_END_OF_DAY = dt.timedelta(days=1, milliseconds=-1)

# Allen's relations as (a-end, op, b-end) triples joined by AND ("or" for t_disjoint); 0 = start, 1 = end.
_ALLEN: dict[ast.TemporalOp, tuple[str, tuple[tuple[int, str, int], ...]]] = {
    ast.TemporalOp.AFTER: ("and", ((0, ">", 1),)),
    ast.TemporalOp.BEFORE: ("and", ((1, "<", 0),)),
    ast.TemporalOp.CONTAINS: ("and", ((0, "<", 0), (1, ">", 1))),
    ast.TemporalOp.DISJOINT: ("or", ((0, ">", 1), (1, "<", 0))),
    ast.TemporalOp.DURING: ("and", ((0, ">", 0), (1, "<", 1))),
    ast.TemporalOp.EQUALS: ("and", ((0, "=", 0), (1, "=", 1))),
    ast.TemporalOp.FINISHEDBY: ("and", ((0, "<", 0), (1, "=", 1))),
    ast.TemporalOp.FINISHES: ("and", ((0, ">", 0), (1, "=", 1))),
    ast.TemporalOp.INTERSECTS: ("and", ((0, "<=", 1), (1, ">=", 0))),
    ast.TemporalOp.MEETS: ("and", ((1, "=", 0),)),
    ast.TemporalOp.METBY: ("and", ((0, "=", 1),)),
    ast.TemporalOp.OVERLAPPEDBY: ("and", ((0, ">", 0), (0, "<", 1), (1, ">", 1))),
    ast.TemporalOp.OVERLAPS: ("and", ((0, "<", 0), (1, ">", 0), (1, "<", 1))),
    ast.TemporalOp.STARTEDBY: ("and", ((0, "=", 0), (1, ">", 1))),
    ast.TemporalOp.STARTS: ("and", ((0, "=", 0), (1, "<", 1))),
}


class _Infinity:
    """An open interval end: ``sign`` -1 before every instant, +1 after."""

    def __init__(self, sign: int):
        self.sign = sign


_NEG, _POS = _Infinity(-1), _Infinity(1)
_End = ast.Property | ast.Literal | _Infinity


def lower(expr: ast.Expr, layer: Layer) -> ast.Expr:
    """``expr`` rewritten for a store (see the module docstring); ``InvalidQuery`` if ``layer`` cannot answer it."""
    return _Lowering(layer).expr(expr)


def field_type(layer: Layer, name: str) -> FieldType:
    """The type of a queryable property (the key is an integer); ``InvalidQuery`` for an unknown name."""
    if name == layer.key:
        return FieldType.INTEGER
    if layer.has_field(name):
        return layer.field(name).type
    if name == ast.GEOMETRY_PROPERTY and layer.is_spatial:
        raise InvalidQuery(f"'{name}' can only be used in a spatial function (s_intersects, …)")
    raise InvalidQuery(f"layer {layer.id!r} has no queryable property {name!r}")


def _literal_family(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dt.datetime):
        return "timestamp"
    return "date"


class _Lowering:
    def __init__(self, layer: Layer):
        self.layer = layer

    def expr(self, node: ast.Expr) -> ast.Expr:
        if isinstance(node, ast.And | ast.Or):
            return self.junction(node)
        if isinstance(node, ast.Not):
            inner = self.expr(node.arg)
            if isinstance(inner, ast.Const):
                return ast.Const(not inner.value)
            return inner.arg if isinstance(inner, ast.Not) else ast.Not(inner)
        if isinstance(node, ast.Const):
            return node
        if isinstance(node, ast.Comparison):
            return self.comparison(node.op, node.left, node.right)
        if isinstance(node, ast.Like):
            return self.like(node)
        if isinstance(node, ast.Between):
            return self.expr(ast.And((ast.Comparison(ast.CompOp.GE, node.arg, node.low),
                                      ast.Comparison(ast.CompOp.LE, node.arg, node.high))))
        if isinstance(node, ast.In):
            return self.in_list(node)
        if isinstance(node, ast.IsNull):
            if isinstance(node.arg, ast.Literal):
                return ast.Const(False)
            field_type(self.layer, node.arg.name)
            return node
        if isinstance(node, ast.SpatialPredicate):
            return self.spatial(node)
        return self.temporal(node)

    def junction(self, node: ast.And | ast.Or) -> ast.Expr:
        is_and = isinstance(node, ast.And)
        args: list[ast.Expr] = []
        for child in node.args:
            lowered = self.expr(child)
            if isinstance(lowered, ast.Const):
                if lowered.value is not is_and:  # FALSE in AND, TRUE in OR decides
                    return lowered
                continue
            args.extend(lowered.args if isinstance(lowered, type(node)) else (lowered,))
        if not args:
            return ast.Const(is_and)
        if len(args) == 1:
            return args[0]
        return ast.And(tuple(args)) if is_and else ast.Or(tuple(args))

    def comparison(self, op: ast.CompOp, left: ast.Scalar, right: ast.Scalar) -> ast.Expr:
        if isinstance(left, ast.Literal) and isinstance(right, ast.Literal):
            return ast.Const(_compare(op, left.value, right.value))
        if isinstance(left, ast.Literal):
            op, left, right = _FLIP[op], right, left
        assert isinstance(left, ast.Property)
        kind = field_type(self.layer, left.name)
        if isinstance(right, ast.Property):
            other = field_type(self.layer, right.name)
            if _FAMILY[kind] != _FAMILY[other]:
                raise InvalidQuery(f"cannot compare {left.name!r} ({kind.value}) with {right.name!r} ({other.value})")
        else:
            self.check_instant(left.name, kind, right.value)
        return ast.Comparison(op, left, right)

    def check_instant(self, name: str, kind: FieldType, value: Any) -> None:
        if kind is FieldType.DATETIME and _literal_family(value) == "date":
            raise InvalidQuery(f"{name!r} is a date-time: compare it with TIMESTAMP('…'), not DATE('…')")
        if kind is FieldType.DATE and _literal_family(value) == "timestamp":
            raise InvalidQuery(f"{name!r} is a date: compare it with DATE('…'), not TIMESTAMP('…')")

    def like(self, node: ast.Like) -> ast.Expr:
        if not isinstance(node.pattern, ast.Literal) or not isinstance(node.pattern.value, str):
            raise InvalidQuery("the pattern of LIKE must be a text literal")
        if isinstance(node.arg, ast.Literal):
            if not isinstance(node.arg.value, str):
                raise InvalidQuery("LIKE needs text on its left")
            return ast.Const(like_regex(node.pattern.value).fullmatch(node.arg.value) is not None)
        kind = field_type(self.layer, node.arg.name)
        if kind is not FieldType.TEXT:
            raise InvalidQuery(f"LIKE needs a text property; {node.arg.name!r} is {kind.value}")
        return node

    def in_list(self, node: ast.In) -> ast.Expr:
        if isinstance(node.arg, ast.Property) and all(isinstance(v, ast.Literal) for v in node.values):
            kind = field_type(self.layer, node.arg.name)
            for value in node.values:
                assert isinstance(value, ast.Literal)
                self.check_instant(node.arg.name, kind, value.value)
            return node
        return self.expr(ast.Or(tuple(ast.Comparison(ast.CompOp.EQ, node.arg, v) for v in node.values)))

    def spatial(self, node: ast.SpatialPredicate) -> ast.Expr:
        op, left, right = node.op, node.left, node.right
        if isinstance(left, ast.GeometryLiteral) and isinstance(right, ast.GeometryLiteral):
            return ast.Const(bool(_SHAPELY[op](left.geometry, right.geometry)))
        if isinstance(left, ast.GeometryLiteral):
            op, left, right = _SPATIAL_CONVERSE.get(op, op), right, left
        if not isinstance(right, ast.GeometryLiteral):
            raise InvalidQuery(f"{op.value} needs a geometry literal on one side")
        assert isinstance(left, ast.Property)
        if left.name != ast.GEOMETRY_PROPERTY or not self.layer.is_spatial:
            field_type(self.layer, left.name)  # unknown names fail here with the usual message
            raise InvalidQuery(f"{op.value} needs the geometry property '{ast.GEOMETRY_PROPERTY}' of a spatial layer")
        return ast.SpatialPredicate(op, left, right)

    # -- temporal --------------------------------------------------------------------------------------------

    def temporal(self, node: ast.TemporalPredicate) -> ast.Expr:
        kinds = {field_type(self.layer, n) for n in ast.property_names(node)}
        if kinds - {FieldType.DATE, FieldType.DATETIME}:
            raise InvalidQuery(f"{node.op.value} needs date or date-time properties")
        if len(kinds) > 1:
            raise InvalidQuery(f"{node.op.value} cannot relate a date property to a date-time property")
        days_as_intervals = not kinds or FieldType.DATETIME in kinds
        if not kinds and {_literal_family(v) for v in _literal_values(node)} == {"date"}:
            days_as_intervals = False  # two date literals compare as dates
        a = self.ends(node.left, days_as_intervals)
        b = self.ends(node.right, days_as_intervals)
        joiner, triples = _ALLEN[node.op]
        parts = tuple(self.compare_ends(ast.CompOp(op), a[i], b[j]) for i, op, j in triples)
        combined = (ast.And(parts) if joiner == "and" else ast.Or(parts)) if len(parts) > 1 else parts[0]
        return self.expr(combined)

    def ends(self, operand: ast.TemporalOperand, days_as_intervals: bool) -> tuple[_End, _End]:
        if isinstance(operand, ast.Property):
            return operand, operand
        if isinstance(operand, ast.Literal):
            return self.end(operand, 0, days_as_intervals), self.end(operand, 1, days_as_intervals)
        start = self.end(operand.start, 0, days_as_intervals) if operand.start is not None else _NEG
        end = self.end(operand.end, 1, days_as_intervals) if operand.end is not None else _POS
        if isinstance(start, ast.Literal) and isinstance(end, ast.Literal) and _compare(ast.CompOp.GT, start.value,
                                                                                          end.value):
            raise InvalidQuery("an interval must not end before it starts")
        return start, end

    def end(self, value: ast.Property | ast.Literal, side: int, days_as_intervals: bool) -> _End:
        if isinstance(value, ast.Property):
            return value
        literal = value.value
        if not isinstance(literal, dt.date):
            raise InvalidQuery(f"temporal functions take dates and timestamps, not {literal!r}")
        if days_as_intervals and not isinstance(literal, dt.datetime):
            start = dt.datetime.combine(literal, dt.time(0), tzinfo=dt.UTC)
            return ast.Literal(start + _END_OF_DAY if side else start)
        return value

    def compare_ends(self, op: ast.CompOp, a: _End, b: _End) -> ast.Expr:
        if isinstance(a, _Infinity) or isinstance(b, _Infinity):
            if isinstance(a, ast.Property) or isinstance(b, ast.Property):
                prop = a if isinstance(a, ast.Property) else b
                assert isinstance(prop, ast.Property)
                holds = _compare(op, _rank(a), _rank(b))
                return ast.Comparison(ast.CompOp.EQ if holds else ast.CompOp.NE, prop, prop)
            return ast.Const(_compare(op, _rank(a), _rank(b)))
        return ast.Comparison(op, a, b)


def _rank(end: _End) -> int:
    """Order of an end against infinities: -1 or +1 for them, 0 for any finite value."""
    return end.sign if isinstance(end, _Infinity) else 0


def _literal_values(node: ast.TemporalPredicate) -> list[Any]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Literal)]


def _compare(op: ast.CompOp, a: Any, b: Any) -> bool:
    """A comparison of two literals, which must be of one type family."""
    if _literal_family(a) != _literal_family(b):
        raise InvalidQuery(f"cannot compare {a!r} with {b!r}")
    return bool(_PYTHON_OPS[op](a, b))


def like_regex(pattern: str) -> re.Pattern[str]:
    r"""A compiled regular expression equivalent to the CQL2/SQL LIKE ``pattern`` (``%``, ``_``, ``\`` escape)."""
    out: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            out.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        else:
            out.append(re.escape(char))
    if escaped:
        out.append(re.escape("\\"))
    return re.compile("".join(out), re.DOTALL)
