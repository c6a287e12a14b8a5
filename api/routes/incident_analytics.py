"""Incident views for the command map under /api/incidents: heatmap cells, clustered points,
counts against the previous window (province-wide or for one commune) and the cameras that
cover an incident.

All of them share one set of filters (IncidentFilter): `start`, `end` (ISO date or date-time;
default the last 30 days), `category`, `severity`, `status` (comma-separated lists; absent = all)
and `bbox` (lon/lat). Access is layers.access on the incidents layer: a caller who may not read
it gets a 404 (before any parameter is looked at, so a bad parameter does not reveal the views
exist); rows hidden from the caller (security events for an operator) are excluded from every
count and cell; reads that include restricted rows are audited.

Every parameter is declared (typed and bounded) so /openapi.json documents it; an undeclared
parameter is a 400 naming it, as before, so a misspelt filter never silently widens a count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import orjson
import psycopg
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, Field

from api.deps import ReadConn
from api.ogc.params import parse_bbox
from api.route_docs import GEOJSON, ok, problems
from api.security import Who
from gis import audit, fmt
from gis.analysis import heat_cells, incident_stats, suppression
from gis.analysis import incidents as analysis
from layers.access import (
    AggregateRead,
    Principal,
    aggregate_read,
    readable_fields,
    readable_layer,
    row_filter,
)
from layers.errors import PROBLEMS, BadRequest, Collect, Message, NotFound, Problem
from layers.model import Layer

router = APIRouter(prefix="/api/incidents", tags=["incidents"])
DEFAULT_WINDOW = dt.timedelta(days=30)
MAX_WINDOW = dt.timedelta(days=3660)
DEFAULT_ZOOM = 11  # an int, so the body says "z": 11 as it always has
JSON = "application/json"
FILTERS = ("start", "end", "category", "severity", "status", "source", "bbox", "unit",
           "boundaries", "as_of", "z")
AREA = ("commune", "as_of")


# --- the incidents layer, before anything else ---------------------------------------------------


def _readable(layer_id: str, who: Principal) -> Layer:
    """The layer, or a 404 that is the same whether it does not exist or may not be read."""
    layer = readable_layer(layer_id, who)
    if layer is None:
        raise NotFound("not found", message=Message("status_404"))
    return layer


async def incidents_layer(who: Who) -> Layer:
    return _readable(analysis.INCIDENTS.id, who)


IncidentsLayer = Annotated[Layer, Depends(incidents_layer)]


async def incidents_aggregates(who: Who) -> AggregateRead:
    """Counts of incidents: exact for who may read the layer, suppressed under the layer's
    minimum for who may read only its aggregates (layers.model.Aggregates: the public), a 404
    (the same as a missing layer) for anyone else."""
    read = aggregate_read(analysis.INCIDENTS.id, who)
    if read is None:
        raise NotFound("not found", message=Message("status_404"))
    return read


IncidentAggregates = Annotated[AggregateRead, Depends(incidents_aggregates)]


def only(*allowed: str) -> Callable[[Request], Awaitable[dict[str, str]]]:
    """A dependency refusing any query parameter but ALLOWED (400 naming it); returns the
    parameters as given, for the audit log."""
    names = sorted(allowed)

    async def check(request: Request) -> dict[str, str]:
        params = dict(request.query_params)
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise BadRequest(f"unknown parameter {unknown[0]!r}; expected {', '.join(names)}",
                             parameter=unknown[0], message=PROBLEMS, problems=[
                                 Problem(name, "unknown parameter", message=Message(
                                     "unknown_parameter", {"names": ", ".join(names)}))
                                 for name in unknown])
        return params

    return check


FilterParams = Annotated[dict[str, str], Depends(only(*FILTERS))]
StatsParams = Annotated[dict[str, str], Depends(only(*FILTERS, *AREA))]


# --- the shared filters --------------------------------------------------------------------------


def _values(name: str) -> str:
    return ", ".join(analysis.INCIDENTS.field(name).values)


# The years an instant of a window may fall in.
INSTANT_YEARS = (2, 9998)


def _instant(name: str, raw: str, end: bool) -> dt.datetime:
    """An ISO date (a whole day in Vietnam time: its start, or the next day's start for an end)
    or date-time (UTC when it has no offset, as always: machines send instants)."""
    try:
        if len(raw) == 10:
            day = dt.date.fromisoformat(raw)
            t = analysis.vn_day_start(day + dt.timedelta(days=1) if end else day)
        else:
            t = dt.datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise BadRequest.for_field("date_or_datetime", name, f"{raw!r} is not an ISO date or date-time",
                                   value=repr(raw)) from None
    except OverflowError:  # the day after 9999-12-31
        t = dt.datetime.max.replace(tzinfo=dt.UTC)
    t = t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    # The views count Vietnam-time days, months and years around the window: an instant in the
    # first or last year a date can hold has none of them.
    if not INSTANT_YEARS[0] <= t.year <= INSTANT_YEARS[1]:
        raise BadRequest.for_field("out_of_range", name, f"{raw!r} is outside "
                                   f"{INSTANT_YEARS[0]}..{INSTANT_YEARS[1]}", value=repr(raw),
                                   # years as text: no thousands separator (9.998)
                                   lo=str(INSTANT_YEARS[0]), hi=str(INSTANT_YEARS[1]))
    return t


def _codes(name: str, raw: str | None, field_values: dict[str, tuple[str, str]]) -> tuple[str, ...]:
    if raw is None or raw.strip() == "":
        return ()
    values = tuple(dict.fromkeys(v.strip() for v in raw.split(",") if v.strip()))
    unknown = [v for v in values if v not in field_values]
    if unknown:
        # The codes are what is typed; a Vietnamese reader also reads what each one means.
        expected = {"vi": ", ".join(f"'{code}' ({vi})" for code, (vi, _) in field_values.items()),
                    "en": ", ".join(field_values)}
        raise BadRequest.for_field("unknown_value", name, f"unknown value {unknown[0]!r}; expected "
                                   f"one of {', '.join(field_values)}", value=repr(unknown[0]),
                                   expected=expected)
    return values


_INSTANT = ("an ISO date (a whole day in Vietnam time, Asia/Ho_Chi_Minh: 00:00-24:00 UTC+7) or "
            "date-time (UTC when it has no offset)")
_LIST = "comma-separated; absent or empty: all. One of: "


async def incident_filter(
    agg: IncidentAggregates, who: Who, conn: ReadConn,
    start: Annotated[str | None, Query(
        description=f"start of the window, inclusive: {_INSTANT}; default `end` minus 30 days",
        examples=["2026-01-01"], max_length=40)] = None,
    end: Annotated[str | None, Query(
        description=f"end of the window, exclusive (a date: the end of that day): {_INSTANT}; "
                    "default now. The window is at most ten years long",
        examples=["2026-01-31T00:00:00Z"], max_length=40)] = None,
    category: Annotated[str | None, Query(
        description=_LIST + _values("category"), examples=["fire,traffic_accident"],
        max_length=1000)] = None,
    severity: Annotated[str | None, Query(
        description=_LIST + _values("severity"), examples=["3,4"], max_length=100)] = None,
    status: Annotated[str | None, Query(
        description=_LIST + _values("status"), examples=["new,assigned"], max_length=500)] = None,
    bbox: Annotated[str | None, Query(
        description="minx,miny,maxx,maxy in longitude/latitude (CRS84)",
        examples=["106.0,21.1,106.15,21.2"], max_length=400)] = None,
    source: Annotated[str | None, Query(
        description=_LIST + _values("source"), examples=["hotline,camera"], max_length=500)] = None,
    unit: Annotated[str | None, Query(
        description="code of an administrative unit (commune, district or province): only "
                    "incidents inside its boundary, on the boundaries chosen by `boundaries` or "
                    "`as_of`", examples=["09244"], max_length=20, pattern=r"^[0-9]{2,5}$")] = None,
    boundaries: Annotated[Literal["current", "pre2025"] | None, Query(
        description="boundary set of `unit` (and of per-unit views): `current` (today's units, "
                    "the default) or `pre2025` (the units as they were on 2025-06-30, before the "
                    "2025 reform merged communes and abolished districts)")] = None,
    as_of: Annotated[str | None, Query(
        description="YYYY-MM-DD: the units as they were that day (another way to choose the "
                    "boundary set; not together with `boundaries`)", examples=["2025-06-30"],
        max_length=10)] = None,
) -> analysis.IncidentFilter:
    """The filters every view shares, checked against the catalogue's code lists."""
    layer = agg.layer
    # Every filter is checked, and all those in error are listed in one answer.
    check = Collect()
    stop = check(_instant, "end", end, True) if end else dt.datetime.now(dt.UTC)
    begin = check(_instant, "start", start, False) if start else (
        stop - DEFAULT_WINDOW if stop is not None else None)
    if begin is not None and stop is not None:
        check(_check_window, begin, stop)
    categories = check(_codes, "category", category, layer.field("category").values)
    severities = check(_codes, "severity", severity, layer.field("severity").values)
    statuses = check(_codes, "status", status, layer.field("status").values)
    box = check(parse_bbox, bbox, None) if bbox else None
    sources = check(_codes, "source", source, layer.field("source").values)
    day = check(boundary_day, boundaries, as_of)
    check.done()
    assert begin is not None and stop is not None
    area = None
    if unit:
        assert day is not None
        # The one lookup a filter may need: off the event loop, and only when a unit is asked for.
        area = await run_in_threadpool(unit_area, conn, who, unit, day)
    return analysis.IncidentFilter(
        start=begin, end=stop, categories=categories or (),
        severities=tuple(int(s) for s in severities or ()), statuses=statuses or (),
        bbox=box[0] if box else None, sources=sources or (), unit=area)


def boundary_day(boundaries: str | None, as_of: str | None) -> dt.date:
    """The day whose administrative units a view uses: `as_of`, or the day of the boundary
    set `boundaries` (default current)."""
    if as_of:
        if boundaries:
            raise BadRequest.for_field("boundaries_or_as_of", "as_of",
                                       "give either boundaries or as_of, not both")
        try:
            return dt.date.fromisoformat(as_of)
        except ValueError:
            raise BadRequest.for_field("date", "as_of", f"{as_of!r} is not a date (YYYY-MM-DD)",
                                       value=repr(as_of)) from None
    return analysis.era_day(boundaries or "current")


def unit_area(conn: psycopg.Connection, who: Principal, code: str, day: dt.date) -> analysis.Area:
    """The unit CODE valid on DAY among those WHO may read, or a 404 naming it."""
    unit_layer = _readable("admin_units", who)
    area = analysis.area_on(conn, code, day, row_filter(unit_layer, who, alias="admin_units"))
    if area is None:
        raise NotFound(f"administrative unit {code!r} not found on {day.isoformat()}",
                       message=Message("unit_not_found", {"code": repr(code), "day": fmt.date(day)}))
    return area


def _check_window(begin: dt.datetime, stop: dt.datetime) -> None:
    if begin >= stop:
        raise BadRequest.for_field("window_order", "start", "the window must start before it ends")
    if stop - begin > MAX_WINDOW:
        raise BadRequest.for_field("window_too_long", "start",
                                   "the window may be at most ten years long")


Filter = Annotated[analysis.IncidentFilter, Depends(incident_filter)]


def _default_zoom(value: object) -> object:
    """An empty `z=` means the default, as it always has."""
    return DEFAULT_ZOOM if value == "" else value


Zoom = Annotated[float, Query(
    ge=0, le=analysis.MAX_ZOOM, description="map zoom level the cells or clusters are sized for"),
    BeforeValidator(_default_zoom)]


# --- response bodies (documentation; the bodies are built as bytes) ------------------------------


class Window(BaseModel):
    start: str = Field(description="RFC 3339, UTC")
    end: str


class HeatmapOut(Window):
    z: float
    cell_m: float = Field(description="cell size in Web Mercator metres")
    total: int = Field(description="incidents matching the filters (the cells' weights add up to it)")
    max: int
    # A list of 3 numbers rather than a tuple: schemathesis (test_schemathesis) reads the tuple's
    # OpenAPI 3.1 prefixItems as a draft-4 items list and calls the schema invalid.
    cells: list[Annotated[list[float], Field(min_length=3, max_length=3)]] = Field(
        description="[lat, lon, weight]")


class PointsOut(Window):
    mode: str = Field(description="`points` (single incidents) or `clusters`")
    total: int
    points: list[tuple[int, float, float, str, int, str]] | None = Field(
        None, description="[id, lon, lat, category, severity, status] (mode points)")
    clusters: list[tuple[float, float, int, str, int]] | None = Field(
        None, description="[lon, lat, count, most frequent category, highest severity] (mode clusters)")


class WindowCountsOut(Window):
    total: int | None = Field(description="null when suppressed (public callers: under 3)")
    by_category: dict[str, int | None]
    by_severity: dict[str, int | None]
    by_status: dict[str, int | None]
    series: list[int | None] = Field(description=(
        "counts per calendar bucket of `bucket_seconds`, Vietnam time, from `series_start`: "
        "hours, quarters of the day (from 0, 6, 12 and 18 h), days, weeks from Monday, or 30 "
        "days from the window's first day; the first and last buckets count only the part "
        "inside the window (null: suppressed for public callers)"))
    series_start: str = Field(description="RFC 3339, UTC: the first bucket's start, at or "
                                          "before `start`")


class AreaOut(BaseModel):
    code: str
    name: str
    level: str
    valid_from: str
    valid_to: str | None


class StatsOut(BaseModel):
    current: WindowCountsOut
    previous: WindowCountsOut = Field(description="the window of the same length just before")
    change: float | None = Field(description="relative change (null when the previous window had none)")
    bucket_seconds: int
    area: AreaOut | None


COVERING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "GeoJSON FeatureCollection of camera points, nearest first; each feature has "
                   "`properties.distance_m` and its field of view `fov` (a GeoJSON polygon)",
    "required": ["type", "incident", "features"],
    "properties": {"type": {"const": "FeatureCollection"}, "incident": {"type": "integer"},
                   "features": {"type": "array", "items": {"type": "object"}}},
}


def _window(f: analysis.IncidentFilter) -> dict[str, str]:
    return {"start": _iso(f.start), "end": _iso(f.end)}


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _suppression(agg: AggregateRead) -> dict[str, object]:
    """What a body says about small-count suppression: nothing for who reads exact counts."""
    if not agg.suppressed:
        return {}
    return {"suppressed": True, "min_count": agg.min_count,
            "suppression_note": suppression.note(agg.min_count)}


def _json(body: object) -> Response:
    return Response(orjson.dumps(body), media_type=JSON,
                    headers={"Cache-Control": "private, max-age=0"})


ERRORS = problems(400, 401, 404, 429, 503)


# --- routes --------------------------------------------------------------------------------------


@router.get("/heatmap", response_model=HeatmapOut, responses=ERRORS)
def heatmap(request: Request, who: Who, agg: IncidentAggregates, params: FilterParams, f: Filter,
            conn: ReadConn, z: Zoom = DEFAULT_ZOOM) -> Response:
    """Incident density as grid cells [lat, lon, weight] (weight = incidents in the cell; the
    weights add up to `total`, the number of incidents matching the filters), cells of about
    8 screen pixels at zoom `z`. Public: for a caller who may not read incidents, cells under
    the minimum count are left out (`suppressed`, `min_count`) and `total` counts the cells
    shown."""
    h = heat_cells.heatmap(conn, f, agg.restrict, z)
    cells = [c for c in h.cells if not suppression.small(c[2], agg.min_count)]
    audit.record_read(conn, who, agg.layer, "heatmap", filter=params, request=request)
    return _json({**_window(f), "z": z, "cell_m": round(h.cell_m, 2),
                  "total": sum(c[2] for c in cells), "max": max((c[2] for c in cells), default=0),
                  "cells": cells, **_suppression(agg)})


@router.get("/points", response_model=PointsOut, responses=ERRORS)
def points(request: Request, who: Who, layer: IncidentsLayer, params: FilterParams, f: Filter,
           conn: ReadConn, z: Zoom = DEFAULT_ZOOM) -> Response:
    """Incidents for the clustered map view: single points [id, lon, lat, category, severity,
    status] when at most a few thousand match (the browser clusters them), otherwise server-side
    clusters [lon, lat, count, most frequent category, highest severity] sized for zoom `z`."""
    result = heat_cells.points_or_clusters(conn, f, row_filter(layer, who), z)
    audit.record_read(conn, who, layer, "incident-points", filter=params, request=request)
    key = "points" if result.mode == "points" else "clusters"
    return _json({**_window(f), "mode": result.mode, "total": result.total, key: result.rows})


@router.get("/stats", response_model=StatsOut, responses=ERRORS)
def stats(
    request: Request, who: Who, agg: IncidentAggregates, params: StatsParams, f: Filter,
    conn: ReadConn,
    z: Annotated[str | None, Query(
        description="accepted and ignored (the map sends the same filters to every view)",
        max_length=40)] = None,
    commune: Annotated[str | None, Query(
        description="the same as `unit` (its older name): only incidents inside that unit's "
                    "boundary, as it was on `as_of` or in the boundary set `boundaries`",
        examples=["09244"], max_length=20)] = None,
) -> Response:
    """Counts in the window and in the previous window of the same length (`change` = relative
    difference), by category, severity and status, with a time series for each window. With
    `unit=CODE` or `commune=CODE` (and `as_of=YYYY-MM-DD` or `boundaries=pre2025` for a unit of
    another era, e.g. before the 2025 reform), only incidents inside that unit's boundary."""
    if commune and f.unit is not None:
        raise BadRequest.for_field("unit_or_commune", "commune", "give either unit or commune, not both")
    area = (unit_area(conn, who, commune, boundary_day(params.get("boundaries"), params.get("as_of")))
            if commune else None)
    s = incident_stats.stats(conn, f, agg.restrict, area.id if area else None)
    area = area or f.unit
    audit.record_read(conn, who, agg.layer, "incident-stats", filter=params, request=request)
    k = agg.min_count

    def window(w: analysis.WindowCounts) -> dict[str, object]:
        # Each breakdown is a group adding up to the total (suppression.group).
        return {"start": _iso(w.start), "end": _iso(w.end), "total": suppression.total(w.total, k),
                "by_category": suppression.mapping(w.by_category, k),
                "by_severity": suppression.mapping(w.by_severity, k),
                "by_status": suppression.mapping(w.by_status, k),
                "series": suppression.group(w.series, k),
                "series_start": _iso(w.series_start or w.start)}

    hidden = suppression.small(s.current.total, k) or suppression.small(s.previous.total, k)
    return _json({"current": window(s.current), "previous": window(s.previous),
                  "change": None if s.change is None or hidden else round(s.change, 4),
                  "bucket_seconds": s.bucket_seconds,
                  "area": area.public() if area else None, **_suppression(agg)})


@router.get("/{incident_id}/cameras", response_class=Response,
            responses={200: ok("Cameras covering the incident, nearest first", GEOJSON,
                                COVERING_SCHEMA), **ERRORS})
def covering_cameras(request: Request, who: Who, layer: IncidentsLayer, conn: ReadConn,
                     incident_id: Annotated[int, Path(ge=1, le=2**63 - 1,
                                                      description="the incident's id")]) -> Response:
    """Cameras whose field of view covers the incident, nearest first, as GeoJSON points with
    `distance_m` and the field-of-view polygon (`fov`)."""
    cameras = _readable("cameras", who)
    if not analysis.incident_visible(conn, incident_id, row_filter(layer, who)):
        raise NotFound(f"incident {incident_id} not found",
                       message=Message("incident_not_found", {"id": str(incident_id)}))
    found = analysis.cameras_covering(conn, incident_id, readable_fields(cameras, who),
                                      row_filter(cameras, who, alias="c"))
    audit.record_read(conn, who, layer, "incident", ids=[incident_id], request=request)
    audit.record_read(conn, who, cameras, "incident", ids=[c.id for c in found],
                      filter={"covering_incident": incident_id}, request=request)
    features = [
        b'{"type":"Feature","id":%d,"geometry":%s,"properties":%s,"fov":%s}' % (
            c.id, c.point.encode(),
            orjson.dumps({**orjson.loads(c.properties), "distance_m": c.distance_m}),
            c.fov.encode())
        for c in found]
    body = b'{"type":"FeatureCollection","incident":%d,"features":[%s]}' % (
        incident_id, b",".join(features))
    return Response(body, media_type=GEOJSON,
                    headers={"Cache-Control": "private, max-age=0"})
