"""The CQL2 text parser: the AST it builds, and syntax errors with their positions."""

from __future__ import annotations

import datetime as dt

import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from twin.cql2 import ast, parse_json, parse_text
from twin.cql2.ast import (
    And,
    Between,
    Comparison,
    CompOp,
    Const,
    CqlSyntaxError,
    In,
    Interval,
    IsNull,
    Like,
    Literal,
    Not,
    Or,
    Property,
    SpatialOp,
    SpatialPredicate,
    TemporalOp,
    TemporalPredicate,
)
from twin.errors import InvalidQuery

P, L = Property, Literal
UTC = dt.UTC


@pytest.mark.parametrize(("text", "expected"), [
    ("a = 1", Comparison(CompOp.EQ, P("a"), L(1))),
    ("a<>-2.5", Comparison(CompOp.NE, P("a"), L(-2.5))),
    ("a != 1e3", Comparison(CompOp.NE, P("a"), L(1000.0))),
    ("a >= 'x'", Comparison(CompOp.GE, P("a"), L("x"))),
    ("'x' < a", Comparison(CompOp.LT, L("x"), P("a"))),
    ("a = b", Comparison(CompOp.EQ, P("a"), P("b"))),
    ('"the name" = \'it\'\'s\'', Comparison(CompOp.EQ, P("the name"), L("it's"))),
    ("a = 'C:\\dir\\'", Comparison(CompOp.EQ, P("a"), L("C:\\dir\\"))),
    ("名称 = '北站'", Comparison(CompOp.EQ, P("名称"), L("北站"))),
    ("flag = TRUE", Comparison(CompOp.EQ, P("flag"), L(True))),
    ("true", Const(True)),
    ("a LIKE 'x\\_%'", Like(P("a"), L("x\\_%"))),
    ("a NOT LIKE 'x%'", Not(Like(P("a"), L("x%")))),
    ("a BETWEEN 1 AND 2", Between(P("a"), L(1), L(2))),
    ("a not between 1 and 2", Not(Between(P("a"), L(1), L(2)))),
    ("a IN ('x', 'y')", In(P("a"), (L("x"), L("y")))),
    ("a NOT IN (1)", Not(In(P("a"), (L(1),)))),
    ("a IS NULL", IsNull(P("a"))),
    ("a IS NOT NULL", Not(IsNull(P("a")))),
    ("d = DATE('2026-11-25')", Comparison(CompOp.EQ, P("d"), L(dt.date(2026, 11, 25)))),
    ("t > TIMESTAMP('2026-11-25T08:00:00+08:00')",
     Comparison(CompOp.GT, P("t"), L(dt.datetime(2026, 11, 25, 0, 0, tzinfo=UTC)))),
    ("date = 3", Comparison(CompOp.EQ, P("date"), L(3))),
])
def test_predicates(text, expected):
    assert parse_text(text) == expected


def test_precedence_not_over_and_over_or():
    got = parse_text("a = 1 OR NOT b = 2 AND c = 3 or (d = 4 or e = 5) and f = 6")
    eq = lambda name, v: Comparison(CompOp.EQ, P(name), L(v))  # noqa: E731
    assert got == Or((eq("a", 1), And((Not(eq("b", 2)), eq("c", 3))),
                      And((Or((eq("d", 4), eq("e", 5))), eq("f", 6)))))


def test_spatial_functions_and_geometries():
    got = parse_text("S_INTERSECTS(geometry, POLYGON((0 0, 2 0, 2 2, 0 2, 0 0), (0.5 0.5, 1 0.5, 1 1, 0.5 0.5)))")
    assert isinstance(got, SpatialPredicate) and got.op is SpatialOp.INTERSECTS and got.left == P("geometry")
    assert got.right.geometry.equals(shapely.from_wkt(
        "POLYGON((0 0, 2 0, 2 2, 0 2, 0 0), (0.5 0.5, 1 0.5, 1 1, 0.5 0.5))"))
    for wkt in ("POINT Z (1 2 3)", "LINESTRING(1 2, 3 4)", "MULTIPOINT(1 2, 3 4)", "MULTIPOINT((1 2), (3 4))",
                "MULTILINESTRING((1 2, 3 4), (5 6, 7 8))",
                "MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))",
                "GEOMETRYCOLLECTION(POINT(1 2), LINESTRING(1 2, 3 4))"):
        parsed = parse_text(f"s_within(geometry, {wkt})")
        assert parsed.op is SpatialOp.WITHIN
        assert parsed.right.geometry.equals(shapely.from_wkt(wkt)), wkt
    box = parse_text("s_disjoint(BBOX(1, 2, 3, 4), geometry)")
    assert box.left.geometry.equals(shapely.box(1, 2, 3, 4)) and box.right == P("geometry")
    assert parse_text("s_contains(geometry, BBOX(1, 2, 0, 3, 4, 9))").right.geometry.equals(shapely.box(1, 2, 3, 4))


def test_temporal_functions_and_intervals():
    got = parse_text("T_DURING(ts, INTERVAL('2026-11-25', '..'))")
    assert got == TemporalPredicate(TemporalOp.DURING, P("ts"), Interval(L(dt.date(2026, 11, 25)), None))
    got = parse_text("t_metby(INTERVAL(start_at, TIMESTAMP('2026-11-25T08:00:00Z')), DATE('2026-11-24'))")
    assert got.left == Interval(P("start_at"), L(dt.datetime(2026, 11, 25, 8, tzinfo=UTC)))
    assert got.right == L(dt.date(2026, 11, 24))
    for op in TemporalOp:
        assert parse_text(f"{op.value.upper()}(ts, TIMESTAMP('2026-11-25T08:00:00Z'))").op is op


@pytest.mark.parametrize(("text", "position", "words"), [
    ("height_m >", 11, "end of the filter"),
    ("a = = 3", 5, "'='"),
    ("a = 'unterminated", 5, "unterminated"),
    ("a = 1 b", 7, "'b'"),
    ("(a = 1", 7, "')'"),
    ("a ~ 1", 3, "'~'"),
    ("a IS NOT 3", 10, "NULL"),
    ("a", 2, "comparison operator"),
    ("a NOT = 1", 7, "LIKE, BETWEEN or IN"),
    ("a IN ()", 7, "property name or a literal"),
    ("S_INTERSECTS(geometry, POINT(1))", 31, "2 or 3 numbers"),
    ("S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 1 0, 0 1, 0 0)))", 24, "Self-intersection"),
    ("S_INTERSECTS(geometry, POINT EMPTY)", 30, "empty"),
    ("S_INTERSECTS(geometry, BBOX(3, 2, 1, 4))", 24, "min <= max"),
    ("S_INTERSECTS(geometry 'x')", 23, "','"),
    ("T_AFTER(ts, 3)", 13, "INTERVAL"),
    ("T_AFTER(ts, INTERVAL('yesterday', '..'))", 22, "RFC 3339"),
    ("d = DATE('2026-02-30')", 10, "not a valid date"),
    ("t = TIMESTAMP('2026-11-25T08:00:00')", 15, "timezone"),
    ("", 1, "empty"),
    ("   ", 1, "empty"),
    ("AND = 1", 1, "property name or a literal"),
])
def test_syntax_errors_carry_the_position(text, position, words):
    with pytest.raises(CqlSyntaxError) as caught:
        parse_text(text)
    assert caught.value.position == position
    assert f"at position {position}" in str(caught.value)
    assert words in str(caught.value)
    assert isinstance(caught.value, InvalidQuery)


def test_json_and_text_give_the_same_ast():
    pairs = [
        ("a = 1 AND NOT (b LIKE 'x%' OR c IS NULL)",
         {"op": "and", "args": [{"op": "=", "args": [{"property": "a"}, 1]},
                                {"op": "not", "args": [{"op": "or", "args": [
                                    {"op": "like", "args": [{"property": "b"}, "x%"]},
                                    {"op": "isNull", "args": [{"property": "c"}]}]}]}]}),
        ("a BETWEEN 1 AND 2", {"op": "between", "args": [{"property": "a"}, 1, 2]}),
        ("a IN ('x', 'y')", {"op": "in", "args": [{"property": "a"}, ["x", "y"]]}),
        ("S_INTERSECTS(geometry, POINT(114 22.5))",
         {"op": "s_intersects", "args": [{"property": "geometry"}, {"type": "Point", "coordinates": [114, 22.5]}]}),
        ("S_WITHIN(geometry, BBOX(1, 2, 3, 4))",
         {"op": "s_within", "args": [{"property": "geometry"}, {"bbox": [1, 2, 3, 4]}]}),
        ("T_METBY(ts, INTERVAL('2026-01-01', '..'))",
         {"op": "t_metBy", "args": [{"property": "ts"}, {"interval": ["2026-01-01", ".."]}]}),
        ("t > TIMESTAMP('2026-11-25T08:00:00Z') AND d = DATE('2026-11-25')",
         {"op": "and", "args": [{"op": ">", "args": [{"property": "t"}, {"timestamp": "2026-11-25T08:00:00Z"}]},
                                {"op": "=", "args": [{"property": "d"}, {"date": "2026-11-25"}]}]}),
        ("TRUE", True),
    ]
    for text, document in pairs:
        assert parse_text(text) == parse_json(document), text


@pytest.mark.parametrize(("document", "position"), [
    ('{"op": "=", "args": [1', 23),
    ({"op": "=", "args": [{"property": "a"}]}, "/args"),
    ({"op": "~", "args": []}, "/op"),
    ({"op": "and", "args": [{"op": "=", "args": [{"property": "a"}, 1]}, {"op": "=", "args": [{"x": 1}, 1]}]},
     "/args/1/args/0"),
    ({"op": "s_intersects", "args": [{"property": "geometry"}, {"type": "Point", "coordinates": [1]}]}, "/args/1"),
    ({"op": "t_after", "args": [{"property": "t"}, {"interval": ["2026-01-01"]}]}, "/args/1/interval"),
    ({"op": "=", "args": [{"property": "t"}, {"timestamp": "noon"}]}, "/args/1/timestamp"),
    ({"op": "in", "args": [{"property": "a"}, []]}, "/args/1"),
    (3, "/"),
])
def test_json_errors_carry_a_pointer(document, position):
    with pytest.raises(CqlSyntaxError) as caught:
        parse_json(document)
    assert caught.value.position == position


_names = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda s: s.upper() not in {"AND", "OR", "NOT", "LIKE", "BETWEEN", "IN", "IS", "NULL", "TRUE", "FALSE"})
_literals = st.one_of(st.integers(-10**6, 10**6), st.text(alphabet=st.characters(blacklist_categories=("Cs",)),
                                                                max_size=8), st.booleans())


def _render(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


@given(st.lists(st.tuples(_names, st.sampled_from(list(CompOp)), _literals), min_size=1, max_size=5),
       st.booleans())
def test_generated_comparisons_round_trip(terms, use_or):
    text = (" OR " if use_or else " AND ").join(f'"{n}" {op.value} {_render(v)}' for n, op, v in terms)
    parsed = parse_text(text)
    comparisons = [Comparison(op, P(n), L(v)) for n, op, v in terms]
    if len(comparisons) == 1:
        assert parsed == comparisons[0]
    else:
        assert parsed == (Or(tuple(comparisons)) if use_or else And(tuple(comparisons)))


def test_map_geometries_and_property_names():
    expr = parse_text("a = 1 AND S_INTERSECTS(geometry, POINT(1 2)) OR b IS NULL")
    moved = ast.map_geometries(expr, lambda g: shapely.transform(g, lambda c: c + 10))
    points = [n.geometry for n in ast.walk(moved) if isinstance(n, ast.GeometryLiteral)]
    assert [p.coords[0] for p in points] == [(11.0, 12.0)]
    assert ast.property_names(expr) == ["a", "geometry", "b"]
    assert ast.has_spatial(expr) and not ast.has_spatial(parse_text("a = 1"))
