"""The `geoioc` command line: database, sample province, layers, server, accounts, data exchange.

One module per command group (db, sample, layers, serve, auth, io, parcels, indicators, jobs,
sensors, simulate); this package only assembles them into one typer app and turns errors into one line and
an exit code in `main()`.
Command modules import gis.cli.common, never this package, so there is no import cycle.
"""

from __future__ import annotations

import sys

import psycopg
import typer

from gis.cli import auth, db, indicators, io, jobs, layers, parcels, sample, sensors, serve, simulate
from gis.cli.common import CliError, err, safe_url

__all__ = ["CliError", "app", "main"]

app = typer.Typer(help="GeoIOC: open GIS platform for a provincial operations center.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(db.db_app, name="db")
app.add_typer(sample.sample_app, name="sample")
app.add_typer(layers.layers_app, name="layers")
app.add_typer(auth.user_app, name="user")
app.add_typer(auth.role_app, name="role")
app.add_typer(auth.key_app, name="key")
app.add_typer(auth.audit_app, name="audit")
app.add_typer(parcels.parcels_app, name="parcels")
app.add_typer(indicators.indicators_app, name="indicators")
app.command("export")(io.export_command)
app.command("import")(io.import_command)
app.command("harvest")(io.harvest_command)
app.command("serve")(serve.serve)
app.command("worker")(jobs.worker)
app.add_typer(jobs.jobs_app, name="jobs")
app.command("ingest")(sensors.ingest)
app.add_typer(sensors.observations_app, name="observations")
app.add_typer(sensors.incidents_app, name="incidents")
app.command("simulate")(simulate.simulate)


def main() -> None:
    """The console script: run the app; known failures end in one line on stderr, no traceback.

    Exit codes: 2 a bad request (CliError), 1 the database is unreachable or refused the work.
    """
    try:
        app()
    except CliError as e:
        err.print(f"[red]geoioc:[/red] {e}")
        sys.exit(2)
    except psycopg.OperationalError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        err.print(f"[red]geoioc:[/red] cannot reach the database ({safe_url()}): {first}")
        sys.exit(1)
    except psycopg.Error as e:
        err.print(f"[red]geoioc:[/red] database error: {str(e).strip().splitlines()[0]}")
        sys.exit(1)
