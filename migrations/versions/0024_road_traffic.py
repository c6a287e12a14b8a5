"""Road traffic (issue 16): road segments as SensorThings Things with speed and flow datastreams,
and the roads layer's live congestion state.

The Thing model, generalised (migration 0020 had Thing = a row of `sensors`):

- `things`: one row per Thing, of one kind: a station's probe (`sensor_id`, a row of `sensors`)
  or a road segment watched by a traffic detector (`road_id`, a row of `roads`). `datastreams`
  and `thing_locations` now refer to `things`, so every Datastream has a Thing and STA serves
  both kinds alike (gis/sta/model.py reads a Thing's name, description and properties from its
  sensors or roads row).
- A station's Thing keeps its sensors id (`things.id = sensor_id`, checked), so every id that
  0020 gave out stays valid and `JOIN sensors s ON s.id = d.thing_id` still finds a station
  (and, rightly, no road segment). Road segments' Things draw their ids from the same sequence
  as the sensors (`sensors_id_seq`), so the two kinds never collide.
- A road segment of a main class (MAIN_CLASSES: expressway, trunk, primary) gets its Thing, a
  Location/HistoricalLocation and FeatureOfInterest that are the segment's line, and two
  datastreams, traffic_speed (km/h) and traffic_flow (vehicles/h), with the sensor model
  `traffic-detector`, public like the roads layer. A trigger on `roads` does it when a segment
  is inserted, changes class to a main one or moves (a new Location), as the sensors' trigger
  does for stations; a segment that leaves the main classes keeps its Thing and history.
  The trigger waits when the session sets `geoioc.defer_road_things` to 'on' (the sample
  loader: roads are loaded before the stations, whose datastreams should come first); then
  `geoioc_road_things()` makes what is missing.

The live state, on the roads row so tiles and OGC items read it without a join:

- `free_flow_speed` (km/h, NULL: `max_speed` stands for it) is what a segment's speed is
  compared with; `speed_ratio` = latest speed / free-flow speed, NULL while the state is not
  from live data (the sample's static states, or a live state that went stale).
- `traffic_state` is the congestion class of the ratio (`traffic_congestion_classes`, data:
  free >= 0.75, moderate >= 0.5, heavy >= 0.25, jammed below), set by the ingest's statement
  (gis/sensors/queries.py STORE) from the speeds it inserted, in the batch's transaction, with
  `traffic_at` the observation's time. Only observations newer than the segment's live state
  and younger than `geoioc_traffic_stale_after()` (30 minutes) count, so a back-fill of old
  data does not repaint today's map. The new value 'unknown' is a monitored segment whose live
  data stopped: the sweep (gis/sensors/traffic.py, every minute) sets it, speed_ratio NULL,
  once its latest speed is older than the staleness period.
- Each class change is announced on channel `geoioc_live` (kind `congestion`) in the same
  transaction.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03
"""

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE roads
    ADD COLUMN free_flow_speed smallint CHECK (free_flow_speed BETWEEN 5 AND 130),
    ADD COLUMN speed_ratio real CHECK (speed_ratio >= 0 AND speed_ratio < 10),
    DROP CONSTRAINT roads_traffic_state_check,
    ADD CONSTRAINT roads_traffic_state_check
        CHECK (traffic_state IN ('free', 'moderate', 'heavy', 'jammed', 'unknown'));
-- The live columns are in no index and pages keep room, so the ingest's updates of them are
-- HOT (no index entry written: the name's trigram GIN and the GiST would cost most); the
-- minute's sweep reads the few thousand rows instead.
ALTER TABLE roads SET (fillfactor = 85);

-- The congestion classes: a ratio of speed to free-flow speed at or above min_ratio (and below
-- the next class's) is of this class.
CREATE TABLE traffic_congestion_classes (
    state     text PRIMARY KEY CHECK (state IN ('free', 'moderate', 'heavy', 'jammed')),
    min_ratio real NOT NULL UNIQUE CHECK (min_ratio >= 0 AND min_ratio <= 1),
    source    text NOT NULL DEFAULT ''
);
INSERT INTO traffic_congestion_classes (state, min_ratio, source) VALUES
    ('free', 0.75, 'GeoIOC: speed at least 3/4 of free flow'),
    ('moderate', 0.5, 'GeoIOC: half to 3/4 of free flow'),
    ('heavy', 0.25, 'GeoIOC: a quarter to half of free flow'),
    ('jammed', 0, 'GeoIOC: under a quarter of free flow');

CREATE FUNCTION geoioc_congestion(ratio double precision) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT c.state FROM traffic_congestion_classes c
     WHERE ratio >= c.min_ratio ORDER BY c.min_ratio DESC LIMIT 1
$$;

-- How long a segment's live state holds without new speeds.
CREATE FUNCTION geoioc_traffic_stale_after() RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT interval '30 minutes' $$;

CREATE TABLE things (
    id        bigint PRIMARY KEY DEFAULT nextval('sensors_id_seq'::regclass),
    sensor_id bigint UNIQUE REFERENCES sensors (id) ON DELETE CASCADE CHECK (sensor_id = id),
    road_id   bigint UNIQUE REFERENCES roads (id) ON DELETE CASCADE,
    CHECK (num_nonnulls(sensor_id, road_id) = 1)
);
INSERT INTO things (id, sensor_id) SELECT id, id FROM sensors ORDER BY id;
ALTER TABLE datastreams DROP CONSTRAINT datastreams_thing_id_fkey,
    ADD CONSTRAINT datastreams_thing_id_fkey FOREIGN KEY (thing_id)
        REFERENCES things (id) ON DELETE CASCADE;
ALTER TABLE thing_locations DROP CONSTRAINT thing_locations_thing_id_fkey,
    ADD CONSTRAINT thing_locations_thing_id_fkey FOREIGN KEY (thing_id)
        REFERENCES things (id) ON DELETE CASCADE;

INSERT INTO sensor_models (code, name, description, encoding_type, metadata) VALUES
 ('traffic-detector', 'Thiết bị đo tốc độ và lưu lượng giao thông',
  'Traffic detector of a road segment (radar or loop): mean speed and vehicles per hour',
  'text/html', 'urn:geoioc:sensor:traffic-detector');

-- 0020's function, now making the station's Thing first.
CREATE OR REPLACE FUNCTION geoioc_thing_sync(s sensors, at timestamptz, moved boolean,
                                             reparameter boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    foi bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM things WHERE sensor_id = s.id) THEN
        INSERT INTO things (id, sensor_id) VALUES (s.id, s.id);
    END IF;
    IF moved THEN
        INSERT INTO features_of_interest (name, description, feature)
        VALUES (s.name, 'Vị trí ' || s.code, s.geom) RETURNING id INTO foi;
        INSERT INTO thing_locations (thing_id, time, name, description, geom, feature_of_interest_id)
        VALUES (s.id, at, s.name, 'Vị trí ' || s.code, s.geom, foi)
        ON CONFLICT (thing_id, time) DO UPDATE
            SET geom = excluded.geom, feature_of_interest_id = excluded.feature_of_interest_id;
    END IF;
    IF reparameter THEN
        INSERT INTO datastreams (thing_id, sensor_model_id, observed_property_id, name,
                                 description, unit_of_measurement)
        SELECT s.id, m.id, p.id, s.name, p.name_vi || ' tại ' || s.code,
               jsonb_set(p.default_unit, '{symbol}', to_jsonb(s.unit))
          FROM observed_properties p, sensor_models m
         WHERE p.code = s.parameter AND m.code = 'station-' || s.kind
        ON CONFLICT (thing_id, observed_property_id) DO NOTHING;
    END IF;
END $$;

CREATE FUNCTION geoioc_road_label(r roads) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(r.name, 'Đường không tên') || ' – đoạn ' || r.id
$$;

-- A main road segment's Thing, its Location when new or moved, its two datastreams.
CREATE FUNCTION geoioc_road_thing_sync(r roads, at timestamptz, moved boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    thing bigint;
    foi bigint;
BEGIN
    IF r.road_class NOT IN ('expressway', 'trunk', 'primary') THEN
        RETURN;
    END IF;
    SELECT id INTO thing FROM things WHERE road_id = r.id;
    IF thing IS NULL THEN
        INSERT INTO things (road_id) VALUES (r.id) RETURNING id INTO thing;
        moved := true;
    END IF;
    IF moved THEN
        INSERT INTO features_of_interest (name, description, feature)
        VALUES (geoioc_road_label(r), 'Đoạn đường ' || r.id, r.geom) RETURNING id INTO foi;
        INSERT INTO thing_locations (thing_id, time, name, description, geom, feature_of_interest_id)
        VALUES (thing, at, geoioc_road_label(r), 'Đoạn đường ' || r.id, r.geom, foi)
        ON CONFLICT (thing_id, time) DO UPDATE
            SET geom = excluded.geom, feature_of_interest_id = excluded.feature_of_interest_id;
    END IF;
    INSERT INTO datastreams (thing_id, sensor_model_id, observed_property_id, name,
                             description, unit_of_measurement)
    SELECT thing, m.id, p.id, geoioc_road_label(r) || ' – ' || p.name_vi,
           p.name_vi || ' trên đoạn đường ' || r.id, p.default_unit
      FROM observed_properties p, sensor_models m
     WHERE p.code IN ('traffic_speed', 'traffic_flow') AND m.code = 'traffic-detector'
     ORDER BY p.code DESC  -- speed first
    ON CONFLICT (thing_id, observed_property_id) DO NOTHING;
END $$;

CREATE FUNCTION geoioc_roads_thing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('geoioc.defer_road_things', true) = 'on' THEN
        RETURN NULL;
    END IF;
    PERFORM geoioc_road_thing_sync(NEW, now(),
        TG_OP = 'UPDATE' AND NOT ST_OrderingEquals(OLD.geom, NEW.geom));
    RETURN NULL;
END $$;
CREATE TRIGGER roads_thing AFTER INSERT OR UPDATE OF geom, road_class ON roads
    FOR EACH ROW EXECUTE FUNCTION geoioc_roads_thing();

-- The main segments that have no Thing yet get theirs (after a deferred load); how many.
CREATE FUNCTION geoioc_road_things(at timestamptz DEFAULT now()) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r roads;
    n integer := 0;
BEGIN
    FOR r IN SELECT * FROM roads x
              WHERE x.road_class IN ('expressway', 'trunk', 'primary')
                AND NOT EXISTS (SELECT 1 FROM things t WHERE t.road_id = x.id)
              ORDER BY x.id LOOP
        PERFORM geoioc_road_thing_sync(r, at, true);
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

SELECT geoioc_road_things();
"""

DOWNGRADE = r"""
DROP TRIGGER roads_thing ON roads;
DROP FUNCTION geoioc_roads_thing();
DROP FUNCTION geoioc_road_things(timestamptz);
DROP FUNCTION geoioc_road_thing_sync(roads, timestamptz, boolean);
DROP FUNCTION geoioc_road_label(roads);
-- Road segments' datastreams (and their observations), Locations and the features of
-- interest nothing else refers to.
DELETE FROM datastreams d USING things t WHERE t.id = d.thing_id AND t.road_id IS NOT NULL;
CREATE TEMP TABLE road_features ON COMMIT DROP AS
SELECT l.feature_of_interest_id AS id FROM thing_locations l JOIN things t ON t.id = l.thing_id
 WHERE t.road_id IS NOT NULL;
DELETE FROM thing_locations l USING things t WHERE t.id = l.thing_id AND t.road_id IS NOT NULL;
DELETE FROM features_of_interest f USING road_features r
 WHERE f.id = r.id
   AND f.id NOT IN (SELECT feature_of_interest_id FROM observations)
   AND f.id NOT IN (SELECT feature_of_interest_id FROM thing_locations);
DELETE FROM sensor_models WHERE code = 'traffic-detector';
ALTER TABLE datastreams DROP CONSTRAINT datastreams_thing_id_fkey,
    ADD CONSTRAINT datastreams_thing_id_fkey FOREIGN KEY (thing_id)
        REFERENCES sensors (id) ON DELETE CASCADE;
ALTER TABLE thing_locations DROP CONSTRAINT thing_locations_thing_id_fkey,
    ADD CONSTRAINT thing_locations_thing_id_fkey FOREIGN KEY (thing_id)
        REFERENCES sensors (id) ON DELETE CASCADE;
DROP TABLE things;
CREATE OR REPLACE FUNCTION geoioc_thing_sync(s sensors, at timestamptz, moved boolean,
                                             reparameter boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    foi bigint;
BEGIN
    IF moved THEN
        INSERT INTO features_of_interest (name, description, feature)
        VALUES (s.name, 'Vị trí ' || s.code, s.geom) RETURNING id INTO foi;
        INSERT INTO thing_locations (thing_id, time, name, description, geom, feature_of_interest_id)
        VALUES (s.id, at, s.name, 'Vị trí ' || s.code, s.geom, foi)
        ON CONFLICT (thing_id, time) DO UPDATE
            SET geom = excluded.geom, feature_of_interest_id = excluded.feature_of_interest_id;
    END IF;
    IF reparameter THEN
        INSERT INTO datastreams (thing_id, sensor_model_id, observed_property_id, name,
                                 description, unit_of_measurement)
        SELECT s.id, m.id, p.id, s.name, p.name_vi || ' tại ' || s.code,
               jsonb_set(p.default_unit, '{symbol}', to_jsonb(s.unit))
          FROM observed_properties p, sensor_models m
         WHERE p.code = s.parameter AND m.code = 'station-' || s.kind
        ON CONFLICT (thing_id, observed_property_id) DO NOTHING;
    END IF;
END $$;
DROP FUNCTION geoioc_traffic_stale_after();
DROP FUNCTION geoioc_congestion(double precision);
DROP TABLE traffic_congestion_classes;
ALTER TABLE roads RESET (fillfactor);
UPDATE roads SET traffic_state = 'free' WHERE traffic_state = 'unknown';
ALTER TABLE roads DROP COLUMN free_flow_speed, DROP COLUMN speed_ratio,
    DROP CONSTRAINT roads_traffic_state_check,
    ADD CONSTRAINT roads_traffic_state_check
        CHECK (traffic_state IN ('free', 'moderate', 'heavy', 'jammed'));
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
