"""Parcel inspection: edit history with "as of" queries, zoning-conflict rules, search indexes.

* `parcel_history` keeps every superseded or deleted parcel row with its system-time validity
  [valid_from, valid_to), who changed it (session setting `geoioc.user`, set with SET LOCAL by
  the application) and how. It is written by triggers on `parcels`, so no code path (API, CLI,
  psql) can change a parcel without leaving history; a BEFORE UPDATE trigger also bumps
  `version` and `updated_at`, which optimistic locking relies on. The trigger function is
  SECURITY DEFINER and the application role may only read the history: the application cannot
  forge or erase it. TRUNCATE of `parcels` (a sample reload, which restarts the ids) empties it.
* `parcel_zoning_rules` is data, not code: which parcel land-use codes conflict with which
  planning-zone codes (houses or factories on protected rice land or protection forest, ...),
  and how much of the parcel the zone must cover to count.
* Indexes for the hot searches: the pre-2025 commune key, and a trigram index over the
  accent- and case-folded land user's name (`geoioc_fold`, an IMMUTABLE wrapper of unaccent
  with an explicit dictionary, which is what makes it indexable).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# (parcel land-use code, zone land-use code, reason in Vietnamese, reason in English).
# Residential and non-agricultural business use are not allowed on land the plan keeps for
# wet rice (LUC is protected by the 2024 Land Law, art. 182), or for protection/special-use
# forest, irrigation, rivers or cemeteries.
RULES: list[tuple[str, str, str, str]] = [
    (p, z, vi, en)
    for ps, zs, vi, en in [
        (("ODT", "ONT"), ("LUC", "LUK"),
         "Đất ở trong vùng quy hoạch đất trồng lúa", "Residential use in a rice-land zone"),
        (("ODT", "ONT"), ("RPH", "RDD"),
         "Đất ở trong vùng quy hoạch rừng phòng hộ, đặc dụng",
         "Residential use in a protection or special-use forest zone"),
        (("ODT", "ONT"), ("DTL", "SON", "NTD"),
         "Đất ở trong vùng quy hoạch thủy lợi, sông ngòi hoặc nghĩa trang",
         "Residential use in an irrigation, river or cemetery zone"),
        (("SKK", "SKN", "SKC", "TMD"), ("LUC", "LUK"),
         "Đất sản xuất, kinh doanh trong vùng quy hoạch đất trồng lúa",
         "Business or industrial use in a rice-land zone"),
        (("SKK", "SKN", "SKC", "TMD"), ("RPH", "RDD"),
         "Đất sản xuất, kinh doanh trong vùng quy hoạch rừng phòng hộ, đặc dụng",
         "Business or industrial use in a protection or special-use forest zone"),
    ]
    for p in ps
    for z in zs
]  # fmt: skip


def _sql_literal(s: str) -> str:
    """Quote a constant of this file as an SQL literal (no user input ever reaches it)."""
    return "'" + s.replace("'", "''") + "'"


UPGRADE = r"""
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Accent- and case-folded text for Vietnamese name search ("Đức" = "duc"). unaccent() itself
-- is only STABLE (it looks its dictionary up by search_path); naming the dictionary makes the
-- result depend on the argument only, so it may be used in an index.
CREATE FUNCTION geoioc_fold(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
$$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, t)) $$;

CREATE INDEX parcels_land_user_trgm_idx ON parcels USING gin (geoioc_fold(land_user) gin_trgm_ops);
-- The unique key leads with the post-2025 commune; lookups by the old commune code need this.
CREATE INDEX parcels_old_key_idx ON parcels (old_commune_code, sheet_no, parcel_no)
    WHERE old_commune_code IS NOT NULL;
-- ... and the unique key has old_commune_code between the commune and the sheet, so a lookup by
-- (commune, sheet, parcel) would walk a whole commune's entries without this one.
CREATE INDEX parcels_key_idx ON parcels (commune_code, sheet_no, parcel_no);

CREATE TABLE parcel_history (
    history_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parcel_id        bigint NOT NULL,
    commune_code     text NOT NULL,
    old_commune_code text,
    sheet_no         integer NOT NULL,
    parcel_no        integer NOT NULL,
    land_use_codes   text[] NOT NULL,
    legal_area       numeric(12, 1) NOT NULL,
    land_user        text,
    land_user_id     text,
    certificate_no   text,
    use_until        date,
    origin           text,
    version          integer NOT NULL,
    geom             geometry(MultiPolygon, 4326) NOT NULL,
    valid_from       timestamptz NOT NULL,
    valid_to         timestamptz NOT NULL CHECK (valid_to >= valid_from),
    operation        text NOT NULL CHECK (operation IN ('UPDATE', 'DELETE')),
    changed_by       text NOT NULL,
    -- Why the row was superseded (session setting `geoioc.note`), e.g. a survey or a decision.
    change_note      text,
    UNIQUE (parcel_id, version)
);
CREATE INDEX parcel_history_parcel_idx ON parcel_history (parcel_id, valid_to);
CREATE INDEX parcel_history_key_idx ON parcel_history (commune_code, sheet_no, parcel_no);
-- Neighbours of a parcel "as of" a past date are looked up here too.
CREATE INDEX parcel_history_geom_idx ON parcel_history USING gist (geom);

-- Every update gets a new version and time, whoever runs it: optimistic locking compares
-- versions, and "as of" compares updated_at with the history's validity. clock_timestamp(),
-- not now(): a transaction that waited for this row's lock must not get a time earlier than
-- the update it waited for.
CREATE FUNCTION parcels_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    NEW.updated_at := greatest(clock_timestamp(), OLD.updated_at);
    RETURN NEW;
END $$;
CREATE TRIGGER parcels_bump_version BEFORE UPDATE ON parcels
    FOR EACH ROW EXECUTE FUNCTION parcels_bump_version();

CREATE FUNCTION parcels_keep_history() RETURNS trigger
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
CREATE TRIGGER parcels_keep_history AFTER UPDATE OR DELETE ON parcels
    FOR EACH ROW EXECUTE FUNCTION parcels_keep_history();

-- A reload truncates parcels and restarts their ids: the old history would then describe
-- other parcels.
CREATE FUNCTION parcels_truncate_history() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    TRUNCATE parcel_history RESTART IDENTITY;
    RETURN NULL;
END $$;
CREATE TRIGGER parcels_truncate_history AFTER TRUNCATE ON parcels
    FOR EACH STATEMENT EXECUTE FUNCTION parcels_truncate_history();

CREATE TABLE parcel_zoning_rules (
    parcel_code text NOT NULL REFERENCES land_use_codes (code),
    zone_code   text NOT NULL REFERENCES land_use_codes (code),
    -- The conflict counts when zones of zone_code cover more than min_share of the parcel
    -- and more than min_area_m2 (digitising slivers along a zone edge are not conflicts).
    min_share   numeric(4, 3) NOT NULL DEFAULT 0.1 CHECK (min_share >= 0 AND min_share < 1),
    min_area_m2 numeric(8, 1) NOT NULL DEFAULT 5 CHECK (min_area_m2 >= 0),
    reason_vi   text NOT NULL CHECK (reason_vi <> ''),
    reason_en   text NOT NULL CHECK (reason_en <> ''),
    PRIMARY KEY (parcel_code, zone_code),
    CHECK (parcel_code <> zone_code)
);

INSERT INTO parcel_zoning_rules (parcel_code, zone_code, reason_vi, reason_en) VALUES
@RULES@;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
        -- History is written by the SECURITY DEFINER trigger only; the rules are reference data.
        REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON parcel_history, parcel_zoning_rules
            FROM geoioc_app;
        GRANT SELECT ON parcel_history, parcel_zoning_rules TO geoioc_app;
    END IF;
END $$;
REVOKE ALL ON FUNCTION parcels_keep_history(), parcels_truncate_history() FROM PUBLIC;
""".replace(
    "@RULES@",
    ",\n".join(
        "(" + ", ".join(_sql_literal(v) for v in rule) + ")" for rule in RULES
    ),
)

DOWNGRADE = r"""
DROP TRIGGER IF EXISTS parcels_truncate_history ON parcels;
DROP TRIGGER IF EXISTS parcels_keep_history ON parcels;
DROP TRIGGER IF EXISTS parcels_bump_version ON parcels;
DROP FUNCTION IF EXISTS parcels_truncate_history();
DROP FUNCTION IF EXISTS parcels_keep_history();
DROP FUNCTION IF EXISTS parcels_bump_version();
DROP TABLE IF EXISTS parcel_zoning_rules, parcel_history;
DROP INDEX IF EXISTS parcels_key_idx;
DROP INDEX IF EXISTS parcels_old_key_idx;
DROP INDEX IF EXISTS parcels_land_user_trgm_idx;
DROP FUNCTION IF EXISTS geoioc_fold(text);
-- Only when this role created it: a superuser may have installed it for everybody.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_extension e JOIN pg_roles r ON r.oid = e.extowner
                WHERE e.extname = 'pg_trgm' AND r.rolname = current_user) THEN
        DROP EXTENSION pg_trgm;
    END IF;
END $$;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
