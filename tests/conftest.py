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
    from gis.migrate import drop_all

    drop_all(url)  # empty whatever an earlier run (or another branch) left there
    return url


@pytest.fixture(scope="session")
def conn(db_url: str):
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(db_url: str):
    """The real server (`geoioc serve`) on a free port, for clients that speak HTTP themselves:
    GDAL, OWSLib, Chromium."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # Offline map (no basemap) and no anonymous rate limit: the browser tests load many tiles.
    env = {**os.environ, "GEOIOC_DATABASE_URL": db_url, "GEOIOC_PORT": str(port),
           "GEOIOC_PUBLIC_URL": url, "GEOIOC_BASEMAP_URL": "",
           "GEOIOC_RATE_LIMIT_ANONYMOUS_BURST": "100000",
           "GEOIOC_RATE_LIMIT_ANONYMOUS_PER_SECOND": "10000"}
    geoioc = Path(sys.executable).parent / "geoioc"
    proc = subprocess.Popen([str(geoioc), "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            err = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"geoioc serve did not start on {url}: {err[-2000:]}")
        time.sleep(0.2)
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def client():
    from http.cookiejar import DefaultCookiePolicy

    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(), raise_server_exceptions=True) as c:
        # A script, not a browser: it keeps no cookies, so a sign-in in one test does not sign
        # the next one in through the page-session cookie (tests/test_session_pages.py has its
        # own clients for that).
        c.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        yield c
