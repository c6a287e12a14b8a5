"""The parcel file: one parcel (now or "as of" a past instant) with everything a land officer
checks before signing anything.

"As of" T: the current row if its updated_at <= T, else the parcel_history row valid at T
([valid_from, valid_to) system time, written by the triggers of migration 0006); neither means
the parcel did not exist then (404). Neighbours are taken from the same instant; planning
zones, cameras and the rule table have no history and are current; incidents are those of the
12 months before T.

Sections built from other layers (incidents, cameras) are present only when the caller may
read that layer, hold only its readable fields and respect its row rules.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import psycopg
import shapely
from psycopg import sql
from psycopg.rows import dict_row

from gis import audit
from gis.parcels import checks
from gis.parcels.common import KEY_FIELDS, key_text, parcels_layer, readable
from gis.rows import one
from layers.access import Principal, can_read, can_read_field, row_filter
from layers.catalogue import get_layer
from layers.errors import Message, NotFound
from layers.model import Access, Field

# Two parcels are neighbours when they share more than this much boundary (a corner touch is
# not a shared boundary); boundaries within SNAP of each other count as shared (stored
# coordinates of a common edge differ in the last digits).
NEIGHBOUR_MIN_SHARED_M = 0.5
NEIGHBOUR_SNAP_M = 0.05
NEIGHBOUR_SEARCH_DEG = 1e-6  # ~0.1 m: candidates for the exact test
INCIDENT_RADIUS_M = 50.0
INCIDENT_MONTHS = 12
INCIDENT_SEARCH_DEG = 0.001  # > 50 m in latitude and longitude at 21°N
ZONE_MIN_AREA_M2 = 0.01
# Which staff member changed a parcel: internal information (any staff role), decided by the
# same rule engine as layer fields.
CHANGED_BY = Field("changed_by", "str", "Người thay đổi", "Changed by", "NGUOISUA",
                   access=Access.INTERNAL)
# Always needed for the computations; output is still limited to readable fields.
BASE_FIELDS = (*KEY_FIELDS, "land_use_codes", "legal_area", "version", "updated_at")


@dataclass
class State:
    """One parcel at one instant: its columns (readable ones + BASE_FIELDS), geometry, area."""

    id: int
    row: dict[str, Any]
    wkb: bytes
    area: float
    valid_to: dt.datetime | None  # None: the current row

    @property
    def key(self) -> str:
        r = self.row
        return key_text(r["commune_code"], r["old_commune_code"], r["sheet_no"], r["parcel_no"])


def _field_names(who: Principal) -> tuple[str, ...]:
    names = readable(who)
    return tuple(dict.fromkeys((*BASE_FIELDS, *names)))


def as_of_source(as_of: dt.datetime | None) -> tuple[sql.Composable, dict[str, Any]]:
    """A FROM item named `n` of parcels as they were at AS_OF (current parcels when None),
    with columns id, sheet_no, parcel_no, commune_code, old_commune_code, land_use_codes, geom."""
    if as_of is None:
        return sql.SQL("parcels AS n"), {}
    cols = sql.SQL(", ").join(map(sql.Identifier, ("commune_code", "old_commune_code", "sheet_no",
                                                  "parcel_no", "land_use_codes", "geom")))
    return sql.SQL(
        "(SELECT id, {cols} FROM parcels WHERE updated_at <= %(t)s"
        " UNION ALL SELECT parcel_id AS id, {cols} FROM parcel_history"
        " WHERE valid_from <= %(t)s AND %(t)s < valid_to) AS n").format(cols=cols), {"t": as_of}


def load(conn: psycopg.Connection, parcel_id: int, who: Principal, srid: int,
         as_of: dt.datetime | None = None) -> State:
    names = _field_names(who)
    if as_of is None:
        stmt = sql.SQL(
            "SELECT t.id, {cols}, ST_AsBinary(t.geom) AS wkb,"
            " ST_Area(ST_Transform(t.geom, %(srid)s)) AS area, NULL::timestamptz AS valid_to"
            " FROM parcels AS t WHERE t.id = %(id)s"
        ).format(cols=sql.SQL(", ").join(sql.Identifier("t", n) for n in names))
    else:
        hist = [sql.SQL("h.valid_from AS updated_at") if n == "updated_at" else sql.Identifier("h", n)
                for n in names]
        stmt = sql.SQL(
            "SELECT t.id, {cols}, ST_AsBinary(t.geom) AS wkb,"
            " ST_Area(ST_Transform(t.geom, %(srid)s)) AS area, NULL::timestamptz AS valid_to"
            " FROM parcels AS t WHERE t.id = %(id)s AND t.updated_at <= %(t)s"
            " UNION ALL"
            " SELECT h.parcel_id, {hcols}, ST_AsBinary(h.geom), ST_Area(ST_Transform(h.geom, %(srid)s)),"
            " h.valid_to FROM parcel_history AS h"
            " WHERE h.parcel_id = %(id)s AND h.valid_from <= %(t)s AND %(t)s < h.valid_to"
            " LIMIT 1"
        ).format(cols=sql.SQL(", ").join(sql.Identifier("t", n) for n in names),
                 hcols=sql.SQL(", ").join(hist))
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(stmt, {"id": parcel_id, "srid": srid, "t": as_of}).fetchone()
    if row is None:
        raise _not_found(conn, parcel_id, as_of)
    return State(parcel_id, {n: row[n] for n in names}, bytes(row["wkb"]), float(row["area"]),
                 row["valid_to"])


def _not_found(conn: psycopg.Connection, parcel_id: int, as_of: dt.datetime | None) -> NotFound:
    first, deleted = one(conn.execute(
        "SELECT min(valid_from), max(valid_to) FILTER (WHERE operation = 'DELETE')"
        " FROM parcel_history WHERE parcel_id = %s", (parcel_id,)))
    if as_of is None:
        if deleted is not None:
            return NotFound(f"parcel {parcel_id} not found: it was deleted at {deleted.isoformat()} "
                            "(ask for it with as_of before that)", deleted_at=deleted.isoformat(),
                            message=Message("parcel_deleted", {"id": str(parcel_id), "at": deleted}))
        return NotFound(f"parcel {parcel_id} not found",
                        message=Message("parcel_not_found", {"id": str(parcel_id)}))
    since = conn.execute("SELECT updated_at FROM parcels WHERE id = %s", (parcel_id,)).fetchone()
    start = first or (since[0] if since else None)
    if start is None:
        return NotFound(f"parcel {parcel_id} not found",
                        message=Message("parcel_not_found", {"id": str(parcel_id)}))
    return NotFound(f"parcel {parcel_id} did not exist at {as_of.isoformat()} "
                    f"(recorded from {start.isoformat()})", recorded_from=start.isoformat(),
                    message=Message("parcel_not_yet", {"id": str(parcel_id), "at": as_of, "since": start}))


def land_use(conn: psycopg.Connection, codes: list[str]) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT c.code, c.name_vi, c.name_en, c.grp, c.valid_to FROM unnest(%s::text[])"
        " WITH ORDINALITY AS u(code, i) JOIN land_use_codes AS c ON c.code = u.code ORDER BY u.i",
        (codes,)).fetchall()
    return [{"code": r[0], "name_vi": r[1], "name_en": r[2], "group": r[3],
             "retired_on": r[4].isoformat() if r[4] else None} for r in rows]


def commune(conn: psycopg.Connection, code: str, old_code: str | None) -> dict[str, Any]:
    row = one(conn.execute(
        "SELECT (SELECT name FROM admin_units WHERE level = 'commune' AND code = %(c)s"
        "         ORDER BY valid_to IS NOT NULL, valid_from DESC LIMIT 1),"
        "       (SELECT name FROM admin_units WHERE level = 'commune' AND code = %(o)s"
        "         AND valid_to IS NOT NULL ORDER BY valid_to DESC LIMIT 1)",
        {"c": code, "o": old_code}))
    return {"code": code, "name": row[0], "old_code": old_code, "old_name": row[1]}


def neighbours(conn: psycopg.Connection, state: State, srid: int,
               as_of: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Parcels sharing a boundary (longer than NEIGHBOUR_MIN_SHARED_M) at the same instant."""
    source, params = as_of_source(as_of)
    stmt = sql.SQL(
        "WITH p AS (SELECT ST_GeomFromWKB(%(wkb)s, 4326) AS g),"
        " pm AS (SELECT g, ST_Buffer(ST_Boundary(ST_Transform(g, %(srid)s)), %(snap)s) AS band FROM p)"
        " SELECT * FROM (SELECT n.id, n.commune_code, n.old_commune_code, n.sheet_no, n.parcel_no,"
        "  n.land_use_codes,"
        "  ST_Length(ST_Intersection(ST_Boundary(ST_Transform(n.geom, %(srid)s)), pm.band)) AS shared"
        "  FROM {source}, pm WHERE n.id <> %(id)s AND n.geom && ST_Expand(pm.g, %(deg)s)"
        "  AND ST_DWithin(n.geom, pm.g, %(deg)s)) AS q"
        " WHERE shared > %(min)s ORDER BY sheet_no, parcel_no, id"
    ).format(source=source)
    params.update(wkb=state.wkb, srid=srid, snap=NEIGHBOUR_SNAP_M, id=state.id,
                  deg=NEIGHBOUR_SEARCH_DEG, min=NEIGHBOUR_MIN_SHARED_M)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(stmt, params).fetchall()
    # The snapping band makes a shared edge about SNAP too long at each end.
    return [{"id": r["id"], "commune_code": r["commune_code"],
             "old_commune_code": r["old_commune_code"], "sheet_no": r["sheet_no"],
             "parcel_no": r["parcel_no"], "land_use_codes": r["land_use_codes"],
             "key": key_text(r["commune_code"], r["old_commune_code"], r["sheet_no"], r["parcel_no"]),
             "shared_boundary_m": round(max(float(r["shared"]) - 2 * NEIGHBOUR_SNAP_M, 0.0), 2)}
            for r in rows]


def zones(conn: psycopg.Connection, state: State, srid: int) -> list[dict[str, Any]]:
    """Planning zones covering part of the parcel, with the area and share they cover."""
    stmt = (
        "WITH p AS (SELECT ST_GeomFromWKB(%(wkb)s, 4326) AS g)"
        " SELECT * FROM (SELECT z.id, z.land_use_code, c.name_vi, c.name_en, z.plan_name,"
        "  z.approved_on, z.commune_code,"
        "  ST_Area(ST_Transform(ST_Intersection(z.geom, p.g), %(srid)s)) AS area"
        "  FROM p JOIN land_use_zones AS z ON z.geom && p.g AND ST_Intersects(z.geom, p.g)"
        "  JOIN land_use_codes AS c ON c.code = z.land_use_code) AS q"
        " WHERE area > %(min)s ORDER BY area DESC, id"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(stmt, {"wkb": state.wkb, "srid": srid, "min": ZONE_MIN_AREA_M2}).fetchall()
    return [{"id": r["id"], "land_use_code": r["land_use_code"], "name_vi": r["name_vi"],
             "name_en": r["name_en"], "plan_name": r["plan_name"],
             "approved_on": r["approved_on"].isoformat(), "commune_code": r["commune_code"],
             "area_m2": round(float(r["area"]), 2),
             "share": round(float(r["area"]) / state.area, 4) if state.area else None}
            for r in rows]


def incidents(conn: psycopg.Connection, state: State, who: Principal, srid: int,
              as_of: dt.datetime | None) -> dict[str, Any] | None:
    """Incidents inside the parcel or within INCIDENT_RADIUS_M of it in the INCIDENT_MONTHS
    before AS_OF (now); None when the caller may not read incidents."""
    layer = get_layer("incidents")
    if not can_read(layer, who):
        return None
    fields = readable(who, "incidents")
    restrict = row_filter(layer, who, "i")
    stmt = sql.SQL(
        "WITH p AS (SELECT ST_GeomFromWKB(%(wkb)s, 4326) AS g),"
        " pm AS (SELECT g, ST_Transform(g, %(srid)s) AS m FROM p)"
        " SELECT * FROM (SELECT i.id, {cols}, ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat,"
        "  ST_Distance(ST_Transform(i.geom, %(srid)s), pm.m) AS distance"
        "  FROM incidents AS i, pm WHERE i.geom && ST_Expand(pm.g, %(deg)s)"
        "  AND i.reported_at > %(t)s - make_interval(months => %(months)s) AND i.reported_at <= %(t)s"
        "  {restrict}) AS q"
        " WHERE distance <= %(radius)s ORDER BY reported_at DESC, id"
    ).format(cols=sql.SQL(", ").join(sql.Identifier("i", f) for f in fields),
             restrict=sql.SQL("AND ") + restrict if restrict is not None else sql.SQL(""))
    t = as_of or dt.datetime.now(dt.UTC)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(stmt, {"wkb": state.wkb, "srid": srid, "deg": INCIDENT_SEARCH_DEG,
                                  "t": t, "months": INCIDENT_MONTHS,
                                  "radius": INCIDENT_RADIUS_M}).fetchall()
    items = []
    for r in rows:
        item = {"id": r["id"], **{f: _jsonable(r[f]) for f in fields},
                "distance_m": round(float(r["distance"]), 1), "inside": float(r["distance"]) == 0.0,
                "lon": r["lon"], "lat": r["lat"]}
        items.append(item)
    try:
        since = t.replace(year=t.year - INCIDENT_MONTHS // 12)
    except ValueError:  # 29 February
        since = t.replace(year=t.year - INCIDENT_MONTHS // 12, day=28)
    return {"radius_m": INCIDENT_RADIUS_M, "months": INCIDENT_MONTHS,
            "from": since.isoformat(), "to": t.isoformat(),
            "count": len(items), "items": items}


def cameras(conn: psycopg.Connection, state: State, who: Principal, srid: int) -> dict[str, Any] | None:
    """Cameras whose field of view covers part of the parcel (with the share covered); None
    when the caller may not read cameras."""
    layer = get_layer("cameras")
    if not can_read(layer, who):
        return None
    fields = readable(who, "cameras")
    restrict = row_filter(layer, who, "c")
    stmt = sql.SQL(
        "WITH p AS (SELECT ST_GeomFromWKB(%(wkb)s, 4326) AS g)"
        " SELECT * FROM (SELECT c.id, {cols}, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat,"
        "  ST_Area(ST_Transform(ST_Intersection(c.fov, p.g), %(srid)s)) AS area"
        "  FROM cameras AS c, p WHERE c.fov && p.g AND ST_Intersects(c.fov, p.g) {restrict}) AS q"
        " WHERE area > 0 ORDER BY area DESC, id"
    ).format(cols=sql.SQL(", ").join(sql.Identifier("c", f) for f in fields),
             restrict=sql.SQL("AND ") + restrict if restrict is not None else sql.SQL(""))
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(stmt, {"wkb": state.wkb, "srid": srid}).fetchall()
    items = []
    for r in rows:
        share = float(r["area"]) / state.area if state.area else 0.0
        items.append({"id": r["id"], **{f: _jsonable(r[f]) for f in fields},
                      "covered_m2": round(float(r["area"]), 1), "share": round(min(share, 1.0), 4),
                      "covers_whole": share >= 0.999, "lon": r["lon"], "lat": r["lat"]})
    return {"count": len(items), "items": items}


HISTORY_COMPARED = ("commune_code", "old_commune_code", "sheet_no", "parcel_no", "land_use_codes",
                    "legal_area", "land_user", "land_user_id", "certificate_no", "use_until", "origin")
# What dates and names each version in legal time (migration 0013): shown per version, not as a
# change (every new legal version has its own).
HISTORY_LEGAL = ("legal_valid_from", "decision_no")
# Coordinates of the before/after outlines: 8 decimals of a degree, about a millimetre.
HISTORY_GEOJSON_DECIMALS = 8


def history(conn: psycopg.Connection, parcel_id: int, who: Principal, srid: int) -> list[dict[str, Any]]:
    """Every version, oldest first, with the legal date and decision that made it, what changed
    from the one before (readable fields only; a new outline as both outlines, for a
    before/after map), when it was recorded, by whom (staff only) and why.

    Version order is legal order: the database refuses a version dated before the one it
    replaces (migration 0013), so a history imported or replayed from older records
    (gis.io.imports.versions, the sample) reads in the order the versions took effect, while
    `valid_from`/`valid_to` keep the system time the database held each one."""
    visible = readable(who)
    names = tuple(f for f in HISTORY_COMPARED if f in visible)
    legal = tuple(f for f in HISTORY_LEGAL if f in visible)
    cols = sql.SQL(", ").join(sql.Identifier(n) for n in (*names, *legal))
    stmt = sql.SQL(
        "SELECT version, valid_from, valid_to, operation, changed_by, change_note, {cols},"
        " md5(ST_AsBinary(geom)) AS shape, ST_Area(ST_Transform(geom, %(srid)s)) AS area,"
        " ST_AsGeoJSON(geom, %(dec)s) AS outline"
        " FROM parcel_history WHERE parcel_id = %(id)s"
        " UNION ALL SELECT version, updated_at, NULL, NULL, NULL, NULL, {cols},"
        " md5(ST_AsBinary(geom)), ST_Area(ST_Transform(geom, %(srid)s)), ST_AsGeoJSON(geom, %(dec)s)"
        " FROM parcels WHERE id = %(id)s"
        " ORDER BY version"
    ).format(cols=cols)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(stmt, {"id": parcel_id, "srid": srid,
                                  "dec": HISTORY_GEOJSON_DECIMALS}).fetchall()
    show_who = can_read_field(CHANGED_BY, who)
    out: list[dict[str, Any]] = []
    for i, r in enumerate(rows):
        entry: dict[str, Any] = {
            "version": r["version"],
            **{n: _jsonable(r[n]) for n in legal},
            "valid_from": r["valid_from"].isoformat(),
            "valid_to": r["valid_to"].isoformat() if r["valid_to"] else None,
            "current": r["valid_to"] is None and r["operation"] is None,
            "area_m2": round(float(r["area"]), 2),
        }
        if i > 0:
            prev = rows[i - 1]
            changes = {n: {"from": _jsonable(prev[n]), "to": _jsonable(r[n])}
                       for n in names if prev[n] != r[n]}
            if prev["shape"] != r["shape"]:
                changes["geometry"] = {"from_area_m2": round(float(prev["area"]), 2),
                                       "to_area_m2": round(float(r["area"]), 2),
                                       "from": json.loads(prev["outline"]),
                                       "to": json.loads(r["outline"])}
            entry["changes"] = changes
            # Who made version i and why are recorded on the row it superseded.
            if show_who:
                entry["changed_by"] = prev["changed_by"]
            entry["change_note"] = prev["change_note"]
        if r["operation"] == "DELETE":
            entry["deleted_at"] = r["valid_to"].isoformat()
            if show_who:
                entry["deleted_by"] = r["changed_by"]
        out.append(entry)
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    if hasattr(v, "is_finite"):  # Decimal
        return float(v)
    return v


def geojson(wkb: bytes) -> dict[str, Any]:
    return shapely.geometry.mapping(shapely.from_wkb(wkb))


def detail(conn: psycopg.Connection, parcel_id: int, who: Principal, srid: int,
           as_of: dt.datetime | None = None) -> dict[str, Any]:
    """The whole parcel file as JSON-ready data; raises NotFound."""
    state = load(conn, parcel_id, who, srid, as_of)
    visible = readable(who)
    r = state.row
    conflicts = checks.zoning_conflicts(conn, state.id, list(r["land_use_codes"]), state.wkb, srid)
    area = checks.area_check(r["legal_area"], state.area)
    body: dict[str, Any] = {
        "id": state.id,
        "key": state.key,
        "commune": commune(conn, r["commune_code"], r["old_commune_code"]),
        "properties": {n: _jsonable(r[n]) for n in visible},
        "version": r["version"],
        "updated_at": r["updated_at"].isoformat(),
        "as_of": as_of.isoformat() if as_of else None,
        "state": "current" if state.valid_to is None else "superseded",
        "valid_to": state.valid_to.isoformat() if state.valid_to else None,
        "land_use": land_use(conn, list(r["land_use_codes"])),
        "area": area,
        "neighbours": neighbours(conn, state, srid, as_of),
        "zones": zones(conn, state, srid),
        "zoning_conflicts": [c.as_json() for c in conflicts],
        "flags": [f for f, on in (("area_discrepancy", area["flagged"]),
                                  ("zoning_conflict", bool(conflicts))) if on],
    }
    found = incidents(conn, state, who, srid, as_of)
    if found is not None:
        body["incidents"] = found
    seen = cameras(conn, state, who, srid)
    if seen is not None:
        body["cameras"] = seen
    body["history"] = history(conn, state.id, who, srid)
    body["geometry"] = geojson(state.wkb)
    body["crs"] = {"storage": "EPSG:4326", "areas_and_distances": f"EPSG:{srid}"}
    return body


def audit_read(conn: psycopg.Connection, who: Principal, body: dict[str, Any], channel: str,
               request: Any = None) -> None:
    """Audit the parcel file BODY as read by WHO through CHANNEL (the API, the page): the parcel
    (its personal fields), and the incidents and cameras sections by their ids, each when
    gis.audit.record_read finds the read sensitive for WHO."""
    filter = {"as_of": body["as_of"]} if body.get("as_of") else None
    audit.record_read(conn, who, get_layer("parcels"), channel, ids=[body["id"]], filter=filter,
                      request=request)
    for layer_id in ("incidents", "cameras"):
        if layer_id in body:
            audit.record_read(conn, who, get_layer(layer_id), channel, request=request,
                              ids=[i["id"] for i in body[layer_id]["items"]],
                              extra={"parcel": body["id"]})


def map_features(conn: psycopg.Connection, body: dict[str, Any], as_of: dt.datetime | None,
                 lang: str = "vi") -> dict[str, Any]:
    """GeoJSON for the parcel page's map: the parcel, its neighbours (same instant) with their
    numbers and links, and the incidents listed."""
    ids = [n["id"] for n in body["neighbours"]]
    source, params = as_of_source(as_of)
    params["ids"] = ids
    rows = conn.execute(sql.SQL(
        "SELECT n.id, n.sheet_no, n.parcel_no, ST_AsGeoJSON(n.geom, 8) FROM {source}"
        " WHERE n.id = ANY(%(ids)s)").format(source=source), params).fetchall() if ids else []
    sheet = body["properties"].get("sheet_no")
    suffix = f"?lang={lang}"  # a link keeps the page's language
    neighbours = [{"type": "Feature", "id": r[0], "geometry": json.loads(r[3]),
                   "properties": {"label": str(r[2]) if r[1] == sheet else f"{r[1]}/{r[2]}",
                                  "href": f"/parcels/{r[0]}{suffix}"}} for r in rows]
    incidents_fc = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [i["lon"], i["lat"]]},
                     "properties": {"title": i.get("title") or i.get("category") or ""}}
                    for i in body.get("incidents", {}).get("items", [])]
    label = f"{body['properties'].get('parcel_no', '')}"
    return {"parcel": {"type": "Feature", "geometry": body["geometry"], "properties": {"label": label}},
            "neighbours": {"type": "FeatureCollection", "features": neighbours},
            "incidents": {"type": "FeatureCollection", "features": incidents_fc}}


__all__ = ["State", "detail", "load", "neighbours", "parcels_layer"]
