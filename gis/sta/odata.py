"""The OData query options of SensorThings API v1.1 (OGC 18-088, section 9.3), parsed into a
small syntax tree. No SQL and no knowledge of the entity model here: gis/sta/queries.py checks
the names against the model and compiles the tree; this module only says whether the text is
well formed, and where it is not (a 400 naming the option and the 1-based position).

Why our own parser: the options are a small, fixed grammar (OData's $filter expression
language, comma lists, and $expand's nested options in parentheses), and an error must point at
the user's text; a generic OData library would bring a model of its own to keep in step.

Grammar of $filter and $orderby expressions (OData 4.0 ABNF, the subset STA uses), loosest
binding first:

    or  <  and  <  eq ne  <  gt ge lt le in  <  add sub  <  mul div mod  <  not, unary -  <  primary

primary: a literal ('text' with '' for a quote, numbers, true, false, null, dates 2026-12-01,
date-times 2026-12-01T10:00:00Z or with an offset, times 10:00:00, duration'P1D',
geography'POINT(106 21)' / geometry'...' WKT), a property path (`name`, `Datastream/Thing/name`,
`properties/code`), a function call (`substringof('a', name)`, `geo.distance(location, ...)`),
a parenthesised expression, or a parenthesised list after `in`. Operators and keywords are
accepted in any case.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from layers.errors import PROBLEMS, BadRequest, Message, Problem

__all__ = ["Binary", "Call", "Expand", "Expr", "ListExpr", "Lit", "ODataError", "OrderItem",
           "Options", "Path", "Unary", "parse_expand", "sta_error", "parse_filter", "parse_options",
           "parse_orderby", "parse_select"]

# Bounds that keep a hostile request from costing more than a bad request should.
MAX_OPTION_CHARS = 20_000
MAX_DEPTH = 48
MAX_EXPAND_DEPTH = 6
MAX_EXPAND_ITEMS = 32
# $top: the page size when none is asked for, and the largest page served (a larger $top is
# served in pages of this size, each with its @iot.nextLink: server-driven paging, 9.3.3.3).
DEFAULT_TOP = 100
MAX_TOP = 10_000
MAX_SKIP = 100_000_000

OPTIONS = ("$filter", "$orderby", "$top", "$skip", "$count", "$select", "$expand",
           "$resultFormat")


class ODataError(BadRequest):
    """A query option that is not well formed or names something that does not exist: a 400
    naming the option (`parameter`) and, for syntax, the 1-based position in its text."""

    fallback = Message("sta_invalid")


def sta_error(option: str, key: str, reason: str, **args: Any) -> ODataError:
    """ODataError for OPTION with the catalogue entry KEY (api/messages.py: sta_*)."""
    # Not for_field(): its own parameter is called `name`, which our entries use too.
    return ODataError(f"{option}: {reason}", parameter=option, message=PROBLEMS,
                      problems=[Problem(option, reason, message=Message(key, args or None))])


# --- the syntax tree ---------------------------------------------------------------------------

LitKind = Literal["string", "int", "float", "bool", "null", "datetime", "date", "time", "duration",
                  "geometry"]


@dataclass(frozen=True)
class Lit:
    kind: LitKind
    value: Any
    pos: int


@dataclass(frozen=True)
class Path:
    """A property path: segments separated by '/', e.g. ("Datastream", "Thing", "name")."""

    segments: tuple[str, ...]
    pos: int


@dataclass(frozen=True)
class Call:
    name: str  # lower case, e.g. "geo.distance", "substringof"
    args: tuple[Expr, ...]
    pos: int


@dataclass(frozen=True)
class Binary:
    op: str  # eq ne gt ge lt le and or add sub mul div mod in
    left: Expr
    right: Expr
    pos: int


@dataclass(frozen=True)
class Unary:
    op: str  # not, neg
    operand: Expr
    pos: int


@dataclass(frozen=True)
class ListExpr:
    """The right side of `in`: ('a', 'b')."""

    items: tuple[Expr, ...]
    pos: int


Expr = Lit | Path | Call | Binary | Unary | ListExpr


@dataclass(frozen=True)
class OrderItem:
    expr: Expr
    desc: bool


@dataclass(frozen=True)
class Expand:
    """One $expand item: a navigation property and the options of the expanded entities."""

    nav: str
    options: Options
    pos: int


@dataclass(frozen=True)
class Options:
    """The query options of one request, or of one $expand item (`option` names where each
    came from, for error messages: "$filter" or "$expand/Datastreams/$filter")."""

    filter: Expr | None = None
    orderby: tuple[OrderItem, ...] = ()
    top: int | None = None
    skip: int = 0
    count: bool = False
    select: tuple[str, ...] | None = None
    expand: tuple[Expand, ...] = ()
    result_format: str | None = None
    # The raw text of each option given, to repeat them in @iot.nextLink.
    raw: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    where: str = ""

    def name(self, option: str) -> str:
        return f"{self.where}{option}"


# --- tokens ------------------------------------------------------------------------------------

_DATE = r"\d{4}-\d{2}-\d{2}"
_TIME = r"\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?"
_TOKEN = re.compile(rf"""
    (?P<ws>\s+)
  | (?P<typed>(?:geography|geometry|duration|datetime|datetimeoffset)'(?:[^']|'')*')
  | (?P<str>'(?:[^']|'')*')
  | (?P<badstr>')
  | (?P<datetime>{_DATE}T{_TIME}(?:Z|z|[+-]\d{{2}}:\d{{2}})?)
  | (?P<date>{_DATE})
  | (?P<time>{_TIME})
  | (?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<word>[A-Za-z_@][A-Za-z0-9_.@]*)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<comma>,)
  | (?P<slash>/)
  | (?P<minus>-)
  | (?P<other>.)
""", re.VERBOSE | re.DOTALL)

# What a syntax error says was expected, with its entry in the message catalogue.
VALUE = "a value, a property or a function"
EXPECT = {
    VALUE: "sta_expect_value",
    "an operator or the end": "sta_expect_operator",
    "',' or ')'": "sta_expect_comma",
    "a property name after '/'": "sta_expect_property",
    "a property name": "sta_expect_property",
    "',', asc, desc or the end": "sta_expect_order",
    "'(' and a list of values": "sta_expect_list",
}

_WORD_OPS = {"eq", "ne", "gt", "ge", "lt", "le", "and", "or", "not", "add", "sub", "mul", "div",
             "mod", "in"}
_KEYWORDS = {"true", "false", "null"}


@dataclass(frozen=True)
class Tok:
    kind: str
    text: str
    pos: int  # 0-based offset in the option's text

    @property
    def word(self) -> str:
        return self.text.lower() if self.kind == "word" else ""


def _tokens(text: str, option: str) -> list[Tok]:
    out = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "other"
        if kind == "ws":
            continue
        if kind == "badstr":
            raise sta_error(option, "sta_unterminated", f"unterminated string at position {m.start() + 1}",
                        position=m.start() + 1)
        if kind == "other":
            raise sta_error(option, "sta_character",
                        f"unexpected character {m.group()!r} at position {m.start() + 1}",
                        position=m.start() + 1, near=m.group())
        out.append(Tok(kind, m.group(), m.start()))
    return out


# --- expressions -------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the tokens of one expression (or an $orderby list)."""

    def __init__(self, text: str, option: str) -> None:
        if len(text) > MAX_OPTION_CHARS:
            raise sta_error(option, "sta_too_long", f"longer than {MAX_OPTION_CHARS} characters",
                        n=MAX_OPTION_CHARS)
        self.text = text
        self.option = option
        self.toks = _tokens(text, option)
        self.i = 0
        self.depth = 0

    # helpers
    def peek(self, k: int = 0) -> Tok | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def next(self, expected: str = VALUE) -> Tok:
        tok = self.peek()
        if tok is None:
            raise self.unexpected(None, expected)
        self.i += 1
        return tok

    def at_end(self) -> bool:
        return self.i >= len(self.toks)

    def unexpected(self, tok: Tok | None, expected: str = "") -> ODataError:
        """A syntax error at TOK (None: the end). EXPECTED: what would have been right, a key
        of EXPECT (worded in the user's language) or a literal like "')'"."""
        wording: Any = Message(EXPECT[expected]) if expected in EXPECT else expected or "…"
        if tok is None:
            return sta_error(self.option, "sta_syntax_end",
                             f"unexpected end at position {len(self.text) + 1}"
                             + (f" (expected {expected})" if expected else ""),
                             position=len(self.text) + 1, expected=wording)
        return sta_error(self.option, "sta_syntax",
                         f"unexpected {tok.text!r} at position {tok.pos + 1}"
                         + (f" (expected {expected})" if expected else ""),
                         position=tok.pos + 1, near=tok.text, expected=wording)

    def expect(self, kind: str, what: str) -> Tok:
        tok = self.peek()
        if tok is None or tok.kind != kind:
            raise self.unexpected(tok, what)
        self.i += 1
        return tok

    def deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise sta_error(self.option, "sta_nested", "nested too deeply")

    # grammar
    def expression(self) -> Expr:
        self.deeper()
        try:
            return self._or()
        finally:
            self.depth -= 1

    def _binary(self, ops: set[str], sub: Any) -> Expr:
        left = sub()
        while (tok := self.peek()) is not None and tok.word in ops:
            self.i += 1
            right = sub()
            left = Binary(tok.word, left, right, tok.pos + 1)
        return left

    def _or(self) -> Expr:
        return self._binary({"or"}, self._and)

    def _and(self) -> Expr:
        return self._binary({"and"}, self._equality)

    def _equality(self) -> Expr:
        return self._binary({"eq", "ne"}, self._relational)

    def _relational(self) -> Expr:
        left = self._additive()
        while (tok := self.peek()) is not None and tok.word in {"gt", "ge", "lt", "le", "in"}:
            self.i += 1
            right = self._list() if tok.word == "in" else self._additive()
            left = Binary(tok.word, left, right, tok.pos + 1)
        return left

    def _list(self) -> ListExpr:
        start = self.expect("lp", "'(' and a list of values")
        items = [self.expression()]
        while self.peek() is not None and self.peek().kind == "comma":  # type: ignore[union-attr]
            self.i += 1
            items.append(self.expression())
        self.expect("rp", "')'")
        return ListExpr(tuple(items), start.pos + 1)

    def _additive(self) -> Expr:
        return self._binary({"add", "sub"}, self._multiplicative)

    def _multiplicative(self) -> Expr:
        return self._binary({"mul", "div", "mod"}, self._unary)

    def _unary(self) -> Expr:
        tok = self.peek()
        if tok is not None and tok.word == "not":
            self.i += 1
            self.deeper()
            try:
                return Unary("not", self._unary(), tok.pos + 1)
            finally:
                self.depth -= 1
        if tok is not None and tok.kind == "minus":
            self.i += 1
            nxt = self.peek()
            if nxt is not None and nxt.kind == "num" and nxt.pos == tok.pos + 1:
                self.i += 1
                lit = _number(nxt)
                return Lit(lit.kind, -lit.value, tok.pos + 1)
            self.deeper()
            try:
                return Unary("neg", self._unary(), tok.pos + 1)
            finally:
                self.depth -= 1
        return self._primary()

    def _primary(self) -> Expr:
        tok = self.next()
        pos = tok.pos + 1
        if tok.kind == "lp":
            inner = self.expression()
            self.expect("rp", "')'")
            return inner
        if tok.kind == "str":
            return Lit("string", tok.text[1:-1].replace("''", "'"), pos)
        if tok.kind == "num":
            return _number(tok)
        if tok.kind in ("datetime", "date", "time"):
            return _temporal(tok, tok.kind, tok.text, self.option)
        if tok.kind == "typed":
            prefix, _, rest = tok.text.partition("'")
            body = rest[:-1].replace("''", "'")
            prefix = prefix.lower()
            if prefix in ("geography", "geometry"):
                return Lit("geometry", body, pos)
            if prefix == "duration":
                return Lit("duration", _duration(body, tok, self.option), pos)
            return _temporal(tok, "datetime", body, self.option)
        if tok.kind == "word":
            low = tok.word
            if low in _KEYWORDS:
                return Lit("bool", low == "true", pos) if low != "null" else Lit("null", None, pos)
            if low in _WORD_OPS:
                raise self.unexpected(tok, "a value, a property or a function")
            nxt = self.peek()
            if nxt is not None and nxt.kind == "lp" and nxt.pos == tok.pos + len(tok.text):
                return self._call(tok)
            return self._path(tok)
        raise self.unexpected(tok, "a value, a property or a function")

    def _call(self, name: Tok) -> Call:
        self.expect("lp", "'('")
        args: list[Expr] = []
        if self.peek() is not None and self.peek().kind == "rp":  # type: ignore[union-attr]
            self.i += 1
            return Call(name.text.lower(), (), name.pos + 1)
        while True:
            args.append(self.expression())
            tok = self.next("',' or ')'")
            if tok.kind == "rp":
                break
            if tok.kind != "comma":
                raise self.unexpected(tok, "',' or ')'")
        return Call(name.text.lower(), tuple(args), name.pos + 1)

    def _path(self, first: Tok) -> Path:
        segments = [first.text]
        while (tok := self.peek()) is not None and tok.kind == "slash":
            self.i += 1
            seg = self.next("a property name after '/'")
            if seg.kind != "word":
                raise self.unexpected(seg, "a property name after '/'")
            segments.append(seg.text)
        return Path(tuple(segments), first.pos + 1)

    def done(self) -> None:
        if not self.at_end():
            raise self.unexpected(self.peek(), "an operator or the end")


def _number(tok: Tok) -> Lit:
    text = tok.text
    if re.fullmatch(r"\d+", text):
        digits = text.lstrip("0") or "0"  # int() refuses strings of more than 4300 digits
        if len(digits) <= 19 and int(digits) < 2**63:
            return Lit("int", int(digits), tok.pos + 1)
    return Lit("float", float(text), tok.pos + 1)  # too big: inf, refused where it is used


def _temporal(tok: Tok, kind: str, text: str, option: str) -> Lit:
    try:
        if kind == "date":
            return Lit("date", dt.date.fromisoformat(text), tok.pos + 1)
        if kind == "time":
            return Lit("time", dt.time.fromisoformat(text), tok.pos + 1)
        value = dt.datetime.fromisoformat(text.replace("z", "Z"))
        if value.tzinfo is None:  # OData date-times carry an offset; none means UTC here
            value = value.replace(tzinfo=dt.UTC)
        return Lit("datetime", value, tok.pos + 1)
    except ValueError:
        raise sta_error(option, "sta_time", f"{text!r} at position {tok.pos + 1} is not a valid "
                    f"{kind}", value=text, position=tok.pos + 1) from None


_DURATION = re.compile(r"(-)?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")


def _duration(text: str, tok: Tok, option: str) -> dt.timedelta:
    m = _DURATION.fullmatch(text)
    if not m or text in ("P", "-P", "PT", "-PT") or text.endswith("T"):
        raise sta_error(option, "sta_duration", f"{text!r} at position {tok.pos + 1} is not a duration "
                    "(P1DT2H30M)", value=text, position=tok.pos + 1)
    sign, d, h, mi, s = m.groups()
    value = dt.timedelta(days=int(d or 0), hours=int(h or 0), minutes=int(mi or 0),
                         seconds=float(s or 0))
    return -value if sign else value


def parse_filter(text: str, option: str = "$filter") -> Expr:
    p = _Parser(text, option)
    if p.at_end():
        raise sta_error(option, "sta_empty", "empty")
    expr = p.expression()
    p.done()
    return expr


def parse_orderby(text: str, option: str = "$orderby") -> tuple[OrderItem, ...]:
    p = _Parser(text, option)
    if p.at_end():
        raise sta_error(option, "sta_empty", "empty")
    items = []
    while True:
        expr = p.expression()
        desc = False
        tok = p.peek()
        if tok is not None and tok.word in ("asc", "desc"):
            desc = tok.word == "desc"
            p.i += 1
        items.append(OrderItem(expr, desc))
        tok = p.peek()
        if tok is None:
            break
        if tok.kind != "comma":
            raise p.unexpected(tok, "',', asc, desc or the end")
        p.i += 1
    return tuple(items)


_NAME = re.compile(r"[A-Za-z_@][A-Za-z0-9_.@]*(?:/[A-Za-z_][A-Za-z0-9_]*)*")


def parse_select(text: str, option: str = "$select") -> tuple[str, ...]:
    """Property and navigation property names, comma separated (`@iot.id` or `id` for the id)."""
    if len(text) > MAX_OPTION_CHARS:
        raise sta_error(option, "sta_too_long", f"longer than {MAX_OPTION_CHARS} characters",
                    n=MAX_OPTION_CHARS)
    names: list[str] = []
    offset = 0
    for part in text.split(","):
        name = part.strip()
        if not _NAME.fullmatch(name):
            pos = offset + len(part) - len(part.lstrip()) + 1
            raise sta_error(option, "sta_syntax", f"unexpected {name or ','!r} at position {pos} "
                        "(expected a property name)", position=pos, near=name or ",",
                        expected=Message("sta_expect_property"))
        if name not in names:
            names.append(name)
        offset += len(part) + 1
    return tuple(names)


# --- $expand and option lists ------------------------------------------------------------------


def _split(text: str, sep: str, option: str, base: int = 0) -> list[tuple[str, int]]:
    """TEXT split at SEP outside parentheses and quotes: (piece, 0-based offset) pairs."""
    out: list[tuple[str, int]] = []
    depth = 0
    quoted = False
    start = 0
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted  # '' inside a string toggles twice: still inside
        elif quoted:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise sta_error(option, "sta_syntax", f"unexpected ')' at position {base + i + 1}",
                            position=base + i + 1, near=")", expected="…")
        elif ch == sep and depth == 0:
            out.append((text[start:i], start))
            start = i + 1
    if quoted:
        raise sta_error(option, "sta_unterminated", f"unterminated string in {text!r}",
                    position=base + text.index("'") + 1)
    if depth:
        raise sta_error(option, "sta_syntax_end", f"'(' never closed (position {base + text.index('(') + 1})",
                    position=len(text) + base + 1, expected="')'")
    out.append((text[start:], start))
    return out


def parse_expand(text: str, option: str = "$expand", depth: int = 0) -> tuple[Expand, ...]:
    """`Datastreams($filter=...;$top=3;$expand=Observations($top=1)),Locations,
    Datastreams/Sensor` (a path is the same as nested expands)."""
    if len(text) > MAX_OPTION_CHARS:
        raise sta_error(option, "sta_too_long", f"longer than {MAX_OPTION_CHARS} characters",
                    n=MAX_OPTION_CHARS)
    if depth >= MAX_EXPAND_DEPTH:
        raise sta_error(option, "sta_expand_depth", f"expanded more than {MAX_EXPAND_DEPTH} levels deep",
                    n=MAX_EXPAND_DEPTH)
    items: list[Expand] = []
    for piece, offset in _split(text, ",", option):
        stripped = piece.strip()
        lead = len(piece) - len(piece.lstrip())
        pos = offset + lead + 1
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)\s*(?:\((.*)\))?",
                         stripped, re.DOTALL)
        if not m:
            raise sta_error(option, "sta_syntax", f"unexpected {stripped or ','!r} at position {pos} "
                        "(expected a navigation property, e.g. Datastreams or "
                        "Datastreams($top=1))", position=pos, near=stripped or ",",
                        expected="Datastreams($top=1)")
        path = m.group(1).split("/")
        where = f"{option}/{'/'.join(path)}/"
        inner = (_parse_list(m.group(2), where, depth + 1, offset + lead + m.start(2))
                 if m.group(2) is not None else Options(where=where))
        # Datastreams/Observations($top=1) = Datastreams($expand=Observations($top=1))
        for nav in reversed(path[1:]):
            inner = Options(expand=(Expand(nav, inner, pos),), where=where)
        items.append(Expand(path[0], inner, pos))
        if len(items) > MAX_EXPAND_ITEMS:
            raise sta_error(option, "sta_expand_items", f"more than {MAX_EXPAND_ITEMS} expanded items",
                        n=MAX_EXPAND_ITEMS)
    return _merge_expands(items)


def _merge_expands(items: list[Expand]) -> tuple[Expand, ...]:
    """Datastreams/Sensor,Datastreams/Thing: one Datastreams expand holding both."""
    merged: dict[str, Expand] = {}
    for item in items:
        prev = merged.get(item.nav)
        if prev is None:
            merged[item.nav] = item
            continue
        a, b = prev.options, item.options
        options = Options(
            filter=a.filter or b.filter, orderby=a.orderby or b.orderby,
            top=a.top if a.top is not None else b.top, skip=a.skip or b.skip,
            count=a.count or b.count,
            select=a.select if b.select is None else b.select if a.select is None
            else tuple(dict.fromkeys(a.select + b.select)),
            expand=_merge_expands([*a.expand, *b.expand]), raw=a.raw + b.raw, where=a.where)
        merged[item.nav] = Expand(item.nav, options, prev.pos)
    return tuple(merged.values())


def _parse_list(text: str, where: str, depth: int, base: int) -> Options:
    """`$filter=...;$top=3` inside an $expand item's parentheses."""
    params: dict[str, str] = {}
    for piece, _offset in _split(text, ";", where + "(…)", base):
        if not piece.strip():
            continue
        name, eq, value = piece.strip().partition("=")
        if not eq:
            raise sta_error(where.rstrip("/"), "sta_syntax",
                        f"expected option=value in the parentheses, got {piece.strip()!r}",
                        position=base + 1, near=piece.strip(), expected="$option=value")
        params[name.strip()] = value
    return _options(params, where, depth)


def parse_options(params: Mapping[str, str]) -> Options:
    """The query options of a request. Parameters that are not OData options ($-prefixed) are
    left to the route (`lang`); an unknown $option is a 400."""
    given = {k: v for k, v in params.items() if k.startswith("$")}
    return _options(given, "", 0)


def _options(params: Mapping[str, str], where: str, depth: int) -> Options:
    for name in params:
        if name not in OPTIONS:
            raise sta_error(where + name, "sta_unknown_option",
                        f"unknown query option {name}; the options are {', '.join(OPTIONS)}",
                        name=name, options=", ".join(OPTIONS))
    top = _whole(params, "$top", where, MAX_SKIP)
    skip = _whole(params, "$skip", where, MAX_SKIP)
    count = params.get("$count")
    if count is not None and count.lower() not in ("true", "false"):
        raise sta_error(where + "$count", "sta_boolean", f"{count!r} is not true or false", value=count)
    result_format = params.get("$resultFormat")
    # Reading Observations as data arrays (STA 1.1, 14.3) is not served: said, not ignored.
    if result_format is not None and result_format != "default":
        raise sta_error(where + "$resultFormat", "sta_result_format",
                        f"{result_format!r}: only the default format is served (data arrays are "
                        "taken by POST CreateObservations, not given out)", value=result_format)
    return Options(
        filter=parse_filter(params["$filter"], where + "$filter") if "$filter" in params else None,
        orderby=parse_orderby(params["$orderby"], where + "$orderby") if "$orderby" in params else (),
        top=top,
        skip=skip or 0,
        count=(count or "").lower() == "true",
        select=parse_select(params["$select"], where + "$select") if "$select" in params else None,
        expand=parse_expand(params["$expand"], where + "$expand", depth) if "$expand" in params
        else (),
        result_format=None,
        raw=tuple(params.items()),
        where=where,
    )


def _whole(params: Mapping[str, str], name: str, where: str, maximum: int) -> int | None:
    text = params.get(name)
    if text is None:
        return None
    if not re.fullmatch(r"\d{1,12}", text.strip()):
        raise sta_error(where + name, "sta_whole", f"{text!r} is not a whole number ≥ 0", value=text)
    value = int(text)
    if value > maximum:
        raise sta_error(where + name, "sta_too_big", f"at most {maximum}", max=maximum)
    return value
