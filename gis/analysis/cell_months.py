"""The kernel density's and the square grids' counts read off `incident_cell_months` (migration
0044): incidents per Vietnam-time month and base cell (incident_cell_grid, 100 m), one count
column per category.

Why: a year's KDE on 100 m cells at 10,000,000 incidents counted 2.7 million raw points (1.7 s
per request on 2 cores, goal 1 s), and incident_cell_days, keyed by day and four attributes,
holds about one row per incident. Per month and cell a year is a quarter of that. A window is
widened to whole periods where nothing lies beyond its ends (aggregates.widen, as the map's
heat cells), its whole months come from here, summing the columns of the categories the caller
counts, and its other days and hours from the raw rows' stored coordinates, less the
widenings' raw rows.

What it answers (`usable`): filters on the category only (the months have no severity, status
or source), the caller's row restriction among those layers.access.row_filter makes on the
category (evaluated here on the category names: `counted`), no unit and no bbox, a raster or
squares on the base grid (density.raster_days, density.square_days) and a window holding a
whole month, on a schema whose table has a column for every category of the catalogue.
Anything else reads incident_cell_days or the raw rows, as before.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg
from psycopg import sql

from gis.analysis import aggregates, heat_cells
from gis.analysis import density_sql as q
from gis.analysis.aggregates import X_COLUMN, Y_COLUMN
from gis.analysis.incidents import INCIDENTS, IncidentFilter
from layers.catalogue import INCIDENT_CATEGORIES

TABLE = "incident_cell_months"
PREFIX = "n_"  # a category's count column: n_<category>

_COLUMNS: dict[tuple[str, str, str], frozenset[str]] = {}


def categories(conn: psycopg.Connection) -> frozenset[str]:
    """The categories the table has a column for (none before migration 0044), remembered per
    database once the table exists."""
    key = (conn.info.host, str(conn.info.port), conn.info.dbname)
    if key not in _COLUMNS:
        if not aggregates.present(conn, TABLE):
            return frozenset()
        rows = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0"
            " AND NOT attisdropped AND starts_with(attname, %s)", [TABLE, PREFIX]).fetchall()
        _COLUMNS[key] = frozenset(r[0][len(PREFIX):] for r in rows)
    return _COLUMNS[key]


def usable(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None) -> bool:
    """Whether F (with RESTRICT) can be counted off the months, a window cut aside."""
    return (not f.severities and not f.statuses and not f.sources
            and f.bbox is None and f.unit is None
            and aggregates.restrict_ok(conn, restrict, columns=("category",))
            and set(INCIDENT_CATEGORIES) <= categories(conn))


@dataclass(frozen=True)
class Cut:
    """How a window is read: WINDOW (the one asked for, widened: aggregates.widen), its whole
    Vietnam-time MONTHS [m1, m2) (first days) from the aggregate, the rest of it from raw rows,
    less the raw rows of MINUS (the widenings)."""

    window: IncidentFilter
    months: tuple[dt.date, dt.date]
    minus: tuple[IncidentFilter, ...]

    @property
    def raw(self) -> list[IncidentFilter]:
        return aggregates.edges(self.window, self.months)


def read(conn: psycopg.Connection, f: IncidentFilter) -> Cut | None:
    """F's window widened and cut as the map's heat cells cut it, or None without a whole
    month."""
    wide, minus = aggregates.widen(conn, f)
    spans = heat_cells.spans(wide)
    if spans is None or spans.months is None:
        return None
    return Cut(wide, spans.months, minus)


def plan(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
         use_aggregates: bool | None) -> Cut | None:
    """F's cut when its whole months are to be read from here: they can answer it (usable, a
    whole month) and they are cheaper than the raw rows (aggregates.pays), or USE_AGGREGATES
    asks for them whenever they are exact (None: when they pay; False: never)."""
    if use_aggregates is False or not usable(conn, f, restrict):
        return None
    if not use_aggregates and not aggregates.pays(conn, TABLE):
        return None
    return read(conn, f)


def counted(conn: psycopg.Connection, f: IncidentFilter,
            restrict: sql.Composable | None) -> list[str]:
    """The categories of the catalogue that F selects and RESTRICT (on t.category only: usable)
    lets through, in the catalogue's order."""
    names = [c for c in INCIDENT_CATEGORIES if not f.categories or c in f.categories]
    if restrict is None or not names:
        return names
    rows = conn.execute(sql.SQL("SELECT t.category FROM unnest(%s::text[]) AS t(category)"
                                " WHERE {}").format(restrict), [names]).fetchall()
    allowed = {r[0] for r in rows}
    return [c for c in names if c in allowed]


def cells(restrict: sql.Composable | None, cut: Cut, names: list[str],
          origin: tuple[float, float], cell: float, base: float,
          bounds: tuple[tuple[int, int], tuple[float, float, float, float]] | None = None
          ) -> tuple[sql.Composed, list]:
    """SELECT ix, iy, n: the incidents of CUT's window per square of CELL metres (a multiple of
    the base cell BASE) counted from ORIGIN (on the base grid): its whole months from the
    aggregate (the columns of NAMES summed), the rest of the widened window from the raw rows'
    stored coordinates, less the raw rows of its widenings (CUT.minus); no empty square.

    BOUNDS (a raster's SHAPE (ny, nx) and its lon/lat box) keeps the squares of a raster: as
    conditions on the base cells and on the raw coordinates, not on the computed ix, iy (the
    planner then estimates the rows and hashes the groups)."""
    k = round(cell / base)
    ox, oy = round(origin[0] / base), round(origin[1] / base)
    total = (sql.SQL(" + ").join(sql.SQL("t.{}").format(sql.Identifier(PREFIX + c))
                                 for c in names) if names else sql.SQL("0"))
    x, y = sql.Identifier(X_COLUMN), sql.Identifier(Y_COLUMN)
    months_in: sql.Composable = sql.SQL("")
    raw_in: sql.Composable = sql.SQL("")
    months_box: list = []
    raw_box: list = []
    if bounds is not None:
        (ny, nx), lonlat = bounds
        months_in = sql.SQL(" AND t.cx >= %s AND t.cx < %s AND t.cy >= %s AND t.cy < %s")
        months_box = [ox, ox + nx * k, oy, oy + ny * k]
        raw_in = sql.SQL(" AND t.{g} && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
                         " AND t.{x} >= %s AND t.{x} < %s AND t.{y} >= %s AND t.{y} < %s").format(
            g=sql.Identifier(INCIDENTS.geometry_column), x=x, y=y)
        raw_box = [*lonlat, origin[0], origin[0] + nx * cell, origin[1], origin[1] + ny * cell]

    def raw(parts: list[IncidentFilter], weight: int) -> tuple[sql.Composed, list]:
        """The squares of the raw rows of PARTS, each counting WEIGHT."""
        cond, params = aggregates.raw_where(parts, restrict)
        return sql.SQL(
            "SELECT floor((t.{x} - %s) / %s)::int, floor((t.{y} - %s) / %s)::int, {w}"
            " FROM {table} AS t WHERE ({cond}){raw_in}").format(
            x=x, y=y, w=sql.Literal(weight), table=sql.Identifier(INCIDENTS.table), cond=cond,
            raw_in=raw_in), [origin[0], cell, origin[1], cell, *params, *raw_box]

    plus, plus_params = raw(cut.raw, 1)
    minus, minus_params = raw(list(cut.minus), -1)
    query = sql.SQL(
        "SELECT ix, iy, sum(n)::int AS n FROM ("
        " SELECT floor((t.cx - %s) / %s::float8)::int AS ix,"
        "  floor((t.cy - %s) / %s::float8)::int AS iy, {total} AS n FROM {months} AS t"
        "  WHERE t.month >= %s AND t.month < %s{months_in}"
        " UNION ALL {plus} UNION ALL {minus}) b"
        " GROUP BY ix, iy HAVING sum(n) <> 0"
    ).format(total=total, months=sql.Identifier(TABLE), months_in=months_in, plus=plus,
             minus=minus)
    return query, [ox, k, oy, k, *cut.months, *months_box, *plus_params, *minus_params]


def raster_counts(restrict: sql.Composable | None, cut: Cut, names: list[str],
                  origin: tuple[float, float], cell: float, shape: tuple[int, int],
                  lonlat_box: tuple[float, float, float, float], base: float
                  ) -> tuple[sql.Composed, list]:
    """density_sql.raster_counts' row (ix, iy, n arrays) of CUT's window on the raster ORIGIN /
    CELL / SHAPE, read as `cells` reads it."""
    inner, params = cells(restrict, cut, names, origin, cell, base, (shape, lonlat_box))
    return sql.SQL(
        "SELECT coalesce(array_agg(ix), '{{}}'), coalesce(array_agg(iy), '{{}}'),"
        " coalesce(array_agg(n), '{{}}') FROM ({}) c").format(inner), params


def square_counts(restrict: sql.Composable | None, cut: Cut, names: list[str], srid: int,
                  size: float, base: float) -> tuple[sql.Composed, list]:
    """density_sql.grid_counts' rows (i, j, n, GeoJSON polygon) of squares of SIZE in SRID (the
    stored projection's), read as `cells` reads them."""
    inner, params = cells(restrict, cut, names, (0.0, 0.0), size, base)
    return q.grid_rows("square", srid, sql.SQL("SELECT ix AS i, iy AS j, n FROM ({}) c").format(
        inner)), [size, *params]
