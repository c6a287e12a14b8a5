"""Parcel search: by key (current or pre-2025 commune code), land-use code, land user's name,
point and polygon; criteria combine with AND.

Each criterion maps to an index (migrations 0001, 0006, 0013): the key indexes for commune +
sheet + parcel (old codes have their own, partial index), GIN on land_use_codes, for names a
B-tree over the folded name, a GIN over its words (geoioc_words) and a trigram index over
geoioc_fold(land_user), GiST for point and polygon. Results are ordered by key so that paging is
stable; a page is fetched with one row more than asked to tell whether there is a next one,
never with a count over the whole match.

A name search ranks in tiers: the exact name, then names holding the typed words as whole words
in that order, in any order, then names holding them only inside other words. Each tier is its
own query ordered by key with a LIMIT, run one after the other until the page is full: the
planner then walks the key index and stops after a page when a tier is big ("nguyen" is a
third of all names) and uses the name indexes when it is small ("nguyen van an"), where one
query ordered by (tier, key) had to find and sort every match first (461 ms for "nguyen" at
800,000 parcels; bench/search.py).
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
        raise BadRequest("commune: give a 5-digit commune code or a commune name")
    rows = conn.execute(
        "SELECT DISTINCT code FROM admin_units WHERE level = 'commune'"
        " AND lower(unaccent(name)) LIKE %s ORDER BY code LIMIT 50",
        (f"%{like_escape(q)}%",),
    ).fetchall()
    if not rows:
        raise NotFound(f"commune {text!r} not found (give its 5-digit code or name)")
    return [r[0] for r in rows]


def parse_land_use(raw: str) -> list[str]:
    codes = [c.strip().upper() for c in raw.split(",") if c.strip()]
    bad = [c for c in codes if not LAND_USE_CODE.match(c)]
    if bad or not codes:
        raise BadRequest(f"land_use: {', '.join(bad) or raw!r} is not a land-use code "
                           "(three letters, e.g. ONT; several separated by commas)")
    return codes


def parse_owner(raw: str) -> str:
    q = fold(raw)
    if len("".join(owner_words(q))) < MIN_OWNER_CHARS:
        raise BadRequest(f"owner: type at least {MIN_OWNER_CHARS} letters of the name")
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
        # The name conditions are in the tiers (_tiers); these are their parameters.
        words = owner_words(c.owner)
        params["owner"] = c.owner
        params["owner_words"] = words
        params["owner_in_order"] = r"\m" + r"\M.*\m".join(re.escape(w) for w in words) + r"\M"
        for i, word in enumerate(c.owner.split()):
            params[f"owner{i}"] = f"%{like_escape(word)}%"
    if c.point is not None:
        conds.append(sql.SQL("ST_Intersects(t.geom, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326))"))
        params["lon"], params["lat"] = c.point
    if c.polygon is not None:
        relation = "ST_CoveredBy(t.geom, {g})" if c.within else "ST_Intersects(t.geom, {g})"
        conds.append(sql.SQL(relation).format(g=sql.SQL("ST_GeomFromWKB(%(polygon)s, 4326)")))
        params["polygon"] = c.polygon
    return conds, params


def owner_words(folded: str) -> list[str]:
    """The whole words of a folded name as geoioc_words() splits them (migration 0013)."""
    return re.findall(r"\w+", folded)


# Name tiers, best first: the exact name (B-tree), the typed words as whole words in that order,
# in another order (GIN over the words: exact, so rows are not rechecked), then names holding
# them only inside longer words (trigrams). Together they are exactly the names in which every
# typed word occurs; each is written with as few geoioc_fold calls per row as its definition
# needs (a call through the SQL function executor costs microseconds).
EXACT = sql.SQL("geoioc_fold(t.land_user) = %(owner)s")
HAS_WORDS = sql.SQL("geoioc_words(t.land_user) @> %(owner_words)s::text[]")
IN_ORDER = sql.SQL("geoioc_fold(t.land_user) ~ %(owner_in_order)s")


def _tiers(c: Criteria) -> list[sql.Composable]:
    if not c.owner:
        return [sql.SQL("TRUE")]
    typed = c.owner.split()
    words = owner_words(c.owner)
    like_all = sql.SQL(" AND ").join(
        sql.SQL("geoioc_fold(t.land_user) LIKE {}").format(sql.Placeholder(f"owner{i}"))
        for i in range(len(typed)))
    # Whole words imply the typed text when each typed word is one word ("nguyen van", not
    # "nguyen-van", whose words need not be adjacent).
    plain = typed == words
    whole = HAS_WORDS if plain else sql.SQL("{} AND {}").format(HAS_WORDS, like_all)
    if len(words) == 1:  # in order = anywhere
        tiers = [sql.SQL("{} AND NOT {}").format(whole, EXACT)]
    else:  # the exact name has its words in order
        tiers = [sql.SQL("{} AND {} AND NOT {}").format(whole, IN_ORDER, EXACT),
                 sql.SQL("{} AND NOT {}").format(whole, IN_ORDER)]
    # Names with all words but not as whole words (an exact name has them whole).
    return [EXACT, *tiers, sql.SQL("{} AND NOT {}").format(like_all, HAS_WORDS)]


KEY_ORDER = sql.SQL("t.commune_code, t.sheet_no, t.parcel_no, t.old_commune_code NULLS FIRST, t.id")


def _page_ids(conn: psycopg.Connection, conds: list[sql.Composable], params: dict[str, Any],
              tiers: list[sql.Composable], limit: int, offset: int) -> list[int]:
    """Ids of rows OFFSET .. OFFSET+LIMIT in (tier, key) order, asking tier after tier and
    stopping as soon as the page is full. A tier that ends before the offset is counted (up to
    the offset) to know how much of the offset it used."""
    ids: list[int] = []
    for tier in tiers:
        cond = sql.SQL(" AND ").join([*conds, tier])
        rows = conn.execute(sql.SQL(
            "SELECT t.id FROM parcels AS t WHERE {cond} ORDER BY {order}"
            " LIMIT %(tier_limit)s OFFSET %(tier_offset)s").format(cond=cond, order=KEY_ORDER),
            {**params, "tier_limit": limit - len(ids), "tier_offset": offset}).fetchall()
        if not rows and offset > 0:
            seen = conn.execute(sql.SQL(
                "SELECT count(*) FROM (SELECT FROM parcels AS t WHERE {cond}"
                " LIMIT %(tier_offset)s) AS s").format(cond=cond),
                {**params, "tier_offset": offset}).fetchone()
            offset -= seen[0] if seen else 0
            continue
        ids.extend(r[0] for r in rows)
        offset = 0
        if len(ids) >= limit:
            break
    return ids


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
    limit = min(max(limit, 1), MAX_LIMIT)
    ids = _page_ids(conn, conds, params, _tiers(c), limit + 1, min(max(offset, 0), MAX_OFFSET))
    stmt = sql.SQL(
        "SELECT t.id, t.commune_code, t.old_commune_code, t.sheet_no, t.parcel_no{extra},"
        " (SELECT a.name FROM admin_units AS a WHERE a.code = t.commune_code"
        "   AND a.level = 'commune' AND a.valid_to IS NULL LIMIT 1) AS commune_name,"
        " ST_XMin(t.geom) AS x1, ST_YMin(t.geom) AS y1, ST_XMax(t.geom) AS x2, ST_YMax(t.geom) AS y2,"
        " ST_X(ST_PointOnSurface(t.geom)) AS cx, ST_Y(ST_PointOnSurface(t.geom)) AS cy"
        " FROM parcels AS t WHERE t.id = ANY(%(ids)s)"
    ).format(extra=(sql.SQL(", ") + columns(extra)) if extra else sql.SQL(""))
    with conn.cursor(row_factory=dict_row) as cur:
        by_id = {r["id"]: r for r in cur.execute(stmt, {"ids": ids[:limit]}).fetchall()}
    return [_result(by_id[i], extra) for i in ids[:limit] if i in by_id], len(ids) > limit


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
