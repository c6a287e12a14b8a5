"""Issue 17's targets at scale, end to end through the API, each beside the naive path a user
would write (read the points into geopandas and compute in Python), as a ratio.

    PYTHONPATH=. .venv/bin/python bench/analytics.py --database postgresql://.../bench_db
    .venv/bin/python bench/analytics.py --repeat 3 --no-readme --no-browser

Against a real `geoioc serve` (bench/map_server.py) over HTTP, on the database given (build one
with `geoioc sample load --scale 20` for about 1,000,000 incidents). Windows end at the sample's
last incident. Times are the median of --repeat full requests (body read), ms.

- map calls (operator: security events hidden by the row rules), each window (7 days, 30 days,
  1 year, all): /api/incidents/heatmap, /points and /stats at z 11. Naive: the window's points
  through geopandas.read_postgis, then the same aggregate in pandas (Mercator cells; clusters of
  64 px; counts by category / severity / status and the previous window).
- incident vector tiles with `datetime` (the window), z10 and z14 over the densest part of the
  province. Naive: the tile's points of the window through geopandas, encoded with
  mapbox_vector_tile when it is installed (else only read: a lower bound).
- KDE, 100 m cells, 500 m quartic kernel, province-wide (/api/incidents/density, the map
  overlay PNG included); grid counts on 500 m hexagons (/api/incidents/grid, GeoJSON). Naive as
  bench/density.py (histogram2d + the same FFT convolution; sjoin with ST_HexagonGrid cells).
- Gi* on about 10,000 hexagons with 999 permutations (/api/incidents/hotspots, 1 year). Naive:
  points and cells in geopandas, sjoin, libpysal Graph.build_contiguity, esda.G_Local with 999
  permutations, BH by hand.
- emerging hot spots over 52 weekly bins (/api/incidents/hotspots/emerging, 1 km hexagons).
  Naive: the same cube by sjoin + groupby, esda.G_Local per weekly slice, scipy's Kendall tau
  per cell.
- the dashboard's first complete render: a leader signs in in Chromium (the page's own
  requests), until every panel has drawn (`#db-updated` written, nothing busy). Naive: what its
  charts need computed from the points in pandas (30 days by category and day, hour × weekday,
  per commune with sjoin; a year by category and week).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import httpx
import numpy as np
import pandas as pd
import psycopg
from map_server import DEFAULT_DB, serve, temp_user, write_section

# geopandas.read_postgis on a psycopg connection (not SQLAlchemy) warns on every call.
warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", message=".*dayofweek.*")
SRID = 9209
R = 6378137.0
# One screen pixel at zoom 11 in Web Mercator metres (the map calls' z).
CELL = 2 * 20037508.342789244 / (256 * 2 ** 11)
MAP_WINDOWS = (("7 days", 7), ("30 days", 30), ("1 year", 365), ("all", None))
# The naive tile encodes its points with mapbox_vector_tile (pure Python) up to this many.
NAIVE_MVT_MAX = 50_000
TARGETS = {"map": 300.0, "tile z10": 200.0, "KDE": 1000.0, "grid": 500.0, "Gi*": 3000.0,
           "emerging": 10000.0, "dashboard": 2000.0}


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), result


def points(conn: psycopg.Connection, start: dt.datetime, end: dt.datetime,
           cols: str = "id, category, severity, status, reported_at") -> gpd.GeoDataFrame:
    """The naive user's first line: every point of the window into a GeoDataFrame."""
    return gpd.read_postgis(
        f"SELECT {cols}, geom FROM incidents WHERE reported_at >= %(s)s AND reported_at < %(e)s"  # noqa: S608
        " AND category <> 'security_event'", conn, geom_col="geom", params={"s": start, "e": end})


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    return (int((lon + 180) / 360 * n),
            int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n))


def tile_lonlat_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    n = 1 << z

    def lat(py: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * py / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rows: list[tuple[str, str, int, float, float | None, str, float | None]] = []

    def naive(self, fn: Callable[[], Any], repeat: int) -> tuple[float | None, Any]:
        """The naive path timed, or (None, None) with --no-naive (at 10,000,000 incidents a
        window's points do not fit in geopandas on this machine)."""
        return (None, None) if self.args.no_naive else timed(fn, repeat)

    def add(self, what: str, window: str, n: int, ours: float, naive: float | None,
            check: str = "", target: float | None = None) -> None:
        self.rows.append((what, window, n, ours, naive, check, target))
        ratio = f"{naive / ours:6.1f}×" if naive else "   -  "
        goal = "" if target is None else (" ✓ target" if ours < target else f" ✗ target {target:.0f}")
        print(f"{what:34} {window:8} {n:9,} ours {ours:8.1f} ms | naive "
              f"{(naive or 0):9.1f} ms | {ratio} {check}{goal}", flush=True)


def map_calls(b: Bench, http: httpx.Client, conn: psycopg.Connection, end: dt.datetime,
              first: dt.datetime) -> None:
    for label, days in MAP_WINDOWS:
        start = end - dt.timedelta(days=days) if days else first
        params = {"start": iso(start), "end": iso(end), "z": 11}
        got: dict[str, Any] = {}
        for name in ("heatmap", "points", "stats"):
            def call(name: str = name, params: dict = params) -> Any:
                r = http.get(f"/api/incidents/{name}", params=params)
                r.raise_for_status()
                return r.json()
            ms, got[name] = timed(call, b.args.repeat)
            got[name + "_ms"] = ms
        total = got["heatmap"]["total"]

        def naive_heatmap(start: dt.datetime = start) -> int:
            p = points(conn, start, end, "id")
            lon, lat = np.radians(p.geometry.x.to_numpy()), np.radians(p.geometry.y.to_numpy())
            mx, my = R * lon, R * np.log(np.tan(np.pi / 4 + lat / 2))
            g = pd.DataFrame({"gx": np.floor(mx / (CELL * 8)), "gy": np.floor(my / (CELL * 8))})
            return int(g.groupby(["gx", "gy"]).size().sum())

        def naive_points(start: dt.datetime = start) -> int:
            p = points(conn, start, end, "id, category, severity")
            if len(p) <= 4000:
                return len(p)
            lon, lat = np.radians(p.geometry.x.to_numpy()), np.radians(p.geometry.y.to_numpy())
            p["gx"] = np.floor(R * lon / (CELL * 64))
            p["gy"] = np.floor(R * np.log(np.tan(np.pi / 4 + lat / 2)) / (CELL * 64))
            c = p.groupby(["gx", "gy"]).agg(n=("id", "size"), sev=("severity", "max"),
                                            cat=("category", lambda s: s.mode().iloc[0]))
            return int(c["n"].sum())

        def naive_stats(start: dt.datetime = start) -> int:
            p = points(conn, start - (end - start), end)
            cur = p[p.reported_at >= start]
            for df in (cur, p[p.reported_at < start]):
                df.groupby("category").size(), df.groupby("severity").size()
                df.groupby("status").size()
                df.groupby(df.reported_at.dt.floor("D")).size()
            return len(cur)

        for name, fn in (("heatmap", naive_heatmap), ("points", naive_points),
                         ("stats", naive_stats)):
            ms, n = b.naive(fn, b.args.repeat if days and days <= 30 else 1)
            ours_total = {"heatmap": total, "points": got["points"]["total"],
                          "stats": got["stats"]["current"]["total"] if "current" in got["stats"]
                          else total}[name]
            b.add(f"map {name} (z 11)", label, total, got[name + "_ms"], ms,
                  "" if n is None else "✓" if n == ours_total else f"✗ {n} ≠ {ours_total}",
                  TARGETS["map"])


def tiles(b: Bench, http: httpx.Client, conn: psycopg.Connection, end: dt.datetime) -> None:
    lon, lat = conn.execute(
        "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Collect(geom)) AS c FROM ("
        "SELECT geom FROM incidents ORDER BY id LIMIT 20000) s) s").fetchone()
    try:
        import mapbox_vector_tile as mvt
    except ImportError:
        mvt = None
    for label, days in (("30 days", 30), ("1 year", 365), ("none", None)):
        start = end - dt.timedelta(days=days) if days else None
        for z in (10, 14):
            x, y = tile_of(lon, lat, z)
            runs = iter(range(1_000_000))

            # A fresh tile each time (the in-process tile cache would answer a repeat): the
            # window's end moves by a microsecond per run; "none" is an open start.
            def ours(x: int = x, y: int = y, z: int = z, start: dt.datetime | None = start,
                     runs: Any = runs) -> int:
                stop = end + dt.timedelta(microseconds=next(runs))
                when = f"{iso(start) if start else '..'}/{iso(stop)}"
                r = http.get(f"/ogc/collections/incidents/tiles/WebMercatorQuad/{z}/{y}/{x}",
                             params={"datetime": when})
                assert r.status_code in (200, 204), r.text[:200]
                return len(r.content)

            ms, size = timed(ours, b.args.repeat)
            box = tile_lonlat_bounds(z, x, y)

            def naive(box: tuple = box, start: dt.datetime | None = start) -> int:
                p = gpd.read_postgis(
                    "SELECT id, category, severity, status, geom FROM incidents"
                    " WHERE geom && ST_MakeEnvelope(%(a)s, %(b)s, %(c)s, %(d)s, 4326)"
                    " AND reported_at >= %(s)s AND reported_at < %(e)s"
                    " AND category <> 'security_event'", conn, geom_col="geom",
                    params={"a": box[0], "b": box[1], "c": box[2], "d": box[3],
                            "s": start or dt.datetime(1900, 1, 1, tzinfo=dt.UTC), "e": end})
                if mvt is not None and len(p) <= NAIVE_MVT_MAX:
                    feats = [{"geometry": g.wkt, "properties": {"category": c, "severity": s}}
                             for g, c, s in zip(p.geometry, p.category, p.severity, strict=True)]
                    return len(mvt.encode([{"name": "incidents", "features": feats}],
                                          default_options={"quantize_bounds": box}))
                return -len(p)

            ms_naive, got = b.naive(naive, 1)
            note = "" if got is None or got >= 0 else "(naive: points read, not encoded: a lower bound)"
            b.add(f"incident tile z{z} ({size / 1024:.0f} KB)", label, 0, ms, ms_naive, note,
                  TARGETS["tile z10"] if z == 10 else None)


def density(b: Bench, http: httpx.Client, conn: psycopg.Connection, end: dt.datetime) -> None:
    from scipy.signal import fftconvolve

    from gis.analysis import density as D

    start = end - dt.timedelta(days=365)
    params = {"start": iso(start), "end": iso(end)}

    def ours_kde() -> dict:
        r = http.get("/api/incidents/density", params={**params, "cell": 100, "bandwidth": 500})
        r.raise_for_status()
        return r.json()

    ms, body = timed(ours_kde, b.args.repeat)
    g = body["grid"]

    def naive_kde() -> float:
        p = points(conn, start, end, "id").to_crs(SRID)
        x1, y1, x2, y2 = g["bounds"]
        h, _, _ = np.histogram2d(p.geometry.y, p.geometry.x, bins=(g["rows"], g["columns"]),
                                 range=[[y1, y2], [x1, x2]])
        s = fftconvolve(h, D.kernel("quartic", 500, 100), mode="same") / (0.1 * 0.1)
        return float(s.sum() * 0.01)

    ms_naive, mass = b.naive(naive_kde, 1)
    b.add("KDE 100 m, province", "1 year", body["total"], ms, ms_naive,
          "" if mass is None
          else "✓" if abs(mass - body["mass"]) <= 0.01 * max(1, body["mass"]) else "✗ mass",
          TARGETS["KDE"])

    def ours_grid() -> dict:
        r = http.get("/api/incidents/grid", params={**params, "shape": "hexagon", "size": 500})
        r.raise_for_status()
        return r.json()

    ms, body = timed(ours_grid, b.args.repeat)

    def naive_grid() -> int:
        p = points(conn, start, end, "id").to_crs(SRID)
        hexes = gpd.read_postgis(
            "SELECT i, j, geom FROM ST_HexagonGrid(500, (SELECT ST_Transform(geom, 9209)"
            " FROM admin_units WHERE level = 'province' AND valid_to IS NULL))",
            conn, geom_col="geom", crs=SRID)
        joined = gpd.sjoin(p, hexes, predicate="within")
        return int(joined.groupby(["i", "j"]).size().sum())

    ms_naive, n = b.naive(naive_grid, 1)
    b.add("grid counts, 500 m hexagons", "1 year", body["total"], ms, ms_naive,
          "" if n is None else "✓" if n == body["total"] else f"✗ {n}", TARGETS["grid"])


def hex_cells_naive(conn: psycopg.Connection, size: float) -> gpd.GeoDataFrame:
    return gpd.read_postgis(
        "SELECT i, j, geom FROM ST_HexagonGrid(%(s)s, (SELECT ST_Transform(geom, 9209)"
        " FROM admin_units WHERE level = 'province' AND valid_to IS NULL)) h"
        " WHERE ST_Intersects(geom, (SELECT ST_Transform(geom, 9209) FROM admin_units"
        " WHERE level = 'province' AND valid_to IS NULL))",
        conn, geom_col="geom", crs=SRID, params={"s": size})


def hotspots(b: Bench, http: httpx.Client, conn: psycopg.Connection, end: dt.datetime) -> None:
    import warnings

    import esda
    from libpysal.graph import Graph
    from scipy import stats

    area = conn.execute("SELECT ST_Area(ST_Transform(geom, 9209)) FROM admin_units"
                        " WHERE level = 'province' AND valid_to IS NULL").fetchone()[0]
    size = round(math.sqrt(area / (10_000 / 1.04) / (1.5 * math.sqrt(3))))
    start = end - dt.timedelta(days=365)
    params = {"start": iso(start), "end": iso(end), "shape": "hexagon"}

    def ours_gi() -> dict:
        r = http.get("/api/incidents/hotspots", params={**params, "cell_m": size,
                                                        "permutations": 999})
        r.raise_for_status()
        return r.json()

    ms, body = timed(ours_gi, b.args.repeat)
    n_cells = len(body["features"])
    hot = body.get("summary") or body.get("meta", {}).get("summary") or {}

    def naive_gi() -> int:
        p = points(conn, start, end, "id").to_crs(SRID)
        cells = hex_cells_naive(conn, size)
        joined = gpd.sjoin(p, cells, predicate="within")
        counts = joined.groupby("index_right").size().reindex(cells.index, fill_value=0)
        g = Graph.build_contiguity(cells, rook=False).assign_self_weight(1.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gi = esda.G_Local(counts.to_numpy(float), g, transform="B", star=True,
                              permutations=999, seed=1, n_jobs=1)
        q = stats.false_discovery_control(gi.p_sim)
        return int(((q < 0.01) & (gi.Zs > 0)).sum())

    ms_naive, n_hot = b.naive(naive_gi, 1)
    b.add(f"Gi* {n_cells:,} cells ({size} m), 999 perm.", "1 year", n_cells, ms, ms_naive,
          f"hot 99 %: ours {hot.get('hot_99', '?')}, naive {n_hot}", TARGETS["Gi*"])

    start = end - dt.timedelta(days=52 * 7)
    params = {"start": iso(start), "end": iso(end), "shape": "hexagon", "cell_m": 1000,
              "bin": "weekly"}

    def ours_em() -> dict:
        r = http.get("/api/incidents/hotspots/emerging", params=params)
        r.raise_for_status()
        return r.json()

    ms, body = timed(ours_em, b.args.repeat)
    n_cells = len(body["features"])

    def naive_em() -> int:
        p = points(conn, start, end, "reported_at").to_crs(SRID)
        cells = hex_cells_naive(conn, 1000)
        joined = gpd.sjoin(p, cells, predicate="within")
        week = ((joined.reported_at - start).dt.days // 7).clip(0, 51)
        cube = joined.groupby(["index_right", week]).size().unstack(fill_value=0)
        cube = cube.reindex(index=cells.index, columns=range(52), fill_value=0)
        g = Graph.build_contiguity(cells, rook=False).assign_self_weight(1.0)
        zs = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for t in range(52):
                y = cube[t].to_numpy(float)
                zs.append(esda.G_Local(y, g, transform="B", star=True, permutations=0).Zs
                          if y.std() > 0 else np.zeros(len(y)))
        z = np.column_stack(zs)
        trend = [stats.kendalltau(np.arange(52), row).statistic for row in z]
        return len(trend)

    ms_naive, _ = b.naive(naive_em, 1)
    b.add(f"emerging, {n_cells:,} cells × 52 weeks", "52 weeks", n_cells, ms, ms_naive, "",
          TARGETS["emerging"])


def dashboard_render(url: str, database: str, repeat: int) -> tuple[list[float], list]:
    """A leader's first complete render of /dashboard in Chromium, REPEAT times: the ms from the
    sign-in click until every panel has drawn, and the four slowest /api calls (ms, path)."""
    from playwright.sync_api import sync_playwright

    with temp_user(database, "leader") as (user, password, _), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        times = []
        slowest: dict[str, float] = {}
        for _ in range(repeat):
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            started: dict[str, float] = {}
            page.on("request", lambda r, s=started: s.__setitem__(r.url, time.perf_counter()))
            page.on("requestfinished", lambda r, s=started: slowest.__setitem__(
                r.url.split("?")[0].replace(url, ""),
                max(slowest.get(r.url.split("?")[0].replace(url, ""), 0),
                    (time.perf_counter() - s.get(r.url, time.perf_counter())) * 1000)))
            page.goto(url + "/dashboard")
            page.click("#db-signin-open", timeout=60_000)  # a guest sees the public dashboard first
            page.wait_for_selector("#db-signin:not([hidden])", timeout=60_000)
            page.fill("#db-username", user)
            page.fill("#db-password", password)
            t0 = time.perf_counter()
            page.click("#db-signin-submit")
            page.wait_for_selector("#db-updated:not(:empty)", state="attached", timeout=120_000)
            page.wait_for_selector('body[data-busy="0"]', state="attached", timeout=120_000)
            times.append((time.perf_counter() - t0) * 1000)
            page.close()
        browser.close()
    top = sorted(((v, k) for k, v in slowest.items() if k.startswith("/api")), reverse=True)[:4]
    return times, top


def dashboard(b: Bench, url: str, conn: psycopg.Connection, database: str,
              end: dt.datetime) -> None:
    times, top = dashboard_render(url, database, b.args.repeat)
    ms = statistics.median(times)
    print("  slowest dashboard calls: " + ", ".join(f"{k} {v:.0f} ms" for v, k in top))
    start = end - dt.timedelta(days=30)

    def naive() -> int:
        p = points(conn, start, end)
        p.groupby([p.reported_at.dt.floor("D"), "category"]).size()
        local = p.reported_at.dt.tz_convert("Asia/Ho_Chi_Minh")
        p.groupby([local.dt.day_of_week, local.dt.hour]).size()
        units = gpd.read_postgis("SELECT code, geom FROM admin_units WHERE level = 'commune'"
                                 " AND valid_to IS NULL", conn, geom_col="geom")
        gpd.sjoin(p, units, predicate="covered_by").groupby("code").size()
        y = points(conn, end - dt.timedelta(days=365), end, "id, category, reported_at")
        y.groupby([y.reported_at.dt.to_period("W"), "category"]).size()
        return len(p)

    ms_naive, _ = b.naive(naive, 1)
    b.add("dashboard first complete render", "page", 0, ms, ms_naive,
          "(naive: its charts' data only)", TARGETS["dashboard"])
    b.dashboard_top = top  # type: ignore[attr-defined]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--database", default=DEFAULT_DB)
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--no-naive", action="store_true",
                    help="skip the naive paths (at 10,000,000 incidents they do not fit in memory)")
    ap.add_argument("--only", default="map,tiles,density,hotspots,dashboard")
    args = ap.parse_args()
    only = set(args.only.split(","))
    b = Bench(args)
    with psycopg.connect(args.database, autocommit=True) as conn:
        end, first, total = conn.execute(
            "SELECT max(reported_at) + interval '1 second', min(reported_at), count(*)"
            " FROM incidents").fetchone()
        with serve(args.database) as url, temp_user(args.database, "operator") as (_, _, key), \
                httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=300) as http:
            http.get("/api/incidents/stats").raise_for_status()  # warm the server's imports
            if "map" in only:
                map_calls(b, http, conn, end, first)
            if "tiles" in only:
                tiles(b, http, conn, end)
            if "density" in only:
                density(b, http, conn, end)
            if "hotspots" in only:
                hotspots(b, http, conn, end)
            if "dashboard" in only and not args.no_browser:
                dashboard(b, url, conn, args.database, end)
    if args.no_readme:
        return
    header = ("| what | window | incidents / cells | ours ms | naive ms | faster | target | check |\n"
              + "|---" * 8 + "|")
    lines = []
    for what, window, n, ours, naive, check, target in b.rows:
        goal = "" if target is None else (f"< {target:,.0f} ✓" if ours < target
                                          else f"< {target:,.0f} ✗")
        lines.append(f"| {what} | {window} | {n:,} | **{ours:,.0f}** | "
                     f"{'-' if naive is None else f'{naive:,.0f}'} | "
                     f"{'-' if not naive else f'{naive / ours:,.1f}×'} | {goal} | {check} |")
    write_section("analytics", f"""### `bench/analytics.py`: issue 17's targets through the API

{total:,} incidents, {platform.machine()}, {dt.date.today().isoformat()}, a real `geoioc serve`
over HTTP, median of {args.repeat} (the naive paths of windows over 30 days run once). Map calls and tiles as
an operator (security events hidden), the dashboard as a leader in Chromium. "Naive" = the
window's points through geopandas.read_postgis and the same result computed in Python
(see the script's docstring for each).

{header}
{chr(10).join(lines)}""")


if __name__ == "__main__":
    main()
