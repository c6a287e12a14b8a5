"""OGC CQL2 filters (text and JSON) compiled to safe PostgreSQL for one catalogue layer.

Why our own compiler: pygeofilter's SQL backends build SQL by string formatting, do not know the
layer's field types (so a bad literal surfaces as a database error, i.e. a 500 instead of a 400)
and cannot restrict properties to those a caller may see. We therefore use pygeofilter only to
*parse* (``cql2_text.parse`` / ``cql2_json.parse``) and walk its AST here, composing every
fragment with ``psycopg.sql`` (``sql.SQL`` constants, ``sql.Identifier`` for whitelisted
columns, ``sql.Literal`` for values). Every literal is type-checked against the catalogue and
cast, so any bad input ends as a ``FilterError`` (HTTP 400), never as a PostgreSQL error.

pygeofilter 0.4's CQL2-text grammar lags the standard in a few places; ``parse_filter`` bridges
the gaps with a small string-literal-aware token rewrite *before* handing the text to
pygeofilter (pygeofilter still does all the parsing):

* function-style temporal and array predicates, ``T_AFTER(a, b)`` / ``A_CONTAINS(a, ('x'))``
  (pygeofilter only knows an infix ``a T_AFTER b`` form and has no array predicates in text);
* ``INTERVAL`` with dates, open ends ``'..'`` or property bounds (pygeofilter accepts only two
  full timestamps);
* ``NOT ( <condition> )`` (pygeofilter only accepts ``NOT`` before a single predicate);
* doubled quotes inside strings (``'O''Brien'``) and strings spanning lines;
* lower-case WKT / ``DATE`` / ``TIMESTAMP`` / ``BBOX`` keywords.

pygeofilter also maps ``T_INTERSECTS`` onto its ``TimeOverlaps`` node (a different relation),
misorders the JSON ``bbox`` array, ignores the standard JSON ``between`` form and ``accenti``,
and parses JSON timestamps with ``dateparser`` (which accepts "yesterday"); those are fixed in a
pre-pass over the JSON.

Supported grammar (both encodings):

* ``AND``, ``OR``, ``NOT``; ``INCLUDE``/``EXCLUDE`` (text), ``true``/``false`` (JSON);
* ``=  <>  <  <=  >  >=``, ``[NOT] BETWEEN``, ``[NOT] LIKE`` (``%`` any string, ``_`` one
  character, ``\\`` escapes), ``[NOT] IN``, ``IS [NOT] NULL``;
* ``CASEI(x)`` -> ``lower(x)`` and ``ACCENTI(x)`` -> ``unaccent(x)`` on strings;
* arithmetic ``+ - * /`` on numbers (computed as ``numeric``; division by zero gives NULL);
* ``S_INTERSECTS S_WITHIN S_CONTAINS S_DISJOINT S_TOUCHES S_CROSSES S_OVERLAPS S_EQUALS`` with
  WKT / GeoJSON literals, ``BBOX(minx, miny, maxx, maxy)`` literals, pygeofilter's
  ``ENVELOPE(x1 x2 y1 y2)``, the ``BBOX(geom, minx, miny, maxx, maxy[, crs])`` predicate and
  ``RELATE(a, b, 'pattern')``;
* ``T_AFTER T_BEFORE T_CONTAINS T_DISJOINT T_DURING T_EQUALS T_FINISHEDBY T_FINISHES
  T_INTERSECTS T_MEETS T_METBY T_OVERLAPPEDBY T_OVERLAPS T_STARTEDBY T_STARTS`` (and
  pygeofilter's ``T_BEGINS T_BEGUNBY T_ENDS T_ENDEDBY`` aliases) on date/datetime properties,
  ``DATE()``, ``TIMESTAMP()`` and ``INTERVAL()`` (open ends ``'..'``, property bounds);
* ``A_CONTAINS A_CONTAINEDBY A_OVERLAPS A_EQUALS`` on ``str[]`` properties.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import shapely
import shapely.geometry
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from psycopg import sql
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_json import parse as _pgf_parse_json
from pygeofilter.parsers.cql2_text import parse as _pgf_parse_text
from pygeofilter.parsers.cql2_text import parser as _cql2_text_module
from pyproj.exceptions import ProjError

from layers.crs import OGC_CRS_SRIDS, UnsupportedCRS, parse_crs_uri, transformer
from layers.errors import BadRequest, Message
from layers.model import Layer

__all__ = ["FilterError", "TimeIntersects", "filter_to_sql", "parse_filter"]

# Bounds that keep a hostile filter from costing more than a bad request should.
MAX_FILTER_CHARS = 64_000
MAX_DEPTH = 64
MAX_ARITHMETIC = 32
# A LIKE pattern is matched by backtracking: thousands of wildcards make one comparison cost
# seconds. Real searches use a few; longer patterns are refused up front.
MAX_LIKE_CHARS = 1_000
MAX_LIKE_WILDCARDS = 16

STORAGE_SRID = 4326


class FilterError(BadRequest, ValueError):
    """Message names the problem (property, operator, position) for a 400 response. The common
    ones name their catalogue entry (api/messages.py); the others read "invalid CQL2 filter" in
    Vietnamese and keep their precise English text (`lang=en`)."""

    fallback = Message("cql2_invalid")


@dataclass
class TimeIntersects(ast.TemporalPredicate):
    """CQL2 ``T_INTERSECTS``: the intervals share at least one instant.

    pygeofilter 0.4 parses ``t_intersects`` into ``TimeOverlaps`` (a strict partial overlap,
    which would silently drop instants inside the interval), so we keep our own node.
    """

    op: ClassVar[ast.TemporalComparisonOp] = ast.TemporalComparisonOp.TOVERLAPS

    def get_template(self) -> str:
        return "{} T_INTERSECTS {}"


# --- names -----------------------------------------------------------------------------------

# CQL2 1.0 names (and pygeofilter's older aliases) -> AST node class.
TEMPORAL_PREDICATES: dict[str, type[ast.TemporalPredicate]] = {
    "t_after": ast.TimeAfter,
    "t_before": ast.TimeBefore,
    "t_contains": ast.TimeContains,
    "t_disjoint": ast.TimeDisjoint,
    "t_during": ast.TimeDuring,
    "t_equals": ast.TimeEquals,
    "t_finishedby": ast.TimeEndedBy,
    "t_finishes": ast.TimeEnds,
    "t_intersects": TimeIntersects,
    "t_meets": ast.TimeMeets,
    "t_metby": ast.TimeMetBy,
    "t_overlappedby": ast.TimeOverlappedBy,
    "t_overlaps": ast.TimeOverlaps,
    "t_startedby": ast.TimeBegunBy,
    "t_starts": ast.TimeBegins,
    "t_begins": ast.TimeBegins,
    "t_begunby": ast.TimeBegunBy,
    "t_ends": ast.TimeEnds,
    "t_endedby": ast.TimeEndedBy,
}
ARRAY_PREDICATES: dict[str, type[ast.ArrayPredicate]] = {
    "a_contains": ast.ArrayContains,
    "a_containedby": ast.ArrayContainedBy,
    "a_overlaps": ast.ArrayOverlaps,
    "a_equals": ast.ArrayEquals,
}
_CQL2_NAME = {cls: name.upper() for name, cls in TEMPORAL_PREDICATES.items() if name[2:] not in (
    "begins", "begunby", "ends", "endedby")}
_CQL2_NAME.update({cls: name.upper() for name, cls in ARRAY_PREDICATES.items()})

# JSON operators pygeofilter's walker understands as they are (beyond those we rewrite).
_JSON_PASSTHROUGH_OPS = {
    "and": None, "or": None, "not": 1, "isnull": 1, "like": 2, "in": 2,
    "=": 2, "<>": 2, "<": 2, "<=": 2, ">": 2, ">=": 2,
    "+": 2, "-": 2, "*": 2, "/": 2,
    "s_intersects": 2, "s_equals": 2, "s_disjoint": 2, "s_touches": 2, "s_within": 2,
    "s_overlaps": 2, "s_crosses": 2, "s_contains": 2,
}
_JSON_CANONICAL = {"isnull": "isNull"}

_COMPARISON_SQL: dict[type[ast.Comparison], str] = {
    ast.Equal: "=", ast.NotEqual: "<>", ast.LessThan: "<", ast.LessEqual: "<=",
    ast.GreaterThan: ">", ast.GreaterEqual: ">=",
}
_ARITHMETIC_SQL: dict[type[ast.Arithmetic], str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mul: "*", ast.Div: "/",
}
_SPATIAL_SQL: dict[type[ast.SpatialComparisonPredicate], tuple[str, str]] = {
    ast.GeometryIntersects: ("S_INTERSECTS", "ST_Intersects"),
    ast.GeometryWithin: ("S_WITHIN", "ST_Within"),
    ast.GeometryContains: ("S_CONTAINS", "ST_Contains"),
    ast.GeometryDisjoint: ("S_DISJOINT", "ST_Disjoint"),
    ast.GeometryTouches: ("S_TOUCHES", "ST_Touches"),
    ast.GeometryCrosses: ("S_CROSSES", "ST_Crosses"),
    ast.GeometryOverlaps: ("S_OVERLAPS", "ST_Overlaps"),
    ast.GeometryEquals: ("S_EQUALS", "ST_Equals"),
}
_ARRAY_SQL: dict[type[ast.ArrayPredicate], str] = {
    ast.ArrayContains: "@>", ast.ArrayContainedBy: "<@", ast.ArrayOverlaps: "&&",
    # Order-sensitive, as PostgreSQL array equality (and pgstac) define it.
    ast.ArrayEquals: "=",
}
# Allen's interval relations as CQL2 defines them, over (start, end) of left (l) and right (r).
# Instants are intervals whose start equals their end. ("AND"|"OR", conditions)
_TEMPORAL_RULES: dict[type[ast.TemporalPredicate], tuple[str, tuple[tuple[str, str, str], ...]]] = {
    ast.TimeBefore: ("AND", (("lh", "<", "rl"),)),
    ast.TimeAfter: ("AND", (("ll", ">", "rh"),)),
    ast.TimeMeets: ("AND", (("lh", "=", "rl"),)),
    ast.TimeMetBy: ("AND", (("ll", "=", "rh"),)),
    ast.TimeOverlaps: ("AND", (("ll", "<", "rl"), ("rl", "<", "lh"), ("lh", "<", "rh"))),
    ast.TimeOverlappedBy: ("AND", (("rl", "<", "ll"), ("ll", "<", "rh"), ("lh", ">", "rh"))),
    ast.TimeBegins: ("AND", (("ll", "=", "rl"), ("lh", "<", "rh"))),
    ast.TimeBegunBy: ("AND", (("ll", "=", "rl"), ("lh", ">", "rh"))),
    ast.TimeDuring: ("AND", (("ll", ">", "rl"), ("lh", "<", "rh"))),
    ast.TimeContains: ("AND", (("ll", "<", "rl"), ("lh", ">", "rh"))),
    ast.TimeEnds: ("AND", (("ll", ">", "rl"), ("lh", "=", "rh"))),
    ast.TimeEndedBy: ("AND", (("ll", "<", "rl"), ("lh", "=", "rh"))),
    ast.TimeEquals: ("AND", (("ll", "=", "rl"), ("lh", "=", "rh"))),
    ast.TimeDisjoint: ("OR", (("ll", ">", "rh"), ("lh", "<", "rl"))),
    TimeIntersects: ("AND", (("ll", "<=", "rh"), ("lh", ">=", "rl"))),
}
_FUNCTIONS = {"lower": "lower", "casei": "lower", "accenti": "unaccent"}


# --- public API ------------------------------------------------------------------------------


def parse_filter(value: str | dict, lang: str = "cql2-text") -> ast.Node:
    """Parse a CQL2 filter into a pygeofilter AST (normalised, see the module docstring).

    ``lang`` is ``"cql2-text"`` or ``"cql2-json"``; JSON may be given as text or as a decoded
    object. Every failure, including pygeofilter/lark exceptions, becomes a ``FilterError``.
    """
    if lang == "cql2-text":
        if not isinstance(value, str):
            raise FilterError("a cql2-text filter must be a string")
        _check_size(value)
        node: Any = _TextParser(value).parse()
    elif lang == "cql2-json":
        if isinstance(value, bytes | bytearray):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError as e:
                raise FilterError("cql2-json filter is not UTF-8") from e
        if isinstance(value, str):
            _check_size(value)
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                raise FilterError(
                    f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}",
                    message=Message("cql2_json", {"line": e.lineno, "column": e.colno})) from None
            except ValueError as e:  # e.g. integers beyond Python's digit limit
                raise FilterError(f"invalid JSON: {e}") from None
            except RecursionError:
                raise FilterError("filter is nested too deeply", message=Message("cql2_nested")) from None
        node = _parse_json(value)
    else:
        raise FilterError(f"unsupported filter language {lang!r}; use 'cql2-text' or 'cql2-json'",
                          message=Message("cql2_language", {"value": lang}))
    if isinstance(node, bool):
        return ast.Include(not node)
    if not isinstance(node, ast.Node) or isinstance(node, ast.Expression):
        raise FilterError(f"the filter must be a condition, got {_describe(node)}")
    return node


def filter_to_sql(
    node: ast.Node,
    layer: Layer,
    *,
    allowed: Collection[str] | None = None,
    filter_srid: int = STORAGE_SRID,
    filter_swap_axes: bool = False,
    table_alias: str | None = None,
) -> sql.Composed:
    """Compile a parsed filter into a boolean SQL expression over ``layer``'s table.

    Properties are the layer's fields (limited to ``allowed``, the fields the caller may see),
    its id column and its geometry column (also as ``geometry``). Geometry literals are read in
    ``filter_srid`` and transformed to the storage CRS in SQL, keeping ``ST_*(geom, literal)``
    index-friendly.
    """
    if isinstance(filter_srid, bool) or not isinstance(filter_srid, int) or (
        filter_srid not in OGC_CRS_SRIDS
    ):
        raise FilterError(f"unsupported filter CRS EPSG:{filter_srid}",
                          message=Message("cql2_crs", {"srid": filter_srid}))
    compiler = _Compiler(layer, allowed, filter_srid, table_alias)
    # Latitude-first CRS (EPSG:4326, EPSG:4756 as URIs): literals arrive as (lat, lon).
    compiler.swap_axes = filter_swap_axes
    return sql.Composed([compiler.condition(node, 0)])


# --- helpers shared by the parsers -----------------------------------------------------------


def _check_size(text: str) -> None:
    if len(text) > MAX_FILTER_CHARS:
        raise FilterError(f"filter is longer than {MAX_FILTER_CHARS} characters",
                          message=Message("cql2_too_long", {"n": MAX_FILTER_CHARS}))
    if not text.strip():
        raise FilterError("empty filter", message=Message("cql2_empty"))


_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}(:?\d{2})?)?")


def _parse_instant(text: str) -> date | datetime:
    """Strict ISO 8601 date or timestamp; a timestamp without offset is UTC (as CQL2 requires)."""
    s = text.strip()
    try:
        if _DATE_RE.fullmatch(s):
            return date.fromisoformat(s)
        if _DATETIME_RE.fullmatch(s):
            s = s[:-1] + "+00:00" if s[-1] in "Zz" else s
            if "." in s:  # fromisoformat takes at most microseconds
                head, _, frac = s.partition(".")
                digits = re.match(r"\d+", frac)
                assert digits is not None
                s = f"{head}.{digits.group()[:6].ljust(6, '0')}{frac[digits.end():]}"
            return _utc(datetime.fromisoformat(s.replace("t", "T")))
    except ValueError:
        pass
    raise ValueError(f"{text!r} is not an ISO 8601 date or timestamp")


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _describe(value: Any) -> str:
    """A short, user-facing name for an AST node or literal."""
    if isinstance(value, ast.Attribute):
        return f"property {value.name!r}"
    if isinstance(value, ast.Function):
        return f"function {value.name.upper()}()"
    if isinstance(value, values.Geometry | values.Envelope):
        return "a geometry"
    if isinstance(value, values.Interval):
        return "an INTERVAL"
    if isinstance(value, datetime):
        return f"TIMESTAMP('{value.isoformat()}')"
    if isinstance(value, date):
        return f"DATE('{value.isoformat()}')"
    if isinstance(value, ast.Arithmetic):
        return "an arithmetic expression"
    if isinstance(value, ast.Node):
        name = _CQL2_NAME.get(type(value))
        return name or type(value).__name__
    return repr(value)


class _Normaliser:
    """Post-parse clean-up shared by both encodings.

    Turns the text rewriter's placeholder functions back into proper nodes, restores strings
    that had to be hidden from pygeofilter's lexer, converts ``BBOX(...)`` literals to
    envelopes and makes every timestamp timezone-aware UTC.
    """

    def __init__(self, tag: str | None = None, strings: dict[str, str] | None = None,
                 subs: list[Any] | None = None) -> None:
        self.tag = tag
        self.strings = strings or {}
        self.subs = subs or []

    def __call__(self, node: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise FilterError("filter is nested too deeply", message=Message("cql2_nested"))
        if isinstance(node, ast.Combination):
            items = [self(item, depth + 1) for item in _flatten(node)]
            return type(node).from_items(*items)
        if isinstance(node, ast.Not):
            node.sub_node = self(node.sub_node, depth + 1)
            return node
        if (self.tag and isinstance(node, ast.Equal) and node.rhs is True
                and isinstance(node.lhs, ast.Function) and node.lhs.name.startswith(self.tag)):
            return self._placeholder_predicate(node.lhs, depth)
        if isinstance(node, ast.Function):
            node.arguments = [self(a, depth + 1) for a in node.arguments]
            return self._function(node)
        if isinstance(node, list):
            return [self(item, depth + 1) for item in node]
        if isinstance(node, str):
            return self.strings.get(node, node)
        if isinstance(node, datetime):
            return _utc(node)
        if isinstance(node, values.Interval):
            node.start = self._interval_end(self(node.start, depth + 1))
            node.end = self._interval_end(self(node.end, depth + 1))
            return node
        if isinstance(node, ast.Node) and is_dataclass(node):
            for f in fields(node):
                setattr(node, f.name, self(getattr(node, f.name), depth + 1))
            return node
        return node

    def _placeholder_predicate(self, func: ast.Function, depth: int) -> ast.Node:
        assert self.tag is not None
        kind = func.name[len(self.tag):]
        if kind == "sub":  # the NOT before it is still in the parsed text
            return self(self.subs[int(func.arguments[0])], depth + 1)
        args = [self(a, depth + 1) for a in func.arguments]
        cls: Any = TEMPORAL_PREDICATES.get(kind) or ARRAY_PREDICATES.get(kind)
        if cls is None:  # pragma: no cover - the rewriter only emits known names
            raise FilterError(f"unsupported predicate {kind.upper()}")
        if len(args) != 2:
            raise FilterError(f"{kind.upper()} takes 2 arguments, got {len(args)}")
        return cls(*args)

    def _function(self, node: ast.Function) -> Any:
        name = node.name
        if self.tag and name == self.tag + "interval":
            if len(node.arguments) != 2:
                raise FilterError(f"INTERVAL takes 2 arguments, got {len(node.arguments)}")
            return values.Interval(*(self._interval_end(a) for a in node.arguments))
        if self.tag and name == self.tag + "array":
            return list(node.arguments)
        if name == "bbox":
            return _bbox_literal(node.arguments)
        return node

    @staticmethod
    def _interval_end(value: Any) -> Any:
        if value is None or value == "..":
            return None
        if isinstance(value, str):
            try:
                return _parse_instant(value)
            except ValueError:
                raise FilterError(
                    f"invalid INTERVAL bound {value!r}: use an ISO 8601 date or timestamp, "
                    "or '..' for an open end") from None
        if isinstance(value, datetime):
            return _utc(value)
        if isinstance(value, date | ast.Attribute):
            return value
        raise FilterError(f"invalid INTERVAL bound {_describe(value)}")


def _flatten(node: ast.Combination) -> list[Any]:
    """Operands of a chain of the same AND/OR, iteratively (long chains are left-deep)."""
    cls = type(node)
    out: list[Any] = []
    stack: list[Any] = [node]
    while stack:
        item = stack.pop()
        if type(item) is cls:
            stack.append(item.rhs)
            stack.append(item.lhs)
        else:
            out.append(item)
    return out


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise FilterError(f"{what} must be a number, got {_describe(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise FilterError(f"{what} must be finite, got {value!r}")
    return number


def _bbox_literal(args: list[Any]) -> values.Envelope:
    """CQL2 ``BBOX(minx, miny, maxx, maxy)`` (or 6 numbers with z) as an envelope literal."""
    if len(args) == 6:
        args = [args[0], args[1], args[3], args[4]]
    if len(args) != 4:
        raise FilterError(f"BBOX takes 4 or 6 numbers, got {len(args)}")
    minx, miny, maxx, maxy = (_number(a, "a BBOX coordinate") for a in args)
    if minx > maxx or miny > maxy:
        raise FilterError("BBOX must be (minx, miny, maxx, maxy) with min <= max "
                          "(boxes across the antimeridian are not supported)")
    return values.Envelope(minx, maxx, miny, maxy)


# --- cql2-text -------------------------------------------------------------------------------

# Stop pygeofilter's debug-mode parser from dumping its state stack to stdout on every bad
# filter (pygeofilter builds its Lark parser with debug=True).
with contextlib.suppress(AttributeError):  # other lark/pygeofilter layouts: leave it be
    _lalr = _cql2_text_module.parser.parser.parser.parser  # Lark > frontend > LALR > _Parser
    if isinstance(_lalr.debug, bool):
        _lalr.debug = False

_TOKEN_RE = re.compile(
    r"""(?P<str>'(?:[^']|'')*')
      | (?P<badstr>'.*)
      | (?P<qid>"[^"]*")
      | (?P<word>[A-Za-z_][A-Za-z0-9_:.]*)
      | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<ws>\s+)
      | (?P<lp>\()
      | (?P<rp>\))
      | (?P<comma>,)
      | (?P<other>.)""",
    re.X | re.S,
)
_UPPERCASE_KEYWORDS = {
    "POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING", "MULTIPOLYGON",
    "GEOMETRYCOLLECTION", "TIMESTAMP", "DATE", "ENVELOPE", "BBOX", "RELATE",
}
_TERMINAL_NAMES = {
    "RPAR": "')'", "LPAR": "'('", "COMMA": "','", "$END": "end of filter", "AND": "AND",
    "OR": "OR", "SINGLE_QUOTED": "a string", "INT": "a number", "FLOAT": "a number",
}


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""


class _TextParser:
    """Rewrites the few standard CQL2-text forms pygeofilter lacks, then lets it parse.

    The rewrite works on tokens (so nothing inside string literals is touched) and keeps a map
    from rewritten offsets back to the user's text, so syntax errors point at the user's input.
    Placeholder names carry a per-call random tag, so a filter cannot forge them.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.tag = f"geoioc{secrets.token_hex(4)}_"
        self.strings: dict[str, str] = {}
        self.subs: list[Any] = []
        self.tokens: list[_Tok] = []

    def parse(self) -> Any:
        tokens = self._tokenize()
        self.tokens = tokens
        node = self._parse_tokens(tokens)
        return _Normaliser(self.tag, self.strings, self.subs)(node)

    def _tokenize(self) -> list[_Tok]:
        tokens = []
        for m in _TOKEN_RE.finditer(self.text):
            kind = m.lastgroup or "other"
            if kind == "badstr":
                raise FilterError(f"unterminated string starting at position {m.start() + 1}")
            tokens.append(_Tok(kind, m.group(), m.start()))
        opened: list[int] = []
        for t in tokens:
            if t.kind == "lp":
                opened.append(t.pos)
            elif t.kind == "rp" and not opened:
                raise FilterError(f"syntax error: ')' at position {t.pos + 1} has no matching '('")
            elif t.kind == "rp":
                opened.pop()
        if opened:
            raise FilterError(f"syntax error: '(' at position {opened[-1] + 1} is never closed")
        return tokens

    # The rewrite: edits keyed by token index, then one pass that emits the new text.
    def _parse_tokens(self, tokens: list[_Tok]) -> Any:
        sig = [i for i, t in enumerate(tokens) if t.kind != "ws"]
        before: dict[int, list[str]] = {}
        replace: dict[int, str] = {}
        after: dict[int, list[str]] = {}

        def tok(k: int) -> _Tok | None:
            return tokens[sig[k]] if 0 <= k < len(sig) else None

        def matching(k: int) -> int | None:
            depth = 0
            for j in range(k, len(sig)):
                kind = tokens[sig[j]].kind
                depth += kind == "lp"
                depth -= kind == "rp"
                if depth == 0:
                    return j
            return None

        def predicate_start(k: int) -> bool:
            prev = tok(k - 1)
            return prev is None or prev.kind == "lp" or prev.upper in ("AND", "OR", "NOT")

        k = 0
        while k < len(sig):
            t = tokens[sig[k]]
            nxt = tok(k + 1)
            word = t.upper
            opens = nxt is not None and nxt.kind == "lp"
            if t.kind == "str" and ("''" in t.text or "\n" in t.text or "\r" in t.text):
                placeholder = f"{self.tag}s{len(self.strings)}"
                self.strings[placeholder] = t.text[1:-1].replace("''", "'")
                replace[sig[k]] = f"'{placeholder}'"
            elif word in _UPPERCASE_KEYWORDS and opens:
                replace[sig[k]] = word
            elif word == "INTERVAL" and opens:
                replace[sig[k]] = f"{self.tag}interval".upper()
            elif word.lower() in TEMPORAL_PREDICATES and opens and predicate_start(k):
                close = matching(k + 1)
                if close is not None:
                    replace[sig[k]] = f"{self.tag}{word.lower()}"
                    after.setdefault(sig[close], []).append(" = TRUE")
            elif word.lower() in TEMPORAL_PREDICATES and not predicate_start(k):
                self._infix_temporal(tokens, sig, k, before, replace, after)
            elif word.lower() in ARRAY_PREDICATES and opens and predicate_start(k):
                close = matching(k + 1)
                if close is not None:
                    replace[sig[k]] = f"{self.tag}{word.lower()}"
                    after.setdefault(sig[close], []).append(" = TRUE")
                    self._mark_array_literals(tokens, sig, k + 1, close, before, matching)
            elif word == "NOT" and opens and predicate_start(k):
                close = matching(k + 1)
                following = tok(close + 1) if close is not None else None
                if close is not None and (following is None or following.kind == "rp"
                                          or following.upper in ("AND", "OR")):
                    inner = tokens[sig[k + 1] + 1:sig[close]]
                    self.subs.append(self._parse_tokens(inner))
                    replace[sig[k + 1]] = f" {self.tag}sub({len(self.subs) - 1}) = TRUE"
                    for j in range(sig[k + 1] + 1, sig[close] + 1):
                        replace[j] = ""
                    k = close + 1
                    continue
            k += 1

        # Emit, remembering (offset in new text, offset in user text, verbatim?) per piece.
        pieces: list[str] = []
        spans: list[tuple[int, int, bool]] = []
        length = 0

        def emit(text: str, orig: int, verbatim: bool) -> None:
            nonlocal length
            if text:
                spans.append((length, orig, verbatim))
                pieces.append(text)
                length += len(text)

        for i, t in enumerate(tokens):
            for extra in before.get(i, ()):
                emit(extra, t.pos, False)
            if i in replace:
                emit(replace[i], t.pos, False)
            else:
                emit(t.text, t.pos, True)
            for extra in after.get(i, ()):
                emit(extra, t.pos + len(t.text), False)
        rewritten = "".join(pieces)
        if not rewritten.strip():  # the top level was checked before: this is "NOT ()"
            raise FilterError("empty condition in parentheses")
        try:
            return _pgf_parse_text(rewritten)
        except UnexpectedInput as e:
            raise self._syntax_error(e, spans) from None
        except RecursionError:
            raise FilterError("filter is nested too deeply", message=Message("cql2_nested")) from None
        except TypeError as e:
            if "unary -" in str(e):
                raise FilterError("unary minus is only supported on numbers; "
                                  "write (0 - x) for a property") from None
            raise FilterError(f"invalid filter: {e}") from None
        except (ValueError, KeyError, AttributeError, IndexError) as e:
            raise FilterError(f"invalid filter: {e}") from None

    def _infix_temporal(self, tokens: list[_Tok], sig: list[int], k: int,
                        before: dict[int, list[str]], replace: dict[int, str],
                        after: dict[int, list[str]]) -> None:
        """``a T_X b`` (pygeofilter's dialect) -> ``tag_t_x(a, b) = TRUE``.

        Operands are expressions, so they end at the enclosing parenthesis or AND/OR/NOT.
        """
        start, depth = k, 0
        while start - 1 >= 0:
            t = tokens[sig[start - 1]]
            if t.kind == "rp":
                depth += 1
            elif t.kind == "lp":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and t.upper in ("AND", "OR", "NOT"):
                break
            start -= 1
        end, depth = k, 0
        while end + 1 < len(sig):
            t = tokens[sig[end + 1]]
            if t.kind == "lp":
                depth += 1
            elif t.kind == "rp":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and t.upper in ("AND", "OR"):
                break
            end += 1
        if start == k or end == k:
            return  # no operand: let pygeofilter report the syntax error
        before.setdefault(sig[start], []).insert(0, f"{self.tag}{tokens[sig[k]].upper.lower()}(")
        replace[sig[k]] = ","
        after.setdefault(sig[end], []).append(") = TRUE")

    def _mark_array_literals(self, tokens: list[_Tok], sig: list[int], open_k: int, close_k: int,
                             before: dict[int, list[str]],
                             matching: Callable[[int], int | None]) -> None:
        """Inside ``A_X( ... )``, an argument that is wholly parenthesised is an array literal."""
        k = open_k + 1
        while k < close_k:  # k is at the start of an argument
            end = k
            while end < close_k and tokens[sig[end]].kind != "comma":
                if tokens[sig[end]].kind == "lp":
                    group_end = matching(end)
                    if group_end is None:
                        return
                    end = group_end
                end += 1
            # The argument is sig[k:end]; an array literal is one group from k to end - 1.
            if tokens[sig[k]].kind == "lp" and matching(k) == end - 1:
                before.setdefault(sig[k], []).append(f"{self.tag}array".upper())
            k = end + 1

    def _syntax_error(self, e: UnexpectedInput, spans: list[tuple[int, int, bool]]) -> FilterError:
        pos: int | None = None
        what = "input"
        if isinstance(e, UnexpectedToken):
            token = e.token
            if token.type == "$END":
                what = "end of filter"
                pos = len(self.text)
            else:
                pos = self._original_pos(token.start_pos or 0, spans)
                what = repr(str(token.value))
        elif isinstance(e, UnexpectedCharacters):
            pos = self._original_pos(e.pos_in_stream or 0, spans)
            what = repr(self.text[pos:pos + 1])
        elif isinstance(e, UnexpectedEOF):
            what, pos = "end of filter", len(self.text)
        if pos is not None and pos < len(self.text):  # name the user's whole word
            for t in self.tokens:
                if t.pos <= pos < t.pos + len(t.text) and t.kind != "ws":
                    pos, what = t.pos, repr(t.text)
                    break
        message = f"syntax error: unexpected {what}"
        entry = Message("cql2_syntax_end")
        if pos is not None:
            message += f" at position {pos + 1}"
            snippet = self.text[max(0, pos - 20):pos + 20].replace("\n", " ")
            message += f" (near {snippet!r})"
            if what != "end of filter":
                entry = Message("cql2_syntax", {"what": what, "position": pos + 1,
                                                "near": repr(snippet)})
        expected = sorted({_TERMINAL_NAMES[n] for n in getattr(e, "expected", ()) or ()
                           if n in _TERMINAL_NAMES})
        if expected and len(expected) <= 4:
            message += f"; expected {' or '.join(expected)}"
        return FilterError(message, message=entry)

    @staticmethod
    def _original_pos(pos: int, spans: list[tuple[int, int, bool]]) -> int:
        best = (0, 0, False)
        for span in spans:
            if span[0] > pos:
                break
            best = span
        new_start, orig, verbatim = best
        return orig + (pos - new_start if verbatim else 0)


# --- cql2-json -------------------------------------------------------------------------------


def _parse_json(document: Any) -> Any:
    try:
        prepared = _JsonPrep()(document, "")
        node = _pgf_parse_json(prepared) if isinstance(prepared, dict | list) else prepared
        return _Normaliser()(node)
    except FilterError:
        raise
    except RecursionError:
        raise FilterError("filter is nested too deeply", message=Message("cql2_nested")) from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        raise FilterError(f"invalid cql2-json filter: {e}") from None


def _pgf(value: Any) -> Any:
    """pygeofilter's JSON walker for one already-prepared sub-document."""
    return _pgf_parse_json(value) if isinstance(value, dict | list) else value


class _JsonPrep:
    """Pre-pass over CQL2-JSON: fixes what pygeofilter 0.4 gets wrong or lacks (module doc).

    Sub-documents are replaced by AST nodes/values where we need to, which pygeofilter's
    walker then passes through unchanged. ``path`` is a JSON pointer for error messages.
    """

    def __call__(self, node: Any, path: str, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise FilterError("filter is nested too deeply", message=Message("cql2_nested"))
        if isinstance(node, list):
            return [self(item, f"{path}/{i}", depth + 1) for i, item in enumerate(node)]
        if node is None:
            raise FilterError(f"null is not a valid value (at {path or '/'})")
        if isinstance(node, str | int | float | bool):
            return node
        if not isinstance(node, dict):
            raise FilterError(f"unexpected {type(node).__name__} at {path or '/'}")
        where = path or "/"
        if "filter-lang" in node and node["filter-lang"] != "cql2-json":
            raise FilterError(f"filter-lang {node['filter-lang']!r} is not cql2-json")
        if "filter" in node:
            return self(node["filter"], f"{path}/filter", depth + 1)
        if "op" in node:
            return self._op(node, path, depth)
        if "property" in node:
            if not isinstance(node["property"], str):
                raise FilterError(f"property name must be a string (at {where})")
            return ast.Attribute(node["property"])
        if "timestamp" in node:
            return self._instant(node["timestamp"], "timestamp", where)
        if "date" in node:
            return self._instant(node["date"], "date", where)
        if "interval" in node:
            bounds = node["interval"]
            if not isinstance(bounds, list) or len(bounds) != 2:
                raise FilterError(f"interval must be a list of 2 bounds (at {where})")
            return values.Interval(*(self._bound(b, f"{path}/interval/{i}", depth)
                                     for i, b in enumerate(bounds)))
        if "bbox" in node:
            box = node["bbox"]
            if not isinstance(box, list):
                raise FilterError(f"bbox must be a list of numbers (at {where})")
            return _bbox_literal(box)
        if "type" in node and ("coordinates" in node or "geometries" in node):
            return values.Geometry(node)
        if "function" in node:
            func = node["function"]
            if not isinstance(func, dict) or not isinstance(func.get("name"), str):
                raise FilterError(f"malformed function (at {where})")
            args = self(func.get("arguments", func.get("args", [])), f"{path}/function/args",
                        depth + 1)
            return self._function(func["name"], args, where)
        raise FilterError(f"unrecognised JSON object at {where} with keys {sorted(node)}")

    def _op(self, node: dict, path: str, depth: int) -> Any:
        where = path or "/"
        op = node["op"]
        if not isinstance(op, str):
            raise FilterError(f"op must be a string (at {where})")
        name = op.lower()
        args = node.get("args", [])
        if isinstance(args, dict) and name in ("not", "isnull"):
            args = [args]
        if not isinstance(args, list):
            raise FilterError(f"args of {op!r} must be a list (at {where})")
        args = self(args, f"{path}/args", depth + 1)

        def arity(n: int) -> None:
            if len(args) != n:
                raise FilterError(f"{op!r} takes {n} arguments, got {len(args)} (at {where})")

        if name in TEMPORAL_PREDICATES:
            arity(2)
            return TEMPORAL_PREDICATES[name](*(_pgf(a) for a in args))
        if name in ARRAY_PREDICATES:
            arity(2)
            return ARRAY_PREDICATES[name](*(_pgf(a) for a in args))
        if name in ("casei", "accenti"):
            arity(1)
            return self._function(name, args, where)
        if name == "between":
            if len(args) == 3:  # CQL2 1.0: [value, low, high]
                return ast.Between(_pgf(args[0]), _pgf(args[1]), _pgf(args[2]), False)
            if len(args) == 2 and isinstance(args[1], list) and len(args[1]) == 2:
                return ast.Between(_pgf(args[0]), _pgf(args[1][0]), _pgf(args[1][1]), False)
            raise FilterError(f"'between' takes [value, low, high] (at {where})")
        if name == "like":
            arity(2)  # pygeofilter keeps the pattern raw: give it a finished node
            return ast.Like(_pgf(args[0]), _pgf(args[1]), False, "%", "_", "\\", False)
        if name in _JSON_PASSTHROUGH_OPS:
            expected = _JSON_PASSTHROUGH_OPS[name]
            if expected is not None:
                arity(expected)
            elif not args:
                raise FilterError(f"{op!r} needs at least one argument (at {where})")
            elif len(args) == 1:
                return _pgf(args[0])
            return {"op": _JSON_CANONICAL.get(name, name), "args": args}
        raise FilterError(f"unsupported operator {op!r} (at {where})")

    @staticmethod
    def _function(name: str, args: list[Any], where: str) -> ast.Function:
        return ast.Function(name.lower(), [_pgf(a) for a in args])

    @staticmethod
    def _instant(value: Any, kind: str, where: str) -> date | datetime:
        if not isinstance(value, str):
            raise FilterError(f"{kind} must be an ISO 8601 string (at {where})")
        try:
            parsed = _parse_instant(value)
        except ValueError as e:
            raise FilterError(f"invalid {kind} (at {where}): {e}") from None
        if kind == "date" and isinstance(parsed, datetime):
            raise FilterError(f"invalid date {value!r} (at {where}): use YYYY-MM-DD",
                              message=Message("cql2_date", {"value": repr(value)}))
        if kind == "timestamp" and not isinstance(parsed, datetime):
            raise FilterError(f"invalid timestamp {value!r} (at {where}): include a time",
                              message=Message("cql2_timestamp", {"value": repr(value)}))
        return parsed

    def _bound(self, value: Any, path: str, depth: int) -> Any:
        if value == "..":
            return None
        if isinstance(value, str):
            try:
                return _parse_instant(value)
            except ValueError as e:
                raise FilterError(f"invalid interval bound (at {path}): {e}") from None
        if isinstance(value, dict):
            return _pgf(self(value, path, depth + 1))
        raise FilterError(f"invalid interval bound {value!r} (at {path})")


# --- SQL compilation -------------------------------------------------------------------------


@dataclass
class _Expr:
    """A non-literal operand: SQL plus its catalogue type and a name for messages."""

    sql: sql.Composable
    type: str
    label: str


@dataclass
class _Lit:
    value: Any


_Operand = _Expr | _Lit
_NUMERIC = {"int", "float"}
_TEMPORAL_TYPES = {"date", "datetime"}
_NUMBER_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _lit_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float | Decimal):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, values.Geometry | values.Envelope):
        return "geometry"
    if isinstance(value, values.Interval):
        return "interval"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _text_literal(value: str) -> sql.Composable:
    """A text literal, refusing what PostgreSQL would reject (NUL, lone surrogates).

    The SQL we return never contains a ``%`` character: psycopg reads ``%`` inside a composed
    query as a placeholder whenever the caller executes it *with* parameters (a LIKE pattern
    would fail, and a user's ``'%s'`` would swallow one of the caller's parameters). So ``%`` is
    spliced in as ``chr(37)``, which PostgreSQL folds back into a constant at plan time.
    """
    if "\x00" in value:
        raise FilterError("strings cannot contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise FilterError("strings must be valid Unicode") from None
    pieces = [sql.SQL("{}::text").format(sql.Literal(piece)) for piece in value.split("%")]
    if len(pieces) == 1:
        return pieces[0]
    return sql.SQL("({})").format(sql.SQL(" || chr(37) || ").join(pieces))


class _Compiler:
    """Walks a normalised AST into SQL for one layer.

    Conditions compile to boolean SQL; operands to ``_Expr`` (a column or computed value with
    its catalogue type) or ``_Lit`` (a literal kept as a Python value until the other side of
    the comparison tells which type, and hence which check and cast, it needs).
    """

    def __init__(self, layer: Layer, allowed: Collection[str] | None, filter_srid: int,
                 table_alias: str | None) -> None:
        self.layer = layer
        self.filter_srid = filter_srid
        self.swap_axes = False
        self.alias = table_alias
        self.arithmetic = 0
        visible = set(allowed) if allowed is not None else None
        props: dict[str, tuple[str, str]] = {}
        for f in layer.fields:
            if visible is None or f.name in visible:
                props[f.name] = (f.name, f.type)
        props[layer.id_column] = (layer.id_column, "int")
        props[layer.geometry_column] = (layer.geometry_column, "geometry")
        props.setdefault("geometry", (layer.geometry_column, "geometry"))
        for extra in layer.extra_geometry_columns:
            if visible is None or extra in visible:
                props[extra] = (extra, "geometry")
        self.props = props

    # Conditions ------------------------------------------------------------------------------

    def condition(self, node: Any, depth: int) -> sql.Composable:
        if depth > MAX_DEPTH:
            raise FilterError("filter is nested too deeply", message=Message("cql2_nested"))
        d = depth + 1
        if isinstance(node, ast.And | ast.Or):
            joiner = sql.SQL(" AND ") if isinstance(node, ast.And) else sql.SQL(" OR ")
            parts = [self.condition(item, d) for item in _flatten(node)]
            return sql.SQL("({})").format(joiner.join(parts))
        if isinstance(node, ast.Not):
            return sql.SQL("(NOT {})").format(self.condition(node.sub_node, d))
        if isinstance(node, ast.Include):
            return sql.SQL("FALSE" if node.not_ else "TRUE")
        if isinstance(node, bool):
            return sql.SQL("TRUE" if node else "FALSE")
        if isinstance(node, ast.Comparison) and type(node) in _COMPARISON_SQL:
            return self._comparison(node, d)
        if isinstance(node, ast.Between):
            return self._between(node, d)
        if isinstance(node, ast.Like):
            return self._like(node, d)
        if isinstance(node, ast.In):
            return self._in(node, d)
        if isinstance(node, ast.IsNull):
            return self._is_null(node, d)
        if isinstance(node, ast.TemporalPredicate) and type(node) in _TEMPORAL_RULES:
            return self._temporal(node, d)
        if isinstance(node, ast.ArrayPredicate) and type(node) in _ARRAY_SQL:
            return self._array(node, d)
        if isinstance(node, ast.SpatialComparisonPredicate) and type(node) in _SPATIAL_SQL:
            return self._spatial(node, d)
        if isinstance(node, ast.BBox):
            return self._bbox_predicate(node, d)
        if isinstance(node, ast.Relate):
            return self._relate(node, d)
        if isinstance(node, ast.Attribute):
            operand = self.operand(node, d)
            if isinstance(operand, _Expr) and operand.type == "bool":
                return sql.SQL("({} IS TRUE)").format(operand.sql)
            raise FilterError(f"{_describe(node)} is not a condition")
        if isinstance(node, ast.Predicate):
            raise FilterError(f"unsupported predicate {_predicate_name(node)}")
        raise FilterError(f"{_describe(node)} is not a condition")

    def _comparison(self, node: ast.Comparison, d: int) -> sql.Composable:
        op = _COMPARISON_SQL[type(node)]
        (left, right), _ = self._unify([self.operand(node.lhs, d), self.operand(node.rhs, d)],
                                       f"'{op}'")
        return sql.SQL("({} " + op + " {})").format(left, right)

    def _between(self, node: ast.Between, d: int) -> sql.Composable:
        (value, low, high), _ = self._unify(
            [self.operand(node.lhs, d), self.operand(node.low, d), self.operand(node.high, d)],
            "BETWEEN")
        keyword = "NOT BETWEEN" if node.not_ else "BETWEEN"
        return sql.SQL("({} " + keyword + " {} AND {})").format(value, low, high)

    def _in(self, node: ast.In, d: int) -> sql.Composable:
        items = node.sub_nodes
        if not isinstance(items, list):
            raise FilterError("IN needs a list of values")
        lhs = self.operand(node.lhs, d)
        if not items:
            return sql.SQL("TRUE" if node.not_ else "FALSE")
        rendered, _ = self._unify([lhs, *(self.operand(i, d) for i in items)], "IN")
        keyword = "NOT IN" if node.not_ else "IN"
        return sql.SQL("({} " + keyword + " ({}))").format(
            rendered[0], sql.SQL(", ").join(rendered[1:]))

    def _is_null(self, node: ast.IsNull, d: int) -> sql.Composable:
        operand = self.operand(node.lhs, d)
        if isinstance(operand, _Lit):  # a literal is never NULL
            return sql.SQL("TRUE" if node.not_ else "FALSE")
        keyword = "IS NOT NULL" if node.not_ else "IS NULL"
        return sql.SQL("({} " + keyword + ")").format(operand.sql)

    def _like(self, node: ast.Like, d: int) -> sql.Composable:
        value = self.operand(node.lhs, d)
        if isinstance(value, _Expr) and value.type != "str":
            raise FilterError(f"LIKE needs a string; {value.label} is {value.type}")
        if isinstance(value, _Lit) and not isinstance(value.value, str):
            raise FilterError(f"LIKE needs a string, got {_describe(value.value)}")
        left = value.sql if isinstance(value, _Expr) else _text_literal(value.value)
        pattern = self._like_pattern(node.pattern, d)
        keyword = ("NOT " if node.not_ else "") + ("ILIKE" if node.nocase else "LIKE")
        return sql.SQL("({} " + keyword + " {})").format(left, pattern)

    def _like_pattern(self, node: Any, d: int) -> sql.Composable:
        """A string literal, possibly inside CASEI()/ACCENTI(); checked so PostgreSQL accepts it."""
        if isinstance(node, str):
            if len(node) > MAX_LIKE_CHARS:
                raise FilterError(f"LIKE pattern longer than {MAX_LIKE_CHARS} characters",
                                  message=Message("cql2_like_long", {"n": MAX_LIKE_CHARS}))
            escaped = False
            wildcards = 0
            for ch in node:
                if not escaped and ch in "%_":
                    wildcards += 1
                escaped = not escaped and ch == "\\"
            if escaped:
                raise FilterError(f"LIKE pattern {node!r} ends with the escape character '\\'")
            if wildcards > MAX_LIKE_WILDCARDS:
                raise FilterError(f"LIKE pattern has {wildcards} wildcards (at most {MAX_LIKE_WILDCARDS})",
                                  message=Message("cql2_like_wildcards",
                                                  {"n": wildcards, "max": MAX_LIKE_WILDCARDS}))
            return _text_literal(node)
        if isinstance(node, ast.Function) and node.name in _FUNCTIONS and len(node.arguments) == 1:
            inner = self._like_pattern(node.arguments[0], d + 1)
            return sql.SQL(_FUNCTIONS[node.name] + "({})").format(inner)
        raise FilterError("a LIKE pattern must be a string literal, optionally wrapped in "
                          f"CASEI() or ACCENTI(); got {_describe(node)}")

    def _spatial(self, node: ast.SpatialComparisonPredicate, d: int) -> sql.Composable:
        name, function = _SPATIAL_SQL[type(node)]
        left = self._geometry(node.lhs, name, d)
        right = self._geometry(node.rhs, name, d)
        return sql.SQL(function + "({}, {})").format(left, right)

    def _relate(self, node: ast.Relate, d: int) -> sql.Composable:
        pattern = node.pattern
        if not isinstance(pattern, str) or not re.fullmatch(r"[012TF*]{9}", pattern):
            raise FilterError(f"RELATE pattern must be 9 DE-9IM characters (012TF*), "
                              f"got {pattern!r}")
        left = self._geometry(node.lhs, "RELATE", d)
        right = self._geometry(node.rhs, "RELATE", d)
        return sql.SQL("ST_Relate({}, {}, {})").format(left, right, sql.Literal(pattern))

    def _bbox_predicate(self, node: ast.BBox, d: int) -> sql.Composable:
        srid = self.filter_srid
        if node.crs:
            try:
                srid, _ = parse_crs_uri(str(node.crs))
            except UnsupportedCRS as e:
                raise FilterError(str(e)) from None
        box = _bbox_literal([node.minx, node.miny, node.maxx, node.maxy])
        left = self._geometry(node.lhs, "BBOX", d)
        return sql.SQL("ST_Intersects({}, {})").format(left, self._envelope_sql(box, srid))

    def _array(self, node: ast.ArrayPredicate, d: int) -> sql.Composable:
        name = _CQL2_NAME[type(node)]
        left = self._array_operand(node.lhs, name, d)
        right = self._array_operand(node.rhs, name, d)
        return sql.SQL("({} " + _ARRAY_SQL[type(node)] + " {})").format(left, right)

    def _array_operand(self, node: Any, name: str, d: int) -> sql.Composable:
        if isinstance(node, list):
            items = []
            for item in node:
                operand = self.operand(item, d)
                if isinstance(operand, _Expr) and operand.type == "str":
                    items.append(operand.sql)
                elif isinstance(operand, _Lit) and isinstance(operand.value, str):
                    items.append(_text_literal(operand.value))
                else:
                    raise FilterError(f"{name} arrays hold strings, got {_describe(item)}")
            return sql.SQL("ARRAY[{}]::text[]").format(sql.SQL(", ").join(items))
        operand = self.operand(node, d)
        if isinstance(operand, _Expr) and operand.type == "str[]":
            return operand.sql
        got = (f"{operand.label} is {operand.type}" if isinstance(operand, _Expr)
               else f"got {_describe(operand.value)}")
        raise FilterError(f"{name} needs an array property or an array literal ('a', 'b'); {got}")

    # Temporal --------------------------------------------------------------------------------

    def _temporal(self, node: ast.TemporalPredicate, d: int) -> sql.Composable:
        name = _CQL2_NAME.get(type(node), type(node).__name__)
        parts = [*self._temporal_operand(node.lhs, name, d),
                 *self._temporal_operand(node.rhs, name, d)]
        kind = "datetime" if any(p[1] == "datetime" for p in parts) else "date"
        sqls = dict(zip(("ll", "lh", "rl", "rh"), (self._temporal_sql(p, kind) for p in parts),
                        strict=True))
        joiner, rules = _TEMPORAL_RULES[type(node)]
        conditions = [sql.SQL("{} " + op + " {}").format(sqls[a], sqls[b]) for a, op, b in rules]
        return sql.SQL("({})").format(sql.SQL(f" {joiner} ").join(conditions))

    def _temporal_operand(self, node: Any, name: str, d: int) -> list[tuple[Any, ...]]:
        """Two parts (start, end): ("open", side) | ("expr", type, sql, side) | ("lit", type, v)."""
        if isinstance(node, values.Interval):
            return [self._temporal_bound(node.start, "lo", name, d),
                    self._temporal_bound(node.end, "hi", name, d)]
        if isinstance(node, str):
            try:
                node = _parse_instant(node)
            except ValueError as e:
                raise FilterError(f"{name}: {e}") from None
        if isinstance(node, date):
            part: tuple[Any, ...] = ("lit", _lit_type(node), node)
            return [part, part]
        operand = self.operand(node, d)
        if isinstance(operand, _Expr) and operand.type in _TEMPORAL_TYPES:
            part = ("expr", operand.type, operand.sql, None)
            return [part, part]
        got = (f"{operand.label} is {operand.type}" if isinstance(operand, _Expr)
               else f"got {_describe(operand.value)}")
        raise FilterError(f"{name} needs a date/datetime property, DATE(), TIMESTAMP() or "
                          f"INTERVAL(); {got}")

    def _temporal_bound(self, value: Any, side: str, name: str, d: int) -> tuple[Any, ...]:
        if value is None:
            return ("open", None, side)
        if isinstance(value, date):
            return ("lit", _lit_type(value), value)
        operand = self.operand(value, d)
        if isinstance(operand, _Expr) and operand.type in _TEMPORAL_TYPES:
            return ("expr", operand.type, operand.sql, side)
        raise FilterError(f"{name}: INTERVAL bounds must be dates, timestamps, '..' or "
                          f"date/datetime properties, got {_describe(value)}")

    def _temporal_sql(self, part: tuple[Any, ...], kind: str) -> sql.Composable:
        pg_type = "timestamptz" if kind == "datetime" else "date"
        if part[0] == "open":
            return sql.SQL("'" + ("-infinity" if part[2] == "lo" else "infinity") + "'::" + pg_type)
        if part[0] == "lit":
            return self._coerce(part[2], kind, "a temporal value")
        _, type_, expr, side = part
        if type_ == "date" and kind == "datetime":
            expr = _date_as_utc_timestamp(expr)
        if side is not None:  # a NULL property bound of an interval is an open end
            infinity = "-infinity" if side == "lo" else "infinity"
            expr = sql.SQL("COALESCE({}, '" + infinity + "'::" + pg_type + ")").format(expr)
        return expr

    # Geometry --------------------------------------------------------------------------------

    def _geometry(self, node: Any, name: str, d: int) -> sql.Composable:
        if isinstance(node, values.Envelope):
            xs, ys = sorted((node.x1, node.x2)), sorted((node.y1, node.y2))
            box = _bbox_literal([xs[0], ys[0], xs[1], ys[1]])
            return self._envelope_sql(box, self.filter_srid)
        if isinstance(node, values.Geometry):
            return self._geometry_literal(node)
        operand = self.operand(node, d)
        if isinstance(operand, _Expr) and operand.type == "geometry":
            return operand.sql
        got = (f"{operand.label} is {operand.type}" if isinstance(operand, _Expr)
               else f"got {_describe(operand.value)}")
        raise FilterError(f"{name} needs a geometry property or a geometry literal; {got}")

    def _geometry_literal(self, literal: values.Geometry) -> sql.Composable:
        document = literal.geometry
        if not isinstance(document, dict):
            raise FilterError("invalid geometry literal")
        srid = self.filter_srid
        crs = document.get("crs")
        if crs is not None:  # EWKT "SRID=n;..." arrives as a GeoJSON 2008 crs member
            try:
                srid, _ = parse_crs_uri(str(crs["properties"]["name"]))
            except (UnsupportedCRS, KeyError, TypeError) as e:
                raise FilterError(f"unsupported geometry CRS: {e}") from None
        try:
            geom = shapely.geometry.shape({k: v for k, v in document.items() if k != "crs"})
        except Exception as e:  # shapely raises a variety of errors on malformed input
            raise FilterError(f"invalid geometry literal: {e}") from None
        if geom.is_empty:
            raise FilterError("empty geometry literal")
        geom = shapely.force_2d(geom)
        if self.swap_axes and srid == self.filter_srid:
            geom = shapely.transform(geom, lambda c: c[:, ::-1])
        coords = shapely.get_coordinates(geom)
        if not all(math.isfinite(c) for c in coords.ravel()):
            raise FilterError("geometry literal has non-finite coordinates")
        if not geom.is_valid:
            raise FilterError(f"invalid geometry literal: {shapely.is_valid_reason(geom)}")
        self._check_transformable(coords.tolist(), srid)
        base = sql.SQL("ST_SetSRID(ST_GeomFromGeoJSON({}::text), {})").format(
            sql.Literal(shapely.to_geojson(geom)), sql.Literal(srid))
        return _to_storage(base, srid)

    def _envelope_sql(self, box: values.Envelope, srid: int) -> sql.Composable:
        minx, maxx, miny, maxy = box.x1, box.x2, box.y1, box.y2
        if self.swap_axes and srid == self.filter_srid:
            minx, maxx, miny, maxy = miny, maxy, minx, maxx
        self._check_transformable([[minx, miny], [maxx, maxy], [minx, maxy], [maxx, miny]], srid)
        base = sql.SQL("ST_MakeEnvelope({}, {}, {}, {}, {})").format(
            *(sql.Literal(float(v)) for v in (minx, miny, maxx, maxy)), sql.Literal(srid))
        return _to_storage(base, srid)

    @staticmethod
    def _check_transformable(coords: list[list[float]], srid: int) -> None:
        """PostGIS raises on coordinates PROJ cannot transform; refuse them here instead."""
        if srid == STORAGE_SRID:
            return
        if srid not in OGC_CRS_SRIDS:
            raise FilterError(f"unsupported geometry CRS EPSG:{srid}")
        try:
            xs, ys = transformer(srid, STORAGE_SRID).transform(
                [c[0] for c in coords], [c[1] for c in coords], errcheck=True)
        except ProjError:
            raise FilterError(f"geometry literal lies outside the area of EPSG:{srid}") from None
        if not all(math.isfinite(v) for v in (*xs, *ys)):
            raise FilterError(f"geometry literal lies outside the area of EPSG:{srid}")

    # Operands ----------------------------------------------------------------------------------

    def operand(self, node: Any, depth: int) -> _Operand:
        if depth > MAX_DEPTH:
            raise FilterError("filter is nested too deeply", message=Message("cql2_nested"))
        if isinstance(node, ast.Attribute):
            return self._property(node.name)
        if isinstance(node, ast.Function):
            return self._function(node, depth + 1)
        if isinstance(node, ast.Arithmetic):
            return self._arithmetic(node, depth + 1)
        if isinstance(node, ast.Node):
            raise FilterError(f"a condition ({_describe(node)}) cannot be used as a value")
        if node is None:
            raise FilterError("NULL literals are not supported; use IS NULL")
        return _Lit(node)

    def _property(self, name: str) -> _Expr:
        try:
            column, type_ = self.props[name]
        except KeyError:
            queryable = ", ".join(sorted(self.props))
            raise FilterError(
                f"unknown property {name!r}; queryable properties: {queryable}",
                message=Message("cql2_unknown_property", {"name": repr(name),
                                                          "queryable": queryable})) from None
        ident = sql.Identifier(self.alias, column) if self.alias else sql.Identifier(column)
        return _Expr(ident, type_, f"property {name!r}")

    def _function(self, node: ast.Function, depth: int) -> _Expr:
        name = node.name.lower()
        if name not in _FUNCTIONS:
            raise FilterError(f"unsupported function {node.name.upper()}(); supported functions: "
                              "CASEI, ACCENTI",
                              message=Message("cql2_function", {"name": node.name.upper()}))
        label = "CASEI" if _FUNCTIONS[name] == "lower" else "ACCENTI"
        if len(node.arguments) != 1:
            raise FilterError(f"{label}() takes 1 argument, got {len(node.arguments)}")
        arg = self.operand(node.arguments[0], depth)
        if isinstance(arg, _Lit):
            if not isinstance(arg.value, str):
                raise FilterError(f"{label}() needs a string, got {_describe(arg.value)}")
            inner = _text_literal(arg.value)
            arg_label = repr(arg.value)
        elif arg.type != "str":
            raise FilterError(f"{label}() needs a string; {arg.label} is {arg.type}")
        else:
            inner, arg_label = arg.sql, arg.label
        return _Expr(sql.SQL(_FUNCTIONS[name] + "({})").format(inner), "str",
                     f"{label}({arg_label})")

    def _arithmetic(self, node: ast.Arithmetic, depth: int) -> _Expr:
        self.arithmetic += 1
        if self.arithmetic > MAX_ARITHMETIC:
            raise FilterError(f"too many arithmetic operators (at most {MAX_ARITHMETIC})")
        op = _ARITHMETIC_SQL[type(node)]
        sides = []
        for side in (node.lhs, node.rhs):
            operand = self.operand(side, depth)
            if isinstance(operand, _Expr):
                if operand.type not in _NUMERIC:
                    raise FilterError(f"arithmetic '{op}' needs numbers; {operand.label} is "
                                      f"{operand.type}")
                sides.append(sql.SQL("{}::numeric").format(operand.sql))
            else:
                value = operand.value
                if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
                    raise FilterError(f"arithmetic '{op}' needs numbers, got {_describe(value)}")
                if not math.isfinite(value) or abs(float(value)) > 1e300:
                    # numeric arithmetic on bounded operands cannot overflow in PostgreSQL
                    raise FilterError(f"arithmetic '{op}' needs finite numbers up to 1e300, "
                                      f"got {value!r}")
                sides.append(sql.SQL("({}::numeric)").format(sql.Literal(value)))
        if op == "/":  # x / 0 is NULL (no match) rather than a database error
            expr = sql.SQL("({} / NULLIF({}, 0))").format(*sides)
        else:
            expr = sql.SQL("({} " + op + " {})").format(*sides)
        return _Expr(expr, "float", "an arithmetic expression")

    # Types -------------------------------------------------------------------------------------

    def _unify(self, operands: list[_Operand], what: str) -> tuple[list[sql.Composable], str]:
        """Bring operands of one comparison to a common type; literals follow the properties."""
        exprs = [o for o in operands if isinstance(o, _Expr)]
        for e in exprs:
            if e.type in ("str[]", "geometry"):
                hint = "A_CONTAINS/A_OVERLAPS/..." if e.type == "str[]" else "S_INTERSECTS/..."
                raise FilterError(f"{e.label} is {e.type}; {what} cannot compare it (use {hint})")
        types = {e.type for e in exprs}
        lits = [o for o in operands if isinstance(o, _Lit)]
        for lit in lits:
            if _lit_type(lit.value) in ("geometry", "interval", "array"):
                raise FilterError(f"{_describe(lit.value)} cannot be used with {what}")
        temporal = bool(types & _TEMPORAL_TYPES) or (
            not exprs and _lit_type(lits[0].value) in _TEMPORAL_TYPES)
        if temporal:  # parse date-like strings now: a timestamp string widens a date property
            for lit in lits:
                if isinstance(lit.value, str):
                    try:
                        lit.value = _parse_instant(lit.value)
                    except ValueError:
                        label = exprs[0].label if exprs else "value"
                        raise FilterError(f"{label} is a date/time, got {lit.value!r}") from None
        if exprs:
            anchor = exprs[0].label
        else:
            types = {_lit_type(lits[0].value)}
            anchor = f"value {lits[0].value!r}"
        if types <= _NUMERIC:
            target = "float" if "float" in types else "int"
        elif types <= _TEMPORAL_TYPES:
            widen = "datetime" in types or any(isinstance(o.value, datetime) for o in lits)
            target = "datetime" if widen else "date"
        elif len(types) == 1:
            target = next(iter(types))
        else:
            a, b = exprs[0], next(e for e in exprs if e.type != exprs[0].type)
            raise FilterError(f"{what}: cannot compare {a.label} ({a.type}) with "
                              f"{b.label} ({b.type})")
        out: list[sql.Composable] = []
        for o in operands:
            if isinstance(o, _Expr):
                out.append(_date_as_utc_timestamp(o.sql)
                           if o.type == "date" and target == "datetime" else o.sql)
            else:
                out.append(self._coerce(o.value, target, anchor))
        return out, target

    def _coerce(self, value: Any, target: str, label: str) -> sql.Composable:
        """Render a literal as ``target``, or explain why it cannot be one."""

        def bad() -> FilterError:
            return FilterError(f"{label} is {target}, got {_describe(value)}")

        if isinstance(value, bool) and target != "bool":
            raise bad()
        if target in _NUMERIC:
            if isinstance(value, int | float | Decimal):
                return sql.Literal(value)
            if isinstance(value, str) and _NUMBER_RE.fullmatch(value.strip()):
                text = value.strip()
                try:
                    number: int | Decimal = int(text) if re.fullmatch(r"[+-]?\d+", text) \
                        else Decimal(text)
                except (ValueError, InvalidOperation):
                    raise bad() from None
                if isinstance(number, Decimal) and abs(number.adjusted()) > 1000:
                    raise bad()  # beyond what PostgreSQL's numeric accepts without error
                return sql.Literal(number)
            raise bad()
        if target == "str":
            if isinstance(value, str):
                return _text_literal(value)
            raise bad()
        if target == "bool":
            if isinstance(value, bool):
                return sql.Literal(value)
            if isinstance(value, str) and value.strip().lower() in ("true", "false"):
                return sql.Literal(value.strip().lower() == "true")
            raise bad()
        if target in _TEMPORAL_TYPES:
            if isinstance(value, str):
                try:
                    value = _parse_instant(value)
                except ValueError:
                    raise bad() from None
            if isinstance(value, datetime):
                if target == "date":
                    raise bad()
                return sql.Literal(_utc(value))
            if isinstance(value, date):
                if target == "datetime":
                    return sql.Literal(datetime.combine(value, time(0), tzinfo=UTC))
                return sql.Literal(value)
            raise bad()
        raise bad()


def _date_as_utc_timestamp(expr: sql.Composable) -> sql.Composable:
    """A date compared with timestamps means midnight UTC of that day, whatever the session."""
    return sql.SQL("({}::timestamp AT TIME ZONE 'UTC')").format(expr)


def _to_storage(geom: sql.Composable, srid: int) -> sql.Composable:
    if srid == STORAGE_SRID:
        return geom
    return sql.SQL("ST_Transform({}, {})").format(geom, sql.Literal(STORAGE_SRID))


def _predicate_name(node: ast.Node) -> str:
    names = {ast.DistanceWithin: "DWITHIN", ast.DistanceBeyond: "BEYOND", ast.Exists: "EXISTS",
             ast.TimeBeforeOrDuring: "BEFORE OR DURING", ast.TimeDuringOrAfter: "DURING OR AFTER"}
    return names.get(type(node)) or _CQL2_NAME.get(type(node)) or type(node).__name__
