"""Invalid geometries: refused, accepted as unchanged, or repaired with ST_MakeValid.

shapely tells which geometries are invalid (gis.io.imports.geometry), but not what to do about
them; that needs the stored feature, so it happens in the database, on the staged rows:

* without `repair`, an invalid geometry is refused, unless it is the stored geometry of the
  same feature within a millimetre (a polygon exported to VN-2000 and imported back can have
  near-touching vertices cross by 1e-10 degree: refusing that would make an unchanged file
  fail to re-import);
* with `repair`, the flagged rows are written through ST_MakeValid, keeping only the parts of
  the layer's dimension (a repaired polygon may shed a line or a point), and the report counts
  them.

The expressions here read the staging table's row `s` (gis.io.imports.write.stage): its `wkb`
(EPSG:4326), `repair` flag and `invalid` reason.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

from gis.io.imports.geometry import invalid_reason
from gis.io.imports.table import Target

_INVALID = re.compile(r"invalid geometry \((.*)\); re-run")

# ST_CollectionExtract's type code for each layer geometry type: what a repair keeps.
_DIMENSION = {"Point": 1, "LineString": 2, "Polygon": 3, "MultiPolygon": 3}


def raw_geom(t: Target) -> sql.Composable:
    """The staged geometry as the file has it (promoted to Multi for a MultiPolygon layer)."""
    g = sql.SQL("ST_GeomFromWKB(s.wkb, 4326)")
    return sql.SQL("ST_Multi({})").format(g) if t.layer.geometry_type == "MultiPolygon" else g


def geom_expr(t: Target) -> sql.Composable:
    """The geometry to write: repaired with ST_MakeValid when the row asks for it."""
    g: sql.Composable = sql.SQL("ST_GeomFromWKB(s.wkb, 4326)")
    g = sql.SQL("CASE WHEN s.repair THEN ST_CollectionExtract(ST_MakeValid({g}), {d}) ELSE {g} END"
                ).format(g=g, d=sql.Literal(_DIMENSION[t.layer.geometry_type]))
    if t.layer.geometry_type == "MultiPolygon":
        return sql.SQL("ST_Multi({})").format(g)
    return g


def same_geometry(a: sql.Composable, b: sql.Composable) -> sql.Composable:
    """Equal, or the same vertices within 1e-8 degree (about 1 mm): a file that went through a
    projected CRS and back is not a change."""
    # The && on top lets a join use the layer's GiST index.
    return sql.SQL("({a} && ST_Expand({b}, 1e-8) AND ({a} = {b} OR (ST_NPoints({a}) = ST_NPoints({b}) "
                   "AND ST_HausdorffDistance({a}, {b}) < 1e-8)))").format(a=a, b=b)


def refused_invalid(conn: psycopg.Connection[Any], t: Target) -> dict[int, str]:
    """Staged rows with an invalid geometry that is not their matched feature's stored geometry
    (within a millimetre): row -> reason. Needs _geoioc_stage and _geoioc_match."""
    stored = sql.SQL("t.{}").format(sql.Identifier(t.layer.geometry_column))
    rows = conn.execute(sql.SQL(
        "SELECT s.rownum, s.invalid FROM _geoioc_stage s WHERE s.invalid IS NOT NULL AND NOT "
        "EXISTS (SELECT 1 FROM _geoioc_match m JOIN {table} t ON t.{id} = m.id "
        "WHERE m.rownum = s.rownum AND {same})").format(
        table=sql.Identifier(t.layer.table), id=sql.Identifier(t.layer.id_column),
        same=same_geometry(stored, raw_geom(t)))).fetchall()
    # The stage keeps the reason's text: its GEOS reason gives back the catalogue entry.
    return {int(r[0]): invalid_reason(m.group(1)) if (m := _INVALID.match(str(r[1]))) else str(r[1])
            for r in rows}
