"""Public facilities: commune People's Committee offices, schools, health stations, hospitals,
police and fire stations (the layer `public_facilities` of the catalogue).

The operations center needs to know where the offices and services of each commune are (who to
send, where people can shelter, which school an incident is next to). The facility code is the
natural key: a re-import of the same list updates rows instead of duplicating them, so it is
UNIQUE here and the import matches on it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(r"""
    CREATE TABLE public_facilities (
        id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        code         text NOT NULL UNIQUE CHECK (code ~ '^[A-Z]{2,5}-[0-9]{5}-[0-9]{2}$'),
        name         text NOT NULL CHECK (name <> ''),
        type         text NOT NULL CHECK (type IN ('people_committee', 'school', 'clinic',
                         'hospital', 'police', 'fire_station')),
        address      text,
        capacity     integer CHECK (capacity >= 0),
        phone        text CHECK (phone ~ '^\+?[0-9][0-9 .()-]{5,19}$'),
        commune_code text CHECK (commune_code ~ '^[0-9]{5}$'),
        geom         geometry(Point, 4326) NOT NULL CHECK (geoioc_geom_ok(geom))
    );
    CREATE INDEX public_facilities_geom_idx ON public_facilities USING gist (geom);
    CREATE INDEX public_facilities_type_idx ON public_facilities (type);
    CREATE INDEX public_facilities_commune_idx ON public_facilities (commune_code);
    -- The map's search box looks for names without diacritics (geoioc_fold: migration 0006).
    CREATE INDEX public_facilities_name_trgm_idx ON public_facilities
        USING gin (geoioc_fold(name) gin_trgm_ops);
    DO $$ BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
            GRANT SELECT, INSERT, UPDATE, DELETE ON public_facilities TO geoioc_app;
            GRANT USAGE, SELECT ON SEQUENCE public_facilities_id_seq TO geoioc_app;
        END IF;
    END $$;
    """)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS public_facilities")
