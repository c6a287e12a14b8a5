"""OGC API side by side: GeoIOC, stock pygeoapi 0.21 and tipg 1.6 on the same database.

    .venv/bin/python bench/ogc.py              # full run (about 8 minutes), figures into bench/README.md
    .venv/bin/python bench/ogc.py --quick      # a smoke run (short cases), README left alone
    .venv/bin/python bench/ogc.py --help

Why a script and not a one-off measurement: the issue's figures (pygeoapi 51 req/s, tipg 96 req/s
for 100 items, ...) are only meaningful next to ours measured the same way, on the same machine,
data and requests, in one run. Everything needed is prepared here, idempotently: the database
`geoioc_bench` (created like scripts/setup.sh's create_database, migrated, the sample loaded at
--scale unless sample_info already says so), one virtual environment per competitor under .bench/
and a generated pygeoapi configuration. Each server runs with one worker on its own port; all of
them are stopped at the end, also on errors and Ctrl+C.

Nothing is counted unchecked: a benchmark of error responses is worthless, so every response is
validated (status 200 and the expected number of features; tiles non-empty, each distinct tile
decoded with mapbox_vector_tile after the timed run) and any failure marks the case with a cross.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import itertools
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # layers.* for the PostgreSQL baseline (the exact SQL we run)

import orjson  # noqa: E402
import psycopg  # noqa: E402
from benchdb import PG, db_url, prepare_database  # noqa: E402
from psycopg import sql  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

BENCH = ROOT / ".bench"
README = ROOT / "bench" / "README.md"
START, END = "<!-- bench-ogc:start -->", "<!-- bench-ogc:end -->"

# The layers every anonymous client may read (layers.access); the competitors get the same ones.
PUBLIC_LAYERS = ("admin_units", "land_use_zones", "parcels", "roads", "tourism_places", "sensors")
# Layers every server can tile at z14 and z10 (we tile parcels only from z15).
TILE_LAYERS = ("land_use_zones", "roads")
# Every tile of the province at these zooms is checked against the low-zoom bounds too (ours
# only; z10 has its own case, and a tile requested twice within a minute comes from our cache).
LOW_ZOOMS = (8, 9, 11, 12, 13)
Z14_PASSES = 3

# Identity encoding for all: tipg would otherwise compress (starlette-cramjam) and the others not.
HEADERS = {"Accept-Encoding": "identity", "Connection": "keep-alive"}
REQUEST_TIMEOUT = 180.0

# Targets from the issue.
TARGET_ITEMS_VS_PYGEOAPI = 5.0
TARGET_ITEMS_VS_TIPG = 2.0
TARGET_PAGE_VS_POSTGRES = 1.5
TARGET_TILE_BYTES = 500_000
TARGET_TILE_SECONDS = 0.200

console = Console()


# --- preparation -------------------------------------------------------------------------

def run(cmd: Sequence[str | Path], env: dict[str, str] | None = None, quiet: bool = False) -> str:
    """Run a command, fail loudly with its output (set-up errors must not look like results)."""
    proc = subprocess.run([str(c) for c in cmd], env={**os.environ, **(env or {})}, text=True,
                          capture_output=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(map(str, cmd))} failed ({proc.returncode}):\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    if not quiet and proc.stdout.strip():
        console.print(proc.stdout.strip(), markup=False, highlight=False)
    return proc.stdout


# Competitors' virtual environments. pygeoapi 0.21 is the newest release for Python 3.11 (0.22+
# need 3.12), and `pip install pygeoapi` does not pull in what its stock PostgreSQL provider
# imports (GeoAlchemy2, SQLAlchemy, psycopg2): listed here explicitly.
VENVS = {
    "pygeoapi": ["pygeoapi==0.21.*", "psycopg2-binary", "GeoAlchemy2", "SQLAlchemy",
                 # its ASGI app (pygeoapi.starlette_app) under uvicorn, as tipg and we run
                 "starlette", "uvicorn",
                 # sampling profiler for the Findings
                 "py-spy"],
    "tipg": ["tipg==1.6.*", "uvicorn"],
}


def ensure_venv(name: str) -> Path:
    """.bench/<name> with its packages; skipped when the stamp says the same list is installed."""
    venv = BENCH / name
    stamp = venv / ".bench-installed"
    want = "\n".join(VENVS[name])
    if stamp.exists() and stamp.read_text() == want:
        return venv
    console.print(f"creating virtual environment .bench/{name} ({', '.join(VENVS[name])})")
    base = getattr(sys, "_base_executable", sys.executable)
    run([base, "-m", "venv", venv], quiet=True)
    run([venv / "bin" / "pip", "install", "-q", "--upgrade", "pip"], quiet=True)
    run([venv / "bin" / "pip", "install", "-q", *VENVS[name]], quiet=True)
    stamp.write_text(want)
    return venv


def package_version(venv: Path, package: str) -> str:
    out = run([venv / "bin" / "python", "-c",
               f"import importlib.metadata as m; print(m.version({package!r}))"], quiet=True)
    return out.strip()


# --- the data the requests are built from -------------------------------------------------

@dataclass
class Workload:
    """Requests chosen from the data, with the answers each server must give."""

    bbox: tuple[float, float, float, float]
    bbox_count: int
    feature_ids: list[int]
    # (layer, zoom) -> (x, y) of the tiles with data, in a fixed shuffled order: any prefix of it
    # (a slow server only gets through part of it) is spread over the whole province.
    tiles: dict[tuple[str, int], list[tuple[int, int]]]
    counts: dict[str, int]


def _tile_range(conn: psycopg.Connection, table: str, z: int) -> tuple[range, range]:
    xmin, ymin, xmax, ymax = conn.execute(
        sql.SQL("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                "(SELECT ST_Extent(geom)::geometry AS e FROM {}) s").format(sql.Identifier(table))
    ).fetchone()
    n = 1 << z

    def tx(lon: float) -> int:
        return int((lon + 180.0) / 360.0 * n)

    def ty(lat: float) -> int:
        r = math.radians(lat)
        return int((1.0 - math.asinh(math.tan(r)) / math.pi) / 2.0 * n)

    return range(tx(xmin), tx(xmax) + 1), range(ty(ymax), ty(ymin) + 1)


def tiles_with_data(conn: psycopg.Connection, table: str, z: int, at_least: int) -> list[tuple[int, int]]:
    """Tiles of the layer's extent in which at least `at_least` features really intersect the
    tile (not just their bounding boxes): an empty answer there would be a wrong answer."""
    xs, ys = _tile_range(conn, table, z)
    rows = conn.execute(
        sql.SQL(
            "SELECT x, y FROM generate_series(%s::int, %s::int) x, generate_series(%s::int, %s::int) y "
            "WHERE (SELECT count(*) FROM (SELECT 1 FROM {t} t WHERE ST_Intersects(t.geom, "
            "ST_Transform(ST_TileEnvelope(%s::int, x, y), 4326)) LIMIT %s) s) >= %s ORDER BY y, x"
        ).format(t=sql.Identifier(table)),
        [xs.start, xs.stop - 1, ys.start, ys.stop - 1, z, at_least, at_least],
    ).fetchall()
    return [(x, y) for x, y in rows]


def pick_bbox(conn: psycopg.Connection, want: int = 1000) -> tuple[tuple[float, float, float, float], int]:
    """A square around the median parcel holding 1,000 ± 5 % parcels (ST_Intersects, as all three
    servers filter), found by bisection on its half-width; coordinates rounded as they are sent."""
    cx, cy = conn.execute(
        "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) AS c FROM parcels "
        "ORDER BY id OFFSET (SELECT count(*) / 2 FROM parcels) LIMIT 1) s").fetchone()

    def box(h: float) -> tuple[float, float, float, float]:
        return (round(cx - h, 6), round(cy - h, 6), round(cx + h, 6), round(cy + h, 6))

    def count(b: tuple[float, float, float, float]) -> int:
        return conn.execute("SELECT count(*) FROM parcels WHERE ST_Intersects(geom, "
                            "ST_MakeEnvelope(%s, %s, %s, %s, 4326))", b).fetchone()[0]

    lo, hi = 0.0, 0.2
    for _ in range(40):
        mid = (lo + hi) / 2
        n = count(box(mid))
        if abs(n - want) <= want * 0.01:
            return box(mid), n
        lo, hi = (mid, hi) if n < want else (lo, mid)
    b = box((lo + hi) / 2)
    n = count(b)
    if abs(n - want) > want * 0.05:
        raise SystemExit(f"bench: no bbox with {want} ± 5 % parcels found (best {n})")
    return b, n


def build_workload(database: str) -> Workload:
    with psycopg.connect(db_url(database)) as conn:
        counts = {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))
                                  ).fetchone()[0] for t in (*PUBLIC_LAYERS, "incidents")}
        if counts["parcels"] < 20_000:
            raise SystemExit("bench: fewer than 20,000 parcels: the 10,000 page would be most of them")
        bbox, n = pick_bbox(conn)
        ids = [r[0] for r in conn.execute(
            "SELECT id FROM parcels WHERE id %% %s = 0 ORDER BY id LIMIT 500",
            [max(1, counts["parcels"] // 500)])]
        tiles = {}
        for t in TILE_LAYERS:
            for z in sorted({14, 10, *LOW_ZOOMS}):
                xy = tiles_with_data(conn, t, z, 3)
                random.Random(z).shuffle(xy)
                tiles[t, z] = xy
    return Workload(bbox, n, ids, tiles, counts)


# --- servers -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """One server under test: how to start it and how our logical requests map to its URLs."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    port: int
    items_path: Callable[[str], str]                 # layer -> items path
    item_path: Callable[[str, int], str]             # layer, id -> item path
    tile_path: Callable[[str, int, int, int], str] | None  # layer, z, x, y -> tile path
    ready_path: str
    # Keeps tiles in process (ours, 60 s): a second cold pass needs a fresh process.
    caches_tiles: bool = False
    proc: subprocess.Popen | None = None
    log: Path | None = None

    def start(self) -> None:
        first = self.log is None
        self.log = BENCH / f"{self.name}.log"
        with self.log.open("w" if first else "a") as out:
            # Own process group: stopping it ends exactly what we started, nothing else.
            self.proc = subprocess.Popen(self.cmd, env={**os.environ, **self.env}, cwd=BENCH,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", self.ready_path, headers=HEADERS)
                resp = conn.getresponse()
                body = resp.read()
                conn.close()
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}: {body[:300]!r}"
            except OSError as e:
                last = str(e)
            time.sleep(0.5)
        tail = self.log.read_text()[-3000:] if self.log and self.log.exists() else ""
        raise SystemExit(f"bench: {self.name} did not become ready on port {self.port} ({last})\n{tail}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass


def public_fields(layer_id: str) -> list[str]:
    from layers.access import ANONYMOUS, readable_fields
    from layers.catalogue import get_layer

    return [f.name for f in readable_fields(get_layer(layer_id), ANONYMOUS)]


def our_server(database: str) -> Server:
    port = free_port()
    env = {"GEOIOC_DATABASE_URL": db_url(database), "GEOIOC_PUBLIC_URL": f"http://127.0.0.1:{port}",
           # The per-address rate limit (20 req/s anonymous) would answer 429s to a load test.
           "GEOIOC_RATE_LIMIT_ANONYMOUS_PER_SECOND": "0"}
    return Server(
        "geoioc", [str(ROOT / ".venv" / "bin" / "geoioc"), "serve", "--host", "127.0.0.1",
                   "--port", str(port)], env, port,
        items_path=lambda layer: f"/ogc/collections/{layer}/items",
        item_path=lambda layer, fid: f"/ogc/collections/{layer}/items/{fid}",
        tile_path=lambda layer, z, x, y: f"/ogc/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}",
        ready_path="/ogc/collections/parcels/items?limit=1",
        caches_tiles=True,
    )


def pygeoapi_config(database: str, port: int, extents: dict[str, list[float]]) -> dict:
    """Stock pygeoapi: the PostgreSQL feature provider and the MVT-postgresql tile provider (both
    shipped with 0.21) on the same tables, with the same public fields and the same 10,000 cap."""
    data = {"host": PG["host"], "port": PG["port"], "dbname": database, "user": PG["user"],
            "password": PG["password"], "search_path": ["public"]}
    resources = {}
    for layer in PUBLIC_LAYERS:
        resources[layer] = {
            "type": "collection",
            "title": layer,
            "description": f"{layer} (GeoIOC bench)",
            "keywords": ["bench"],
            "extents": {"spatial": {"bbox": extents[layer],
                                    "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
            "providers": [
                {"type": "feature", "name": "PostgreSQL", "data": data, "table": layer,
                 "id_field": "id", "geom_field": "geom", "properties": public_fields(layer)},
                {"type": "tile", "name": "MVT-postgresql", "data": data, "table": layer,
                 "id_field": "id", "geom_field": "geom",
                 # No "schemes" list: 0.21 passes list-valued options into a functools.cache'd
                 # create_engine (TypeError: unhashable type: 'list'); MVT-postgresql offers
                 # WebMercatorQuad anyway.
                 "options": {"zoom": {"min": 0, "max": 22}},
                 "format": {"name": "pbf", "mimetype": "application/vnd.mapbox-vector-tile"}},
            ],
        }
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": f"http://127.0.0.1:{port}",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "gzip": False,
            "languages": ["en-US"],
            "cors": False,
            "pretty_print": False,
            "limits": {"default_items": 10, "max_items": 10_000},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {"title": "bench", "description": "GeoIOC bench", "keywords": ["bench"],
                               "keywords_type": "theme", "terms_of_service": "", "url": "http://localhost"},
            "license": {"name": "CC-BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"},
            "provider": {"name": "bench", "url": "http://localhost"},
            "contact": {"name": "bench", "position": "", "address": "", "city": "", "stateorprovince": "",
                        "postalcode": "", "country": "", "phone": "", "fax": "", "email": "",
                        "url": "", "hours": "", "instructions": "", "role": "pointOfContact"},
        },
        "resources": resources,
    }


def stock_pygeoapi(database: str, venv: Path) -> Server:
    port = free_port()
    with psycopg.connect(db_url(database)) as conn:
        extents = {t: [round(v, 6) for v in conn.execute(
            sql.SQL("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                    "(SELECT ST_Extent(geom)::geometry AS e FROM {}) s").format(sql.Identifier(t))
        ).fetchone()] for t in PUBLIC_LAYERS}
    config = BENCH / "pygeoapi-config.yml"
    openapi = BENCH / "pygeoapi-openapi.yml"
    # JSON is YAML: no PyYAML needed in our environment.
    config.write_text(json.dumps(pygeoapi_config(database, port, extents), indent=1))
    run([venv / "bin" / "pygeoapi", "openapi", "generate", config, "--output-file", openapi], quiet=True)
    env = {"PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    return Server(
        "pygeoapi", [str(venv / "bin" / "uvicorn"), "pygeoapi.starlette_app:APP", "--host", "127.0.0.1",
                     "--port", str(port), "--log-level", "warning"], env, port,
        items_path=lambda layer: f"/collections/{layer}/items",
        item_path=lambda layer, fid: f"/collections/{layer}/items/{fid}",
        tile_path=lambda layer, z, x, y: f"/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt",
        ready_path="/collections/parcels/items?limit=1&f=json",
    )


def tipg_server(database: str, venv: Path) -> Server:
    port = free_port()
    env = {
        "DATABASE_URL": db_url(database),
        "TIPG_DB_SCHEMAS": json.dumps(["public"]),
        "TIPG_DB_TABLES": json.dumps([f"public.{t}" for t in PUBLIC_LAYERS]),
        "TIPG_MAX_FEATURES_PER_QUERY": "10000",
        "TIPG_DEFAULT_FEATURES_LIMIT": "10",
        # Same pool bound as ours (GEOIOC_POOL_MAX_SIZE default).
        "TIPG_DB_MAX_CONN_SIZE": "10",
        **{f"TIPG_TABLE_CONFIG__public_{t}__properties": json.dumps(public_fields(t))
           for t in PUBLIC_LAYERS},
    }
    return Server(
        "tipg", [str(venv / "bin" / "uvicorn"), "tipg.main:app", "--host", "127.0.0.1", "--port",
                 str(port), "--log-level", "warning"], env, port,
        items_path=lambda layer: f"/collections/public.{layer}/items",
        item_path=lambda layer, fid: f"/collections/public.{layer}/items/{fid}",
        tile_path=lambda layer, z, x, y: f"/collections/public.{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}",
        ready_path="/collections/public.parcels/items?limit=1",
    )


@contextmanager
def running(servers: list[Server]) -> Iterator[list[Server]]:
    """Start all servers, wait until each answers, and stop every one of them whatever happens."""
    try:
        for s in servers:
            s.start()
        for s in servers:
            s.wait_ready()
            console.print(f"{s.name} ready on port {s.port} (pid {s.proc.pid})")
        yield servers
    finally:
        for s in servers:
            s.stop()


# --- load generation -----------------------------------------------------------------------

Validator = Callable[[int, int, bytes, bool], str | None]


@dataclass
class Sample:
    index: int      # which URL of the rotation
    start: float
    seconds: float
    size: int


@dataclass
class Result:
    case: str
    server: str
    samples: list[Sample] = field(default_factory=list)
    failures: Counter = field(default_factory=Counter)
    elapsed: float = 0.0
    bodies: dict[int, bytes] = field(default_factory=dict)   # one per URL index, kept for decoding
    skipped: str = ""                                       # why there is no result (n/a)

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def ok(self) -> bool:
        return not self.skipped and not self.failures and self.n > 0

    @property
    def rps(self) -> float:
        return self.n / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, p: float) -> float:
        xs = sorted(s.seconds for s in self.samples)
        if not xs:
            return math.nan
        k = min(len(xs) - 1, max(0, math.ceil(p / 100 * len(xs)) - 1))
        return xs[k]

    @property
    def mean_size(self) -> float:
        return sum(s.size for s in self.samples) / self.n if self.n else math.nan

    @property
    def max_size(self) -> int:
        return max((s.size for s in self.samples), default=0)

    @property
    def max_seconds(self) -> float:
        return max((s.seconds for s in self.samples), default=math.nan)


def load(server: Server, case: str, paths: Sequence[str], validate: Validator, *, concurrency: int,
         duration: float = 0.0, warmup: float = 0.0, min_requests: int = 0, single_pass: bool = False,
         keep_bodies: bool = False, timeout: float = REQUEST_TIMEOUT,
         on_timeout: Callable[[], None] | None = None) -> Result:
    """Closed-loop load: `concurrency` threads, each with its own keep-alive connection, request
    the rotation of paths back to back for warm-up + duration seconds (at least min_requests
    measured). With single_pass each path is requested at most once (a server-side cache never
    sees a tile twice), until the paths run out or, when a duration is given, it is up.

    Every response goes through the validator; requests started during the warm-up are validated
    but not timed. A request without an answer within `timeout` is a failure that ends the run
    (on_timeout then cancels what the server still has running in PostgreSQL, so the next case
    does not share the machine with an abandoned query)."""
    result = Result(case, server.name)
    lock = threading.Lock()
    counter = itertools.count()
    t0 = time.perf_counter()
    warm_end = t0 + warmup
    deadline = warm_end + duration
    # A stuck duration run still ends; a full pass (no duration) ends when its paths do.
    hard_stop = math.inf if single_pass and not duration else warm_end + max(duration * 4, 60.0)
    first_checked = threading.Event()
    abandoned = threading.Event()

    def next_job() -> tuple[int, str] | None:
        with lock:
            i = next(counter)
            now = time.perf_counter()
            if abandoned.is_set() or now >= hard_stop:
                return None
            if single_pass:
                if i >= len(paths) or (duration and now >= deadline and result.n >= min_requests):
                    return None
                return i, paths[i]
            if now >= deadline and (result.n >= min_requests or result.failures):
                return None
            return i % len(paths), paths[i % len(paths)]

    def connect() -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)

    def worker() -> None:
        conn = connect()
        try:
            while (job := next_job()) is not None:
                index, path = job
                start = time.perf_counter()
                try:
                    conn.request("GET", path, headers=HEADERS)
                    resp = conn.getresponse()
                    body = resp.read()
                    status = resp.status
                except TimeoutError:
                    conn.close()
                    with lock:
                        result.failures[f"no answer within {timeout:g} s"] += 1
                    if not abandoned.is_set():
                        abandoned.set()
                        if on_timeout:
                            on_timeout()
                    return
                except (OSError, http.client.HTTPException) as e:
                    conn.close()
                    conn = connect()
                    with lock:
                        result.failures[f"{type(e).__name__}: {e}"[:160]] += 1
                    continue
                seconds = time.perf_counter() - start
                first = not first_checked.is_set()
                first_checked.set()
                error = validate(index, status, body, first)
                with lock:
                    if error:
                        result.failures[error[:200]] += 1
                    elif single_pass or start >= warm_end:
                        result.samples.append(Sample(index, start, seconds, len(body)))
                    if keep_bodies and not error and index not in result.bodies:
                        result.bodies[index] = body
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if result.samples:
        begin = t0 if single_pass else warm_end
        result.elapsed = max(x.start + x.seconds for x in result.samples) - begin
    return result


def cancel_queries(database: str) -> None:
    """Cancel the bench database's running queries (only the server under test has any): a
    server keeps computing a tile its client gave up on."""
    with psycopg.connect(db_url(database), autocommit=True) as conn:
        conn.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                     "AND pid <> pg_backend_pid() AND state = 'active'", [database])


# --- validators: a response that is not the right answer is a failure, never a sample --------

def features_check(expected: int) -> Validator:
    """Every response: 200 and exactly `expected` Feature objects (a byte count of the token
    "Feature", cheap enough to do on every 10,000-feature page); the first response of a run is
    also parsed fully, which checks the token count against features[] and numberReturned."""

    def check(_: int, status: int, body: bytes, first: bool) -> str | None:
        if status != 200:
            return f"HTTP {status}: {body[:160].decode(errors='replace')}"
        n = body.count(b'"Feature"')
        if n != expected:
            return f"{n} features instead of {expected}"
        if first:
            doc = orjson.loads(body)
            if doc.get("type") != "FeatureCollection" or len(doc.get("features", ())) != expected:
                return f"parsed: {len(doc.get('features', ()))} features instead of {expected}"
            if doc.get("numberReturned", expected) != expected:
                return f"numberReturned {doc.get('numberReturned')} instead of {expected}"
        return None

    return check


def feature_check(ids: Sequence[int]) -> Validator:
    def check(index: int, status: int, body: bytes, _: bool) -> str | None:
        if status != 200:
            return f"HTTP {status}: {body[:160].decode(errors='replace')}"
        doc = orjson.loads(body)
        if doc.get("type") != "Feature" or str(doc.get("id")) != str(ids[index]):
            return f"not feature {ids[index]}: {str(doc)[:120]}"
        if not doc.get("geometry"):
            return f"feature {ids[index]} without geometry"
        return None

    return check


def tile_check(_: int, status: int, body: bytes, __: bool) -> str | None:
    if status != 200:
        return f"HTTP {status}: {body[:160].decode(errors='replace')}"
    if not body:
        return "empty tile"
    return None


def decode_tiles(result: Result) -> None:
    """After the timed run (decoding would steal the servers' CPU): every distinct tile kept is
    decoded and must hold at least one feature."""
    import mapbox_vector_tile

    for index, body in result.bodies.items():
        try:
            layers = mapbox_vector_tile.decode(body)
        except Exception as e:  # any decoding failure is a wrong answer
            result.failures[f"tile {index} does not decode: {e}"[:200]] += 1
            continue
        if not sum(len(layer["features"]) for layer in layers.values()):
            result.failures[f"tile {index} decodes to no features"] += 1
    result.bodies.clear()


# --- the PostgreSQL baseline -------------------------------------------------------------------

@dataclass
class Baseline:
    fetch_best: float
    fetch_runs: list[float]
    execution_ms: float
    json_bytes: int


def postgres_baseline(database: str, runs: int) -> Baseline:
    """The exact SQL our server runs for a 10,000-feature page (layers.features_sql with the
    public fields), through psycopg fetching every row, best of `runs`; and PostgreSQL's own
    execution time (EXPLAIN ANALYZE, no client transfer) for reference."""
    from layers.access import ANONYMOUS, readable_fields
    from layers.catalogue import get_layer
    from layers.features_sql import FeatureQuery, features_sql

    layer = get_layer("parcels")
    q = FeatureQuery(layer=layer, fields=readable_fields(layer, ANONYMOUS), limit=10_000)
    query, params = features_sql(q)
    times = []
    size = 0
    with psycopg.connect(db_url(database), options="-c TimeZone=UTC") as conn:
        conn.execute(query, params).fetchall()  # warm the cache
        for _ in range(runs):
            t = time.perf_counter()
            rows = conn.execute(query, params).fetchall()
            times.append(time.perf_counter() - t)
            size = sum(len(r[0]) for r in rows) + len(rows)
        plan = conn.execute(sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) ") + query, params).fetchone()[0]
    return Baseline(min(times), times, plan[0]["Execution Time"], size)


# --- profiling stock pygeoapi -------------------------------------------------------------------

# Where a sample inside pygeoapi's handler is attributed: the outermost frame below the handler
# that matches one of these (function, file fragment), in call order. py-spy names methods
# Class.method; the match is on the method name.
PROFILE_MARKERS: list[tuple[str, str, str]] = [
    ("load_plugin", "pygeoapi/plugin.py", "provider instantiated per request (load_plugin)"),
    ("create_crs_transform_spec", "", "CRS handling per request (pyproj)"),
    ("get_crs_from_uri", "", "CRS handling per request (pyproj)"),
    ("set_content_crs_header", "", "CRS handling per request (pyproj)"),
    ("get_transform_from_crs", "", "CRS handling per request (pyproj)"),
    ("count", "sqlalchemy/orm/query.py", "count(*) of all matches for numberMatched"),
    ("_sqlalchemy_to_feature", "", "ORM objects to feature dicts (WKB → shapely → GeoJSON dict)"),
    ("close", "sqlalchemy/orm/session.py", "session close (a ROLLBACK round trip)"),
    ("__exit__", "sqlalchemy/orm/session.py", "session close (a ROLLBACK round trip)"),
    ("to_json", "pygeoapi/util.py", "json.dumps of the feature dicts"),
    ("_fetchall_impl", "sqlalchemy/engine/cursor.py", "rows from psycopg2 into Python tuples"),
    ("chunks", "sqlalchemy/orm/loading.py", "ORM objects from rows (SQLAlchemy, GeoAlchemy2 WKB)"),
    ("query", "pygeoapi/provider/sql.py", "SELECT through the ORM (compile, execute)"),
    ("get", "pygeoapi/provider/sql.py", "session.get + prev/next queries through the ORM"),
]
# Containers only name what no more specific marker below them claims (the innermost wins).
CONTAINERS = ("query", "get", "chunks")
HANDLERS = ("get_collection_items", "get_collection_item")
# Leaves where a thread waits for PostgreSQL (psycopg2's C code releases the GIL below them).
DB_WAIT_LEAVES = ("do_execute", "do_ping", "do_rollback", "do_commit", "do_execute_no_params")
IDLE_LEAVES = ("select", "poll", "wait", "_worker", "_wait_for_tstate_lock", "sleep")


def _frame(text: str) -> tuple[str, str]:
    """'Class.method (path/file.py:123)' -> ('method', 'path/file.py')."""
    name, _, rest = text.partition(" (")
    return name.strip().rsplit(".", 1)[-1], rest.rsplit(":", 1)[0]


def classify(stack: list[str]) -> tuple[str, bool] | None:
    """Category of one sampled stack inside a handler, and whether it was waiting for PostgreSQL;
    None when the stack is not inside a handler."""
    frames = [_frame(f) for f in stack]
    at = next((i for i, (name, _) in enumerate(frames) if name in HANDLERS), None)
    if at is None:
        return None
    waiting = frames[-1][0] in DB_WAIT_LEAVES
    below = frames[at + 1:]
    # The pre-ping hides inside whichever query checks out the connection first: named apart.
    if any(name == "do_ping" for name, _ in below):
        return "pool pre-ping (a SELECT 1 round trip per request)", waiting
    fallback = None
    for name, path in below:
        for marker, fragment, category in PROFILE_MARKERS:
            if name == marker and fragment in path:
                if marker in CONTAINERS:
                    fallback = category
                    break
                return category, waiting
    return fallback or "rest of pygeoapi's handler (request parsing, links, formatting)", waiting


@dataclass
class Profile:
    case: str
    rps: float
    p50_ms: float
    shares: dict[str, float]     # category -> share of handler samples
    waiting: float               # share of handler samples waiting for PostgreSQL
    outside: float               # share of busy samples outside the handler (event loop, HTTP)
    samples: int
    error: str = ""


def profile_pygeoapi(server: Server, venv: Path, case: str, paths: Sequence[str], validate: Validator,
                     seconds: float, concurrency: int) -> Profile:
    """py-spy (sampling, wall clock with --idle) on the stock pygeoapi process while it serves the
    request under the benchmark's load: how the time of one request divides up."""
    out = Path(tempfile.mkstemp(prefix="pyspy-", suffix=".txt", dir=BENCH)[1])
    spy = subprocess.Popen(
        # --idle: wall clock, so waiting for PostgreSQL shows; --nonblocking: the process is not
        # paused for each sample (which halved its rate at 250 samples/s).
        [str(venv / "bin" / "py-spy"), "record", "--pid", str(server.proc.pid), "--idle", "--threads",
         "--nonblocking", "--format", "raw", "--rate", "100", "--duration", str(int(seconds) + 2),
         "--output", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    time.sleep(1.0)
    try:
        res = load(server, case, paths, validate, concurrency=concurrency, duration=seconds)
        log, _ = spy.communicate(timeout=seconds + 60)
    finally:
        if spy.poll() is None:
            os.killpg(spy.pid, signal.SIGTERM)
            spy.wait(timeout=10)
    text = out.read_text() if out.exists() else ""
    out.unlink(missing_ok=True)
    if spy.returncode != 0 or not text:
        return Profile(case, res.rps, 0, {}, 0, 0, 0, error=f"py-spy failed: {log.strip()[-300:]}")
    cats: Counter = Counter()
    waiting = outside = busy = 0
    for line in text.splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        stack = [f for f in stack_text.split(";") if f and not f.startswith(("process ", "thread "))]
        got = classify(stack)
        if got is not None:
            cats[got[0]] += count
            waiting += count if got[1] else 0
            continue
        if stack and _frame(stack[-1])[0] not in IDLE_LEAVES:
            outside += count
            busy += count
    total = sum(cats.values())
    busy += total
    shares = {k: v / total for k, v in cats.most_common()} if total else {}
    return Profile(case, res.rps, 1000 * res.percentile(50) if res.n else math.nan, shares,
                   waiting / total if total else 0.0, outside / busy if busy else 0.0, total)


# --- the run -------------------------------------------------------------------------------------

@dataclass
class Case:
    key: str
    title: str
    paths: Callable[[Server], list[str] | None]   # None: this server cannot answer it (n/a)
    validate: Validator
    concurrency: int
    single_pass: bool = False
    duration_factor: float = 1.0                  # of --duration; 0: no time limit (single pass)
    tiles: bool = False
    timeout: float = REQUEST_TIMEOUT
    # Cold single passes merged into one result (one pass over 190 tiles lasts about a second:
    # too short to stand against other work on the machine); the duration is shared among them.
    passes: int = 1


def cases(w: Workload, concurrency: int, tile_timeout: float) -> list[Case]:
    b = ",".join(f"{v:.6f}" for v in w.bbox)

    def tiles(layer: str, zooms: Sequence[int], only: str | None = None
              ) -> Callable[[Server], list[str] | None]:
        def paths(s: Server) -> list[str] | None:
            if s.tile_path is None or (only and s.name != only):
                return None
            return [s.tile_path(layer, z, x, y) for z in zooms for x, y in w.tiles[layer, z]]
        return paths

    def n_tiles(layer: str, zooms: Sequence[int]) -> int:
        return sum(len(w.tiles[layer, z]) for z in zooms)

    items = [
        Case("items100", "items limit=100 (parcels)",
             lambda s: [s.items_path("parcels") + "?limit=100"], features_check(100), concurrency),
        Case("bbox", f"bbox holding {w.bbox_count:,} parcels",
             lambda s: [s.items_path("parcels") + f"?bbox={b}&limit=2000"],
             features_check(w.bbox_count), concurrency),
        Case("feature", "one feature by id (parcels)",
             lambda s: [s.item_path("parcels", i) for i in w.feature_ids], feature_check(w.feature_ids),
             concurrency),
        Case("page10k", "page of 10,000 parcels",
             lambda s: [s.items_path("parcels") + "?limit=10000"], features_check(10_000), concurrency),
        Case("page10k_c1", "page of 10,000 parcels, one at a time",
             lambda s: [s.items_path("parcels") + "?limit=10000"], features_check(10_000), 1,
             duration_factor=0.6),
    ]
    z14 = [Case(f"z14_{layer}", f"z14 tiles {layer}, cold: {Z14_PASSES} passes over "
                                f"{n_tiles(layer, [14])}, each tile at most once per pass",
                tiles(layer, [14]), tile_check, concurrency, single_pass=True, tiles=True,
                passes=Z14_PASSES)
           for layer in TILE_LAYERS]
    repeat = [Case("z14_repeat", "z14 tiles land_use_zones, repeated (our cache hits)",
                   tiles("land_use_zones", [14]), tile_check, concurrency, duration_factor=0.5, tiles=True)]
    z10 = [Case(f"z10_{layer}", f"z10 tiles {layer}, all {n_tiles(layer, [10])}, one at a time",
                tiles(layer, [10]), tile_check, 1, single_pass=True, duration_factor=0, tiles=True,
                timeout=tile_timeout)
           for layer in TILE_LAYERS]
    sweep = [Case(f"low_{layer}", f"z{'/'.join(map(str, LOW_ZOOMS))} tiles {layer}, all "
                                  f"{n_tiles(layer, LOW_ZOOMS)}, one at a time (ours only)",
                  tiles(layer, LOW_ZOOMS, only="geoioc"), tile_check, 1, single_pass=True,
                  duration_factor=0, tiles=True, timeout=tile_timeout)
             for layer in TILE_LAYERS]
    # The repeat right after the cold land_use_zones passes, while our cache (60 s) holds them.
    return items + z14[:1] + repeat + z14[1:] + z10 + sweep


def restart(s: Server, concurrency: int) -> None:
    """A fresh process (an empty tile cache), warmed like the first one was by earlier cases: the
    pool grown to `concurrency` connections by a moment of item requests."""
    s.stop()
    s.start()
    s.wait_ready()
    load(s, "warm-up", [s.items_path("parcels") + "?limit=10"], features_check(10),
         concurrency=concurrency, duration=0.5)


def run_cases(servers: list[Server], all_cases: list[Case], duration: float, warmup: float,
              min_requests: int, database: str) -> dict[tuple[str, str], Result]:
    """Case by case, server after server (so slow drift of the machine hits all alike)."""
    results: dict[tuple[str, str], Result] = {}
    for case in all_cases:
        for s in servers:
            paths = case.paths(s)
            if paths is None:
                results[case.key, s.name] = Result(case.key, s.name, skipped="n/a")
                continue
            if s.proc is not None and s.proc.poll() is not None:
                # Not ours to hide: something ended the server (see .bench/<name>.log).
                r = Result(case.key, s.name)
                r.failures[f"server exited (status {s.proc.returncode}) before this case"] += 1
                results[case.key, s.name] = r
                console.print(f"  {case.title[:62]:<62} {s.name:<9} [red]✗ {next(iter(r.failures))}[/red]")
                continue
            console.print(f"  {case.title[:62]:<62} {s.name:<9}", end="")
            r = Result(case.key, s.name)
            for n in range(case.passes):
                if n and s.caches_tiles:
                    restart(s, case.concurrency)
                one = load(s, case.key, paths, case.validate, concurrency=case.concurrency,
                           duration=duration * case.duration_factor / case.passes,
                           warmup=0 if case.single_pass else warmup,
                           min_requests=max(1, min_requests // case.passes), single_pass=case.single_pass,
                           keep_bodies=case.tiles and case.single_pass, timeout=case.timeout,
                           on_timeout=lambda: cancel_queries(database))
                r.samples += one.samples
                r.failures += one.failures
                r.elapsed += one.elapsed
                for index, body in one.bodies.items():
                    r.bodies.setdefault(index, body)
                if one.failures:
                    break
            if case.tiles:
                decode_tiles(r)
            results[case.key, s.name] = r
            mark = "[green]✓[/green]" if r.ok else f"[red]✗ {next(iter(r.failures), 'no samples')}[/red]"
            console.print(f" {r.rps:8.1f} req/s  p50 {fmt_ms(r.percentile(50)):>6} ms  {mark}")
    return results


# --- reporting -------------------------------------------------------------------------------------

def fmt_size(n: float) -> str:
    if math.isnan(n):
        return "–"
    if n >= 1_000_000:
        return f"{n / 1e6:.1f} MB"
    if n >= 1000:
        return f"{n / 1e3:.0f} KB" if n >= 10_000 else f"{n / 1e3:.1f} KB"
    return f"{n:.0f} B"


def fmt_ms(s: float) -> str:
    if math.isnan(s):
        return "–"
    ms = s * 1000
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def share(v: float) -> str:
    return f"{v:.0%}" if v >= 0.005 else "<1%"


def check_text(r: Result) -> str:
    if r.skipped:
        return r.skipped
    if r.ok:
        return f"✓ {r.n}"
    first = next(iter(r.failures), "no successful response")
    return f"✗ {sum(r.failures.values())} failed: {first}"


@dataclass
class Target:
    what: str
    measured: str
    met: bool


def targets(results: dict[tuple[str, str], Result], base: Baseline) -> list[Target]:
    def r(case: str, server: str) -> Result:
        return results[case, server]

    def valid(*rs: Result) -> bool:
        return all(x.ok for x in rs)

    out = []
    ours, pyg, tipg = r("items100", "geoioc"), r("items100", "pygeoapi"), r("items100", "tipg")
    out.append(Target(f"items limit=100 ≥ {TARGET_ITEMS_VS_PYGEOAPI:g}× stock pygeoapi",
                      f"{ours.rps:.0f} vs {pyg.rps:.0f} req/s = {ours.rps / max(pyg.rps, 1e-9):.1f}×",
                      valid(ours, pyg) and ours.rps >= TARGET_ITEMS_VS_PYGEOAPI * pyg.rps))
    out.append(Target(f"items limit=100 ≥ {TARGET_ITEMS_VS_TIPG:g}× tipg",
                      f"{ours.rps:.0f} vs {tipg.rps:.0f} req/s = {ours.rps / max(tipg.rps, 1e-9):.1f}×",
                      valid(ours, tipg) and ours.rps >= TARGET_ITEMS_VS_TIPG * tipg.rps))
    ours, tipg = r("feature", "geoioc"), r("feature", "tipg")
    out.append(Target("one feature ≥ tipg",
                      f"{ours.rps:.0f} vs {tipg.rps:.0f} req/s = {ours.rps / max(tipg.rps, 1e-9):.2f}×",
                      valid(ours, tipg) and ours.rps >= tipg.rps))
    page = r("page10k_c1", "geoioc")
    ratio = page.percentile(50) / base.fetch_best
    out.append(Target(f"page of 10,000 ≤ {TARGET_PAGE_VS_POSTGRES:g}× PostgreSQL alone",
                      f"p50 {fmt_ms(page.percentile(50))} ms (one at a time) vs {fmt_ms(base.fetch_best)} ms"
                      f" = {ratio:.2f}× (our best {fmt_ms(page.percentile(0))} ms = "
                      f"{page.percentile(0) / base.fetch_best:.2f}×)",
                      valid(page) and ratio <= TARGET_PAGE_VS_POSTGRES))
    for layer in TILE_LAYERS:
        ours, tipg = r(f"z14_{layer}", "geoioc"), r(f"z14_{layer}", "tipg")
        out.append(Target(f"z14 tiles ({layer}) ≥ tipg",
                          f"{ours.rps:.0f} vs {tipg.rps:.0f} tiles/s (cold, {Z14_PASSES} passes)",
                          valid(ours, tipg) and ours.rps >= tipg.rps))
    for key, label in [*((f"z10_{t}", f"z10 tiles ({t})") for t in TILE_LAYERS),
                       *((f"low_{t}", f"z{'/'.join(map(str, LOW_ZOOMS))} tiles ({t})")
                         for t in TILE_LAYERS)]:
        low = r(key, "geoioc")
        out.append(Target(f"{label}: every tile < {TARGET_TILE_BYTES // 1000} KB and "
                          f"< {TARGET_TILE_SECONDS * 1000:.0f} ms",
                          f"max {fmt_size(low.max_size)}, max {fmt_ms(low.max_seconds)} ms "
                          f"over {low.n} tiles (each requested once)",
                          valid(low) and low.max_size < TARGET_TILE_BYTES
                          and low.max_seconds < TARGET_TILE_SECONDS))
    return out


def machine_facts() -> dict[str, str]:
    mem = "?"
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": str(os.cpu_count()), "memory": mem, "cpu": cpu,
            "python": platform.python_version(), "os": platform.platform(terse=True),
            "load": " / ".join(f"{x:.1f}" for x in os.getloadavg())}


def print_console(servers: list[Server], all_cases: list[Case], results: dict, base: Baseline,
                  goals: list[Target], profiles: list[Profile]) -> None:
    table = Table(title="OGC API side by side (req/s · p50/p99 ms · mean size · check)")
    table.add_column("case")
    for s in servers:
        table.add_column(s.name)
    for case in all_cases:
        cells = []
        for s in servers:
            r = results[case.key, s.name]
            if r.skipped:
                cells.append(r.skipped)
                continue
            colour = "green" if r.ok else "red"
            cells.append(f"{r.rps:.1f}/s · {fmt_ms(r.percentile(50))}/{fmt_ms(r.percentile(99))} ms\n"
                         f"{fmt_size(r.mean_size)} · [{colour}]{check_text(r)}[/{colour}]")
        table.add_row(case.title, *cells)
    console.print(table)
    console.print(f"PostgreSQL alone, 10,000-feature page: best {fmt_ms(base.fetch_best)} ms through "
                  f"psycopg, execution {base.execution_ms:.0f} ms, {fmt_size(base.json_bytes)} of JSON")
    t = Table(title="Targets")
    t.add_column("target")
    t.add_column("measured")
    t.add_column("")
    for g in goals:
        t.add_row(g.what, g.measured, "[green]met[/green]" if g.met else "[red]MISSED[/red]")
    console.print(t)
    for p in profiles:
        if p.error:
            console.print(f"[yellow]profile {p.case}: {p.error}[/yellow]")
            continue
        console.print(f"pygeoapi {p.case}: {p.samples} samples, {p.waiting:.0%} waiting for PostgreSQL")
        for k, v in p.shares.items():
            console.print(f"  {v:6.1%}  {k}")


def markdown(args: argparse.Namespace, servers: list[Server], versions: dict[str, str], w: Workload,
             all_cases: list[Case], results: dict, base: Baseline, goals: list[Target],
             profiles: list[Profile], pg_version: str) -> str:
    m = machine_facts()
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Run of {now}: `bench/ogc.py --scale {args.scale:g}`{' --quick' if args.quick else ''}, "
        f"{args.concurrency} concurrent keep-alive clients (1 for the rows saying one at a time), "
        f"{args.duration:g} s per case after {args.warmup:g} s warm-up.",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, {m['os']}, Python {m['python']}, "
        f"PostgreSQL {pg_version}; client, servers and PostgreSQL share the machine (load average "
        f"{args.load_before} before the run, {m['load']} after: other work on the machine shows "
        f"there).",
        f"Data: {w.counts['parcels']:,} parcels, {w.counts['land_use_zones']:,} land-use zones, "
        f"{w.counts['roads']:,} roads, {w.counts['incidents']:,} incidents (sample scale {args.scale:g}). "
        f"Servers: " + ", ".join(f"{s.name} {versions.get(s.name, '')}".strip() for s in servers)
        + ", one worker each.",
        "",
        "| case | server | req/s | p50 ms | p99 ms | mean size | check |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for case in all_cases:
        for s in servers:
            r = results[case.key, s.name]
            if r.skipped:
                if case.key.startswith("low"):
                    continue  # ours only, by design
                lines.append(f"| {case.title} | {s.name} | n/a | | | | {r.skipped} |")
                continue
            lines.append(f"| {case.title} | {s.name} | {r.rps:.1f} | {fmt_ms(r.percentile(50))} | "
                         f"{fmt_ms(r.percentile(99))} | {fmt_size(r.mean_size)} | "
                         f"{check_text(r).replace('|', '/')} |")
    lines += [
        "",
        "Low-zoom tiles, every tile of the province with data requested once (so never from our "
        "cache), one at a time: largest and slowest per zoom.",
        "",
        "| layer | zoom | server | tiles | max size | mean size | max ms | p50 ms |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for layer in TILE_LAYERS:
        rows = [(10, f"z10_{layer}", s.name) for s in servers]
        rows += [(z, f"low_{layer}", "geoioc") for z in LOW_ZOOMS if z != 10]
        for z, key, name in sorted(rows, key=lambda x: (x[0], x[2] != "geoioc")):
            r = results[key, name]
            if r.skipped:
                lines.append(f"| {layer} | {z} | {name} | n/a | | | | |")
                continue
            # The sweep's samples carry the index into its path list (zoom by zoom).
            first = sum(len(w.tiles[layer, zz]) for zz in LOW_ZOOMS if zz < z) if key.startswith("low") else 0
            picked = Result(key, name, [x for x in r.samples
                                        if first <= x.index < first + len(w.tiles[layer, z])])
            failed = f" {check_text(r)}" if not r.ok else ""
            lines.append(f"| {layer} | {z} | {name} | {picked.n}{failed} | {fmt_size(picked.max_size)} | "
                         f"{fmt_size(picked.mean_size)} | {fmt_ms(picked.max_seconds)} | "
                         f"{fmt_ms(picked.percentile(50))} |")
    lines += [
        "",
        f"PostgreSQL alone for the 10,000-feature page (the exact SQL of `layers.features_sql`, public "
        f"fields): best {fmt_ms(base.fetch_best)} ms of {len(base.fetch_runs)} through psycopg fetching "
        f"every row ({fmt_size(base.json_bytes)} of feature JSON); execution inside PostgreSQL "
        f"{base.execution_ms:.0f} ms (EXPLAIN ANALYZE).",
        "",
        "| target | measured | |",
        "|---|---|---|",
        *[f"| {g.what} | {g.measured} | {'met' if g.met else '**missed**'} |" for g in goals],
    ]
    for p in profiles:
        lines += ["", f"Stock pygeoapi, {p.case}: py-spy wall-clock samples of the request handler "
                      f"under load ({p.rps:.0f} req/s, p50 {p.p50_ms:.0f} ms, {p.samples} samples):", ""]
        if p.error:
            lines.append(f"not measured: {p.error}")
            continue
        lines += ["| share | where |", "|---:|---|"]
        lines += [f"| {share(v)} | {k} |" for k, v in p.shares.items()]
        lines += ["", f"Of the handler's samples {p.waiting:.0%} wait for PostgreSQL; "
                      f"{p.outside:.0%} of the busy samples are outside the handler (uvicorn, Starlette, "
                      f"the event loop)."]
    return "\n".join(lines)


def write_readme(block: str) -> None:
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        text = f"{head}{START}\n{block}\n{END}{tail}"
    else:
        text = f"{text.rstrip()}\n\n{START}\n{block}\n{END}\n"
    README.write_text(text)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=2.5,
                    help="sample scale (2.5 ≈ 100,000 parcels, 125,000 incidents)")
    ap.add_argument("--database", default="geoioc_bench", help="database to create and use")
    ap.add_argument("--quick", action="store_true",
                    help="short cases (2 s), no profile; for checking the set-up, README left alone")
    ap.add_argument("--concurrency", type=int, default=4, help="concurrent keep-alive clients")
    ap.add_argument("--duration", type=float, default=None, help="seconds measured per case and server")
    ap.add_argument("--warmup", type=float, default=None, help="seconds of unmeasured warm-up")
    ap.add_argument("--tile-timeout", type=float, default=None,
                    help="seconds one low-zoom tile may take before the case is abandoned "
                         "(default 30, --quick 10): stock pygeoapi needs minutes for a z10 tile")
    ap.add_argument("--no-readme", action="store_true", help="do not write bench/README.md")
    args = ap.parse_args()
    if args.duration is None:
        args.duration = 2.0 if args.quick else 10.0
    if args.warmup is None:
        args.warmup = 0.3 if args.quick else 1.0
    if args.tile_timeout is None:
        args.tile_timeout = 10.0 if args.quick else 30.0
    if args.database in ("geoioc", "geoioc_test", "geoioc_test_empty"):
        raise SystemExit(f"bench: {args.database} belongs to `make run`/`make test`; use another name")

    # SIGTERM ends the run like Ctrl+C: through the finally that stops the servers.
    signal.signal(signal.SIGTERM, _interrupt)
    BENCH.mkdir(exist_ok=True)
    if not shutil.which("psql"):
        raise SystemExit("bench: psql is needed (run `make run` once first)")

    args.load_before = machine_facts()["load"]
    if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        console.print(f"[yellow]bench: load average {args.load_before} before the run: other work on "
                      "this machine will show in the figures[/yellow]")
    prepare_database(args.database, args.scale, log=console.print)
    venvs = {name: ensure_venv(name) for name in VENVS}
    versions = {"pygeoapi": package_version(venvs["pygeoapi"], "pygeoapi"),
                "tipg": package_version(venvs["tipg"], "tipg"),
                "geoioc": package_version(ROOT / ".venv", "geoioc")}
    w = build_workload(args.database)
    console.print(f"bbox {w.bbox} holds {w.bbox_count} parcels; tiles with data: "
                  + ", ".join(f"{t} z{z} {len(xy)}" for (t, z), xy in sorted(w.tiles.items())))
    with psycopg.connect(db_url(args.database)) as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
    base = postgres_baseline(args.database, runs=3 if args.quick else 7)

    servers = [our_server(args.database), stock_pygeoapi(args.database, venvs["pygeoapi"]),
               tipg_server(args.database, venvs["tipg"])]
    all_cases = cases(w, args.concurrency, args.tile_timeout)
    profiles: list[Profile] = []
    with running(servers):
        results = run_cases(servers, all_cases, args.duration, args.warmup,
                            min_requests=5 if args.quick else 10, database=args.database)
        if not args.quick:
            pyg = servers[1]
            for case in (c for c in all_cases if c.key in ("items100", "feature", "page10k")):
                profiles.append(profile_pygeoapi(pyg, venvs["pygeoapi"], case.title, case.paths(pyg),
                                                 case.validate, seconds=8, concurrency=args.concurrency))
    goals = targets(results, base)
    print_console(servers, all_cases, results, base, goals, profiles)
    if not args.quick and not args.no_readme:
        write_readme(markdown(args, servers, versions, w, all_cases, results, base, goals, profiles,
                              pg_version))
        console.print(f"figures written to {README.relative_to(ROOT)}")
    failed = [(c, s) for (c, s), r in results.items() if not r.ok and not r.skipped]
    if failed:
        console.print("[red]bench: failed checks in "
                      + ", ".join(f"{c} on {s}" for c, s in failed) + "[/red]")
    # A competitor's failure is a finding (reported above); ours fails the run.
    if any(s == "geoioc" for _, s in failed):
        sys.exit(1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        console.print("[yellow]bench: interrupted; every server it started is stopped[/yellow]")
        sys.exit(130)
