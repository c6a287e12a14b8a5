"""The import, step by step: rights, read, detect (encoding, CRS), validate (values, rows,
geometries), stage and match, refuse or repair invalid geometries, write, report and audit.

Each step lives in its own module of gis.io.imports; this one only orders them and holds the
all-or-nothing rule: every row is checked before anything is written, the write is one
transaction, and a refusal (by a check, by the database or by a dry run) rolls it back whole
and lists every refused row with its number in the source file.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa

from gis import audit
from gis.io.imports import detect, versions, write
from gis.io.imports.errors import ImportFileError, without_paths
from gis.io.imports.geometry import WKB, Flags, check_geometries
from gis.io.imports.read import Source, read_sources
from gis.io.imports.repair import refused_invalid
from gis.io.imports.report import ImportReport, Reason, audit_target
from gis.io.imports.table import Target, load_target
from gis.io.imports.validate import Column, check_rights, check_rows, map_columns
from gis.overviews import refresh_overviews
from layers.access import Principal, readable_fields
from layers.model import Layer, Versions

# progress(phase, done, total): "reading", "checking", "writing"; total 0 when unknown.
Progress = Callable[[str, int, int], None]


@dataclass
class ImportOptions:
    """What the caller asks for (the API's form fields, the CLI's options)."""

    layer: str
    crs: str | None = None  # overrides the file's CRS
    from_encoding: str | None = None  # overrides encoding detection
    repair: bool = False  # write invalid geometries through ST_MakeValid
    partial: bool = False  # False: all or nothing
    dry_run: bool = False
    source_layer: str | None = None  # a GeoPackage's layer


def import_file(conn: psycopg.Connection[Any], path: Path, opts: ImportOptions, who: Principal, *,
                display: str | None = None, progress: Progress | None = None, request: Any = None,
                credential: str | None = None) -> ImportReport:
    """Import PATH into a layer; returns the report (committed or not). Raises LayerNotFound,
    ImportNotAllowed; file problems come back as report.error (nothing written).

    CONN must be in autocommit mode: the import is one explicit transaction, and the audit row
    of a refused import is written after its rollback."""
    layer = check_rights(opts.layer, who)
    display = display or path.name
    report = ImportReport(layer.id, display, dry_run=opts.dry_run, all_or_nothing=not opts.partial)
    work = Path(tempfile.mkdtemp(prefix="geoioc-import-"))
    try:
        _run(conn, path, display, layer, opts, who, report, work, progress, request, credential)
    except write.Rollback:  # a dry run, or rows the database refused: nothing was written
        pass
    except ImportFileError as e:
        report.error = without_paths(str(e), display, path)
        report.error_entry = e.message or e.fallback
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not report.committed:
        audit.record(conn, who, "import", request=request, layer=layer.id, credential=credential,
                     status=200 if report.ok else 422, target=audit_target(report))
    return report


@dataclass
class _Checked:
    """The file's rows after every check that needs no database, ready to stage."""

    names: list[str]  # the fields written, in catalogue order
    columns: dict[str, pa.Array]  # field -> converted values, every source concatenated
    wkb: WKB  # EPSG:4326
    repair: Flags  # rows to write through ST_MakeValid
    errors: dict[int, list[str]]  # global row (0-based) -> reasons it is refused
    invalid: dict[int, str]  # global row -> why its geometry is invalid (without repair)
    starts: list[tuple[int, str]]  # (first global row, file) of each source
    total: int
    versions: Versions | None  # a history import: dated versions of features (gis.io.imports.versions)


def _run(conn: psycopg.Connection[Any], path: Path, display: str, layer: Layer, opts: ImportOptions,
         who: Principal, report: ImportReport, work: Path, progress: Progress | None,
         request: Any, credential: str | None) -> None:
    """The import inside import_file's clean-up: raises write.Rollback or ImportFileError when
    nothing is written."""

    def step(phase: str, done: int, total: int) -> None:
        if progress:
            progress(phase, done, total)

    forced = detect.encoding_option(opts.from_encoding)
    step("reading", 0, 0)
    report.format, sources = read_sources(path, display, layer, work, opts.source_layer)
    target = load_target(conn, layer)
    c = _check(layer, who, target, sources, opts, forced, report, step)
    multi = len(sources) > 1
    refused: dict[int, str] = {i: Reason.join(r) for i, r in c.errors.items()}

    def settle() -> None:
        _settle(report, refused, c.starts, multi)

    keep = np.ones(c.total, dtype=bool)
    keep[list(c.errors)] = False
    rownums = np.flatnonzero(keep)
    if not len(rownums) or refused and report.all_or_nothing and not c.invalid:
        settle()  # nothing to write, or refused already (no geometry needs the database's look)
        return
    kept = {n: c.columns[n].filter(pa.array(keep)) for n in c.names}
    step("writing", 0, len(rownums))
    names = c.names
    with conn.transaction():
        write.begin(conn, layer.table, who.user or "import", f"import {display}")
        fields = [layer.field(n) for n in names]
        write.stage(conn, fields, kept, rownums, c.wkb[keep], c.repair[keep],
                    [c.invalid.get(int(i)) for i in rownums] if c.invalid else None)
        if c.versions:  # a history import: match on identity; versions older than the stored
            # one that its history does not hold are refused
            versions.match(conn, target, c.versions)
            older = versions.classify(conn, target, c.versions, names)
            refused.update(older)
            if older and not report.all_or_nothing:
                write.drop_rows(conn, list(older))
        else:
            write.match(conn, target, names)
        writer = partial(versions.write_rows, v=c.versions) if c.versions else write.write_rows
        if c.invalid:  # invalid geometries are refused unless the stored one is the same
            still = refused_invalid(conn, target)
            refused.update(still)
            if still and not report.all_or_nothing:
                write.drop_rows(conn, list(still))
        if refused and report.all_or_nothing:
            settle()
            raise write.Rollback
        try:
            with conn.transaction():
                # A dry run keeps the indexes (no exclusive lock for a result that is rolled back).
                inserted, updated = writer(conn, target, names, bulk=not opts.dry_run)
        except psycopg.Error as e:
            if isinstance(e, psycopg.OperationalError):
                raise
            found: dict[int, str] = {}
            write.diagnose(conn, target, names, write.staged_rows(conn), found, writer)
            if not found:  # not attributable to a row: report the statement's error
                raise ImportFileError(f"the database refused the import: {write.explain(conn, e)}",
                                      "import_refused") from None
            refused.update(found)
            if report.all_or_nothing:
                if len(found) >= write.MAX_DIAGNOSED:
                    report.warnings.append(Reason(
                        f"stopped looking after {write.MAX_DIAGNOSED} rows refused by the database; "
                        "there may be more", "import_w_more_refused", n=write.MAX_DIAGNOSED))
                settle()
                raise write.Rollback from None
            # Partial: drop what was found and write again, as often as the database finds more
            # (each search stops at MAX_DIAGNOSED rows; each round removes at least one row).
            while True:
                write.drop_rows(conn, list(found))
                try:
                    with conn.transaction():
                        inserted, updated = writer(conn, target, names, bulk=not opts.dry_run)
                    break
                except psycopg.Error as again:
                    if isinstance(again, psycopg.OperationalError):
                        raise
                    found = {}
                    write.diagnose(conn, target, names, write.staged_rows(conn), found, writer)
                    if not found:
                        raise ImportFileError("the database refused the import: "
                                              f"{write.explain(conn, again)}",
                                              "import_refused") from None
                    refused.update(found)
        settle()
        report.inserted, report.updated = inserted, updated
        # Unchanged: matched rows not updated; in a history import, rows not written at all
        # (versions already recorded).
        report.unchanged = (len(write.staged_rows(conn)) - inserted if c.versions
                            else write.matched(conn)) - updated
        report.repaired = int(c.repair[keep].sum())
        step("writing", len(rownums), len(rownums))
        if opts.dry_run:
            raise write.Rollback
        if layer.overview is not None and (inserted or updated):
            refresh_overviews(conn, [layer])  # low-zoom tiles show what was just imported
        report.committed = True
        audit.record(conn, who, "import", request=request, layer=layer.id, credential=credential,
                     status=200, target=audit_target(report))


def _check(layer: Layer, who: Principal, target: Target, sources: list[Source], opts: ImportOptions,
           forced: str | None, report: ImportReport, step: Progress) -> _Checked:
    """Map, decode, convert and check every source's rows (several only for a zip of
    Shapefiles, which must have the same columns); file-level problems raise ImportFileError."""
    writable = {f.name for f in readable_fields(layer, who)}
    errors: dict[int, list[str]] = {}
    converted: dict[str, list[pa.Array]] = {}
    wkbs: list[WKB] = []
    flags: list[Flags] = []
    firsts = np.cumsum([0, *(src.table.num_rows for src in sources)])
    starts = [(int(firsts[k]), src.name) for k, src in enumerate(sources)]
    names: list[str] | None = None
    crs_labels: set[str] = set()
    invalid: dict[int, str] = {}
    for k, src in enumerate(sources):
        mapping = map_columns(layer, src.table.column_names, writable, report)
        these = sorted(mapping.values(), key=layer.field_names.index)
        if names is None:
            names = these
        elif these != names:
            raise ImportFileError(f"{src.name} has other columns than {sources[0].name}",
                                  "import_other_columns", file=src.name, first=sources[0].name)
        missing = [c for c in target.required if c != layer.geometry_column
                   and c in layer.field_names and c not in these
                   and c not in layer.server_managed_fields]
        if missing:
            fl = [layer.field(c) for c in missing]
            listed = ", ".join(f"{f.name} ({f.export_name})" for f in fl)
            raise ImportFileError(f"{src.name} lacks required field(s) {listed}",
                                  "import_lacks_required", file=src.name, fields=listed)
        lacking_key = [c for c in target.key if c not in these and c in target.required]
        if lacking_key:
            raise ImportFileError(f"{src.name} lacks key field(s) {', '.join(lacking_key)} that match "
                                  f"rows of {layer.id}", "import_lacks_key", file=src.name,
                                  fields=", ".join(lacking_key), layer=layer.id)
        for c in target.key:
            if c not in these and src is sources[0]:  # e.g. no pre-2025 commune column: empty
                f = layer.field(c)
                report.warnings.append(Reason(f"no column {f.export_name} ({c}): taken as empty for "
                                              "every row", "import_w_no_column",
                                              column=f.export_name, field=c))
        detect.fix_text(src, mapping, forced, report)
        crs = detect.source_crs(src, opts.crs, report)
        crs_labels.add(crs.label)
        base = starts[k][0]
        n = src.table.num_rows
        local: dict[int, list[str]] = {}
        for col, fname in mapping.items():
            label = col if col == fname else f"{col} ({fname})"
            converted.setdefault(fname, []).append(
                Column(layer.field(fname), local, label).convert(src.table.column(col).combine_chunks()))
        step("checking", 0, n)
        wkb = src.table.column("geometry").to_numpy(zero_copy_only=False)
        w, fl_, bad_geoms = check_geometries(layer, wkb, crs, opts.repair, local)
        wkbs.append(w)
        flags.append(fl_)
        if not opts.repair:
            invalid.update({base + i: reason for i, reason in bad_geoms.items()})
        for i, reasons in local.items():
            errors[base + i] = reasons
    assert names is not None
    report.source_crs = ", ".join(sorted(crs_labels))
    total = int(firsts[-1])
    report.rows = total
    columns = {n: pa.concat_arrays(arrs) if len(arrs) > 1 else arrs[0]
               for n, arrs in converted.items()}
    for c in target.key:  # nullable key columns the file lacks: NULL, so that rows still match
        if c not in columns:
            f = layer.field(c)
            columns[c] = pa.nulls(total, pa.list_(pa.string()) if f.type == "str[]" else
                                  {"int": pa.int64(), "float": pa.float64(), "date": pa.date32()}.get(
                                      f.type, pa.string()))
            names = sorted([*names, c], key=layer.field_names.index)
    wkb_all: WKB = np.concatenate(wkbs) if wkbs else np.empty(0, dtype=object)
    repair_all: Flags = np.concatenate(flags) if flags else np.empty(0, dtype=bool)
    history = versions.history_mode(layer, columns)
    check_rows(layer, who, target, names, columns, errors, versions=history)
    return _Checked(names, columns, wkb_all, repair_all, errors, invalid, starts, total, history)


def _settle(report: ImportReport, refused: dict[int, str], starts: list[tuple[int, str]],
            multi: bool) -> None:
    """Put the refused rows into REPORT in file order, numbered within their own file (1-based)
    and named by file when the import read several."""
    for i in sorted(refused):
        base, f = next(st for st in reversed(starts) if st[0] <= i)
        report.reject(i - base + 1, refused[i], f if multi else None)

