"""Small named queries the parcel routes and pages need besides search, detail and edit: kept
here, beside the domain, so that no route handler holds SQL."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

KEY_COLUMNS = ("commune_code", "old_commune_code", "sheet_no", "parcel_no")


def parcel_keys(conn: psycopg.Connection, ids: Sequence[int]) -> dict[int, dict[str, object]]:
    """The number (commune, old commune, sheet, parcel) of each parcel in IDS, by id: how a land
    officer finds a parcel of the anomaly list on paper."""
    if not ids:
        return {}
    rows = conn.execute(
        "SELECT id, commune_code, old_commune_code, sheet_no, parcel_no FROM parcels WHERE id = ANY(%s)",
        (list(ids),)).fetchall()
    return {r[0]: dict(zip(KEY_COLUMNS, r[1:], strict=True)) for r in rows}


def current_land_use_codes(conn: psycopg.Connection, lang: str) -> list[tuple[str, str]]:
    """(code, name in LANG) of the land-use codes in force, for the search page's pick list
    (retired codes stay in the table for history but are not offered)."""
    rows = conn.execute(
        "SELECT code, CASE WHEN %s = 'en' THEN name_en ELSE name_vi END FROM land_use_codes"
        " WHERE valid_to IS NULL ORDER BY code", (lang,)).fetchall()
    return [(r[0], r[1]) for r in rows]


def area_km2(conn: psycopg.Connection, wkb: bytes, srid: int) -> float:
    """Area in km² of an EPSG:4326 polygon (WKB), measured in the province's VN-2000 SRID: the
    search area limit is a real area, not square degrees."""
    row = conn.execute("SELECT ST_Area(ST_Transform(ST_GeomFromWKB(%s, 4326), %s)) / 1e6",
                       (wkb, srid)).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0
