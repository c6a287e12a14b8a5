"""Low-zoom overview of the land-use planning zones (layers.model.Overview).

34,000 detailed zone polygons made 1 MB, 2-second tiles at zoom 8-10; dissolved per commune
and land-use code, simplified and kept in EPSG:3857 they make tiles of ~200 KB in ~100 ms.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE MATERIALIZED VIEW land_use_zones_overview AS
    SELECT row_number() OVER (ORDER BY commune_code, land_use_code)::bigint AS id,
           land_use_code, commune_code,
           ST_Multi(ST_SimplifyPreserveTopology(ST_Union(ST_Transform(geom, 3857)), 30))
               ::geometry(MultiPolygon, 3857) AS geom
      FROM land_use_zones
     GROUP BY land_use_code, commune_code
    WITH DATA;
    CREATE INDEX land_use_zones_overview_geom_idx ON land_use_zones_overview USING gist (geom);
    """)


def downgrade() -> None:
    op.execute("DROP MATERIALIZED VIEW IF EXISTS land_use_zones_overview")
