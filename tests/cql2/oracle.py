"""A brute-force CQL2 evaluator: row by row in plain Python, straight from the spec, to check the stores against.

It reads the raw AST (no lowering), so it shares nothing with the stores' translation but the catalogue coercion
of literals. Truth values are ``True``, ``False`` or ``None`` (unknown), with Kleene's AND/OR/NOT.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
from typing import Any

import pandas as pd
import shapely

from layers import FieldType, get_layer
from tests.store.helpers import _like, column
from twin.cql2 import ast
from twin.values import coerce_value

_OPS = {"=": operator.eq, "<>": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
        ">=": operator.ge}
_SPATIAL = {
    "s_intersects": shapely.intersects, "s_equals": shapely.equals, "s_disjoint": shapely.disjoint,
    "s_touches": shapely.touches, "s_within": shapely.within, "s_overlaps": shapely.overlaps,
    "s_crosses": shapely.crosses, "s_contains": shapely.contains,
}
_DAY_MS = 86_400_000


def matching_ids(frame: pd.DataFrame, layer_id: str, expr: ast.Expr) -> list[int]:
    """Ids (ascending) of the rows for which ``expr`` is true."""
    layer = get_layer(layer_id)
    names = [f.name for f in layer.fields if f.name in frame.columns]
    values = {name: column(frame, name) for name in names}
    geoms = list(frame.geometry) if "geometry" in frame.columns else None
    hits = []
    for position, fid in enumerate(frame.index.tolist()):
        row = {name: values[name][position] for name in names}
        row["id"] = fid
        if geoms is not None:
            row["geometry"] = geoms[position]
        if _Row(layer_id, row).truth(expr) is True:
            hits.append(int(fid))
    return sorted(hits)


class _Row:
    def __init__(self, layer_id: str, row: dict[str, Any]):
        self.layer = get_layer(layer_id)
        self.row = row

    def kind(self, name: str) -> FieldType:
        return FieldType.INTEGER if name == "id" else self.layer.field(name).type

    def truth(self, node: ast.Expr) -> bool | None:
        if isinstance(node, ast.And):
            parts = [self.truth(a) for a in node.args]
            return False if False in parts else (None if None in parts else True)
        if isinstance(node, ast.Or):
            parts = [self.truth(a) for a in node.args]
            return True if True in parts else (None if None in parts else False)
        if isinstance(node, ast.Not):
            inner = self.truth(node.arg)
            return None if inner is None else not inner
        if isinstance(node, ast.Const):
            return node.value
        if isinstance(node, ast.Comparison):
            left, right = self.pair(node.left, node.right)
            return None if left is None or right is None else _OPS[node.op.value](left, right)
        if isinstance(node, ast.Like):
            value = self.value(node.arg)
            assert isinstance(node.pattern, ast.Literal)
            return None if value is None else _like(node.pattern.value).fullmatch(value) is not None
        if isinstance(node, ast.Between):
            value, low = self.pair(node.arg, node.low)
            _, high = self.pair(node.arg, node.high)
            return None if value is None else low <= value <= high
        if isinstance(node, ast.In):
            found = [self.pair(node.arg, v) for v in node.values]
            if found[0][0] is None:
                return None
            return any(a == b for a, b in found)
        if isinstance(node, ast.IsNull):
            return self.value(node.arg) is None
        if isinstance(node, ast.SpatialPredicate):
            left, right = (self.row["geometry"] if isinstance(o, ast.Property) else o.geometry
                           for o in (node.left, node.right))
            return bool(_SPATIAL[node.op.value](left, right))
        assert isinstance(node, ast.TemporalPredicate)
        return self.temporal(node)

    def value(self, operand: ast.Scalar) -> Any:
        return self.row[operand.name] if isinstance(operand, ast.Property) else operand.value

    def pair(self, a: ast.Scalar, b: ast.Scalar) -> tuple[Any, Any]:
        """Both values, a literal coerced to the type of the property on the other side."""
        left, right = self.value(a), self.value(b)
        if isinstance(a, ast.Property) and isinstance(b, ast.Literal):
            right = self.coerce(a.name, right)
        if isinstance(b, ast.Property) and isinstance(a, ast.Literal):
            left = self.coerce(b.name, left)
        return left, right

    def coerce(self, name: str, value: Any) -> Any:
        kind = self.kind(name)
        if kind is FieldType.INTEGER and name == "id":
            return int(value)
        if kind is FieldType.DATETIME:
            return pd.Timestamp(value).tz_convert("UTC")
        return coerce_value(self.layer.field(name), value)

    # -- temporal: everything as numbers (epoch ms, or day numbers for date properties) -------------------

    def temporal(self, node: ast.TemporalPredicate) -> bool | None:
        kinds = {self.kind(n) for n in ast.property_names(node)}
        literals = [n.value for n in ast.walk(node) if isinstance(n, ast.Literal)]
        days = kinds == {FieldType.DATE} or (not kinds and not any(isinstance(v, dt.datetime) for v in literals))
        a, b = self.interval(node.left, days), self.interval(node.right, days)
        if None in a or None in b:
            return None
        (a0, a1), (b0, b1) = a, b
        return {
            "t_after": a0 > b1, "t_before": a1 < b0, "t_contains": a0 < b0 and a1 > b1,
            "t_disjoint": a0 > b1 or a1 < b0, "t_during": a0 > b0 and a1 < b1, "t_equals": a0 == b0 and a1 == b1,
            "t_finishedby": a0 < b0 and a1 == b1, "t_finishes": a0 > b0 and a1 == b1,
            "t_intersects": a0 <= b1 and a1 >= b0, "t_meets": a1 == b0, "t_metby": a0 == b1,
            "t_overlappedby": a0 > b0 and a0 < b1 and a1 > b1, "t_overlaps": a0 < b0 and a1 > b0 and a1 < b1,
            "t_startedby": a0 == b0 and a1 > b1, "t_starts": a0 == b0 and a1 < b1,
        }[node.op.value]

    def interval(self, operand: ast.TemporalOperand, days: bool) -> tuple[float | None, float | None]:
        if isinstance(operand, ast.Interval):
            start = -math.inf if operand.start is None else self.instant(operand.start, days)[0]
            end = math.inf if operand.end is None else self.instant(operand.end, days)[1]
            return start, end
        return self.instant(operand, days)

    def instant(self, operand: ast.Property | ast.Literal, days: bool) -> tuple[float | None, float | None]:
        value = self.value(operand)
        if value is None:
            return None, None
        if isinstance(value, dt.datetime):
            ms = pd.Timestamp(value).tz_convert("UTC").value // 1_000_000
            return float(ms), float(ms)
        if days:
            return float(value.toordinal()), float(value.toordinal())
        start = (value.toordinal() - dt.date(1970, 1, 1).toordinal()) * _DAY_MS
        return float(start), float(start + _DAY_MS - 1)
