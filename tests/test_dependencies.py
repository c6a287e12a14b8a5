"""The request dependencies stay off the thread pool.

FastAPI runs a plain `def` dependency in its thread pool: about 0.25 ms of CPU per dependency per
request (bench/README.md, "Structure change"), and a connection taken that way is held while the
request waits for a thread (api/deps.RequestConnection). So every dependency is `async def`;
the few that must block are named here, each with the reason.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordRequestForm

from api.app import create_app

# Blocking on purpose, each rare: the sign-in form (FastAPI's own class).
MAY_BLOCK = {OAuth2PasswordRequestForm}


def _routes(routes: list[Any]) -> Iterator[APIRoute]:
    for r in routes:
        if isinstance(r, APIRoute):
            yield r
        elif hasattr(r, "original_router"):  # FastAPI's wrapper of an included router
            yield from _routes(r.original_router.routes)


def _calls(dependant: Any) -> Iterator[Any]:
    for d in dependant.dependencies:
        yield d.call
        yield from _calls(d)


def test_every_dependency_is_async() -> None:
    app = create_app()
    routes = list(_routes(app.routes))
    assert len(routes) > 40  # the walk found the API (a FastAPI change would show here)
    calls = {c for r in routes for c in _calls(r.dependant)}
    blocking = {c for c in calls - MAY_BLOCK
                if not (inspect.iscoroutinefunction(c) or inspect.isasyncgenfunction(c))}
    assert not blocking, sorted(f"{c.__module__}.{c.__qualname__}" for c in blocking)


def test_query_models_are_documented_and_validated() -> None:
    """A route's QueryModel (api.deps.query) is validated outside FastAPI's parameter machinery,
    so its parameters reach /openapi.json only through document_query_models: each field must be
    there, with its bounds, and a bad value must still be a 400 naming the parameter."""
    from fastapi.testclient import TestClient

    from api.ogc.query import ItemsQuery
    from api.routes.parcels import SearchQuery
    from gis.parcels import search

    app = create_app()
    doc = app.openapi()
    for path, model in (("/ogc/collections/{collection_id}/items", ItemsQuery),
                        ("/api/parcels/search", SearchQuery)):
        params = {p["name"]: p for p in doc["paths"][path]["get"]["parameters"] if p["in"] == "query"}
        wanted = {f.alias or name for name, f in model.model_fields.items()}
        assert wanted <= set(params), (path, sorted(wanted - set(params)))
        assert len([p for p in doc["paths"][path]["get"]["parameters"] if p["name"] == "limit"]) == 1
    limit = params["limit"]["schema"]["anyOf"][0]
    assert (limit["minimum"], limit["maximum"]) == (1, search.MAX_LIMIT)
    items_limit = next(p for p in doc["paths"]["/ogc/collections/{collection_id}/items"]["get"]["parameters"]
                       if p["name"] == "limit")["schema"]["anyOf"][0]
    assert (items_limit["minimum"], items_limit["maximum"]) == (1, 10_000)

    with TestClient(app) as client:
        r = client.get("/api/parcels/search", params={"sheet": "0", "limit": "x"})
        assert r.status_code == 400, r.text
        body = r.json()
        assert {p["field"] for p in body["errors"]} == {"sheet", "limit"}, body
        r = client.get("/ogc/collections/parcels/items", params={"limit": "0", "f": "json"})
        assert r.status_code == 400 and "limit" in r.json()["description"], r.text
