"""Shared fixtures: every test talks to the real PostGIS that `make test` prepared.

`make test` points GEOIOC_DATABASE_URL at the test database (migrated, sample loaded) and
GEOIOC_EMPTY_DATABASE_URL at an empty PostGIS database used for migration round trips.
"""

from __future__ import annotations

import os

import psycopg
import pytest

from gis.settings import get_settings


@pytest.fixture(scope="session")
def db_url() -> str:
    return get_settings().database_url


@pytest.fixture(scope="session")
def empty_db_url(db_url: str) -> str:
    url = os.environ.get("GEOIOC_EMPTY_DATABASE_URL")
    if not url:
        pytest.fail("GEOIOC_EMPTY_DATABASE_URL is not set: run the suite with `make test`")
    return url


@pytest.fixture(scope="session")
def conn(db_url: str):
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c
