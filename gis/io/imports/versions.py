"""History imports: several dated rows of one feature are its legal versions, applied oldest
first.

A layer with `Layer.versions` (parcels) dates each version by a field (`legal_valid_from`,
when the version took legal effect) beside the system time its history table keeps. An import
whose file fills that field for at least one row is a history import:

* rows are grouped by the feature's identity (`Versions.identity`: for parcels, the pre-2025
  commune, or else the commune, with sheet and number; the natural key changes across the 2025
  merger, the identity does not). Several rows of one feature are its versions: each needs a
  date, and two with the same date are a repeat (check_rows);
* each row is compared with the stored feature (matched on the identity, the exact natural key
  first). A version already recorded - the stored row or a row of the history table with the
  same date and the same values - is left alone, so a re-import changes nothing. A version
  older than the one in force and not recorded is refused: the history is not rewritten, a
  feature's versions are imported oldest first. The others are applied;
* applied versions are written in rounds, every feature's oldest first, each round an ordinary
  matched UPDATE/INSERT of gis.io.imports.write (the key columns may change), so the history
  table's trigger keeps each replaced version with its date and decision, and the stored row
  ends as the latest version. The database refuses a version dated before the one it replaces
  whoever writes it (migration 0013); these rules keep an import from meeting that refusal.

A file without the date field, or with none filled, is an ordinary import.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from gis.io.imports import write
from gis.io.imports.repair import raw_geom, same_geometry
from gis.io.imports.report import Reason
from gis.io.imports.table import Target
from layers.model import Layer, Versions


def history_mode(layer: Layer, columns: dict[str, pa.Array]) -> Versions | None:
    """LAYER's versions when the file's COLUMNS date at least one row, else None."""
    v = layer.versions
    if v is None or v.valid_from not in columns:
        return None
    dates = columns[v.valid_from]
    return v if dates.null_count < len(dates) else None


def members(v: Versions) -> list[tuple[str, ...]]:
    """The identity's members, each as the fields whose first non-empty value it is."""
    return [m if isinstance(m, tuple) else (m,) for m in v.identity]


def identity_label(v: Versions) -> str:
    """How a report names the identity: old_commune_code|commune_code/sheet_no/parcel_no."""
    return "/".join("|".join(m) for m in members(v))


def check_rows(layer: Layer, v: Versions, columns: dict[str, pa.Array], errors: dict[int, list[str]]
               ) -> None:
    """Versions of one feature: each needs its date and no two share one (refused rows are no
    first occurrence). Replaces the natural-key repeat check of a history import."""
    idents = {f"_m{i}": (pc.coalesce(*(columns[f] for f in m)) if len(m) > 1 else columns[m[0]])
              for i, m in enumerate(members(v))}
    keys = list(idents)
    frame = pa.table({**idents, "_from": columns[v.valid_from]}).to_pandas(integer_object_nulls=True)
    frame["row"] = np.arange(len(frame))
    frame = frame[~frame["row"].isin(list(errors))]
    size = frame.groupby(keys, dropna=False, sort=False)["row"].transform("size")
    several = frame[size > 1]
    f = layer.field(v.valid_from)
    label = identity_label(v)
    for row in several.loc[several["_from"].isna(), "row"]:
        errors.setdefault(int(row), []).append(Reason(
            f"{f.export_name} ({f.name}) is empty: rows of the same {label} are the versions of "
            "one feature and each needs the date it took effect", "import_version_date",
            column=f"{f.export_name} ({f.name})"))
    dated = several[several["_from"].notna()]
    first = dated.groupby([*keys, "_from"], dropna=False, sort=False)["row"].transform("min")
    repeats = dated[dated["row"] != first]
    for row, ident, when, f0 in zip(repeats["row"], repeats[keys].itertuples(index=False),
                                    repeats["_from"], first[repeats.index], strict=True):
        shown = "/".join("" if pd.isna(x) else str(x) for x in ident)
        errors.setdefault(int(row), []).append(Reason(
            f"same {label} {shown} and {f.name} {when} as row {int(f0) + 1}", "import_version_repeat",
            shown=shown, when=str(when), row=str(int(f0) + 1)))


def _identity(v: Versions, t: Target, stored: bool) -> list[sql.Composable]:
    """The identity's members as SQL: of the stored row `t`, or of the staged row `s` cast to
    the table's types. coalesce(t.old_commune_code, t.commune_code) is what the parcels'
    identity index (migration 0013) is built on."""
    out: list[sql.Composable] = []
    for m in members(v):
        parts = [sql.Identifier("t", f) if stored else write.value(t, f) for f in m]
        out.append(sql.SQL("coalesce({})").format(sql.SQL(", ").join(parts)) if len(parts) > 1
                   else parts[0])
    return out


def match(conn: psycopg.Connection[Any], t: Target, v: Versions, only: list[int] | None = None) -> None:
    """(Re)build _geoioc_match (rownum, id): the stored feature of each staged row (of ONLY),
    by identity, a row with the same natural key first."""
    same = sql.SQL(" AND ").join(sql.SQL("{} = {}").format(a, b)
                                 for a, b in zip(_identity(v, t, True), _identity(v, t, False), strict=True))
    exact = sql.SQL(" AND ").join(
        sql.SQL("t.{} IS NOT DISTINCT FROM {}").format(sql.Identifier(c), write.value(t, c)) for c in t.key
    ) if t.key else sql.SQL("true")
    conn.execute("DROP TABLE IF EXISTS _geoioc_match")
    conn.execute(sql.SQL(
        "CREATE TEMP TABLE _geoioc_match ON COMMIT DROP AS SELECT DISTINCT ON (s.rownum) s.rownum, "
        "t.{id} AS id FROM _geoioc_stage s JOIN {table} t ON {same}{subset} "
        "ORDER BY s.rownum, ({exact}) DESC, t.{id}").format(
        id=sql.Identifier(t.layer.id_column), table=sql.Identifier(t.layer.table), same=same,
        subset=sql.SQL(" WHERE s.rownum IN (SELECT unnest(%s::int[]))") if only is not None else sql.SQL(""),
        exact=exact), [only] if only is not None else [])
    conn.execute("ANALYZE _geoioc_match")


def _same_values(t: Target, names: list[str], alias: str) -> sql.Composable:
    """The row ALIAS (stored or history) holds the staged row's values and geometry."""
    parts: list[sql.Composable] = [
        sql.SQL("{} IS NOT DISTINCT FROM {}").format(sql.Identifier(alias, c), write.value(t, c))
        for c in names]
    parts.append(same_geometry(sql.Identifier(alias, t.layer.geometry_column), raw_geom(t)))
    return sql.SQL(" AND ").join(parts)


# A staged row whose version goes in: not recorded, and not older than the version in force.
_APPLY = sql.SQL("NOT x.recorded AND NOT coalesce(x.staged_from < x.stored_from, false)")


def classify(conn: psycopg.Connection[Any], t: Target, v: Versions, names: list[str]) -> dict[int, str]:
    """_geoioc_versions (rownum, recorded, staged_from, stored_from) for every staged row, after
    match(); returns the refused rows: older than the stored version and not in its history."""
    layer = t.layer
    if layer.history_table is None:
        raise ValueError(f"layer {layer.id}: versions need a history table")
    vf = sql.Identifier(v.valid_from)
    staged = write.value(t, v.valid_from)
    conn.execute("DROP TABLE IF EXISTS _geoioc_versions")
    conn.execute(sql.SQL(
        "CREATE TEMP TABLE _geoioc_versions ON COMMIT DROP AS SELECT s.rownum, m.id AS stored_id, "
        "c.{vf} AS stored_from, {staged} AS staged_from, ({staged} IS NOT NULL AND m.id IS NOT NULL AND ("
        " (c.{vf} = {staged} AND {same_c}) OR EXISTS (SELECT 1 FROM {hist} h WHERE h.{hid} = m.id"
        "  AND h.{vf} = {staged} AND {same_h}))) AS recorded "
        "FROM _geoioc_stage s LEFT JOIN _geoioc_match m USING (rownum) "
        "LEFT JOIN {table} c ON c.{id} = m.id").format(
        vf=vf, staged=staged, same_c=_same_values(t, names, "c"), same_h=_same_values(t, names, "h"),
        hist=sql.Identifier(layer.history_table), hid=sql.Identifier(v.history_id),
        table=sql.Identifier(layer.table), id=sql.Identifier(layer.id_column)))
    f = layer.field(v.valid_from)
    rows = conn.execute(
        "SELECT rownum, staged_from, stored_from FROM _geoioc_versions WHERE NOT recorded "
        "AND staged_from < stored_from ORDER BY rownum").fetchall()
    return {int(r): (f"{f.export_name} ({f.name}) {a.isoformat()} is earlier than the stored version's "
                     f"({b.isoformat()}) and not in its history with these values: the versions of a "
                     "feature are imported oldest first, and its history is not rewritten")
            for r, a, b in rows}


def write_rows(conn: psycopg.Connection[Any], t: Target, names: list[str], only: list[int] | None = None,
               bulk: bool = False, *, v: Versions) -> tuple[int, int]:
    """Write the staged versions to apply (of ONLY) in rounds, every feature's oldest first:
    (inserted, updated). Needs classify()'s _geoioc_versions; rebuilds _geoioc_match per round
    (a feature inserted in the first round is updated by the next)."""
    conn.execute("DROP TABLE IF EXISTS _geoioc_round")
    conn.execute(sql.SQL(
        "CREATE TEMP TABLE _geoioc_round ON COMMIT DROP AS SELECT s.rownum, dense_rank() OVER "
        "(PARTITION BY {ident} ORDER BY {staged} NULLS FIRST) AS round FROM _geoioc_stage s "
        "JOIN _geoioc_versions x USING (rownum) WHERE {apply}{subset}").format(
        ident=sql.SQL(", ").join(_identity(v, t, False)), staged=write.value(t, v.valid_from),
        apply=_APPLY, subset=sql.SQL(" AND s.rownum IN (SELECT unnest(%s::int[]))") if only is not None
        else sql.SQL("")),
        [only] if only is not None else [])
    rounds = conn.execute("SELECT round, array_agg(rownum ORDER BY rownum) FROM _geoioc_round "
                          "GROUP BY round ORDER BY round").fetchall()
    inserted = updated = 0
    for k, rows in rounds:
        match(conn, t, v, list(rows))
        i, u = write.write_rows(conn, t, names, list(rows), update=True, bulk=bulk and k == 1,
                                key_may_change=True)
        inserted += i
        updated += u
    return inserted, updated
