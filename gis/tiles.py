"""Render vector tiles on a connection; the SQL is built by layers.tiles_sql."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from gis.analysis import heat_cells
from layers.model import Field, Layer
from layers.tiles_sql import (
    POINT_CLUSTER_THRESHOLD,
    TileFilters,
    TimeRange,
    check_tile,
    point_count_sql,
    tile_bounds,
    tile_sql,
)


def _count_points(conn: psycopg.Connection[Any], layer: Layer, bounds: Sequence[float],
                  restrict: sql.Composable | None, time_range: TimeRange | None,
                  filters: TileFilters | None) -> int:
    query, params = point_count_sql(layer, bounds, restrict, time_range, filters)
    row = conn.execute(query, params).fetchone()
    assert row is not None  # count(*) always answers one row
    return int(row[0])


def render_tile(conn: psycopg.Connection[Any], layer: Layer, fields: Sequence[Field],
                z: int, x: int, y: int, restrict: sql.Composable | None = None,
                time_range: TimeRange | None = None, filters: TileFilters | None = None
                ) -> bytes:
    """The MVT bytes of one tile (empty bytes for an empty tile); `restrict` hides rows the
    caller may not see (layers.access.row_filter), `time_range` (OGC `datetime`) rows outside
    that window, `filters` the values of the layer's tile filters (Layer.tile_filters; their
    defaults when absent).

    Dense point tiles (more than POINT_CLUSTER_THRESHOLD points) become grid cells with counts,
    so no tile grows into megabytes; the count stops at the threshold, so it stays cheap.
    """
    check_tile(layer, z, x, y)
    with conn.transaction():
        # A tile takes milliseconds to a few hundred; a low-zoom tile over a large table passes
        # jit_above_cost and compiling it cost more than running it (a z10 incidents tile:
        # 1.5 s with JIT, bench/README.md).
        conn.execute("SET LOCAL jit = off")
        aggregate = False
        if layer.geometry_type == "Point":
            count = _count_points(conn, layer, tile_bounds(z, x, y), restrict, time_range,
                                  filters)
            aggregate = count > POINT_CLUSTER_THRESHOLD
        if (aggregate and layer.id == heat_cells.INCIDENTS.id and not layer.tile_filters
                and heat_cells.tile_usable(conn, z, restrict, time_range)):
            # A long window's incident cells from its years', months' and days' pre-aggregates
            # (0037, 0043).
            query, params = heat_cells.tile_sql(z, x, y, restrict, time_range,
                                                heat_cells.tile_read(conn, time_range))
        else:
            query, params = tile_sql(layer, fields, z, x, y, aggregate=aggregate,
                                     restrict=restrict, time_range=time_range, filters=filters)
        row = conn.execute(query, params).fetchone()
    data = row[0] if row else None
    return bytes(data) if data else b""
