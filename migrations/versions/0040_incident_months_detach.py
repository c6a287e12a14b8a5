"""Old incident months archived like observation months (issue 18: "incidents become
time-partitioned like observations").

Why: migration 0038 made one partition per Vietnam-time month of incidents so that an old month
could one day leave the table, as `observations_detach_partitions` (0020) lets observation
months go; the operator's tool for it was missing. A detached month is kept as a table of its
own, to be dumped (`pg_dump -t 'incidents_y2025m01*'`) and dropped by the operator.

What it adds:

- `incident_partitions`: the monthly partitions of incidents, attached or detached, with their
  month and row estimate (the shape of 0020's `observation_partitions`, with parent
  'incidents'; the DEFAULT partition is no month and is not listed).
- `incidents_detach_partitions(before, open_too DEFAULT false)` (SECURITY DEFINER, search path
  pinned, under the advisory lock of incidents_create_partitions): archives every attached month
  that ends (Vietnam midnight) on or before BEFORE, oldest first, and returns the tables
  detached. BEFORE later than the first day of the current Vietnam month is refused
  (invalid_parameter_value): the current month and later never go. The DEFAULT partition is
  never detached (it is no month). A month still holding open incidents (received, verified,
  assigned or in progress: their workflow is not over, and an archived incident leaves every
  agency's queue) is refused (object_not_in_prerequisite_state) unless OPEN_TOO is true.
- `incidents_archived_month` on `incidents_default`: an incident of an archived month (a later
  import, harvest or hand-written INSERT, or an UPDATE moving an incident there) would land in
  the DEFAULT partition, out of sight of the archive and of its month; it is refused instead
  (check_violation, constraint incidents_archived_month, naming the month and its table). A
  month is archived while its table exists detached, the rule 0020's ingest and
  incidents_create_partitions already follow (neither makes a month whose table exists): once
  the operator has dumped and dropped it, the month takes incidents again, which the hourly job
  then gives a partition as for any stray month. The trigger fires only for rows routed to the
  DEFAULT partition (rare: incidents of a month without a partition), so nothing else pays
  for it. A load with session_replication_role = replica skips it, as it skips every trigger.

What happens to what is derived from or linked to an archived month's incidents (decided: an
archived month leaves every live view, and the live tables stay consistent, exactly as if its
incidents had been deleted; what the month's incidents were linked to is archived beside it):

- The rows leave `incidents` by a DELETE through the partitioned parent (pruned to the one
  partition), RETURNING them into a temporary table; then the emptied partition is detached and
  the rows are put back into it, unchanged (same ids and values; geom_vn recomputed by its
  generated expression, a deterministic function of geom). DETACH alone fires no trigger;
  the DELETE fires the statement triggers that already keep everything exact, so no logic is
  written twice here: the pre-aggregates (incident_cell_days 0027, incident_days 0035,
  incident_heat_days and incident_heat_months 0037) subtract the month's rows and still equal
  counts of the raw rows; 0038's `incident_links_del` removes the ids from the id guard
  `incident_ids` and applies every old ON DELETE action (CASCADE: incident_transitions,
  incident_requests, incident_reporters, report_photos; SET NULL: sensor_alerts.incident_id,
  camera_detections.incident_id, and incidents.duplicate_of of incidents of other months).
  The cost is a month's rows written twice (about 2,000 on the sample: its first two months
  in 0.64-0.85 s; tens of thousands at province scale: seconds) for an operator's command,
  against a second copy of 0038's and the aggregates' logic that would have to be kept in step
  with them.
- Before that DELETE, the rows of every linking table that name one of the month's incidents
  are copied, as they are, into `<month table>_<linking table>` (e.g.
  incidents_y2025m01_incident_transitions; only for tables with such rows): the workflow
  history, the citizen's request and reporter, photos, and the alerts, detections and
  incidents of other months that pointed to it (those stay live, unlinked). The linking tables
  are found from the catalogue (the row triggers 0038 made run incident_link_check() on
  incident_id, incident_duplicate_check() on duplicate_of), so a link added later with the same
  trigger functions is archived too. The month's incidents' own duplicate_of stay in its table.
- The archived tables are no longer written by the application: INSERT, UPDATE and DELETE are
  revoked from geoioc_app (SELECT stays, as on the partition).

`incidents` is held under ACCESS EXCLUSIVE from the first DETACH to the commit (the put-back
and ANALYZE of each month after it): run it when the map can wait a few seconds.
Bringing a month back: rename its table, let incidents_create_partitions make the month, and
INSERT its rows into `incidents` (the triggers count them again; incident_ids takes the ids),
then the linked rows from the tables beside it.

The downgrade drops the function, the view and the trigger; archived tables are data the
operator has not dumped yet and are left as they are.

Revision ID: 0040
Revises: 0039
Create Date: 2026-12-04
"""

from alembic import op

revision = "0040"
down_revision = "0039"
branch_labels = None
depends_on = None

UPGRADE = r"""
-- The monthly partitions of incidents, attached or detached (archived), as 0020's
-- observation_partitions lists those of observations.
CREATE VIEW incident_partitions AS
SELECT c.relname::text AS name, 'incidents'::text AS parent,
       to_date(right(c.relname, 7), 'YYYY"m"MM') AS month,
       EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid) AS attached,
       greatest(c.reltuples, 0)::bigint AS rows_estimate
  FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
   AND c.relname ~ '^incidents_y[0-9]{4}m[0-9]{2}$';

-- Archive the months of incidents that end on or before BEFORE; returns the tables detached.
CREATE FUNCTION incidents_detach_partitions(before date, open_too boolean DEFAULT false)
RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    this_month date := date_trunc('month', now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date;
    p record;
    link record;
    lo timestamptz;
    hi timestamptz;
    cols text;
    n bigint;
    still_open text[] := '{}';
    app boolean := EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app');
BEGIN
    IF before IS NULL OR before > this_month THEN
        RAISE invalid_parameter_value USING
            MESSAGE = format('before %s: only months that have ended can be detached, not %s'
                             ' (the current Vietnam month) or later',
                             coalesce(before::text, 'NULL'), to_char(this_month, 'YYYY-MM')),
            HINT = format('Give a date on or before %s.', this_month);
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('geoioc incidents partitions'));
    -- The stored columns (not geom_vn, which is generated), for putting the rows back.
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
      FROM pg_attribute WHERE attrelid = 'incidents'::regclass AND attnum > 0
       AND NOT attisdropped AND attgenerated = '';
    -- Every month's open incidents first: a refusal names them all, before anything moves.
    IF NOT open_too THEN
        FOR p IN SELECT ip.name, ip.month FROM incident_partitions ip
                  WHERE ip.attached AND (ip.month + interval '1 month')::date <= before
                  ORDER BY ip.month LOOP
            EXECUTE format('SELECT count(*) FROM %I WHERE status NOT IN (''resolved'','
                           ' ''rejected'', ''closed'')', p.name) INTO n;
            IF n > 0 THEN
                still_open := still_open || format('%s: %s', to_char(p.month, 'YYYY-MM'), n);
            END IF;
        END LOOP;
        IF still_open <> '{}' THEN
            RAISE object_not_in_prerequisite_state USING
                MESSAGE = format('incidents still open (received, verified, assigned or in'
                                 ' progress) in the months to detach: %s; nothing was detached',
                                 array_to_string(still_open, ', ')),
                HINT = 'Resolve, reject or close them first, or archive them open anyway.';
        END IF;
    END IF;
    FOR p IN SELECT ip.name, ip.month FROM incident_partitions ip
              WHERE ip.attached AND (ip.month + interval '1 month')::date <= before
              ORDER BY ip.month LOOP
        lo := p.month::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh';
        hi := (p.month + interval '1 month')::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh';
        -- What links to the month's incidents, as it is, beside the month.
        FOR link IN SELECT t.tgrelid::regclass::text AS tbl,
                           CASE WHEN t.tgfoid = 'incident_duplicate_check'::regproc
                                THEN 'duplicate_of' ELSE 'incident_id' END AS col
                      FROM pg_trigger t
                     WHERE t.tgfoid IN ('incident_link_check'::regproc,
                                        'incident_duplicate_check'::regproc)
                       AND t.tgparentid = 0
                     ORDER BY 1 LOOP
            EXECUTE format('SELECT count(*) FROM %I l WHERE l.%I IN (SELECT id FROM %I)%s',
                           link.tbl, link.col, p.name,
                           CASE WHEN link.tbl = 'incidents'
                                THEN format(' AND l.tableoid <> %L::regclass', p.name) END)
               INTO n;
            CONTINUE WHEN n = 0;
            EXECUTE format('CREATE TABLE %I AS SELECT l.* FROM %I l WHERE l.%I IN'
                           ' (SELECT id FROM %I)%s ORDER BY 1',
                           p.name || '_' || link.tbl, link.tbl, link.col, p.name,
                           CASE WHEN link.tbl = 'incidents'
                                THEN format(' AND l.tableoid <> %L::regclass', p.name) END);
            IF app THEN
                EXECUTE format('REVOKE ALL ON %I FROM geoioc_app', p.name || '_' || link.tbl);
                EXECUTE format('GRANT SELECT ON %I TO geoioc_app', p.name || '_' || link.tbl);
            END IF;
        END LOOP;
        -- The rows leave through the parent, so every statement trigger of incidents runs
        -- (aggregates, id guard, links), then come back into the detached table unchanged.
        EXECUTE format('CREATE TEMP TABLE incidents_archiving ON COMMIT DROP AS'
                       ' SELECT * FROM %I WITH NO DATA', p.name);
        WITH d AS (DELETE FROM incidents WHERE reported_at >= lo AND reported_at < hi RETURNING *)
        INSERT INTO incidents_archiving SELECT * FROM d;
        EXECUTE format('ALTER TABLE incidents DETACH PARTITION %I', p.name);
        EXECUTE format('INSERT INTO %I (%s) SELECT %s FROM incidents_archiving ORDER BY'
                       ' reported_at, id', p.name, cols, cols);
        DROP TABLE incidents_archiving;
        IF app THEN
            EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON %I FROM geoioc_app', p.name);
        END IF;
        EXECUTE format('ANALYZE %I', p.name);
        RETURN NEXT p.name;
    END LOOP;
END $$;

-- An incident of an archived month would land in the DEFAULT partition: refused.
CREATE FUNCTION incidents_archived_month() RETURNS trigger LANGUAGE plpgsql
SET search_path = public, pg_temp AS $$
DECLARE
    m date := date_trunc('month', NEW.reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date;
    part text := 'incidents' || to_char(m, '"_y"YYYY"m"MM');
BEGIN
    -- A row of a month with an attached partition never reaches the DEFAULT partition: a
    -- table of that name here is the archived month.
    IF to_regclass(part) IS NOT NULL THEN
        RAISE check_violation USING
            MESSAGE = format('incidents of %s are archived (table %s, detached): the month'
                             ' takes no incident', to_char(m, 'YYYY-MM'), part),
            DETAIL = format('Failing row has reported_at %s.', NEW.reported_at),
            HINT = 'Give a time in a month that is not archived, or bring the month back first.',
            CONSTRAINT = 'incidents_archived_month', TABLE = 'incidents', COLUMN = 'reported_at';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER incidents_archived_month BEFORE INSERT OR UPDATE OF reported_at
    ON incidents_default FOR EACH ROW EXECUTE FUNCTION incidents_archived_month();

REVOKE ALL ON FUNCTION incidents_detach_partitions(date, boolean) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
        GRANT EXECUTE ON FUNCTION incidents_detach_partitions(date, boolean) TO geoioc_app;
        REVOKE ALL ON incident_partitions FROM geoioc_app;
        GRANT SELECT ON incident_partitions TO geoioc_app;
    END IF;
END $$;
"""

DOWNGRADE = r"""
DROP TRIGGER IF EXISTS incidents_archived_month ON incidents_default;
DROP FUNCTION IF EXISTS incidents_archived_month();
DROP FUNCTION IF EXISTS incidents_detach_partitions(date, boolean);
DROP VIEW IF EXISTS incident_partitions;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
