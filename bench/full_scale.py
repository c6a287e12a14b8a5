"""Issue 18: every benchmark's headline request, at the sample's scale and at the province's
(bench/scale.py), side by side with the goals the earlier issues set.

    .venv/bin/python bench/full_scale.py --database geoioc --label sample     # the shipped sample
    .venv/bin/python bench/full_scale.py --database h_scale --label full      # after bench/scale.py
    .venv/bin/python bench/full_scale.py --table                              # both, into README

Each run starts a real `geoioc serve` on the database (bench/map_server.py), makes a throw-away
user per role, picks its inputs from the data (parcels, bboxes, owners, communes, datastreams:
seeded, so the same database gives the same inputs) and times each case over HTTP on one
kept-alive connection: two untimed calls first, then up to --runs calls (fewer when a case has
used its --budget seconds, at least 3), p50 and p99 (the largest of fewer than 100 runs) in
milliseconds, the body read. Every response is checked against the database (the feature ids,
the counts, the exported file's rows); a failed check stops the run. `ogrinfo -so` is timed as
GDAL's own process, the dashboard as a leader's first render in Chromium (bench/analytics.py).

The cases are the headline requests of bench/ogc.py, bench/gdal_clients.py, bench/parcels.py,
bench/search.py, bench/io.py (an export through the API), bench/transparency.py,
bench/analytics.py, bench/sta.py and bench/observations_50m.py: those scripts compare each
request with the alternative a user would pick; this one shows how each grows with the data.
A run's figures are kept in .bench/full_scale/LABEL.json; --table writes the runs found there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import psycopg
from analytics import TARGETS, dashboard_render, iso, tile_of
from map_server import README, ROOT, serve, temp_user, write_section
from search import hits_of
from transparency import public_reports

RESULTS = ROOT / ".bench" / "full_scale"
ROLES = ("land_officer", "operator")
# Incidents are tiled from this zoom, parcels from PARCEL_ZOOM (the catalogue's min_zoom).
TILE_ZOOMS = (10, 14)


@dataclass
class Case:
    group: str
    name: str
    calls: list[Callable[[], int]]  # each makes one request, checks it, returns its rows
    role: str | None = None  # the client's role (None: anonymous)
    goal: float | None = None  # milliseconds, on `stat`
    stat: str = "p99"
    runs: int | None = None  # at most (default --runs)


@dataclass
class Result:
    group: str
    name: str
    rows: int
    runs: int
    p50: float
    p99: float
    goal: float | None
    stat: str
    error: str | None = None  # a check that failed (the case is then not timed further)


@dataclass
class Run:
    label: str
    database: str
    started: str
    machine: str
    sizes: dict[str, int]
    results: list[Result] = field(default_factory=list)


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def counts(conn: psycopg.Connection) -> dict[str, int]:
    q = {"parcels": "SELECT count(*) FROM parcels",
         "incidents": "SELECT count(*) FROM incidents",
         "citizen reports": "SELECT count(*) FROM incidents WHERE service_code IS NOT NULL",
         "workflow moves": "SELECT count(*) FROM incident_transitions",
         "observations": "SELECT coalesce(sum(n), 0) FROM observation_daily",
         "datastreams": "SELECT count(*) FROM datastream_latest"}
    return {k: int(conn.execute(v).fetchone()[0]) for k, v in q.items()}  # type: ignore[index]


def settle(conn: psycopg.Connection, quiet_s: float = 3.0, timeout_s: float = 120.0) -> None:
    """Wait until nothing else has run a statement on the database for QUIET_S: a fresh server's
    job queue first refreshes the kept transparency figures (seconds of CPU at 1,000,000
    reports), which would land on the first cases' times."""
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        busy = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname ="
                            " current_database() AND state = 'active' AND pid <> pg_backend_pid()"
                            ).fetchone()[0]  # type: ignore[index]
        if busy:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return
        time.sleep(0.2)


def measure(case: Case, runs: int, budget: float) -> Result:
    for call in case.calls[:2]:
        call()
    times: list[float] = []
    rows = 0
    limit = case.runs or runs
    stop = time.monotonic() + budget
    i = 0
    while len(times) < limit and (len(times) < 3 or time.monotonic() < stop):
        call = case.calls[i % len(case.calls)]
        t0 = time.perf_counter()
        rows = call()
        times.append((time.perf_counter() - t0) * 1000)
        i += 1
    times.sort()
    p99 = times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)]
    return Result(case.group, case.name, rows, len(times), statistics.median(times), p99,
                  case.goal, case.stat)


def get(http: httpx.Client, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
    r = http.get(path, params=params)
    check(r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}")
    return r


# --- the cases ------------------------------------------------------------------------------


def ogc_cases(conn: psycopg.Connection, anon: httpx.Client, rng: random.Random) -> list[Case]:
    total = conn.execute("SELECT count(*) FROM parcels").fetchone()[0]  # type: ignore[index]
    ids = [r[0] for r in conn.execute(
        "SELECT id FROM parcels TABLESAMPLE SYSTEM (1) REPEATABLE (18) LIMIT 200")]
    rng.shuffle(ids)

    def first_page() -> int:
        doc = get(anon, "/ogc/collections/parcels/items", {"limit": 100, "f": "json"}).json()
        check(len(doc["features"]) == 100, "first page: not 100 features")
        check(doc.get("numberMatched") == total, f"numberMatched {doc.get('numberMatched')} != {total}")
        return int(doc["numberMatched"])

    # ~1,000 parcels around a parcel: the extent of its 1,000 nearest.
    boxes = []
    for pid in ids[:10]:
        box = conn.execute(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(p.geom) e"
            " FROM (SELECT geom FROM parcels ORDER BY geom <-> (SELECT ST_Centroid(geom) FROM"
            " parcels WHERE id = %s) LIMIT 1000) p) s", (pid,)).fetchone()
        n = conn.execute("SELECT count(*) FROM parcels WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s,"
                         " 4326) AND ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))",
                         (*box, *box)).fetchone()[0]  # type: ignore[index,misc]
        boxes.append((",".join(repr(v) for v in box), n))  # type: ignore[union-attr]

    def bbox(b: tuple[str, int]) -> Callable[[], int]:
        def call() -> int:
            doc = get(anon, "/ogc/collections/parcels/items",
                      {"bbox": b[0], "limit": 10000, "f": "json"}).json()
            check(len(doc["features"]) == b[1], f"bbox {b[0]}: {len(doc['features'])} != {b[1]}")
            return b[1]
        return call

    def one(pid: int) -> Callable[[], int]:
        def call() -> int:
            doc = get(anon, f"/ogc/collections/parcels/items/{pid}", {"f": "json"}).json()
            check(doc["id"] == pid and doc["geometry"], f"item {pid}")
            return 1
        return call

    last = conn.execute("SELECT id FROM parcels ORDER BY id OFFSET %s LIMIT 1",
                        (max(total - 1001, 0),)).fetchone()[0]  # type: ignore[index]
    tail = min(1000, total - 1)

    def by_offset() -> int:
        doc = get(anon, "/ogc/collections/parcels/items",
                  {"limit": 1000, "offset": total - 1000, "f": "json"}).json()
        check(len(doc["features"]) == 1000, "offset page: not 1,000 features")
        return 1000

    def by_key() -> int:
        doc = get(anon, "/ogc/collections/parcels/items",
                  {"limit": 1000, "after": last, "f": "json"}).json()
        check(len(doc["features"]) == tail and doc["features"][0]["id"] > last, "keyset page")
        return tail

    return [
        Case("OGC API", "parcels: first page of 100 (with numberMatched)", [first_page]),
        Case("OGC API", "parcels: bbox of about 1,000 parcels (10 places)", [bbox(b) for b in boxes]),
        Case("OGC API", "parcels: one feature (200 ids)", [one(i) for i in ids]),
        Case("OGC API", "parcels: last page of 1,000 by `offset`", [by_offset], runs=10),
        Case("OGC API", "parcels: last page of 1,000 by the `next` link's key", [by_key], runs=10),
    ]


def ogrinfo_case(base: str, total: int) -> Case:
    def call() -> int:
        out = subprocess.run(["ogrinfo", "-ro", "-so", f"OAPIF:{base}/ogc", "parcels"],
                             capture_output=True, text=True, timeout=600, check=True).stdout
        check(f"Feature Count: {total}" in out, f"ogrinfo: no 'Feature Count: {total}' in {out[:500]}")
        return total
    return Case("GDAL", "`ogrinfo -ro -so OAPIF:…/ogc parcels`", [call], goal=2000, stat="p50",
                runs=3)


def tile_cases(conn: psycopg.Connection, anon: httpx.Client, op: httpx.Client,
               end: dt.datetime) -> list[Case]:
    import mapbox_vector_tile as mvt

    lon, lat = conn.execute(
        "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Collect(geom)) AS c FROM ("
        "SELECT geom FROM incidents ORDER BY id LIMIT 20000) s) s").fetchone()  # type: ignore[misc]
    plon, plat, zoom = conn.execute(
        "SELECT ST_X(c), ST_Y(c), 15 FROM (SELECT ST_PointOnSurface(geom) c FROM parcels"
        " ORDER BY geom <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326) LIMIT 1) s",
        (lon, lat)).fetchone()  # type: ignore[misc]
    runs = iter(range(10**9))

    def tile(http: httpx.Client, layer: str, z: int, x: int, y: int,
             until: dt.datetime = end) -> Callable[[], int]:
        # A fresh tile each time (a repeat would come from the tile cache): the open window's
        # end moves by a microsecond per call.
        def call() -> int:
            stop = until + dt.timedelta(microseconds=next(runs))
            r = http.get(f"/ogc/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}",
                         params={"datetime": f"../{iso(stop)}"})
            check(r.status_code == 200, f"{layer} tile {z}/{y}/{x}: {r.status_code}")
            n = sum(len(v["features"]) for v in mvt.decode(r.content).values())
            check(n > 0, f"{layer} tile {z}/{y}/{x}: no feature")
            return len(r.content)
        return call

    cases = []
    for z in TILE_ZOOMS:
        x, y = tile_of(lon, lat, z)
        cases.append(Case("Tiles", f"incidents z{z}, all time, densest place (bytes)",
                          [tile(op, "incidents", z, x, y)], role="operator",
                          goal=TARGETS["tile z10"] if z == 10 else None, stat="p50", runs=10))
    x, y = tile_of(plon, plat, zoom)
    cases.append(Case("Tiles", f"parcels z{zoom} (their first zoom), same place (bytes)",
                      [tile(anon, "parcels", zoom, x, y, dt.datetime(2100, 1, 1, tzinfo=dt.UTC))],
                      runs=10))
    return cases


def parcel_cases(conn: psycopg.Connection, officer: httpx.Client, rng: random.Random) -> list[Case]:
    rows = conn.execute(
        "SELECT id, coalesce(old_commune_code, commune_code), sheet_no, parcel_no,"
        " ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)), land_user"
        " FROM parcels TABLESAMPLE SYSTEM (1) REPEATABLE (14) WHERE land_user IS NOT NULL"
        " LIMIT 300").fetchall()
    rng.shuffle(rows)
    rows = rows[:100]

    def has(pid: int, r: httpx.Response) -> int:
        doc = r.json()
        items = doc.get("results") or doc.get("features") or []
        check(any(x.get("id") == pid for x in items), f"parcel {pid} not in the answer")
        return len(items)

    def number(p: tuple) -> Callable[[], int]:
        return lambda: has(p[0], get(officer, "/api/parcels/search",
                                     {"commune": p[1], "sheet": p[2], "parcel": p[3]}))

    def point(p: tuple) -> Callable[[], int]:
        return lambda: has(p[0], get(officer, "/api/parcels/search", {"point": f"{p[4]!r},{p[5]!r}"}))

    def file(p: tuple) -> Callable[[], int]:
        def call() -> int:
            doc = get(officer, f"/api/parcels/by-number/{p[1]}/{p[2]}/{p[3]}").json()
            check(p[6] in json.dumps(doc, ensure_ascii=False), f"parcel {p[0]}: no land user")
            return 1
        return call

    def pdf(p: tuple) -> Callable[[], int]:
        def call() -> int:
            body = get(officer, f"/parcels/{p[0]}/extract.pdf").content
            check(body.startswith(b"%PDF"), f"parcel {p[0]}: not a PDF")
            return len(body)
        return call

    def owner(word: str) -> Callable[[], int]:
        from gis.parcels.common import fold

        def call() -> int:
            results = get(officer, "/api/parcels/search", {"owner": word}).json()["results"]
            check(bool(results) and all(fold(word) in fold(r["land_user"]) for r in results),
                  f"owner search {word!r}")
            return len(results)
        return call

    def box(p: tuple) -> Callable[[], int]:
        def call() -> int:
            hits = hits_of(get(officer, "/api/search", {"q": f"{p[2]}/{p[3]} {p[1]}"}).content)
            check(any(h["layer"] == "parcels" and (h["id"] == p[0] or p[0] in (
                h["properties"].get("ids") or [])) for h in hits), f"map search {p[2]}/{p[3]} {p[1]}")
            return len(hits)
        return call

    words = [max(p[6].split(), key=len) for p in rows]  # the search wants 3 letters or more
    return [
        Case("Parcels", "search by commune + sheet + parcel", [number(p) for p in rows],
             role="land_officer", goal=50),
        Case("Parcels", "search by a point", [point(p) for p in rows], role="land_officer", goal=50),
        Case("Parcels", "parcel file by number (land user shown)", [file(p) for p in rows],
             role="land_officer"),
        Case("Parcels", "extract PDF (bytes)", [pdf(p) for p in rows[:30]], role="land_officer",
             goal=1000),
        Case("Search", "owner search, one word (rows)", [owner(w) for w in words],
             role="land_officer", goal=100),
        Case("Search", "map search box: \"sheet/parcel commune\" (hits)", [box(p) for p in rows],
             role="land_officer", goal=100),
    ]


def export_case(conn: psycopg.Connection, officer: httpx.Client) -> Case:
    import pyogrio

    from api.routes.exports import ASYNC_ABOVE  # a larger export is a job (bench/io.py)

    # The export's commune is spatial (parcels meeting its boundary, border parcels included):
    # the largest commune whose export still comes back at once, counted the same way.
    code, n = conn.execute(
        "SELECT code, (SELECT count(*) FROM parcels p WHERE ST_Intersects(p.geom, (SELECT"
        " ST_Union(a.geom) FROM admin_units a WHERE a.code = c.code AND a.valid_to IS NULL)))"
        " FROM (SELECT commune_code AS code, count(*) n FROM parcels GROUP BY 1) c"
        " WHERE n <= 0.9 * %s ORDER BY n DESC LIMIT 1", (ASYNC_ABOVE,)).fetchone()  # type: ignore[misc]
    check(n <= ASYNC_ABOVE, f"commune {code}: {n} parcels, over the synchronous limit")

    def call() -> int:
        r = get(officer, "/api/exports", {"layer": "parcels", "format": "gpkg", "crs": "EPSG:9209",
                                          "commune": code})
        with tempfile.NamedTemporaryFile(suffix=".gpkg") as f:
            f.write(r.content)
            f.flush()
            got = pyogrio.read_info(f.name)["features"]
        check(got == n, f"export of commune {code}: {got} features, {n} in the database")
        return int(n)
    return Case("Exports", "GeoPackage of the largest commune's parcels (of those answered at once),"
                " VN-2000 (features)",
                [call], role="land_officer", stat="p50", runs=3)


def transparency_cases(conn: psycopg.Connection, anon: httpx.Client) -> list[Case]:
    as_of = conn.execute("SELECT as_of FROM sample_info").fetchone()[0]  # type: ignore[index]
    end = as_of + dt.timedelta(days=1)
    period = {"start": (end - dt.timedelta(days=365)).isoformat(), "end": end.isoformat()}

    received = public_reports(conn, period)
    communes = conn.execute("SELECT count(*) FROM admin_units WHERE level = 'commune'"
                            " AND valid_to IS NULL").fetchone()[0]  # type: ignore[index]

    def page() -> int:
        agencies = get(anon, "/api/transparency/agencies", period).json()
        check(agencies["province"]["received"] == received,
              f"transparency: province received {agencies['province']['received']} != {received}")
        features = get(anon, "/api/transparency/communes", period).json()["features"]
        check(len(features) == communes, f"transparency: {len(features)} communes != {communes}")
        ranked = get(anon, "/api/transparency/ranking", period).json()["ranking"]
        check(bool(ranked), "transparency: nobody ranked")
        return int(received)

    def overdue() -> int:
        return len(get(anon, "/api/transparency/overdue").json()["features"])

    return [Case("Transparency", "page load, a year (agencies + communes + ranking)", [page],
                 goal=300, stat="p50", runs=20),
            Case("Transparency", "open reports past their deadline, now (GeoJSON features)",
                 [overdue], runs=10)]


def analytics_cases(conn: psycopg.Connection, op: httpx.Client, end: dt.datetime,
                    first: dt.datetime) -> list[Case]:
    area = conn.execute("SELECT ST_Area(ST_Transform(geom, 9209)) FROM admin_units"
                        " WHERE level = 'province' AND valid_to IS NULL").fetchone()[0]  # type: ignore[index]
    gi_size = round(math.sqrt(area / (10_000 / 1.04) / (1.5 * math.sqrt(3))))
    year = {"start": iso(end - dt.timedelta(days=365)), "end": iso(end)}

    def call(path: str, params: dict[str, Any], rows: Callable[[Any], int]) -> Callable[[], int]:
        def run() -> int:
            n = rows(get(op, path, params).json())
            check(n > 0, f"{path}: empty answer")
            return n
        return run

    def window(days: int | None) -> dict[str, Any]:
        return {"start": iso(end - dt.timedelta(days=days) if days else first), "end": iso(end), "z": 11}

    total = lambda b: int(b["total"])  # noqa: E731
    feats = lambda b: len(b["features"])  # noqa: E731
    stats = lambda b: int(b["current"]["total"])  # noqa: E731
    m = TARGETS["map"]
    return [
        Case("Map", "heatmap z11, 7 days (incidents)", [call("/api/incidents/heatmap", window(7), total)],
             role="operator", goal=m, stat="p50", runs=5),
        Case("Map", "heatmap z11, 1 year", [call("/api/incidents/heatmap", window(365), total)],
             role="operator", goal=m, stat="p50", runs=5),
        Case("Map", "heatmap z11, all time", [call("/api/incidents/heatmap", window(None), total)],
             role="operator", goal=m, stat="p50", runs=5),
        Case("Map", "points (clusters) z11, all time",
             [call("/api/incidents/points", window(None), lambda b: int(b["total"]))],
             role="operator", goal=m, stat="p50", runs=5),
        Case("Map", "statistics, 7 days", [call("/api/incidents/stats", window(7), stats)],
             role="operator", goal=m, stat="p50", runs=5),
        Case("Map", "statistics, 1 year", [call("/api/incidents/stats", window(365), stats)],
             role="operator", goal=m, stat="p50", runs=5),
        Case("Analytics", "KDE 100 m, province, 1 year", [call(
            "/api/incidents/density", {**year, "cell": 100, "bandwidth": 500}, total)],
             role="operator", goal=TARGETS["KDE"], stat="p50", runs=3),
        Case("Analytics", "grid counts, 500 m hexagons, 1 year (cells)", [call(
            "/api/incidents/grid", {**year, "shape": "hexagon", "size": 500}, feats)],
             role="operator", goal=TARGETS["grid"], stat="p50", runs=3),
        Case("Analytics", f"Gi*, {gi_size} m hexagons, 999 permutations, 1 year (cells)", [call(
            "/api/incidents/hotspots", {**year, "shape": "hexagon", "cell_m": gi_size,
                                        "permutations": 999}, feats)],
             role="operator", goal=TARGETS["Gi*"], stat="p50", runs=3),
        Case("Analytics", "emerging hot spots, 1 km hexagons, 52 weeks (cells)", [call(
            "/api/incidents/hotspots/emerging", {"start": iso(end - dt.timedelta(days=364)),
                                                 "end": iso(end), "shape": "hexagon",
                                                 "cell_m": 1000, "bin": "weekly"}, feats)],
             role="operator", goal=TARGETS["emerging"], stat="p50", runs=3),
    ]


def sensor_cases(conn: psycopg.Connection, anon: httpx.Client) -> list[Case]:
    n_ds = conn.execute("SELECT count(*) FROM datastreams WHERE access = 'public'"
                        ).fetchone()[0]  # type: ignore[index]
    rows = conn.execute(
        "SELECT l.datastream_id, l.phenomenon_time FROM datastream_latest l JOIN datastreams d ON"
        " d.id = l.datastream_id WHERE d.access = 'public'"
        " ORDER BY l.observations DESC, l.datastream_id LIMIT 50"
    ).fetchall()

    def sta(path: str, params: dict[str, str]) -> list[dict]:
        out: list[dict] = []
        r = get(anon, "/sta/v1.1" + path, params)
        while True:
            body = r.json()
            out += body["value"]
            if "@iot.nextLink" not in body:
                return out
            r = get(anon, body["@iot.nextLink"])

    def latest() -> int:
        got = sta("/Datastreams", {"$top": "10000", "$select": "id", "$expand":
                                   "Observations($orderby=phenomenonTime desc;$top=1;"
                                   "$select=phenomenonTime,result)"})
        check(len(got) == n_ds, f"latest: {len(got)} datastreams, {n_ds} expected")
        return len(got)

    # The datastreams with the most observations (at full scale, the generator's).
    def day(ds: int, last: dt.datetime) -> Callable[[], int]:
        def call() -> int:
            got = sta(f"/Datastreams({ds})/Observations", {
                "$filter": f"phenomenonTime ge {iso(last - dt.timedelta(hours=24))}",
                "$orderby": "phenomenonTime", "$top": "10000", "$select": "phenomenonTime,result"})
            check(len(got) > 0, f"datastream {ds}: no reading in its last 24 hours")
            return len(got)
        return call

    def chart(ds: int, last: dt.datetime) -> Callable[[], int]:
        def call() -> int:
            body = get(anon, "/api/map/series", {"datastream": ds, "start": iso(
                last - dt.timedelta(days=365)), "end": iso(last + dt.timedelta(seconds=1))}).json()
            n = len(body.get("points") or body.get("series") or body.get("values") or [])
            check(n > 0, f"datastream {ds}: empty chart")
            return n
        return call

    foi = conn.execute("SELECT feature_of_interest_id FROM datastream_latest WHERE datastream_id"
                       " = %s", (rows[0][0],)).fetchone()[0]  # type: ignore[index]

    def by_feature() -> int:
        body = get(anon, f"/sta/v1.1/FeaturesOfInterest({foi})/Observations", {"$top": "100"}).json()
        ids = [o["@iot.id"] for o in body["value"]]
        check(len(ids) == 100 and ids == sorted(ids), f"feature {foi}: not a first page in id order")
        return len(ids)

    return [
        Case("Sensors", "STA: a feature of interest's observations, first page of 100",
             [by_feature], runs=20),
        Case("Sensors", "STA: latest observation of every datastream ($expand)", [latest],
             goal=200, runs=20),
        Case("Sensors", "STA: one datastream's last 24 hours (50 datastreams)",
             [day(ds, t) for ds, t in rows], goal=20),
        Case("Sensors", "chart: one datastream's year by day (50 datastreams)",
             [chart(ds, t) for ds, t in rows], goal=50),
    ]


# --- a run ----------------------------------------------------------------------------------


@contextmanager
def clients(url: str, database_url: str) -> Iterator[dict[str | None, httpx.Client]]:
    with ExitStack() as stack:
        out: dict[str | None, httpx.Client] = {
            None: stack.enter_context(httpx.Client(base_url=url, timeout=600))}
        for role in ROLES:
            _, _, key = stack.enter_context(temp_user(database_url, role))
            out[role] = stack.enter_context(
                httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=600))
        yield out


def run(args: argparse.Namespace) -> Run:
    from map_server import DEFAULT_DB

    database_url = DEFAULT_DB.rsplit("/", 1)[0] + "/" + args.database
    rng = random.Random(18)
    with psycopg.connect(database_url, autocommit=True) as conn:
        sizes = counts(conn)
        print("sizes: " + ", ".join(f"{v:,} {k}" for k, v in sizes.items()), flush=True)
        end, first = conn.execute("SELECT max(reported_at) + interval '1 second', min(reported_at)"
                                  " FROM incidents").fetchone()  # type: ignore[misc]
        result = Run(args.label, args.database, dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                     f"{platform.machine()}, {os.cpu_count()} CPUs, load average "
                     f"{os.getloadavg()[0]:.1f} at the start", sizes)
        with serve(database_url) as url, clients(url, database_url) as http:
            get(http[None], "/healthz")
            settle(conn)
            groups = set(args.only.split(",")) if args.only else None
            cases: list[Case] = []
            builders: list[tuple[str, Callable[[], list[Case]]]] = [
                ("ogc", lambda: ogc_cases(conn, http[None], rng)),
                ("gdal", lambda: [ogrinfo_case(url, sizes["parcels"])]),
                ("tiles", lambda: tile_cases(conn, http[None], http["operator"], end)),
                ("parcels", lambda: parcel_cases(conn, http["land_officer"], rng)),
                ("exports", lambda: [export_case(conn, http["land_officer"])]),
                ("transparency", lambda: transparency_cases(conn, http[None])),
                ("map", lambda: analytics_cases(conn, http["operator"], end, first)),
                ("sensors", lambda: sensor_cases(conn, http[None])),
            ]
            for name, build in builders:
                if groups is None or name in groups:
                    cases += build()
            for case in cases:
                try:
                    res = measure(case, args.runs, args.budget)
                except (AssertionError, httpx.HTTPError) as e:
                    res = Result(case.group, case.name, 0, 0, math.nan, math.nan, case.goal,
                                 case.stat, str(e)[:300])
                    print(f"{case.group:12} {case.name:62} FAILED: {res.error}", flush=True)
                    result.results.append(res)
                    continue
                result.results.append(res)
                print(f"{res.group:12} {res.name:62} p50 {res.p50:9.1f}  p99 {res.p99:9.1f} ms"
                      f"  ({res.runs} runs, {res.rows:,})", flush=True)
            if groups is None or "dashboard" in groups:
                times, top = dashboard_render(url, database_url, 3)
                result.results.append(Result(
                    "Dashboard", "leader's first complete render in Chromium", 0, len(times),
                    statistics.median(times), max(times), TARGETS["dashboard"], "p50"))
                print(f"dashboard {statistics.median(times):.0f} ms; slowest calls: "
                      + ", ".join(f"{k} {v:.0f} ms" for v, k in top), flush=True)
    return result


# --- the table ------------------------------------------------------------------------------


def fmt(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def table(runs: list[Run]) -> str:
    by = [{(r.group, r.name): r for r in run.results} for run in runs]
    keys: list[tuple[str, str]] = []
    for b in by:
        keys += [k for k in b if k not in keys]
    head = "| | request | goal | " + " | ".join(
        f"{run.label}: rows | p50 ms | p99 ms" for run in runs) + " |"
    lines = [head, "|---|---|---|" + "---:|---:|---:|" * len(runs)]
    for k in keys:
        cells = []
        goal = ""
        for b in by:
            r = b.get(k)
            if r is None:
                cells.append(" | | ")
                continue
            if r.error:
                cells.append(f"✗ {r.error[:80]} | | ")
                continue
            if r.goal is not None:
                goal = f"{r.stat} < {r.goal:,.0f}"
            ok = "" if r.goal is None else (" ✓" if getattr(r, r.stat) < r.goal else " ✗")
            p50 = fmt(r.p50) + (ok if r.stat == "p50" else "")
            p99 = fmt(r.p99) + (ok if r.stat == "p99" else "")
            cells.append(f"{r.rows:,} | {p50} | {p99}")
        lines.append(f"| {k[0]} | {k[1]} | {goal} | " + " | ".join(cells) + " |")
    sizes = "\n".join(f"- **{run.label}** (`{run.database}`, {run.started}, {run.machine}): "
                      + ", ".join(f"{v:,} {k}" for k, v in run.sizes.items()) for run in runs)
    return f"{sizes}\n\n" + "\n".join(lines)


def load(label: str) -> Run:
    doc = json.loads((RESULTS / f"{label}.json").read_text())
    doc["results"] = [Result(**r) for r in doc["results"]]
    return Run(**doc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database", help="the database's name (same server as GEOIOC_DATABASE_URL)")
    ap.add_argument("--label", help="the run's name in the table, e.g. sample or full")
    ap.add_argument("--runs", type=int, default=100, help="calls per case, at most")
    ap.add_argument("--budget", type=float, default=20.0, help="seconds per case (at least 3 calls)")
    ap.add_argument("--only", help="comma-separated groups: ogc,gdal,tiles,parcels,exports,"
                    "transparency,map,sensors,dashboard")
    ap.add_argument("--table", action="store_true", help="write the kept runs into bench/README.md")
    ap.add_argument("--labels", default="sample,full")
    args = ap.parse_args()
    if args.table:
        runs = [load(label) for label in args.labels.split(",") if (RESULTS / f"{label}.json").exists()]
        write_section("full-scale", table(runs))
        print(f"{README}: bench-full-scale written")
        return
    if not (args.database and args.label):
        ap.error("--database and --label (or --table)")
    result = run(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{args.label}.json"
    if args.only and path.exists():  # a partial run replaces only its own cases
        old = load(args.label)
        mine = {(r.group, r.name) for r in result.results}
        result.results = [r for r in old.results if (r.group, r.name) not in mine] + result.results
        result.started = f"{old.started.split(';')[0]}; {args.only} again {result.started}"
    path.write_text(json.dumps(asdict(result), ensure_ascii=False, indent=1))
    print(table([result]))


if __name__ == "__main__":
    main()
