"""Incidents partitioned by Vietnam-time month of reported_at (issue 18, "Province scale").

Why: "incidents become time-partitioned like observations". A query of a window (the map's
raw reads, the statistics' ragged ends, an export of a month) now reads the partitions of its
months only, and an old month can one day be detached like an observations month. The
pre-aggregates of 0027, 0035 and 0037 are untouched: the rows are copied as they are (same ids,
same values), before the triggers exist on the new table, so those tables still count exactly
the rows there are (tests/test_incidents_partitioned.py compares them to raw counts).

What changes, and why each way:

- `incidents` is `PARTITION BY RANGE (reported_at)`, one partition per month, named
  incidents_yYYYYmMM, bounds at midnight *Vietnam time* (Asia/Ho_Chi_Minh, UTC+7, no DST) of
  the first day of the month, unlike observations (UTC). Every period the application reports
  on incidents is a Vietnam-time one: the aggregates' days and months, the statistics, the
  transparency page's months; with local bounds a month of those reads exactly one partition,
  with UTC bounds it would read two (its first seven hours belong to the previous UTC month).
  `incidents_default` (DEFAULT partition) takes whatever has no month yet (an import of a 1990
  incident, a far-future typo): nothing is ever refused for its date.
- incidents_create_partitions(first, last) creates missing months (SECURITY DEFINER, the
  application role does not own the table) and moves the rows the DEFAULT partition holds for
  such a month into it (directly on the partitions: no trigger of the parent fires, so no
  aggregate, link or id changes; the rows do not change). incidents_ensure_partitions(ahead)
  keeps the current month and AHEAD next ones, and makes the months the DEFAULT partition
  holds rows of up to ten years back (moving those rows): the same periodic job as
  observations (gis/sensors/partitions.py) calls it. The sample loader makes its window's
  months before its COPY. Here the months of the existing rows (at most ten
  years back; older rows stay in the DEFAULT partition) and the next three are made.
- The primary key is (id, reported_at): a partitioned table's unique indexes must contain the
  partition key. `id` is a plain bigint with DEFAULT nextval('incidents_id_seq') (PostgreSQL
  15 has no identity column on a partitioned table), the sequence continuing where the identity
  stopped, owned by the column (pg_get_serial_sequence still finds it: the harvest uses it).
  `OVERRIDING SYSTEM VALUE` (imports with given ids, bench/scale.py) is accepted and means
  nothing without an identity, so those statements are unchanged. An UPDATE of id is refused
  (SQLSTATE 428C9, as the identity GENERATED ALWAYS refused it): every link names the id.
- id alone stays unique through `incident_ids` (id PRIMARY KEY): one row per incident, written
  by statement-level triggers on incidents (one grouped INSERT or DELETE per statement), so a
  second incident with a taken id fails with a unique violation on incident_ids_pkey, however
  it is inserted (an import with ids, a harvest, a hand-written INSERT). A row moved to another
  month by an UPDATE of reported_at is an UPDATE for the triggers (verified: the moved rows are
  in the UPDATE's transition tables, the INSERT and DELETE triggers do not fire), so its id row
  stays. A load that skips triggers (session_replication_role = replica) must fill it
  (incident_ids_rebuild(), which bench/scale.py calls with incident_aggregates_rebuild()).
- The foreign keys naming incidents(id) (incidents.duplicate_of; incident_transitions,
  incident_requests, incident_reporters, report_photos, sensor_alerts, camera_detections
  .incident_id) cannot reference a partitioned table's id alone. Each is replaced by a trigger
  of the same name as the constraint was (so an error names the same thing): an AFTER INSERT OR
  UPDATE OF the column row trigger on the referencing table (WHEN the column is not NULL) that
  finds the incident (incident_link_require: FOR KEY SHARE, as the RI check does, so a
  concurrent delete waits; one primary-key probe per partition) or raises foreign_key_violation
  (SQLSTATE 23503 and the constraint's name, as the foreign key did, so whatever handled that
  error handles this one), and an AFTER DELETE
  statement trigger on incidents with a transition table that does every ON DELETE CASCADE and
  SET NULL in one statement per referencing table. An AFTER TRUNCATE trigger does the same for
  every row and empties incident_ids (so a TRUNCATE must not name incident_ids itself: the
  trigger's TRUNCATE would find it in use). AFTER row triggers and not a check on incident_ids:
  the citizen report is one statement whose CTEs insert the incident and its request, reporter
  and transition, and the row checks run at the end of that statement, when the incident is
  there; incident_ids is written by the incidents' statement trigger, which may run after them.
- geoioc_bulk_load_begin (0010) accepts a partitioned layer table and re-creates its indexes
  on the whole tree (pg_get_indexdef of a partitioned index says ON ONLY).

Everything else is carried over from the old table: columns, defaults, CHECK constraints, the
generated geom_vn (LIKE ... INCLUDING DEFAULTS CONSTRAINTS GENERATED), the foreign keys to
agencies and service_categories, every index (0001, 0015, 0018: re-created from their
definitions, now partitioned indexes), every trigger (the statement triggers of 0027, 0035,
0037: statement-level AFTER triggers with transition tables are allowed on a partitioned
parent and see the rows routed to any partition) and the grants. No view depends on incidents.

Measured on the sample (50,360 incidents, 2024-12 to 2026-12, 29 partitions with the months
ahead), one Vietnam month: EXPLAIN (ANALYZE, BUFFERS) SELECT count(*) FROM incidents WHERE
reported_at >= '2026-03-01 00:00+07' AND reported_at < '2026-04-01 00:00+07' (2,056 rows):
  before: Bitmap Heap Scan on incidents via incidents_reported_brin, 1,701 heap blocks (lossy:
          the sample is not stored in time order, so every block range matched), 17.6 ms cold,
          1,706 buffers warm;
  after:  Seq Scan on incidents_y2026m03 alone (pruned at plan time), 72 buffers, 1.1 ms.
(The same table downgraded, so rewritten in id order, reads 128 blocks in 1.3 ms: the BRIN is
only as good as the arrival order; a partition bounds a month whatever the order.)
Writes, same database before and after (three runs each, rolled back): inserting 50,000
incidents in one statement 2.08-2.22 s before, 2.06-2.32 s after (the pre-aggregates' triggers
dominate; the id guard's insert is lost in the noise); deleting 5,000 in one statement 552-604
ms before (the foreign keys' per-row cascades), 330-348 ms after (one statement per link). An
incident by id alone now probes every partition's primary key: on a warm connection 1.7-3 ms
of planning and 0.17-0.26 ms of execution with 29 partitions, against 0.03-0.04 ms and
0.01-0.05 ms before (a prepared statement's cached plan saves the planning).

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-04
"""

from alembic import op

revision = "0038"
down_revision = "0037"
branch_labels = None
depends_on = None

# (table, column, on delete): every link to an incident (the constraints 0015, 0017, 0022 and
# 0023 made), named <table>_<column>_fkey as those constraints were.
LINKS = (
    ("incidents", "duplicate_of", "SET NULL"),
    ("incident_transitions", "incident_id", "CASCADE"),
    ("incident_requests", "incident_id", "CASCADE"),
    ("incident_reporters", "incident_id", "CASCADE"),
    ("report_photos", "incident_id", "CASCADE"),
    ("sensor_alerts", "incident_id", "SET NULL"),
    ("camera_detections", "incident_id", "SET NULL"),
)

PARTITION_FUNCTIONS = r"""
-- Monthly partitions incidents_yYYYYmMM, bounds at midnight Vietnam time.
CREATE FUNCTION incidents_create_partitions(first_month date, last_month date)
RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    m date := date_trunc('month', first_month);
    part text;
    lo timestamptz;
    hi timestamptz;
    cols text;
BEGIN
    IF last_month < first_month OR last_month - first_month > 3700 THEN
        RAISE invalid_parameter_value USING MESSAGE =
            format('months %s to %s: at most ten years at once', first_month, last_month);
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('geoioc incidents partitions'));
    -- The stored columns (not geom_vn, which is generated), for moving rows.
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
      FROM pg_attribute WHERE attrelid = 'incidents'::regclass AND attnum > 0
       AND NOT attisdropped AND attgenerated = '';
    WHILE m <= last_month LOOP
        part := 'incidents' || to_char(m, '"_y"YYYY"m"MM');
        -- A month detached (archived) stays out: its table exists, so nothing is created.
        IF to_regclass(part) IS NULL THEN
            lo := m::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh';
            hi := (m + interval '1 month')::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh';
            -- Rows of that month in the DEFAULT partition move into the new one (the partition
            -- could not be created while the DEFAULT one holds any). On the partitions
            -- directly: the parent's statement triggers (aggregates, ids, links) do not fire.
            IF EXISTS (SELECT 1 FROM incidents_default WHERE reported_at >= lo AND reported_at < hi)
            THEN
                DROP TABLE IF EXISTS pg_temp.incidents_moving;
                CREATE TEMP TABLE incidents_moving ON COMMIT DROP AS
                    SELECT * FROM incidents_default WITH NO DATA;
                WITH d AS (DELETE FROM incidents_default
                            WHERE reported_at >= lo AND reported_at < hi RETURNING *)
                INSERT INTO incidents_moving SELECT * FROM d;
                EXECUTE format('CREATE TABLE %I PARTITION OF incidents FOR VALUES FROM (%L) TO (%L)',
                               part, lo, hi);
                EXECUTE format('INSERT INTO %I (%s) SELECT %s FROM incidents_moving', part, cols, cols);
                DROP TABLE incidents_moving;
            ELSE
                EXECUTE format('CREATE TABLE %I PARTITION OF incidents FOR VALUES FROM (%L) TO (%L)',
                               part, lo, hi);
            END IF;
            RETURN NEXT part;
        END IF;
        m := m + interval '1 month';
    END LOOP;
END $$;

-- The current month and AHEAD next ones, and the months the DEFAULT partition holds rows of
-- (an import or harvest of older incidents, a load that did not make its months first) up to
-- ten years back: their rows move into them, so the DEFAULT partition keeps only what is older
-- or further ahead. The months are read into an array first: a partition cannot be created
-- while a cursor of this session still reads the DEFAULT one.
CREATE FUNCTION incidents_ensure_partitions(ahead integer DEFAULT 3)
RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    this_month date := date_trunc('month', now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date;
    last_month date := (this_month + make_interval(months => ahead))::date;
    stray date[];
    m date;
BEGIN
    RETURN QUERY SELECT incidents_create_partitions(this_month, last_month);
    SELECT array_agg(DISTINCT date_trunc('month', reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date)
      INTO stray FROM incidents_default
     WHERE reported_at >= now() - interval '10 years'
       AND reported_at < (last_month + interval '1 month')::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh';
    FOREACH m IN ARRAY coalesce(stray, '{}') LOOP
        RETURN QUERY SELECT incidents_create_partitions(m, m);
    END LOOP;
END $$;
"""

LINK_FUNCTIONS = r"""
-- The id guard: one row per incident id.
CREATE TABLE incident_ids (id bigint PRIMARY KEY);

CREATE FUNCTION incident_ids_ins() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO incident_ids (id) SELECT id FROM new_rows ORDER BY id;
    RETURN NULL;
END $$;

-- A deleted incident: its id, and every link to it (the old ON DELETE actions), one statement
-- per referencing table.
CREATE FUNCTION incident_links_del() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
@ON_DELETE@
    DELETE FROM incident_ids WHERE id IN (SELECT id FROM old_rows);
    RETURN NULL;
END $$;

CREATE FUNCTION incident_links_truncate() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
@ON_TRUNCATE@
    TRUNCATE incident_ids;
    RETURN NULL;
END $$;

-- An id is never changed (as GENERATED ALWAYS refused it): links and incident_ids name it.
CREATE FUNCTION incidents_id_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE generated_always USING MESSAGE = 'column "id" of incidents cannot be changed',
        COLUMN = 'id', TABLE = 'incidents';
END $$;

-- A link must name an incident. FOR KEY SHARE as the RI check: a concurrent delete of that
-- incident waits for this transaction. (The column is read by name in each trigger function,
-- not through to_jsonb(NEW): a photo's row carries its JPEG.)
CREATE FUNCTION incident_link_require(ref bigint, tbl text, constraint_name text, col text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM incidents WHERE id = ref FOR KEY SHARE) THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('insert or update on table "%s" violates foreign key constraint "%s"',
                             tbl, constraint_name),
            DETAIL = format('Key (%s)=(%s) is not present in table "incidents".', col, ref),
            CONSTRAINT = constraint_name, TABLE = tbl, COLUMN = col;
    END IF;
END $$;
CREATE FUNCTION incident_link_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM incident_link_require(NEW.incident_id, TG_TABLE_NAME, TG_NAME, 'incident_id');
    RETURN NULL;
END $$;
CREATE FUNCTION incident_duplicate_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM incident_link_require(NEW.duplicate_of, TG_TABLE_NAME, TG_NAME, 'duplicate_of');
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION incident_link_require(bigint, text, text, text) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
        GRANT EXECUTE ON FUNCTION incident_link_require(bigint, text, text, text) TO geoioc_app;
    END IF;
END $$;
REVOKE ALL ON FUNCTION incidents_create_partitions(date, date), incidents_ensure_partitions(integer)
    FROM PUBLIC;
"""

TRIGGERS = r"""
CREATE TRIGGER incident_ids_ins AFTER INSERT ON incidents
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION incident_ids_ins();
CREATE TRIGGER incident_links_del AFTER DELETE ON incidents
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION incident_links_del();
CREATE TRIGGER incident_links_truncate AFTER TRUNCATE ON incidents
    FOR EACH STATEMENT EXECUTE FUNCTION incident_links_truncate();
CREATE TRIGGER incidents_id_fixed BEFORE UPDATE OF id ON incidents
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION incidents_id_fixed();
"""

BULK_LOAD_BEGIN = r"""
CREATE OR REPLACE FUNCTION geoioc_bulk_load_begin(tbl text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    rel regclass;
    ix record;
    n integer := 0;
BEGIN
    SELECT c.oid INTO rel FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
     WHERE s.nspname = 'public' AND c.relname = tbl AND c.relkind IN (@KINDS@);
    -- A layer: a table with a geometry column that the application may write.
    IF rel IS NULL OR NOT has_table_privilege(
           COALESCE((SELECT rolname FROM pg_roles WHERE rolname = 'geoioc_app'), session_user),
           rel, 'INSERT')
       OR NOT EXISTS (SELECT 1 FROM geometry_columns WHERE f_table_schema = 'public'
                       AND f_table_name = tbl) THEN
        RAISE invalid_parameter_value USING MESSAGE = format('%L is not a layer table', tbl);
    END IF;
    EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', tbl);
    FOR ix IN
        -- A partitioned index is defined ON ONLY its table; re-created on the whole tree.
        SELECT i.indexrelid::regclass::text AS name,
               @DEF@ AS def
          FROM pg_index i
         WHERE i.indrelid = rel AND NOT i.indisunique AND NOT i.indisprimary
           AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
    LOOP
        INSERT INTO bulk_load_indexes VALUES (tbl, ix.name, ix.def);
        EXECUTE format('DROP INDEX %I', ix.name);
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;
"""

# The old table's pieces re-created on the new one: non-primary indexes, user triggers,
# foreign keys to other tables, grants. OLD: the old table's name; NEW: the new one.
CARRY_OVER = r"""
DO $$
DECLARE
    r record;
BEGIN
    CREATE TEMP TABLE incidents_carried ON COMMIT DROP AS
    SELECT 1 AS ord, c.relname::text AS name,
           replace(pg_get_indexdef(i.indexrelid), ' ON ONLY public.@OLD@ ', ' ON public.@OLD@ ') AS def
      FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE i.indrelid = '@OLD@'::regclass AND NOT i.indisprimary
    UNION ALL
    SELECT 2, t.tgname::text, pg_get_triggerdef(t.oid)
      FROM pg_trigger t WHERE t.tgrelid = '@OLD@'::regclass AND NOT t.tgisinternal
       AND t.tgparentid = 0 AND t.tgname NOT IN (@SKIP_TRIGGERS@)
    UNION ALL
    SELECT 3, k.conname::text, pg_get_constraintdef(k.oid)
      FROM pg_constraint k WHERE k.conrelid = '@OLD@'::regclass AND k.contype = 'f'
       AND k.confrelid <> '@OLD@'::regclass AND k.conparentid = 0;
    FOR r IN SELECT name FROM incidents_carried WHERE ord = 1 LOOP
        EXECUTE format('DROP INDEX %I', r.name);
    END LOOP;
END $$;
"""

RECREATE = r"""
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM incidents_carried ORDER BY ord, name LOOP
        IF r.ord = 3 THEN
            EXECUTE format('ALTER TABLE @NEW@ ADD CONSTRAINT %I %s', r.name, r.def);
        ELSE
            EXECUTE replace(r.def, ' ON public.@OLD@ ', ' ON public.@NEW@ ');
        END IF;
    END LOOP;
    FOR r IN SELECT a.grantee::regrole::text AS who, a.privilege_type AS what
               FROM pg_class c, aclexplode(c.relacl) a
              WHERE c.oid = '@OLD@'::regclass AND a.grantee <> c.relowner AND a.grantee <> 0 LOOP
        EXECUTE format('GRANT %s ON @NEW@ TO %I', r.what, r.who);
    END LOOP;
END $$;
"""

UPGRADE = r"""
LOCK TABLE incidents IN ACCESS EXCLUSIVE MODE;
@DROP_FKS@
ALTER TABLE incidents RENAME TO incidents_pre_0038;
ALTER TABLE incidents_pre_0038 RENAME CONSTRAINT incidents_pkey TO incidents_pre_0038_pkey;
@CARRY_OVER@

-- The identity's sequence becomes a plain one, at the same value, owned by the new column.
DO $$
DECLARE
    last bigint;
    called boolean;
    seq_acl aclitem[] := (SELECT relacl FROM pg_class WHERE oid = 'incidents_id_seq'::regclass);
    r record;
BEGIN
    SELECT last_value, is_called INTO last, called FROM incidents_id_seq;
    ALTER TABLE incidents_pre_0038 ALTER COLUMN id DROP IDENTITY;
    CREATE SEQUENCE incidents_id_seq AS bigint;
    IF (SELECT max(id) FROM incidents_pre_0038) > last THEN
        PERFORM setval('incidents_id_seq', (SELECT max(id) FROM incidents_pre_0038), true);
    ELSE
        PERFORM setval('incidents_id_seq', last, called);
    END IF;
    FOR r IN SELECT a.grantee::regrole::text AS who, a.privilege_type AS what
               FROM aclexplode(seq_acl) a
              WHERE a.grantee <> (SELECT relowner FROM pg_class WHERE oid = 'incidents_id_seq'::regclass)
                AND a.grantee <> 0 LOOP
        EXECUTE format('GRANT %s ON SEQUENCE incidents_id_seq TO %I', r.what, r.who);
    END LOOP;
END $$;

CREATE TABLE incidents (LIKE incidents_pre_0038
    INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING STORAGE
    INCLUDING COMMENTS) PARTITION BY RANGE (reported_at);
ALTER TABLE incidents ALTER COLUMN id SET DEFAULT nextval('incidents_id_seq');
ALTER SEQUENCE incidents_id_seq OWNED BY incidents.id;
CREATE TABLE incidents_default PARTITION OF incidents DEFAULT;

@PARTITION_FUNCTIONS@

-- The months of the rows there are (at most ten years back, nine years on from there: the rest
-- stays in the DEFAULT partition), and the next three.
SELECT incidents_create_partitions(f, least(l, (f + interval '9 years')::date))
  FROM (SELECT greatest(coalesce(min(reported_at), now()), now() - interval '10 years')
                   AT TIME ZONE 'Asia/Ho_Chi_Minh' AS f0,
               greatest(coalesce(max(reported_at), now()), now())
                   AT TIME ZONE 'Asia/Ho_Chi_Minh' AS l0
          FROM incidents_pre_0038) b,
       LATERAL (SELECT b.f0::date AS f, b.l0::date AS l) d;
SELECT incidents_ensure_partitions(3);

-- The rows, as they are, in time order (each partition's BRIN then sees ordered blocks). No
-- trigger exists on the new table yet: the aggregates already count these very rows.
INSERT INTO incidents (@COLUMNS@)
SELECT @COLUMNS@ FROM incidents_pre_0038 ORDER BY reported_at, id;

ALTER TABLE incidents ADD CONSTRAINT incidents_pkey PRIMARY KEY (id, reported_at);
@RECREATE@
DROP TABLE incidents_pre_0038;

@LINK_FUNCTIONS@
INSERT INTO incident_ids (id) SELECT id FROM incidents ORDER BY id;
@TRIGGERS@
@LINK_TRIGGERS@

-- After a load that skipped the triggers: the id guard's rows anew.
CREATE FUNCTION incident_ids_rebuild() RETURNS void LANGUAGE sql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
    TRUNCATE incident_ids;
    INSERT INTO incident_ids (id) SELECT id FROM incidents ORDER BY id;
$$;
REVOKE ALL ON FUNCTION incident_ids_rebuild() FROM PUBLIC;

@BULK_LOAD_BEGIN@

ANALYZE incidents;
ANALYZE incident_ids;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
        GRANT EXECUTE ON FUNCTION incidents_create_partitions(date, date),
            incidents_ensure_partitions(integer) TO geoioc_app;
        REVOKE ALL ON incident_ids FROM geoioc_app;
        GRANT SELECT ON incident_ids TO geoioc_app;
    END IF;
END $$;
"""

DOWNGRADE = r"""
LOCK TABLE incidents IN ACCESS EXCLUSIVE MODE;
DROP TRIGGER IF EXISTS incident_ids_ins ON incidents;
DROP TRIGGER IF EXISTS incident_links_del ON incidents;
DROP TRIGGER IF EXISTS incident_links_truncate ON incidents;
DROP TRIGGER IF EXISTS incidents_id_fixed ON incidents;
@DROP_LINK_TRIGGERS@
ALTER TABLE incidents RENAME TO incidents_p0038;
ALTER TABLE incidents_p0038 RENAME CONSTRAINT incidents_pkey TO incidents_p0038_pkey;
@CARRY_OVER@

CREATE TABLE incidents (LIKE incidents_p0038
    INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING STORAGE
    INCLUDING COMMENTS);
ALTER TABLE incidents ALTER COLUMN id DROP DEFAULT;
INSERT INTO incidents (@COLUMNS@)
SELECT @COLUMNS@ FROM incidents_p0038 ORDER BY id;

DO $$
DECLARE
    last bigint;
    called boolean;
    seq_acl aclitem[] := (SELECT relacl FROM pg_class WHERE oid = 'incidents_id_seq'::regclass);
    r record;
BEGIN
    SELECT last_value, is_called INTO last, called FROM incidents_id_seq;
    ALTER TABLE incidents_p0038 ALTER COLUMN id DROP DEFAULT;
    DROP SEQUENCE incidents_id_seq;
    ALTER TABLE incidents ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY;
    PERFORM setval('incidents_id_seq', last, called);
    FOR r IN SELECT a.grantee::regrole::text AS who, a.privilege_type AS what
               FROM aclexplode(seq_acl) a
              WHERE a.grantee <> (SELECT relowner FROM pg_class WHERE oid = 'incidents_id_seq'::regclass)
                AND a.grantee <> 0 LOOP
        EXECUTE format('GRANT %s ON SEQUENCE incidents_id_seq TO %I', r.what, r.who);
    END LOOP;
END $$;
ALTER TABLE incidents ADD CONSTRAINT incidents_pkey PRIMARY KEY (id);
@RECREATE@
DROP TABLE incidents_p0038;
@ADD_FKS@

DROP FUNCTION IF EXISTS incidents_ensure_partitions(integer);
DROP FUNCTION IF EXISTS incidents_create_partitions(date, date);
DROP FUNCTION IF EXISTS incident_ids_rebuild();
DROP FUNCTION IF EXISTS incident_ids_ins();
DROP FUNCTION IF EXISTS incident_links_del();
DROP FUNCTION IF EXISTS incident_links_truncate();
DROP FUNCTION IF EXISTS incidents_id_fixed();
DROP FUNCTION IF EXISTS incident_link_check();
DROP FUNCTION IF EXISTS incident_duplicate_check();
DROP FUNCTION IF EXISTS incident_link_require(bigint, text, text, text);
DROP TABLE IF EXISTS incident_ids;
@BULK_LOAD_BEGIN@
ANALYZE incidents;
"""

# The trigger names 0038 adds (not carried back on the way down).
OWN_TRIGGERS = ("incident_ids_ins", "incident_links_del", "incident_links_truncate",
                "incidents_id_fixed", "incidents_duplicate_of_fkey")


def _columns() -> str:
    """The stored columns of incidents (every one but the generated geom_vn), in table order."""
    from sqlalchemy import text

    rows = op.get_bind().execute(text(
        "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = 'incidents'::regclass"
        " AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum")).all()
    return ", ".join(r[0] for r in rows)


def _carry(old: str, new: str) -> tuple[str, str]:
    skip = ", ".join(f"'{t}'" for t in OWN_TRIGGERS)
    return (CARRY_OVER.replace("@OLD@", old).replace("@SKIP_TRIGGERS@", skip),
            RECREATE.replace("@OLD@", old).replace("@NEW@", new))


def _link_triggers() -> str:
    return "".join(
        f"CREATE TRIGGER {t}_{c}_fkey AFTER INSERT OR UPDATE OF {c} ON {t}\n"
        f"    FOR EACH ROW WHEN (NEW.{c} IS NOT NULL) EXECUTE FUNCTION "
        f"{'incident_duplicate_check' if c == 'duplicate_of' else 'incident_link_check'}();\n"
        for t, c, _ in LINKS)


def _on_delete(truncate: bool) -> str:
    """The ON DELETE actions of every link, for the deleted rows (old_rows) or, on TRUNCATE,
    for every row."""
    out = []
    for t, c, action in LINKS:
        cond = f"{c} IN (SELECT id FROM old_rows)" if not truncate else f"{c} IS NOT NULL"  # noqa: S608
        if action == "CASCADE":
            out.append(f"    DELETE FROM {t} WHERE {cond};")  # noqa: S608 - constants only
        else:
            out.append(f"    UPDATE {t} SET {c} = NULL WHERE {cond};")  # noqa: S608 - constants
    return "\n".join(out)


def upgrade() -> None:
    carry, recreate = _carry("incidents_pre_0038", "incidents")
    drop_fks = "".join(f"ALTER TABLE {t} DROP CONSTRAINT {t}_{c}_fkey;\n" for t, c, _ in LINKS)
    op.execute(UPGRADE.replace("@DROP_FKS@", drop_fks).replace("@CARRY_OVER@", carry)
               .replace("@RECREATE@", recreate)
               .replace("@PARTITION_FUNCTIONS@", PARTITION_FUNCTIONS)
               .replace("@LINK_FUNCTIONS@", LINK_FUNCTIONS
                        .replace("@ON_DELETE@", _on_delete(truncate=False))
                        .replace("@ON_TRUNCATE@", _on_delete(truncate=True)))
               .replace("@TRIGGERS@", TRIGGERS).replace("@LINK_TRIGGERS@", _link_triggers())
               .replace("@BULK_LOAD_BEGIN@", BULK_LOAD_BEGIN.replace("@KINDS@", "'r', 'p'").replace(
                   "@DEF@", "replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON ')"))
               .replace("@COLUMNS@", _columns()))


def downgrade() -> None:
    carry, recreate = _carry("incidents_p0038", "incidents")
    drop_links = "".join(f"DROP TRIGGER IF EXISTS {t}_{c}_fkey ON {t};\n" for t, c, _ in LINKS)
    add_fks = "".join(
        f"ALTER TABLE {t} ADD CONSTRAINT {t}_{c}_fkey FOREIGN KEY ({c}) REFERENCES incidents (id)"
        f" ON DELETE {action};\n" for t, c, action in LINKS)
    op.execute(DOWNGRADE.replace("@DROP_LINK_TRIGGERS@", drop_links)
               .replace("@CARRY_OVER@", carry).replace("@RECREATE@", recreate)
               .replace("@ADD_FKS@", add_fks)
               .replace("@BULK_LOAD_BEGIN@", BULK_LOAD_BEGIN.replace("@KINDS@", "'r'").replace(
                   "@DEF@", "pg_get_indexdef(i.indexrelid)"))
               .replace("@COLUMNS@", _columns()))
