"""Register VN-2000 / TM-3 zones (EPSG 9205..9218) that PostGIS 3.3 lacks in spatial_ref_sys.

Without them `ST_Transform(geom, 9209)` fails with "Cannot find SRID". srtext comes from
pyproj's EPSG definition, proj4text follows PostGIS's own EPSG:5897 row with the zone's lon_0.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from gis.crs import VN2000_TM3_MISSING_IN_POSTGIS, srtext, vn2000_tm3_proj4

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INSERT = sa.text(
    "INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, srtext, proj4text) "
    "VALUES (:srid, 'EPSG', :srid, :srtext, :proj4text) ON CONFLICT (srid) DO NOTHING"
)
# Only rows exactly as this migration wrote them are removed; a PostGIS that ships them keeps its own.
DELETE = sa.text("DELETE FROM spatial_ref_sys WHERE srid = :srid AND proj4text = :proj4text")


def _rows() -> list[dict]:
    return [
        {"srid": s, "srtext": srtext(s), "proj4text": vn2000_tm3_proj4(s)}
        for s in VN2000_TM3_MISSING_IN_POSTGIS
    ]


def upgrade() -> None:
    op.get_bind().execute(INSERT, _rows())


def downgrade() -> None:
    op.get_bind().execute(DELETE, [{"srid": r["srid"], "proj4text": r["proj4text"]} for r in _rows()])
