"""Writing an import: staging, matching, the bulk write and finding the rows the database
refuses.

The checked rows go into a temporary table (_geoioc_stage) with one binary COPY encoded from
Arrow by pgpq, are matched to stored features (_geoioc_match: by Layer.natural_key, or by
content for layers without one) and written with one UPDATE of the changed matched rows and
one INSERT of the others - set-based, so a million rows cost two statements, and idempotent,
so the same file imported twice changes nothing. A big insert sets the layer's secondary
indexes aside and rebuilds them (set_indexes_aside). When the bulk write fails on a constraint,
bisection over the staged rows (diagnose) finds the rows to blame, each try rolled back, so the
report names them instead of one database error for the whole file.

The caller holds the transaction (and the table lock); everything here runs inside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pgpq
import psycopg
import pyarrow as pa
from psycopg import sql

from gis.db import rows_estimate
from gis.io.imports.geometry import WKB, Flags
from gis.io.imports.repair import geom_expr, raw_geom, same_geometry
from gis.io.imports.report import Reason
from gis.io.imports.table import Target
from layers.model import Field

# How many rows the constraint bisection looks for before it stops (the report then says so).
MAX_DIAGNOSED = 200
# Bulk loads rebuild the layer's secondary indexes instead of maintaining them row by row
# (set_indexes_aside): from this many new rows, at least this share of the stored ones, if
# the table's readers let go within this time.
BULK_MIN_ROWS = 50_000
BULK_SHARE = 0.5
BULK_LOCK_WAIT = "3s"

# Staging column types: SQL for the temporary table, Arrow for the binary COPY that fills it
# (COPY's binary format is strict: the two must agree).
STAGE_TYPES: dict[str, tuple[str, pa.DataType]] = {
    "str": ("text", pa.string()), "str[]": ("text[]", pa.list_(pa.string())),
    "int": ("bigint", pa.int64()), "float": ("float8", pa.float64()), "date": ("date", pa.date32()),
    "datetime": ("timestamptz", pa.timestamp("us", tz="UTC")), "bool": ("boolean", pa.bool_())}
COPY_BATCH = 65_536


class Rollback(Exception):
    """Raised inside a transaction block to roll it back (dry runs, diagnosis, refusals)."""


def begin(conn: psycopg.Connection[Any], table: str, user: str, note: str) -> None:
    """Prepare the open transaction for an import into TABLE: no statement timeout (a million
    rows take longer than an API request may), no JIT, the audit trigger's user and note, and
    the layer's lock."""
    conn.execute("SET LOCAL statement_timeout = 0")
    conn.execute("SET LOCAL jit = off")  # compiling costs more than it saves on these statements
    conn.execute("SELECT set_config('geoioc.user', %s, true), set_config('geoioc.note', %s, true)",
                 (user, note[:200]))
    # One import at a time per layer (reads go on): two concurrent imports of overlapping
    # files would otherwise both insert the same new rows.
    conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(sql.Identifier(table)))


def value(t: Target, name: str) -> sql.Composable:
    """Staged column NAME cast to the table's own type (its precision and rounding apply)."""
    return sql.SQL("CAST(s.{} AS {})").format(sql.Identifier(name), sql.SQL(t.types[name]))


def drop_rows(conn: psycopg.Connection[Any], rows: list[int]) -> None:
    """Take ROWS out of the staging and match tables (a partial import writes the others)."""
    conn.execute("DELETE FROM _geoioc_stage WHERE rownum = ANY(%s)", (rows,))
    conn.execute("DELETE FROM _geoioc_match WHERE rownum = ANY(%s)", (rows,))


def matched(conn: psycopg.Connection[Any]) -> int:
    """How many staged rows match a stored feature."""
    return int(_scalar(conn, "SELECT count(*) FROM _geoioc_match"))


def staged_rows(conn: psycopg.Connection[Any]) -> list[int]:
    """The staged row numbers, in order (where the bisection starts)."""
    return [r[0] for r in conn.execute("SELECT rownum FROM _geoioc_stage ORDER BY rownum")]


def _scalar(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> Any:
    """The one value of a query that always answers one row."""
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def stage(conn: psycopg.Connection[Any], fields: list[Field], columns: dict[str, pa.Array],
          rownums: npt.NDArray[np.integer[Any]], wkb: WKB, repair: Flags, invalid: list[str | None] | None
          ) -> None:
    """COPY the checked rows into a temporary table, in PostgreSQL's binary format encoded from
    Arrow by pgpq (a third of the time of a CSV with hex-encoded WKB, which the server must
    parse back)."""
    defs = [sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(STAGE_TYPES[f.type][0]))
            for f in fields]
    conn.execute(sql.SQL("CREATE TEMP TABLE _geoioc_stage (rownum int NOT NULL, {}wkb bytea NOT NULL, "
                         "repair boolean NOT NULL, invalid text) ON COMMIT DROP").format(
        sql.SQL("").join(d + sql.SQL(", ") for d in defs)))
    table = pa.table({
        "rownum": pa.array(rownums, pa.int32()),
        **{f.name: columns[f.name].cast(STAGE_TYPES[f.type][1]) for f in fields},
        "wkb": pa.array(wkb, pa.binary()),
        "repair": pa.array(repair, pa.bool_()),
        "invalid": pa.nulls(len(rownums), pa.string()) if invalid is None else pa.array(invalid, pa.string()),
    })
    encoder = pgpq.ArrowToPostgresBinaryEncoder(table.schema)
    with conn.cursor().copy(sql.SQL("COPY _geoioc_stage ({}) FROM STDIN (FORMAT binary)").format(
            sql.SQL(", ").join(sql.Identifier(n) for n in table.column_names))) as cp:
        cp.write(encoder.write_header())
        for batch in table.to_batches(max_chunksize=COPY_BATCH):
            cp.write(encoder.write_batch(batch))
        cp.write(encoder.finish())
    conn.execute("ANALYZE _geoioc_stage")


def match(conn: psycopg.Connection[Any], t: Target, names: list[str]) -> None:
    """_geoioc_match (rownum, id): the stored feature each staged row is (natural key, or same
    values and geometry within a millimetre for layers without a key)."""
    geom = sql.Identifier("t", t.layer.geometry_column)
    source = sql.SQL("_geoioc_stage")
    conds: list[sql.Composable]
    if t.key:
        conds = [sql.SQL("t.{c} IS NOT DISTINCT FROM {v}" if c not in t.required else "t.{c} = {v}"
                         ).format(c=sql.Identifier(c), v=value(t, c)) for c in t.key]
    else:
        conds = [sql.SQL("t.{c} IS NOT DISTINCT FROM {v}" if c not in t.required else "t.{c} = {v}"
                         ).format(c=sql.Identifier(c), v=value(t, c)) for c in names]
        equal = [sql.SQL("t.{c} = {v}").format(c=sql.Identifier(c), v=value(t, c))
                 for c in names if c in t.required]
        if equal:
            # Candidates first, by a hash semi-join on the NOT NULL values: new data (a million
            # new incidents) then costs no geometry comparison at all.
            conn.execute(sql.SQL(
                "CREATE TEMP TABLE _geoioc_cand ON COMMIT DROP AS SELECT * FROM _geoioc_stage s "
                "WHERE EXISTS (SELECT 1 FROM {table} t WHERE {eq})").format(
                table=sql.Identifier(t.layer.table), eq=sql.SQL(" AND ").join(equal)))
            source = sql.SQL("_geoioc_cand")
        conds.append(same_geometry(geom, raw_geom(t)))
        # Then the geometry is the selective part: probe the layer's GiST index per candidate
        # rather than hash on low-cardinality columns (road class, lanes) and compare thousands
        # of geometries per bucket.
        conn.execute("SET LOCAL enable_hashjoin = off")
        conn.execute("SET LOCAL enable_mergejoin = off")
    conn.execute(sql.SQL(
        "CREATE TEMP TABLE _geoioc_match ON COMMIT DROP AS SELECT DISTINCT ON (s.rownum) s.rownum, "
        "t.{id} AS id FROM {source} s JOIN {table} t ON {cond} ORDER BY s.rownum, t.{id}").format(
        id=sql.Identifier(t.layer.id_column), table=sql.Identifier(t.layer.table), source=source,
        cond=sql.SQL(" AND ").join(conds)))
    if not t.key:
        conn.execute("RESET enable_hashjoin")
        conn.execute("RESET enable_mergejoin")
    conn.execute("ANALYZE _geoioc_match")


def set_indexes_aside(conn: psycopg.Connection[Any], t: Target) -> bool:
    """Drop the layer's secondary indexes for a bulk insert (geoioc_bulk_load_end re-creates
    them before commit), when that is cheaper than maintaining them row by row.

    Row-by-row upkeep of a GiST and a B-tree index costs about 11 µs per new row; building them
    afresh about 3.5 µs per row of the whole table. The price is the table's ACCESS EXCLUSIVE
    lock until commit (readers wait for the insert and the rebuild: about 8 s for a million
    points), so it is only taken for loads of at least BULK_MIN_ROWS that are at least
    BULK_SHARE of the stored rows, and only if readers let go within BULK_LOCK_WAIT; otherwise
    the insert maintains the indexes as usual."""
    incoming = _scalar(conn, "SELECT (SELECT count(*) FROM _geoioc_stage) - "
                             "(SELECT count(*) FROM _geoioc_match)")
    stored = rows_estimate(conn, t.layer.table)  # a partitioned layer: its partitions' sum
    if incoming < BULK_MIN_ROWS or incoming < BULK_SHARE * stored:
        return False
    try:
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(BULK_LOCK_WAIT)))
            conn.execute("SELECT geoioc_bulk_load_begin(%s)", (t.layer.table,))
    except psycopg.errors.LockNotAvailable:
        return False
    finally:
        conn.execute("SET LOCAL lock_timeout TO DEFAULT")
    return True


def write_rows(conn: psycopg.Connection[Any], t: Target, names: list[str], only: list[int] | None = None,
               update: bool | None = None, new_ids: bool = False, bulk: bool = False,
               key_may_change: bool = False) -> tuple[int, int]:
    """UPDATE changed matched rows, INSERT unmatched ones: (inserted, updated).

    update: whether matched rows are updated (default: layers with a natural key; a content
    match has nothing to update). new_ids: insert with the ids staged in s.new_id (a harvest
    needs to know which local feature each source feature became). bulk: a big insert may set
    the layer's secondary indexes aside and rebuild them after (set_indexes_aside).
    key_may_change: rows were matched on something else than the natural key (a history
    import's identity), so a different key is a change too."""
    geom_col = sql.Identifier(t.layer.geometry_column)
    g = geom_expr(t)
    # A semi-join, not "= ANY(array)": a round of a history import passes thousands of rows.
    subset = sql.SQL(" AND s.rownum IN (SELECT unnest(%s::int[]))") if only is not None else sql.SQL("")
    params = [only] if only is not None else []
    updated = 0
    if update if update is not None else bool(t.key):
        stored = sql.SQL("t.{}").format(geom_col)
        same = same_geometry(stored, raw_geom(t))
        sets = [sql.SQL("{} = {}").format(sql.Identifier(c), value(t, c)) for c in names]
        # Within a millimetre the stored geometry stays: no churn from a round trip.
        sets.append(sql.SQL("{} = CASE WHEN {} THEN {} ELSE {} END").format(geom_col, same, stored, g))
        changed = [sql.SQL("t.{} IS DISTINCT FROM {}").format(sql.Identifier(c), value(t, c))
                   for c in names if key_may_change or c not in t.key]
        changed.append(sql.SQL("NOT {}").format(same))
        cur = conn.execute(sql.SQL(
            "UPDATE {table} AS t SET {sets} FROM _geoioc_stage s JOIN _geoioc_match m USING (rownum) "
            "WHERE t.{id} = m.id AND ({changed}){subset}").format(
            table=sql.Identifier(t.layer.table), sets=sql.SQL(", ").join(sets),
            id=sql.Identifier(t.layer.id_column), changed=sql.SQL(" OR ").join(changed), subset=subset),
            params)
        updated = cur.rowcount
    cols = [*names, t.layer.geometry_column]
    vals = [*(value(t, c) for c in names), g]
    overriding = sql.SQL("")
    if new_ids:
        cols.insert(0, t.layer.id_column)
        vals.insert(0, sql.SQL("s.new_id"))
        overriding = sql.SQL(" OVERRIDING SYSTEM VALUE")
    aside = bulk and set_indexes_aside(conn, t)
    cur = conn.execute(sql.SQL(
        "INSERT INTO {table} ({cols}){overriding} SELECT {vals} FROM _geoioc_stage s WHERE NOT EXISTS "
        "(SELECT 1 FROM _geoioc_match m WHERE m.rownum = s.rownum){subset}").format(
        table=sql.Identifier(t.layer.table), cols=sql.SQL(", ").join(sql.Identifier(c) for c in cols),
        overriding=overriding, vals=sql.SQL(", ").join(vals), subset=subset), params)
    if aside:
        conn.execute("SELECT geoioc_bulk_load_end(%s)", (t.layer.table,))
    return cur.rowcount, updated


def explain(conn: psycopg.Connection[Any], e: psycopg.Error) -> str:
    """A database error as a reason a land officer can act on."""
    diag = e.diag
    msg = (diag.message_primary or str(e)).strip()
    if diag.constraint_name:
        try:
            with conn.transaction():
                row = conn.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = %s "
                                   "LIMIT 1", (diag.constraint_name,)).fetchone()
        except psycopg.Error:
            row = None
        if row:
            return f"{msg}: {row[0]}"
    if diag.message_detail:
        return f"{msg} ({diag.message_detail.strip()})"
    return msg


def diagnose(conn: psycopg.Connection[Any], t: Target, names: list[str], rows: list[int],
             found: dict[int, str], writer: Callable[..., tuple[int, int]] | None = None,
             **options: Any) -> None:
    """Find the rows the database refuses, by bisection (each try rolled back). WRITER writes
    a subset of the staged rows (default write_rows)."""
    if len(found) >= MAX_DIAGNOSED or not rows:
        return
    try:
        with conn.transaction():
            (writer or write_rows)(conn, t, names, rows, **options)
            raise Rollback
    except Rollback:
        return
    except psycopg.Error as e:
        if isinstance(e, psycopg.OperationalError):
            raise
        if len(rows) == 1:
            found[rows[0]] = Reason(explain(conn, e), "import_row_refused")
            return
    mid = len(rows) // 2
    diagnose(conn, t, names, rows[:mid], found, writer, **options)
    diagnose(conn, t, names, rows[mid:], found, writer, **options)
