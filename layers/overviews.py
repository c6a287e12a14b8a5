"""Refresh the low-zoom overviews (materialized views) after data changes in bulk."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from layers.catalogue import LAYERS
from layers.model import Layer


def overview_view(table: str) -> str:
    return f"{table}_overview"


def refresh_overviews(conn: psycopg.Connection, layers: Iterable[Layer] = LAYERS) -> list[str]:
    """Through geoioc_refresh_overview (migration 0009), so the application role may call it."""
    done = []
    for layer in layers:
        if layer.overview is not None:
            view = overview_view(layer.table)
            conn.execute("SELECT geoioc_refresh_overview(%s)", (view,))
            done.append(view)
    return done
