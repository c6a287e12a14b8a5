"""`geoioc serve`: the API and the map under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from gis.cli.common import console
from gis.settings import get_settings

# The request line and headers may take 1 MiB (uvicorn's default, 16 KiB, refused with a bare
# text/plain 400 the URLs that /openapi.json documents as valid: a CQL2 filter of up to 64,000
# characters, percent-encoded, with a detailed polygon in it).
MAX_REQUEST_HEAD = 1 << 20


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (each with its own "
                                         "connection pool and, by default, queue worker).")] = 1,
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
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, log_level="warning",
                h11_max_incomplete_event_size=MAX_REQUEST_HEAD, workers=workers)
