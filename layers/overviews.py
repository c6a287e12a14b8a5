"""Names of the low-zoom overviews (materialized views); gis.overviews refreshes them."""

from __future__ import annotations


def overview_view(table: str) -> str:
    """The materialized view holding a layer table's overview (created by a migration)."""
    return f"{table}_overview"
