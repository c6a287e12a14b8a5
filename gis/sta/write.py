"""Observations created through SensorThings: `POST Observations`, `POST Datastreams(7)/
Observations` and the data-array extension `POST CreateObservations` (STA 1.1, 10.2 and 14).

They go through the ingest's own write path (gis/sensors): each Observation object is read by
payloads.sta_observation, the reader of the MQTT extension's messages (the same rules for times,
results, parameters and the time window), and stored by queries.STORE, the ingest's statement
(COPY into the session's staging table, INSERT ... ON CONFLICT (datastream, phenomenon time) DO
NOTHING, hourly and daily rollups and datastream_latest from the rows inserted). So an
observation posted twice, or posted and also published over MQTT, is stored once and counted
once in the rollups, and a POST answers at once with what is stored.

Who may create: operators and administrators (WRITE_ROLES), on the datastreams they may read
(a datastream they may not read does not exist for them: 404, or "error" in a data array).
Every creation is in the audit log, in the write's transaction.

FeatureOfInterest: omitted, the Thing's current position's (the ingest's rule); `{"@iot.id": n}`
an existing one; an inline object (name, description, encodingType application/geo+json or
application/vnd.geo+json, feature: a GeoJSON geometry) is created with the observation.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg

from gis import audit, live
from gis.sensors import alerts, payloads
from gis.sensors import queries as ingest
from gis.settings import Settings
from gis.sta.model import DATASTREAM, visible
from gis.sta.queries import observation_id
from layers.access import ADMIN, Principal
from layers.errors import BadRequest, Invalid, Message, NotFound, Problem

log = logging.getLogger(__name__)

WRITE_ROLES = frozenset({"operator"})
MAX_OBSERVATIONS = 10_000  # per request (a data array); more: several requests
GEOJSON_TYPES = ("application/geo+json", "application/vnd.geo+json")


def may_write(who: Principal) -> bool:
    return not who.anonymous and bool(who.roles & (WRITE_ROLES | {ADMIN}))


@dataclass
class Outcome:
    """One observation asked for: its id when stored or already there (`created`: stored by
    this request), or the reason it was refused."""

    id: int | None = None
    created: bool = False
    error: str | None = None
    row: payloads.Row | None = None


def window(settings: Settings) -> payloads.Window:
    return payloads.Window(dt.timedelta(days=settings.ingest_max_age_days),
                           dt.timedelta(seconds=settings.ingest_max_future_seconds))


def readable_datastreams(conn: psycopg.Connection[Any], who: Principal,
                         ids: Sequence[int]) -> set[int]:
    """Those of IDS that exist and WHO may read."""
    if not ids:
        return set()
    from psycopg import sql

    vis = visible(DATASTREAM, "d", who)
    query = sql.SQL("SELECT d.id FROM datastreams d WHERE d.id = ANY({}) AND {}").format(
        sql.Literal(sorted(set(ids))), vis if vis is not None else sql.SQL("true"))
    return {r[0] for r in conn.execute(query)}


def _inline_foi(conn: psycopg.Connection[Any], obj: dict[str, Any]) -> dict[str, Any]:
    """OBJ with an inline FeatureOfInterest created and replaced by its id."""
    foi = obj.get("FeatureOfInterest")
    if not isinstance(foi, dict) or "@iot.id" in foi:
        return obj
    enc = foi.get("encodingType", GEOJSON_TYPES[0])
    name = foi.get("name")
    feature = foi.get("feature")
    if not isinstance(name, str) or not name.strip() or enc not in GEOJSON_TYPES \
            or not isinstance(feature, dict):
        raise Invalid("FeatureOfInterest: name, encodingType application/geo+json and feature "
                      "(a GeoJSON geometry) are needed", message=Message("sta_foi"),
                      problems=[Problem("FeatureOfInterest", "name, encodingType "
                                        "application/geo+json and feature are needed",
                                        message=Message("sta_foi"))])
    geometry = feature.get("geometry", feature) if feature.get("type") == "Feature" else feature
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO features_of_interest (name, description, encoding_type, feature, "
                "properties) VALUES (%s, %s, %s, ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326), %s) "
                "RETURNING id",
                (name.strip(), str(foi.get("description") or ""), enc,
                 orjson.dumps(geometry).decode(),
                 orjson.dumps(foi["properties"]).decode()
                 if isinstance(foi.get("properties"), dict) else None)).fetchone()
    except (psycopg.errors.DataError, psycopg.errors.InternalError_,
            psycopg.errors.IntegrityError) as e:
        reason = (e.diag.message_primary or "invalid").split("\n")[0][:200]
        raise Invalid(f"FeatureOfInterest.feature: {reason}", message=Message("sta_foi"),
                      problems=[Problem("FeatureOfInterest.feature", reason,
                                        message=Message("sta_foi"))]) from None
    assert row is not None
    return {**obj, "FeatureOfInterest": {"@iot.id": row[0]}}


def create(conn: psycopg.Connection[Any], who: Principal, settings: Settings,
           items: Sequence[tuple[int, Any]], request: Any = None) -> list[Outcome]:
    """Store ITEMS ((datastream id, STA Observation object) pairs) for WHO, in one transaction;
    one Outcome per item, in order. The caller has checked may_write(WHO)."""
    if len(items) > MAX_OBSERVATIONS:
        raise BadRequest(f"at most {MAX_OBSERVATIONS} observations per request",
                         message=Message("sta_too_many", {"n": MAX_OBSERVATIONS}))
    now = dt.datetime.now(dt.UTC)
    win = window(settings)
    out = [Outcome() for _ in items]
    with conn.transaction():
        allowed = readable_datastreams(conn, who, [ds for ds, _ in items])
        rows: list[tuple[int, payloads.Row]] = []
        fois: set[int] = set()
        for i, (ds, obj) in enumerate(items):
            if ds not in allowed:
                out[i].error = "unknown_datastream"
                continue
            try:
                if isinstance(obj, dict):
                    obj = _inline_foi(conn, obj)
                row = payloads.sta_observation(ds, obj, now, win)
            except payloads.Rejection as e:
                out[i].error = e.reason
                continue
            if row.feature_of_interest_id is not None:
                fois.add(row.feature_of_interest_id)
            rows.append((i, row))
        if fois:
            known = {r[0] for r in conn.execute(
                "SELECT id FROM features_of_interest WHERE id = ANY(%s)", (sorted(fois),))}
            for i, row in rows:
                if row.feature_of_interest_id is not None and row.feature_of_interest_id not in known:
                    out[i].error = "bad_feature_of_interest"
            rows = [(i, r) for i, r in rows if out[i].error is None]
        rows = _in_partitions(conn, rows, out)
        if rows:
            ingest.prepare(conn)
            with conn.cursor() as cur:
                with cur.copy(ingest.COPY_STAGING) as cp:
                    cp.write("".join(payloads.copy_line(r) for _, r in rows))
                stored = cur.execute(ingest.STORE).fetchone()
            # The live map hears of them at the commit, as of an ingest batch (gis/live.py).
            live.notify_observations(conn, stored[3] if stored else [])
            new = _stored_now(conn, [r for _, r in rows])
            for i, r in rows:
                key = (r.datastream_id, r.phenomenon_time)
                out[i].id = observation_id(*key)
                out[i].created = key in new
                out[i].row = r
        audit.record(conn, who, "write", request=request, layer="sensors", status=201,
                     target={"channel": "sta", "observations": sum(o.created for o in out),
                             "refused": sum(o.error is not None for o in out),
                             "datastreams": sorted({ds for ds, _ in items})[:100]})
    created = {o.row.datastream_id for o in out if o.created and o.row is not None}
    if created:  # as the ingest does after its commit (gis/sensors/ingest.py, _alert)
        try:
            alerts.evaluate(conn, created)
        except psycopg.Error:
            log.warning("alert evaluation after an STA write failed", exc_info=True)
    return out


def _in_partitions(conn: psycopg.Connection[Any], rows: list[tuple[int, payloads.Row]],
                   out: list[Outcome]) -> list[tuple[int, payloads.Row]]:
    """Create the months that have no partition yet (a back-filled month); refuse rows of a
    detached (archived) month, as the ingest does."""
    months = {payloads.month_of(r.phenomenon_time) for _, r in rows}
    if not months:
        return rows
    attached = ingest.attached_months(conn)
    missing = months - attached
    if missing:
        ingest.create_partitions(conn, min(missing), max(missing))
        attached = ingest.attached_months(conn)
    kept = []
    for i, r in rows:
        if payloads.month_of(r.phenomenon_time) in attached:
            kept.append((i, r))
        else:
            out[i].error = "archived_period"
    return kept


def _stored_now(conn: psycopg.Connection[Any], rows: Sequence[payloads.Row]) -> set[tuple[int, dt.datetime]]:
    """The keys of ROWS that this transaction inserted (xmin is ours), as opposed to those that
    were there before (a repeated POST): 201 for the former, 200 for the latter."""
    keys = [(r.datastream_id, r.phenomenon_time) for r in rows]
    found = conn.execute(
        "SELECT o.datastream_id, o.phenomenon_time FROM observations o "
        "JOIN unnest(%s::bigint[], %s::timestamptz[]) AS k(ds, t) "
        "ON o.datastream_id = k.ds AND o.phenomenon_time = k.t "
        "WHERE o.xmin = pg_current_xact_id()::xid",
        ([k[0] for k in keys], [k[1] for k in keys])).fetchall()
    return {(int(a), b) for a, b in found}


def not_found(datastream_id: int) -> NotFound:
    return NotFound(f"Datastreams({datastream_id}) not found",
                    message=Message("sta_not_found", {"path": f"Datastreams({datastream_id})"}))


def refusal(reason: str) -> Invalid:
    """A single POSTed observation refused for REASON (payloads.REASONS): 422 naming it, worded
    by the catalogue's entry sta_refused_<reason> (api/messages.py)."""
    text = payloads.REASONS.get(reason, reason)
    if reason == "unknown_datastream":
        text = "no datastream with this id that you may write to"
    message = Message(f"sta_refused_{reason}")
    return Invalid(f"Observation: {text}", message=message,
                   problems=[Problem("Observation", text, message=message)], reason=reason)


__all__ = ["MAX_OBSERVATIONS", "Outcome", "WRITE_ROLES", "create", "may_write", "not_found",
           "refusal"]
