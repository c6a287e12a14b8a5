"""`geoioc serve`: the API and the map under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from gis.cli.common import console
from gis.settings import get_settings

WORKER_PING_SECONDS = 60


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (each with its own "
                                         "connection pool and, by default, queue worker; rate "
                                         "limits and sign-in lockouts are shared in the "
                                         "database).")] = 1,
) -> None:
    """Serve the API and the map."""
    import os

    import uvicorn

    s = get_settings()
    host, port = host or s.host, port or s.port
    # The app factory reads its settings from the environment: hand it the address chosen here.
    os.environ["GEOIOC_HOST"], os.environ["GEOIOC_PORT"] = host, str(port)
    # Every process counts rate limits and sign-in failures under one namespace (gis/limits):
    # a client's limit is the same whichever process answers, and after a restart.
    os.environ["GEOIOC_LIMITS_NAMESPACE"] = s.limits_namespace or "geoioc"
    get_settings.cache_clear()
    console.print(f"GeoIOC serving on [bold]http://{host}:{port}[/bold] (Ctrl+C to stop)")
    # httptools, with h11's bound on a request's head (gis/cli/http_protocol.py); an import
    # string, so that each worker process imports it.
    # With several workers, uvicorn's supervisor kills a worker that does not answer its ping
    # within timeout_worker_healthcheck (5 s by default) and starts another: three processes
    # importing the app at once on a loaded machine miss that, and are killed over and over.
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, log_level="warning",
                http="gis.cli.http_protocol:BoundedHttpTools", workers=workers,
                timeout_worker_healthcheck=WORKER_PING_SECONDS)
