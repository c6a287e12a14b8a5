"""SensorThings reads: a resource path and its query options in, the response body out.

    Things                         a collection (value, @iot.count, @iot.nextLink)
    Things(1)                      an entity
    Things(1)/Datastreams          a related collection; Observations(5)/Datastream an entity
    Things(1)/name                 one property: {"name": ...}
    Things(1)/name/$value          its raw value (text/plain; JSON for objects and geometries)
    Things/$ref, Things(1)/Datastreams/$ref, Observations(5)/Datastream/$ref   selfLinks only

Every statement runs in a transaction with a statement timeout (STATEMENT_TIMEOUT_MS): a query
that would hold the database is stopped and answered 503 with Retry-After, in the user's
language (api/errors.py: QueryCanceled), never left to run. $top defaults to 100 and is served
in pages of at most 10,000 (odata.DEFAULT_TOP, MAX_TOP), each page with its @iot.nextLink while
entities remain.

$count=true, the rule: exact or absent, never an estimate.
- Observations of one Datastream (Datastreams(7)/Observations) or all Observations, without
  $filter: the number kept in datastream_latest by the ingest, exact and read without a scan;
- anything else (the other entity sets are small; filtered Observations): count(*) under a
  1 s timeout (COUNT_TIMEOUT_MS), and @iot.count is left out when it does not finish in time.
Inside $expand, `$count=true` counts that expansion's related entities (a count per parent).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors, sql

from gis.sta import odata, queries
from gis.sta.model import DATASTREAM, ENTITIES, Prop, visible
from gis.sta.odata import Options
from gis.sta.queries import Compiler, Step
from layers.access import Principal
from layers.errors import BadRequest, Message, NotFound

__all__ = ["STATEMENT_TIMEOUT_MS", "Resource", "Response", "parse_path", "read", "root_document"]

STATEMENT_TIMEOUT_MS = 10_000
COUNT_TIMEOUT_MS = 1_000
VERSION = "v1.1"


@dataclass(frozen=True)
class Resource:
    """A parsed resource path: the entity steps, then what of them is asked for."""

    steps: tuple[Step, ...]
    prop: str | None = None  # a property of the last (single) entity
    value: bool = False  # .../property/$value
    ref: bool = False  # .../$ref

    @property
    def single(self) -> bool:
        last = self.steps[-1]
        return last.id is not None or (last.nav is not None and not last.nav.many)


@dataclass(frozen=True)
class Response:
    body: bytes
    media_type: str = "application/json"


_SEGMENT = re.compile(r"([A-Za-z]+)(?:\((.*)\))?")


def _not_found(path: str) -> NotFound:
    return NotFound(f"{path}: no such resource", message=Message("sta_not_found", {"path": path}))


def parse_path(path: str) -> Resource:
    """PATH (after /sta/v1.1/) as a Resource; a path that names nothing is a 404."""
    segments = [s for s in path.strip("/").split("/") if s != ""]
    if not segments:
        raise _not_found(path)
    steps: list[Step] = []
    prop: str | None = None
    value = ref = False
    for i, seg in enumerate(segments):
        if seg == "$ref":
            if i != len(segments) - 1 or prop is not None or not steps:
                raise _not_found(path)
            ref = True
            continue
        if seg == "$value":
            if prop is None or i != len(segments) - 1:
                raise _not_found(path)
            value = True
            continue
        if prop is not None:
            raise _not_found(path)  # no sub-properties in paths
        m = _SEGMENT.fullmatch(seg)
        if not m:
            raise _not_found(path)
        name, id_text = m.group(1), m.group(2)
        entity_id = _parse_id(id_text, path) if id_text is not None else None
        if not steps:
            entity = ENTITIES.get(name)
            if entity is None:
                raise _not_found(path)
            steps.append(Step(entity, entity_id))
            continue
        last = steps[-1]
        single = last.id is not None or (last.nav is not None and not last.nav.many)
        if not single:
            raise _not_found(path)
        nav = last.entity.navs.get(name)
        if nav is not None:
            if entity_id is not None and not nav.many:
                raise _not_found(path)
            steps.append(Step(ENTITIES[nav.target], entity_id, nav, name))
            continue
        if id_text is None and (name in last.entity.props or name in ("id", "@iot.id")):
            prop = name
            continue
        raise _not_found(path)
    return Resource(tuple(steps), prop, value, ref)


def _parse_id(text: str, path: str) -> int:
    """Our ids are numbers; `'x'` (a string id) names nothing here."""
    if re.fullmatch(r"-?\d{1,19}", text.strip()):
        return int(text)
    if re.fullmatch(r"'[^']*'", text.strip()):
        raise _not_found(path)
    raise BadRequest(f"{text!r} is not an id (a whole number)", parameter="id",
                     message=Message("sta_id", {"value": text[:40]}))


def _timeout(conn: psycopg.Connection[Any], ms: int) -> None:
    conn.execute("SELECT set_config('statement_timeout', %s, true)", (f"{ms}ms",))


def read(conn: psycopg.Connection[Any], who: Principal, base: str, path: str,
         params: Mapping[str, str], timeout_ms: int = STATEMENT_TIMEOUT_MS) -> Response:
    """The response to GET BASE/PATH?PARAMS for WHO. BASE: the service root's absolute URL
    (`http://host/sta/v1.1`), which every link starts with."""
    resource = parse_path(path)
    options = odata.parse_options(params)
    comp = Compiler(who, base)
    with conn.transaction():
        _timeout(conn, timeout_ms)
        if resource.prop is not None:
            return _property(conn, comp, resource)
        if resource.single:
            query = queries.entity_sql(comp, resource.steps, options, ref=resource.ref)
            row = conn.execute(query).fetchone()
            if row is None:
                raise _not_found(path)
            return Response(row[0].encode())
        return _collection(conn, comp, resource, options, base, path, timeout_ms)


def _property(conn: psycopg.Connection[Any], comp: Compiler, resource: Resource) -> Response:
    entity = resource.steps[-1].entity
    assert resource.prop is not None
    name = resource.prop
    prop: Prop = entity.props[name] if name in entity.props else Prop("id", entity.id_sql)
    out_name = "@iot.id" if name in ("id", "@iot.id") else name
    row = conn.execute(queries.property_sql(comp, resource.steps, prop)).fetchone()
    if row is None:
        raise _not_found(entity.plural)
    text: str = row[0]
    if not resource.value:
        return Response(b'{"' + out_name.encode() + b'":' + text.encode() + b"}")
    if text.startswith('"'):  # a JSON string: its characters, as text
        return Response(json.loads(text).encode(), "text/plain; charset=utf-8")
    media = "application/json" if text[:1] in "{[" else "text/plain; charset=utf-8"
    return Response(text.encode(), media)


def _collection(conn: psycopg.Connection[Any], comp: Compiler, resource: Resource,
                options: Options, base: str, path: str, timeout_ms: int) -> Response:
    wanted = options.top if options.top is not None else odata.DEFAULT_TOP
    top = min(wanted, odata.MAX_TOP)
    rows = [r[0] for r in conn.execute(
        queries.collection_sql(comp, resource.steps, options, top, ref=resource.ref))]
    more = len(rows) > top > 0  # $top=0 asks for no entities (a count): no next page
    rows = rows[:top]
    parts: list[bytes] = []
    if options.count:
        n = _count(conn, comp, resource.steps, options, timeout_ms)
        if n is not None:
            parts.append(b'"@iot.count":' + str(n).encode())
    if more:
        nxt = f"{base}/{path.strip('/')}?{queries.next_query(options, top, options.skip + top)}"
        parts.append(b'"@iot.nextLink":' + json.dumps(nxt).encode())
    parts.append(b'"value":[' + ",".join(rows).encode() + b"]")
    return Response(b"{" + b",".join(parts) + b"}")


def _count(conn: psycopg.Connection[Any], comp: Compiler, steps: tuple[Step, ...],
           options: Options, timeout_ms: int) -> int | None:
    cheap = queries.cheap_observation_count(comp, steps, options)
    if cheap is not None:
        row = conn.execute(cheap).fetchone()
        return int(row[0]) if row else 0
    query = queries.count_sql(comp, steps, options)
    try:
        with conn.transaction():  # a savepoint: a cancelled count leaves the read intact
            _timeout(conn, min(COUNT_TIMEOUT_MS, timeout_ms))
            row = conn.execute(query).fetchone()
            _timeout(conn, timeout_ms)
    except errors.QueryCanceled:
        return None
    return int(row[0]) if row else 0


def sensitive_reader(conn: psycopg.Connection[Any], who: Principal) -> bool:
    """Whether WHO's reads of datastreams may carry restricted data (a restricted or secret
    datastream WHO may see exists): those reads are in the audit log, as every read of
    restricted data is. Anonymous and ordinary staff reads are not (nothing to query)."""
    if who.anonymous:
        return False
    vis = visible(DATASTREAM, "d", who)
    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM datastreams d WHERE d.access IN "
                    "('restricted', 'secret') AND {})").format(vis if vis is not None else sql.SQL("true"))
    row = conn.execute(query).fetchone()
    return bool(row and row[0])


def touches_datastreams(path: str, params: Mapping[str, str]) -> bool:
    """Whether a request reaches Datastreams or Observations (by its path or an $expand or a
    $filter naming them)."""
    text = path + " " + " ".join(params.get(k, "") for k in ("$expand", "$filter"))
    return any(name in text for name in ("Datastream", "Observation"))


# --- the service root ------------------------------------------------------------------------------

CONFORMANCE = [
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/create-observations-via-dataarray",
]
# Publishing an Observation to v1.1/Datastreams(<id>)/Observations creates it: the ingest
# workers subscribe to that topic (gis/sensors). Receiving new observations by subscribing is not
# claimed: subscribers get what is published to the topic and what is POSTed over HTTP
# (gis/sta/announce.py), but not what a gateway sends on its compact topic.
MQTT_CREATE = ("http://www.opengis.net/spec/iot_sensing/1.1/req/create-observations-via-mqtt/"
               "observations-creation")


def mqtt_endpoint(url: str) -> str | None:
    """The broker's URL as clients may be told it: scheme, host and port, never credentials."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.hostname}:{parts.port or (8883 if parts.scheme == 'mqtts' else 1883)}"


def root_document(base: str, mqtt_url: str | None = None) -> dict[str, Any]:
    """The service root (9.2.1): the entity sets with their URLs, and serverSettings (the
    conformance classes, the MQTT broker when there is one)."""
    conformance = list(CONFORMANCE)
    settings: dict[str, Any] = {"conformance": conformance}
    endpoint = mqtt_endpoint(mqtt_url) if mqtt_url else None
    if endpoint:
        conformance.append(MQTT_CREATE)
        settings[MQTT_CREATE] = {"endpoints": [endpoint]}
    return {
        "value": [{"name": e.plural, "url": f"{base}/{e.plural}"} for e in ENTITIES.values()],
        "serverSettings": settings,
    }


def as_sql(query: sql.Composable, conn: psycopg.Connection[Any]) -> str:
    """The SQL text of QUERY (debugging and EXPLAIN in the benchmarks)."""
    return query.as_string(conn)
