"""`geoioc sample load`: the deterministic synthetic province."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import psycopg
import typer

from gis.cli.common import CliError, console
from gis.settings import get_settings

sample_app = typer.Typer(help="The synthetic sample province.", no_args_is_help=True)


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
    from gis.overviews import refresh_overviews
    from gis.sample import load_sample

    if scale <= 0:
        raise CliError("--scale must be positive")
    day = None
    if as_of:
        try:
            day = dt.date.fromisoformat(as_of)
        except ValueError:
            raise CliError(f"--as-of: {as_of!r} is not a date (YYYY-MM-DD)") from None
    with psycopg.connect(get_settings().database_url) as conn:
        if if_empty:
            row = conn.execute("SELECT EXISTS (SELECT 1 FROM admin_units)").fetchone()
            if row is not None and row[0]:
                console.print("sample province already loaded")
                return
        sample = load_sample(conn, seed=seed, scale=scale, as_of=day, replace=replace)
        with console.status("refreshing low-zoom overviews"):
            conn.execute("ANALYZE")
            refresh_overviews(conn)
            conn.commit()
    console.print(f"sample province loaded (seed {seed}, scale {scale:g}, hash "
                  f"{sample.data_hash()[:12]})")
