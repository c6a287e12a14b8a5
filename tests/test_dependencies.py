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
