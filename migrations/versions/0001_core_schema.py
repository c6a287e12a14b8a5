"""Core schema: administrative units, land-use codes, parcels, zones, roads, places, cameras,
sensors and observations, incidents.

Storage is EPSG:4326; constraints make bad rows impossible (valid geometries, code formats,
value ranges, non-overlapping validity periods) rather than merely unlikely.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE EXTENSION IF NOT EXISTS unaccent;

-- A geometry is acceptable when it is valid, non-empty and has no NaN/empty parts.
CREATE FUNCTION geoioc_geom_ok(g geometry) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT g IS NULL OR (NOT ST_IsEmpty(g) AND ST_IsValid(g)) $$;

CREATE TABLE land_use_codes (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Z]{3}$'),
    name_vi     text NOT NULL CHECK (name_vi <> ''),
    name_en     text NOT NULL CHECK (name_en <> ''),
    grp         text NOT NULL CHECK (grp IN ('agricultural', 'residential', 'public',
                    'business', 'public_works', 'other', 'unused')),
    color       text NOT NULL CHECK (color ~ '^#[0-9a-f]{6}$'),
    valid_from  date NOT NULL,
    valid_to    date CHECK (valid_to IS NULL OR valid_to > valid_from)
);

CREATE TABLE admin_units (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text NOT NULL,
    name        text NOT NULL CHECK (name <> ''),
    level       text NOT NULL CHECK (level IN ('province', 'district', 'commune')),
    parent_code text,
    population  integer CHECK (population >= 0),
    valid_from  date NOT NULL,
    valid_to    date CHECK (valid_to IS NULL OR valid_to > valid_from),
    geom        geometry(MultiPolygon, 4326) NOT NULL CHECK (geoioc_geom_ok(geom)),
    CHECK ((level = 'province' AND code ~ '^[0-9]{2}$' AND parent_code IS NULL)
        OR (level = 'district' AND code ~ '^[0-9]{3}$' AND parent_code ~ '^[0-9]{2}$')
        OR (level = 'commune' AND code ~ '^[0-9]{5}$' AND parent_code ~ '^[0-9]{2,3}$')),
    -- One unit per code at any date: the 2025 reform ends rows, it does not overwrite them.
    EXCLUDE USING gist (code WITH =, daterange(valid_from, valid_to) WITH &&)
);
CREATE INDEX admin_units_geom_idx ON admin_units USING gist (geom);
CREATE INDEX admin_units_parent_idx ON admin_units (parent_code);
CREATE INDEX admin_units_name_idx ON admin_units (lower(name));

CREATE TABLE parcels (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    commune_code     text NOT NULL CHECK (commune_code ~ '^[0-9]{5}$'),
    old_commune_code text CHECK (old_commune_code ~ '^[0-9]{5}$'),
    sheet_no         integer NOT NULL CHECK (sheet_no BETWEEN 1 AND 9999),
    parcel_no        integer NOT NULL CHECK (parcel_no BETWEEN 1 AND 99999),
    land_use_codes   text[] NOT NULL CHECK (cardinality(land_use_codes) BETWEEN 1 AND 4
                        AND array_position(land_use_codes, NULL) IS NULL),
    legal_area       numeric(12, 1) NOT NULL CHECK (legal_area > 0),
    land_user        text,
    land_user_id     text CHECK (land_user_id ~ '^[0-9]{9}([0-9]{3})?$'),
    certificate_no   text,
    use_until        date,
    origin           text CHECK (origin IN ('allocation', 'lease', 'recognition', 'transfer')),
    version          integer NOT NULL DEFAULT 1 CHECK (version > 0),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    geom             geometry(MultiPolygon, 4326) NOT NULL CHECK (geoioc_geom_ok(geom)),
    -- Sheet numbers restart per (old) commune: the old code stays part of the key after merges.
    UNIQUE NULLS NOT DISTINCT (commune_code, old_commune_code, sheet_no, parcel_no)
);
CREATE INDEX parcels_geom_idx ON parcels USING gist (geom);
CREATE INDEX parcels_land_use_idx ON parcels USING gin (land_use_codes);

-- Arrays cannot carry foreign keys: check each land-use code against the code list.
CREATE FUNCTION parcels_check_land_use() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad text;
BEGIN
    SELECT c INTO bad FROM unnest(NEW.land_use_codes) AS c
     WHERE NOT EXISTS (SELECT 1 FROM land_use_codes l WHERE l.code = c) LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('unknown land-use code %L in parcels.land_use_codes', bad);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER parcels_check_land_use BEFORE INSERT OR UPDATE OF land_use_codes ON parcels
    FOR EACH ROW EXECUTE FUNCTION parcels_check_land_use();

CREATE TABLE land_use_zones (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    land_use_code text NOT NULL REFERENCES land_use_codes (code),
    plan_name     text NOT NULL,
    approved_on   date NOT NULL,
    commune_code  text CHECK (commune_code ~ '^[0-9]{5}$'),
    geom          geometry(MultiPolygon, 4326) NOT NULL CHECK (geoioc_geom_ok(geom))
);
CREATE INDEX land_use_zones_geom_idx ON land_use_zones USING gist (geom);

CREATE TABLE roads (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text,
    road_class    text NOT NULL CHECK (road_class IN ('expressway', 'trunk', 'primary',
                      'secondary', 'local')),
    lanes         smallint NOT NULL CHECK (lanes BETWEEN 1 AND 12),
    max_speed     smallint NOT NULL CHECK (max_speed BETWEEN 5 AND 130),
    traffic_state text NOT NULL CHECK (traffic_state IN ('free', 'moderate', 'heavy',
                      'jammed')),
    traffic_at    timestamptz,
    geom          geometry(LineString, 4326) NOT NULL CHECK (geoioc_geom_ok(geom))
);
CREATE INDEX roads_geom_idx ON roads USING gist (geom);

CREATE TABLE tourism_places (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name      text NOT NULL CHECK (name <> ''),
    name_en   text,
    category  text NOT NULL CHECK (category IN ('pagoda', 'temple', 'festival', 'craft_village',
                  'museum', 'park', 'hotel', 'restaurant')),
    address   text,
    rating    numeric(2, 1) CHECK (rating BETWEEN 0 AND 5),
    visitors_per_year integer CHECK (visitors_per_year >= 0),
    geom      geometry(Point, 4326) NOT NULL CHECK (geoioc_geom_ok(geom))
);
CREATE INDEX tourism_places_geom_idx ON tourism_places USING gist (geom);

CREATE TABLE cameras (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code       text NOT NULL UNIQUE CHECK (code ~ '^CAM-[0-9]{4,6}$'),
    name       text NOT NULL,
    heading    smallint NOT NULL CHECK (heading BETWEEN 0 AND 359),
    fov_deg    smallint NOT NULL CHECK (fov_deg BETWEEN 1 AND 360),
    range_m    smallint NOT NULL CHECK (range_m BETWEEN 1 AND 2000),
    status     text NOT NULL CHECK (status IN ('online', 'offline', 'maintenance')),
    stream_url text CHECK (stream_url ~ '^(rtsp|https?)://'),
    fov        geometry(Polygon, 4326) NOT NULL CHECK (geoioc_geom_ok(fov)),
    geom       geometry(Point, 4326) NOT NULL CHECK (geoioc_geom_ok(geom))
);
CREATE INDEX cameras_geom_idx ON cameras USING gist (geom);
CREATE INDEX cameras_fov_idx ON cameras USING gist (fov);

CREATE TABLE sensors (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code      text NOT NULL UNIQUE CHECK (code ~ '^(AIR|WAT)-[0-9]{3,6}$'),
    name      text NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('air', 'water')),
    parameter text NOT NULL CHECK (parameter IN ('pm25', 'pm10', 'no2', 'ph', 'turbidity',
                  'dissolved_oxygen', 'cod')),
    unit      text NOT NULL,
    threshold double precision NOT NULL,
    status    text NOT NULL CHECK (status IN ('online', 'offline', 'maintenance')),
    geom      geometry(Point, 4326) NOT NULL CHECK (geoioc_geom_ok(geom)),
    CHECK ((kind = 'air') = (parameter IN ('pm25', 'pm10', 'no2')))
);
CREATE INDEX sensors_geom_idx ON sensors USING gist (geom);

CREATE TABLE observations (
    sensor_id   bigint NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    observed_at timestamptz NOT NULL,
    value       double precision NOT NULL CHECK (value = value AND value >= 0),
    PRIMARY KEY (sensor_id, observed_at)
);
CREATE INDEX observations_time_brin ON observations USING brin (observed_at);

CREATE TABLE incidents (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    category     text NOT NULL CHECK (category IN ('traffic_accident', 'public_order', 'fire',
                     'environment', 'land_violation', 'infrastructure', 'security_event')),
    severity     smallint NOT NULL CHECK (severity BETWEEN 1 AND 4),
    status       text NOT NULL CHECK (status IN ('new', 'assigned', 'in_progress', 'resolved',
                     'closed')),
    source       text NOT NULL CHECK (source IN ('hotline', 'citizen_app', 'camera', 'sensor',
                     'patrol', 'social_media')),
    title        text NOT NULL CHECK (title <> ''),
    description  text,
    commune_code text CHECK (commune_code ~ '^[0-9]{5}$'),
    reported_at  timestamptz NOT NULL,
    resolved_at  timestamptz CHECK (resolved_at >= reported_at),
    geom         geometry(Point, 4326) NOT NULL CHECK (geoioc_geom_ok(geom)),
    CHECK ((status IN ('resolved', 'closed')) = (resolved_at IS NOT NULL))
);
CREATE INDEX incidents_geom_idx ON incidents USING gist (geom);
CREATE INDEX incidents_reported_brin ON incidents USING brin (reported_at);
CREATE INDEX incidents_category_idx ON incidents (category, reported_at);

-- Provenance of the synthetic sample (parameters, content hash, planted anomalies).
CREATE TABLE sample_info (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    seed       integer NOT NULL,
    scale      double precision NOT NULL CHECK (scale > 0),
    as_of      date NOT NULL,
    loaded_at  timestamptz NOT NULL DEFAULT now(),
    data_hash  text NOT NULL,
    planted    jsonb NOT NULL DEFAULT '{}'
);
"""

DOWNGRADE = r"""
DROP TABLE IF EXISTS sample_info, incidents, observations, sensors, cameras, tourism_places,
    roads, land_use_zones, parcels, admin_units, land_use_codes CASCADE;
DROP FUNCTION IF EXISTS parcels_check_land_use();
DROP FUNCTION IF EXISTS geoioc_geom_ok(geometry);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
