"""One datastream's time series for the map's chart: the resolution follows the range, never
more than MAX_POINTS points, under the datastream's access.

Why the resolution is chosen here and not by the client: the raw observations of a year are
hundreds of thousands of rows (a station every minute), the rollups that the ingest keeps
(observation_hourly, observation_daily in Vietnam days) hold the same means, minima and maxima at
a few hundred rows. So:

- up to RAW_SPAN (two days): the raw readings, when there are at most MAX_POINTS of them (else
  hourly);
- up to HOURLY_SPAN (62 days: 1,488 hours): hourly means with their min and max;
- beyond, up to MAX_SPAN (five years: 1,827 days): daily means (days from midnight to midnight
  in Vietnam time, as the rollup keeps them).

Each point is [epoch seconds (UTC), mean, min, max]; a raw reading has all three equal. The
thresholds are the alert rules' (the chart's lines, alert_queries.LIMITS) plus the station's
own map threshold for its main parameter.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg.rows import dict_row

from gis import fmt
from gis.sensors import alert_queries, alerts
from gis.sensors import series_queries as q
from layers.access import Principal
from layers.errors import BadRequest, Message, NotFound

MAX_POINTS = 2000
RAW_SPAN = dt.timedelta(days=2)
HOURLY_SPAN = dt.timedelta(days=62)
MAX_SPAN = dt.timedelta(days=1827)
PRESETS = {"day": dt.timedelta(days=1), "week": dt.timedelta(days=7),
           "month": dt.timedelta(days=30)}


def resolution(span: dt.timedelta) -> str:
    """The resolution a range is read at (before the raw range's size is known)."""
    if span <= RAW_SPAN:
        return "raw"
    if span <= HOURLY_SPAN:
        return "hour"
    return "day"


def window(preset: str | None, start: dt.datetime | None, end: dt.datetime | None,
           now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The range asked for: a preset ending now, or START to END (default now); a time without
    an offset is Vietnam time. BadRequest naming the parameter otherwise."""
    if preset is not None and (start is not None or end is not None):
        raise BadRequest.for_field("series_range_or_period", "range",
                                   "give range, or start and end, not both")
    if preset is not None:
        return now - PRESETS[preset], now
    if start is None:
        raise BadRequest.for_field("series_start_required", "start",
                                   "required without range (day, week or month)")
    start, end = _aware(start), _aware(end) if end is not None else now
    if end <= start:
        raise BadRequest.for_field("period_empty", "end", "must be after start",
                                   start=fmt.datetime(start), end=fmt.datetime(end))
    if end - start > MAX_SPAN:
        raise BadRequest.for_field("period_too_long", "end",
                                   f"the period may not span more than {MAX_SPAN.days} days",
                                   days=MAX_SPAN.days)
    return start, end


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=fmt.VN_TZ)


def series(conn: psycopg.Connection[Any], who: Principal, datastream: int, start: dt.datetime,
           end: dt.datetime, now: dt.datetime | None = None) -> dict[str, Any]:
    """The chart of DATASTREAM from START to END for WHO (NotFound when WHO may not read it)."""
    at = now or dt.datetime.now(dt.UTC)
    span = {"ds": datastream, "start": start, "end": end}
    with conn.cursor(row_factory=dict_row) as cur:
        meta = cur.execute(q.DATASTREAM.format(visible=alerts.visible(who)),
                           {"ds": datastream}).fetchone()
        if meta is None:
            raise NotFound(f"datastream {datastream} not found",
                           message=Message("datastream_not_found", {"id": datastream}))
        limits = cur.execute(alert_queries.LIMITS, {"ds": datastream, "now": at}).fetchall()
    chosen = resolution(end - start)
    points: list[tuple[float, float, float, float]] = []
    if chosen == "raw":
        points = conn.execute(q.RAW, {**span, "limit": MAX_POINTS + 1}).fetchall()
        if len(points) > MAX_POINTS:
            chosen = "hour"
    if chosen == "hour":
        points = conn.execute(q.HOURLY, span).fetchall()
    elif chosen == "day":
        points = conn.execute(q.DAILY, span).fetchall()
    thresholds = [{"code": r["code"], "lower": r["lower_limit"], "upper": r["upper_limit"],
                   "statistic": r["statistic"], "window_minutes": r["window_minutes"],
                   "name": {"vi": r["name_vi"], "en": r["name_en"]}, "source": r["source"]}
                  for r in limits]
    if meta["station_threshold"] is not None:
        thresholds.append({"code": "station", "lower": None, "upper": meta["station_threshold"],
                           "statistic": None, "window_minutes": None,
                           "name": {"vi": "Ngưỡng cảnh báo của trạm",
                                    "en": "Station's warning threshold"}, "source": None})
    return {
        "datastream": {"id": meta["id"], "name": meta["name"], "property": meta["property"],
                       "property_name": {"vi": meta["property_vi"], "en": meta["property_en"]},
                       "unit": meta["unit"], "station": meta["station"],
                       "station_code": meta["station_code"], "station_name": meta["station_name"]},
        "access": meta["access"], "start": start, "end": end, "timezone": fmt.VN_TZ_NAME,
        "resolution": chosen,
        "columns": ["time", "mean", "min", "max"],
        "points": [list(p) for p in points[:MAX_POINTS]],
        "thresholds": thresholds,
    }
