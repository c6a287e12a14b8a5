"""Load the land-use code list (2013 and 2024 Land Law codes with validity) from sample_data.

The list is reference data, not constants in code: the 2024 law retired BHK/NHK for HNK.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import csv

import sqlalchemy as sa
from alembic import op

from gis.settings import PROJECT_ROOT

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CSV = PROJECT_ROOT / "sample_data" / "land_use_codes.csv"


def upgrade() -> None:
    with CSV.open(encoding="utf-8") as f:
        rows = [{**r, "valid_to": r["valid_to"] or None} for r in csv.DictReader(f)]
    op.get_bind().execute(
        sa.text(
            "INSERT INTO land_use_codes (code, name_vi, name_en, grp, color, valid_from, valid_to) "
            "VALUES (:code, :name_vi, :name_en, :grp, :color, "
            "CAST(:valid_from AS date), CAST(:valid_to AS date))"
        ),
        rows,
    )


def downgrade() -> None:
    op.execute("DELETE FROM land_use_codes")
