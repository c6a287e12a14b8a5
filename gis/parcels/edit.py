"""Editing a parcel: attributes and geometry, with optimistic locking and validation.

Optimistic locking: the client sends the version it edited (If-Match or "version"); the row
is locked, compared and updated with `WHERE id = .. AND version = ..` in one transaction, so of
two edits of the same version exactly one wins and the other gets VersionConflict (409), never
a silent overwrite. The version, updated_at and the history row are the triggers' business
(migration 0006); here we only say who (SET LOCAL geoioc.user) and why (geoioc.note).

Validation: values per field (codes exist and are not retired, ID number format, ...), and a
new geometry must be a valid polygon (gis.parcels.geometry), inside its commune (current, and
pre-2025 for merged communes) and overlap no other parcel by more than OVERLAP_TOLERANCE_M2.
Geometry edits of one commune are serialised (advisory lock) so two neighbours edited at the
same moment cannot both pass the overlap test against each other's old shape.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors, sql

from gis import audit, fmt
from gis.parcels import checks
from gis.parcels.common import describe_location, location, location_entry, parcels_layer, readable
from gis.parcels.errors import InvalidGeometry, VersionConflict
from layers.access import Principal
from layers.errors import (
    PROBLEMS,
    BadRequest,
    Forbidden,
    Invalid,
    Message,
    NotFound,
    PreconditionRequired,
    Problem,
)

EDITABLE = ("sheet_no", "parcel_no", "land_use_codes", "legal_area", "land_user", "land_user_id",
            "certificate_no", "use_until", "origin", "legal_valid_from", "decision_no")
MAX_DECISION = 100  # the table's limit on a decision number
OVERLAP_TOLERANCE_M2 = 0.5
OUTSIDE_COMMUNE_TOLERANCE_M2 = 0.5
MAX_NOTE = 500
MAX_TEXT = 200
ID_NUMBER = re.compile(r"^[0-9]{9}([0-9]{3})?$")
_ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,9})"?\s*$')


@dataclass
class Edit:
    expected_version: int
    properties: dict[str, Any] = field(default_factory=dict)
    geometry: bytes | None = None  # EPSG:4326 MultiPolygon WKB, already valid
    note: str | None = None


def parse_version(if_match: str | None, body_version: Any) -> int:
    """The version the client edited, from If-Match ("3", W/"3" or 3) or the body."""
    header = None
    if if_match is not None and if_match.strip():
        m = _ETAG.match(if_match.split(",")[0])
        if not m:
            raise BadRequest.for_field("if_match_format", "If-Match",
                                       f"{if_match!r} is not a parcel version (e.g. \"3\")",
                                       value=repr(if_match))
        header = int(m.group(1))
    body = None
    if body_version is not None:
        if isinstance(body_version, bool) or not isinstance(body_version, int) or body_version < 1:
            raise Invalid.for_field("version_number", "version",
                                    f"{body_version!r} is not a version number (1, 2, ...)",
                                    value=repr(body_version))
        body = body_version
    if header is not None and body is not None and header != body:
        raise BadRequest(f"If-Match says version {header} but the body says {body}",
                         parameter="If-Match",
                         message=Message("version_mismatch", {"header": header, "body": body}))
    version = header if header is not None else body
    if version is None:
        raise PreconditionRequired(
            "send the version you edited (If-Match: \"<version>\" or \"version\" in the body), "
            "so that a change made meanwhile by someone else is not overwritten",
            message=Message("version_required"))
    return version


class _Bad(Exception):
    """One field's problem (English reason, and its entry in the message catalogue), collected
    by validate_properties so that the 422 names every field in error at once."""

    def __init__(self, key: str, reason: str, **args: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = Message(key, args or None)


def _text(name: str, v: Any, limit: int = MAX_TEXT) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str):
        raise _Bad("text_or_null", f"expected text or null, got {type(v).__name__}")
    v = unicodedata.normalize("NFC", " ".join(v.split()))
    if len(v) > limit:
        raise _Bad("text_too_long", f"longer than {limit} characters", max_length=limit)
    return v or None


def _int(name: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _Bad("whole_number_between", f"expected a whole number from {lo} to {hi}, got {v!r}",
                   lo=lo, hi=hi)
    return v


def validate_properties(conn: psycopg.Connection, props: Any, who: Principal) -> dict[str, Any]:
    """Checked and normalised values; Invalid (422) naming every field in error and its
    problem (Forbidden, 403, for a field the caller may not change)."""
    if not isinstance(props, dict):
        raise Invalid.for_field("object", "properties", "expected an object of field: value")
    layer = parcels_layer()
    visible = readable(who)
    out: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, value in props.items():
        if name not in layer.field_names:
            problems.append(Problem(name, f"unknown field (fields: {', '.join(EDITABLE)})",
                                    message=Message("unknown_field", {"fields": ", ".join(EDITABLE)})))
            continue
        if name not in EDITABLE:
            commune = "commune" in name
            problems.append(Problem(
                name, "cannot be edited" + (" (the commune follows from where the parcel is)"
                                            if commune else " (set by the server)"),
                message=Message("commune_not_editable" if commune else "server_managed")))
            continue
        if name not in visible:
            raise Forbidden.for_field("field_forbidden", "properties", f"you may not change {name}",
                                      field=name)
        try:
            out[name] = _value(conn, layer.field(name), name, value)
        except _Bad as e:
            problems.append(Problem(name, e.reason, message=e.message))
    if problems:
        raise Invalid("; ".join(f"{p.field}: {p.reason}" for p in problems), problems=problems,
                      message=PROBLEMS)
    return out


def _value(conn: psycopg.Connection, f: Any, name: str, v: Any) -> Any:
    if name == "sheet_no":
        return _int(name, v, 1, 9999)
    if name == "parcel_no":
        return _int(name, v, 1, 99999)
    if name == "legal_area":
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not 0 < v < 1e9:
            raise _Bad("positive_area", f"expected a positive area in m², got {v!r}")
        return round(float(v), 1)
    if name == "land_use_codes":
        return _land_use_codes(conn, v)
    if name == "land_user_id":
        text = _text(name, v, 12)
        if text is not None and not ID_NUMBER.match(text):
            raise _Bad("id_number",
                       "expected a 12-digit citizen ID (CCCD) or a 9-digit identity card number")
        return text
    if name in ("use_until", "legal_valid_from"):
        if v is None:
            return None
        try:
            return dt.date.fromisoformat(v) if isinstance(v, str) else _bad_date(name, v)
        except ValueError:
            return _bad_date(name, v)
    if name == "decision_no":
        return _text(name, v, MAX_DECISION)
    if name == "origin":
        if v is not None and v not in f.values:
            raise _Bad("one_of", f"{v!r} is not one of {', '.join(f.values)}",
                       expected=", ".join(f.values))
        return v
    return _text(name, v)


def _bad_date(name: str, v: Any) -> Any:
    if name == "use_until":
        raise _Bad("date_or_null", f"expected a date YYYY-MM-DD or null (permanent), got {v!r}")
    raise _Bad("date_or_unknown", f"expected a date YYYY-MM-DD or null (not known), got {v!r}")


def _land_use_codes(conn: psycopg.Connection, v: Any) -> list[str]:
    if not isinstance(v, list) or not 1 <= len(v) <= 4 or not all(isinstance(c, str) for c in v):
        raise _Bad("land_use_list", "expected a list of 1 to 4 codes, e.g. [\"ONT\", \"CLN\"]")
    codes = [c.strip().upper() for c in v]
    if len(set(codes)) != len(codes):
        raise _Bad("land_use_repeated", "a code is repeated")
    rows: dict[str, Any] = dict(conn.execute(
        "SELECT code, valid_to FROM land_use_codes WHERE code = ANY(%s)", (codes,)).fetchall())
    unknown = [c for c in codes if c not in rows]
    if unknown:
        raise _Bad("land_use_unknown", f"unknown code(s) {', '.join(unknown)}", codes=", ".join(unknown))
    today = dt.date.today()
    retired = [c for c in codes if rows[c] is not None and rows[c] <= today]
    if retired:
        raise _Bad("land_use_retired",
                   ", ".join(f"{c} (retired on {rows[c].isoformat()})" for c in retired)
                   + "; use the current code list",
                   codes=", ".join(f"{c} ({fmt.date(rows[c])})" for c in retired))
    return codes


def _check_location(conn: psycopg.Connection, parcel_id: int, commune: str, old: str | None,
                    wkb: bytes, srid: int) -> None:
    """Inside the commune(s), no overlap with other parcels: InvalidGeometry listing each."""
    problems: list[dict[str, Any]] = []
    units = conn.execute(
        "WITH g AS (SELECT ST_GeomFromWKB(%(wkb)s, 4326) AS g),"
        " u AS ((SELECT code, name, 'current' AS era, geom FROM admin_units"
        "        WHERE level = 'commune' AND code = %(c)s AND valid_to IS NULL LIMIT 1)"
        "       UNION ALL (SELECT code, name, 'pre-2025', geom FROM admin_units"
        "        WHERE level = 'commune' AND code = %(o)s AND valid_to IS NOT NULL"
        "        ORDER BY valid_to DESC LIMIT 1)),"
        " d AS (SELECT u.code, u.name, u.era, CASE WHEN ST_CoveredBy(g.g, u.geom) THEN NULL"
        "        ELSE ST_Difference(g.g, u.geom) END AS out FROM u, g)"
        " SELECT code, name, era, coalesce(ST_Area(ST_Transform(out, %(srid)s)), 0),"
        "  ST_X(ST_PointOnSurface(out)), ST_Y(ST_PointOnSurface(out)) FROM d",
        {"wkb": wkb, "c": commune, "o": old, "srid": srid}).fetchall()
    if not units:
        raise InvalidGeometry(f"commune {commune} has no current boundary to check the parcel against",
                              message=Message("geometry_no_boundary", {"code": commune}))
    for code, name, era, outside, lon, lat in units:
        if outside > OUTSIDE_COMMUNE_TOLERANCE_M2:
            loc = location(lon, lat, srid)
            problems.append({"reason": "outside commune", "commune_code": code, "era": era,
                             "area_m2": round(outside, 2), "location": loc,
                             "message": f"{outside:.2f} m² lies outside {era} commune {code} "
                                        f"({name}), e.g. at {describe_location(loc)}",
                             "entry": Message("geometry_outside_commune", {
                                 "area": round(outside, 2), "code": code, "name": name,
                                 "era": Message("era_old" if era == "pre-2025" else "era_current"),
                                 "where": location_entry(loc)})})
    overlaps = conn.execute(
        "WITH g AS (SELECT ST_GeomFromWKB(%(wkb)s, 4326) AS g)"
        " SELECT * FROM (SELECT n.id, n.commune_code, n.old_commune_code, n.sheet_no, n.parcel_no,"
        "  ST_Area(ST_Transform(ST_Intersection(n.geom, g.g), %(srid)s)) AS area,"
        "  ST_X(ST_PointOnSurface(ST_Intersection(n.geom, g.g))) AS lon,"
        "  ST_Y(ST_PointOnSurface(ST_Intersection(n.geom, g.g))) AS lat"
        "  FROM parcels AS n, g WHERE n.geom && g.g AND n.id <> %(id)s AND ST_Intersects(n.geom, g.g)) q"
        " WHERE area > %(tol)s ORDER BY area DESC LIMIT 20",
        {"wkb": wkb, "srid": srid, "id": parcel_id, "tol": OVERLAP_TOLERANCE_M2}).fetchall()
    for nid, c, o, sheet, no, area, lon, lat in overlaps:
        loc = location(lon, lat, srid)
        where = f"{c}" + (f" (old {o})" if o else "")
        problems.append({"reason": "overlap", "neighbour": {"id": nid, "commune_code": c,
                         "old_commune_code": o, "sheet_no": sheet, "parcel_no": no},
                         "area_m2": round(area, 2), "location": loc,
                         "message": f"overlaps parcel sheet {sheet} parcel {no} of commune {where} "
                                    f"(id {nid}) by {area:.2f} m² around {describe_location(loc)}",
                         "entry": Message("geometry_overlap", {
                             "sheet": str(sheet), "parcel": str(no), "commune": c, "id": str(nid),
                             "area": round(area, 2), "where": location_entry(loc)})})
    if problems:
        raise InvalidGeometry("geometry rejected: " + "; ".join(p["message"] for p in problems),
                              located=problems)


def apply(conn: psycopg.Connection, parcel_id: int, edit: Edit, who: Principal, srid: int,
          request: Any = None) -> dict[str, Any]:
    """Apply EDIT in one transaction on CONN (a pooled autocommit connection): lock, compare
    versions, validate, update, audit. Returns {version, updated_at, changed, warnings}; the
    warnings are catalogue entries (api/messages.py), worded in the user's language by the API."""
    if not edit.properties and edit.geometry is None:
        raise Invalid("nothing to change: give properties and/or geometry",
                      message=Message("nothing_to_change"))
    if edit.note is not None and len(edit.note) > MAX_NOTE:
        raise Invalid.for_field("text_too_long", "note", f"longer than {MAX_NOTE} characters",
                                max_length=MAX_NOTE)
    props = edit.properties
    try:
        with conn.transaction():
            conn.execute("SELECT set_config('geoioc.user', %s, true), set_config('geoioc.note', %s, true)",
                         (who.user or "", edit.note or ""))
            row = conn.execute(
                "SELECT version, updated_at, commune_code, old_commune_code, sheet_no, parcel_no,"
                " legal_valid_from FROM parcels WHERE id = %s FOR UPDATE", (parcel_id,)).fetchone()
            if row is None:
                raise NotFound(f"parcel {parcel_id} not found",
                               message=Message("parcel_not_found", {"id": str(parcel_id)}))
            sheet: int
            number: int
            version, updated_at, commune, old, sheet, number, valid_from = row
            if version != edit.expected_version:
                raise _conflict(parcel_id, edit.expected_version, version, updated_at)
            _check_legal_order(parcel_id, valid_from, props.get("legal_valid_from"))
            if "sheet_no" in props or "parcel_no" in props:
                _check_key_free(conn, parcel_id, commune, old, props.get("sheet_no", sheet),
                                props.get("parcel_no", number))
            if edit.geometry is not None:
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                             (f"geoioc.parcels.geometry.{commune}",))
                _check_location(conn, parcel_id, commune, old, edit.geometry, srid)
            sets: list[sql.Composable] = [
                sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in props]
            if edit.geometry is not None:
                sets.append(sql.SQL("geom = ST_GeomFromWKB(%(geom)s, 4326)"))
            new = conn.execute(
                sql.SQL("UPDATE parcels SET {sets} WHERE id = %(id)s AND version = %(version)s"
                        " RETURNING version, updated_at, legal_area,"
                        " ST_Area(ST_Transform(geom, %(srid)s))").format(sets=sql.SQL(", ").join(sets)),
                {**props, "geom": edit.geometry, "id": parcel_id, "version": edit.expected_version,
                 "srid": srid}).fetchone()
            if new is None:  # cannot happen under the row lock; kept as the real guard
                current = conn.execute("SELECT version, updated_at FROM parcels WHERE id = %s",
                                       (parcel_id,)).fetchone()
                raise _conflict(parcel_id, edit.expected_version, *(current or (None, None)))
            changed = [*props, *(["geometry"] if edit.geometry is not None else [])]
            audit.record(conn, who, "write", request=request, layer="parcels", status=200,
                         target={"id": parcel_id, "from_version": version, "to_version": new[0],
                                 "changed": changed, "note": edit.note})
    except (errors.CheckViolation, errors.UniqueViolation, errors.ForeignKeyViolation,
            errors.NotNullViolation) as e:
        raise Invalid(f"rejected by the database: {e.diag.message_primary}",
                      message=Message("parcel_refused")) from None
    new_version, new_updated, legal, computed = new
    warnings: list[Message] = []
    area = checks.area_check(legal, float(computed))
    if area["flagged"]:
        legal_m2, computed_m2, tolerance_m2 = (round(float(area[k]), 1) for k in (
            "legal_m2", "computed_m2", "tolerance_m2"))
        warnings.append(Message("area_differs", {"legal": legal_m2, "computed": computed_m2,
                                                 "tolerance": tolerance_m2}))
    return {"id": parcel_id, "version": new_version, "updated_at": new_updated.isoformat(),
            "changed": changed, "warnings": warnings}


def _conflict(parcel_id: int, sent: int, current: int | None,
              updated_at: dt.datetime | None) -> VersionConflict:
    args: dict[str, Any] = {"id": str(parcel_id), "sent": sent, "current": current}
    if updated_at is not None:
        args["at"] = updated_at
    return VersionConflict(
        f"parcel {parcel_id} was changed by someone else: you edited version {sent}, the current "
        f"version is {current}" + (f" (saved at {updated_at.isoformat()})" if updated_at else "")
        + "; reload it and apply your change again",
        message=Message("version_conflict_at" if updated_at else "version_conflict", args),
        current_version=current, your_version=sent)


def _check_legal_order(parcel_id: int, current: dt.date | None, new: dt.date | None) -> None:
    """The version trigger's rule (migration 0013), checked first so that the refusal names the
    field and reads in the user's language; the trigger stays the guard for every writer."""
    if current is not None and new is not None and new < current:
        raise Invalid.for_field(
            "legal_order", "legal_valid_from",
            f"parcel {parcel_id}: a version valid from {new.isoformat()} cannot replace the version "
            f"valid from {current.isoformat()} (versions follow each other in legal order)",
            new=fmt.date(new), current=fmt.date(current))


def _check_key_free(conn: psycopg.Connection, parcel_id: int, commune: str, old: str | None,
                    sheet: int, number: int) -> None:
    other = conn.execute(
        "SELECT id FROM parcels WHERE commune_code = %s AND old_commune_code IS NOT DISTINCT FROM %s"
        " AND sheet_no = %s AND parcel_no = %s AND id <> %s", (commune, old, sheet, number, parcel_id)
    ).fetchone()
    if other:
        raise Invalid(f"sheet {sheet} parcel {number} is already parcel {other[0]} of commune "
                      f"{commune}" + (f" (old {old})" if old else ""), existing_id=other[0],
                      message=Message("parcel_key_taken_old" if old else "parcel_key_taken", {
                          "sheet": str(sheet), "number": str(number), "id": str(other[0]),
                          "commune": commune, "old": old or ""}))
