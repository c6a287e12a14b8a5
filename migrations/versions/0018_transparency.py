"""Transparency figures (issue 15): each report's first answer, kept on the report, and an index
that answers a period's figures without touching the transitions.

Processing time is "first answer - received": the first stored move to `resolved` or
`rejected` (a reopened report keeps its first answer; incident_transitions holds them all).
Finding that first move per report is a lookup in incident_transitions per report (1,000,000
lookups for a year of reports: seconds), so the first answer's time and kind are kept on the
incident (`answered_at`, `answer`), set by a trigger on incident_transitions: whatever writes a
transition (the workflow, the sample loader, a repair script) keeps them right, and an earlier
transition inserted late still wins (LEAST). Existing transitions are backfilled.

incidents_transparency_idx: the public reports (a service code, not a duplicate, never a
security event) by time received, carrying every column the figures read, so a period's
figures are one index-only range scan (bench/transparency.py).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(r"""
    ALTER TABLE incidents
        ADD COLUMN answered_at timestamptz,
        ADD COLUMN answer text CHECK (answer IN ('resolved', 'rejected')),
        ADD CONSTRAINT incidents_answered_pair_check CHECK ((answered_at IS NULL) = (answer IS NULL));

    CREATE FUNCTION geoioc_first_answer() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE incidents SET answered_at = NEW.at, answer = NEW.to_status
        WHERE id = NEW.incident_id AND (answered_at IS NULL OR answered_at > NEW.at);
        RETURN NULL;
    END $$;
    CREATE TRIGGER incident_transitions_first_answer AFTER INSERT ON incident_transitions
        FOR EACH ROW WHEN (NEW.kind = 'status' AND NEW.to_status IN ('resolved', 'rejected'))
        EXECUTE FUNCTION geoioc_first_answer();

    UPDATE incidents i SET answered_at = f.at, answer = f.to_status
    FROM (SELECT DISTINCT ON (incident_id) incident_id, at, to_status FROM incident_transitions
          WHERE kind = 'status' AND to_status IN ('resolved', 'rejected')
          ORDER BY incident_id, at, id) AS f
    WHERE f.incident_id = i.id;

    CREATE INDEX incidents_transparency_idx ON incidents (reported_at)
        INCLUDE (agency_code, commune_code, answered_at, answer, expected_at, status)
        WHERE service_code IS NOT NULL AND duplicate_of IS NULL
          AND category <> 'security_event';
    """)


def downgrade() -> None:
    op.execute("""
    DROP INDEX IF EXISTS incidents_transparency_idx;
    DROP TRIGGER IF EXISTS incident_transitions_first_answer ON incident_transitions;
    DROP FUNCTION IF EXISTS geoioc_first_answer();
    ALTER TABLE incidents DROP CONSTRAINT IF EXISTS incidents_answered_pair_check,
        DROP COLUMN IF EXISTS answer, DROP COLUMN IF EXISTS answered_at;
    """)
