"""The map client's SQL: identify ("what is here"), cameras with their fields of view, stations
with their latest reading, the gazetteer's labels, and how many features of a layer are in view.

Callers (api/routes/map_api.py) decide access: they pass the fields the caller may read and the
row filter of layers.access; nothing here decides who sees what. Every statement is composed with
psycopg.sql and parameters.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from gis.features import fetch_one, fetch_page, number_matched
from layers.features_sql import FeatureQuery
from layers.model import Field, Layer

# Point layers drawn whole: a province has hundreds of cameras and stations, not millions.
MAX_POINTS = 5_000
# A reading older than this is shown as stale.
STALE_AFTER = dt.timedelta(hours=24)
# A click finds a point or line within this many screen pixels (a finger or a mouse is not a
# pixel; a point's marker is drawn 6-8 pixels wide and a click on it is handled in the browser),
# turned into metres at the click's zoom and latitude.
CLICK_PIXELS = 12
# Ground metres per pixel at zoom 0 on the equator for 256-pixel Web Mercator tiles.
METRES_PER_PIXEL_Z0 = 156_543.033_928
# Without a zoom (a script asking, not a map), a generous walking distance around the point.
DEFAULT_TOLERANCE_M = 25.0
MAX_TOLERANCE_M = 5_000.0
METRES_PER_DEGREE = 111_320.0


def tolerance_m(zoom: float | None, lat: float) -> float:
    """How far from a click a point or line still counts as clicked: CLICK_PIXELS at ZOOM."""
    if zoom is None:
        return DEFAULT_TOLERANCE_M
    metres = CLICK_PIXELS * METRES_PER_PIXEL_Z0 * math.cos(math.radians(lat)) / 2 ** zoom
    return min(max(metres, 0.5), MAX_TOLERANCE_M)


@dataclass(frozen=True)
class Envelope:
    """A bbox (x/y order of srid) the map asks points for."""

    box: tuple[float, float, float, float]
    srid: int = 4326


def _point(x: float, y: float) -> sql.Composable:
    return sql.SQL("ST_SetSRID(ST_MakePoint({}, {}), 4326)").format(sql.Literal(x), sql.Literal(y))


def _restrict(restrict: sql.Composable | None) -> sql.Composable:
    return restrict if restrict is not None else sql.SQL("TRUE")


def identify(conn: psycopg.Connection, layer: Layer, fields: Sequence[Field],
             restrict: sql.Composable | None, x: float, y: float, when: dt.datetime,
             tolerance: float) -> str | None:
    """The feature of LAYER at (x, y) as GeoJSON text, or None: for polygons the one covering
    the point (of the era WHEN for a layer with history, narrowed by Layer.identify_filter),
    for points and lines the nearest within TOLERANCE metres."""
    q = FeatureQuery(layer=layer, fields=fields, limit=1, restrict=restrict)
    geom = sql.Identifier("t", layer.geometry_column)
    if layer.time_end_column:  # a gazetteer with history: the units valid WHEN
        q.time_range = (when, when)
    narrow: sql.Composable = sql.SQL("TRUE")
    if layer.identify_filter:  # e.g. admin units: the commune, not its district
        name, value = layer.identify_filter
        narrow = sql.SQL("{} = {}").format(sql.Identifier("t", name), sql.Literal(value))
    if layer.geometry_type in ("Polygon", "MultiPolygon"):
        q.condition = sql.SQL("ST_Covers({}, {}) AND {}").format(geom, _point(x, y), narrow)
        page = fetch_page(conn, q)
        return page.rows[0] if page.rows else None
    # Points and lines: the nearest within the tolerance. The box (degrees, wide enough at any
    # latitude of Vietnam) lets the GiST index find candidates; the metres are then exact.
    deg = tolerance / (METRES_PER_DEGREE * max(math.cos(math.radians(y)), 0.1))
    nearest = sql.SQL(
        "SELECT t.{id} FROM {table} AS t WHERE {geom} && ST_Expand({pt}, {deg})"
        " AND ST_DWithin({geom}::geography, {pt}::geography, {tol}) AND {narrow} AND {restrict}"
        " ORDER BY ST_Distance({geom}::geography, {pt}::geography), t.{id} LIMIT 1"
    ).format(id=sql.Identifier(layer.id_column), table=sql.Identifier(layer.table), geom=geom,
             pt=_point(x, y), deg=sql.Literal(deg), tol=sql.Literal(tolerance), narrow=narrow,
             restrict=_restrict(restrict))
    row = conn.execute(nearest).fetchone()
    if row is None:
        return None
    q.feature_id = row[0]
    return fetch_one(conn, q)


def _properties(fields: Sequence[Field], alias: str = "t") -> sql.Composable:
    if not fields:
        return sql.SQL("'{{}}'::jsonb")
    return sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(
        sql.SQL("{}, {}").format(sql.Literal(f.name), sql.Identifier(alias, f.name))
        for f in fields))


def _within(layer: Layer, bbox: Envelope | None) -> tuple[sql.Composable, list[object]]:
    if bbox is None:
        return sql.SQL("TRUE"), []
    env: sql.Composable = sql.SQL("ST_MakeEnvelope(%s, %s, %s, %s, %s)")
    if bbox.srid != 4326:
        env = sql.SQL("ST_Transform({}, 4326)").format(env)
    return (sql.SQL("{} && {}").format(sql.Identifier("t", layer.geometry_column), env),
            [*bbox.box, bbox.srid])


def cameras(conn: psycopg.Connection, layer: Layer, fields: Sequence[Field],
            restrict: sql.Composable | None, bbox: Envelope | None) -> list[str]:
    """Cameras as GeoJSON Feature texts with their field of view (member `fov`), and their
    health (gis/sensors/cameras.py): `last_seen` (the last heartbeat, UTC) and `snapshot_at`
    (the latest snapshot's time, absent when none: the popup shows its thumbnail)."""
    fov = layer.extra_geometry_columns[0]
    cond, params = _within(layer, bbox)
    q = sql.SQL(
        "SELECT jsonb_build_object('type', 'Feature', 'id', t.{id}, 'geometry',"
        " ST_AsGeoJSON(t.{g}, 7)::jsonb, 'properties', {props} || jsonb_strip_nulls("
        "  jsonb_build_object('last_seen', t.last_seen, 'snapshot_at', s.taken_at)),"
        " 'fov', ST_AsGeoJSON(t.{fov}, 7)::jsonb)::text"
        " FROM {table} AS t LEFT JOIN camera_snapshots AS s ON s.camera_id = t.{id}"
        " WHERE {cond} AND {restrict} ORDER BY t.{id} LIMIT %s"
    ).format(id=sql.Identifier(layer.id_column), g=sql.Identifier(layer.geometry_column),
             fov=sql.Identifier(fov), props=_properties(fields), table=sql.Identifier(layer.table),
             cond=cond, restrict=_restrict(restrict))
    return [r[0] for r in conn.execute(q, [*params, MAX_POINTS])]


def sensor_state(value: sql.Composable, threshold: sql.Composable,
                 datastream: sql.Composable) -> sql.Composable:
    """A reading's colour class against its threshold: ok below 80 %, warn up to 100 %, over
    above; none without a reading (the map's markers and its live `sensor` events). The
    station's one threshold is an upper limit; a limit on the low side (dissolved oxygen below
    4 mg/L, pH below 6) is an alert rule's, so an open threshold alert of the datastream makes
    it `over` too: the marker never says ok while the alert list says otherwise."""
    return sql.SQL(
        "CASE WHEN {v} IS NULL THEN 'none' WHEN {v} > {t} OR EXISTS (SELECT 1 FROM sensor_alerts"
        " AS sa JOIN alert_rules AS ar ON ar.id = sa.rule_id WHERE sa.datastream_id = {d}"
        " AND sa.closed_at IS NULL AND ar.kind = 'threshold') THEN 'over'"
        " WHEN {v} >= 0.8 * {t} THEN 'warn' ELSE 'ok' END").format(
            v=value, t=threshold, d=datastream)


def sensors(conn: psycopg.Connection, layer: Layer, fields: Sequence[Field],
            restrict: sql.Composable | None, bbox: Envelope | None,
            datastreams: sql.Composable | None = None) -> list[str]:
    """Stations as GeoJSON Feature texts with their latest reading: `datastream` (the id of
    the station's datastream of its parameter: the chart's and the live events'), `latest_value`,
    `observed_at`, `ratio` (value / threshold), `state` (sensor_state) and `stale` (no reading
    within STALE_AFTER). The reading is the latest of the station's datastream of its parameter,
    kept in datastream_latest as data arrive (migration 0020): no observation is read.
    DATASTREAMS is the caller's condition on the datastream's own access (alias d,
    layers.access.access_condition): a station whose datastream the caller may not read shows
    no reading (the station itself is the sensors layer's)."""
    cond, params = _within(layer, bbox)
    q = sql.SQL(
        "SELECT jsonb_build_object('type', 'Feature', 'id', t.{id}, 'geometry',"
        " ST_AsGeoJSON(t.{g}, 7)::jsonb, 'properties', {props} || jsonb_build_object("
        "  'datastream', o.datastream, 'latest_value', o.value, 'observed_at', o.observed_at, 'ratio',"
        "  round((o.value / NULLIF(t.threshold, 0))::numeric, 3),"
        "  'state', {state},"
        "  'stale', o.observed_at IS NULL OR o.observed_at < now() - %s))::text"
        " FROM {table} AS t LEFT JOIN LATERAL (SELECT d.id AS datastream, l.result AS value,"
        "  l.phenomenon_time AS observed_at FROM datastreams AS d"
        "  JOIN observed_properties AS p ON p.id = d.observed_property_id"
        "  LEFT JOIN datastream_latest AS l ON l.datastream_id = d.id"
        "  WHERE d.thing_id = t.{id} AND p.code = t.parameter AND {readable}) AS o ON TRUE"
        " WHERE {cond} AND {restrict} ORDER BY t.{id} LIMIT %s"
    ).format(id=sql.Identifier(layer.id_column), g=sql.Identifier(layer.geometry_column),
             props=_properties(fields), table=sql.Identifier(layer.table),
             state=sensor_state(sql.SQL("o.value"), sql.SQL("t.threshold"),
                                sql.SQL("o.datastream")),
             readable=_restrict(datastreams), cond=cond, restrict=_restrict(restrict))
    return [r[0] for r in conn.execute(q, [STALE_AFTER, *params, MAX_POINTS])]


def labels(conn: psycopg.Connection, layer: Layer, label_field: str,
           restrict: sql.Composable | None, when: dt.datetime) -> list[dict[str, object]]:
    """The gazetteer's units (narrowed by Layer.identify_filter: communes) valid WHEN, each
    with its label and a point inside it: the offline map's place names."""
    assert layer.time_column and layer.time_end_column, "labels need a layer with history"
    narrow: sql.Composable = sql.SQL("TRUE")
    if layer.identify_filter:
        name, value = layer.identify_filter
        narrow = sql.SQL("t.{} = {}").format(sql.Identifier(name), sql.Literal(value))
    natural = [sql.Identifier("t", f) for f in layer.natural_key[:1]] or [
        sql.Identifier("t", layer.id_column)]
    q = sql.SQL(
        "SELECT {key}::text, t.{label}, round(ST_X(p)::numeric, 6)::float8,"
        " round(ST_Y(p)::numeric, 6)::float8"
        " FROM (SELECT *, ST_PointOnSurface({g}) AS p FROM {table}) AS t"
        " WHERE {narrow} AND t.{start} <= %s AND (t.{end} IS NULL OR t.{end} > %s)"
        " AND {restrict} ORDER BY {key}"
    ).format(key=natural[0], label=sql.Identifier(label_field),
             g=sql.Identifier(layer.geometry_column), table=sql.Identifier(layer.table),
             narrow=narrow, start=sql.Identifier(layer.time_column),
             end=sql.Identifier(layer.time_end_column), restrict=_restrict(restrict))
    return [{"code": c, "name": n, "lon": x, "lat": y}
            for c, n, x, y in conn.execute(q, [when, when]).fetchall()]


def count_in_view(conn: psycopg.Connection, layer: Layer, restrict: sql.Composable | None,
                  bbox: Envelope, when: dt.datetime | None) -> int | None:
    """How many features of LAYER intersect BBOX (of the era WHEN for a layer with history),
    rows the caller may not see left out; None when PostgreSQL cannot count them within the
    count timeout (gis.features.COUNT_TIMEOUT_MS)."""
    q = FeatureQuery(layer=layer, fields=[], bbox=bbox.box, bbox_srid=bbox.srid, restrict=restrict)
    if layer.time_end_column and when is not None:
        q.time_range = (when, when)
    return number_matched(conn, q)


# --- the live map's events (gis/maps/live.py) -----------------------------------------------

# The latest value of the datastreams %(ids)s the caller may read ({visible}: the sensors
# layer's row filter on the station, alias s, and the datastream's own access, alias d).
LIVE_SENSORS = sql.SQL("""
SELECT d.id AS datastream, d.thing_id AS station, p.code AS property,
       coalesce(d.unit_of_measurement ->> 'symbol', '') AS unit,
       l.result AS value, l.phenomenon_time AS time,
       p.code = s.parameter AS main,
       CASE WHEN p.code <> s.parameter THEN NULL ELSE {state} END AS state,
       l.phenomenon_time < now() - %(stale)s AS stale
  FROM datastreams d
  JOIN observed_properties p ON p.id = d.observed_property_id
  JOIN sensors s ON s.id = d.thing_id
  JOIN datastream_latest l ON l.datastream_id = d.id
 WHERE d.id = ANY(%(ids)s) AND {visible}
 ORDER BY d.id
""")  # {state}: sensor_state of l.result, s.threshold, d.id

# The alerts %(ids)s the caller may see ({visible} as above); the incident's id only when the
# caller may read it ({incident_visible}, alias i).
LIVE_ALERTS = sql.SQL("""
SELECT a.id, a.status, a.opened_at, a.closed_at, a.acknowledged_at, a.value, a.limit_value,
       a.observed_at, r.code AS rule, r.kind, r.severity, r.name_vi AS rule_vi,
       r.name_en AS rule_en, d.id AS datastream, p.code AS property,
       coalesce(d.unit_of_measurement ->> 'symbol', '') AS unit,
       s.id AS station, s.code AS station_code, ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat,
       CASE WHEN i.id IS NOT NULL THEN a.incident_id END AS incident
  FROM sensor_alerts a
  JOIN alert_rules r ON r.id = a.rule_id
  JOIN datastreams d ON d.id = a.datastream_id
  JOIN observed_properties p ON p.id = d.observed_property_id
  JOIN sensors s ON s.id = d.thing_id
  LEFT JOIN incidents i ON i.id = a.incident_id AND {incident_visible}
 WHERE a.id = ANY(%(ids)s) AND {visible}
 ORDER BY a.id
""")

# One incident as the live map shows it, when the caller may read it ({visible}: the incidents
# layer's row filter, alias t); never a security event, whoever asks.
LIVE_INCIDENT = sql.SQL("""
SELECT t.id, t.category, t.severity, t.status, t.source, t.service_code, t.reported_at,
       ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat
  FROM incidents t
 WHERE t.id = %(id)s AND t.category <> 'security_event' AND {visible}
""")
