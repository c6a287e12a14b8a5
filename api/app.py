"""Application factory (`uvicorn api.app:create_app --factory`)."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import deps, errors, middleware, report_intake
from api.ogc import processes as ogc_processes
from api.ogc.config import STATIC
from api.ogc.router import BRIDGE
from api.ogc.router import router as ogc_router
from api.routes import (
    admin_jobs,
    auth,
    cameras,
    dashboard,
    health,
    incident_analytics,
    incident_density,
    indicators,
    map_api,
    map_live,
    map_page,
    map_search,
    report_pages,
    sensor_alerts,
)
from api.routes import audit as audit_routes
from api.routes import exports as export_routes
from api.routes import hotspots as hotspot_routes
from api.routes import imports as import_routes
from api.routes import open311 as open311_routes
from api.routes import parcels as parcel_routes
from api.routes import reports as report_routes
from api.routes import sta as sta_routes
from api.routes import transparency as transparency_routes
from gis import limits
from gis.auth.service import AuthService
from gis.db import close_pool, get_pool, get_replicas
from gis.jobs import worker as jobs_worker
from gis.sensors import service as ingest_service
from gis.settings import Settings, get_settings
from layers.access import ANONYMOUS


@asynccontextmanager
async def lifespan(app: FastAPI):
    # The process's one pool, kept where the request dependencies find it (api.deps.get_pool).
    app.state.pool = get_pool()
    # Its read replicas too (settings.read_database_urls), which api.deps.ReadConn may take.
    app.state.replicas = get_replicas()
    # The job queue's worker runs in this process unless workers run apart (gis/jobs/worker.py):
    # export jobs, webhook deliveries.
    in_process = app.state.settings.jobs_in_process
    if in_process:
        jobs_worker.in_process_start()
    # The MQTT ingest worker too, unless ingest workers run apart (gis/sensors/service.py).
    ingest = app.state.settings.ingest_in_process
    if ingest:
        ingest_service.in_process_start(app.state.settings)
    threading.Thread(target=_warm_ogc, name="geoioc-ogc-warm-up", daemon=True).start()
    threading.Thread(target=_warm_analytics, name="geoioc-analytics-warm-up", daemon=True).start()
    try:
        yield
    finally:
        if in_process:
            jobs_worker.in_process_stop()
        if ingest:
            ingest_service.in_process_stop()
        listener = getattr(app.state, "live_events", None)
        if listener is not None:  # the LISTEN connection of the event streams (gis/live.py)
            await listener.close()
        close_pool()


def _warm_ogc() -> None:
    """Layer extents and pygeoapi's configuration and OpenAPI document are built once per process;
    built here, the first OGC client does not wait for them (`ogrinfo -so` took 5 s after a
    start instead of 0.2 s)."""
    try:
        BRIDGE.api_for(ANONYMOUS)
    except Exception:  # the database may not be up yet: the first request builds it then
        logging.getLogger(__name__).warning("could not prepare the OGC API", exc_info=True)


def _warm_analytics() -> None:
    """The analytics' heavy libraries, imported lazily where they are used (a CLI command or a
    test need not pay for them), are imported here once per process: in the first dashboard
    of a process, mapclassify alone took 2-5 s inside the rates request."""
    import importlib

    for name in ("mapclassify", "rasterio.warp", "PIL.Image"):
        try:
            importlib.import_module(name)
        except ImportError:  # pragma: no cover - declared dependencies
            logging.getLogger(__name__).warning("could not import %s", name)


def create_app(settings: Settings | None = None) -> FastAPI:
    """SETTINGS (default: from the environment) drive the HTTP hardening and authentication of
    this app, so a test can build one with its own limits and fresh counters."""
    settings = settings or get_settings()
    app = FastAPI(
        title="GeoIOC",
        description="Open GIS platform for a provincial Intelligent Operations Center",
        lifespan=lifespan,
    )
    app.state.settings = settings
    # Rate limits, flood limits and sign-in lockouts count in the database under this namespace:
    # the deployment's (`geoioc serve` sets one for all its processes), else this app's own.
    namespace = app.state.limits_namespace = limits.namespace(settings.limits_namespace)
    app.state.auth = AuthService(settings, limits_namespace=namespace)
    app.state.report_buckets = report_intake.flood_buckets(settings, namespace)
    # map_page's router answers `/` (the command map). A request is matched against the routes
    # one by one in this order (about 1.3 µs each): Open311 comes first, since its POST is the
    # one hot write (citizen reports at hundreds a second) and its paths (/open311/v2/...)
    # overlap no other router's, so the order changes no answer (68 µs a report saved).
    for router in (open311_routes.router, health.router, map_page.router, map_api.router,
                   map_live.router, sensor_alerts.router, cameras.router,
                   incident_analytics.router, incident_density.router, indicators.router,
                   map_search.router,
                   parcel_routes.router, auth.router, auth.pages_router, audit_routes.router,
                   admin_jobs.router, export_routes.router, import_routes.router,
                   report_routes.router, report_pages.router, transparency_routes.router,
                   dashboard.router, sta_routes.router, hotspot_routes.router,
                   ogc_processes.router, ogc_router):
        deps.document_query_models(router)
        app.include_router(router)
    app.mount("/ogc/static", StaticFiles(directory=STATIC), name="ogc-static")
    app.add_middleware(deps.ReleaseConnections)  # innermost: the request's connection goes back
    errors.install(app)
    middleware.install(app, settings, namespace)
    return app
