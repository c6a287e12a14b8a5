"""The layer's table as the database declares it, next to what the catalogue says.

The catalogue (layers.model.Layer) holds the policy: fields, natural key, who may import. The
table holds what the database will enforce: each column's exact SQL type (staged values are
cast to it, so a numeric(12, 1) is rounded by PostgreSQL the way an edit would be) and which
columns are NOT NULL without a default (an empty value there is a rejection before the write,
with the row's number, rather than a failed INSERT). Validation, repair and writing all need
both, so they share this one description, read once per import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from layers.model import Layer


@dataclass
class Target:
    """What an import writes into: the layer, its columns' SQL types, its required columns and
    the natural key rows are matched on (empty: match on content)."""

    layer: Layer
    types: dict[str, str]  # column -> SQL type (format_type)
    required: set[str]  # NOT NULL without a default
    key: tuple[str, ...]


def load_target(conn: psycopg.Connection[Any], layer: Layer) -> Target:
    """LAYER's table from pg_attribute (one query), with the catalogue's natural key."""
    rows = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull AND NOT atthasdef "
        "AND attidentity = '' FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped", (layer.table,)).fetchall()
    types = {r[0]: r[1] for r in rows}
    required = {r[0] for r in rows if r[2]}
    return Target(layer, types, required, layer.natural_key)
