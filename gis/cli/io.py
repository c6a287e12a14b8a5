"""`geoioc export`, `geoioc import`, `geoioc harvest`: data exchange from the command line.

    geoioc export parcels --format shp --crs EPSG:9209 -o thua-dat.zip [--bbox …] [--where CQL2]
    geoioc import thua-dat.zip --layer parcels [--crs EPSG:9209] [--from-encoding tcvn3] [--repair]
    geoioc harvest http://district.example/ogc --collection sensors --layer sensors

The command line acts with the database owner's credentials, so it acts as an administrator
(every layer and field); what it does is audited with credential "cli" and the system user.
Exit codes: 0 done; 2 a bad request or an unreadable file (one line on stderr); 3 rows were
rejected and nothing was written (the report lists them).
"""

from __future__ import annotations

import getpass
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import psycopg
import typer
from rich.table import Table

from gis.cli.common import console, err, progress_bar
from gis.cli.common import fail as _error
from layers.access import Principal
from layers.errors import Ambiguous, LayerNotFound

if TYPE_CHECKING:
    from gis.io.imports import ImportReport

REJECTED_EXIT = 3
SHOWN_REJECTIONS = 50


def _principal() -> Principal:
    """The command line acts as an administrator named after the OS user (see the module's doc)."""
    return Principal(f"cli:{getpass.getuser()}", frozenset({"admin"}))


def _connect() -> psycopg.Connection[tuple[Any, ...]]:
    """An owner's autocommit connection without the server's statement timeout: files can be large."""
    from gis.db import SESSION_OPTIONS
    from gis.settings import get_settings

    return psycopg.connect(get_settings().database_url, autocommit=True,
                           options=SESSION_OPTIONS.replace("statement_timeout=60000", "statement_timeout=0"))


_bar = progress_bar


def export_command(
    layer: Annotated[str, typer.Argument(help="Layer id (geoioc layers list).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write: .zip or .shp "
                                         "(Shapefile), .gpkg, .geojson, .fgb, .csv, .kml.")],
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="shp, gpkg, geojson, fgb, csv, kml "
                                            "(default: from the output's extension).")] = None,
    crs: Annotated[str, typer.Option(help="EPSG:4326 (WGS 84), EPSG:3405 (VN-2000 UTM 48N) or the "
                                     "province's VN-2000 TM-3 zone, e.g. EPSG:9209.")] = "EPSG:4326",
    bbox: Annotated[str | None, typer.Option(help="minx,miny,maxx,maxy (in --bbox-crs).")] = None,
    bbox_crs: Annotated[str | None, typer.Option(help="CRS of --bbox (default WGS 84 lon/lat).")] = None,
    where: Annotated[str | None, typer.Option("--where", help="CQL2 text filter, e.g. "
                                              "\"sheet_no = 12 AND origin = 'lease'\".")] = None,
    commune: Annotated[str | None, typer.Option(help="Administrative unit, by code or by name "
                                                "(accents and case ignored): features "
                                                "intersecting it.")] = None,
    commune_date: Annotated[str | None, typer.Option(help="Date of the unit's boundary, or "
                                                     "'pre-2025' (default: today).")] = None,
    datetime: Annotated[str | None, typer.Option(help="Time window: 2025-01-01/2025-06-30, "
                                                 "2025-01-01/.., or an instant.")] = None,
    fields: Annotated[str | None, typer.Option(help="Fields to keep, comma-separated (full or short "
                                               "names).")] = None,
    encoding: Annotated[str, typer.Option(help="utf-8, or tcvn3 for legacy software (Shapefile, "
                                          "CSV).")] = "utf-8",
) -> None:
    """Export a layer to a file, with a progress bar."""
    from gis.io.export import ExportError, ExportRequest, audit_export, plan, run
    from gis.io.formats import FORMATS

    ext = output.suffix.lower()
    if fmt is None:
        guess = {".zip": "shp", ".shp": "shp", ".json": "geojson"}.get(ext, ext.lstrip("."))
        if guess not in FORMATS:
            raise _error(f"--format: cannot tell the format of {output.name}; give --format")
        fmt = guess
    req = ExportRequest(layer=layer, format=fmt, crs=crs, bbox=bbox, bbox_crs=bbox_crs, commune=commune,
                        commune_date=commune_date, filter=where, datetime=datetime, fields=fields,
                        encoding=encoding)
    who = _principal()
    work = Path(tempfile.mkdtemp(prefix="geoioc-export-"))
    try:
        with _connect() as conn:
            try:
                p = plan(conn, req, who)
            except (ExportError, LayerNotFound, Ambiguous) as e:
                raise _error(str(e)) from None
            p.zip = not (p.fmt.key == "shp" and ext == ".shp")
            with _bar() as bar:
                task = bar.add_task(f"{layer} → {p.fmt.label}, EPSG:{p.srid}", total=None)

                def progress(done: int, total: int | None) -> None:
                    bar.update(task, completed=done, total=total)

                try:
                    result = run(conn, p, work, progress)
                except ExportError as e:
                    raise _error(str(e)) from None
            audit_export(conn, who, p, result, "export-cli", credential="cli", output=str(output))
        output.parent.mkdir(parents=True, exist_ok=True)
        if not p.zip:  # the shapefile's files, renamed after OUTPUT
            written = []
            for name in result.files:
                target = output.parent / (name.replace(p.basename, output.stem, 1)
                                          if name.startswith(p.basename) else f"{output.stem}.{name}")
                shutil.move(work / name, target)
                written.append(target)
        else:
            shutil.move(result.path, output)
            written = [output]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for w in result.warnings:
        err.print(f"[yellow]warning:[/yellow] {w}")
    console.print(f"{result.rows} features → {', '.join(str(w) for w in written)}")


def import_command(
    file: Annotated[Path, typer.Argument(help="Shapefile (.zip or .shp), GeoPackage, GeoJSON, "
                                         "FlatGeobuf or CSV (WKT or lon/lat columns).")],
    layer: Annotated[str, typer.Option("--layer", "-l", help="Layer to import into.")],
    crs: Annotated[str | None, typer.Option(help="Source CRS when the file has none or a wrong one, "
                                            "e.g. EPSG:9209.")] = None,
    from_encoding: Annotated[str | None, typer.Option(help="Text encoding of the file: tcvn3, vni, "
                                                      "cp1258, utf-8 (default: detected).")] = None,
    repair: Annotated[bool, typer.Option(help="Repair invalid geometries with ST_MakeValid "
                                         "(default: reject them).")] = False,
    partial: Annotated[bool, typer.Option(help="Write the good rows even when some are rejected "
                                          "(default: all or nothing).")] = False,
    dry_run: Annotated[bool, typer.Option(help="Check and count, write nothing.")] = False,
    source_layer: Annotated[str | None, typer.Option(help="Layer of a GeoPackage with several.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Import a file into a layer: checked row by row, all or nothing, idempotent."""
    from gis.io.imports import ImportNotAllowed, ImportOptions, import_file

    if not file.exists():
        raise _error(f"{file}: no such file")
    opts = ImportOptions(layer=layer, crs=crs, from_encoding=from_encoding, repair=repair,
                         partial=partial, dry_run=dry_run, source_layer=source_layer)
    with _connect() as conn, _bar() as bar:
        task = bar.add_task(f"{file.name} → {layer}", total=None)

        def progress(phase: str, done: int, total: int) -> None:
            bar.update(task, description=f"{file.name} → {layer}: {phase}", completed=done,
                       total=total or None)

        try:
            report = import_file(conn, file, opts, _principal(), progress=progress, credential="cli")
        except (LayerNotFound, ImportNotAllowed) as e:
            raise _error(str(e)) from None
    if as_json:
        print(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        _print_report(report)
    if report.error:
        raise _error(report.error)
    if not report.ok:
        raise typer.Exit(REJECTED_EXIT)


def _print_report(report: ImportReport) -> None:
    t = Table(title=f"{report.file} → {report.layer}", show_header=False)
    done = "written" if report.committed else ("dry run: nothing written" if report.dry_run
                                               else "NOTHING WRITTEN")
    for k, v in (("format", report.format), ("source CRS", report.source_crs),
                 ("encoding", report.encoding or "utf-8"), ("rows", report.rows),
                 ("inserted", report.inserted), ("updated", report.updated),
                 ("unchanged", report.unchanged), ("repaired", report.repaired),
                 ("rejected", report.rejected_count), ("result", done)):
        if v not in (None, ""):
            t.add_row(k, str(v))
    console.print(t)
    if report.rejected:
        r = Table(title=f"Rejected rows ({report.rejected_count})")
        if any(x.file for x in report.rejected):
            r.add_column("file")
        r.add_column("row", justify="right")
        r.add_column("reason")
        for x in report.rejected[:SHOWN_REJECTIONS]:
            r.add_row(*([x.file or ""] if any(y.file for y in report.rejected) else []), str(x.row), x.reason)
        console.print(r)
        if report.rejected_count > SHOWN_REJECTIONS:
            console.print(f"… and {report.rejected_count - SHOWN_REJECTIONS} more (--json for all)")
    for w in report.warnings:
        err.print(f"[yellow]warning:[/yellow] {w}")


def harvest_command(
    url: Annotated[str, typer.Argument(help="The OGC API - Features server (landing page, e.g. "
                                       "http://district.example/ogc) or a collection's items URL.")],
    collection: Annotated[str, typer.Option(help="Collection id at the source.")],
    layer: Annotated[str, typer.Option("--layer", "-l", help="Our layer to update.")],
    page_size: Annotated[int, typer.Option(help="Features per page asked for.")] = 1000,
    api_key: Annotated[str | None, typer.Option(envvar="GEOIOC_HARVEST_API_KEY",
                                                help="X-API-Key for the source, if it wants one.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Pull a collection from another OGC API - Features server; a re-run updates only what
    changed."""
    from gis.io.harvest import harvest
    from gis.io.imports import ImportNotAllowed


    if page_size < 1:
        raise _error("--page-size must be positive")
    headers = {"X-API-Key": api_key} if api_key else None
    with _connect() as conn, _bar() as bar:
        task = bar.add_task(f"{collection} → {layer}", total=None)
        try:
            report = harvest(conn, url, collection, layer, _principal(), page_size=page_size,
                             progress=lambda done, total: bar.update(task, completed=done, total=total),
                             credential="cli", headers=headers)
        except (LayerNotFound, ImportNotAllowed) as e:
            raise _error(str(e)) from None
    if as_json:
        print(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        t = Table(title=f"{report.source} / {collection} → {layer}", show_header=False)
        for k in ("pages", "features", "added", "updated", "unchanged", "missing_at_source",
                  "rejected_count"):
            t.add_row(k.replace("_", " "), str(getattr(report, k)))
        console.print(t)
        for x in report.rejected[:SHOWN_REJECTIONS]:
            console.print(f"  rejected {x.row}: {x.reason}")
        for w in report.warnings:
            err.print(f"[yellow]warning:[/yellow] {w}")
    if report.error:
        raise _error(report.error)
    if not report.ok:
        raise typer.Exit(REJECTED_EXIT)
