"""The two checks a land officer runs on a parcel, for one parcel or for all of them.

* Area: the legal area (certificate) against the area computed in the province's VN-2000 TM-3
  zone, ST_Area(ST_Transform(geom, province_srid)). Flagged when the difference exceeds the
  larger of 5 % of the legal area and 10 m² (small parcels get 10 m², large ones 5 %).
* Zoning: a parcel whose land use conflicts with a planning zone covering it, per the rule
  table parcel_zoning_rules (data, migration 0006): zones of the rule's zone code must cover
  more than the rule's share of the parcel and more than its minimum area (slivers along a
  zone edge are not conflicts).

One SQL text per check serves both the parcel page (one parcel, possibly an "as of" geometry)
and the whole-province run (tests, CLI), so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

AREA_TOLERANCE_SHARE = 0.05
AREA_TOLERANCE_M2 = 10.0


def area_check(legal: float | Decimal, computed: float) -> dict[str, Any]:
    legal = float(legal)
    diff = computed - legal
    tolerance = max(AREA_TOLERANCE_SHARE * legal, AREA_TOLERANCE_M2)
    return {
        "legal_m2": legal,
        "computed_m2": round(computed, 2),
        "difference_m2": round(diff, 2),
        "difference_pct": round(100 * diff / legal, 2) if legal else None,
        "tolerance_m2": round(tolerance, 2),
        "flagged": abs(diff) > tolerance,
        "rule": f"|computed - legal| > max({AREA_TOLERANCE_SHARE:.0%} of legal, "
                f"{AREA_TOLERANCE_M2:g} m²)",
    }


# {source}: rows (id, codes, g) with g in EPSG:4326.
_CONFLICTS = """
WITH p AS MATERIALIZED (
    SELECT s.id, s.codes, s.g,
           ARRAY(SELECT DISTINCT r.zone_code FROM parcel_zoning_rules AS r
                  WHERE r.parcel_code = ANY (s.codes)) AS zone_codes
      FROM ({source}) AS s
     WHERE s.codes && (SELECT array_agg(DISTINCT parcel_code) FROM parcel_zoning_rules)
), hit AS (
    -- Only zones of a code that conflicts with one of the parcel's codes are intersected (the
    -- cheap equality filter runs before ST_Intersects); areas of the small intersections are
    -- taken in the province CRS, not of whole transformed zones.
    SELECT p.id, z.land_use_code AS zone_code,
           sum(ST_Area(ST_Transform(ST_Intersection(z.geom, p.g), %(srid)s))) AS area,
           array_agg(z.id ORDER BY z.id) AS zone_ids
      FROM p JOIN land_use_zones AS z
        ON z.geom && p.g AND z.land_use_code = ANY (p.zone_codes) AND ST_Intersects(z.geom, p.g)
     GROUP BY p.id, z.land_use_code
), a AS (
    SELECT hit.*, ST_Area(ST_Transform(p.g, %(srid)s)) AS parcel_area, p.codes
      FROM hit JOIN p ON p.id = hit.id
)
SELECT a.id, r.parcel_code, a.zone_code, a.area, a.area / a.parcel_area AS share,
       a.zone_ids, r.min_share, r.min_area_m2, r.reason_vi, r.reason_en
  FROM a JOIN parcel_zoning_rules AS r ON r.zone_code = a.zone_code AND r.parcel_code = ANY (a.codes)
 WHERE a.area > r.min_area_m2 AND a.area / a.parcel_area > r.min_share
 ORDER BY a.id, share DESC, r.parcel_code
"""


@dataclass(frozen=True)
class Conflict:
    parcel_id: int
    parcel_code: str
    zone_code: str
    area_m2: float
    share: float
    zone_ids: list[int]
    min_share: float
    reason_vi: str
    reason_en: str

    def as_json(self) -> dict[str, Any]:
        return {"parcel_code": self.parcel_code, "zone_code": self.zone_code,
                "area_m2": round(self.area_m2, 2), "share": round(self.share, 4),
                "zone_ids": self.zone_ids, "min_share": self.min_share,
                "reason": {"vi": self.reason_vi, "en": self.reason_en}}


def _conflicts(conn: psycopg.Connection, source: sql.Composable, params: dict[str, Any]) -> list[Conflict]:
    stmt = sql.SQL(_CONFLICTS).format(source=source)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(stmt, params).fetchall()
    return [Conflict(r["id"], r["parcel_code"], r["zone_code"], float(r["area"]), float(r["share"]),
                     list(r["zone_ids"]), float(r["min_share"]), r["reason_vi"], r["reason_en"])
            for r in rows]


def zoning_conflicts(conn: psycopg.Connection, parcel_id: int, codes: list[str], wkb: bytes,
                     srid: int) -> list[Conflict]:
    """Conflicts of one parcel state (its codes and geometry, current or "as of")."""
    source = sql.SQL("SELECT %(id)s::bigint AS id, %(codes)s::text[] AS codes,"
                     " ST_GeomFromWKB(%(wkb)s, 4326) AS g")
    return _conflicts(conn, source, {"id": parcel_id, "codes": codes, "wkb": wkb, "srid": srid})


def all_zoning_conflicts(conn: psycopg.Connection, srid: int,
                         commune: str | None = None) -> list[Conflict]:
    """Conflicts of every current parcel (of one commune, current or pre-2025 code)."""
    where = sql.SQL("WHERE commune_code = %(c)s OR old_commune_code = %(c)s") if commune else sql.SQL("")
    source = sql.SQL("SELECT id, land_use_codes AS codes, geom AS g FROM parcels {}").format(where)
    return _conflicts(conn, source, {"srid": srid, "c": commune})


def all_area_discrepancies(conn: psycopg.Connection, srid: int,
                           commune: str | None = None) -> list[dict[str, Any]]:
    """Every current parcel whose legal area is off the computed one beyond the tolerance."""
    where = sql.SQL("AND (commune_code = %(c)s OR old_commune_code = %(c)s)") if commune else sql.SQL("")
    stmt = sql.SQL(
        "SELECT id, commune_code, old_commune_code, sheet_no, parcel_no, legal_area, computed"
        " FROM (SELECT *, ST_Area(ST_Transform(geom, %(srid)s)) AS computed FROM parcels"
        "       WHERE TRUE {where}) AS t"
        " WHERE abs(computed - legal_area) > greatest(%(share)s * legal_area, %(m2)s)"
        " ORDER BY commune_code, old_commune_code NULLS FIRST, sheet_no, parcel_no"
    ).format(where=where)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(stmt, {"srid": srid, "c": commune, "share": AREA_TOLERANCE_SHARE,
                                  "m2": AREA_TOLERANCE_M2}).fetchall()
    return [{**{k: r[k] for k in ("id", "commune_code", "old_commune_code", "sheet_no", "parcel_no")},
             "area": area_check(r["legal_area"], r["computed"])} for r in rows]
