"""Brute-force answers and frame comparisons for the store contract suite."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers import FieldType, get_layer
from twin.store.base import Filter, Op, Sort
from twin.values import coerce_value, is_null, parse_instant

_OPS = {Op.EQ: operator.eq, Op.NE: operator.ne, Op.LT: operator.lt, Op.LE: operator.le, Op.GT: operator.gt,
        Op.GE: operator.ge}


def column(frame: pd.DataFrame, name: str) -> list[Any]:
    """Python values of a column (the index for ``id``), nulls as ``None``."""
    values = frame.index if name == "id" else frame[name]
    return [None if is_null(v) else v for v in values.tolist()]


def _value(layer_id: str, field_name: str, value: Any) -> Any:
    if field_name == "id":
        return int(value)
    field = get_layer(layer_id).field(field_name)
    if field.type is FieldType.DATETIME:
        return parse_instant(value)
    return coerce_value(field, value)


def _like(pattern: str) -> re.Pattern[str]:
    out, escaped = [], False
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
    return re.compile("".join(out), re.DOTALL)


def matches(frame: pd.DataFrame, layer_id: str, filters: Sequence[Filter]) -> pd.Index:
    """Ids of the rows passing every filter, by SQL semantics (comparisons never match NULL)."""
    keep = np.ones(len(frame), dtype=bool)
    for f in filters:
        values = column(frame, f.field)
        if f.op is Op.IS_NULL:
            hits = [v is None for v in values]
        elif f.op is Op.NOT_NULL:
            hits = [v is not None for v in values]
        elif f.op is Op.LIKE:
            regex = _like(f.value)
            hits = [v is not None and regex.fullmatch(v) is not None for v in values]
        elif f.op is Op.IN:
            wanted = [_value(layer_id, f.field, w) for w in f.value]
            hits = [v is not None and any(v == w for w in wanted) for v in values]
        else:
            target = _value(layer_id, f.field, f.value)
            hits = [v is not None and bool(_OPS[f.op](v, target)) for v in values]
        keep &= np.array(hits, dtype=bool)
    return frame.index[keep]


def sorted_ids(frame: pd.DataFrame, sort: Sequence[Sort]) -> list[int]:
    """Ids in sort order: each key with NULLs last in either direction, ties by ascending id."""
    ids = sorted(frame.index.tolist())
    lookup = {name: dict(zip(frame.index.tolist(), column(frame, name), strict=True))
              for name in {s.field for s in sort}}
    for key in reversed(sort):
        values = lookup[key.field] if key.field != "id" else {i: i for i in ids}
        present = sorted((i for i in ids if values[i] is not None), key=lambda i: values[i], reverse=key.descending)
        ids = present + [i for i in ids if values[i] is None]
    return ids


def metric(frame: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """Geometries in EPSG:4547, 2D."""
    return gpd.GeoSeries(shapely.force_2d(frame.geometry.to_crs("EPSG:4547").to_numpy()), index=frame.index)


def metric_geometry(geometry: shapely.Geometry) -> shapely.Geometry:
    return gpd.GeoSeries([shapely.force_2d(geometry)], crs="EPSG:4326").to_crs("EPSG:4547").iloc[0]


def assert_same_frame(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same ids, columns, dtypes and values; geometries equal exactly (z included)."""
    assert list(actual.index) == list(expected.index)
    assert actual.index.name == expected.index.name == "id"
    assert actual.index.dtype == np.dtype("int64")
    assert list(actual.columns) == list(expected.columns)
    plain = [c for c in expected.columns if c != "geometry"]
    pd.testing.assert_frame_equal(pd.DataFrame(actual[plain]), pd.DataFrame(expected[plain]), check_like=False)
    if "geometry" in expected.columns:
        assert isinstance(actual, gpd.GeoDataFrame)
        assert actual.crs == "EPSG:4326"
        equal = shapely.equals_exact(actual.geometry.to_numpy(), expected.geometry.to_numpy(), tolerance=0)
        same_z = shapely.has_z(actual.geometry.to_numpy()) == shapely.has_z(expected.geometry.to_numpy())
        assert equal.all() and same_z.all()
        if shapely.has_z(expected.geometry.to_numpy()).any():
            np.testing.assert_array_equal(shapely.get_coordinates(actual.geometry, include_z=True),
                                          shapely.get_coordinates(expected.geometry, include_z=True))


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
