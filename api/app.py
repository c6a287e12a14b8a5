"""Application factory (`uvicorn api.app:create_app --factory`)."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.routes import health, landing
from gis.db import close_pool, get_pool


@asynccontextmanager
async def lifespan(app: FastAPI):
    get_pool()
    yield
    close_pool()


def create_app() -> FastAPI:
    app = FastAPI(
        title="GeoIOC",
        description="Open GIS platform for a provincial Intelligent Operations Center",
        lifespan=lifespan,
    )
    app.include_router(health.router)
    app.include_router(landing.router)
    return app
