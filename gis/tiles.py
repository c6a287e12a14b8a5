"""Render vector tiles on a connection; the SQL is built by layers.tiles_sql."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from layers.model import Field, Layer
from layers.tiles_sql import POINT_CLUSTER_THRESHOLD, check_tile, point_count_sql, tile_bounds, tile_sql


def _count_points(conn: psycopg.Connection[Any], layer: Layer, bounds: Sequence[float],
                  restrict: sql.Composable | None) -> int:
    query, params = point_count_sql(layer, bounds, restrict)
    row = conn.execute(query, params).fetchone()
    assert row is not None  # count(*) always answers one row
    return int(row[0])


def render_tile(conn: psycopg.Connection[Any], layer: Layer, fields: Sequence[Field],
                z: int, x: int, y: int, restrict: sql.Composable | None = None) -> bytes:
    """The MVT bytes of one tile (empty bytes for an empty tile); `restrict` hides rows the
    caller may not see (layers.access.row_filter).

    Dense point tiles (more than POINT_CLUSTER_THRESHOLD points) become grid cells with counts,
    so no tile grows into megabytes; the count stops at the threshold, so it stays cheap.
    """
    check_tile(layer, z, x, y)
    aggregate = False
    if layer.geometry_type == "Point":
        count = _count_points(conn, layer, tile_bounds(z, x, y), restrict)
        aggregate = count > POINT_CLUSTER_THRESHOLD
    query, params = tile_sql(layer, fields, z, x, y, aggregate=aggregate, restrict=restrict)
    row = conn.execute(query, params).fetchone()
    data = row[0] if row else None
    return bytes(data) if data else b""
