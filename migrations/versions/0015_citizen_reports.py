"""Citizen reports and the incident workflow, on the one incidents model.

A citizen's report (Open311 service request) is an incident like one from an operator, a camera
or a sensor: same table, same layer, same access rules, so every map, count and heatmap sees
both. What a report adds is here:

* The workflow: received -> verified -> assigned -> in_progress -> resolved | rejected -> closed
  (a resolved report may be reopened within a configured number of days: gis/reports/workflow.py
  holds the table of allowed moves). The old status `new` is `received`; the resolved/closed
  rule of migration 0001 now reads "resolved, rejected or closed iff resolved_at is set"
  (resolved_at is when the report was answered, either way).
* `incident_transitions`: every move with its time, actor, note, from and to (and the agency an
  assignment named), the timeline of a report.
* `service_categories` (Open311 services: code, names, group, keywords, the incident category
  they file under, SLA hours, the attribute definitions as data) and `agencies` (the communes
  they serve, NULL = the whole province, and the service codes they handle): reference data
  loaded from sample_data/ by the sample loader.
* On incidents (fields of the catalogue's incidents layer, set by the workflow): the service
  code, the assigned agency, `expected_at` (the SLA deadline: geoioc_sla_deadline),
  `duplicate_of` (a likely duplicate of an open report of the same category within 50 m and
  48 h), the latest public note and the time of the last change.
* `incident_requests`: the Open311 request as sent, read by Open311 only: the public tracking
  token, the address (and address_id, zipcode) as given, the photo URL, the attribute values.
* `incident_reporters`: the reporter's name, phone, e-mail and device, in a table of their own.
  Personal data: no generic way out (OGC items, tiles, search, identify, exports) reads this
  table, so none can carry it by mistake; the one route that shows it decides with
  layers.access on catalogue.REPORTER_FIELDS and audits the read. A request to be forgotten is
  one DELETE.

geoioc_sla_deadline: an SLA in whole days (a multiple of 24 h) ends at midnight, Vietnam time,
after the last day counted from the local day the report arrived (a report of 23:30 on Monday
with one day is due at the end of Tuesday, one of 00:30 on Tuesday at the end of Wednesday), the
way administrative deadlines are counted; an SLA in hours is counted in hours.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

def upgrade() -> None:
    op.execute(r"""
    CREATE TABLE agencies (
        code      text PRIMARY KEY CHECK (code ~ '^[A-Z0-9][A-Z0-9._-]{1,39}$'),
        name_vi   text NOT NULL CHECK (name_vi <> ''),
        name_en   text NOT NULL CHECK (name_en <> ''),
        email     text,
        phone     text,
        -- Service codes handled (checked against service_categories by the loader).
        categories text[] NOT NULL DEFAULT '{}',
        -- Communes served (current codes); NULL = the whole province.
        communes  text[],
        -- Where assignments and status changes are POSTed (gis/reports/notify.py); NULL = none.
        webhook_url text CHECK (webhook_url ~ '^https?://[^/?#]+')
    );

    CREATE TABLE service_categories (
        code              text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$'),
        name_vi           text NOT NULL CHECK (name_vi <> ''),
        name_en           text NOT NULL CHECK (name_en <> ''),
        description_vi    text NOT NULL DEFAULT '',
        description_en    text NOT NULL DEFAULT '',
        group_vi          text NOT NULL,
        group_en          text NOT NULL,
        keywords          text[] NOT NULL DEFAULT '{}',
        -- The incident category a report of this service is filed under (never security events:
        -- those are not for the public).
        incident_category text NOT NULL CHECK (incident_category IN ('traffic_accident',
                              'public_order', 'fire', 'environment', 'land_violation',
                              'infrastructure')),
        severity          smallint NOT NULL DEFAULT 2 CHECK (severity BETWEEN 1 AND 4),
        agency_code       text REFERENCES agencies (code),
        sla_hours         integer NOT NULL CHECK (sla_hours > 0),
        -- Sensitive: public pages show where and when, never the description.
        sensitive         boolean NOT NULL DEFAULT false,
        -- Open311 attribute definitions (service definition), as data.
        attributes        jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(attributes) = 'array'),
        active            boolean NOT NULL DEFAULT true
    );

    ALTER TABLE incidents
        DROP CONSTRAINT IF EXISTS incidents_status_check,
        DROP CONSTRAINT IF EXISTS incidents_check1,
        ADD COLUMN service_code text REFERENCES service_categories (code),
        ADD COLUMN agency_code  text REFERENCES agencies (code),
        ADD COLUMN expected_at  timestamptz,
        ADD COLUMN duplicate_of bigint REFERENCES incidents (id) ON DELETE SET NULL
                                CHECK (duplicate_of <> id),
        ADD COLUMN status_note  text,
        ADD COLUMN updated_at   timestamptz;
    UPDATE incidents SET status = 'received' WHERE status = 'new';
    ALTER TABLE incidents
        ADD CONSTRAINT incidents_status_check CHECK (status IN ('received', 'verified',
                        'assigned', 'in_progress', 'resolved', 'rejected', 'closed')),
        ADD CONSTRAINT incidents_answered_check
            CHECK ((status IN ('resolved', 'rejected', 'closed')) = (resolved_at IS NOT NULL));
    -- Open311 lists (by service and time), the duplicate search and the overdue list.
    CREATE INDEX incidents_service_idx ON incidents (service_code, reported_at)
        WHERE service_code IS NOT NULL;
    CREATE INDEX incidents_open_deadline_idx ON incidents (expected_at)
        WHERE status IN ('received', 'verified', 'assigned', 'in_progress');
    CREATE INDEX incidents_duplicate_of_idx ON incidents (duplicate_of)
        WHERE duplicate_of IS NOT NULL;

    CREATE TABLE incident_transitions (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        incident_id bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
        at          timestamptz NOT NULL DEFAULT now(),
        actor       text NOT NULL CHECK (actor <> ''),
        -- status: a workflow move; assign: (re)assignment; duplicate/unlink: the duplicate link.
        kind        text NOT NULL DEFAULT 'status'
                    CHECK (kind IN ('status', 'assign', 'duplicate', 'unlink')),
        from_status text CHECK (from_status IN ('received', 'verified', 'assigned', 'in_progress',
                        'resolved', 'rejected', 'closed')),
        to_status   text NOT NULL CHECK (to_status IN ('received', 'verified', 'assigned', 'in_progress',
                        'resolved', 'rejected', 'closed')),
        agency_code text REFERENCES agencies (code),
        note        text
    );
    CREATE INDEX incident_transitions_incident_idx ON incident_transitions (incident_id, at, id);

    -- A citizen report as the client sent it (Open311 request): what only Open311 reads.
    CREATE TABLE incident_requests (
        incident_id bigint PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
        token       text NOT NULL UNIQUE CHECK (token ~ '^[A-Za-z0-9_-]{4,64}$'),
        address     text,
        -- Open311's address_id (the client's address register) and zipcode, as given.
        address_id  text,
        zipcode     text,
        media_url   text,
        attributes  jsonb CHECK (jsonb_typeof(attributes) = 'object')
    );

    CREATE TABLE incident_reporters (
        incident_id bigint PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
        first_name  text,
        last_name   text,
        email       text,
        phone       text,
        device_id   text,
        account_id  text
    );

    CREATE FUNCTION geoioc_sla_deadline(received timestamptz, sla_hours integer)
    RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN sla_hours % 24 = 0
            THEN (((received AT TIME ZONE 'Asia/Ho_Chi_Minh')::date + sla_hours / 24 + 1)
                  ::timestamp) AT TIME ZONE 'Asia/Ho_Chi_Minh'
            ELSE received + make_interval(hours => sla_hours) END
    $$;

    DO $$ BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
            GRANT SELECT, INSERT, UPDATE, DELETE ON agencies, service_categories,
                incident_transitions, incident_requests, incident_reporters TO geoioc_app;
            GRANT USAGE, SELECT ON SEQUENCE incident_transitions_id_seq TO geoioc_app;
        END IF;
    END $$;
    """)


def downgrade() -> None:
    op.execute("""
    DROP FUNCTION IF EXISTS geoioc_sla_deadline(timestamptz, integer);
    DROP TABLE IF EXISTS incident_reporters, incident_requests, incident_transitions;
    ALTER TABLE incidents
        DROP CONSTRAINT IF EXISTS incidents_status_check,
        DROP CONSTRAINT IF EXISTS incidents_answered_check;
    UPDATE incidents SET status = CASE status WHEN 'received' THEN 'new' WHEN 'verified' THEN 'new'
        WHEN 'rejected' THEN 'closed' ELSE status END
        WHERE status IN ('received', 'verified', 'rejected');
    DROP INDEX IF EXISTS incidents_service_idx;
    DROP INDEX IF EXISTS incidents_open_deadline_idx;
    DROP INDEX IF EXISTS incidents_duplicate_of_idx;
    ALTER TABLE incidents
        DROP COLUMN IF EXISTS service_code, DROP COLUMN IF EXISTS agency_code,
        DROP COLUMN IF EXISTS expected_at, DROP COLUMN IF EXISTS duplicate_of,
        DROP COLUMN IF EXISTS status_note, DROP COLUMN IF EXISTS updated_at,
        ADD CONSTRAINT incidents_status_check
            CHECK (status IN ('new', 'assigned', 'in_progress', 'resolved', 'closed')),
        ADD CONSTRAINT incidents_check1
            CHECK ((status IN ('resolved', 'closed')) = (resolved_at IS NOT NULL));
    DROP TABLE IF EXISTS service_categories, agencies;
    """)
