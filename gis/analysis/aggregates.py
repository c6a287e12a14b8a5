"""The incident pre-aggregates (migration 0027): `incidents.geom_vn`, each point projected once to
the province CRS, and `incident_cell_days`, incidents per Vietnam-time day, base cell (100 m
squares in that CRS), category, severity, status and source, kept exact by triggers.

Why: projecting every point at query time was over 90 % of a province-wide KDE or grid
request at 1,000,000 incidents, and a long window read every raw row. Here is what decides,
for one request, whether the pre-aggregates can answer it exactly, and the SQL pieces that
read them; the views (density_sql, incidents.stats) fall back to raw rows otherwise:

- the caller's row restriction must be one row_filter(incidents) can produce (it tests only
  the category, a column of the aggregate), else raw rows;
- no administrative unit and no bbox filter (neither follows cell boundaries), else raw rows;
- a cell size that is a whole multiple of the base cell on a grid whose origin is on the base
  grid (KDE rasters and square grids snap to that), else raw rows; hexagons are always raw;
- the window is cut into whole Vietnam-time days (read from the aggregate) and its ragged
  ends, the hours before the first midnight and after the last (read raw: at most two
  partial days, through the BRIN index on reported_at).

Exact is not enough to be read: the KDE and the square grids read the aggregate only while it
holds at most half as many rows as the incidents (pays); below that density the raw
rows, grouped on a parallel scan, are the faster read.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from dataclasses import dataclass, replace

import psycopg
from psycopg import sql

from gis.analysis.incidents import INCIDENTS, IncidentFilter, vn_day_start, where
from gis.fmt import VN_TZ

TABLE = "incident_cell_days"
PROJECTED_COLUMN = "geom_vn"
# The projected point's coordinates as numbers (migration 0039), read by the grids.
X_COLUMN, Y_COLUMN = "x_vn", "y_vn"


@dataclass(frozen=True)
class BaseGrid:
    srid: int
    cell: float


_GRIDS: dict[tuple[str, str, str], BaseGrid | None] = {}


def base_grid(conn: psycopg.Connection) -> BaseGrid | None:
    """The base grid of the pre-aggregates (and the SRID of geom_vn, x_vn and y_vn), or None on
    a schema before migration 0039 (cached per database: it is set once by the migrations)."""
    key = (conn.info.host, str(conn.info.port), conn.info.dbname)
    if key not in _GRIDS:
        # The projected coordinates x_vn, y_vn (migration 0039) are part of the stored
        # projection: the grids read them, the rest geom_vn.
        row = conn.execute(
            "SELECT to_regclass('incident_cell_grid') IS NOT NULL AND EXISTS (SELECT 1"
            " FROM pg_attribute WHERE attrelid = to_regclass('incidents') AND attname = 'x_vn'"
            " AND NOT attisdropped)").fetchone()
        grid = None
        if row and row[0]:
            r = conn.execute("SELECT srid, cell_m FROM incident_cell_grid").fetchone()
            grid = BaseGrid(int(r[0]), float(r[1])) if r else None
        _GRIDS[key] = grid
    return _GRIDS[key]


_PRESENT: set[tuple[str, str, str, str]] = set()


def present(conn: psycopg.Connection, table: str) -> bool:
    """Whether the database has TABLE (its migration has run): asked until it has, then
    remembered per database (a pre-aggregate's readers fall back to raw rows without it)."""
    key = (conn.info.host, str(conn.info.port), conn.info.dbname, table)
    if key not in _PRESENT:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [table]).fetchone()
        if not (row and row[0]):
            return False
        _PRESENT.add(key)
    return True


def stored_srid(conn: psycopg.Connection) -> int | None:
    grid = base_grid(conn)
    return grid.srid if grid else None


def restrict_ok(conn: psycopg.Connection, restrict: sql.Composable | None,
                columns: tuple[str, ...] = ("category", "severity", "status", "source")) -> bool:
    """Whether RESTRICT (alias t) reads only COLUMNS, which the aggregate has: it must be one of
    the conditions layers.access.row_filter can make for incidents (its row rules on those
    columns, any subset). Anything else (a caller's own condition) sends the request to the
    raw rows."""
    if restrict is None:
        return True
    if INCIDENTS.row_access is not None:
        return False
    rules = [r for r in INCIDENTS.row_rules if r.field in columns]
    text = restrict.as_string(conn)
    for k in range(1, len(rules) + 1):
        for subset in itertools.combinations(rules, k):
            made = sql.SQL(" AND ").join(
                sql.SQL("{} <> ALL({})").format(sql.Identifier("t", r.field),
                                                sql.Literal(list(r.values))) for r in subset)
            if made.as_string(conn) == text:
                return True
    return False


def filter_ok(conn: psycopg.Connection, f: IncidentFilter,
              restrict: sql.Composable | None) -> bool:
    """Whether F's conditions other than time can be read off the aggregate."""
    return f.bbox is None and f.unit is None and restrict_ok(conn, restrict)


# An aggregate (incident_cell_days, incident_cell_months) is read instead of the raw rows only
# while it holds at most this share of their number. incident_cell_days' key (day, 100 m cell,
# category, severity, status, source) is so fine that it held 0.99-1.0 rows per incident at
# 50,000, 1,000,000 and 10,000,000 incidents; and since migration 0039 the raw path groups the
# stored coordinates on a parallel scan. A year's KDE at 10,000,000 incidents: 2,650,000
# aggregate rows on one process 1,060 ms, the 2,690,000 raw rows in parallel 680 ms
# (bench/README.md, "Every benchmark at full scale"); per row the aggregate costs about 1.6
# times as much, so it pays below about 0.6 rows per incident.
PAY_RATIO = 0.5
_PAYS_TTL_S = 600.0
_PAYS: dict[tuple[str, str, str, str], tuple[float, bool]] = {}

# The rows of table T, partitioned or not: its leaf tables' (a partitioned parent's own
# reltuples, when ANALYZE has set it, repeats their sum).
_ROWS = sql.SQL(
    "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0) FROM pg_class c WHERE c.relkind = 'r'"
    " AND (c.oid = to_regclass({t}) OR c.oid IN (SELECT relid FROM pg_partition_tree(to_regclass({t}))))")


def pays(conn: psycopg.Connection, table: str = TABLE) -> bool:
    """Whether TABLE (a pre-aggregate) holds few enough rows per incident to be read instead of
    the raw rows (PAY_RATIO), from the planner's row counts of both (pg_class.reltuples, kept
    by ANALYZE and autovacuum), cached per database and table for ten minutes. Unknown counts
    (never analysed) read the raw rows, which are always exact."""
    key = (conn.info.host, str(conn.info.port), conn.info.dbname, table)
    now = time.monotonic()
    cached = _PAYS.get(key)
    if cached is None or now - cached[0] > _PAYS_TTL_S:
        agg, raw = (float(conn.execute(_ROWS.format(t=sql.Literal(t))).fetchone()[0])  # type: ignore[index]
                    for t in (table, INCIDENTS.table))
        cached = (now, raw > 0 and agg <= PAY_RATIO * raw)
        _PAYS[key] = cached
    return cached[1]


def whole_days(f: IncidentFilter) -> tuple[dt.date, dt.date] | None:
    """The Vietnam-time days [d1, d2) lying wholly inside F's window, or None if there is none
    (or if an end lies in the first or last day a date can hold: such a window reads raw rows)."""
    try:
        start = f.start.astimezone(VN_TZ)
        d1 = start.date()
        if vn_day_start(d1) < f.start:
            d1 += dt.timedelta(days=1)
        d2 = f.end.astimezone(VN_TZ).date()
    except OverflowError:
        return None
    if d2 <= d1:
        return None
    return d1, d2


def edges(f: IncidentFilter, days: tuple[dt.date, dt.date]) -> list[IncidentFilter]:
    """The parts of F's window outside DAYS (empty ones left out): read from raw rows."""
    out = []
    a, b = vn_day_start(days[0]), vn_day_start(days[1])
    if f.start < a:
        out.append(replace(f, end=a))
    if b < f.end:
        out.append(replace(f, start=b))
    return out


def month_at_or_after(day: dt.date) -> dt.date:
    """The first day of a month, DAY itself or the next one."""
    return day if day.day == 1 else (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def year_at_or_after(day: dt.date) -> dt.date:
    """The first day of a year, DAY itself or the next one's 1 January."""
    return day if (day.month, day.day) == (1, 1) else day.replace(year=day.year + 1, month=1,
                                                                   day=1)


# Whether any incident lies in [a, b): the partitions' BRIN index on reported_at answers an
# empty range without reading a row, and a populated one at its first row. (The nearest
# incident by max()/min() would have scanned whole partitions: no B-tree leads with the time.)
_ANY_IN = sql.SQL("EXISTS (SELECT FROM {} AS t WHERE t.reported_at >= %s AND t.reported_at < %s)"
                  ).format(sql.Identifier(INCIDENTS.table))


def widen(conn: psycopg.Connection, f: IncidentFilter
          ) -> tuple[IncidentFilter, tuple[IncidentFilter, ...]]:
    """F's window widened at each end to the farthest Vietnam-time year, month or day boundary
    with no incident at all between it and the window, and those widenings.

    Why: a window's ends rarely fall on midnights ("all time" starts at the first incident,
    most windows end now), so its ragged months and days were read off the finer aggregates
    and raw rows; when nothing lies beyond an end up to a period boundary, the window may as
    well end there, and its periods come whole from the coarsest aggregate. The caller
    subtracts the widenings' raw rows (empty when probed; a row written since would be
    subtracted again in the same snapshot), so the answer is F's, exactly."""
    first = f.start.astimezone(VN_TZ).date()  # the boundaries at or before the start ...
    starts = [vn_day_start(d) for d in (first.replace(month=1, day=1), first.replace(day=1),
                                        first)]
    try:
        last = f.end.astimezone(VN_TZ).date()  # ... and at or after the end, farthest first
        if vn_day_start(last) < f.end:
            last += dt.timedelta(days=1)
        month = month_at_or_after(last)
        ends = [vn_day_start(d) for d in (year_at_or_after(month), month, last)]
    except (OverflowError, ValueError):  # an end in the last days of year 9999 stays as it is
        ends = []
    ranges = [(t, f.start) for t in starts] + [(f.end, t) for t in ends]
    row = conn.execute(sql.SQL("SELECT {}").format(sql.SQL(", ").join([_ANY_IN] * len(ranges))),
                       [v for r in ranges for v in r]).fetchone()
    assert row is not None
    start = next((t for t, hit in zip(starts, row[:3], strict=True) if not hit), f.start)
    end = next((t for t, hit in zip(ends, row[3:], strict=True) if not hit), f.end)
    out = tuple(w for w in (replace(f, start=start, end=f.start),
                            replace(f, start=f.end, end=end)) if w.start < w.end)
    return replace(f, start=start, end=end), out


def agg_where(f: IncidentFilter, restrict: sql.Composable | None,
              days: tuple[dt.date, dt.date]) -> tuple[sql.Composable, list]:
    """WHERE clause on incident_cell_days AS t for F's filters over DAYS."""
    parts: list[sql.Composable] = [sql.SQL("t.day >= %s"), sql.SQL("t.day < %s")]
    params: list = [days[0], days[1]]
    for name, values in (("category", f.categories), ("severity", f.severities),
                         ("status", f.statuses), ("source", f.sources)):
        if values:
            parts.append(sql.SQL("{} = ANY(%s)").format(sql.Identifier("t", name)))
            params.append(list(values))
    if restrict is not None:
        parts.append(restrict)
    return sql.SQL(" AND ").join(sql.SQL("({})").format(p) for p in parts), params


def raw_where(parts: list[IncidentFilter], restrict: sql.Composable | None
              ) -> tuple[sql.Composable, list]:
    """WHERE clause on incidents AS t for the raw parts of a window (FALSE if none)."""
    if not parts:
        return sql.SQL("FALSE"), []
    conds, params = [], []
    for p in parts:
        c, ps = where(p, restrict)
        conds.append(sql.SQL("({})").format(c))
        params.extend(ps)
    return sql.SQL(" OR ").join(conds), params


def table() -> sql.Composable:
    return sql.SQL("{} AS t").format(sql.Identifier(TABLE))


def multiple(size: float, base: float) -> int | None:
    """SIZE / BASE when it is a whole number (a cell made of base cells), else None."""
    k = round(size / base)
    return k if k >= 1 and abs(k * base - size) < 1e-9 * size else None
