"""Incident views for the command map under /api/incidents: heatmap cells, clustered points,
counts against the previous window (province-wide or for one commune) and the cameras that
cover an incident.

All of them share one set of filters (IncidentFilter): `start`, `end` (ISO date or date-time;
default the last 30 days), `category`, `severity`, `status` (comma-separated lists; absent = all)
and `bbox` (lon/lat). Access is layers.access on the incidents layer: a caller who may not read
it gets a 404; rows hidden from the caller (security events for an operator) are excluded from
every count and cell; reads that include restricted rows are audited.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from psycopg import sql

from api.ogc.errors import bad_parameter, not_found
from api.ogc.params import parse_bbox
from api.routes.map_api import audit_read, readable
from api.security import Who
from gis.analysis import incidents as analysis
from gis.db import connection
from layers.access import Principal, readable_fields, row_filter
from layers.model import Layer

router = APIRouter(prefix="/api/incidents", tags=["incidents"])
DEFAULT_WINDOW = dt.timedelta(days=30)
MAX_WINDOW = dt.timedelta(days=3660)
JSON = "application/json"


def _instant(name: str, raw: str, end: bool) -> dt.datetime:
    """An ISO date (a whole day: its start, or the next day's start for an end) or date-time."""
    try:
        if len(raw) == 10:
            day = dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(), dt.UTC)
            return day + dt.timedelta(days=1) if end else day
        t = dt.datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise bad_parameter(f"{name}: {raw!r} is not an ISO date or date-time") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _codes(name: str, raw: str | None, field_values: dict[str, tuple[str, str]]) -> tuple[str, ...]:
    if raw is None or raw.strip() == "":
        return ()
    values = tuple(dict.fromkeys(v.strip() for v in raw.split(",") if v.strip()))
    unknown = [v for v in values if v not in field_values]
    if unknown:
        raise bad_parameter(f"{name}: unknown value {unknown[0]!r}; expected one of "
                            f"{', '.join(field_values)}")
    return values


def parse_filter(layer: Layer, params: dict[str, str]) -> analysis.IncidentFilter:
    end = _instant("end", params["end"], True) if params.get("end") else dt.datetime.now(dt.UTC)
    start = _instant("start", params["start"], False) if params.get("start") else end - DEFAULT_WINDOW
    if start >= end:
        raise bad_parameter("start: the window must start before it ends")
    if end - start > MAX_WINDOW:
        raise bad_parameter("start: the window may be at most ten years long")
    severities = _codes("severity", params.get("severity"), layer.field("severity").values)
    bbox = None
    if params.get("bbox"):
        (x1, y1, x2, y2), _ = parse_bbox(params["bbox"], None)
        bbox = (x1, y1, x2, y2)
    return analysis.IncidentFilter(
        start=start, end=end,
        categories=_codes("category", params.get("category"), layer.field("category").values),
        severities=tuple(int(s) for s in severities),
        statuses=_codes("status", params.get("status"), layer.field("status").values),
        bbox=bbox)


def _zoom(raw: str | None, default: float = 11) -> float:
    if raw is None or raw == "":
        return default
    try:
        z = float(raw)
    except ValueError:
        z = -1
    if not 0 <= z <= analysis.MAX_ZOOM:
        raise bad_parameter(f"z: expected a zoom level between 0 and {analysis.MAX_ZOOM}")
    return z


def _window(f: analysis.IncidentFilter) -> dict:
    return {"start": _iso(f.start), "end": _iso(f.end)}


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _json(body: object) -> Response:
    return Response(orjson.dumps(body), media_type=JSON,
                    headers={"Cache-Control": "private, max-age=0"})


def _incidents(who: Principal) -> Layer:
    return readable(analysis.INCIDENTS.id, who)


KNOWN = {"start", "end", "category", "severity", "status", "bbox", "z", "commune", "as_of"}


def _params(request: Request, allowed: set[str]) -> dict[str, str]:
    params = dict(request.query_params)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise bad_parameter(f"unknown parameter {unknown[0]!r}; expected {', '.join(sorted(allowed))}")
    return params


@router.get("/heatmap")
def heatmap(request: Request, who: Who) -> Response:
    """Incident density as grid cells [lat, lon, weight] (weight = incidents in the cell; the
    weights add up to `total`, the number of incidents matching the filters), cells of about
    8 screen pixels at zoom `z`."""
    layer = _incidents(who)
    params = _params(request, KNOWN - {"commune", "as_of"})
    f = parse_filter(layer, params)
    z = _zoom(params.get("z"))
    with connection() as conn:
        h = analysis.heatmap(conn, f, row_filter(layer, who), z)
    audit_read(layer, who, request, {"heatmap": params})
    return _json({**_window(f), "z": z, "cell_m": round(h.cell_m, 2), "total": h.total,
                  "max": h.max, "cells": h.cells})


@router.get("/points")
def points(request: Request, who: Who) -> Response:
    """Incidents for the clustered map view: single points [id, lon, lat, category, severity,
    status] when at most a few thousand match (the browser clusters them), otherwise server-side
    clusters [lon, lat, count, most frequent category, highest severity] sized for zoom `z`."""
    layer = _incidents(who)
    params = _params(request, KNOWN - {"commune", "as_of"})
    f = parse_filter(layer, params)
    z = _zoom(params.get("z"))
    with connection() as conn:
        result = analysis.points_or_clusters(conn, f, row_filter(layer, who), z)
    audit_read(layer, who, request, {"points": params})
    key = "points" if result.mode == "points" else "clusters"
    return _json({**_window(f), "mode": result.mode, "total": result.total, key: result.rows})


def _area(conn, who: Principal, code: str, as_of: str | None) -> dict:
    unit_layer = readable("admin_units", who)
    try:
        day = dt.date.fromisoformat(as_of) if as_of else dt.datetime.now(dt.UTC).date()
    except ValueError:
        raise bad_parameter(f"as_of: {as_of!r} is not a date (YYYY-MM-DD)") from None
    restrict = row_filter(unit_layer, who, alias="admin_units")
    row = conn.execute(sql.SQL(
        "SELECT id, code, name, level, valid_from::text, valid_to::text FROM admin_units"
        " WHERE code = %s AND valid_from <= %s AND (valid_to IS NULL OR valid_to > %s) AND {}"
        " ORDER BY level = 'commune' DESC LIMIT 1").format(
        restrict if restrict is not None else sql.SQL("TRUE")), (code, day, day)).fetchone()
    if row is None:
        raise not_found(f"administrative unit {code!r} not found on {day.isoformat()}")
    return dict(zip(("id", "code", "name", "level", "valid_from", "valid_to"), row, strict=True))


@router.get("/stats")
def stats(request: Request, who: Who) -> Response:
    """Counts in the window and in the previous window of the same length (`change` = relative
    difference), by category, severity and status, with a time series for each window. With
    `commune=CODE` (and `as_of=YYYY-MM-DD` for a unit of another era, e.g. before the 2025
    reform), only incidents inside that unit's boundary."""
    layer = _incidents(who)
    params = _params(request, KNOWN)
    f = parse_filter(layer, params)
    with connection() as conn:
        area = _area(conn, who, params["commune"], params.get("as_of")) \
            if params.get("commune") else None
        s = analysis.stats(conn, f, row_filter(layer, who), area["id"] if area else None)
    audit_read(layer, who, request, {"stats": params})

    def window(w: analysis.WindowCounts) -> dict:
        return {"start": _iso(w.start), "end": _iso(w.end), "total": w.total,
                "by_category": w.by_category, "by_severity": w.by_severity,
                "by_status": w.by_status, "series": w.series}

    return _json({"current": window(s.current), "previous": window(s.previous),
                  "change": None if s.change is None else round(s.change, 4),
                  "bucket_seconds": s.bucket_seconds,
                  "area": {k: v for k, v in area.items() if k != "id"} if area else None})


@router.get("/{incident_id}/cameras")
def covering_cameras(request: Request, who: Who,
                     incident_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> Response:
    """Cameras whose field of view covers the incident, nearest first, as GeoJSON points with
    `distance_m` and the field-of-view polygon (`fov`)."""
    layer = _incidents(who)
    cameras = readable("cameras", who)
    with connection() as conn:
        if not analysis.incident_visible(conn, incident_id, row_filter(layer, who)):
            raise not_found(f"incident {incident_id} not found")
        found = analysis.cameras_covering(conn, incident_id, readable_fields(cameras, who),
                                          row_filter(cameras, who, alias="c"))
    audit_read(layer, who, request, {"id": incident_id})
    audit_read(cameras, who, request, {"covering_incident": incident_id})
    features = [
        b'{"type":"Feature","id":%d,"geometry":%s,"properties":%s,"fov":%s}' % (
            c.id, c.point.encode(),
            orjson.dumps({**orjson.loads(c.properties), "distance_m": c.distance_m}),
            c.fov.encode())
        for c in found]
    body = b'{"type":"FeatureCollection","incident":%d,"features":[%s]}' % (
        incident_id, b",".join(features))
    return Response(body, media_type="application/geo+json",
                    headers={"Cache-Control": "private, max-age=0"})
