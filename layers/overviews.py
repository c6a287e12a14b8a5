"""Refresh the low-zoom overviews (materialized views) after data changes in bulk."""

from __future__ import annotations

import psycopg
from psycopg import sql

from layers.catalogue import LAYERS


def overview_view(table: str) -> str:
    return f"{table}_overview"


def refresh_overviews(conn: psycopg.Connection) -> list[str]:
    done = []
    for layer in LAYERS:
        if layer.overview is not None:
            view = overview_view(layer.table)
            conn.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.Identifier(view)))
            done.append(view)
    return done
