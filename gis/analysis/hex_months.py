"""The hexagon grid's counts read off `incident_hex_months` (migration 0042): incidents per
Vietnam-time month, category and 500 m hexagon of the stored projection.

Why: a year of 500 m hexagons (the grid's default) at 10,000,000 incidents counted 2.8 million
raw points, 0.6 s on 2 cores for the statement alone (bench/README.md, "Hexagon cells"). A
window's whole months now come from the aggregate (some 73,500 rows for a year at full scale,
no arithmetic per point) and only its other days and hours from raw rows, keyed by the very
rule the migration wrote out (density_sql.cell_key), so both put a point in the same hexagon.

What it answers (`usable`): hexagons of 500 m in the stored projection's CRS, filters on the
category only, the caller's row restriction among those layers.access.row_filter makes on the
category, no unit and no bbox, and a window holding a whole month. Anything else counts the raw
rows, as before.
"""

from __future__ import annotations

import datetime as dt

import psycopg
from psycopg import sql

from gis.analysis import aggregates, heat_cells
from gis.analysis import density_sql as q
from gis.analysis.incidents import INCIDENTS, IncidentFilter

TABLE = "incident_hex_months"
SIZE = 500.0  # the hexagons' edge in metres, as the migration wrote it out


def months(f: IncidentFilter) -> tuple[dt.date, dt.date] | None:
    """The whole Vietnam-time months [m1, m2) (their first days) inside F's window, or None:
    as the map's heat cells cut a window."""
    cut = heat_cells.spans(f)
    return cut.months if cut is not None else None


def usable(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
           shape: str, size: float, srid: int, stored_srid: int | None) -> bool:
    """Whether the grid of SHAPE and SIZE in SRID for F (with RESTRICT) can be read off it."""
    return (shape == "hexagon" and size == SIZE and srid == stored_srid
            and not f.severities and not f.statuses and not f.sources
            and f.bbox is None and f.unit is None and months(f) is not None
            and aggregates.restrict_ok(conn, restrict, columns=("category",))
            and aggregates.present(conn, TABLE))


def grid_counts(f: IncidentFilter, restrict: sql.Composable | None, srid: int,
                span: tuple[dt.date, dt.date]) -> tuple[sql.Composed, list]:
    """density_sql.grid_counts' rows (i, j, n, GeoJSON polygon) of the 500 m hexagons: the
    months SPAN from the aggregate, the rest of F's window from raw rows."""
    parts: list[sql.Composable] = [sql.SQL("t.month >= %s AND t.month < %s")]
    params: list = list(span)
    if f.categories:
        parts.append(sql.SQL("t.category = ANY(%s)"))
        params.append(list(f.categories))
    if restrict is not None:
        parts.append(restrict)
    cond = sql.SQL(" AND ").join(sql.SQL("({})").format(p) for p in parts)
    raw, raw_params = aggregates.raw_where(aggregates.edges(f, span), restrict)
    keyed, keyed_params = q.cell_keys(
        "hexagon", SIZE, srid, sql.SQL("{} AS t WHERE {}").format(
            sql.Identifier(INCIDENTS.table), raw), raw_params,
        carry=sql.SQL("1"), stored_srid=srid)
    inner = sql.SQL("SELECT {k} AS k, t.n AS w FROM {agg} AS t WHERE {cond} UNION ALL {keyed}"
                    ).format(k=q.lattice_key(sql.SQL("t.a"), sql.SQL("t.b")),
                             agg=sql.Identifier(TABLE), cond=cond, keyed=keyed)
    counts = q.counted("hexagon", inner, sql.SQL("sum(w)::int AS n"))
    return q.grid_rows("hexagon", srid, counts), [SIZE, *params, *keyed_params]
