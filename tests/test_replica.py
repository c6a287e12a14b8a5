"""Read replicas, for real: a PostgreSQL 15 primary and a streaming replica made from it with
`pg_basebackup -R`, both on this machine, and `geoioc serve` with GEOIOC_READ_DATABASE_URLS.

Checked: (a) read routes (OGC items and tiles, the incident heatmap, map data) run their queries
on the replica and a write runs on the primary (pg_stat_statements of each server says which
queries it ran); (b) a client that has just written reads its write although the replica lags
(replay paused), while another client still reads the replica's older data; (c) with the replica
stopped, reads are answered by the primary at once, and go back to the replica once it is up.

The clusters are throwaway: trust authentication on 127.0.0.1 only, fsync off. Run as root, they
run as the `postgres` OS user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from conftest import PASSWORD, _free_port

pytestmark = pytest.mark.slow  # two clusters, a migration, a sample and a server

PG_BIN = Path("/usr/lib/postgresql/15/bin")
# The smallest sample that still has every layer: the load is most of this test's time.
SAMPLE_SCALE = "0.02"


def _as_postgres(*cmd: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


def _run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({done.returncode}): {done.stdout[-1500:]}"
                    f"{done.stderr[-1500:]}")


@dataclass
class Cluster:
    data: Path
    port: int
    log: Path

    def url(self, user: str = "geoioc", password: str = "geoioc", db: str = "geoioc") -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{db}"

    def admin(self, db: str = "geoioc") -> psycopg.Connection[Any]:
        """A superuser connection (trust on 127.0.0.1)."""
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=db,
                               autocommit=True)

    def pg_ctl(self, *args: str) -> None:
        _run(_as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                          "-w", *args), timeout=120)

    def statements(self, like: str) -> int:
        """Calls of statements whose text matches LIKE, since the last reset."""
        with self.admin() as c:
            row = c.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                            "WHERE query LIKE %s", (like,)).fetchone()
        return int(row[0]) if row else 0

    def reset_statements(self) -> None:
        with self.admin() as c:
            c.execute("SELECT pg_stat_statements_reset()")


@dataclass
class Setup:
    primary: Cluster
    replica: Cluster
    server: str
    writer: dict[str, str]  # a land officer's X-API-Key header
    parcel: int
    tile: str  # the z16 tile over that parcel (z/y/x; parcels have tiles from z15)


def _conf(cluster: Cluster, socket_dir: Path) -> None:
    with (cluster.data / "postgresql.conf").open("a") as f:
        f.write(f"\nport = {cluster.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{socket_dir}'\nwal_level = replica\n"
                "max_wal_senders = 4\nhot_standby = on\nfsync = off\n"
                "shared_preload_libraries = 'pg_stat_statements'\n")


def _make_primary(base: Path) -> Cluster:
    primary = Cluster(base / "primary", _free_port(), base / "primary.log")
    _run(_as_postgres(str(PG_BIN / "initdb"), "-D", str(primary.data), "-U", "postgres",
                      "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"))
    _conf(primary, base)
    with (primary.data / "pg_hba.conf").open("a") as f:
        f.write("host replication postgres 127.0.0.1/32 trust\n")
    primary.pg_ctl("start")
    with primary.admin("postgres") as c:
        c.execute("CREATE ROLE geoioc LOGIN PASSWORD 'geoioc'")
        c.execute("CREATE ROLE geoioc_app NOLOGIN")
        c.execute("GRANT geoioc_app TO geoioc")
        c.execute("CREATE DATABASE geoioc OWNER geoioc")
    with primary.admin() as c:  # what /work/mkdb.sh and scripts/setup.sh create
        for ext in ("postgis", "btree_gist", "unaccent", "pg_trgm", "pg_stat_statements"):
            c.execute(f"CREATE EXTENSION {ext}")
        c.execute("GRANT SELECT, INSERT, DELETE ON spatial_ref_sys TO geoioc")
    return primary


def _start_server(primary: Cluster, replica: Cluster, base: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "GEOIOC_DATABASE_URL": primary.url(),
           "GEOIOC_READ_DATABASE_URLS": replica.url(), "GEOIOC_READ_REPLICA_RETRY_SECONDS": "1",
           "GEOIOC_PORT": str(port), "GEOIOC_PUBLIC_URL": url, "GEOIOC_BASEMAP_URL": "",
           "GEOIOC_JOBS_IN_PROCESS": "false", "GEOIOC_INGEST_IN_PROCESS": "false",
           "GEOIOC_RATE_LIMIT_ANONYMOUS_BURST": "100000"}
    err = (base / "server.log").open("wb")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "geoioc"), "serve", "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 90
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"geoioc serve did not start: {(base / 'server.log').read_text()[-2000:]}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    base = Path(tempfile.mkdtemp(prefix="geoioc-replica-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    clusters: list[Cluster] = []
    server: subprocess.Popen[bytes] | None = None
    try:
        primary = _make_primary(base)
        clusters.append(primary)
        env = {**os.environ, "GEOIOC_DATABASE_URL": primary.url()}
        geoioc = str(Path(sys.executable).parent / "geoioc")
        _run([geoioc, "db", "reset", "--yes"], env)
        _run([geoioc, "sample", "load", "--scale", SAMPLE_SCALE], env, timeout=600)
        replica = Cluster(base / "replica", _free_port(), base / "replica.log")
        _run(_as_postgres(str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
                          "-U", "postgres", "-D", str(replica.data), "-R", "-X", "stream",
                          "-c", "fast"))
        _conf(replica, base)  # the copy's settings, on its own port
        replica.pg_ctl("start")
        clusters.append(replica)

        from gis.auth import api_keys, users

        name = f"replica-{uuid.uuid4().hex[:6]}"
        with psycopg.connect(primary.url(), autocommit=True) as c:
            users.add_user(c, name, PASSWORD, roles=["land_officer"])
            key = api_keys.create_key(c, name, "replica test", days=1).key
            row = c.execute("SELECT id, ST_X(c), ST_Y(c) FROM (SELECT id, ST_PointOnSurface(geom) AS c"
                            " FROM parcels ORDER BY id LIMIT 1) p").fetchone()
        assert row is not None, "the sample has no parcels"
        server, url = _start_server(primary, replica, base)
        yield Setup(primary, replica, url, {"X-API-Key": key}, int(row[0]), _tile(16, row[1], row[2]))
    finally:
        if server is not None:
            server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(10)
            server.kill()
        for cluster in reversed(clusters):
            with contextlib.suppress(Exception):
                cluster.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(base, ignore_errors=True)


def _tile(z: int, lon: float, lat: float) -> str:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return f"{z}/{y}/{x}"


def _decision(s: Setup, headers: dict[str, str] | None = None,
              cookies: dict[str, str] | None = None) -> Any:
    r = httpx.get(f"{s.server}/ogc/collections/parcels/items/{s.parcel}", headers=headers or {},
                  cookies=cookies, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["properties"]["decision_no"]


def _patch(s: Setup, decision: str) -> httpx.Response:
    current = httpx.get(f"{s.server}/api/parcels/{s.parcel}", headers=s.writer, timeout=10)
    assert current.status_code == 200, current.text
    r = httpx.patch(f"{s.server}/api/parcels/{s.parcel}", timeout=10,
                    headers={**s.writer, "If-Match": current.headers["etag"]},
                    json={"properties": {"decision_no": decision}})
    assert r.status_code == 200, r.text
    return r


# The statements of the routes asked below (their SQL: gis/features.py, layers/tiles_sql.py).
ITEMS_SQL = '%ST_AsGeoJSON%"parcels"%'
TILE_SQL = "%ST_AsMVT%"
# gis/analysis/incidents.heatmap and heat_cells.heatmap (a window with a whole day, as the default)
HEATMAP_SQL = "%) g) s ORDER BY n DESC%"
PARCEL_UPDATE = "UPDATE parcels%"


def test_reads_go_to_the_replica_and_writes_to_the_primary(setup: Setup) -> None:
    s = setup
    with s.replica.admin() as c:
        assert c.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    s.primary.reset_statements()
    s.replica.reset_statements()
    for path in ("/ogc/collections/parcels/items?limit=5",
                 f"/ogc/collections/parcels/tiles/WebMercatorQuad/{s.tile}?f=mvt",
                 "/api/incidents/heatmap", "/api/map/layers"):
        r = httpx.get(s.server + path, timeout=30)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
    assert s.replica.statements(ITEMS_SQL) >= 1
    assert s.replica.statements(TILE_SQL) >= 1
    assert s.replica.statements(HEATMAP_SQL) >= 1  # a route taking ReadConn
    assert s.primary.statements(ITEMS_SQL) == 0
    assert s.primary.statements(TILE_SQL) == 0
    assert s.primary.statements(HEATMAP_SQL) == 0

    r = _patch(s, "QĐ-replica-a")
    assert s.primary.statements(PARCEL_UPDATE) >= 1
    assert s.replica.statements(PARCEL_UPDATE) == 0
    # The writer is told how far its reads must see (browsers keep it across server processes).
    assert "geoioc_wal=" in r.headers.get("set-cookie", "")


def test_a_writer_reads_its_own_write_while_the_replica_lags(setup: Setup) -> None:
    s = setup
    before = _decision(s)
    with s.replica.admin() as c:
        c.execute("SELECT pg_wal_replay_pause()")
        try:
            mark = f"QĐ-{uuid.uuid4().hex[:8]}"
            r = _patch(s, mark)
            cookie = r.cookies.get("geoioc_wal")
            assert cookie
            # The same client (its API key) at once, and a client bringing only the cookie.
            assert _decision(s, s.writer) == mark
            assert _decision(s, cookies={"geoioc_wal": cookie}) == mark
            # Anybody else reads the replica, which has not replayed the write.
            assert _decision(s) == before != mark
            assert c.execute("SELECT pg_get_wal_replay_pause_state()").fetchone() == ("paused",)
        finally:
            c.execute("SELECT pg_wal_replay_resume()")
    deadline = time.monotonic() + 15
    while _decision(s) != mark:
        assert time.monotonic() < deadline, "the replica did not catch up after its replay resumed"
        time.sleep(0.2)
    # Caught up, the writer's reads go to the replica again.
    s.replica.reset_statements()
    assert _decision(s, s.writer) == mark
    assert s.replica.statements('%"parcels"%') >= 1


def test_reads_go_on_when_the_replica_stops(setup: Setup) -> None:
    s = setup
    s.replica.pg_ctl("stop", "-m", "fast")
    s.primary.reset_statements()
    for _ in range(5):
        started = time.monotonic()
        r = httpx.get(f"{s.server}/ogc/collections/parcels/items?limit=5", timeout=10)
        assert r.status_code == 200, r.text
        assert len(r.json()["features"]) == 5
        assert time.monotonic() - started < 3
        r = httpx.get(f"{s.server}/api/map/layers", timeout=10)
        assert r.status_code == 200, r.text
    assert s.primary.statements(ITEMS_SQL) >= 5

    # Back up: the server's probe finds it (every second here) and reads go to it again.
    s.replica.pg_ctl("start")
    s.replica.reset_statements()
    deadline = time.monotonic() + 20
    while s.replica.statements(ITEMS_SQL) == 0:
        assert time.monotonic() < deadline, "reads did not go back to the replica"
        r = httpx.get(f"{s.server}/ogc/collections/parcels/items?limit=5", timeout=10)
        assert r.status_code == 200, r.text
        time.sleep(0.3)


def test_wal_positions_and_the_tile_cache() -> None:
    """No cluster needed: positions compare as numbers, and a tile rendered on a replica is not
    served to a client whose reads must see a later position (one rendered on the primary is)."""
    from api.ogc.tiles import TileCache
    from gis import db

    assert db.lsn("16/B374D848") == 0x16_B374D848
    assert db.lsn(db.lsn_text(0x16_0000_0001)) == 0x16_0000_0001
    assert db.lsn("0/9") < db.lsn("0/10") < db.lsn("1/0")
    cache = TileCache()
    on_replica = ("parcels", (), 16, 1, 2, None)
    on_primary = ("parcels", (), 16, 1, 3, None)
    cache.put(on_replica, b"old", '"a"', replayed=100)
    cache.put(on_primary, b"new", '"b"')
    assert cache.get(on_replica) == (b"old", '"a"')
    assert cache.get(on_replica, after=100) == (b"old", '"a"')
    assert cache.get(on_replica, after=101) is None
    assert cache.get(on_primary, after=101) == (b"new", '"b"')
