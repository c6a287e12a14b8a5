"""Legal time of parcels, beside the system time of their history.

`parcel_history` (migration 0006) says when the database held each version of a parcel
(system time: [valid_from, valid_to), written by triggers). A parcel's legal history is older
than the database: a certificate issued in 2008, a transfer registered in 2017, the commune
merger of 1 July 2025. Two columns carry it, on `parcels` and on `parcel_history` (copied by
the history trigger like every other column):

* `legal_valid_from` - the date the version took legal effect (the decision's or the
  registration's date); empty when the source did not say (the sample's ordinary parcels,
  imports without it);
* `decision_no` - the decision or document that made the version (e.g. "1234/QĐ-UBND").

Versions follow each other in legal order: the version trigger refuses an update whose
`legal_valid_from` is earlier than the one of the version it replaces (a correction may keep
the same date, and an undated version follows anything). So a parcel's history, in version
order, is also in legal order, whoever writes it (imports, edits, psql).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE parcels
    ADD COLUMN legal_valid_from date CHECK (legal_valid_from >= '1900-01-01'),
    ADD COLUMN decision_no text CHECK (decision_no <> '' AND length(decision_no) <= 100);
ALTER TABLE parcel_history
    ADD COLUMN legal_valid_from date,
    ADD COLUMN decision_no text;
-- A parcel across its versions (gis.io.imports.versions): its sheets are numbered in its
-- pre-2025 commune when it has one, so that code, else the commune's, with sheet and number.
CREATE INDEX parcels_identity_idx ON parcels ((coalesce(old_commune_code, commune_code)),
    sheet_no, parcel_no);

CREATE OR REPLACE FUNCTION parcels_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.legal_valid_from < OLD.legal_valid_from THEN
        RAISE check_violation USING
            MESSAGE = format('parcel %s: a version valid from %s cannot replace the version valid '
                             'from %s (versions follow each other in legal order)',
                             OLD.id, NEW.legal_valid_from, OLD.legal_valid_from);
    END IF;
    NEW.version := OLD.version + 1;
    NEW.updated_at := greatest(clock_timestamp(), OLD.updated_at);
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION parcels_keep_history() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    who text := coalesce(nullif(current_setting('geoioc.user', true), ''), 'db:' || session_user);
    until timestamptz := CASE WHEN TG_OP = 'UPDATE' THEN NEW.updated_at
                              ELSE greatest(clock_timestamp(), OLD.updated_at) END;
BEGIN
    INSERT INTO parcel_history (parcel_id, commune_code, old_commune_code, sheet_no, parcel_no,
        land_use_codes, legal_area, land_user, land_user_id, certificate_no, use_until, origin,
        legal_valid_from, decision_no,
        version, geom, valid_from, valid_to, operation, changed_by, change_note)
    VALUES (OLD.id, OLD.commune_code, OLD.old_commune_code, OLD.sheet_no, OLD.parcel_no,
        OLD.land_use_codes, OLD.legal_area, OLD.land_user, OLD.land_user_id, OLD.certificate_no,
        OLD.use_until, OLD.origin, OLD.legal_valid_from, OLD.decision_no,
        OLD.version, OLD.geom, OLD.updated_at, until, TG_OP, who,
        nullif(current_setting('geoioc.note', true), ''));
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION parcels_keep_history() FROM PUBLIC;
"""

# The functions as migration 0006 made them.
DOWNGRADE = r"""
CREATE OR REPLACE FUNCTION parcels_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    NEW.updated_at := greatest(clock_timestamp(), OLD.updated_at);
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION parcels_keep_history() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    who text := coalesce(nullif(current_setting('geoioc.user', true), ''), 'db:' || session_user);
    until timestamptz := CASE WHEN TG_OP = 'UPDATE' THEN NEW.updated_at
                              ELSE greatest(clock_timestamp(), OLD.updated_at) END;
BEGIN
    INSERT INTO parcel_history (parcel_id, commune_code, old_commune_code, sheet_no, parcel_no,
        land_use_codes, legal_area, land_user, land_user_id, certificate_no, use_until, origin,
        version, geom, valid_from, valid_to, operation, changed_by, change_note)
    VALUES (OLD.id, OLD.commune_code, OLD.old_commune_code, OLD.sheet_no, OLD.parcel_no,
        OLD.land_use_codes, OLD.legal_area, OLD.land_user, OLD.land_user_id, OLD.certificate_no,
        OLD.use_until, OLD.origin, OLD.version, OLD.geom, OLD.updated_at, until, TG_OP, who,
        nullif(current_setting('geoioc.note', true), ''));
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION parcels_keep_history() FROM PUBLIC;

DROP INDEX IF EXISTS parcels_identity_idx;
ALTER TABLE parcel_history DROP COLUMN IF EXISTS decision_no, DROP COLUMN IF EXISTS legal_valid_from;
ALTER TABLE parcels DROP COLUMN IF EXISTS decision_no, DROP COLUMN IF EXISTS legal_valid_from;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
