"""Run feature queries on a connection: pages, single features, counts and streams.

The SQL is built by layers.features_sql (each row one finished GeoJSON Feature as text); this
module executes it, so the OGC routes, the pygeoapi provider and the map API share one path.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from layers.features_sql import FeatureQuery, count_sql, features_sql

# Above this many matches numberMatched is omitted rather than counted on every page.
COUNT_CAP = 10_000
# Rows per chunk when streaming a big page (each chunk is a round trip to PostgreSQL).
STREAM_CHUNK = 5_000

_row_estimates: dict[str, tuple[float, float]] = {}


def _estimated_rows(conn: psycopg.Connection[Any], table: str) -> float:
    """Planner statistics (refreshed at most once a minute): cheap, never a full count."""
    now = time.monotonic()
    hit = _row_estimates.get(table)
    if hit and now - hit[1] < 60:
        return hit[0]
    row = conn.execute(
        "SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = %s::regclass", (table,)
    ).fetchone()
    est = row[0] if row else 0
    if est == 0:  # never analysed: fall back on the physical size
        row = conn.execute(
            "SELECT pg_relation_size(%s::regclass) / 100.0", (table,)
        ).fetchone()
        est = row[0] if row else 0
    _row_estimates[table] = (float(est), now)
    return float(est)


def number_matched(conn: psycopg.Connection[Any], q: FeatureQuery, cap: int = COUNT_CAP) -> int | None:
    """Exact count when it is cheap (at most `cap` rows to look at), else None (omitted)."""
    if not q.filtered and _estimated_rows(conn, q.layer.table) > cap * 2:
        return None
    query, params = count_sql(q, cap)
    row = conn.execute(query, params).fetchone()
    n = int(row[0]) if row else 0
    return n if n <= cap else None


@dataclass
class Page:
    """One page of features (GeoJSON text per row) and whether a next page exists."""

    rows: list[str]
    has_more: bool


def fetch_page(conn: psycopg.Connection[Any], q: FeatureQuery) -> Page:
    """A page of features; one extra row is fetched to learn whether more follow, uncounted."""
    query, params = features_sql(q)
    rows = [r[0] for r in conn.execute(query, params)]
    has_more = len(rows) > q.limit
    return Page(rows[: q.limit], has_more)


def stream_features(conn: psycopg.Connection[Any], q: FeatureQuery) -> Iterator[list[str]]:
    """Rows in chunks through a server-side cursor: a 10,000-feature page is never held whole.

    The last chunk may end with the extra row that signals a next page; callers trim it.
    """
    query, params = features_sql(q)
    with conn.transaction(), conn.cursor(name="features") as cur:
        cur.execute(query, params)
        while chunk := cur.fetchmany(STREAM_CHUNK):
            yield [r[0] for r in chunk]


def fetch_one(conn: psycopg.Connection[Any], q: FeatureQuery) -> str | None:
    """One feature as GeoJSON text (q.feature_id set), or None when it does not exist or is hidden."""
    query, params = features_sql(q, extra_row=False)
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None
