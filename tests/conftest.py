"""Shared fixtures: every test talks to the real PostGIS that `make test` prepared.

`make test` points GEOIOC_DATABASE_URL at the test database (migrated, sample loaded) and
GEOIOC_EMPTY_DATABASE_URL at an empty PostGIS database used for migration round trips.

Two rules hold for the whole suite:
- a skipped test is a failure unless its reason is in ALLOWED_SKIPS below: a check that
  silently stops running cannot catch what it names;
- one user with a password and an API key per role (`role_keys`, `keys`), made once per run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from gis.settings import get_settings

# Reasons (substrings) for which a test may be skipped. Anything else skipped fails the run:
# add a reason here only with the reason it is not a hole in the suite.
ALLOWED_SKIPS: tuple[str, ...] = ()

PASSWORD = "mật-khẩu-đủ-dài-1"
# Every role, least trusted first (gis.auth.roles.ROLES, written out: a role added there gets
# no test user until it is added here on purpose).
ROLE_NAMES = ("citizen", "operator", "land_officer", "security_officer", "leader", "admin")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Turn an unexpected skip into a failure (pytest's -ra summary still lists the allowed ones)."""
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    if any(allowed in reason for allowed in ALLOWED_SKIPS):
        return
    report.outcome = "failed"
    report.longrepr = (f"unexpected skip ({reason}): a skipped check proves nothing; make the test run, "
                       "or list the reason in ALLOWED_SKIPS in tests/conftest.py")


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
    GDAL, OWSLib, Chromium. Its jobs are run by this process's queue worker, not one in the
    server: the one set of workers of the run, whose settings the tests may shorten (retry
    waits of tests/test_webhooks.py)."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    from gis.jobs import worker

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # Offline map (no basemap) and no anonymous rate limit: the browser tests load many tiles;
    # no flood limit on reports either (the browser tests report from one address).
    env = {**os.environ, "GEOIOC_DATABASE_URL": db_url, "GEOIOC_PORT": str(port),
           "GEOIOC_PUBLIC_URL": url, "GEOIOC_BASEMAP_URL": "",
           "GEOIOC_RATE_LIMIT_ANONYMOUS_BURST": "100000",
           "GEOIOC_RATE_LIMIT_ANONYMOUS_PER_SECOND": "10000", "GEOIOC_JOBS_IN_PROCESS": "false",
           "GEOIOC_INGEST_IN_PROCESS": "false",
           "GEOIOC_REPORT_FLOOD_LIMIT": "0",
           # Sign-in failures and buckets of this run only: they live in the database
           # (gis/limits), and an earlier run's wrong passwords must not lock this one out.
           "GEOIOC_LIMITS_NAMESPACE": f"test-run-{uuid.uuid4().hex[:8]}"}
    geoioc = Path(sys.executable).parent / "geoioc"
    proc = subprocess.Popen([str(geoioc), "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Importing the app takes 3-4 s on a quiet machine and over 20 s on a loaded one (scipy,
    # pygeoapi, pandas): a slow start is not a failure.
    deadline = time.monotonic() + 90
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
    worker.in_process_start()
    yield url
    worker.in_process_stop()
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

    # No flood limit on report intake: the suite reports from one address far more often than a
    # citizen may (tests/test_report_intake.py builds an app with the limit on).
    # No ingest worker in the app either: the ingest tests run theirs on topics of their own, and
    # one on the default topics would take messages meant for a server running on this machine.
    app = create_app(get_settings().model_copy(update={"report_flood_limit": 0,
                                                       "ingest_in_process": False}))
    with TestClient(app, raise_server_exceptions=True) as c:
        # A script, not a browser: it keeps no cookies, so a sign-in in one test does not sign
        # the next one in through the page-session cookie (tests/test_session_pages.py has its
        # own clients for that).
        c.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        yield c


@pytest.fixture(scope="session")
def role_keys(conn) -> Iterator[dict[str, dict[str, Any]]]:
    """{profile: {"user", "password", "key", "headers"}} for every role, plus "anonymous" (no user,
    no key, no headers). Users are made once per run (API keys: no password hashing per request)
    and deleted at the end; their audit rows stay, by design."""
    from gis.auth import api_keys, users

    run = uuid.uuid4().hex[:8]
    out: dict[str, dict[str, Any]] = {
        "anonymous": {"user": None, "password": None, "key": None, "headers": {}}}
    for role in ROLE_NAMES:
        name = f"r{run}-{role.replace('_', '-')}"
        users.add_user(conn, name, PASSWORD, roles=[role])
        key = api_keys.create_key(conn, name, "tests", days=1).key
        out[role] = {"user": name, "password": PASSWORD, "key": key, "headers": {"X-API-Key": key}}
    yield out
    conn.execute("DELETE FROM users WHERE username = ANY(%s)",
                 ([v["user"] for v in out.values() if v["user"]],))


@pytest.fixture(scope="session")
def keys(role_keys: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """{profile: request headers}: what most tests send ({} for "anonymous")."""
    return {profile: v["headers"] for profile, v in role_keys.items()}


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, launched once per browser-test module (tests/chromium.py)."""
    from chromium import launched  # imported here: most modules never start a browser

    with launched() as b:
        yield b


@pytest.fixture(scope="module")
def context(browser):
    """One desktop browser context for a map-test module (1440 × 900, Vietnamese, Vietnam time):
    its pages share the HTTP cache (tiles are cacheable), not sessions (sign-in lives in each
    tab's sessionStorage; the modules' map_page clears the session cookie)."""
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, locale="vi-VN",
                              timezone_id="Asia/Ho_Chi_Minh")
    yield ctx
    ctx.close()
