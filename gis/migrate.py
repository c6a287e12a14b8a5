"""Schema migrations (alembic) driven from Python, so the CLI and tests need no alembic.ini."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from gis.rows import scalar
from gis.settings import PROJECT_ROOT, get_settings


def sqlalchemy_url(url: str | None = None) -> str:
    url = url or get_settings().database_url
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return cfg


def upgrade(revision: str = "head", url: str | None = None) -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(revision: str = "base", url: str | None = None) -> None:
    command.downgrade(alembic_config(url), revision)


def current(url: str | None = None) -> str | None:
    """The revision the database is at (None on an empty database)."""
    import psycopg

    from gis.settings import get_settings

    with psycopg.connect(url or get_settings().database_url) as conn:
        exists = scalar(conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL"))
        if not exists:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None


DROP_ALL = """
DO $$
DECLARE r record;
BEGIN
    -- Everything in schema public that no extension owns: tables, views, sequences, functions,
    -- types.
    FOR r IN
        SELECT quote_ident(c.relname) AS name,
               CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                              WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
           -- extension members, and sequences that belong to a column, go with their owner
           -- (a partitioned table depends internally on itself: it is no member of anything)
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid
                            AND d.deptype IN ('e', 'a', 'i') AND d.refobjid <> c.oid)
         ORDER BY c.relkind = 'S'
    LOOP
        EXECUTE format('DROP %s IF EXISTS %s CASCADE', r.kind, r.name);
    END LOOP;
    FOR r IN
        SELECT p.oid::regprocedure::text AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public'
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', r.name);
    END LOOP;
    -- Enums, domains and free-standing composite types (the job queue's, migration 0016).
    FOR r IN
        SELECT quote_ident(t.typname) AS name FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname = 'public'
           AND (t.typtype IN ('e', 'd')
                OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('DROP TYPE IF EXISTS %s CASCADE', r.name);
    END LOOP;
END $$;
"""


def drop_all(url: str | None = None) -> None:
    """Remove every GeoIOC object, whatever revision (even an unknown one) the database is at.

    `db reset` uses this rather than a downgrade so that a database left by another branch's
    migrations can still be reset; the downgrade path has its own test.
    """
    import psycopg

    from gis.settings import get_settings

    with psycopg.connect(url or get_settings().database_url, autocommit=True) as conn:
        conn.execute(DROP_ALL)
        # Rows that the VN-2000 migration registered go with it.
        from gis.crs import VN2000_TM3_MISSING_IN_POSTGIS, vn2000_tm3_proj4

        for srid in VN2000_TM3_MISSING_IN_POSTGIS:
            conn.execute("DELETE FROM spatial_ref_sys WHERE srid = %s AND proj4text = %s",
                         (srid, vn2000_tm3_proj4(srid)))
