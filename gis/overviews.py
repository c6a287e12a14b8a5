"""Refresh the low-zoom overviews (materialized views) after data changes in bulk."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg

from layers.catalogue import LAYERS
from layers.model import Layer
from layers.overviews import overview_view


def refresh_overviews(conn: psycopg.Connection[Any], layers: Iterable[Layer] = LAYERS) -> list[str]:
    """Refresh the overviews of `layers` (those that declare one); returns the views refreshed.

    Through geoioc_refresh_overview (migration 0009), so the application role may call it
    without owning the views.
    """
    done = []
    for layer in layers:
        if layer.overview is not None:
            view = overview_view(layer.table)
            conn.execute("SELECT geoioc_refresh_overview(%s)", (view,))
            done.append(view)
    return done
