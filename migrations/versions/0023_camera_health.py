"""Cameras come alive: health from heartbeats, the latest snapshot, detections that become
incidents (issue 16, "Cameras and traffic"; gis/sensors/cameras.py does the work).

* On `cameras`: `status` gains `degraded` (online, degraded, offline, maintenance); the health
  machinery moves a camera between the first three, `maintenance` is an operator's and stays.
  `last_seen` (the last heartbeat, UTC), the quality the camera last reported (`fps`,
  `bitrate_kbps`, `quality` 0..1) and `status_changed_at`: kept on the row so the map and the
  vector tiles read the health without a join.
* `camera_health(last_seen, fps, quality, now, online_s, offline_s, min_fps, min_quality)`:
  the one definition of a camera's health, in SQL, used by the heartbeat statement and the
  minute's sweep alike (settings give the seconds and the limits).
* `camera_status_history`: every change of status (from, to, when, why), timestamptz.
* `camera_snapshots`: the latest snapshot per camera, stored as report photos are (migration
  0017): only a re-encoded JPEG without metadata and its thumbnail, never the upload.
* `camera_keys`: API keys limited to cameras (a device's key: it may push heartbeats,
  snapshots and detections for its own cameras, and nothing for any other).
* `detection_categories`: what a camera's analytics report (accident, fire, crowd...) and the
  incident category and severity each becomes - data, not code.
* `camera_detections`: every detection with its confidence, time, optional snapshot and the
  incident it became (`incident_id`), or its place in the operators' queue (`pending`, then
  `confirmed` or `dismissed`, by whom and when). (camera, category, detected_at) is unique: a
  detection sent again (an MQTT redelivery) is stored once.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(r"""
    ALTER TABLE cameras DROP CONSTRAINT IF EXISTS cameras_status_check;
    ALTER TABLE cameras ADD CONSTRAINT cameras_status_check
        CHECK (status IN ('online', 'degraded', 'offline', 'maintenance'));
    ALTER TABLE cameras
        ADD COLUMN last_seen timestamptz,
        ADD COLUMN fps real CHECK (fps >= 0 AND fps <= 1000),
        ADD COLUMN bitrate_kbps real CHECK (bitrate_kbps >= 0),
        ADD COLUMN quality real CHECK (quality BETWEEN 0 AND 1),
        ADD COLUMN status_changed_at timestamptz;
    -- The panel lists cameras that are not online; the sweep reads those seen at some time.
    CREATE INDEX cameras_health_idx ON cameras (status, last_seen);

    CREATE FUNCTION camera_health(last_seen timestamptz, fps real, quality real,
                                  at timestamptz, online_s double precision,
                                  offline_s double precision, min_fps double precision,
                                  min_quality double precision)
    RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE
            WHEN last_seen IS NULL THEN 'offline'
            WHEN at - last_seen > make_interval(secs => offline_s) THEN 'offline'
            WHEN at - last_seen > make_interval(secs => online_s) THEN 'degraded'
            WHEN coalesce(fps < min_fps, false) OR coalesce(quality < min_quality, false)
                THEN 'degraded'
            ELSE 'online' END
    $$;

    CREATE TABLE camera_status_history (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        camera_id   bigint NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
        at          timestamptz NOT NULL,
        from_status text,
        to_status   text NOT NULL CHECK (to_status IN ('online', 'degraded', 'offline')),
        last_seen   timestamptz,
        -- heartbeat (a heartbeat moved it) or sweep (the passing of time did)
        cause       text NOT NULL CHECK (cause IN ('heartbeat', 'sweep'))
    );
    CREATE INDEX camera_status_history_camera_idx ON camera_status_history (camera_id, at);

    CREATE TABLE camera_snapshots (
        camera_id   bigint PRIMARY KEY REFERENCES cameras (id) ON DELETE CASCADE,
        jpeg        bytea NOT NULL CHECK (octet_length(jpeg) > 0),
        thumbnail   bytea NOT NULL CHECK (octet_length(thumbnail) > 0),
        width       integer NOT NULL CHECK (width > 0),
        height      integer NOT NULL CHECK (height > 0),
        sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
        taken_at    timestamptz NOT NULL,
        uploaded_at timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE camera_keys (
        key_prefix text NOT NULL REFERENCES api_keys (prefix) ON DELETE CASCADE,
        camera_id  bigint NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
        PRIMARY KEY (key_prefix, camera_id)
    );

    CREATE TABLE detection_categories (
        code              text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{1,39}$'),
        name_vi           text NOT NULL CHECK (name_vi <> ''),
        name_en           text NOT NULL CHECK (name_en <> ''),
        incident_category text NOT NULL CHECK (incident_category IN ('traffic_accident',
                              'public_order', 'fire', 'environment', 'land_violation',
                              'infrastructure', 'security_event')),
        severity          smallint NOT NULL CHECK (severity BETWEEN 1 AND 4),
        -- Assigned at once to this agency when it exists (as an alert rule's agency).
        agency_code       text
    );
    INSERT INTO detection_categories (code, name_vi, name_en, incident_category, severity) VALUES
     ('traffic_accident', 'Va chạm giao thông', 'Traffic collision', 'traffic_accident', 3),
     ('stopped_vehicle', 'Phương tiện dừng đỗ bất thường', 'Stopped vehicle', 'traffic_accident', 2),
     ('wrong_way', 'Phương tiện đi ngược chiều', 'Wrong-way vehicle', 'traffic_accident', 3),
     ('fire', 'Cháy', 'Fire', 'fire', 4),
     ('smoke', 'Khói', 'Smoke', 'fire', 3),
     ('crowd', 'Tụ tập đông người', 'Crowd gathering', 'public_order', 2),
     ('fight', 'Ẩu đả', 'Fight', 'public_order', 3),
     ('flooding', 'Ngập nước', 'Flooding', 'infrastructure', 3),
     ('road_obstruction', 'Vật cản trên đường', 'Road obstruction', 'infrastructure', 2),
     ('illegal_dumping', 'Đổ rác trái phép', 'Illegal dumping', 'environment', 2),
     ('intrusion', 'Xâm nhập khu vực cấm', 'Intrusion into a restricted area',
      'security_event', 3);

    CREATE TABLE camera_detections (
        id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        camera_id     bigint NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
        category      text NOT NULL REFERENCES detection_categories (code),
        confidence    real NOT NULL CHECK (confidence BETWEEN 0 AND 1),
        detected_at   timestamptz NOT NULL,
        received_at   timestamptz NOT NULL DEFAULT now(),
        -- The analytics' own extras (bounding box, track id...), as sent.
        attributes    jsonb CHECK (attributes IS NULL OR jsonb_typeof(attributes) = 'object'),
        snapshot      bytea CHECK (octet_length(snapshot) > 0),
        thumbnail     bytea CHECK (octet_length(thumbnail) > 0),
        status        text NOT NULL CHECK (status IN ('escalated', 'pending', 'confirmed',
                                                      'dismissed')),
        incident_id   bigint REFERENCES incidents (id) ON DELETE SET NULL,
        decided_by    text,
        decided_at    timestamptz,
        decision_note text,
        UNIQUE (camera_id, category, detected_at),
        CHECK ((snapshot IS NULL) = (thumbnail IS NULL)),
        CHECK (status <> 'pending' OR incident_id IS NULL)
    );
    CREATE INDEX camera_detections_pending_idx ON camera_detections (detected_at)
        WHERE status = 'pending';
    CREATE INDEX camera_detections_incident_idx ON camera_detections (incident_id);
    CREATE INDEX camera_detections_camera_idx ON camera_detections (camera_id, detected_at);

    DO $$ BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
            GRANT SELECT, INSERT, UPDATE, DELETE ON camera_status_history, camera_snapshots,
                camera_keys, detection_categories, camera_detections TO geoioc_app;
            GRANT USAGE, SELECT ON SEQUENCE camera_status_history_id_seq,
                camera_detections_id_seq TO geoioc_app;
        END IF;
    END $$;
    """)


def downgrade() -> None:
    op.execute(r"""
    DROP TABLE IF EXISTS camera_detections, detection_categories, camera_keys, camera_snapshots,
        camera_status_history;
    DROP FUNCTION IF EXISTS camera_health(timestamptz, real, real, timestamptz,
        double precision, double precision, double precision, double precision);
    DROP INDEX IF EXISTS cameras_health_idx;
    ALTER TABLE cameras DROP COLUMN IF EXISTS last_seen, DROP COLUMN IF EXISTS fps,
        DROP COLUMN IF EXISTS bitrate_kbps, DROP COLUMN IF EXISTS quality,
        DROP COLUMN IF EXISTS status_changed_at;
    UPDATE cameras SET status = 'offline' WHERE status = 'degraded';
    ALTER TABLE cameras DROP CONSTRAINT IF EXISTS cameras_status_check;
    ALTER TABLE cameras ADD CONSTRAINT cameras_status_check
        CHECK (status IN ('online', 'offline', 'maintenance'));
    """)
