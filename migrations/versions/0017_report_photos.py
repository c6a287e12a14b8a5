"""Citizens' photos, stored in the database beside their report (issue 15).

A report and its photos are one transaction (gis/reports/intake.py): a photo that is refused
refuses the report, and nothing is left behind, neither a row nor a file, because there are no
files. Only what gis/reports/photos.py re-encoded is stored (a JPEG without metadata and its
thumbnail), never the upload; up to three per report (position 1..3). The sha256 is of the
stored JPEG: the ETag of /api/reports/photos/{id}.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE report_photos (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        incident_id bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
        position    smallint NOT NULL CHECK (position BETWEEN 1 AND 3),
        jpeg        bytea NOT NULL CHECK (octet_length(jpeg) > 0),
        thumbnail   bytea NOT NULL CHECK (octet_length(thumbnail) > 0),
        width       integer NOT NULL CHECK (width > 0),
        height      integer NOT NULL CHECK (height > 0),
        sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
        created_at  timestamptz NOT NULL DEFAULT now(),
        UNIQUE (incident_id, position)
    );
    DO $$ BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
            GRANT SELECT, INSERT, UPDATE, DELETE ON report_photos TO geoioc_app;
            GRANT USAGE, SELECT ON SEQUENCE report_photos_id_seq TO geoioc_app;
        END IF;
    END $$;
    """)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS report_photos")
