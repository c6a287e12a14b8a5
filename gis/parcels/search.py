"""Parcel search: by key (current or pre-2025 commune code), land-use code, land user's name,
point and polygon; criteria combine with AND.

Each criterion maps to an index (migration 0006 and 0001): the key indexes for commune + sheet
+ parcel (old codes have their own, partial index), GIN on land_use_codes, a trigram index over
geoioc_fold(land_user) for names, GiST for point and polygon. Results are ordered by key so
that paging is stable; a page is fetched with one row more than asked to tell whether there is
a next one, never with a count over the whole match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from gis.parcels.common import COMMUNE_CODE, columns, fold, key_text, like_escape
from layers.errors import Ambiguous, BadRequest, NotFound

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_OFFSET = 100_000
MIN_OWNER_CHARS = 3
# A drawn search area bigger than this is a job for the OGC API, not for a page of parcels.
MAX_POLYGON_KM2 = 25.0
LAND_USE_CODE = re.compile(r"^[A-Z]{3}$")
# What a search result carries besides the key (personal fields only when readable).
RESULT_FIELDS = ("land_use_codes", "legal_area", "land_user")


@dataclass
class Criteria:
    communes: list[str] = field(default_factory=list)  # codes, current or pre-2025
    sheet: int | None = None
    parcel: int | None = None
    land_use: list[str] = field(default_factory=list)
    owner: str | None = None  # folded text
    point: tuple[float, float] | None = None  # lon, lat
    polygon: bytes | None = None  # EPSG:4326 WKB
    within: bool = False  # polygon: parcels inside it (default: touching it)

    def empty(self) -> bool:
        return not (self.communes or self.sheet or self.parcel or self.land_use or self.owner
                    or self.point or self.polygon)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in ("communes", "sheet", "parcel", "land_use", "point"):
            v = getattr(self, k)
            if v:
                out[k] = v
        if self.owner:
            out["owner"] = True  # the name itself is personal: not echoed into logs
        if self.polygon:
            out["polygon"] = "within" if self.within else "intersects"
        return out


def resolve_communes(conn: psycopg.Connection, text: str) -> list[str]:
    """A 5-digit code as given, or the codes of communes (current or pre-2025) whose folded
    name contains the folded text ("bao yen" finds Xã Bảo Yên)."""
    text = text.strip()
    if COMMUNE_CODE.match(text):
        return [text]
    q = fold(text)
    if len(q) < 2:
        raise BadRequest.for_field("commune_name", "commune",
                                   "give a 5-digit commune code or a commune name")
    rows = conn.execute(
        "SELECT DISTINCT code FROM admin_units WHERE level = 'commune'"
        " AND lower(unaccent(name)) LIKE %s ORDER BY code LIMIT 50",
        (f"%{like_escape(q)}%",),
    ).fetchall()
    if not rows:
        raise NotFound.for_field("commune_not_found", "commune",
                                 f"{text!r} not found (give its 5-digit code or name)", text=text)
    return [r[0] for r in rows]


def parse_land_use(raw: str) -> list[str]:
    codes = [c.strip().upper() for c in raw.split(",") if c.strip()]
    bad = [c for c in codes if not LAND_USE_CODE.match(c)]
    if bad or not codes:
        shown = ", ".join(bad) or raw
        raise BadRequest.for_field("land_use_code", "land_use",
                                   f"{shown!r} is not a land-use code (three letters, e.g. ONT; "
                                   "several separated by commas)", codes=shown)
    return codes


def parse_owner(raw: str) -> str:
    q = fold(raw)
    if len(q.replace(" ", "")) < MIN_OWNER_CHARS:
        raise BadRequest.for_field("owner_too_short", "owner",
                                   f"type at least {MIN_OWNER_CHARS} letters of the name",
                                   n=MIN_OWNER_CHARS)
    return q


def _conditions(c: Criteria) -> tuple[list[sql.Composable], dict[str, Any]]:
    conds: list[sql.Composable] = []
    params: dict[str, Any] = {}
    if c.communes:
        # Two arms so that each uses its index (key index, old-key index).
        conds.append(sql.SQL("(t.commune_code = ANY(%(communes)s)"
                             " OR t.old_commune_code = ANY(%(communes)s))"))
        params["communes"] = c.communes
    if c.sheet is not None:
        conds.append(sql.SQL("t.sheet_no = %(sheet)s"))
        params["sheet"] = c.sheet
    if c.parcel is not None:
        conds.append(sql.SQL("t.parcel_no = %(parcel)s"))
        params["parcel"] = c.parcel
    if c.land_use:
        conds.append(sql.SQL("t.land_use_codes && %(land_use)s::text[]"))
        params["land_use"] = c.land_use
    if c.owner:
        for i, word in enumerate(c.owner.split()):
            name = f"owner{i}"
            conds.append(sql.SQL("geoioc_fold(t.land_user) LIKE {}").format(sql.Placeholder(name)))
            params[name] = f"%{like_escape(word)}%"
        params["owner"] = c.owner
        params["owner_words"] = r"\m" + r"\M.*\m".join(re.escape(w) for w in c.owner.split()) + r"\M"
    if c.point is not None:
        conds.append(sql.SQL("ST_Intersects(t.geom, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326))"))
        params["lon"], params["lat"] = c.point
    if c.polygon is not None:
        relation = "ST_CoveredBy(t.geom, {g})" if c.within else "ST_Intersects(t.geom, {g})"
        conds.append(sql.SQL(relation).format(g=sql.SQL("ST_GeomFromWKB(%(polygon)s, 4326)")))
        params["polygon"] = c.polygon
    return conds, params


def search(conn: psycopg.Connection, c: Criteria, readable: tuple[str, ...],
           restrict: sql.Composable | None = None, *, limit: int = DEFAULT_LIMIT,
           offset: int = 0) -> tuple[list[dict[str, Any]], bool]:
    """(one page of results, whether there are more). READABLE: the parcels fields the caller
    may read; the land user's name is returned (and searchable) only if it is among them."""
    if c.empty():
        raise BadRequest("give at least one search criterion: commune, sheet, parcel, "
                           "land_use, owner, point or polygon")
    conds, params = _conditions(c)
    if restrict is not None:
        conds.append(restrict)
    extra = tuple(f for f in RESULT_FIELDS if f in readable)
    order: sql.Composable = sql.SQL(
        "t.commune_code, t.sheet_no, t.parcel_no, t.old_commune_code NULLS FIRST, t.id")
    if c.owner:
        # Exact name first, then the words as whole words in order, then any match.
        order = sql.SQL("CASE WHEN geoioc_fold(t.land_user) = %(owner)s THEN 0"
                        " WHEN geoioc_fold(t.land_user) ~ %(owner_words)s THEN 1 ELSE 2 END, ") + order
    stmt = sql.SQL(
        "SELECT t.id, t.commune_code, t.old_commune_code, t.sheet_no, t.parcel_no{extra},"
        " (SELECT a.name FROM admin_units AS a WHERE a.code = t.commune_code"
        "   AND a.level = 'commune' AND a.valid_to IS NULL LIMIT 1) AS commune_name,"
        " ST_XMin(t.geom) AS x1, ST_YMin(t.geom) AS y1, ST_XMax(t.geom) AS x2, ST_YMax(t.geom) AS y2,"
        " ST_X(ST_PointOnSurface(t.geom)) AS cx, ST_Y(ST_PointOnSurface(t.geom)) AS cy"
        " FROM parcels AS t WHERE {cond} ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s"
    ).format(extra=(sql.SQL(", ") + columns(extra)) if extra else sql.SQL(""),
             cond=sql.SQL(" AND ").join(conds), order=order)
    limit = min(max(limit, 1), MAX_LIMIT)
    params.update(limit=limit + 1, offset=min(max(offset, 0), MAX_OFFSET))
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(stmt, params).fetchall()
    return [_result(r, extra) for r in rows[:limit]], len(rows) > limit


def _result(r: dict[str, Any], extra: tuple[str, ...]) -> dict[str, Any]:
    out = {
        "id": r["id"], "commune_code": r["commune_code"],
        "old_commune_code": r["old_commune_code"], "commune_name": r["commune_name"],
        "sheet_no": r["sheet_no"], "parcel_no": r["parcel_no"],
        "key": key_text(r["commune_code"], r["old_commune_code"], r["sheet_no"], r["parcel_no"]),
    }
    for f in extra:
        v = r[f]
        out[f] = float(v) if f == "legal_area" and v is not None else v
    out["center"] = [r["cx"], r["cy"]]
    out["bbox"] = [r["x1"], r["y1"], r["x2"], r["y2"]]
    return out


def find_by_number(conn: psycopg.Connection, commune: str, sheet: int, parcel: int,
                   restrict: sql.Composable | None = None) -> int:
    """The id of the parcel COMMUNE/SHEET/PARCEL, COMMUNE being its current or pre-2025 code.

    A pre-2025 code, or the code of a commune that was not merged, names exactly one parcel.
    A post-2025 code of a merged commune covers several old communes whose sheets collide: if
    the numbers match in more than one, the answer is Ambiguous (listing them), not a guess."""
    if not COMMUNE_CODE.match(commune):
        raise BadRequest(f"commune: {commune!r} is not a 5-digit commune code")
    cond = sql.SQL(" AND {}").format(restrict) if restrict is not None else sql.SQL("")
    rows = conn.execute(sql.SQL(
        "SELECT t.id, t.commune_code, t.old_commune_code,"
        " (t.old_commune_code = %(c)s OR t.old_commune_code IS NULL) AS exact"
        " FROM parcels AS t WHERE t.sheet_no = %(s)s AND t.parcel_no = %(p)s"
        " AND (t.commune_code = %(c)s OR t.old_commune_code = %(c)s){cond}"
        " ORDER BY t.old_commune_code NULLS FIRST, t.id"
    ).format(cond=cond), {"c": commune, "s": sheet, "p": parcel}).fetchall()
    exact = [r for r in rows if r[3]]
    if len(exact) == 1:
        return exact[0][0]
    if len(rows) == 1:
        return rows[0][0]
    if not rows:
        raise NotFound(f"parcel {commune}/{sheet}/{parcel} not found",
                       key={"commune": commune, "sheet_no": sheet, "parcel_no": parcel})
    raise Ambiguous(
        f"parcel {commune}/{sheet}/{parcel} is ambiguous: commune {commune} merged several "
        "communes whose sheets share these numbers; give the pre-2025 commune code",
        candidates=[{"id": r[0], "commune_code": r[1], "old_commune_code": r[2],
                     "key": key_text(r[1], r[2], sheet, parcel)} for r in rows])
