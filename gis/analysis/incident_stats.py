"""The map's statistics (`/api/incidents/stats`) read through the per-day pre-aggregate
`incident_days` (migration 0035) when it can answer exactly, else incidents.stats (raw rows).

Why: at 1,000,000 incidents a year's statistics counted ~500,000 raw rows (1.4 s; all time
2.1 s). A Vietnam-time day of incident_days holds every incident of that day by category,
severity, status and source, which is all the statistics count by, so a whole day is one small
group of rows instead of hundreds of incidents. The same rules as the heatmaps'
(aggregates.filter_ok) decide: a bbox, an administrative unit, or a row restriction the
aggregate has no column for, read raw rows. Beyond those, a day is read from the aggregate only
if it lies wholly in one window (current or previous) and in one series bucket:

- the series buckets must be whole days (a window of more than 62 hours); hour and 6-hour
  buckets split every day, so such a window reads raw rows (it is short anyway);
- the ragged ends of each window (the hours before its first Vietnam midnight and after its
  last) are read raw, as for the heatmaps;
- a window not starting at a Vietnam midnight has its bucket boundaries inside days (at most
  one a bucket, so at most 61 a window). Such a day is counted whole from the aggregate in the
  bucket of its first hours (its category, severity and status counts are right whatever the
  bucket), and only the series is corrected: the incidents from the boundary to the day's end
  are moved to the next bucket. They are counted raw (one count per day, through the btree on
  (category, reported_at)), or, when the hours before the boundary are fewer, those are counted
  raw and subtracted from the day's total in the aggregate. That reads at most half of each
  cut day, so even daily buckets from a time other than midnight (every day cut) read fewer
  rows than the raw path (30 days at 1,000,000 incidents: ~150 ms against ~260 ms).
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
    bucket_seconds,
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
class Split:
    """A whole day cut by a series bucket boundary: the incidents in [start, end) (from the
    boundary to the day's end) belong to bucket DST of their window, not DST - 1."""

    current: bool
    dst: int
    start: dt.datetime
    end: dt.datetime
    day: dt.date

    @property
    def left(self) -> tuple[dt.datetime, dt.datetime]:
        """The day's hours before the boundary."""
        return vn_day_start(self.day), self.start

    @property
    def count_left(self) -> bool:
        """Whether the hours before the boundary are fewer (those are counted raw then, and the
        rest is the day's total from the aggregate minus them)."""
        return self.start - vn_day_start(self.day) < self.end - self.start


@dataclass(frozen=True)
class Plan:
    ranges: list[tuple[dt.date, dt.date]]  # days [d1, d2) read from the aggregate
    raw: list[IncidentFilter]  # the ragged ends (and windows without a whole day)
    splits: list[Split]


def plan(f: IncidentFilter) -> Plan | None:
    """How F's statistics (its window and the previous one) are read; None when the series
    buckets are shorter than a day (then all raw)."""
    bucket = bucket_seconds(f.length)
    if bucket % DAY_SECONDS:
        return None
    out = Plan([], [], [])
    n = max(1, -(-int(f.length.total_seconds()) // bucket))
    for w in (f.previous(), f):
        days = aggregates.whole_days(w)
        if days is None:
            out.raw.append(w)
            continue
        out.ranges.append(days)
        out.raw.extend(aggregates.edges(w, days))
        a, b = vn_day_start(days[0]), vn_day_start(days[1])
        for k in range(1, n):
            t = w.start + dt.timedelta(seconds=k * bucket)
            day = t.astimezone(VN_TZ).date()
            if a < t < b and t != vn_day_start(day):
                out.splits.append(Split(w is f, k, t, vn_day_start(day + dt.timedelta(days=1)),
                                      day))
    return out


def _first_day_from(t: dt.datetime) -> dt.date:
    """The first Vietnam-time day beginning at or after instant T."""
    day = t.astimezone(VN_TZ).date()
    return day if vn_day_start(day) >= t else day + dt.timedelta(days=1)


def _dims(f: IncidentFilter, restrict: sql.Composable | None) -> tuple[sql.Composable, list]:
    """F's category, severity, status and source conditions and RESTRICT on incidents AS t.
    Without a category filter, every category is named: the planner then reads each short
    time range through the btree on (category, reported_at) instead of the BRIN index, whose
    block ranges hold weeks of incidents each (a correlated subquery per range, so it cannot
    turn it into one pass over all the category's rows either)."""
    categories = f.categories or tuple(INCIDENTS.field("category").values)
    parts: list[sql.Composable] = [sql.SQL("t.category = ANY(%s)")]
    params: list = [list(categories)]
    for name, values in (("severity", f.severities), ("status", f.statuses),
                         ("source", f.sources)):
        if values:
            parts.append(sql.SQL("{} = ANY(%s)").format(sql.Identifier("t", name)))
            params.append(list(values))
    if restrict is not None:
        parts.append(restrict)
    return sql.SQL(" AND ").join(sql.SQL("({})").format(p) for p in parts), params


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
        offsets = [int((vn_day_start(d0) - w.start).total_seconds()) for w in (f, prev)]
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
        time_col = sql.Identifier("t", INCIDENTS.time_column or "reported_at")
        q = sql.SQL(
            "SELECT {time} >= %s, t.category, t.severity::text, t.status,"
            " floor(extract(epoch FROM {time} - CASE WHEN {time} >= %s THEN %s::timestamptz"
            " ELSE %s::timestamptz END) / %s)::int, count(*)::int"
            " FROM {table} AS t WHERE {cond} GROUP BY 1, 2, 3, 4, 5"
        ).format(time=time_col, table=sql.Identifier(INCIDENTS.table), cond=cond)
        rows += conn.execute(q, [f.start, f.start, f.start, prev.start, bucket,
                                 *params]).fetchall()
    out = tally(f, rows)
    if p.splits:
        cond, params = _dims(f, restrict)
        time_col = sql.Identifier("t", INCIDENTS.time_column or "reported_at")
        q = sql.SQL(
            "SELECT r.i, (SELECT count(*)::int FROM {table} AS t"
            "  WHERE {time} >= r.a AND {time} < r.b AND {cond})"
            " FROM unnest(%s::int[], %s::timestamptz[], %s::timestamptz[]) AS r(i, a, b)"
        ).format(time=time_col, table=sql.Identifier(INCIDENTS.table), cond=cond)
        sides = [s.left if s.count_left else (s.start, s.end) for s in p.splits]
        counted: dict[int, int] = dict(conn.execute(q, [
            *params, list(range(len(p.splits))), [a for a, _ in sides],
            [b for _, b in sides]]).fetchall())
        totals: dict[dt.date, int] = {}
        left_days = sorted({s.day for s in p.splits if s.count_left})
        if left_days:
            c, ps = aggregates.agg_where(f, restrict, (left_days[0], left_days[-1]
                                                       + dt.timedelta(days=1)))
            totals = dict(conn.execute(sql.SQL(
                "SELECT t.day, sum(t.n)::int FROM {table} AS t WHERE {c} AND t.day = ANY(%s)"
                " GROUP BY 1").format(table=sql.Identifier(TABLE), c=c),
                [*ps, left_days]).fetchall())
        for i, s in enumerate(p.splits):
            n = counted.get(i, 0)
            if s.count_left:
                n = totals.get(s.day, 0) - n
            w = out.current if s.current else out.previous
            w.series[s.dst - 1] -= n
            w.series[s.dst] += n
    return out
