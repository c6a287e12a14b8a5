"""The one place that decides who may read which layer and which fields.

Every way out (OGC collections, items, tiles, the map, exports, heatmaps, search) asks here.
Until sign-in exists every request is anonymous, so only public layers and public, non-personal
fields are visible; the access-control issue adds users and roles behind the same functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from psycopg import sql

from layers.catalogue import LAYERS, get_layer
from layers.model import Access, Field, Layer

ADMIN = "admin"
# Roles allowed to see personal data (land users, reporters).
PERSONAL_DATA_ROLES = frozenset({"land_officer", ADMIN})


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user name (None = anonymous) and the roles they hold."""

    user: str | None = None
    roles: frozenset[str] = frozenset()

    @property
    def anonymous(self) -> bool:
        return self.user is None

    @property
    def key(self) -> tuple[str, ...]:
        """What access decisions depend on: two principals with the same key see the same."""
        return ("anonymous",) if self.anonymous else tuple(sorted(self.roles)) or ("staff",)


ANONYMOUS = Principal()


def _allowed(access: Access, roles: tuple[str, ...], who: Principal) -> bool:
    if access is Access.PUBLIC:
        return True
    if who.anonymous:
        return False
    if ADMIN in who.roles:
        return True
    if access is Access.INTERNAL:
        return bool(who.roles - {"citizen"})
    if access is Access.RESTRICTED:
        return bool(who.roles & set(roles))
    return False  # secret: admin only


def can_read(layer: Layer, who: Principal) -> bool:
    return _allowed(layer.access, layer.roles, who)


def readable_layer(layer_id: str, who: Principal) -> Layer | None:
    """The layer, or None when it does not exist or may not be read: callers answer both the
    same way, so a hidden layer's name cannot be probed."""
    try:
        layer = get_layer(layer_id)
    except KeyError:
        return None
    return layer if can_read(layer, who) else None


@dataclass(frozen=True)
class AggregateRead:
    """How WHO may read counts of a layer's rows: exactly (MIN_COUNT 0: WHO may read the layer)
    or with every count under MIN_COUNT suppressed (Layer.aggregates), over the rows RESTRICT
    leaves (row_filter: the row rules hold for counts too)."""

    layer: Layer
    min_count: int
    restrict: sql.Composable | None

    @property
    def suppressed(self) -> bool:
        return self.min_count > 0


def aggregate_read(layer_id: str, who: Principal) -> AggregateRead | None:
    """WHO's access to counts of LAYER_ID's rows, or None (answered like a missing layer).
    The one definition every aggregate way out (heatmap, statistics, density, grid, rates,
    change, dashboard series) asks, so that no route decides suppression on its own."""
    try:
        layer = get_layer(layer_id)
    except KeyError:
        return None
    if can_read(layer, who):
        return AggregateRead(layer, 0, row_filter(layer, who))
    agg = layer.aggregates
    if agg is not None and _allowed(agg.access, agg.roles, who):
        return AggregateRead(layer, agg.min_count, row_filter(layer, who))
    return None


def can_read_field(field: Field, who: Principal) -> bool:
    """Personal fields need a personal-data role, or one of the field's own roles (a
    reporter's phone is for the operators who call back, not for land officers)."""
    if field.personal and not (who.roles & PERSONAL_DATA_ROLES or who.roles & set(field.roles)):
        return False
    return _allowed(field.access, field.roles, who)


def readable_layers(who: Principal) -> tuple[Layer, ...]:
    return tuple(layer for layer in LAYERS if can_read(layer, who))


def readable_fields(layer: Layer, who: Principal) -> tuple[Field, ...]:
    return tuple(f for f in layer.fields if can_read_field(f, who))


def row_filter(layer: Layer, who: Principal, alias: str = "t") -> sql.Composable | None:
    """SQL condition hiding the rows this principal may not see (None: sees every row): the
    layer's row rules, and the access level of rows that carry their own (Layer.row_access)."""
    parts: list[sql.Composable] = [
        sql.SQL("{} <> ALL({})").format(
            sql.Identifier(alias, rule.field), sql.Literal(list(rule.values)))
        for rule in layer.row_rules
        if ADMIN not in who.roles and not who.roles & set(rule.roles)
    ]
    if layer.row_access is not None:
        level, roles = layer.row_access
        own = access_condition(who, sql.Identifier(alias, level), sql.Identifier(alias, roles))
        if own is not None:
            parts.append(own)
    return sql.SQL(" AND ").join(parts) if parts else None


def access_condition(who: Principal, access: sql.Composable,
                     roles: sql.Composable) -> sql.Composable | None:
    """SQL condition: the row, which carries its own access level (ACCESS: a text column of
    Access values) and roles (ROLES: a text[] column), may be read by WHO (None: every row may).

    For things that are not a layer of their own but rows with a level each (SensorThings
    datastreams: a camera's or a security sensor's restricted to its roles). It is `_allowed`
    written for rows, and built from `_allowed` itself: the levels that do not depend on roles
    are asked of it, and a restricted row is readable exactly when `_allowed` grants WHO on a
    shared role, i.e. when the row's roles overlap WHO's (tests/test_sta.py compares the two on
    every level, role set and principal)."""
    if ADMIN in who.roles:
        return None
    levels = [a.value for a in (Access.PUBLIC, Access.INTERNAL, Access.SECRET)
              if _allowed(a, (), who)]
    parts: list[sql.Composable] = []
    if levels:
        parts.append(sql.SQL("{} = ANY({})").format(access, sql.Literal(levels)))
    mine = sorted(who.roles)
    if mine and _allowed(Access.RESTRICTED, tuple(mine), who):
        parts.append(sql.SQL("({} = {} AND {} && {}::text[])").format(
            access, sql.Literal(Access.RESTRICTED.value), roles, sql.Literal(mine)))
    if not parts:
        return sql.SQL("false")
    return sql.SQL("({})").format(sql.SQL(" OR ").join(parts))


def is_sensitive_read(layer: Layer, who: Principal, fields: Iterable[Field] | None = None) -> bool:
    """Reads the audit log must record: restricted or secret layers, fields or rows, and personal
    data (Field.personal: land users' names and ID numbers).

    FIELDS are the fields the read carries (default: every field WHO may read); a way out that
    carries fewer says so, e.g. vector tiles carry only Field.in_tiles fields, so a tile of
    parcels read by a land officer holds no personal data and is not audited. Fields WHO may
    not read are never carried, whatever FIELDS says."""
    if layer.access in (Access.RESTRICTED, Access.SECRET):
        return True
    carried = readable_fields(layer, who) if fields is None else [
        f for f in fields if can_read_field(f, who)]
    if any(f.personal or f.access in (Access.RESTRICTED, Access.SECRET) for f in carried):
        return True
    if layer.row_access is not None and (ADMIN in who.roles or who.roles - {"citizen"}):
        # Rows of their own level: staff with roles may be reading restricted ones.
        return True
    return bool(layer.row_rules) and row_filter(layer, who) is None
