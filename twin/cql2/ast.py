r"""The CQL2 abstract syntax tree: small frozen dataclasses that the text and JSON readers both produce.

A store evaluates an expression (``FeatureQuery.expr``) with these semantics, identical on every backend:

Values and properties
    ``Property(name)`` names a catalogue field, the layer key (``id``) or, for spatial layers, ``geometry``.
    ``Literal`` holds a ``str``, ``int``, ``float``, ``bool``, ``datetime.date`` (CQL2 ``DATE``) or a
    timezone-aware ``datetime.datetime`` (CQL2 ``TIMESTAMP``). A literal is coerced to the type of the field it is
    compared with, as :mod:`twin.store.gpkg_sql` does for ``Filter`` values (``'36'`` on a real field is 36.0);
    comparing a date-time field with a ``DATE`` literal (or a date field with a ``TIMESTAMP``) is an ``InvalidQuery``.
    ``GeometryLiteral`` holds a shapely geometry in lon/lat (EPSG:4326, x = longitude): the API transforms
    literals from ``filter-crs`` before a store sees them.

Truth
    SQL three-valued logic. A comparison, ``LIKE``, ``IN``, ``BETWEEN`` or temporal predicate on a NULL property
    value is *unknown*; ``NOT unknown`` is unknown; ``AND``/``OR`` follow Kleene's tables; a row is selected only
    when the whole expression is *true*. ``IsNull`` is never unknown.

Comparisons
    ``= <> < <= > >=`` as in SQL; text compares by code point (case-sensitive), booleans false < true, dates and
    instants in time order at millisecond precision (the stores keep milliseconds). ``Between(a, lo, hi)`` is
    ``a >= lo AND a <= hi``; ``In(a, values)`` is ``a = v1 OR a = v2 …``. ``Like`` is case-sensitive, with ``%``
    (any run) and ``_`` (one character) as wildcards and ``\`` as the escape character, on text fields only.
    Property-property and literal-literal comparisons are allowed (operands of one type family).

Spatial predicates (``s_intersects s_equals s_disjoint s_touches s_within s_overlaps s_crosses s_contains``)
    The DE-9IM predicates of the OGC Simple Features model (as GEOS and PostGIS implement them) between the
    feature's geometry, in 2D, and the literal: ``s_within(geometry, G)`` is true when the feature lies within G.

Temporal predicates (``t_after t_before t_contains t_disjoint t_during t_equals t_finishedby t_finishes
t_intersects t_meets t_metby t_overlappedby t_overlaps t_startedby t_starts``)
    Allen's relations between two intervals ``[a0, a1]`` and ``[b0, b1]``, where an instant ``t`` is ``[t, t]``
    and an open end (``..``) is minus or plus infinity: ``t_after`` a0 > b1; ``t_before`` a1 < b0;
    ``t_contains`` a0 < b0 and a1 > b1; ``t_disjoint`` a0 > b1 or a1 < b0; ``t_during`` a0 > b0 and a1 < b1;
    ``t_equals`` a0 = b0 and a1 = b1; ``t_finishedby`` a0 < b0 and a1 = b1; ``t_finishes`` a0 > b0 and a1 = b1;
    ``t_intersects`` a0 <= b1 and a1 >= b0; ``t_meets`` a1 = b0; ``t_metby`` a0 = b1; ``t_overlappedby``
    a0 > b0 and a0 < b1 and a1 > b1; ``t_overlaps`` a0 < b0 and a1 > b0 and a1 < b1; ``t_startedby`` a0 = b0
    and a1 > b1; ``t_starts`` a0 = b0 and a1 < b1. Against a date-time property a ``DATE`` stands for that whole
    UTC day, ``[d 00:00:00.000Z, d 23:59:59.999Z]``.

:func:`twin.cql2.lower.lower` rewrites an expression into the few node types a store must translate
(``And Or Not Const Comparison Like In IsNull SpatialPredicate``), with every rule above applied, so a backend
only maps those to its SQL (see :mod:`twin.store.gpkg_cql` for the GeoPackage translation).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any, TypeAlias

from shapely.geometry.base import BaseGeometry

from twin.errors import InvalidQuery

#: The name of the geometry property of a spatial layer.
GEOMETRY_PROPERTY = "geometry"
#: The deepest nesting of parentheses, ``not``, arrays and objects a filter may have (a deeper one is a syntax
#: error: the parsers and every pass over the tree recurse once per level).
MAX_NESTING = 100

Value: TypeAlias = str | int | float | bool | dt.date | dt.datetime


class CqlSyntaxError(InvalidQuery):
    """A filter that does not parse; ``position`` is the 1-based character (text) or a JSON pointer (JSON)."""

    def __init__(self, message: str, position: int | str):
        where = f"at position {position}" if isinstance(position, int) else f"at {position or '/'}"
        super().__init__(f"CQL2 syntax error {where}: {message}")
        self.position = position


@dataclass(frozen=True)
class Property:
    """A reference to a property (field) of the feature."""

    name: str


@dataclass(frozen=True)
class Literal:
    """A scalar literal: text, number, boolean, date or aware instant."""

    value: Value


@dataclass(frozen=True)
class Interval:
    """A time interval; an end that is ``None`` is open (``..``)."""

    start: Property | Literal | None
    end: Property | Literal | None


@dataclass(frozen=True)
class GeometryLiteral:
    """A geometry literal (WKT, GeoJSON or BBOX), in lon/lat once it reaches a store."""

    geometry: BaseGeometry


Scalar: TypeAlias = Property | Literal
TemporalOperand: TypeAlias = Property | Literal | Interval
SpatialOperand: TypeAlias = Property | GeometryLiteral


class CompOp(StrEnum):
    """Binary comparison operators."""

    EQ = "="
    NE = "<>"
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


class SpatialOp(StrEnum):
    """Spatial comparison functions."""

    INTERSECTS = "s_intersects"
    EQUALS = "s_equals"
    DISJOINT = "s_disjoint"
    TOUCHES = "s_touches"
    WITHIN = "s_within"
    OVERLAPS = "s_overlaps"
    CROSSES = "s_crosses"
    CONTAINS = "s_contains"


class TemporalOp(StrEnum):
    """Temporal comparison functions."""

    AFTER = "t_after"
    BEFORE = "t_before"
    CONTAINS = "t_contains"
    DISJOINT = "t_disjoint"
    DURING = "t_during"
    EQUALS = "t_equals"
    FINISHEDBY = "t_finishedby"
    FINISHES = "t_finishes"
    INTERSECTS = "t_intersects"
    MEETS = "t_meets"
    METBY = "t_metby"
    OVERLAPPEDBY = "t_overlappedby"
    OVERLAPS = "t_overlaps"
    STARTEDBY = "t_startedby"
    STARTS = "t_starts"


@dataclass(frozen=True)
class And:
    """All of ``args`` (two or more)."""

    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    """Any of ``args`` (two or more)."""

    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    """The negation of ``arg``."""

    arg: Expr


@dataclass(frozen=True)
class Const:
    """``TRUE`` or ``FALSE``."""

    value: bool


@dataclass(frozen=True)
class Comparison:
    """``left op right``."""

    op: CompOp
    left: Scalar
    right: Scalar


@dataclass(frozen=True)
class Like:
    """``arg LIKE pattern``."""

    arg: Scalar
    pattern: Scalar


@dataclass(frozen=True)
class Between:
    """``arg BETWEEN low AND high`` (both ends included)."""

    arg: Scalar
    low: Scalar
    high: Scalar


@dataclass(frozen=True)
class In:
    """``arg IN (values…)``."""

    arg: Scalar
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class IsNull:
    """``arg IS NULL``."""

    arg: Scalar


@dataclass(frozen=True)
class SpatialPredicate:
    """``op(left, right)``, e.g. ``s_intersects(geometry, POINT(114.02 22.61))``."""

    op: SpatialOp
    left: SpatialOperand
    right: SpatialOperand


@dataclass(frozen=True)
class TemporalPredicate:
    """``op(left, right)``, e.g. ``t_during(last_seen, INTERVAL('2026-11-25T00:00:00Z', '..'))``."""

    op: TemporalOp
    left: TemporalOperand
    right: TemporalOperand


Expr: TypeAlias = (
    And | Or | Not | Const | Comparison | Like | Between | In | IsNull | SpatialPredicate | TemporalPredicate
)
Node: TypeAlias = Expr | Property | Literal | Interval | GeometryLiteral


def children(node: Node) -> Iterator[Node]:
    """The direct sub-nodes of ``node``, in order."""
    for item in fields(node):
        value = getattr(node, item.name)
        if isinstance(value, tuple):
            yield from (v for v in value if _is_node(v))
        elif _is_node(value):
            yield value


def _is_node(value: object) -> bool:
    return isinstance(value, _NODE_TYPES)


def walk(node: Node) -> Iterator[Node]:
    """``node`` and every node below it, depth first."""
    yield node
    for child in children(node):
        yield from walk(child)


def property_names(expr: Expr) -> list[str]:
    """The property names ``expr`` refers to, in order of first use."""
    return list(dict.fromkeys(n.name for n in walk(expr) if isinstance(n, Property)))


def has_spatial(expr: Expr) -> bool:
    """True when ``expr`` contains a spatial predicate."""
    return any(isinstance(n, SpatialPredicate) for n in walk(expr))


def map_geometries(expr: Expr, fn: Callable[[BaseGeometry], BaseGeometry]) -> Expr:
    """A copy of ``expr`` with ``fn`` applied to every geometry literal (e.g. a CRS transform)."""

    def visit(node: Node) -> Node:
        if isinstance(node, GeometryLiteral):
            return GeometryLiteral(fn(node.geometry))
        if isinstance(node, Property | Literal):
            return node
        changes: dict[str, Any] = {}
        for item in fields(node):
            value = getattr(node, item.name)
            if isinstance(value, tuple):
                changes[item.name] = tuple(visit(v) if _is_node(v) else v for v in value)
            elif _is_node(value):
                changes[item.name] = visit(value)
        rebuilt: Node = replace(node, **changes)
        return rebuilt

    result = visit(expr)
    assert not isinstance(result, Property | Literal | Interval | GeometryLiteral)
    return result


_NODE_TYPES = (
    And, Or, Not, Const, Comparison, Like, Between, In, IsNull, SpatialPredicate, TemporalPredicate,
    Property, Literal, Interval, GeometryLiteral,
)
