"""CQL2 expressions in the GeoPackage store: attribute parts as parameterised SQLite SQL, spatial parts with shapely.

An expression is first lowered (:func:`twin.cql2.lower.lower`, shared by every store). Without spatial predicates
it becomes one ``WHERE`` clause built from :mod:`twin.store.gpkg_sql` (same LIKE, NULL and date-time rules as
``Filter``). With spatial predicates the plan has three parts:

* a *necessary* SQL condition that every matching row satisfies, used as the ``WHERE`` clause: each spatial
  predicate is replaced by the R-tree envelope test against the literal's bounds (``s_disjoint`` by ``TRUE``), and
  under ``NOT`` by a *sufficient* condition instead (``FALSE``; disjoint envelopes for ``s_disjoint``), so that
  ``S <= expr <= N`` holds in Kleene's order and the R-tree prefilters the rows;
* the truth value (1, 0 or NULL) of each maximal attribute-only sub-expression, selected as extra columns;
* the spatial predicates, evaluated with shapely on whole chunks of decoded geometries, combined with those
  columns in three-valued logic with numpy (false 0, unknown ½, true 1: AND is min, OR is max, NOT is 1 - x).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely

from layers import Layer
from twin.cql2 import ast
from twin.cql2.lower import lower
from twin.errors import InvalidQuery
from twin.store.base import Filter, Op
from twin.store.gpkg_schema import quote
from twin.store.gpkg_sql import filter_clause, lookup

Sql = tuple[str, list[Any]]
_SHAPELY: dict[ast.SpatialOp, Callable[[Any, Any], Any]] = {
    ast.SpatialOp.INTERSECTS: shapely.intersects, ast.SpatialOp.EQUALS: shapely.equals,
    ast.SpatialOp.DISJOINT: shapely.disjoint, ast.SpatialOp.TOUCHES: shapely.touches,
    ast.SpatialOp.WITHIN: shapely.within, ast.SpatialOp.OVERLAPS: shapely.overlaps,
    ast.SpatialOp.CROSSES: shapely.crosses, ast.SpatialOp.CONTAINS: shapely.contains,
}
_TRUE: Sql = ("1", [])
_FALSE: Sql = ("0", [])


@dataclass(frozen=True)
class Plan:
    """How the GeoPackage store evaluates one expression on one layer.

    ``where`` goes into ``where_clause(extra=…)``. When ``spatial`` is true the rows must be read through the
    R-tree join (aliases ``t`` and ``r``), with ``columns`` (and its ``column_params``) appended to the select
    list, and :meth:`mask` applied to the fetched extra columns and the decoded geometries.
    """

    where: list[Sql] = field(default_factory=list)
    spatial: bool = False
    columns: str = ""
    column_params: list[Any] = field(default_factory=list)
    program: Any = None
    width: int = 0

    def mask(self, extra: Sequence[Sequence[Any]], geoms: np.ndarray) -> np.ndarray:
        """Which rows satisfy the expression, given the extra columns (one sequence per column) and geometries."""
        if not self.spatial:
            return np.ones(len(geoms), dtype=bool)
        truth = _evaluate(self.program, extra, geoms)
        return np.asarray(truth == 1.0, dtype=bool)


NO_PLAN = Plan()


def plan(layer: Layer, expr: ast.Expr | None) -> Plan:
    """The plan for ``expr`` (``None`` gives an empty plan)."""
    if expr is None:
        return NO_PLAN
    lowered = lower(expr, layer)
    if not ast.has_spatial(lowered):
        return Plan(where=[exact_sql(layer, lowered)])
    builder = _Builder(layer)
    program = builder.program(lowered)
    necessary, _ = builder.bounds(lowered)
    columns = "".join(f", ({sql})" for sql, _ in builder.leaves)
    params = [p for _, values in builder.leaves for p in values]
    return Plan([necessary], True, columns, params, program, len(builder.leaves))


def exact_sql(layer: Layer, node: ast.Expr, alias: str = "t") -> Sql:
    """SQL (1, 0 or NULL per row) and parameters for an attribute-only lowered expression."""
    if isinstance(node, ast.And | ast.Or):
        parts = [exact_sql(layer, arg, alias) for arg in node.args]
        joiner = " AND " if isinstance(node, ast.And) else " OR "
        return joiner.join(f"({sql})" for sql, _ in parts), [p for _, values in parts for p in values]
    if isinstance(node, ast.Not):
        sql, params = exact_sql(layer, node.arg, alias)
        return f"NOT ({sql})", params
    if isinstance(node, ast.Const):
        return _TRUE if node.value else _FALSE
    if isinstance(node, ast.Comparison):
        assert isinstance(node.left, ast.Property)
        if isinstance(node.right, ast.Property):
            left, right = lookup(layer, node.left.name), lookup(layer, node.right.name)
            return f"{alias}.{quote(left.name)} {node.op.value} {alias}.{quote(right.name)}", []
        return filter_clause(layer, Filter(node.left.name, Op(node.op.value), node.right.value), alias)
    if isinstance(node, ast.Like):
        assert isinstance(node.arg, ast.Property) and isinstance(node.pattern, ast.Literal)
        return filter_clause(layer, Filter(node.arg.name, Op.LIKE, node.pattern.value), alias)
    if isinstance(node, ast.In):
        assert isinstance(node.arg, ast.Property)
        values = [v.value for v in node.values if isinstance(v, ast.Literal)]
        return filter_clause(layer, Filter(node.arg.name, Op.IN, values), alias)
    if isinstance(node, ast.IsNull):
        assert isinstance(node.arg, ast.Property)
        return filter_clause(layer, Filter(node.arg.name, Op.IS_NULL), alias)
    raise InvalidQuery(f"the GeoPackage store cannot evaluate {type(node).__name__} here")


class _Builder:
    """Splits a lowered expression with spatial predicates into SQL leaves, a numpy program and SQL bounds."""

    def __init__(self, layer: Layer):
        self.layer = layer
        self.leaves: list[Sql] = []

    def program(self, node: ast.Expr) -> tuple[Any, ...]:
        if not ast.has_spatial(node):
            self.leaves.append(exact_sql(self.layer, node))
            return ("leaf", len(self.leaves) - 1)
        if isinstance(node, ast.SpatialPredicate):
            assert isinstance(node.right, ast.GeometryLiteral)
            geometry = shapely.force_2d(node.right.geometry)
            shapely.prepare(geometry)
            return ("spatial", node.op, geometry)
        if isinstance(node, ast.Not):
            return ("not", self.program(node.arg))
        assert isinstance(node, ast.And | ast.Or)
        return ("and" if isinstance(node, ast.And) else "or", [self.program(a) for a in node.args])

    def bounds(self, node: ast.Expr) -> tuple[Sql, Sql]:
        """``(necessary, sufficient)`` SQL conditions of ``node``."""
        if not ast.has_spatial(node):
            exact = exact_sql(self.layer, node)
            return exact, exact
        if isinstance(node, ast.SpatialPredicate):
            assert isinstance(node.right, ast.GeometryLiteral)
            overlap = _envelope_overlap(node.right.geometry.bounds)
            if node.op is ast.SpatialOp.DISJOINT:
                return _TRUE, (f"NOT ({overlap[0]})", overlap[1])
            return overlap, _FALSE
        if isinstance(node, ast.Not):
            necessary, sufficient = self.bounds(node.arg)
            return (f"NOT ({sufficient[0]})", sufficient[1]), (f"NOT ({necessary[0]})", necessary[1])
        assert isinstance(node, ast.And | ast.Or)
        pairs = [self.bounds(a) for a in node.args]
        joiner = " AND " if isinstance(node, ast.And) else " OR "
        return _join(joiner, [p[0] for p in pairs]), _join(joiner, [p[1] for p in pairs])


def _join(joiner: str, parts: list[Sql]) -> Sql:
    return joiner.join(f"({sql})" for sql, _ in parts), [p for _, values in parts for p in values]


def _envelope_overlap(bounds: tuple[float, float, float, float], alias: str = "r") -> Sql:
    """The R-tree envelope (float32, rounded outwards) overlaps ``bounds``: true for every geometry that does."""
    minx, miny, maxx, maxy = bounds
    return (f"{alias}.maxx >= ? AND {alias}.minx <= ? AND {alias}.maxy >= ? AND {alias}.miny <= ?",
            [minx, maxx, miny, maxy])


def _evaluate(program: tuple[Any, ...], extra: Sequence[Sequence[Any]], geoms: np.ndarray) -> np.ndarray:
    """Kleene truth values (0, 0.5, 1) of ``program`` for every row."""
    kind = program[0]
    if kind == "leaf":
        values = np.array(extra[program[1]], dtype=object)
        truth = np.full(len(values), 0.5)
        known = values != None  # noqa: E711 - elementwise test for SQL NULL
        truth[known] = np.asarray(values[known], dtype=float) != 0
        return truth
    if kind == "spatial":
        return np.asarray(_SHAPELY[program[1]](geoms, program[2]), dtype=float)
    if kind == "not":
        return 1.0 - _evaluate(program[1], extra, geoms)
    parts = [_evaluate(p, extra, geoms) for p in program[1]]
    reduce = np.minimum if kind == "and" else np.maximum
    result = parts[0]
    for part in parts[1:]:
        result = reduce(result, part)
    return result
