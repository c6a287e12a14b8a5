"""`geoioc serve`: the API and the map under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from gis.cli.common import console
from gis.settings import get_settings


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (each with its own "
                                         "connection pool, rate and flood limits and, by "
                                         "default, queue worker).")] = 1,
) -> None:
    """Serve the API and the map."""
    import os

    import uvicorn

    s = get_settings()
    host, port = host or s.host, port or s.port
    # The app factory reads its settings from the environment: hand it the address chosen here.
    os.environ["GEOIOC_HOST"], os.environ["GEOIOC_PORT"] = host, str(port)
    get_settings.cache_clear()
    console.print(f"GeoIOC serving on [bold]http://{host}:{port}[/bold] (Ctrl+C to stop)")
    # httptools, with h11's bound on a request's head (gis/cli/http_protocol.py); an import
    # string, so that each worker process imports it.
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, log_level="warning",
                http="gis.cli.http_protocol:BoundedHttpTools", workers=workers)
