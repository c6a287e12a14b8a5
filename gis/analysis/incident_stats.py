"""The map's statistics (`/api/incidents/stats`) read through the per-day pre-aggregate
`incident_days` (migration 0035) when it can answer exactly, else incidents.stats (raw rows).

Why: at 1,000,000 incidents a year's statistics counted ~500,000 raw rows (1.4 s; all time
2.1 s). A Vietnam-time day of incident_days holds every incident of that day by category,
severity, status and source, which is all the statistics count by, so a whole day is one small
group of rows instead of hundreds of incidents. The same rules as the heatmaps'
(aggregates.filter_ok) decide: a bbox, an administrative unit, or a row restriction the
aggregate has no column for, read raw rows. Beyond those:

- the series buckets must be whole days (a window of more than 62 hours); hour and 6-hour
  buckets split every day, so such a window reads raw rows (it is short anyway);
- the ragged ends of each window (the hours before its first Vietnam midnight and after its
  last) are read raw, as for the heatmaps.

Every whole day lies in one series bucket, because the buckets are calendar days, weeks and
30-day spans that begin at a Vietnam midnight (incidents.series_start). Until 2026-12-05 they
were slices from the window's own start: each bucket boundary then cut a day, whose two parts
were counted raw, one correlated count per cut day; at 10,000,000 incidents that was most of a
year's statistics (bench/README.md, "Calendar buckets").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg
from psycopg import sql

from gis import db
from gis.analysis import aggregates
from gis.analysis.incidents import (
    INCIDENTS,
    IncidentFilter,
    Stats,
    bucket_params,
    bucket_seconds,
    bucket_sql,
    series_start,
    tally,
    vn_day_start,
)
from gis.analysis.incidents import stats as raw_stats
from gis.fmt import VN_TZ

TABLE = "incident_days"
DAY_SECONDS = 86400

def present(conn: psycopg.Connection) -> bool:
    """Whether the schema has incident_days (migration 0035)."""
    return aggregates.present(conn, TABLE)


@dataclass(frozen=True)
class Plan:
    ranges: list[tuple[dt.date, dt.date]]  # days [d1, d2) read from the aggregate
    raw: list[IncidentFilter]  # the ragged ends (and windows without a whole day)


def plan(f: IncidentFilter) -> Plan | None:
    """How F's statistics (its window and the previous one) are read; None when the series
    buckets are shorter than a day (then all raw)."""
    if bucket_seconds(f.length) % DAY_SECONDS:
        return None
    out = Plan([], [])
    for w in (f.previous(), f):
        days = aggregates.whole_days(w)
        if days is None:
            out.raw.append(w)
            continue
        out.ranges.append(days)
        out.raw.extend(aggregates.edges(w, days))
    return out


def _first_day_from(t: dt.datetime) -> dt.date:
    """The first Vietnam-time day beginning at or after instant T."""
    day = t.astimezone(VN_TZ).date()
    return day if vn_day_start(day) >= t else day + dt.timedelta(days=1)


def stats(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
          area_unit_id: int | None = None, *, use_aggregates: bool = True) -> Stats:
    """incidents.stats, with the whole days read from incident_days when that is exact."""
    p = plan(f) if (use_aggregates and area_unit_id is None and present(conn)
                    and aggregates.filter_ok(conn, f, restrict)) else None
    if p is None:
        return raw_stats(conn, f, restrict, area_unit_id)
    prev = f.previous()
    bucket = bucket_seconds(f.length)
    rows: list[tuple] = []
    if p.ranges:
        conds, params = [], []
        for days in p.ranges:
            c, ps = aggregates.agg_where(f, restrict, days)
            conds.append(sql.SQL("({})").format(c))
            params.extend(ps)
        # A day's bucket by integer arithmetic on the date, not by converting each row's day
        # to an instant (AT TIME ZONE and extract per row were 3 µs a row: 420 ms for two
        # years' 140,000 rows at 1,000,000 incidents). Exact: Vietnam has kept UTC+7 without
        # daylight saving since 1975, so day d begins (d - d0) × 86,400 s after day d0.
        d0 = min(days[0] for days in p.ranges)
        cut = _first_day_from(f.start)
        offsets = [int((vn_day_start(d0) - series_start(w.start, bucket)).total_seconds())
                   for w in (f, prev)]
        q = sql.SQL(
            "SELECT t.day >= %s, t.category, t.severity::text, t.status,"
            " floor(((t.day - %s::date)::int8 * {day} + CASE WHEN t.day >= %s THEN %s::int8"
            " ELSE %s::int8 END) / %s::float8)::int, sum(t.n)::int"
            " FROM {table} AS t WHERE {conds} GROUP BY 1, 2, 3, 4, 5"
        ).format(day=sql.Literal(DAY_SECONDS), table=sql.Identifier(TABLE),
                 conds=sql.SQL(" OR ").join(conds))
        with db.grouping(conn):  # two years' days at 10,000,000 incidents: 171,000 rows
            rows += conn.execute(q, [cut, d0, cut, *offsets, bucket, *params]).fetchall()
    if p.raw:
        cond, params = aggregates.raw_where(p.raw, restrict)
        q = sql.SQL(
            "SELECT {time} >= %s, t.category, t.severity::text, t.status, {b}, count(*)::int"
            " FROM {table} AS t WHERE {cond} GROUP BY 1, 2, 3, 4, 5"
        ).format(time=sql.Identifier("t", INCIDENTS.time_column or "reported_at"),
                 b=bucket_sql("t"), table=sql.Identifier(INCIDENTS.table), cond=cond)
        rows += conn.execute(q, [f.start, *bucket_params(f), *params]).fetchall()
    return tally(f, rows)
