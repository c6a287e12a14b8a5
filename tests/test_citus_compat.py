"""The migrated schema stays distributable on Citus under the plan of gis/scaling.py.

Read from pg_catalog (the schema as the migrations made it, not as a migration says it is):
every table is declared (distributed, reference or local), and every primary key, unique
constraint or index, exclusion constraint and foreign key is one Citus can keep:

- on a distributed table, a PRIMARY KEY, UNIQUE (constraint or index) or EXCLUDE includes the
  distribution column (an EXCLUDE with the equality operator on it);
- the distribution column is NOT NULL (a hash-distributed row needs a value to find a shard);
- a foreign key from a distributed table goes to a reference table, or to a distributed table
  of the same colocation group with the referencing distribution column matched to the
  referenced one, without SET NULL / SET DEFAULT on the distribution column;
- a reference table refers to reference tables only (never to a distributed table; to a
  coordinator-local one only by turning it into a Citus local table, which the plan does not
  rely on);
- a local table refers to local or reference tables, never to a distributed one.

A violation not in gis.scaling.KNOWN_GAPS fails, and so does a listed gap that no longer exists
(the allow-list must shrink with the schema). Each gap is explained in docs/scaling.md.
"""

from __future__ import annotations

from typing import Any

import psycopg

from gis import scaling

# Tables of the public schema: ordinary and partitioned, not partitions (they follow their
# parent), not an extension's (spatial_ref_sys), not a detached monthly partition (kept by
# observations_detach_partitions or incidents_detach_partitions for archiving, with the rows
# that linked to an archived incident month beside it: no longer part of the schema).
TABLES = """
SELECT c.relname::text
  FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
   AND NOT c.relispartition
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                    AND d.objid = c.oid AND d.deptype = 'e')
   AND c.relname !~ '^(observations|observation_hourly|incidents)_y[0-9]{4}m[0-9]{2}$'
   AND c.relname !~ '^incidents_y[0-9]{4}m[0-9]{2}_'
 ORDER BY 1
"""

# Keys: constraints p/u/x with their columns (and, for EXCLUDE, the operators), plus unique
# indexes that back no constraint.
KEYS = """
SELECT r.relname::text, k.conname::text, k.contype::text,
       array(SELECT a.attname::text FROM unnest(k.conkey) AS u(n)
              JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n) AS cols,
       array(SELECT o.oprname::text FROM unnest(coalesce(k.conexclop, '{}')) AS e(op)
              JOIN pg_operator o ON o.oid = e.op) AS ops
  FROM pg_constraint k JOIN pg_class r ON r.oid = k.conrelid
 WHERE r.relnamespace = 'public'::regnamespace AND NOT r.relispartition
   AND k.contype IN ('p', 'u', 'x')
UNION ALL
SELECT r.relname::text, i.relname::text, 'i',
       array(SELECT coalesce(a.attname::text, '(expression)') FROM unnest(x.indkey) AS u(n)
              LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = u.n
                                       AND u.n > 0),
       '{}'::text[]
  FROM pg_index x JOIN pg_class r ON r.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
 WHERE r.relnamespace = 'public'::regnamespace AND NOT r.relispartition AND x.indisunique
   AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)
"""

FOREIGN_KEYS = """
SELECT r.relname::text, k.conname::text, t.relname::text,
       array(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY AS u(n, i)
              JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i),
       array(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY AS u(n, i)
              JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i),
       k.confdeltype::text, k.confupdtype::text
  FROM pg_constraint k JOIN pg_class r ON r.oid = k.conrelid JOIN pg_class t ON t.oid = k.confrelid
 WHERE r.relnamespace = 'public'::regnamespace AND NOT r.relispartition AND k.contype = 'f'
"""

NOT_NULL = """
SELECT a.attnotnull FROM pg_attribute a
 WHERE a.attrelid = to_regclass(%s) AND a.attname = %s AND NOT a.attisdropped
"""


def schema_tables(conn: psycopg.Connection[Any]) -> set[str]:
    return {r[0] for r in conn.execute(TABLES)}


def citus_violations(conn: psycopg.Connection[Any], dist: dict[str, tuple[str, str]],
                     kinds: dict[str, str]) -> dict[str, str]:
    """Constraint (or unique index) name -> why Citus cannot keep it under the plan DIST
    (table -> distribution column, colocation group) and KINDS (table -> distributed,
    reference or local)."""
    found: dict[str, str] = {}
    for table, name, kind, cols, ops in conn.execute(KEYS):
        if table not in dist:
            continue  # reference and local tables keep any key (one shard, or no shard at all)
        column = dist[table][0]
        what = {"p": "primary key", "u": "unique constraint", "x": "exclusion constraint",
                "i": "unique index"}[kind]
        if column not in cols:
            found[name] = f"{table}: {what} {cols} lacks the distribution column {column}"
        elif kind == "x" and ops[cols.index(column)] != "=":
            found[name] = f"{table}: {what} compares {column} with {ops[cols.index(column)]}, not ="
    for table, (column, _) in dist.items():
        row = conn.execute(NOT_NULL, (table, column)).fetchone()
        if row is None:
            found[f"{table}.{column}"] = f"{table}: distribution column {column} does not exist"
        elif not row[0]:
            found[f"{table}.{column}"] = f"{table}: distribution column {column} may be NULL"
    for table, name, target, cols, fcols, on_delete, on_update in conn.execute(FOREIGN_KEYS):
        src, dst = kinds.get(table), kinds.get(target)
        if src is None or dst is None:
            continue  # reported by the "every table declared" test
        if src == "distributed" and dst == "distributed":
            column, group = dist[table]
            fcolumn, fgroup = dist[target]
            if group != fgroup:
                found[name] = (f"{table} -> {target}: distributed tables of different colocation "
                               f"groups ({group}, {fgroup})")
            elif column not in cols or fcols[cols.index(column)] != fcolumn:
                found[name] = (f"{table}{cols} -> {target}{fcols}: does not match distribution "
                               f"column {column} to {fcolumn}")
            elif "n" in (on_delete, on_update) or "d" in (on_delete, on_update):
                found[name] = f"{table} -> {target}: SET NULL/DEFAULT on the distribution column"
        elif src == "distributed" and dst == "local":
            found[name] = f"{table} -> {target}: distributed table refers to a local table"
        elif src == "reference" and dst != "reference":
            found[name] = f"{table} -> {target}: reference table refers to a {dst} table"
        elif src == "local" and dst == "distributed":
            found[name] = f"{table} -> {target}: local table refers to a distributed table"
    return found


def test_every_table_is_declared_once(conn: psycopg.Connection[Any]) -> None:
    """A new table forces a decision: distributed (on what), reference, or local."""
    lists = [set(scaling.DISTRIBUTED), set(scaling.REFERENCE), set(scaling.LOCAL)]
    twice = (lists[0] & lists[1]) | (lists[0] & lists[2]) | (lists[1] & lists[2])
    assert not twice, f"declared in more than one list of gis/scaling.py: {sorted(twice)}"
    tables = schema_tables(conn)
    assert "observations" in tables and "incidents" in tables  # the query does read the schema
    undeclared = tables - set(scaling.declared())
    assert not undeclared, (f"tables not declared in gis/scaling.py (distributed, reference or "
                            f"local): {sorted(undeclared)}")
    gone = set(scaling.declared()) - tables
    assert not gone, f"gis/scaling.py declares tables the schema does not have: {sorted(gone)}"


def test_colocation_groups_share_a_column_type(conn: psycopg.Connection[Any]) -> None:
    """Tables colocated must hash the same type (Citus refuses to colocate int8 with text)."""
    types: dict[str, set[str]] = {}
    for table, (column, group) in scaling.DISTRIBUTED.items():
        row = conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                           " WHERE attrelid = to_regclass(%s) AND attname = %s", (table, column)
                           ).fetchone()
        assert row is not None, f"{table}.{column} does not exist"
        types.setdefault(group, set()).add(row[0])
    assert all(len(t) == 1 for t in types.values()), types


def test_no_constraint_citus_cannot_distribute(conn: psycopg.Connection[Any]) -> None:
    found = citus_violations(conn, scaling.DISTRIBUTED, scaling.declared())
    # The checks see what they are meant to see: the known gaps are found (by name).
    new = {name: why for name, why in found.items() if name not in scaling.KNOWN_GAPS}
    assert not new, ("constraints Citus cannot distribute under gis/scaling.py's plan (fix the "
                     "migration, or list the gap with its remedy in gis.scaling.KNOWN_GAPS and "
                     "docs/scaling.md):\n" + "\n".join(f"  {n}: {w}" for n, w in sorted(new.items())))
    closed = set(scaling.KNOWN_GAPS) - set(found)
    assert not closed, f"gaps listed in gis.scaling.KNOWN_GAPS that no longer exist: {sorted(closed)}"


def test_the_checks_catch_what_they_name(conn: psycopg.Connection[Any]) -> None:
    """Each rule, on tables made for it in a rolled-back transaction: a check that cannot fail
    proves nothing."""
    dist = {**scaling.DISTRIBUTED, "citus_t_a": ("id", "g1"), "citus_t_b": ("id", "g2"),
            "citus_t_c": ("a_id", "g1"), "citus_t_n": ("k", "g3")}
    kinds = {**scaling.declared(), "citus_t_a": "distributed", "citus_t_b": "distributed",
             "citus_t_c": "distributed", "citus_t_n": "distributed", "citus_t_l": "local",
             "citus_t_r": "reference"}
    with conn.transaction(force_rollback=True):
        conn.execute("""
            CREATE TABLE citus_t_a (id bigint PRIMARY KEY, code text UNIQUE,
                                    during tstzrange, EXCLUDE USING gist (during WITH &&));
            CREATE TABLE citus_t_b (id bigint PRIMARY KEY, a_id bigint REFERENCES citus_t_a (id));
            CREATE TABLE citus_t_c (a_id bigint NOT NULL REFERENCES citus_t_a (id),
                                    other bigint REFERENCES citus_t_a (id),
                                    PRIMARY KEY (a_id, other));
            CREATE UNIQUE INDEX citus_t_c_other_idx ON citus_t_c (other);
            CREATE TABLE citus_t_l (id bigint PRIMARY KEY, a_id bigint REFERENCES citus_t_a (id));
            CREATE TABLE citus_t_r (id bigint PRIMARY KEY, a_id bigint REFERENCES citus_t_a (id),
                                    l_id bigint REFERENCES citus_t_l (id));
            CREATE TABLE citus_t_n (k bigint, UNIQUE (k));
        """)
        found = citus_violations(conn, dist, kinds)
    assert "lacks the distribution column id" in found["citus_t_a_code_key"]
    assert "lacks the distribution column id" in found["citus_t_a_during_excl"]
    assert "different colocation groups" in found["citus_t_b_a_id_fkey"]
    assert "does not match distribution column" in found["citus_t_c_other_fkey"]
    assert "citus_t_c_a_id_fkey" not in found and "citus_t_c_pkey" not in found
    assert "unique index" in found["citus_t_c_other_idx"]
    assert "local table refers to a distributed table" in found["citus_t_l_a_id_fkey"]
    assert "reference table refers to a distributed" in found["citus_t_r_a_id_fkey"]
    assert "reference table refers to a local" in found["citus_t_r_l_id_fkey"]
    assert "may be NULL" in found["citus_t_n.k"]
    assert "citus_t_a_pkey" not in found and "citus_t_n_k_key" not in found
