"""`geoioc db migrate|reset`: the database schema."""

from __future__ import annotations

from typing import Annotated

import typer

from gis.cli.common import console, safe_url

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


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
        typer.confirm(f"Delete all data in {safe_url()}?", abort=True)
    migrate.drop_all()
    migrate.upgrade("head")
    console.print("database reset to an empty schema")
