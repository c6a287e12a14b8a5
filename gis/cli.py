"""The `geoioc` command line: database, sample province, layers, server."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Annotated

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from gis import cli_io
from gis.cli_auth import audit_app, key_app, role_app, user_app
from gis.cli_parcels import parcels_app
from gis.settings import get_settings

app = typer.Typer(help="GeoIOC: open GIS platform for a provincial operations center.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
sample_app = typer.Typer(help="The synthetic sample province.", no_args_is_help=True)
layers_app = typer.Typer(help="The layer catalogue.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(sample_app, name="sample")
app.add_typer(layers_app, name="layers")
app.add_typer(user_app, name="user")
app.add_typer(role_app, name="role")
app.add_typer(key_app, name="key")
app.add_typer(audit_app, name="audit")
app.add_typer(parcels_app, name="parcels")
app.command("export")(cli_io.export_command)
app.command("import")(cli_io.import_command)
app.command("harvest")(cli_io.harvest_command)

console = Console()
err = Console(stderr=True)


class CliError(Exception):
    """An error to show the user as one line (no traceback)."""


@db_app.command("migrate")
def db_migrate(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from gis import migrate

    migrate.upgrade(revision)
    console.print(f"schema at revision [bold]{migrate.current()}[/bold]")


@db_app.command("reset")
def db_reset(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Drop every GeoIOC table and migrate again (all data is lost)."""
    from gis import migrate

    if not yes:
        typer.confirm(f"Delete all data in {_safe_url()}?", abort=True)
    migrate.drop_all()
    migrate.upgrade("head")
    console.print("database reset to an empty schema")


@sample_app.command("load")
def sample_load(
    scale: Annotated[float, typer.Option(help="1 = about 40,000 parcels, 50,000 incidents.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Same seed, same data.")] = 1,
    as_of: Annotated[
        str | None, typer.Option(help="Date the time series end at (default: today, UTC).")
    ] = None,
    replace: Annotated[bool, typer.Option(help="Replace data already loaded.")] = False,
    if_empty: Annotated[
        bool, typer.Option(help="Do nothing when the database already has a sample.")
    ] = False,
) -> None:
    """Generate the deterministic synthetic province and load it (COPY, one transaction)."""
    from gis.sample import load_sample
    from layers.overviews import refresh_overviews

    if scale <= 0:
        raise CliError("--scale must be positive")
    day = None
    if as_of:
        try:
            day = dt.date.fromisoformat(as_of)
        except ValueError:
            raise CliError(f"--as-of: {as_of!r} is not a date (YYYY-MM-DD)") from None
    with psycopg.connect(get_settings().database_url) as conn:
        if if_empty and conn.execute("SELECT EXISTS (SELECT 1 FROM admin_units)").fetchone()[0]:
            console.print("sample province already loaded")
            return
        sample = load_sample(conn, seed=seed, scale=scale, as_of=day, replace=replace)
        with console.status("refreshing low-zoom overviews"):
            conn.execute("ANALYZE")
            refresh_overviews(conn)
            conn.commit()
    console.print(f"sample province loaded (seed {seed}, scale {scale:g}, hash "
                  f"{sample.data_hash()[:12]})")


@layers_app.command("list")
def layers_list() -> None:
    """List the layers of the catalogue."""
    from layers import LAYERS

    table = Table("id", "tiêu đề / title", "bảng / table", "hình học / geometry", "truy cập / access",
                  "zoom")
    for layer in LAYERS:
        table.add_row(layer.id, f"{layer.title_vi} / {layer.title_en}", layer.table,
                      layer.geometry_type, layer.access.value, f"{layer.min_zoom}-{layer.max_zoom}")
    console.print(table)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Serve the API and the map."""
    import os

    import uvicorn

    s = get_settings()
    host, port = host or s.host, port or s.port
    os.environ["GEOIOC_HOST"], os.environ["GEOIOC_PORT"] = host, str(port)
    get_settings.cache_clear()
    console.print(f"GeoIOC serving on [bold]http://{host}:{port}[/bold] (Ctrl+C to stop)")
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, log_level="warning")


def _safe_url() -> str:
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(get_settings().database_url)
    return f"{info.get('dbname')} on {info.get('host')}:{info.get('port', 5432)}"


def main() -> None:
    try:
        app()
    except CliError as e:
        err.print(f"[red]geoioc:[/red] {e}")
        sys.exit(2)
    except psycopg.OperationalError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        err.print(f"[red]geoioc:[/red] cannot reach the database ({_safe_url()}): {first}")
        sys.exit(1)
    except psycopg.Error as e:
        err.print(f"[red]geoioc:[/red] database error: {str(e).strip().splitlines()[0]}")
        sys.exit(1)
