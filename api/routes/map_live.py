"""The live map: one event stream per map and the sensor chart's series.

  GET /api/map/events                  server-sent events for the caller's map: `ready`, then
                                       `sensor`, `alert`, `report`, `incident`, `camera`,
                                       `congestion`, `detection`, and `resync` (refetch all)
  GET /api/map/series?datastream=ID    one datastream's readings for the chart: range=day|week|
                                       month, or start (and end), resolution by range

Both answer under the caller's access, as every way out: the stream reads each event again for
its caller (gis/maps/live.py) from the one LISTEN connection of the process (gis/live.py); the
series is a 404 for a datastream the caller may not read.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal, TypeVar

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import Field

from api.deps import QueryModel, ReadConn, SettingsDep, Who, app_pool, query
from api.route_docs import JSON, ok, problems
from gis import audit, live
from gis.maps import live as map_live
from gis.sensors import series as chart

router = APIRouter(prefix="/api/map", tags=["map"])
# Seconds between comment lines that keep an idle event stream open through proxies.
KEEPALIVE_SECONDS = 15.0
T = TypeVar("T")


def _sse(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


@router.get("/events", responses={
    200: {"content": {"text/event-stream": {}}, "description": (
        "an endless event stream: `sensor` {datastream, station, property, unit, value, time, "
        "main, state, stale}, `alert` {event: opened|closed|acknowledged, id, station, ...}, "
        "`report` / `incident` {event, id, category, severity, status, lon, lat, ...}, "
        "`camera` {id, status, last_seen}, `congestion` {segments: [[road id, class, speed "
        "ratio]]}, `detection` {id, camera, category, incident}; `resync`: refetch everything")},
    **problems(503)})
async def map_events(request: Request, who: Who, settings: SettingsDep) -> StreamingResponse:
    """Server-sent events for the map, only what the caller may see (a guest: public layers
    and public datastreams): sensor readings (at most one event per datastream per second),
    alerts, reports and incidents (never a security event), camera status, congestion and
    camera detections. Every event is read again under the caller's access before it is sent."""
    listener = live.process_listener(request.app.state, settings.database_url)
    pool = app_pool(request)
    inbox = listener.subscribe()
    if not who.anonymous:  # a stream that may carry datastreams that are not public: audited
        await audit.record_async(who, "read", request=request, layer=map_live.SENSORS,
                                 status=200, target=audit.read_target("map-events"))

    async def db(fn: Callable[..., T], *args: Any) -> T:
        def run() -> T:
            with pool.connection() as conn:
                return fn(conn, who, *args)
        return await asyncio.to_thread(run)

    async def stream() -> AsyncIterator[str]:
        coalescer = map_live.Coalescer()
        last = time.monotonic()
        try:
            yield "retry: 3000\n\n"
            ready = await listener.wait_ready(10.0)
            yield _sse("ready", {"listening": ready})
            while not await request.is_disconnected():
                now = time.monotonic()
                pending = coalescer.wait(now)
                timeout = KEEPALIVE_SECONDS if pending is None else min(pending, KEEPALIVE_SECONDS)
                out: list[map_live.Event] = []
                try:
                    channel, event = await asyncio.wait_for(inbox.get(), timeout)
                except TimeoutError:
                    channel, event = "", None
                if event is not None:
                    if event.get("event") == "resync" and channel == live.ANY_CHANNEL:
                        out.append(("resync", {}))
                    elif channel == live.LIVE_CHANNEL and event.get("kind") == "observations":
                        coalescer.add(map_live.observation_ids(event), time.monotonic())
                    else:
                        out.extend(await db(map_live.translate, channel, event))
                due = coalescer.due(time.monotonic())
                if due:
                    out.extend(await db(map_live.sensor_events, due))
                for name, data in out:
                    yield _sse(name, data)
                    last = time.monotonic()
                if time.monotonic() - last >= KEEPALIVE_SECONDS:
                    yield ": keep-alive\n\n"
                    last = time.monotonic()
        finally:
            listener.unsubscribe(inbox)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


class SeriesQuery(QueryModel):
    """GET /api/map/series: which datastream and which range."""

    datastream: Annotated[int, Field(ge=1, le=2**62, description="the datastream's id")]
    range: Annotated[Literal["day", "week", "month"] | None, Field(
        description="the last day, week (7 days) or month (30 days), ending now")] = None
    start: Annotated[dt.datetime | None, Field(description=(
        "start of a chosen range (ISO 8601; without an offset: Vietnam time)"))] = None
    end: Annotated[dt.datetime | None, Field(description=(
        "end of a chosen range (default now; at most 5 years after start)"))] = None


SERIES_SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "datastream": {"type": "object"}, "resolution": {"enum": ["raw", "hour", "day"]},
    "timezone": {"type": "string"}, "columns": {"type": "array"},
    "points": {"type": "array", "items": {"type": "array"},
               "description": "[epoch seconds (UTC), mean, min, max], at most 2,000"},
    "thresholds": {"type": "array", "items": {"type": "object"}}}}


@router.get("/series", response_class=Response, responses={
    200: ok("One datastream's readings for the chart", JSON, SERIES_SCHEMA),
    **problems(400, 404, 503)})
def series(request: Request, who: Who, conn: ReadConn,
           qm: Annotated[SeriesQuery, query(SeriesQuery)]) -> Response:
    """One datastream's readings from the raw observations (a range of up to two days with at
    most 2,000 readings), the hourly rollup (up to 62 days) or the daily one (days in Vietnam
    time, up to five years), with the thresholds that apply to it (the chart's lines)."""
    now = dt.datetime.now(dt.UTC)
    start, end = chart.window(qm.range, qm.start, qm.end, now)
    body = chart.series(conn, who, qm.datastream, start, end, now)
    if body["access"] != "public":  # a datastream restricted on its own: the read is audited
        audit.record(conn, who, "read", request=request, layer=map_live.SENSORS, status=200,
                     target=audit.read_target("map-series", ids=[qm.datastream], filter={
                         "start": start.isoformat(), "end": end.isoformat()}))
    return Response(orjson.dumps(body), media_type=JSON,
                    headers={"Cache-Control": "private, max-age=0"})
