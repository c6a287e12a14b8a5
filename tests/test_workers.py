"""Several API processes (issue 18): `geoioc serve --workers 3` runs three processes that share
nothing but the database, and a client sees one server whichever process answers.

One real server with three workers on a free loopback port, against the test database. Every
response names the process that answered (X-GeoIOC-Worker, GEOIOC_WORKER_HEADER=true); every
request opens a fresh connection, so the kernel hands it to any of the three. The checks:

- the anonymous rate limit is one bucket for all processes: past the burst, requests get 429
  with Retry-After from every process, and the 200s number the burst (plus the refill), not
  three times it;
- a sign-in lockout set through the processes holds on all of them;
- an event sent on `geoioc_live` reaches event streams held by each of the processes (each has
  its own LISTEN connection), and a report filed through one process reaches the operator
  console's stream held by another;
- an export job accepted by one process shows the same status and progress on every process,
  and any of them hands out its file.

The server's limits live under a namespace of this run (GEOIOC_LIMITS_NAMESPACE), so nothing
counted by an earlier run or another server on this database is seen here.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from gis import live
from gis.auth import users

WORKERS = 3
BURST = 12
RATE = 0.5  # tokens a second: the refill during the check is small and bounded
USER_LIMIT = 3
PASSWORD = "mật-khẩu-đủ-dài-1"
HEADER = "x-geoioc-worker"
# The rate-limit check comes from an address of its own (all of 127/8 is loopback): its bucket
# is untouched by the other checks' requests.
RATE_CLIENT = "127.0.0.2"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh(method: str, url: str, *, local: str = "127.0.0.1", **kwargs: Any) -> httpx.Response:
    """One request on a connection of its own (so any worker may take it)."""
    transport = httpx.HTTPTransport(local_address=local)
    with httpx.Client(transport=transport, timeout=10) as http:
        return http.request(method, url, **kwargs)


@pytest.fixture(scope="module")
def server(db_url: str, keys: dict[str, dict[str, str]]) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "GEOIOC_DATABASE_URL": db_url, "GEOIOC_PORT": str(port),
           "GEOIOC_PUBLIC_URL": url, "GEOIOC_BASEMAP_URL": "",
           "GEOIOC_LIMITS_NAMESPACE": f"test-workers-{uuid.uuid4().hex[:8]}",
           "GEOIOC_WORKER_HEADER": "true",
           "GEOIOC_RATE_LIMIT_ANONYMOUS_BURST": str(BURST),
           "GEOIOC_RATE_LIMIT_ANONYMOUS_PER_SECOND": str(RATE),
           "GEOIOC_SIGNIN_MAX_FAILURES_PER_USER": str(USER_LIMIT),
           "GEOIOC_JOBS_IN_PROCESS": "false", "GEOIOC_INGEST_IN_PROCESS": "false",
           "GEOIOC_REPORT_FLOOD_LIMIT": "0"}
    geoioc = Path(sys.executable).parent / "geoioc"
    # The processes' log goes to a file, not a pipe nobody reads while the tests run (three
    # processes' warnings could fill it and block them).
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [str(geoioc), "serve", "--port", str(port), "--workers", str(WORKERS)], env=env,
            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        try:
            _wait_for_every_process(url, keys["operator"], proc, log)
            yield url
        finally:
            # SIGTERM to the parent stops its workers too; a parent that does not stop in time
            # is killed with its process group (a parent killed alone leaves its workers running).
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait_for_every_process(url: str, headers: dict[str, str], proc: subprocess.Popen[bytes],
                            log: Any) -> None:
    """Until all the processes have answered (signed in with an API key: no rate limit, so
    waiting spends none of the anonymous bucket). A slow start is not a failure: three processes
    import the app at once (over a minute on a loaded machine)."""
    seen: set[str] = set()
    deadline = time.monotonic() + 150
    while len(seen) < WORKERS:
        try:
            r = fresh("GET", url + "/healthz", headers=headers)
            if r.status_code == 200:
                seen.add(r.headers[HEADER])
        except httpx.HTTPError:
            time.sleep(0.3)
        if proc.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            err = log.read().decode(errors="replace")
            pytest.fail(f"geoioc serve --workers {WORKERS}: {len(seen)} processes answered on "
                        f"{url}: {err[-2000:]}")


def test_the_anonymous_rate_limit_is_one_for_all_processes(server: str) -> None:
    start = time.monotonic()
    answers = [fresh("GET", server + "/healthz", local=RATE_CLIENT) for _ in range(3 * BURST)]
    elapsed = time.monotonic() - start
    ok = [r for r in answers if r.status_code == 200]
    limited = [r for r in answers if r.status_code == 429]
    assert len(ok) + len(limited) == len(answers), {r.status_code for r in answers}
    # The burst, plus what refilled while the requests ran (RATE a second): with a bucket per
    # process there would be up to three bursts.
    assert BURST <= len(ok) <= BURST + RATE * elapsed + 1, (len(ok), elapsed)
    assert len(ok) < 2 * BURST, (len(ok), elapsed)
    assert all(int(r.headers["retry-after"]) >= 1 for r in limited)
    assert all(r.json()["code"] == "TooManyRequests" for r in limited)
    # Every process answered, and each of them refused past the limit.
    assert len({r.headers[HEADER] for r in answers}) == WORKERS
    assert len({r.headers[HEADER] for r in limited}) >= 2, [r.headers[HEADER] for r in answers]


def test_a_sign_in_lockout_holds_on_every_process(server: str, conn: psycopg.Connection) -> None:
    name = f"w{uuid.uuid4().hex[:10]}"
    users.add_user(conn, name, PASSWORD, full_name="Người thử nhiều tiến trình", roles=["operator"])
    try:
        wrong = [fresh("POST", server + "/api/auth/token",
                       data={"username": name, "password": f"guess-{i}"}) for i in range(USER_LIMIT)]
        assert [r.status_code for r in wrong] == [401] * USER_LIMIT, [r.text for r in wrong]
        # The right password now waits, whichever process is asked.
        right = [fresh("POST", server + "/api/auth/token",
                       data={"username": name, "password": PASSWORD}) for _ in range(3 * WORKERS)]
        assert all(r.status_code == 429 for r in right), [(r.status_code, r.text) for r in right]
        assert all(int(r.headers["retry-after"]) >= 1 for r in right)
        assert len({r.headers[HEADER] for r in wrong + right}) >= 2
        row = conn.execute("SELECT failures FROM signin_failures WHERE key LIKE %s",
                           (f"%:user:{name}",)).fetchone()
        assert row is not None and row[0] == USER_LIMIT
    finally:
        conn.execute("DELETE FROM users WHERE username = %s", (name,))


class Stream:
    """One event stream read in a thread: its worker and the (event, data) pairs it got."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.worker: queue.Queue[str] = queue.Queue()
        self.http = httpx.Client(timeout=httpx.Timeout(5.0, read=30.0))
        threading.Thread(target=self._read, args=(url, headers), daemon=True).start()
        self.pid = self.worker.get(timeout=20)
        assert self.next("ready") == {"listening": True}

    def close(self) -> None:
        """Hang up (the server's processes then stop without waiting for the stream)."""
        self.http.close()

    def _read(self, url: str, headers: dict[str, str]) -> None:
        try:
            with self.http.stream("GET", url, headers=headers) as r:
                self.worker.put(r.headers.get(HEADER, "?") if r.status_code == 200
                                else f"status {r.status_code}")
                name = "message"
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        self.events.put((name, json.loads(line[5:])))
                        name = "message"
        except (httpx.HTTPError, RuntimeError):  # closed by close(), or the server stopped
            return

    def next(self, event: str, seconds: float = 20.0) -> Any:
        deadline = time.monotonic() + seconds
        seen = []
        while time.monotonic() < deadline:
            try:
                name, data = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if name == event:
                return data
            seen.append((name, data))
        pytest.fail(f"no `{event}` event on the stream of worker {self.pid}; seen: {seen[-10:]}")


def streams_on_every_process(url: str, headers: dict[str, str]) -> list[Stream]:
    """Streams opened until every process holds at least one."""
    out: list[Stream] = []
    for _ in range(12 * WORKERS):
        out.append(Stream(url, headers))
        if len({s.pid for s in out}) == WORKERS:
            return out
    for s in out:
        s.close()
    pytest.fail(f"streams landed on {len({s.pid for s in out})} processes only")


def test_an_event_reaches_the_streams_of_every_process(
        server: str, conn: psycopg.Connection, keys: dict[str, dict[str, str]]) -> None:
    streams = streams_on_every_process(server + "/api/map/events", keys["operator"])
    try:
        road = int(conn.execute("SELECT min(id) FROM roads").fetchone()[0])
        conn.execute("SELECT pg_notify(%s, %s)", (live.LIVE_CHANNEL, json.dumps(
            {"kind": "congestion", "layer": "roads", "segments": [[road, "heavy", 0.42]]})))
        for s in streams:
            assert s.next("congestion")["segments"][0][:2] == [road, "heavy"]
    finally:
        for s in streams:
            s.close()


def test_a_report_filed_through_one_process_reaches_a_console_on_another(
        server: str, conn: psycopg.Connection, keys: dict[str, dict[str, str]]) -> None:
    console = Stream(server + "/api/reports/events", keys["operator"])
    filed: list[int] = []
    words = "Kiểm thử nhiều tiến trình"
    try:
        lon, lat = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM admin_units"
            " WHERE level = 'commune' AND valid_to IS NULL ORDER BY code LIMIT 1) q").fetchone()
        form = {"service_code": "pothole", "lat": repr(lat), "long": repr(lon),
                "description": words}
        # Filed (with an API key: no rate limit) until another process than the console's took it.
        for _ in range(10 * WORKERS):
            r = fresh("POST", server + "/open311/v2/requests.json", data=form,
                      headers=keys["operator"])
            assert r.status_code in (200, 201), r.text
            report = console.next("report")
            assert report["id"] > 0
            filed.append(report["id"])
            if r.headers[HEADER] != console.pid:
                return
        pytest.fail(f"every report was taken by the console's process {console.pid}")
    finally:
        console.close()
        # The reports filed here leave with their request, reporter and history (0038's links).
        conn.execute("DELETE FROM incidents WHERE id = ANY(%s) AND description = %s",
                     (filed, words))


def test_an_export_job_is_one_job_on_every_process(
        server: str, conn: psycopg.Connection, keys: dict[str, dict[str, str]]) -> None:
    """A job accepted by one process is run by a queue worker elsewhere (here this test's own
    process: the server's run none, GEOIOC_JOBS_IN_PROCESS=false); every process reports its
    status and progress from export_jobs, and any of them hands out its file."""
    from gis.jobs import worker

    r = fresh("POST", server + "/api/exports", headers=keys["operator"],
              json={"layer": "tourism_places", "format": "geojson", "mode": "async"})
    assert r.status_code == 202, r.text
    status_url = r.headers["location"]
    job_id = r.json()["jobID"]
    seen: dict[str, list[tuple[str, int]]] = {}
    worker.in_process_start()
    try:
        deadline = time.monotonic() + 60
        while True:
            s = fresh("GET", status_url, headers=keys["operator"])
            assert s.status_code == 200, s.text
            body = s.json()
            assert body["jobID"] == job_id
            seen.setdefault(s.headers[HEADER], []).append((body["status"], body["progress"]))
            if body["status"] in ("successful", "failed") and len(seen) == WORKERS:
                break
            assert time.monotonic() < deadline, seen
            time.sleep(0.05)
    finally:
        worker.in_process_stop()
    assert body["status"] == "successful", body
    # Each process saw the job move forward only, whichever process had answered before.
    for answers in seen.values():
        progress = [p for _, p in answers]
        assert progress == sorted(progress), seen
    # The file, from any process (a fresh connection each time).
    files = [fresh("GET", f"{server}/api/exports/jobs/{job_id}/download", headers=keys["operator"])
             for _ in range(2 * WORKERS)]
    assert all(f.status_code == 200 for f in files), [f.text[:200] for f in files]
    assert len({f.headers[HEADER] for f in files}) >= 2
    n = conn.execute("SELECT count(*) FROM tourism_places").fetchone()[0]
    assert all(len(json.loads(f.content)["features"]) == n for f in files)
    conn.execute("DELETE FROM export_jobs WHERE id = %s", (job_id,))
