r"""A recursive-descent parser for CQL2 text (OGC 21-065), producing the AST of :mod:`twin.cql2.ast`.

Supported: ``AND OR NOT``, parentheses, ``= <> < <= > >=`` (``!=`` too), ``[NOT] LIKE``, ``[NOT] BETWEEN``,
``[NOT] IN (…)``, ``IS [NOT] NULL``, ``TRUE``/``FALSE``, numbers, ``'text'`` (``''`` for a quote;
backslashes are plain characters, as LIKE escapes need),
``DATE('…')``, ``TIMESTAMP('…')``, ``INTERVAL(…, …)`` with ``'..'`` for an open end, property names (plain or
``"double quoted"``), WKT geometries (2D or Z) and ``BBOX(…)``, the eight ``S_*`` spatial and fifteen ``T_*``
temporal functions. Keywords and function names are case-insensitive. A syntax error raises
:class:`~twin.cql2.ast.CqlSyntaxError` with the 1-based character position.

>>> parse("height_m > 100 AND use IN ('office', 'mixed')")  # doctest: +NORMALIZE_WHITESPACE
And(args=(Comparison(op=<CompOp.GT: '>'>, left=Property(name='height_m'), right=Literal(value=100)),
          In(arg=Property(name='use'), values=(Literal(value='office'), Literal(value='mixed')))))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from twin.cql2 import ast
from twin.cql2.geometry import GEOMETRY_TYPES, build_geometry, date_value, instant_value, make_bbox

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<string>'(?:[^']|'')*')
    |(?P<qident>"(?:[^"]|"")+")
    |(?P<ident>[^\W\d][\w.:]*)
    |(?P<op><>|<=|>=|!=|[=<>(),])""",
    re.VERBOSE,
)
_COMPARISONS = {"=": "=", "<>": "<>", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_SPATIAL = {op.value.upper(): op for op in ast.SpatialOp}
_TEMPORAL = {op.value.upper(): op for op in ast.TemporalOp}
_T = TypeVar("_T")
_RESERVED = {"AND", "OR", "NOT", "LIKE", "BETWEEN", "IN", "IS", "NULL"}


@dataclass(frozen=True)
class Token:
    """A lexical token: its kind, text and 1-based position."""

    kind: str  # number, string, qident, ident, op, end
    text: str
    position: int

    @property
    def word(self) -> str:
        """The upper-cased text of an identifier (for keyword tests), or ``""``."""
        return self.text.upper() if self.kind == "ident" else ""


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``end`` token; unknown characters are syntax errors."""
    tokens: list[Token] = []
    index = 0
    while index < len(text):
        match = _TOKEN.match(text, index)
        if match is None:
            if text[index] == "'":
                raise ast.CqlSyntaxError("unterminated string literal", index + 1)
            raise ast.CqlSyntaxError(f"unexpected character {text[index]!r}", index + 1)
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), index + 1))
        index = match.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


def parse(text: str) -> ast.Expr:
    """Parse a CQL2 text filter into an expression; ``CqlSyntaxError`` with the position if it does not parse."""
    if not isinstance(text, str) or not text.strip():
        raise ast.CqlSyntaxError("the filter is empty", 1)
    return _Parser(tokenize(text)).parse()


class _Parser:
    def __init__(self, tokens: list[Token]):
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    # -- token helpers ---------------------------------------------------------------------------------------

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.token
        if token.kind != "end":
            self.index += 1
        return token

    def error(self, message: str, token: Token | None = None) -> ast.CqlSyntaxError:
        token = token or self.token
        found = "the end of the filter" if token.kind == "end" else repr(token.text)
        return ast.CqlSyntaxError(f"{message}, found {found}", token.position)

    def expect(self, text: str) -> Token:
        if self.token.text.upper() != text:
            raise self.error(f"expected {text!r}")
        return self.advance()

    def accept(self, word: str) -> bool:
        if self.token.word == word:
            self.advance()
            return True
        return False

    @contextmanager
    def nesting(self) -> Iterator[None]:
        """One more level of parentheses, NOT or GEOMETRYCOLLECTION; too many is a syntax error, not a crash."""
        if self.depth >= ast.MAX_NESTING:
            raise self.error(f"the filter nests deeper than {ast.MAX_NESTING} levels")
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def is_call(self, names: Collection[str]) -> bool:
        return self.token.word in names and self.peek().text == "("

    # -- boolean structure -----------------------------------------------------------------------------------

    def parse(self) -> ast.Expr:
        expr = self.or_expr()
        if self.token.kind != "end":
            raise self.error("expected AND, OR or the end of the filter")
        return expr

    def or_expr(self) -> ast.Expr:
        args = [self.and_expr()]
        while self.accept("OR"):
            args.append(self.and_expr())
        return args[0] if len(args) == 1 else ast.Or(tuple(args))

    def and_expr(self) -> ast.Expr:
        args = [self.not_expr()]
        while self.accept("AND"):
            args.append(self.not_expr())
        return args[0] if len(args) == 1 else ast.And(tuple(args))

    def not_expr(self) -> ast.Expr:
        if self.accept("NOT"):
            with self.nesting():
                return ast.Not(self.not_expr())
        return self.primary()

    def primary(self) -> ast.Expr:
        token = self.token
        if token.text == "(":
            self.advance()
            with self.nesting():
                expr = self.or_expr()
            self.expect(")")
            return expr
        if self.is_call(_SPATIAL):
            op = _SPATIAL[self.advance().word]
            left, right = self.arguments(self.spatial_operand)
            return ast.SpatialPredicate(op, left, right)
        if self.is_call(_TEMPORAL):
            op_t = _TEMPORAL[self.advance().word]
            first, second = self.arguments(self.temporal_operand)
            return ast.TemporalPredicate(op_t, first, second)
        if token.kind == "end":
            raise self.error("expected a predicate")
        return self.predicate()

    def arguments(self, operand: Callable[[], _T]) -> tuple[_T, _T]:
        self.expect("(")
        first = operand()
        self.expect(",")
        second = operand()
        self.expect(")")
        return first, second

    def predicate(self) -> ast.Expr:
        start = self.token
        left = self.scalar()
        token = self.token
        if token.kind == "op" and token.text in _COMPARISONS:
            self.advance()
            return ast.Comparison(ast.CompOp(_COMPARISONS[token.text]), left, self.scalar())
        negated = self.accept("NOT")
        if self.accept("LIKE"):
            expr: ast.Expr = ast.Like(left, self.scalar())
        elif self.accept("BETWEEN"):
            low = self.scalar()
            self.expect("AND")
            expr = ast.Between(left, low, self.scalar())
        elif self.accept("IN"):
            self.expect("(")
            values = [self.scalar()]
            while self.token.text == ",":
                self.advance()
                values.append(self.scalar())
            self.expect(")")
            expr = ast.In(left, tuple(values))
        elif not negated and self.accept("IS"):
            is_not = self.accept("NOT")
            self.expect("NULL")
            return ast.Not(ast.IsNull(left)) if is_not else ast.IsNull(left)
        elif not negated and isinstance(left, ast.Literal) and isinstance(left.value, bool):
            return ast.Const(left.value)
        else:
            expected = "LIKE, BETWEEN or IN" if negated else "a comparison operator, LIKE, BETWEEN, IN or IS NULL"
            raise self.error(f"expected {expected} after {start.text!r}")
        return ast.Not(expr) if negated else expr

    # -- operands --------------------------------------------------------------------------------------------

    def scalar(self) -> ast.Scalar:
        token = self.token
        if token.kind == "number":
            self.advance()
            return ast.Literal(_number(token.text))
        if token.kind == "string":
            self.advance()
            return ast.Literal(_string(token.text))
        if token.kind == "qident":
            self.advance()
            return ast.Property(token.text[1:-1].replace('""', '"'))
        if token.kind == "ident":
            if token.word in ("TRUE", "FALSE"):
                self.advance()
                return ast.Literal(token.word == "TRUE")
            if self.is_call({"DATE", "TIMESTAMP"}):
                return self.instant()
            if token.word in _RESERVED:
                raise self.error("expected a property name or a literal")
            self.advance()
            return ast.Property(token.text)
        raise self.error("expected a property name or a literal")

    def instant(self) -> ast.Literal:
        word = self.advance().word
        self.expect("(")
        token = self.token
        if token.kind != "string":
            raise self.error(f"{word} needs a quoted value")
        self.advance()
        self.expect(")")
        value = _string(token.text)
        try:
            return ast.Literal(date_value(value) if word == "DATE" else instant_value(value))
        except ValueError as err:
            raise ast.CqlSyntaxError(str(err), token.position) from None

    def temporal_operand(self) -> ast.TemporalOperand:
        if self.is_call({"INTERVAL"}):
            self.advance()
            start, end = self.arguments(self.interval_end)
            return ast.Interval(start, end)
        if self.is_call({"DATE", "TIMESTAMP"}):
            return self.instant()
        token = self.token
        if token.kind in ("ident", "qident") and token.word not in _RESERVED:
            operand = self.scalar()
            if isinstance(operand, ast.Property):
                return operand
        raise self.error("expected a property, DATE(…), TIMESTAMP(…) or INTERVAL(…)", token)

    def interval_end(self) -> ast.Property | ast.Literal | None:
        token = self.token
        if token.kind == "string":
            self.advance()
            text = _string(token.text)
            if text == "..":
                return None
            try:
                return ast.Literal(date_value(text) if len(text) == 10 else instant_value(text))
            except ValueError as err:
                raise ast.CqlSyntaxError(str(err), token.position) from None
        if self.is_call({"DATE", "TIMESTAMP"}):
            return self.instant()
        if token.kind in ("ident", "qident") and token.word not in _RESERVED:
            operand = self.scalar()
            if isinstance(operand, ast.Property):
                return operand
        raise self.error("expected '..', a date or timestamp string, DATE(…), TIMESTAMP(…) or a property", token)

    def spatial_operand(self) -> ast.SpatialOperand:
        token = self.token
        if self.is_call({"BBOX"}):
            self.advance()
            self.expect("(")
            values = [self.number()]
            while self.token.text == ",":
                self.advance()
                values.append(self.number())
            self.expect(")")
            try:
                return ast.GeometryLiteral(make_bbox(values))
            except ValueError as err:
                raise ast.CqlSyntaxError(str(err), token.position) from None
        if token.word in GEOMETRY_TYPES:
            geometry = self.wkt()
            try:
                return ast.GeometryLiteral(build_geometry(geometry))
            except ValueError as err:
                raise ast.CqlSyntaxError(str(err), token.position) from None
        if token.kind in ("ident", "qident") and token.word not in _RESERVED:
            operand = self.scalar()
            if isinstance(operand, ast.Property):
                return operand
        raise self.error("expected a property, a WKT geometry or BBOX(…)", token)

    # -- WKT -------------------------------------------------------------------------------------------------

    def number(self) -> float:
        token = self.token
        if token.kind != "number":
            raise self.error("expected a number")
        self.advance()
        return float(token.text)

    def wkt(self) -> tuple[str, object]:
        """``(TYPE, nested coordinate lists)`` of one WKT geometry; ``Z`` after the type is allowed."""
        kind = self.advance().word
        self.accept("Z")
        if self.token.word == "EMPTY":
            raise self.error("empty geometries are not supported")
        if kind == "GEOMETRYCOLLECTION":
            self.expect("(")
            with self.nesting():
                members = [self.wkt_member()]
                while self.token.text == ",":
                    self.advance()
                    members.append(self.wkt_member())
            self.expect(")")
            return kind, members
        depth = {"POINT": 0, "LINESTRING": 1, "POLYGON": 2, "MULTIPOINT": 1, "MULTILINESTRING": 2,
                 "MULTIPOLYGON": 3}[kind]
        if kind == "POINT":
            self.expect("(")
            coords: object = self.position()
            self.expect(")")
            return kind, coords
        return kind, self.nested(depth, multipoint=kind == "MULTIPOINT")

    def wkt_member(self) -> tuple[str, object]:
        if self.token.word not in GEOMETRY_TYPES:
            raise self.error("expected a WKT geometry")
        return self.wkt()

    def position(self) -> list[float]:
        values = [self.number()]
        while self.token.kind == "number":
            values.append(self.number())
        if len(values) not in (2, 3):
            raise ast.CqlSyntaxError(f"a position has 2 or 3 numbers, got {len(values)}", self.token.position)
        return values

    def nested(self, depth: int, multipoint: bool = False) -> list[object]:
        """``depth`` levels of parenthesised, comma-separated lists ending in positions."""
        self.expect("(")
        items: list[object] = []
        while True:
            if depth == 1:
                if multipoint and self.token.text == "(":  # MULTIPOINT((1 2), (3 4))
                    self.advance()
                    items.append(self.position())
                    self.expect(")")
                else:
                    items.append(self.position())
            else:
                items.append(self.nested(depth - 1))
            if self.token.text != ",":
                break
            self.advance()
        self.expect(")")
        return items


def _number(text: str) -> int | float:
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    return float(text)


def _string(token: str) -> str:
    """The value of a quoted literal: ``''`` stands for a quote."""
    return token[1:-1].replace("''", "'")
