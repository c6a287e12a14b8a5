"""The SQL of the Dask path of the incident analytics (gis/analysis/distributed.py): what a worker
reads for one partition, how the partitions are cut, and the cell polygons of a grid counted on
the cluster.

A partition is the incidents matching the request's filter (incidents.where: the same
conditions and row restriction as the in-database path) within one slice of its time window,
with the same spatial pre-filter the in-database query of that analysis uses. A worker reads it
as one row: the points as one WKB MultiPoint (parsed in C by shapely, no Python object per
row) and their times in epoch microseconds, exact (the cube's calendar bins compare them with
the bins' start instants).
"""

from __future__ import annotations

from psycopg import sql

from gis.analysis.density_sql import _cell_shape
from gis.analysis.incidents import INCIDENTS, IncidentFilter, where


def _geom() -> sql.Identifier:
    return sql.Identifier("t", INCIDENTS.geometry_column)


def _time() -> sql.Identifier:
    return sql.Identifier("t", INCIDENTS.time_column or "reported_at")


def span() -> tuple[sql.Composed, list]:
    """The first and last incident time of the whole table (the time index answers both), and
    the planner's estimate of its rows (a partitioned table's are its partitions')."""
    q = sql.SQL(
        "SELECT (SELECT min({time}) FROM {table} AS t), (SELECT max({time}) FROM {table} AS t),"
        " (SELECT coalesce(sum(greatest(c.reltuples, 0)), 0) FROM pg_class c"
        "  WHERE c.oid = {reg}::regclass"
        "  OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = {reg}::regclass))"
    ).format(time=_time(), table=sql.Identifier(INCIDENTS.table),
             reg=sql.Literal(INCIDENTS.table))
    return q, []


def raster_filter(lonlat_box: tuple[float, float, float, float]) -> tuple[sql.Composable, list]:
    """The KDE's pre-filter (density_sql.raster_counts): the grid's bounds in lon/lat."""
    return sql.SQL("{} && ST_MakeEnvelope(%s, %s, %s, %s, 4326)").format(_geom()), [*lonlat_box]


def area_filter(area_id: int, size: float) -> tuple[sql.Composable, list]:
    """The cube's pre-filter (hotspot_queries.cube_counts): the study area's envelope widened by
    the reach of a boundary cell."""
    reach = 2.5 * size / 100_000
    return sql.SQL("{} && (SELECT ST_Expand(ST_Envelope(geom), %s) FROM admin_units"
                   " WHERE id = %s)").format(_geom()), [reach, area_id]


def partition_points(f: IncidentFilter, restrict: sql.Composable | None,
                     extra: tuple[sql.Composable, list] | None) -> tuple[sql.Composed, list]:
    """One row: the WKB MultiPoint (EPSG:4326) of the incidents matching F (its window being
    the partition's slice), RESTRICT and EXTRA (a pre-filter, or None), and their times in
    epoch microseconds in the same order (two aggregates of one pass see the rows in one
    order). No rows: NULL, NULL."""
    cond, params = where(f, restrict)
    more, more_params = extra if extra is not None else (sql.SQL("TRUE"), [])
    q = sql.SQL(
        "SELECT ST_AsBinary(ST_Collect({g})),"
        " array_agg((extract(epoch FROM {time}) * 1000000)::int8)"
        " FROM {table} AS t WHERE {cond} AND {more}"
    ).format(g=_geom(), time=_time(), table=sql.Identifier(INCIDENTS.table), cond=cond,
             more=more)
    return q, [*params, *more_params]


def cell_polygons(srid: int, shape: str, size: float, i: list[int], j: list[int],
                  n: list[int]) -> tuple[sql.Composed, list]:
    """Rows (i, j, n, GeoJSON polygon in lon/lat) of cells counted elsewhere, in the order and
    the text of density_sql.grid_counts (the same PostGIS functions draw the same polygons)."""
    q = sql.SQL(
        "SELECT i, j, n, ST_AsGeoJSON(ST_Transform({cell}, 4326), 6)"
        " FROM unnest(%s::int[], %s::int[], %s::int[]) AS g(i, j, n) ORDER BY n DESC, i, j"
    ).format(cell=_cell_shape(shape, srid))
    return q, [size, i, j, n]
