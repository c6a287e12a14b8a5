"""`geoioc indicators`: the socio-economic indicators (gis/indicators).

    geoioc indicators list                              the indicators and what they have values for
    geoioc indicators import FILE [--indicator CODE] [--layout long|wide] [--boundaries DATE]
                                  [--sheet NAME] [--dry-run] [--json]

Like `geoioc import`, the command line acts as an administrator, audited with credential "cli".
Exit codes: 0 done; 2 an unreadable file or a bad option; 3 rows were refused and nothing was
written (the report lists them: row, column, reason).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from gis.cli.common import console
from gis.cli.common import fail as _error
from gis.cli.io import REJECTED_EXIT, _connect, _principal, _print_report

indicators_app = typer.Typer(help="Socio-economic indicators by administrative unit.",
                             no_args_is_help=True)


@indicators_app.command("list")
def list_command() -> None:
    """The indicators with their unit, periodicity, access and the periods they have values for."""
    from gis.indicators import service

    with _connect() as conn:
        rows = service.indicators(conn, _principal())
    t = Table(title=f"{len(rows)} indicators")
    for col in ("code", "name", "unit", "periodicity", "access", "periods", "values"):
        t.add_column(col)
    for r in rows:
        periods = f"{r['first_period']}–{r['last_period']}" if r["first_period"] else "–"
        t.add_row(r["code"], r["name_vi"], r["unit_vi"], r["periodicity"], r["access"], periods,
                  str(r["n_values"]))
    console.print(t)


@indicators_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="CSV (UTF-8, with or without BOM) or XLSX: long "
                                         "(unit, indicator, period, value) or wide (a yearbook "
                                         "table: one row per unit, one column per period).")],
    indicator: Annotated[str | None, typer.Option(help="The indicator of a wide table whose title "
                                                  "does not name it.")] = None,
    layout: Annotated[str, typer.Option(help="auto, long or wide.")] = "auto",
    boundaries: Annotated[str | None, typer.Option(help="Match units valid on this day (YYYY-MM-DD), "
                                                   "e.g. figures recomputed on the current "
                                                   "boundaries (default: each period's last day).")
                          ] = None,
    sheet: Annotated[str | None, typer.Option(help="The XLSX sheet (default: the first).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Check and count, write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Import indicator values: every row checked, all or nothing; a period imported again
    replaces its values."""
    from gis.indicators.imports import IndicatorImportOptions, import_indicators

    if not file.exists():
        raise _error(f"{file}: no such file")
    if layout not in ("auto", "long", "wide"):
        raise _error(f"--layout: {layout!r} is not auto, long or wide")
    day = None
    if boundaries:
        try:
            day = dt.date.fromisoformat(boundaries)
        except ValueError:
            raise _error(f"--boundaries: {boundaries!r} is not a date (YYYY-MM-DD)") from None
    opts = IndicatorImportOptions(indicator=indicator, layout=layout,  # type: ignore[arg-type]
                                  boundaries=day, sheet=sheet, dry_run=dry_run)
    with _connect() as conn:
        report = import_indicators(conn, file, opts, _principal(), credential="cli")
    if as_json:
        print(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        _print_report(report)
    if report.error:
        raise _error(report.error)
    if not report.ok:
        raise typer.Exit(REJECTED_EXIT)
