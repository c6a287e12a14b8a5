"""Provenance of harvested features (gis/io/harvest.py).

One row per local feature that came from another OGC API - Features server (a district or a
pilot center): where it came from (server, collection, the source's feature id), a hash of the
content we last took, and when. A re-run compares hashes and rewrites only features that
changed at the source; the mapping also lets a layer without a natural key (tourism places,
incidents) be updated instead of duplicated.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE harvest_provenance (
    layer             text NOT NULL CHECK (layer ~ '^[a-z_]+$'),
    local_id          bigint NOT NULL,
    source_url        text NOT NULL CHECK (source_url ~ '^https?://'),
    source_collection text NOT NULL CHECK (source_collection <> ''),
    source_id         text NOT NULL CHECK (source_id <> ''),
    content_hash      text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    harvested_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_url, source_collection, source_id),
    -- A local feature comes from one source feature at most.
    UNIQUE (layer, local_id)
);
CREATE INDEX harvest_provenance_layer_idx ON harvest_provenance (layer, source_url, source_collection);
"""

DOWNGRADE = "DROP TABLE IF EXISTS harvest_provenance;"


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
