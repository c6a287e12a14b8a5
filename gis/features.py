"""Run feature queries on a connection: pages, single features, counts and streams.

The SQL is built by layers.features_sql (each row one finished GeoJSON Feature as text, and its
id); this module executes it, so the OGC routes, the pygeoapi provider and the map API share one
path.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors

from gis.db import rows_estimate
from layers.features_sql import FeatureQuery, count_sql, features_sql

# numberMatched is an exact count or nothing: OGC API - Features (Part 1, /req/core/fc-response)
# says that when it is present it is the number of features matching the selection. Counting is
# exact and usually cheap (a parallel index-only scan of the primary key: 0.1-0.25 s for 800,000
# parcels on the shared 2-core test machine, see bench/README.md "GDAL clients"), but a filter
# that cannot use an index could make every page wait for a full scan, so the count runs under
# this statement timeout and numberMatched is left out when it does not finish in time (a client
# then reads until no `next` link is given).
COUNT_TIMEOUT_MS = 1_000
# A client following `next` links (after=<id>) got numberMatched on its first page; counting a
# large layer again on every keyset page would make a whole-layer read count it once per page
# (80 counts of 0.1-0.25 s for 800,000 parcels read 10,000 at a time). So keyset pages of a layer
# above this many rows (planner statistics) leave numberMatched out; smaller layers keep it.
KEYSET_COUNT_MAX_ROWS = 100_000
# Rows per chunk when streaming a big page (each chunk is a round trip to PostgreSQL).
STREAM_CHUNK = 5_000


def number_matched(conn: psycopg.Connection[Any], q: FeatureQuery,
                   timeout_ms: int = COUNT_TIMEOUT_MS) -> int | None:
    """The exact number of features matching q's selection (its keyset position aside), or None
    when PostgreSQL cannot count them within timeout_ms."""
    query, params = count_sql(q)
    try:
        with conn.transaction():
            # SET LOCAL: the bound ends with this transaction (a savepoint if one is open
            # around us, hence the explicit restore below).
            previous = conn.execute("SELECT current_setting('statement_timeout')").fetchone()
            conn.execute("SELECT set_config('statement_timeout', %s, true)", (f"{timeout_ms}ms",))
            row = conn.execute(query, params).fetchone()
            if previous is not None:
                conn.execute("SELECT set_config('statement_timeout', %s, true)", (previous[0],))
    except errors.QueryCanceled:
        return None
    return int(row[0]) if row else 0


@dataclass
class Page:
    """One page of features (GeoJSON text per row), whether a next page exists, and the id of
    its last feature (where a keyset next page starts; None on an empty page)."""

    rows: list[str]
    has_more: bool
    last_id: int | None = None


_row_estimates: dict[str, tuple[float, float]] = {}


def estimated_rows(conn: psycopg.Connection[Any], table: str) -> float:
    """Planner statistics (refreshed at most once a minute): cheap, never a count. A table never
    analysed yet counts as small (0): its pages are then counted, under the timeout as always."""
    now = time.monotonic()
    hit = _row_estimates.get(table)
    if hit and now - hit[1] < 60:
        return hit[0]
    est = rows_estimate(conn, table)  # a partitioned layer (incidents): the sum of its partitions
    _row_estimates[table] = (est, now)
    return est


def page_number_matched(conn: psycopg.Connection[Any], q: FeatureQuery, page: Page) -> int | None:
    """numberMatched for a page just fetched: its length when the page holds the whole
    selection, nothing on a keyset page of a large layer (see KEYSET_COUNT_MAX_ROWS), else the
    exact count (number_matched)."""
    if not page.has_more and not q.offset and q.after is None:
        return len(page.rows)
    return None if keyset_count_skipped(conn, q) else number_matched(conn, q)


def keyset_count_skipped(conn: psycopg.Connection[Any], q: FeatureQuery) -> bool:
    """Whether numberMatched is left out of this page: a keyset page of a large layer."""
    return q.after is not None and estimated_rows(conn, q.layer.table) > KEYSET_COUNT_MAX_ROWS


def fetch_page(conn: psycopg.Connection[Any], q: FeatureQuery) -> Page:
    """A page of features; one extra row is fetched to learn whether more follow, uncounted."""
    query, params = features_sql(q)
    rows = conn.execute(query, params).fetchall()
    has_more = len(rows) > q.limit
    rows = rows[: q.limit]
    return Page([r[0] for r in rows], has_more, rows[-1][1] if rows else None)


def stream_features(conn: psycopg.Connection[Any], q: FeatureQuery) -> Iterator[list[tuple[str, int]]]:
    """Rows (GeoJSON text, id) in chunks through a server-side cursor: a 10,000-feature page is
    never held whole.

    The last chunk may end with the extra row that signals a next page; callers trim it.
    """
    query, params = features_sql(q)
    with conn.transaction(), conn.cursor(name="features") as cur:
        cur.execute(query, params)
        while chunk := cur.fetchmany(STREAM_CHUNK):
            yield [(r[0], r[1]) for r in chunk]


def fetch_one(conn: psycopg.Connection[Any], q: FeatureQuery) -> str | None:
    """One feature as GeoJSON text (q.feature_id set), or None when it does not exist or is hidden."""
    query, params = features_sql(q, extra_row=False)
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None
