"""Parcel search: by key (current or pre-2025 commune code), land-use code, land user's name,
point and polygon; criteria combine with AND.

Each criterion maps to an index (migrations 0001, 0006, 0013): the key indexes for commune +
sheet + parcel (old codes have their own, partial index), GIN on land_use_codes, for names a
B-tree over the stored folded name (land_user_folded), a GIN over its words (geoioc_words), a
trigram index over it and one over it with every letter doubled (pairs of letters: two-letter
words, DOUBLED_NAME), GiST for point and polygon. Results are ordered by key so that paging is
stable; a page is fetched with one row more than asked to tell whether there is a next one,
never with a count over the whole match.

A name search ranks in tiers: the exact name, then names holding the typed words as whole words
in that order, in any order, then names holding them only inside other words; by key within a
tier. The names are read folded as stored (land_user_folded, migration 0013), never through
geoioc_fold() per row. A tier is fetched one of two ways, so that neither depends on the
planner guessing how many names hold the words (it multiplies their frequencies: at 800,000
parcels "cong ty" is 18,000 company names where it guesses 1,400, "thi duc" none where it
guesses 5,800, since Thị names women and Đức men):

* walk: the first parcels in key order (an index-only scan of the key index, which carries the
  folded name), each sorted into its tier by LIKEs and, for the few that pass them, regular
  expressions; the first page of a tier there is its first page overall. 2,000 parcels fill it
  when the tier is big ("nguyen" is a third of all names); a tier seen often enough there is
  walked further (up to 30,000);
* collect, for a tier the walk did not fill (then it is small): its names from the name
  indexes (the GIN over the words, trigrams), sorted by key.

A query ordered by (tier, key) had to find and sort every match first: 461 ms for "nguyen" at
800,000 parcels (bench/search.py has the figures).
"""

from __future__ import annotations

import math
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
    if len("".join(owner_words(q))) < MIN_OWNER_CHARS:
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
        # The name conditions are in the tiers (_tiers); these are their parameters.
        words = owner_words(c.owner)
        params["owner"] = c.owner
        params["owner_words"] = words
        params["owner_in_order"] = r"\m" + r"\M.*\m".join(re.escape(w) for w in words) + r"\M"
        params["owner_word_res"] = [rf"\m{re.escape(w)}\M" for w in words]
        params["owner_in_order_like"] = "%" + "%".join(like_escape(w) for w in words) + "%"
        for i, word in enumerate(c.owner.split()):
            params[f"owner{i}"] = f"%{like_escape(word)}%"
            params[f"owner_pair{i}"] = f"%{like_escape(doubled(word))}%"
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


def doubled(text: str) -> str:
    """Every character twice ("do" -> "ddoo"), as DOUBLED_NAME writes the stored name."""
    return "".join(ch + ch for ch in text)


# The folded name with every character doubled, indexed by trigrams (parcels_land_user_pairs_idx,
# migration 0014): a trigram of the doubled text ("ddo") is a pair of letters of the name ("do").
# A two-letter word typed inside a longer one ("do", "an" of "do duc an": Đỗ, Đoàn; Anh, Toàn)
# gives the trigram index nothing to look up, so the names holding it were rechecked row by
# row among all names holding the other words: 43,000 heap rows for the 721 names of "do duc
# an" at 800,000 parcels (150-500 ms). name LIKE '%do%' holds exactly when the doubled name
# holds "ddoo", which the pair index finds. (The expression must stay the index's, character
# for character.)
DOUBLED_NAME = sql.SQL("regexp_replace(t.land_user_folded, '(.)', '\\1\\1', 'g')")


KEY_ORDER = sql.SQL("t.commune_code, t.sheet_no, t.parcel_no, t.old_commune_code NULLS FIRST, t.id")
# The same order for a sort: commune codes are five digits, which every collation orders alike,
# and a byte comparison is several times faster than the database's collation.
S_ORDER = sql.SQL('s.commune_code COLLATE "C", s.sheet_no, s.parcel_no,'
                  ' s.old_commune_code COLLATE "C" NULLS FIRST, s.id')
# A walk reads the first WALK_FIRST parcels in key order: enough for a dense tier ("nguyen" is
# a third of all names). A tier it could not fill but found at least WALK_MIN_SEEN times is
# walked further, as far as its density there says it takes (up to WALK_MAX); a rarer one is
# left to the indexes, which collect and sort such a tier in milliseconds (under 4 in 2,000
# names: about 1,600 of 800,000). A walk is an index-only scan of the key index (it carries the
# folded name) with a LIKE per row, and no sort: the order is the index's.
WALK_FIRST, WALK_MIN_SEEN, WALK_MAX = 2_000, 4, 30_000
# Names are not spread evenly in key order (a family lives in a few communes), so the further
# walk can still fall short ("luu" at 800,000 parcels: 7,700 names, 27 in the first 2,000, not
# 51 in 5,667). Collecting such a tier reads each of its rows from the table (about 6 us a row:
# 43 ms for "luu") where a walk reads the index only (about 1.3 us a row), so the walk is
# extended once more, twice as far as the density it found says, when that is at most
# WALK_AGAIN_MAX rows: a tier that dense (1 in 200) costs more to collect than to walk.
WALK_AGAIN_MAX = 20_000


@dataclass(frozen=True)
class Tiers:
    """The tiers of an owner search, best first: FIND, per tier, the index condition (alias t)
    that selects a superset of it, and CLASSIFY, one expression (alias s) that gives a row's
    tier (its index; NULL for none, and for the exact name, which its B-tree finds), with the
    cheapest tests first. Together the tiers are exactly the names in which every typed word
    occurs (LIKE, as before the tiers)."""
    find: list[sql.Composable]
    classify: sql.Composable


EXACT = sql.SQL("t.land_user_folded = %(owner)s")
HAS_WORDS = sql.SQL("geoioc_words(t.land_user_folded) @> %(owner_words)s::text[]")
# A regular expression with word boundaries costs about a microsecond a row, one with the
# words in order (\mnguyen\M.*\mvan\M.*\man\M) up to fifteen: LIKEs go first and sift the rows.
ALL_WHOLE = sql.SQL("s.land_user_folded ~ ALL(%(owner_word_res)s::text[])")
IN_ORDER = sql.SQL("(s.land_user_folded LIKE %(owner_in_order_like)s"
                   " AND s.land_user_folded ~ %(owner_in_order)s)")
IS_EXACT = sql.SQL("s.land_user_folded = %(owner)s")


def _tiers(c: Criteria) -> Tiers:
    """Exact name; typed words whole and in order; whole in another order (several words);
    only inside longer words."""
    assert c.owner
    n_typed = len(c.owner.split())
    typed = c.owner.split()
    like_all, like_all_s = (sql.SQL(" AND ").join(
        sql.SQL("{}.land_user_folded LIKE {}").format(sql.Identifier(alias), sql.Placeholder(f"owner{i}"))
        for i in range(n_typed)) for alias in ("t", "s"))
    # The last tier's index lookup: the trigrams of the typed words, and for the two-letter ones
    # (no trigram of their own) their pairs in the doubled name. Both imply nothing beyond the
    # LIKEs: the rows found are the same.
    pairs = [sql.SQL("{} LIKE {}").format(DOUBLED_NAME, sql.Placeholder(f"owner_pair{i}"))
             for i, word in enumerate(typed) if len(word) == 2]
    inside = sql.SQL(" AND ").join([like_all, *pairs])
    # The LIKEs gate every tier: whole words alone do not imply "nguyen-van" typed (its words
    # need not be adjacent).
    if len(owner_words(c.owner)) == 1:  # a whole word is in order
        return Tiers([EXACT, HAS_WORDS, inside], sql.SQL(
            "CASE WHEN NOT ({like}) THEN NULL WHEN {whole} THEN"
            " CASE WHEN {exact} THEN NULL ELSE 1 END ELSE 2 END").format(
            like=like_all_s, whole=ALL_WHOLE, exact=IS_EXACT))
    return Tiers([EXACT, HAS_WORDS, HAS_WORDS, inside], sql.SQL(
        "CASE WHEN NOT ({like}) THEN NULL WHEN {whole} THEN"
        " CASE WHEN {exact} THEN NULL WHEN {in_order} THEN 1 ELSE 2 END ELSE 3 END").format(
        like=like_all_s, whole=ALL_WHOLE, exact=IS_EXACT, in_order=IN_ORDER))


def _collect(conn: psycopg.Connection, conds: list[sql.Composable], params: dict[str, Any],
             tiers: Tiers, i: int, n: int) -> dict[int, list[int]]:
    """The first N ids in key order of tier I and of every tier that the indexes select the
    same way (the two whole-word tiers share the GIN lookup), found by the indexes and sorted;
    by tier index. OFFSET 0 keeps the planner from walking the key index instead: it would,
    if it guessed the tier big."""
    find = tiers.find[i]
    same = [j for j, f in enumerate(tiers.find) if j == i or (j > 0 and f == find)]
    if i == 0:  # the exact name: its B-tree, no classification
        rows = conn.execute(sql.SQL(
            "SELECT 0, s.id FROM (SELECT t.id, t.commune_code, t.sheet_no, t.parcel_no,"
            " t.old_commune_code FROM parcels AS t WHERE {cond} OFFSET 0) AS s"
            " ORDER BY {order} LIMIT %(tier_n)s").format(
            cond=sql.SQL(" AND ").join([*conds, find]), order=S_ORDER),
            {**params, "tier_n": n}).fetchall()
    else:
        rows = conn.execute(sql.SQL(
            "SELECT x.tier, x.id FROM (SELECT s.id, s.tier, row_number() OVER (PARTITION BY s.tier"
            "  ORDER BY {order}) AS rn FROM (SELECT s.*, {classify} AS tier FROM (SELECT t.id,"
            "  t.commune_code, t.sheet_no, t.parcel_no, t.old_commune_code, t.land_user_folded"
            "  FROM parcels AS t WHERE {cond} OFFSET 0) AS s) AS s"
            "  WHERE s.tier = ANY(%(tiers)s)) AS x WHERE x.rn <= %(tier_n)s ORDER BY x.tier, x.rn"
        ).format(order=S_ORDER, classify=tiers.classify,
                 cond=sql.SQL(" AND ").join([*conds, find])),
            {**params, "tier_n": n, "tiers": same}).fetchall()
    out: dict[int, list[int]] = {j: [] for j in same}
    for j, pid in rows:
        out[j].append(pid)
    return out


@dataclass
class Walk:
    """What one walk over the first BUDGET parcels in key order found: the first ids of each
    tier (by index), and whether those parcels were all the candidates (then it is exact)."""
    budget: int
    by_tier: dict[int, list[int]]
    complete: bool

    def enough(self, tier: int, n: int) -> bool:
        return self.complete or len(self.by_tier.get(tier, [])) >= n


def _walk(conn: psycopg.Connection, conds: list[sql.Composable], params: dict[str, Any],
          tiers: Tiers, n: int, budget: int) -> Walk:
    """One pass over the first BUDGET parcels in key order (the other criteria applied), each
    sorted into its tier; the first N of each tier come back (the first N of a tier in that
    prefix are its first N overall). The running counts follow the rows as the index gives
    them (a window without ORDER BY: no sort, and no key comparison per row). The row at
    position BUDGET comes back too: then the prefix was cut, not complete."""
    ranks = sql.SQL(" ").join(
        sql.SQL("WHEN {i} THEN count(*) FILTER (WHERE s.tier = {i}) OVER w").format(i=sql.Literal(i))
        for i in range(1, len(tiers.find)))
    rows = conn.execute(sql.SQL(
        "SELECT x.tier, x.id, x.rank, x.pos FROM (SELECT s.id, s.tier,"
        "  row_number() OVER w AS pos, CASE s.tier {ranks} END AS rank"
        "  FROM (SELECT s.id, {classify} AS tier FROM (SELECT t.id, t.land_user_folded"
        "   FROM parcels AS t WHERE {cond} ORDER BY {key} LIMIT %(budget)s) AS s) AS s"
        "  WINDOW w AS (ROWS UNBOUNDED PRECEDING)) AS x"
        " WHERE x.rank <= %(tier_n)s OR x.pos = %(budget)s"
    ).format(ranks=ranks, classify=tiers.classify, key=KEY_ORDER,
             cond=sql.SQL(" AND ").join(conds) if conds else sql.SQL("TRUE")),
        {**params, "tier_n": n, "budget": budget}).fetchall()
    by_tier: dict[int, list[int]] = {}
    for tier, pid, rank, _ in rows:
        if tier is not None and rank <= n:
            by_tier.setdefault(tier, []).append(pid)
    return Walk(budget, by_tier, complete=not any(pos == budget for *_, pos in rows))


def _page_ids(conn: psycopg.Connection, conds: list[sql.Composable], params: dict[str, Any],
              tiers: Tiers, limit: int, offset: int) -> list[int]:
    """Ids of rows OFFSET .. OFFSET+LIMIT in (tier, key) order, tier after tier until the page
    is full. The exact name comes from its B-tree; another tier from a walk when a walk holds
    enough of it (WALK_FIRST, then further for a tier dense enough), else it is collected from
    the indexes; a collected tier also tells how many rows it has, for the offset."""
    ids: list[int] = []
    total = offset + limit
    walk: Walk | None = None
    collected: dict[int, list[int]] = {}
    for i in range(len(tiers.find)):
        n = offset + limit - len(ids)
        found: list[int] | None = collected.get(i)
        if i > 0 and found is None:
            if walk is None:
                walk = _walk(conn, conds, params, tiers, total, WALK_FIRST)
            seen = len(walk.by_tier.get(i, []))
            if not walk.enough(i, n) and seen >= WALK_MIN_SEEN:
                budget = min(WALK_MAX, math.ceil(1.5 * walk.budget * n / seen))
                if budget > walk.budget:
                    walk = _walk(conn, conds, params, tiers, total, budget)
                    seen = len(walk.by_tier.get(i, []))
                    again = math.ceil(2 * walk.budget * n / max(seen, 1))
                    if not walk.enough(i, n) and walk.budget < again <= WALK_AGAIN_MAX:
                        walk = _walk(conn, conds, params, tiers, total, again)
            if walk.enough(i, n):
                found = walk.by_tier.get(i, [])[:n]
        if found is None:
            collected.update(_collect(conn, conds, params, tiers, i, total))
            found = collected[i][:n]
        ids.extend(found[offset:])
        offset = max(0, offset - len(found))
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
    offset = min(max(offset, 0), MAX_OFFSET)
    if c.owner:
        ids = _page_ids(conn, conds, params, _tiers(c), limit + 1, offset)
    else:  # the planner knows well how many parcels a commune, a code or a place holds
        ids = [r[0] for r in conn.execute(sql.SQL(
            "SELECT t.id FROM parcels AS t WHERE {cond} ORDER BY {order}"
            " LIMIT %(limit)s OFFSET %(offset)s").format(
            cond=sql.SQL(" AND ").join(conds), order=KEY_ORDER),
            {**params, "limit": limit + 1, "offset": offset}).fetchall()]
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
