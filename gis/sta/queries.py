"""The SQL of SensorThings reads: a request (resource path + query options, gis/sta/odata.py)
compiled against the entity model (gis/sta/model.py) into one statement whose rows are the
entities' JSON, built by PostgreSQL.

How an entity becomes JSON: as text, `'{' || concat_ws(',', member, ...) || '}'`, where each
member is `'"name":' || <JSON text of the value>`; concat_ws skips NULLs, so an optional
property that is NULL, a navigation link not selected or an expansion's nextLink that is not
needed simply drop out, and members keep the spec's order (json_build_object cannot leave a
member out; PostgreSQL 15 has no JSON_OBJECT(... ABSENT ON NULL)). An expanded collection is a
LATERAL subquery aggregating its children's JSON (`string_agg`), paged with $top/$skip inside,
fetching one more row than asked to know whether a nextLink is due; an expanded single entity
is a scalar subquery. Each level applies the rows' visibility (model.visible).

$filter: comparisons, `in`, logic, arithmetic and the functions of STA 1.1's table 9.3.3.5
(strings, dates, math, geospatial). A property path through navigation properties
(`Datastream/Thing/name`, `Datastreams/Observations/result`) is answered by EXISTS over the joined
entities at the nearest comparison: "some related entity matches" (to-many), "the related entity
matches" (to-one); `not` then means "none". Interval properties (a Datastream's phenomenonTime,
an Observation's phenomenonTime with an end) compare with an instant as FROST-Server does: `gt`
after the interval's start, `lt` before its end, `eq` within it. geo.distance and geo.length are
in metres (on the WGS 84 spheroid: PostGIS geography), st_* and geo.intersects in degrees'
planar space (EPSG:4326), as stored.

Values reach the SQL only as `sql.Literal` (quoted by psycopg, with explicit casts); names only
through the model's constant templates; nothing of the request's text is ever spliced.
"""

from __future__ import annotations

import datetime as dt
import math
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import shapely
from psycopg import sql

from gis.sta import odata
from gis.sta.model import ENTITIES, OBSERVATION, Entity, Nav, Prop, tpl, visible
from gis.sta.odata import (
    Binary,
    Call,
    Expr,
    ListExpr,
    Lit,
    Options,
    Path,
    Unary,
    sta_error,
)
from layers.access import Principal

__all__ = ["Compiler", "Step", "observation_key", "observation_id", "collection_sql",
           "count_sql", "entity_sql"]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
OBS_TIME_BITS = 42
OBS_TIME_MASK = (1 << OBS_TIME_BITS) - 1


def observation_key(obs_id: int) -> tuple[int, dt.datetime] | None:
    """The (datastream id, phenomenon time) an Observation's @iot.id stands for (migration 0020,
    sta_observation_id: datastream in the upper bits, Unix milliseconds in the lower 42)."""
    if obs_id <= 0 or obs_id >= 1 << 63:
        return None
    return obs_id >> OBS_TIME_BITS, EPOCH + dt.timedelta(milliseconds=obs_id & OBS_TIME_MASK)


def observation_id(datastream_id: int, t: dt.datetime) -> int:
    ms = (t - EPOCH) // dt.timedelta(milliseconds=1)
    return (datastream_id << OBS_TIME_BITS) | ms


# --- typed SQL values --------------------------------------------------------------------------


SqlExpr = sql.Composable


@dataclass(frozen=True)
class Typed:
    """A compiled value: its SQL, its kind (string number bool datetime date time duration
    interval geometry json result null id), an interval's end, and for `result` / `json` the
    JSON value beside the number (`alt`)."""

    sql: SqlExpr
    kind: str
    end: SqlExpr | None = None
    alt: SqlExpr | None = None
    lit: Lit | None = None
    # For an Observation's id: the alias, so `id eq N` becomes the key equality.
    obs_alias: str | None = None


@dataclass
class Join:
    entity: Entity
    alias: str
    cond: sql.Composable
    many: bool


@dataclass
class Scope:
    entity: Entity
    alias: str
    option: str
    joins: list[Join] = field(default_factory=list)
    # (parent alias, nav name) -> alias: two paths through one navigation share its row.
    seen: dict[tuple[str, str], str] = field(default_factory=dict)


_MIRROR = {"eq": "eq", "ne": "ne", "gt": "lt", "lt": "gt", "ge": "le", "le": "ge"}
_SQL_OP = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_NUMERIC = ("number", "id")


def _s(text: str) -> sql.SQL:
    return sql.SQL(text)  # constant SQL text of this module


def _lit_sql(lit: Lit, option: str) -> Typed:
    v = lit.value
    if lit.kind == "string":
        return Typed(sql.SQL("{}::text").format(sql.Literal(v)), "string", lit=lit)
    if lit.kind == "int":
        return Typed(sql.Literal(v), "number", lit=lit)
    if lit.kind == "float":
        if not math.isfinite(v):
            raise sta_error(option, "sta_number", f"{v} at position {lit.pos} is not a finite number",
                        position=lit.pos)
        return Typed(sql.SQL("{}::float8").format(sql.Literal(v)), "number", lit=lit)
    if lit.kind == "bool":
        return Typed(_s("true" if v else "false"), "bool", lit=lit)
    if lit.kind == "null":
        return Typed(_s("NULL"), "null", lit=lit)
    if lit.kind == "datetime":
        return Typed(sql.Literal(v), "datetime", lit=lit)
    if lit.kind == "date":
        return Typed(sql.Literal(v), "date", lit=lit)
    if lit.kind == "time":
        return Typed(sql.Literal(v), "time", lit=lit)
    if lit.kind == "duration":
        return Typed(sql.Literal(v), "duration", lit=lit)
    # geometry: checked here, so a bad WKT is a 400 at its position, not a database error
    try:
        geom = shapely.from_wkt(v)
    except Exception:  # shapely raises its GEOSException, or ValueError for some inputs
        geom = None
    if geom is None or geom.is_empty:
        raise sta_error(option, "sta_wkt", f"{v!r} at position {lit.pos} is not WKT geometry "
                    "(e.g. geography'POINT(106.07 21.18)')", value=v[:80], position=lit.pos)
    return Typed(sql.SQL("ST_GeomFromText({}, 4326)").format(sql.Literal(shapely.to_wkt(geom))),
                 "geometry", lit=lit)


# --- the compiler ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One segment of a resource path: an entity set or navigation property, and an id."""

    entity: Entity
    id: int | None = None
    nav: Nav | None = None  # how it is reached from the previous step
    nav_name: str | None = None


class Compiler:
    """Compiles one request for WHO; BASE is the service root URL (links are absolute)."""

    def __init__(self, who: Principal, base: str) -> None:
        self.who = who
        self.base = base
        self.n = 0

    def alias(self) -> str:
        self.n += 1
        return f"a{self.n}"

    # -- rows of an entity set: FROM, visibility, path ------------------------------------------

    def from_item(self, entity: Entity, alias: str) -> sql.Composable:
        item = sql.SQL("{} {}").format(sql.Identifier(entity.table), _s(alias))
        if entity.joins:
            item = sql.SQL("{} {}").format(item, tpl(entity.joins, a=alias))
        return item

    def id_condition(self, entity: Entity, alias: str, entity_id: int) -> sql.Composable:
        if entity is OBSERVATION:
            key = observation_key(entity_id)
            if key is None:
                return _s("false")
            return sql.SQL("({} = {} AND {} = {})").format(
                tpl("{a}.datastream_id", a=alias), sql.Literal(key[0]),
                tpl("{a}.phenomenon_time", a=alias), sql.Literal(key[1]))
        if not -(1 << 63) <= entity_id < 1 << 63:
            return _s("false")
        return sql.SQL("{} = {}").format(tpl(entity.id_sql, a=alias), sql.Literal(entity_id))

    def path_conditions(self, steps: Sequence[Step], alias: str) -> list[sql.Composable]:
        """Conditions on ALIAS (the last step's entity) for the whole path: its id, its
        visibility, and that it is reached from the previous steps (EXISTS, with every step's
        own id and visibility)."""
        last = steps[-1]
        conds: list[sql.Composable] = []
        if last.id is not None:
            conds.append(self.id_condition(last.entity, alias, last.id))
        # Observations of a Datastream the path reaches are as visible as it is (checked below).
        inherited = len(steps) > 1 and last.nav is not None and last.nav.inherits
        vis = None if inherited else visible(last.entity, alias, self.who)
        if vis is not None:
            conds.append(vis)
        if len(steps) > 1:
            nav = last.nav
            assert nav is not None
            prev = steps[-2]
            if prev.id is not None and nav.child_fk is not None and prev.entity is not OBSERVATION:
                # Datastreams(7)/Observations: datastream_id = 7, which the key's index serves.
                conds.append(sql.SQL("{} = {}").format(tpl("{a}." + nav.child_fk, a=alias),
                                                       sql.Literal(prev.id)))
            parent = self.alias()
            inner = [tpl(nav.join, p=parent, c=alias),
                     *self.path_conditions(steps[:-1], parent)]
            conds.append(sql.SQL("EXISTS (SELECT 1 FROM {} WHERE {})").format(
                self.from_item(prev.entity, parent), sql.SQL(" AND ").join(inner)))
        return conds

    # -- $filter ---------------------------------------------------------------------------------

    def condition(self, expr: Expr, entity: Entity, alias: str, option: str) -> sql.Composable:
        return self._bool(expr, entity, alias, option)

    def _bool(self, expr: Expr, entity: Entity, alias: str, option: str) -> sql.Composable:
        if isinstance(expr, Binary) and expr.op in ("and", "or"):
            return sql.SQL("({} {} {})").format(
                self._bool(expr.left, entity, alias, option), _s(expr.op.upper()),
                self._bool(expr.right, entity, alias, option))
        if isinstance(expr, Unary) and expr.op == "not":
            return sql.SQL("(NOT coalesce({}, false))").format(
                self._bool(expr.operand, entity, alias, option))
        scope = Scope(entity, alias, option)
        if isinstance(expr, Binary) and expr.op in _SQL_OP:
            cond = self.compare(expr.op, self.value(expr.left, scope), self.value(expr.right, scope),
                                expr.pos, option)
        elif isinstance(expr, Binary) and expr.op == "in":
            left = self.value(expr.left, scope)
            if not isinstance(expr.right, ListExpr):
                raise sta_error(option, "sta_syntax", f"'in' at position {expr.pos} needs a list",
                            position=expr.pos, near="in", expected="(…)")
            cond = sql.SQL("({})").format(sql.SQL(" OR ").join(
                self.compare("eq", left, self.value(item, scope), expr.pos, option)
                for item in expr.right.items))
        else:
            value = self.value(expr, scope)
            if value.kind != "bool":
                raise sta_error(option, "sta_not_condition",
                            f"the expression at position {_pos(expr)} is not a condition (it is "
                            f"a {value.kind})", position=_pos(expr), kind=value.kind)
            cond = value.sql
        return self.wrap(scope, cond)

    def wrap(self, scope: Scope, cond: sql.Composable) -> sql.Composable:
        if not scope.joins:
            return cond
        froms = sql.SQL(", ").join(self.from_item(j.entity, j.alias) for j in scope.joins)
        conds = sql.SQL(" AND ").join([*(j.cond for j in scope.joins), cond])
        return sql.SQL("EXISTS (SELECT 1 FROM {} WHERE {})").format(froms, conds)

    def value(self, expr: Expr, scope: Scope) -> Typed:
        option = scope.option
        if isinstance(expr, Lit):
            return _lit_sql(expr, option)
        if isinstance(expr, Path):
            return self.path_value(expr, scope)
        if isinstance(expr, Call):
            return self.call(expr, scope)
        if isinstance(expr, Unary):
            if expr.op == "neg":
                v = self.value(expr.operand, scope)
                v = self.numeric(v, expr.pos, option)
                return Typed(sql.SQL("(-{})").format(v.sql), "number")
            return Typed(sql.SQL("(NOT coalesce({}, false))").format(
                self._bool(expr.operand, scope.entity, scope.alias, option)), "bool")
        if isinstance(expr, Binary):
            if expr.op in ("and", "or", "in") or expr.op in _SQL_OP:
                # A condition used as a value (`(a eq b) eq true`): its own EXISTS scope.
                return Typed(self._bool(expr, scope.entity, scope.alias, option), "bool")
            return self.arithmetic(expr, scope)
        raise sta_error(option, "sta_syntax", f"unexpected list at position {_pos(expr)}",
                    position=_pos(expr), near="(", expected="…")

    def path_value(self, path: Path, scope: Scope) -> Typed:
        entity, alias = scope.entity, scope.alias
        segs = list(path.segments)
        option = scope.option
        while segs:
            name = segs.pop(0)
            if name in ("id", "@iot.id"):
                if segs:
                    break
                return Typed(tpl(entity.id_sql, a=alias), "id",
                             obs_alias=alias if entity is OBSERVATION else None)
            nav = entity.navs.get(name)
            if nav is not None:
                if not segs:
                    raise sta_error(option, "sta_nav_value",
                                f"{name} at position {path.pos} is a navigation property: name "
                                f"one of its properties ({name}/…)", name=name, position=path.pos)
                key = (alias, name)
                child = scope.seen.get(key)
                target = ENTITIES[nav.target]
                if child is None:
                    child = self.alias()
                    scope.seen[key] = child
                    conds = [tpl(nav.join, p=alias, c=child)]
                    vis = None if nav.inherits else visible(target, child, self.who)
                    if vis is not None:
                        conds.append(vis)
                    scope.joins.append(Join(target, child, sql.SQL(" AND ").join(conds), nav.many))
                entity, alias = target, child
                continue
            prop = entity.prop(name)
            if prop is None:
                raise self.unknown(entity, name, path.pos, option)
            return self.prop_value(prop, alias, segs, path, option)
        raise self.unknown(entity, "/".join(path.segments), path.pos, option)

    def prop_value(self, prop: Prop, alias: str, rest: list[str], path: Path,
                   option: str) -> Typed:
        if rest:
            if prop.kind != "json":
                raise sta_error(option, "sta_no_subproperty",
                                f"{'/'.join(path.segments)} at position {path.pos}: "
                                f"{path.segments[-len(rest) - 1]} has no sub-properties",
                                name="/".join(path.segments), position=path.pos,
                                prop=path.segments[-len(rest) - 1])
            if len(rest) == 1 and rest[0] in prop.members:
                kind, column = prop.members[rest[0]]
                return Typed(tpl(column, a=alias), kind)
            node = sql.SQL("({} #> {})").format(tpl(prop.sql, a=alias), sql.Literal(rest))
            return Typed(node, "json", alt=node)
        s = tpl(prop.sql, a=alias)
        if prop.kind == "interval":
            return Typed(s, "interval", end=tpl(prop.end or prop.sql, a=alias))
        if prop.kind == "result":
            return Typed(s, "result", alt=tpl("{a}.result_json", a=alias))
        if prop.kind == "json":
            return Typed(s, "json", alt=s)
        return Typed(s, prop.kind)

    def unknown(self, entity: Entity, name: str, pos: int, option: str) -> odata.ODataError:
        known = ", ".join(["id", *entity.props, *entity.navs])
        return sta_error(option, "sta_unknown_property",
                     f"{entity.name} has no property {name} (position {pos}); it has {known}",
                     name=name, position=pos, known=known, entity=entity.name)

    # comparisons

    def compare(self, op: str, left: Typed, right: Typed, pos: int, option: str) -> sql.Composable:
        # The property on the left (`5 lt result` is `result gt 5`).
        if left.lit is not None and right.lit is None:
            left, right, op = right, left, _MIRROR[op]
        if right.kind == "null" or left.kind == "null":
            other = left if right.kind == "null" else right
            target = other.sql
            if other.kind in ("result", "json") and other.alt is not None and other.kind == "result":
                target = sql.SQL("coalesce(to_jsonb({}), {})").format(other.sql, other.alt)
            if op == "eq":
                return sql.SQL("({} IS NULL)").format(target)
            if op == "ne":
                return sql.SQL("({} IS NOT NULL)").format(target)
            raise self.types(left, right, pos, option)
        if left.obs_alias and right.kind == "number" and right.lit is not None and op == "eq" \
                and right.lit.kind == "int":
            return self.id_condition(OBSERVATION, left.obs_alias, right.lit.value)
        left, right = self.align(left, right, pos, option)
        o = _s(_SQL_OP[op])
        if left.kind == "interval" or right.kind == "interval":
            return self.compare_interval(op, left, right)
        if left.kind in ("geometry",) or (left.kind == "bool" and op not in ("eq", "ne")):
            raise self.types(left, right, pos, option)
        return sql.SQL("({} {} {})").format(left.sql, o, right.sql)

    def align(self, left: Typed, right: Typed, pos: int, option: str) -> tuple[Typed, Typed]:
        """Both sides as one comparable kind, or a 400 naming the two kinds."""
        lk, rk = left.kind, right.kind
        if lk in ("result", "json") or rk in ("result", "json"):
            if lk in ("result", "json") and rk in ("result", "json"):
                return self.numeric(left, pos, option), self.numeric(right, pos, option)
            flex, other = (left, right) if lk in ("result", "json") else (right, left)
            if other.kind in _NUMERIC:
                flex = self.numeric(flex, pos, option)
            elif other.kind == "string":
                flex = Typed(sql.SQL("coalesce({} #>> '{{}}', {}::text)").format(
                    flex.alt, flex.sql) if flex.kind == "result"
                    else sql.SQL("({} #>> '{{}}')").format(flex.alt), "string")
            elif other.kind == "bool":
                flex = Typed(sql.SQL("(CASE WHEN jsonb_typeof({0}) = 'boolean' THEN ({0})::boolean "
                                     "END)").format(flex.alt), "bool")
            elif other.kind in ("datetime", "date"):
                flex = Typed(sql.SQL("(CASE WHEN jsonb_typeof({0}) = 'string' AND ({0} #>> '{{}}') ~ "
                                     "'^\\d{{4}}-\\d{{2}}-\\d{{2}}' THEN ({0} #>> '{{}}')::timestamptz "
                                     "END)").format(flex.alt), "datetime")
            else:
                raise self.types(left, right, pos, option)
            return (flex, other) if lk in ("result", "json") else (other, flex)
        if lk in _NUMERIC and rk in _NUMERIC:
            return left, right
        if {lk, rk} <= {"datetime", "date", "interval"}:
            return _as_time(left), _as_time(right)
        if lk == rk and lk in ("string", "bool", "time", "duration"):
            return left, right
        raise self.types(left, right, pos, option)

    def compare_interval(self, op: str, left: Typed, right: Typed) -> sql.Composable:
        """Interval (start, end) against an instant or interval, FROST-Server's way."""
        ls, le = left.sql, left.end if left.kind == "interval" else left.sql
        rs, re_ = right.sql, right.end if right.kind == "interval" else right.sql
        assert le is not None and re_ is not None
        if op == "gt":
            return sql.SQL("({} > {})").format(ls, re_)
        if op == "ge":
            return sql.SQL("({} >= {})").format(ls, re_)
        if op == "lt":  # the start too: implied, and what an index on the start serves
            return sql.SQL("({} < {} AND {} < {})").format(ls, rs, le, rs)
        if op == "le":
            return sql.SQL("({} <= {} AND {} <= {})").format(ls, rs, le, rs)
        inside = sql.SQL("({} <= {} AND {} >= {})").format(ls, re_, le, rs)
        if left.kind == "interval" and right.kind == "interval":
            inside = sql.SQL("({} = {} AND {} = {})").format(ls, rs, le, re_)
        return inside if op == "eq" else sql.SQL("(NOT coalesce({}, false))").format(inside)

    def numeric(self, v: Typed, pos: int, option: str) -> Typed:
        if v.kind in _NUMERIC:
            return Typed(v.sql, "number", lit=v.lit)
        if v.kind == "result":
            return Typed(v.sql, "number")
        if v.kind == "json":
            return Typed(sql.SQL("(CASE WHEN jsonb_typeof({0}) = 'number' THEN ({0} #>> '{{}}')::float8 "
                                 "END)").format(v.alt), "number")
        raise sta_error(option, "sta_type", f"a number is expected at position {pos}, not a {v.kind}",
                    position=pos, expected="number", kind=v.kind)

    def types(self, left: Typed, right: Typed, pos: int, option: str) -> odata.ODataError:
        return sta_error(option, "sta_types", f"cannot compare a {left.kind} with a {right.kind} "
                     f"(position {pos})", left=left.kind, right=right.kind, position=pos)

    def want(self, v: Typed, kinds: tuple[str, ...], call: Call, option: str) -> Typed:
        if v.kind in kinds:
            return v
        if "number" in kinds and v.kind in ("id", "result", "json"):
            return self.numeric(v, call.pos, option)
        if "string" in kinds and v.kind in ("json", "result"):
            return Typed(sql.SQL("({} #>> '{{}}')").format(v.alt), "string")
        if "datetime" in kinds and v.kind in ("interval", "date"):
            return _as_time(v)
        raise sta_error(option, "sta_argument", f"{call.name}() at position {call.pos} takes a "
                    f"{' or '.join(kinds)}, not a {v.kind}", name=call.name, position=call.pos,
                    expected=" | ".join(kinds), kind=v.kind)

    # arithmetic

    def arithmetic(self, expr: Binary, scope: Scope) -> Typed:
        option = scope.option
        left, right = self.value(expr.left, scope), self.value(expr.right, scope)
        if left.kind in ("datetime", "date", "interval") and right.kind == "duration" \
                and expr.op in ("add", "sub"):
            t = _as_time(left)
            return Typed(sql.SQL("({} {} {})").format(t.sql, _s("+" if expr.op == "add" else "-"),
                                                      right.sql), "datetime")
        if left.kind in ("datetime", "date") and right.kind in ("datetime", "date") \
                and expr.op == "sub":
            return Typed(sql.SQL("({} - {})").format(_as_time(left).sql, _as_time(right).sql),
                         "duration")
        a, b = self.numeric(left, expr.pos, option), self.numeric(right, expr.pos, option)
        if expr.op == "div":  # division by zero: no value (the row does not match), not an error
            return Typed(sql.SQL("({}::float8 / NULLIF({}, 0)::float8)").format(a.sql, b.sql),
                         "number")
        if expr.op == "mod":
            return Typed(sql.SQL("mod({}::numeric, NULLIF({}, 0)::numeric)::float8").format(
                a.sql, b.sql), "number")
        ops = {"add": "+", "sub": "-", "mul": "*"}
        return Typed(sql.SQL("({} {} {})").format(a.sql, _s(ops[expr.op]), b.sql), "number")

    # functions

    def call(self, c: Call, scope: Scope) -> Typed:
        option = scope.option
        spec = FUNCTIONS.get(c.name)
        if spec is None:
            raise sta_error(option, "sta_function", f"unknown function {c.name}() at position {c.pos}; "
                        f"the functions are {', '.join(sorted(FUNCTIONS))}", name=c.name,
                        position=c.pos, known=", ".join(sorted(FUNCTIONS)))
        arity, build = spec
        if len(c.args) not in arity:
            raise sta_error(option, "sta_arity", f"{c.name}() at position {c.pos} takes "
                        f"{' or '.join(map(str, arity))} arguments, not {len(c.args)}",
                        name=c.name, position=c.pos, n=len(c.args),
                        expected=" | ".join(map(str, arity)))
        args = [self.value(a, scope) for a in c.args]
        return build(self, c, args, option)

    # -- $orderby --------------------------------------------------------------------------------

    def order_key(self, item: odata.OrderItem, entity: Entity, alias: str,
                  option: str) -> sql.Composable:
        if not _has_path(item.expr):  # a constant orders nothing (and `ORDER BY 2` is a column)
            raise sta_error(option, "sta_order_constant", f"the sort key at position "
                            f"{_pos(item.expr)} names no property", position=_pos(item.expr))
        scope = Scope(entity, alias, option)
        v = self.value(item.expr, scope)
        if v.kind == "geometry":
            raise sta_error(option, "sta_order_type", f"cannot sort by a geometry (position "
                        f"{_pos(item.expr)})", position=_pos(item.expr), kind=v.kind)
        expr = v.sql
        if v.kind == "result":
            expr = sql.SQL("{}, {}").format(v.sql, v.alt)
        if scope.joins:
            if any(j.many for j in scope.joins):
                raise sta_error(option, "sta_order_many",
                            f"cannot sort by a property of several related entities (position "
                            f"{_pos(item.expr)})", position=_pos(item.expr))
            froms = sql.SQL(", ").join(self.from_item(j.entity, j.alias) for j in scope.joins)
            conds = sql.SQL(" AND ").join(j.cond for j in scope.joins)
            expr = sql.SQL("(SELECT {} FROM {} WHERE {} LIMIT 1)").format(v.sql, froms, conds)
        # PostgreSQL's own null order (last ascending, first descending): what a btree index
        # returns, so `phenomenonTime desc` is read backwards from the key, not sorted.
        direction = _s(" DESC" if item.desc else "")
        if v.kind == "result" and not scope.joins:
            return sql.SQL("{}{}, {}{}").format(v.sql, direction, v.alt, direction)
        return sql.SQL("{}{}").format(expr, direction)

    def order_by(self, options: Options, entity: Entity, alias: str) -> sql.Composable:
        keys = [self.order_key(item, entity, alias, options.name("$orderby"))
                for item in options.orderby]
        desc = bool(options.orderby) and options.orderby[-1].desc
        named = {p.segments for p in (i.expr for i in options.orderby) if isinstance(p, Path)}
        keys += [sql.SQL("{}{}").format(tpl(k, a=alias), _s(" DESC" if desc else ""))
                 for k, prop in zip(entity.key_order, entity.key_props, strict=True)
                 if tuple(prop.split("/")) not in named]
        return sql.SQL(", ").join(keys)

    # -- JSON of entities ------------------------------------------------------------------------

    def link(self, entity: Entity, alias: str, suffix: str = "") -> sql.Composable:
        """SQL text of the JSON string BASE/Things(<id>)SUFFIX."""
        return sql.SQL("to_json({} || {} || {})::text").format(
            sql.Literal(f"{self.base}/{entity.plural}("), tpl(entity.id_sql, a=alias),
            sql.Literal(")" + suffix))

    def entity_json(self, entity: Entity, alias: str, options: Options,
                    laterals: list[sql.Composable]) -> sql.Composable:
        """The JSON text of one ENTITY row (ALIAS), with OPTIONS' $select and $expand; the
        LATERAL joins its expansions need are appended to LATERALS."""
        select = self.selection(entity, options)
        expands = {e.nav: e for e in options.expand}
        for name in expands:
            if name not in entity.navs:
                raise sta_error(options.name("$expand"), "sta_unknown_nav",
                            f"{entity.name} has no navigation property {name}; it has "
                            f"{', '.join(entity.navs)}", name=name, entity=entity.name,
                            known=", ".join(entity.navs))
        members: list[sql.Composable] = []

        def member(name: str, value: sql.Composable) -> None:
            members.append(sql.SQL("{} || {}").format(sql.Literal(f'"{name}":'), value))

        if select is None or "id" in select:
            member("@iot.id", sql.SQL("({})::text").format(tpl(entity.id_sql, a=alias)))
        if select is None or "selfLink" in select:
            member("@iot.selfLink", self.link(entity, alias))
        for name, prop in entity.props.items():
            if select is not None and name not in select:
                continue
            value = tpl(prop.json_text(), a=alias)
            if not prop.optional:
                value = sql.SQL("coalesce({}, 'null')").format(value)
            member(name, value)
        for name, nav in entity.navs.items():
            if select is None or name in select:
                member(f"{name}@iot.navigationLink", self.link(entity, alias, "/" + name))
            if name in expands:
                self.expand_members(entity, alias, name, nav, expands[name].options, member,
                                    laterals)
        return sql.SQL("'{{' || concat_ws(',', {}) || '}}'").format(sql.SQL(", ").join(members))

    def selection(self, entity: Entity, options: Options) -> set[str] | None:
        if options.select is None:
            return None
        out: set[str] = set()
        for name in options.select:
            if name in ("id", "@iot.id"):
                out.add("id")
            elif name in ("selfLink", "@iot.selfLink"):
                out.add("selfLink")
            elif name in entity.props or name in entity.navs:
                out.add(name)
            else:
                known = ", ".join(["id", "@iot.selfLink", *entity.props, *entity.navs])
                raw = dict(options.raw).get("$select", "")
                pos = raw.find(name) + 1
                raise sta_error(options.name("$select"), "sta_unknown_property",
                                f"{entity.name} has no property {name} (position {pos}); it "
                                f"has {known}", name=name, position=pos, known=known,
                                entity=entity.name)
        return out

    def expand_members(self, entity: Entity, alias: str, name: str, nav: Nav, options: Options,
                       member: Callable[[str, sql.Composable], None],
                       laterals: list[sql.Composable]) -> None:
        target = ENTITIES[nav.target]
        child = self.alias()
        conds = [tpl(nav.join, p=alias, c=child)]
        vis = None if nav.inherits else visible(target, child, self.who)
        if vis is not None:
            conds.append(vis)
        if options.filter is not None:
            conds.append(self.condition(options.filter, target, child, options.name("$filter")))
        where = sql.SQL(" AND ").join(conds)
        inner_laterals: list[sql.Composable] = []
        child_json = self.entity_json(target, child, options, inner_laterals)
        source = sql.SQL(" ").join([self.from_item(target, child), *inner_laterals])
        if not nav.many:
            member(name, sql.SQL("(SELECT {} FROM {} WHERE {} LIMIT 1)").format(
                child_json, source, where))
            return
        top = min(options.top if options.top is not None else odata.DEFAULT_TOP, odata.MAX_TOP)
        skip = options.skip
        x = self.alias()
        order = self.order_by(options, target, child)
        laterals.append(sql.SQL(
            "LEFT JOIN LATERAL (SELECT '[' || coalesce(string_agg(q.j, ',' ORDER BY q.n) "
            "FILTER (WHERE q.n <= {last}), '') || ']' AS arr, count(*) > {top} AS more "
            "FROM (SELECT {json} AS j, row_number() OVER (ORDER BY {order}) AS n "
            "FROM {source} WHERE {where} ORDER BY {order} LIMIT {limit} OFFSET {skip}) q) {x} "
            "ON true").format(
                last=sql.Literal(skip + top), top=sql.Literal(top), json=child_json, order=order,
                source=source, where=where, limit=sql.Literal(top + 1), skip=sql.Literal(skip),
                x=_s(x)))
        if options.count:
            member(f"{name}@iot.count", sql.SQL("(SELECT count(*) FROM {} WHERE {})::text").format(
                self.from_item(target, child), where))
        member(name, tpl("{x}.arr", x=x))
        query = next_query(options, top, skip + top)
        if top > 0:  # $top=0 asks for no entities (a count): no next page
            member(f"{name}@iot.nextLink", sql.SQL("CASE WHEN {}.more THEN {} END").format(
                _s(x), self.link(entity, alias, f"/{name}?{query}")))


def next_query(options: Options, top: int, skip: int) -> str:
    """The query string of the next page: the same options, $top and $skip moved on."""
    params = [(k, v) for k, v in options.raw if k not in ("$top", "$skip")]
    params += [("$top", str(top)), ("$skip", str(skip))]
    return urllib.parse.urlencode(params, safe="$(),'/:=;", quote_via=urllib.parse.quote)


def _as_time(v: Typed) -> Typed:
    if v.kind == "date":
        return Typed(sql.SQL("({}::timestamp AT TIME ZONE 'UTC')").format(v.sql), "datetime",
                     lit=v.lit)
    return v


def _has_path(expr: Expr) -> bool:
    if isinstance(expr, Path):
        return True
    if isinstance(expr, Binary):
        return _has_path(expr.left) or _has_path(expr.right)
    if isinstance(expr, Unary):
        return _has_path(expr.operand)
    if isinstance(expr, Call | ListExpr):
        return any(_has_path(a) for a in (expr.args if isinstance(expr, Call) else expr.items))
    return False


def _pos(expr: Expr) -> int:
    return expr.pos


# --- the function table (STA 1.1, 9.3.3.5.2) ----------------------------------------------------

Builder = Callable[[Compiler, Call, list[Typed], str], Typed]


def _fn(template: str, kinds: Sequence[tuple[str, ...]], result: str) -> Builder:
    """A function as a constant SQL TEMPLATE over its arguments {0}, {1}... of the given KINDS."""

    def build(comp: Compiler, c: Call, args: list[Typed], option: str) -> Typed:
        vals = [comp.want(a, kinds[min(i, len(kinds) - 1)], c, option).sql
                for i, a in enumerate(args)]
        return Typed(sql.SQL(template).format(*vals), result)

    return build


def _time_part(part: str) -> Builder:
    return _fn(f"date_part('{part}', ({{0}}) AT TIME ZONE 'UTC')::int", [("datetime",)], "number")


def _minmax(which: str) -> Builder:
    def build(comp: Compiler, c: Call, args: list[Typed], option: str) -> Typed:
        if not args:  # OData: the earliest / latest representable instant
            bound = "-infinity" if which == "min" else "infinity"
            return Typed(sql.SQL("{}::timestamptz").format(sql.Literal(bound)), "datetime")
        v = args[0]
        if v.kind == "interval":
            return Typed(v.sql if which == "min" else v.end or v.sql, "datetime")
        return comp.want(v, ("datetime",), c, option)

    return build


def _substring(comp: Compiler, c: Call, args: list[Typed], option: str) -> Typed:
    s = comp.want(args[0], ("string",), c, option).sql
    start = comp.want(args[1], ("number",), c, option).sql
    if len(args) == 2:
        return Typed(sql.SQL("substr({}, ({})::int + 1)").format(s, start), "string")
    n = comp.want(args[2], ("number",), c, option).sql
    return Typed(sql.SQL("substr({}, ({})::int + 1, greatest(({})::int, 0))").format(s, start, n),
                 "string")


_G = ("geometry",)
_S = ("string",)
_N = ("number",)
_T = ("datetime",)

FUNCTIONS: dict[str, tuple[tuple[int, ...], Builder]] = {
    # strings
    "substringof": ((2,), _fn("(strpos({1}, {0}) > 0)", [_S, _S], "bool")),
    "contains": ((2,), _fn("(strpos({0}, {1}) > 0)", [_S, _S], "bool")),
    "endswith": ((2,), _fn("(right({0}, char_length({1})) = {1})", [_S, _S], "bool")),
    "startswith": ((2,), _fn("starts_with({0}, {1})", [_S, _S], "bool")),
    "length": ((1,), _fn("char_length({0})", [_S], "number")),
    "indexof": ((2,), _fn("(strpos({0}, {1}) - 1)", [_S, _S], "number")),
    "substring": ((2, 3), _substring),
    "tolower": ((1,), _fn("lower({0})", [_S], "string")),
    "toupper": ((1,), _fn("upper({0})", [_S], "string")),
    "trim": ((1,), _fn("btrim({0})", [_S], "string")),
    "concat": ((2,), _fn("({0} || {1})", [_S, _S], "string")),
    # dates and times (UTC)
    "year": ((1,), _time_part("year")),
    "month": ((1,), _time_part("month")),
    "day": ((1,), _time_part("day")),
    "hour": ((1,), _time_part("hour")),
    "minute": ((1,), _time_part("minute")),
    "second": ((1,), _fn("floor(date_part('second', ({0}) AT TIME ZONE 'UTC'))::int", [_T],
                         "number")),
    "fractionalseconds": ((1,), _fn("(date_part('second', ({0}) AT TIME ZONE 'UTC') - floor("
                                    "date_part('second', ({0}) AT TIME ZONE 'UTC')))", [_T],
                                    "number")),
    "date": ((1,), _fn("(({0}) AT TIME ZONE 'UTC')::date", [_T], "date")),
    "time": ((1,), _fn("(({0}) AT TIME ZONE 'UTC')::time", [_T], "time")),
    "totaloffsetminutes": ((1,), _fn("(0 * date_part('epoch', {0}))::int", [_T], "number")),
    "now": ((0,), lambda comp, c, args, option: Typed(_s("now()"), "datetime")),
    "mindatetime": ((0, 1), _minmax("min")),
    "maxdatetime": ((0, 1), _minmax("max")),
    # math
    "round": ((1,), _fn("round(({0})::float8)", [_N], "number")),
    "floor": ((1,), _fn("floor(({0})::float8)", [_N], "number")),
    "ceiling": ((1,), _fn("ceiling(({0})::float8)", [_N], "number")),
    # geospatial: distances and lengths in metres, relations in EPSG:4326
    "geo.distance": ((2,), _fn("ST_Distance(({0})::geography, ({1})::geography)", [_G, _G],
                               "number")),
    "geo.length": ((1,), _fn("ST_Length(({0})::geography)", [_G], "number")),
    "geo.intersects": ((2,), _fn("ST_Intersects({0}, {1})", [_G, _G], "bool")),
    "st_equals": ((2,), _fn("ST_Equals({0}, {1})", [_G, _G], "bool")),
    "st_disjoint": ((2,), _fn("ST_Disjoint({0}, {1})", [_G, _G], "bool")),
    "st_touches": ((2,), _fn("ST_Touches({0}, {1})", [_G, _G], "bool")),
    "st_within": ((2,), _fn("ST_Within({0}, {1})", [_G, _G], "bool")),
    "st_overlaps": ((2,), _fn("ST_Overlaps({0}, {1})", [_G, _G], "bool")),
    "st_crosses": ((2,), _fn("ST_Crosses({0}, {1})", [_G, _G], "bool")),
    "st_intersects": ((2,), _fn("ST_Intersects({0}, {1})", [_G, _G], "bool")),
    "st_contains": ((2,), _fn("ST_Contains({0}, {1})", [_G, _G], "bool")),
    "st_relate": ((3,), _fn("ST_Relate({0}, {1}, {2})", [_G, _G, _S], "bool")),
}


# --- whole statements ----------------------------------------------------------------------------


def collection_sql(comp: Compiler, steps: Sequence[Step], options: Options, top: int,
                   ref: bool = False) -> sql.Composed:
    """One row per entity of the page (`j`: its JSON text; REF: only its selfLink, the $ref
    form), TOP + 1 rows at most: the extra one says a next page exists."""
    entity = steps[-1].entity
    alias = comp.alias()
    conds = comp.path_conditions(steps, alias)
    if options.filter is not None:
        conds.append(comp.condition(options.filter, entity, alias, options.name("$filter")))
    laterals: list[sql.Composable] = []
    j = tpl_ref(comp, entity, alias) if ref else comp.entity_json(entity, alias, options, laterals)
    return sql.SQL("SELECT {j} AS j FROM {src} WHERE {where} ORDER BY {order} "
                   "LIMIT {limit} OFFSET {skip}").format(
        j=j, src=sql.SQL(" ").join([comp.from_item(entity, alias), *laterals]),
        where=sql.SQL(" AND ").join(conds) if conds else _s("true"),
        order=comp.order_by(options, entity, alias), limit=sql.Literal(top + 1),
        skip=sql.Literal(options.skip))


def tpl_ref(comp: Compiler, entity: Entity, alias: str) -> sql.Composable:
    return sql.SQL("'{{\"@iot.selfLink\":' || {} || '}}'").format(comp.link(entity, alias))


def count_sql(comp: Compiler, steps: Sequence[Step], options: Options) -> sql.Composed:
    entity = steps[-1].entity
    alias = comp.alias()
    conds = comp.path_conditions(steps, alias)
    if options.filter is not None:
        conds.append(comp.condition(options.filter, entity, alias, options.name("$filter")))
    return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
        comp.from_item(entity, alias), sql.SQL(" AND ").join(conds) if conds else _s("true"))


def cheap_observation_count(comp: Compiler, steps: Sequence[Step],
                            options: Options) -> sql.Composed | None:
    """The exact number of Observations from datastream_latest (kept by the ingest) when the
    request is all of them, or all of one Datastream's, without $filter: no scan."""
    if steps[-1].entity is not OBSERVATION or options.filter is not None or steps[-1].id is not None:
        return None
    if len(steps) == 1:
        vis = visible(ENTITIES["Datastreams"], "d", comp.who)
        return sql.SQL("SELECT coalesce(sum(l.observations), 0)::bigint FROM datastream_latest l "
                       "JOIN datastreams d ON d.id = l.datastream_id WHERE {}").format(
            vis if vis is not None else _s("true"))
    if len(steps) == 2 and steps[0].entity.plural == "Datastreams" and steps[0].id is not None:
        vis = visible(ENTITIES["Datastreams"], "d", comp.who)
        return sql.SQL("SELECT coalesce((SELECT l.observations FROM datastream_latest l JOIN "
                       "datastreams d ON d.id = l.datastream_id WHERE d.id = {} AND {}), 0)"
                       ).format(sql.Literal(steps[0].id), vis if vis is not None else _s("true"))
    return None


def entity_sql(comp: Compiler, steps: Sequence[Step], options: Options,
               ref: bool = False) -> sql.Composed:
    """The JSON text of the one entity at the end of STEPS (no row: not found for the caller)."""
    entity = steps[-1].entity
    alias = comp.alias()
    conds = comp.path_conditions(steps, alias)
    laterals: list[sql.Composable] = []
    j = tpl_ref(comp, entity, alias) if ref else comp.entity_json(entity, alias, options, laterals)
    return sql.SQL("SELECT {} AS j FROM {} WHERE {} LIMIT 1").format(
        j, sql.SQL(" ").join([comp.from_item(entity, alias), *laterals]),
        sql.SQL(" AND ").join(conds) if conds else _s("true"))


def property_sql(comp: Compiler, steps: Sequence[Step], prop: Prop) -> sql.Composed:
    """The JSON text of one property of the entity at the end of STEPS."""
    entity = steps[-1].entity
    alias = comp.alias()
    conds = comp.path_conditions(steps, alias)
    return sql.SQL("SELECT coalesce({}, 'null') AS j FROM {} WHERE {} LIMIT 1").format(
        tpl(prop.json_text(), a=alias), comp.from_item(entity, alias),
        sql.SQL(" AND ").join(conds) if conds else _s("true"))
