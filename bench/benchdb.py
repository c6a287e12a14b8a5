"""The benchmark databases: created the way scripts/setup.sh creates the project's, migrated,
and loaded with the sample province at a given scale. A second run finds one ready and skips it.
"""

from __future__ import annotations

import http.client
import math
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PG = {"host": "127.0.0.1", "port": 5432, "user": "geoioc", "password": "geoioc"}
GEOIOC = ROOT / ".venv" / "bin" / "geoioc"


def run(cmd: Sequence[str | Path], env: dict[str, str] | None = None) -> str:
    """Run a command, fail loudly with its output (set-up errors must not look like results)."""
    proc = subprocess.run([str(c) for c in cmd], env={**os.environ, **(env or {})}, text=True,
                          capture_output=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(map(str, cmd))} failed ({proc.returncode}):\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


def db_url(database: str) -> str:
    return f"postgresql://{PG['user']}:{PG['password']}@{PG['host']}:{PG['port']}/{database}"


def superuser_psql(database: str, command: str) -> str:
    """psql as the superuser over loopback (trust), as scripts/setup.sh does first."""
    return run(["psql", "-w", "-h", PG["host"], "-p", str(PG["port"]), "-U", "postgres", "-d", database,
                "-v", "ON_ERROR_STOP=1", "-qtA", "-c", command])


def create_database(database: str, log=print) -> None:
    """The same statements as scripts/setup.sh's create_database: roles, database owned by
    geoioc, extensions created by the superuser, spatial_ref_sys rights for the SRID migration."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", database):
        raise SystemExit(f"bench: {database!r} is not a plain database name")
    superuser_psql("postgres", """DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc') THEN
            CREATE ROLE geoioc LOGIN PASSWORD 'geoioc';
        END IF;
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
            CREATE ROLE geoioc_app NOLOGIN;
        END IF; END $$;
        GRANT geoioc_app TO geoioc;""")
    exists = f"SELECT 1 FROM pg_database WHERE datname = '{database}'"  # noqa: S608 (name checked above)
    if not superuser_psql("postgres", exists).strip():
        log(f"creating database {database}")
        superuser_psql("postgres", f'CREATE DATABASE "{database}" OWNER geoioc')
    superuser_psql(database, """CREATE EXTENSION IF NOT EXISTS postgis;
        CREATE EXTENSION IF NOT EXISTS btree_gist;
        CREATE EXTENSION IF NOT EXISTS unaccent;
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
        GRANT SELECT, INSERT, DELETE ON spatial_ref_sys TO geoioc;""")


def prepare_database(database: str, scale: float, log=print) -> None:
    """Create, migrate and load the sample at SCALE (replacing a sample of another scale)."""
    create_database(database, log)
    env = {"GEOIOC_DATABASE_URL": db_url(database)}
    run([GEOIOC, "db", "migrate"], env=env)
    with psycopg.connect(db_url(database)) as conn:
        row = conn.execute("SELECT scale FROM sample_info").fetchone()
    if row is not None and math.isclose(row[0], scale):
        log(f"database {database}: sample at scale {scale:g} already loaded")
        return
    what = "loading" if row is None else f"replacing the scale {row[0]:g} sample with"
    log(f"database {database}: {what} the sample at scale {scale:g} (takes a while)")
    t0 = time.monotonic()
    run([GEOIOC, "sample", "load", "--scale", str(scale), *(["--replace"] if row else [])], env=env)
    log(f"loaded in {time.monotonic() - t0:.0f} s")
    with psycopg.connect(db_url(database), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`geoioc serve` (one worker) of the checkout CODE (default this one, by PYTHONPATH) on a
    free port, the anonymous rate limit off; stopped on exit. Every bench that starts a server
    uses this one."""

    def __init__(self, database: str, code: Path = ROOT) -> None:
        self.code = code
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "GEOIOC_DATABASE_URL": db_url(database), "PYTHONPATH": str(code),
               "GEOIOC_PUBLIC_URL": self.url, "GEOIOC_RATE_LIMIT_ANONYMOUS_PER_SECOND": "0"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from gis.cli import main; main()", "serve", "--port",
             str(self.port)], env=env, cwd=code, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        self.__exit__()
        raise SystemExit(f"bench: geoioc serve ({self.code}) did not start: "
                         + (self.proc.stderr.read().decode()[-2000:] if self.proc.stderr else ""))

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
