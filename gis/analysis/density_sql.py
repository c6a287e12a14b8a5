"""The SQL of the density views (gis/analysis/density.py): counts per raster cell, per hexagon or
square of a grid, per administrative unit, in one window or two.

Every query counts in PostGIS and ships aggregates, never points: one row per non-empty cell or
per unit. Points are projected to the province's VN-2000 TM-3 CRS (metres, true areas) before
they are binned, so a 100 m cell is 100 m on the ground. The incident conditions come from
incidents.where (the shared filters and the caller's row restriction), so every view counts
exactly the rows the other incident views count.

Grid cells are PostGIS's own: ST_SquareGrid's (i = floor(x / size)) and ST_HexagonGrid's
(flat-topped hexagons of edge `size`, centre x = 1.5 * size * i, centre y = sqrt(3) * size * j,
shifted up half a row in odd columns), so a cell id here is the id ST_SquareGrid/ST_HexagonGrid
give the same cell and ST_Square/ST_Hexagon(size, i, j) its shape. Each point is put in exactly
one cell by arithmetic (its nearest hexagon centre), not by intersecting a generated grid: one
pass over the points, and a point on an edge is not counted twice.
"""

from __future__ import annotations

import datetime as dt

from psycopg import sql

from gis.analysis import aggregates as agg
from gis.analysis.aggregates import PROJECTED_COLUMN, X_COLUMN, Y_COLUMN
from gis.analysis.dask_tasks import hexagon_factors
from gis.analysis.incidents import INCIDENTS, IncidentFilter, where

SHAPES = ("hexagon", "square")


def _table() -> sql.Composable:
    return sql.SQL("{} AS t").format(sql.Identifier(INCIDENTS.table))


def _projected(srid: int, stored_srid: int | None = None) -> sql.Composable:
    """The point of alias t in SRID: the stored projection (incidents.geom_vn, migration 0027)
    when it is in SRID (STORED_SRID: aggregates.stored_srid), else projected here, per row."""
    if stored_srid == srid:
        return sql.SQL("t.{}").format(sql.Identifier(PROJECTED_COLUMN))
    return sql.SQL("ST_Transform(t.{}, {})").format(sql.Identifier(INCIDENTS.geometry_column),
                                                  sql.Literal(srid))


def raster_counts(f: IncidentFilter, restrict: sql.Composable | None, srid: int,
                  origin: tuple[float, float], cell: float, shape: tuple[int, int],
                  lonlat_box: tuple[float, float, float, float], *,
                  stored_srid: int | None = None) -> tuple[sql.Composed, list]:
    """Incidents per raster cell: one row of three arrays (column ix, row iy counted from the
    south, count) over the cells of the grid ORIGIN (lower left, projected) / CELL / SHAPE
    (ny, nx), and cells just outside it (the caller drops them). LONLAT_BOX (the grid's
    bounds in lon/lat, a little wider) lets the GiST index skip points far outside."""
    cond, params = where(f, restrict)
    g = sql.Identifier(INCIDENTS.geometry_column)
    if stored_srid == srid:
        # The stored coordinates (migration 0039): grouped right on the scan, so the parallel
        # workers count first (as cell_keys).
        cells = sql.SQL(
            "SELECT floor((t.{x} - %s) / %s)::int AS ix, floor((t.{y} - %s) / %s)::int AS iy"
            " FROM {table} WHERE {cond} AND t.{g} && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
        ).format(x=sql.Identifier(X_COLUMN), y=sql.Identifier(Y_COLUMN), table=_table(),
                 cond=cond, g=g)
    else:
        cells = sql.SQL(
            "SELECT floor((ST_X(p) - %s) / %s)::int AS ix, floor((ST_Y(p) - %s) / %s)::int AS iy"
            " FROM (SELECT {proj} AS p FROM {table} WHERE {cond}"
            "  AND t.{g} && ST_MakeEnvelope(%s, %s, %s, %s, 4326) OFFSET 0) a"
        ).format(proj=_projected(srid, stored_srid), table=_table(), cond=cond, g=g)
    q = sql.SQL(
        "SELECT coalesce(array_agg(ix), '{{}}'), coalesce(array_agg(iy), '{{}}'),"
        " coalesce(array_agg(n), '{{}}') FROM ("
        " SELECT ix, iy, count(*)::int AS n FROM ({cells}) b GROUP BY ix, iy) c"
    ).format(cells=cells)
    # Cells outside the raster (points in the lon/lat box's corners) come back too and the
    # caller drops them: a condition on the computed ix, iy made the planner expect a dozen
    # rows and sort 490,000 instead of hashing them (bench/README.md, migration 0027).
    return q, [origin[0], cell, origin[1], cell, *params, *lonlat_box]


def raster_counts_agg(f: IncidentFilter, restrict: sql.Composable | None,
                      origin: tuple[float, float], cell: float, shape: tuple[int, int],
                      lonlat_box: tuple[float, float, float, float], base: float,
                      days: tuple[dt.date, dt.date]) -> tuple[sql.Composed, list]:
    """raster_counts from the pre-aggregates (aggregates.py says when it may be used): the
    whole Vietnam-time DAYS from incident_cell_days, base cells (BASE metres) summed into raster
    cells of CELL (a multiple of BASE, the origin on the base grid), and the window's ragged
    ends from the raw rows (their stored projection). The same rows as raster_counts.

    The raster's bounds are conditions on the base cells (cx, cy) and on the raw points'
    coordinates, not on the computed ix, iy: the planner then estimates the rows and hashes
    the groups (on ix, iy it expected a handful and sorted 490,000 rows)."""
    cond, params = agg.agg_where(f, restrict, days)
    raw, raw_params = agg.raw_where(agg.edges(f, days), restrict)
    ny, nx = shape
    k = round(cell / base)
    ox, oy = round(origin[0] / base), round(origin[1] / base)
    x2, y2 = origin[0] + nx * cell, origin[1] + ny * cell
    q = sql.SQL(
        "SELECT coalesce(array_agg(ix), '{{}}'), coalesce(array_agg(iy), '{{}}'),"
        " coalesce(array_agg(n), '{{}}') FROM ("
        " SELECT ix, iy, sum(n)::int AS n FROM ("
        "  SELECT floor((t.cx - %s) / %s::float8)::int AS ix,"
        "   floor((t.cy - %s) / %s::float8)::int AS iy, t.n FROM {agg} WHERE {cond}"
        "   AND t.cx >= %s AND t.cx < %s AND t.cy >= %s AND t.cy < %s"
        "  UNION ALL"
        "  SELECT floor((ST_X(p) - %s) / %s)::int, floor((ST_Y(p) - %s) / %s)::int, 1"
        "  FROM (SELECT t.{proj} AS p FROM {table} WHERE ({raw})"
        "   AND t.{g} && ST_MakeEnvelope(%s, %s, %s, %s, 4326) OFFSET 0) a"
        "  WHERE ST_X(p) >= %s AND ST_X(p) < %s AND ST_Y(p) >= %s AND ST_Y(p) < %s) b"
        " GROUP BY ix, iy) c"
    ).format(agg=agg.table(), cond=cond, proj=sql.Identifier(PROJECTED_COLUMN), table=_table(),
             raw=raw, g=sql.Identifier(INCIDENTS.geometry_column))
    return q, [ox, k, oy, k, *params, ox, ox + nx * k, oy, oy + ny * k,
               origin[0], cell, origin[1], cell, *raw_params, *lonlat_box,
               origin[0], x2, origin[1], y2]


# A cell as one number, k = KEY_BASE * a + b: grouping by one key hashes one float, and the
# cell's rule is written once. Squares: (a, b) = (i, j). Hexagons: (a, b) = the centre's two
# lattice coordinates (hexagon_lattice), turned into (i, j) once per cell, after grouping
# (key_cell). Exact: a and b are whole numbers, |b| < KEY_BASE / 2 (y / 50 m, the smallest
# cell, is under 10^6 here) and |k| < 2^53.
KEY_BASE = 2.0 ** 26


def _lit(v: float) -> sql.Composable:
    """A float8 constant: a bare 433.01 is numeric, whose arithmetic is several times slower."""
    return sql.SQL("{}::float8").format(sql.Literal(float(v)))


def cell_key(shape: str, size: float, x: sql.Composable, y: sql.Composable) -> sql.Composable:
    """The key of the cell of SHAPE and SIZE holding point (X, Y), X and Y two plain columns: the
    expression repeats them (cheap on columns; on a PostGIS call each repeat is another call).

    A hexagon is its nearest centre, found with three floors and no distance (dask_tasks.
    hexagon_lattice says how). PostgreSQL evaluates an expression as written, repeats and all,
    so its operations are the cost once the scan is paid: the earlier rule (two thirds of the
    points by their column's nearest centre, the rest by two distances) took about 1.5 times
    as long (bench/hex_cells.py; bench/README.md, "Hexagon cells")."""
    if shape == "square":
        return sql.SQL("{K} * floor({x} / {s}) + floor({y} / {s})").format(
            K=_lit(KEY_BASE), x=x, y=y, s=_lit(size))
    across, up = hexagon_factors(size)
    f1 = sql.SQL("floor({y} * {up})").format(y=y, up=_lit(up))
    f2 = sql.SQL("floor({x} * {across} + {y} * {up})").format(x=x, y=y, across=_lit(across),
                                                             up=_lit(up))
    f3 = sql.SQL("floor({x} * {across} - {y} * {up})").format(x=x, y=y, across=_lit(across),
                                                             up=_lit(up))
    return lattice_key(sql.SQL("floor((2 * {f1} + {f2} + 4) / 6)").format(f1=f1, f2=f2),
                       sql.SQL("floor(({f3} - 2 * {f1} + 2) / 6)").format(f1=f1, f3=f3))


def lattice_key(a: sql.Composable, b: sql.Composable) -> sql.Composable:
    """The cell key of a hexagon's lattice coordinates A, B (whole numbers)."""
    return sql.SQL("{K} * {a} + {b}").format(K=_lit(KEY_BASE), a=a, b=b)


def key_cell(shape: str, k: sql.Composable) -> tuple[sql.Composable, sql.Composable]:
    """(i, j) as integers from a cell key K of SHAPE (PostGIS's numbering: for hexagons the
    column i = a + b and the row j from the centre's half-row a - b, odd columns shifted up)."""
    a = sql.SQL("round({} / {})").format(k, _lit(KEY_BASE))
    b = sql.SQL("({} - {} * {})").format(k, _lit(KEY_BASE), a)
    if shape == "square":
        return sql.SQL("{}::int").format(a), sql.SQL("{}::int").format(b)
    i = sql.SQL("({} + {})::int").format(a, b)
    return i, sql.SQL("(({a} - {b} - ({i} & 1)) / 2)::int").format(a=a, b=b, i=i)


def cell_keys(shape: str, size: float, srid: int, source: sql.Composable,
              source_params: list, carry: sql.Composable | None = None,
              carry_params: list | None = None,
              stored_srid: int | None = None) -> tuple[sql.Composed, list]:
    """SELECT k[, w] FROM the rows of SOURCE (`incidents AS t WHERE ...`): the key of each
    point's cell (cell_key), and CARRY (an expression on t: "in the current window", a time
    bin) as w.

    With the stored coordinates (x_vn, y_vn, migration 0039) this is one flat SELECT: the
    caller's GROUP BY k then sits right on the scan, and PostgreSQL counts in its parallel
    workers (Partial HashAggregate) before summing their counts; a year of 500 m hexagons at
    1,000,000 incidents 700-780 ms before, 300-330 ms (bench/hex_cells.py). Without them (the
    province CRS is not the stored one), each point is projected once in a subquery kept by
    OFFSET 0, and the coordinates taken from it."""
    carried = sql.SQL(", ({}) AS w").format(carry) if carry is not None else sql.SQL("")
    tail = [*(carry_params or []), *source_params]
    if stored_srid == srid:
        x, y = (sql.SQL("t.{}").format(sql.Identifier(c)) for c in (X_COLUMN, Y_COLUMN))
        q = sql.SQL("SELECT {k} AS k{carried} FROM {source}").format(
            k=cell_key(shape, size, x, y), carried=carried, source=source)
        return q, tail
    w = sql.SQL(", w") if carry is not None else sql.SQL("")
    q = sql.SQL(
        "SELECT {k} AS k{w} FROM (SELECT ST_X(p) AS x, ST_Y(p) AS y{w} FROM ("
        " SELECT {proj} AS p{carried} FROM {source} OFFSET 0) a OFFSET 0) b"
    ).format(k=cell_key(shape, size, sql.SQL("x"), sql.SQL("y")), w=w,
             proj=_projected(srid, stored_srid), carried=carried, source=source)
    return q, tail


def counted(shape: str, inner: sql.Composable, counts: sql.Composable,
            having: sql.Composable | None = None, by_carry: bool = False) -> sql.Composed:
    """SELECT i, j[, w], COUNTS: the rows of INNER (cell_keys of SHAPE) grouped by cell (and by
    the carried value w if BY_CARRY), COUNTS being select-list items (aggregates)."""
    i, j = key_cell(shape, sql.SQL("k"))
    w = sql.SQL(", w") if by_carry else sql.SQL("")
    return sql.SQL("SELECT {i} AS i, {j} AS j{w}, {counts} FROM ({inner}) x GROUP BY k{w}{having}"
                   ).format(i=i, j=j, w=w, counts=counts, inner=inner,
                            having=having if having is not None else sql.SQL(""))


def _cell_shape(shape: str, srid: int) -> sql.Composable:
    """The polygon of cell (i, j) (size: one `%s`), in SRID."""
    fn = sql.SQL("ST_Hexagon" if shape == "hexagon" else "ST_Square")
    return sql.SQL("{}(%s, i, j, ST_SetSRID(ST_MakePoint(0, 0), {}))").format(fn, sql.Literal(srid))


def grid_counts(f: IncidentFilter, restrict: sql.Composable | None, srid: int, shape: str,
                size: float, *, stored_srid: int | None = None) -> tuple[sql.Composed, list]:
    """Rows (i, j, n, GeoJSON polygon in lon/lat) of the non-empty cells of a grid of SHAPE and
    SIZE metres (edge of a hexagon, side of a square) in SRID."""
    cond, params = where(f, restrict)
    inner, inner_params = cell_keys(
        shape, size, srid, sql.SQL("{} WHERE {}").format(_table(), cond), params,
        stored_srid=stored_srid)
    return grid_rows(shape, srid, counted(shape, inner, sql.SQL("count(*)::int AS n"))), \
        [size, *inner_params]


def grid_rows(shape: str, srid: int, counts: sql.Composable) -> sql.Composed:
    """Rows (i, j, n, GeoJSON polygon in lon/lat) of the cells COUNTS (i, j, n) names, the
    largest first; the first parameter is the cells' size."""
    return sql.SQL("SELECT i, j, n, ST_AsGeoJSON(ST_Transform({cell}, 4326), 6) FROM ({counts}) g"
                   " ORDER BY n DESC, i, j").format(cell=_cell_shape(shape, srid), counts=counts)


def square_counts_agg(f: IncidentFilter, restrict: sql.Composable | None, srid: int,
                      size: float, base: float, days: tuple[dt.date, dt.date]
                      ) -> tuple[sql.Composed, list]:
    """grid_counts of squares of SIZE (a multiple of the base cell BASE) from the
    pre-aggregates: whole DAYS from incident_cell_days, the window's ragged ends raw."""
    cond, params = agg.agg_where(f, restrict, days)
    raw, raw_params = agg.raw_where(agg.edges(f, days), restrict)
    k = round(size / base)
    q = sql.SQL(
        "SELECT i, j, n, ST_AsGeoJSON(ST_Transform({cell}, 4326), 6) FROM ("
        " SELECT i, j, sum(n)::int AS n FROM ("
        "  SELECT floor(t.cx / %s::float8)::int AS i, floor(t.cy / %s::float8)::int AS j, t.n"
        "  FROM {agg} WHERE {cond}"
        "  UNION ALL"
        "  SELECT floor(ST_X(p) / %s)::int, floor(ST_Y(p) / %s)::int, 1"
        "  FROM (SELECT t.{proj} AS p FROM {table} WHERE {raw} OFFSET 0) a) x"
        " GROUP BY i, j) g ORDER BY n DESC, i, j"
    ).format(cell=_cell_shape("square", srid), agg=agg.table(), cond=cond,
             proj=sql.Identifier(PROJECTED_COLUMN), table=_table(), raw=raw)
    return q, [size, k, k, *params, size, size, *raw_params]


def grid_tile(f: IncidentFilter, restrict: sql.Composable | None, srid: int, shape: str,
              size: float, bounds: tuple[float, float, float, float], margin: float,
              layer_name: str, extent: int, buffer: int,
              min_count: int = 0, *, stored_srid: int | None = None) -> tuple[sql.Composed, list]:
    """One vector tile (ST_AsMVT, layer LAYER_NAME) of the grid's non-empty cells that touch the
    tile BOUNDS (EPSG:3857), each with its full count: the points are read MARGIN metres (3857)
    beyond the tile, more than a cell's width, so a cell cut by the tile's edge counts its
    points on both sides. Cells under MIN_COUNT are left out (small-count suppression: a
    public tile never holds a cell of 1 or 2 incidents)."""
    cond, params = where(f, restrict)
    x1, y1, x2, y2 = bounds
    source = sql.SQL("{} WHERE {} AND t.{} && ST_Transform(ST_MakeEnvelope(%s, %s, %s, %s, 3857),"
                     " 4326)").format(_table(), cond, sql.Identifier(INCIDENTS.geometry_column))
    inner, inner_params = cell_keys(
        shape, size, srid, source, [*params, x1 - margin, y1 - margin, x2 + margin, y2 + margin],
        stored_srid=stored_srid)
    q = sql.SQL(
        "SELECT ST_AsMVT(m, {name}, {extent}, 'geom') FROM ("
        " SELECT i, j, n AS count, ST_AsMVTGeom(ST_Transform(cell, 3857),"
        "  ST_MakeEnvelope(%s, %s, %s, %s, 3857), {extent}, {buffer}, true) AS geom FROM ("
        "  SELECT i, j, n, {cell} AS cell FROM ({counted}) g) c"
        "  WHERE ST_Transform(cell, 3857) && ST_MakeEnvelope(%s, %s, %s, %s, 3857)) m"
        " WHERE m.geom IS NOT NULL"
    ).format(name=sql.Literal(layer_name), extent=sql.Literal(extent), buffer=sql.Literal(buffer),
             cell=_cell_shape(shape, srid),
             counted=counted(shape, inner, sql.SQL("count(*)::int AS n"),
                              sql.SQL(" HAVING count(*) >= %s")))
    return q, [*bounds, size, *inner_params, max(min_count, 1), *bounds]


# The grids unit_counts bins points on (degrees of lon/lat: ~520 x 555 m and ~260 x 280 m here),
# and the margins of their cells: a cell is a candidate of a unit when the cell grown by CELL_EPS
# meets the unit, and wholly inside it when the cell grown by INSIDE_MARGIN (~1 cm) is covered
# by the unit. Finding the cells costs ~4x more on the finer grid (measured: 30 days 115 against
# 240 ms) and saves its cost in point tests only beyond a few months (a year 0.77-1.0 s against
# 0.9-1.2 s), hence the coarse grid up to SHORT_WINDOW.
SHORT_WINDOW = dt.timedelta(days=92)
UNIT_CELL_SHORT = 0.005
UNIT_CELL_LONG = 0.0025
CELL_EPS = 1e-9
INSIDE_MARGIN = 1e-7


def _units(level: str, unit_restrict: sql.Composable | None) -> sql.Composable:
    """The units of LEVEL valid on a day (two `%s`) that the caller may read."""
    return sql.SQL(
        "SELECT id, code, name, population, geom FROM admin_units WHERE level = {}"
        " AND valid_from <= %s AND (valid_to IS NULL OR valid_to > %s) AND {}"
    ).format(sql.Literal(level), unit_restrict if unit_restrict is not None else sql.SQL("TRUE"))


def unit_counts(f: IncidentFilter, restrict: sql.Composable | None,
                unit_restrict: sql.Composable | None, srid: int, day: dt.date,
                level: str = "commune", with_geometry: bool = False,
                cell: float | None = None) -> tuple[sql.Composed, list]:
    """Per unit of LEVEL valid on DAY (the caller may read: UNIT_RESTRICT on alias admin_units):
    code, name, population, area in km² (VN-2000 TM-3), incidents inside it (ST_Covers: a point
    on a shared boundary counts in both units, as a per-unit count independently taken would),
    and optionally the GeoJSON boundary.

    One pass over the window's points, whatever its length, through a grid of CELL degrees
    (lon/lat, the units' own coordinates, so the grid needs no projection and cell tests are
    exact in the plane ST_Covers works in). Each unit's cells are found in the query (`cell`:
    the cells of its box that meet it, and whether it covers them with a margin). A cell inside
    exactly one unit and meeting no other (`grid`: a dense array over the units' box, its value
    the unit's index) counts its points with no geometric test: most points. The points of the
    other cells are gathered per cell and tested with ST_Covers against that cell's candidate
    units only, unit after unit, so each polygon is prepared once per cell rather than per point.

    Why: per unit through the GiST index, each unit read its incidents of all time (30 days
    at 1,000,000 incidents: 17.9 s); per unit among the window's points, each unit scanned them
    all (30 days 0.6-1.3 s, a year 5.7-16 s in process). Here 30 days 0.11-0.27 s, a year
    0.7-1.2 s on a loaded 2-core machine (bench/README.md, "Rates per commune in one pass").
    A point off the grid's box, or in a cell no unit meets, is in no unit: every unit's cells
    are in the box, and a point a unit covers lies in a cell (grown by CELL_EPS) that meets it."""
    if cell is None:
        cell = UNIT_CELL_SHORT if f.length <= SHORT_WINDOW else UNIT_CELL_LONG
    cond, params = where(f, restrict)
    geom = sql.SQL(", ST_AsGeoJSON(u.geom, 6)") if with_geometry else sql.SQL("")
    g = sql.Identifier(INCIDENTS.geometry_column)
    # InitPlans (evaluated once): the grid's box and the lookup array.
    i0, j0, i1, j1, nj = (sql.SQL("(SELECT {} FROM box)").format(sql.Identifier(c))
                          for c in ("i0", "j0", "i1", "j1", "nj"))
    q = sql.SQL(
        "WITH u AS MATERIALIZED (SELECT row_number() OVER (ORDER BY id)::int AS idx, *"
        "  FROM ({units}) a),"
        # The cells (i, j) of each unit's box that the unit meets, and whether it covers them.
        " cell AS MATERIALIZED (SELECT u.idx, u.geom, i, j,"
        "   ST_Covers(u.geom, ST_Expand(e, %s)) AS inside FROM u,"
        "   generate_series(floor(ST_XMin(u.geom) / %s)::int, floor(ST_XMax(u.geom) / %s)::int) i,"
        "   generate_series(floor(ST_YMin(u.geom) / %s)::int, floor(ST_YMax(u.geom) / %s)::int) j,"
        "   LATERAL (SELECT ST_MakeEnvelope(i * %s - %s, j * %s - %s, (i + 1) * %s + %s,"
        "    (j + 1) * %s + %s, 4326) AS e) b WHERE ST_Intersects(u.geom, e)),"
        " box AS MATERIALIZED (SELECT min(i) AS i0, min(j) AS j0, max(i) AS i1, max(j) AS j1,"
        "   max(j) - min(j) + 1 AS nj FROM cell),"
        # Per cell of the box (k from 1, row-major): the unit's index if the cell is wholly in
        # exactly one unit, -k if points in it must be tested, 0 if no unit meets it. No NULLs:
        # subscripting an array without them is a constant-time read.
        " grid AS MATERIALIZED (SELECT array_agg(coalesce(c.v, 0) ORDER BY k.k) AS v"
        "  FROM box, generate_series(1, (box.i1 - box.i0 + 1) * box.nj) k LEFT JOIN ("
        "   SELECT k, CASE WHEN count(*) = 1 AND bool_and(inside) THEN min(idx) ELSE -k END AS v"
        "   FROM (SELECT (i - i0) * nj + (j - j0) + 1 AS k, idx, inside FROM cell, box) c0"
        "   GROUP BY k) c ON c.k = k.k),"
        # One pass over the window: points of pure cells counted per unit, the others gathered
        # per cell. OFFSET 0 keeps each step computed once per row.
        " a AS MATERIALIZED (SELECT key, count(*)::int AS n,"
        "   array_agg(p) FILTER (WHERE key < 0) AS pts FROM ("
        "  SELECT CASE WHEN i >= {i0} AND i <= {i1} AND j >= {j0} AND j <= {j1}"
        "   THEN (SELECT v FROM grid)[(i - {i0}) * {nj} + (j - {j0}) + 1] ELSE 0 END AS key, p"
        "  FROM (SELECT floor(ST_X(t.{g}) / %s)::int AS i, floor(ST_Y(t.{g}) / %s)::int AS j,"
        "   t.{g} AS p FROM {table} WHERE {cond} OFFSET 0) p0 OFFSET 0) p1"
        "  WHERE key <> 0 GROUP BY key),"
        # Tested cells: each candidate unit over the cell's points (all of them if the unit
        # covers the cell), in unit order.
        " tested AS (SELECT idx, CASE WHEN inside THEN n ELSE (SELECT count(*)::int"
        "   FROM unnest(pts) x(p) WHERE ST_Covers(geom, x.p)) END AS n FROM ("
        "   SELECT c.idx, c.geom, c.inside, a.n, a.pts FROM a JOIN cell c"
        "   ON (c.i - {i0}) * {nj} + (c.j - {j0}) + 1 = -a.key WHERE a.key < 0"
        "   ORDER BY c.idx OFFSET 0) t),"
        " n AS (SELECT idx, sum(n)::int AS n FROM ("
        "   SELECT key AS idx, n FROM a WHERE key > 0 UNION ALL SELECT idx, n FROM tested) s"
        "  GROUP BY idx)"
        " SELECT u.code, u.name, u.population, ST_Area(ST_Transform(u.geom, {srid})) / 1e6,"
        " coalesce(n.n, 0){geom} FROM u LEFT JOIN n ON n.idx = u.idx ORDER BY u.code"
    ).format(units=_units(level, unit_restrict), i0=i0, j0=j0, i1=i1, j1=j1, nj=nj, g=g,
             table=_table(), cond=cond, srid=sql.Literal(srid), geom=geom)
    eps = CELL_EPS
    return q, [day, day, INSIDE_MARGIN, cell, cell, cell, cell,
               cell, eps, cell, eps, cell, eps, cell, eps, cell, cell, *params]


def unit_change(f: IncidentFilter, base: IncidentFilter, restrict: sql.Composable | None,
                unit_restrict: sql.Composable | None, day: dt.date, level: str = "commune"
                ) -> tuple[sql.Composed, list]:
    """Per unit of LEVEL valid on DAY: code, name, incidents in F's window and in BASE's, and
    the GeoJSON boundary."""
    cur, cur_params = where(f, restrict)
    old, old_params = where(base, restrict)
    units = _units(level, unit_restrict)
    q = sql.SQL(
        "SELECT u.code, u.name, c.n, c.b, ST_AsGeoJSON(u.geom, 6)"
        " FROM ({units}) AS u CROSS JOIN LATERAL ("
        "  SELECT (count(*) FILTER (WHERE {cur}))::int AS n, (count(*) FILTER (WHERE {old}))::int AS b"
        "  FROM {table} WHERE t.{g} && u.geom AND ST_Covers(u.geom, t.{g})"
        "  AND (({cur}) OR ({old}))) c ORDER BY u.code"
    ).format(units=units, cur=cur, old=old, table=_table(),
             g=sql.Identifier(INCIDENTS.geometry_column))
    return q, [day, day, *cur_params, *old_params, *cur_params, *old_params]


def grid_change(f: IncidentFilter, base: IncidentFilter, restrict: sql.Composable | None,
                srid: int, shape: str, size: float, *,
                stored_srid: int | None = None) -> tuple[sql.Composed, list]:
    """Per grid cell with incidents in either window: i, j, incidents in F's window and in
    BASE's, and the GeoJSON cell."""
    cur, cur_params = where(f, restrict)
    old, old_params = where(base, restrict)
    source = sql.SQL("{table} WHERE ({cur}) OR ({old})").format(table=_table(), cur=cur, old=old)
    inner, inner_params = cell_keys(shape, size, srid, source, [*cur_params, *old_params],
                                     carry=cur, carry_params=cur_params, stored_srid=stored_srid)
    counts = sql.SQL("(count(*) FILTER (WHERE w))::int AS n,"
                     " (count(*) FILTER (WHERE NOT w))::int AS b")
    q = sql.SQL(
        "SELECT i, j, n, b, ST_AsGeoJSON(ST_Transform({cell}, 4326), 6) FROM ({counted}) g"
        " ORDER BY i, j"
    ).format(cell=_cell_shape(shape, srid), counted=counted(shape, inner, counts))
    return q, [size, *inner_params]


def extent(srid: int, day: dt.date) -> tuple[sql.Composed, list]:
    """The bounds, in SRID, of the province valid on DAY (all units if there is none)."""
    q = sql.SQL(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent("
        "ST_Transform(geom, {srid}))::geometry AS e FROM admin_units WHERE valid_from <= %s"
        " AND (valid_to IS NULL OR valid_to > %s)"
        " AND (level = 'province' OR NOT EXISTS (SELECT 1 FROM admin_units p"
        "  WHERE p.level = 'province' AND p.valid_from <= %s"
        "  AND (p.valid_to IS NULL OR p.valid_to > %s)))) s"
    ).format(srid=sql.Literal(srid))
    return q, [day, day, day, day]


def unit_extent(srid: int, unit_id: int) -> tuple[sql.Composed, list]:
    q = sql.SQL(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Transform(geom,"
        " {srid}) AS e FROM admin_units WHERE id = %s) s").format(srid=sql.Literal(srid))
    return q, [unit_id]
