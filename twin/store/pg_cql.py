"""CQL2 expressions in the PostGIS store: a lowered expression becomes one SQLAlchemy boolean expression.

:func:`twin.cql2.lower.lower` (shared by every store) leaves only ``And Or Not Const Comparison Like In IsNull
SpatialPredicate``; SQL's own three-valued logic then gives CQL2's Kleene semantics, and ``WHERE`` keeps the rows
whose expression is true. Comparisons with literals, ``LIKE``, ``IN`` and ``IS NULL`` go through the same code as
``Filter`` (:func:`twin.store.pg_sql.filter_expr`), so literals are coerced and instants rounded the same way; the
spatial predicates are PostGIS's DE-9IM functions against the literal in 2D, index-assisted where PostGIS can.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from layers import Layer
from twin.cql2 import ast
from twin.cql2.lower import lower
from twin.errors import InvalidQuery
from twin.store.base import Filter, Op
from twin.store.gpkg_sql import lookup
from twin.store.pg_schema import GEOMETRY_COLUMN
from twin.store.pg_sql import filter_expr, geometry_param

_SPATIAL = {
    ast.SpatialOp.INTERSECTS: "ST_Intersects", ast.SpatialOp.EQUALS: "ST_Equals",
    ast.SpatialOp.DISJOINT: "ST_Disjoint", ast.SpatialOp.TOUCHES: "ST_Touches",
    ast.SpatialOp.WITHIN: "ST_Within", ast.SpatialOp.OVERLAPS: "ST_Overlaps",
    ast.SpatialOp.CROSSES: "ST_Crosses", ast.SpatialOp.CONTAINS: "ST_Contains",
}
_COMPARE = {
    ast.CompOp.EQ: "=", ast.CompOp.NE: "<>", ast.CompOp.LT: "<", ast.CompOp.LE: "<=", ast.CompOp.GT: ">",
    ast.CompOp.GE: ">=",
}


def expression(layer: Layer, table: sa.Table, expr: ast.Expr) -> sa.ColumnElement[Any]:
    """``expr`` (checked against ``layer`` and lowered) as a boolean SQL expression over ``table``."""
    return _translate(layer, table, lower(expr, layer))


def _translate(layer: Layer, table: sa.Table, node: ast.Expr) -> sa.ColumnElement[Any]:
    if isinstance(node, ast.And):
        return sa.and_(*(_translate(layer, table, arg) for arg in node.args))
    if isinstance(node, ast.Or):
        return sa.or_(*(_translate(layer, table, arg) for arg in node.args))
    if isinstance(node, ast.Not):
        return sa.not_(_translate(layer, table, node.arg))
    if isinstance(node, ast.Const):
        return sa.true() if node.value else sa.false()
    if isinstance(node, ast.Comparison):
        assert isinstance(node.left, ast.Property)
        if isinstance(node.right, ast.Property):
            left = table.c[lookup(layer, node.left.name).name]
            right = table.c[lookup(layer, node.right.name).name]
            return left.op(_COMPARE[node.op], is_comparison=True)(right)
        return filter_expr(layer, table, Filter(node.left.name, Op(node.op.value), node.right.value))
    if isinstance(node, ast.Like):
        assert isinstance(node.arg, ast.Property) and isinstance(node.pattern, ast.Literal)
        return filter_expr(layer, table, Filter(node.arg.name, Op.LIKE, node.pattern.value))
    if isinstance(node, ast.In):
        assert isinstance(node.arg, ast.Property)
        values = [v.value for v in node.values if isinstance(v, ast.Literal)]
        return filter_expr(layer, table, Filter(node.arg.name, Op.IN, values))
    if isinstance(node, ast.IsNull):
        assert isinstance(node.arg, ast.Property)
        return filter_expr(layer, table, Filter(node.arg.name, Op.IS_NULL))
    if isinstance(node, ast.SpatialPredicate):
        assert isinstance(node.right, ast.GeometryLiteral)
        function = getattr(sa.func, _SPATIAL[node.op])
        return function(table.c[GEOMETRY_COLUMN], geometry_param(node.right.geometry), type_=sa.Boolean())
    raise InvalidQuery(f"the PostGIS store cannot evaluate {type(node).__name__} here")
