"""CQL2 (OGC Common Query Language): one typed AST, read from CQL2 text or CQL2 JSON, evaluated by the stores.

>>> from twin.cql2 import parse_text
>>> parse_text("use = 'office'")
Comparison(op=<CompOp.EQ: '='>, left=Property(name='use'), right=Literal(value='office'))
"""

from twin.cql2.ast import CqlSyntaxError, Expr
from twin.cql2.json import parse as parse_json
from twin.cql2.text import parse as parse_text

__all__ = ["CqlSyntaxError", "Expr", "parse_json", "parse_text"]
