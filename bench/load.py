"""Load held: N concurrent map users against one `geoioc serve` for a fixed time, loopback only.

Each simulated user does what the command map does while someone pans and zooms: vector tiles of
land use, parcels and roads at mixed zooms around a random place in the province, point items
in the view, a click (identify), the incident heatmap and points for the view, and now and then a
search. Every answer is checked (status 200 and a body of the right kind); the run prints p50/p99
per request kind and the number of errors, and writes them into bench/README.md.

    .venv/bin/python bench/load.py                       # 50 users, 60 s, database geoioc_bench
    .venv/bin/python bench/load.py --users 20 --seconds 20 --no-readme

The database is prepared like bench/ogc.py's (sample at --scale, default 2.5). Signed-in users
(an operator's API key) so the incident layers are in play; the anonymous rate limit is off.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from benchdb import db_url, prepare_database  # noqa: E402
from map_server import serve, temp_user, write_section  # noqa: E402

# The sample province (lon/lat) and where its communes are dense enough to be interesting.
BBOX = (105.95, 21.0, 106.25, 21.25)
# Seconds a person looks at the map between two pans or zooms.
THINK = (1.0, 4.0)
SEARCHES = ("bong hoa", "12/34", "21.18, 106.07", "X=2342986 Y=558990", "lien dinh", "xa")


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def view(lon: float, lat: float, z: int) -> str:
    half = 360 / 2 ** z * 2  # about 4 tiles across
    return f"{lon - half:.5f},{lat - half / 2:.5f},{lon + half:.5f},{lat + half / 2:.5f}"


def requests_for_view(rng: random.Random) -> list[tuple[str, str, str]]:
    """(kind, path, expected content-type prefix) of one pan/zoom step."""
    lon = rng.uniform(BBOX[0], BBOX[2])
    lat = rng.uniform(BBOX[1], BBOX[3])
    z = rng.choice((11, 12, 13, 14, 15, 16))
    x, y = tile_xy(lon, lat, z)
    box = view(lon, lat, z)
    out = [
        ("tile land use", f"/ogc/collections/land_use_zones/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt",
         "application/vnd.mapbox-vector-tile"),
        ("tile roads", f"/ogc/collections/roads/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt",
         "application/vnd.mapbox-vector-tile"),
        ("items tourism", f"/ogc/collections/tourism_places/items?bbox={box}&limit=500&f=json",
         "application/geo+json"),
        ("identify", f"/api/map/identify?lon={lon:.6f}&lat={lat:.6f}&z={z}", "application/geo+json"),
        ("heatmap", f"/api/incidents/heatmap?bbox={box}&z={z}&start=2026-01-01&end=2026-12-31",
         "application/"),
        ("incident points", f"/api/incidents/points?bbox={box}&z={z}&start=2026-06-01&end=2026-12-31",
         "application/"),
    ]
    if z >= 15:
        out.append(("tile parcels", f"/ogc/collections/parcels/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt",
                    "application/vnd.mapbox-vector-tile"))
    if rng.random() < 0.3:
        out.append(("search", f"/api/search?q={rng.choice(SEARCHES)}", "application/json"))
    return out


async def user(client: httpx.AsyncClient, seed: int, until: float,
               times: dict[str, list[float]], errors: dict[str, list[str]]) -> None:
    rng = random.Random(seed)
    while time.monotonic() < until:
        # The map asks for a view's pieces at once, as the browser does (up to 6 at a time).
        batch = requests_for_view(rng)
        await asyncio.gather(*(one(client, kind, path, ctype, times, errors)
                               for kind, path, ctype in batch))
        await asyncio.sleep(rng.uniform(THINK[0], THINK[1]))  # a person looks at the map


async def one(client: httpx.AsyncClient, kind: str, path: str, ctype: str,
              times: dict[str, list[float]], errors: dict[str, list[str]]) -> None:
    t0 = time.perf_counter()
    try:
        r = await client.get(path)
        await r.aread()
    except httpx.HTTPError as e:
        errors[kind].append(f"{type(e).__name__} {path}")
        return
    elapsed = (time.perf_counter() - t0) * 1000
    if r.status_code == 204 and kind.startswith("tile"):
        times[kind].append(elapsed)  # an empty tile is a valid answer
        return
    if r.status_code != 200 or not r.headers.get("content-type", "").startswith(ctype):
        errors[kind].append(f"{r.status_code} {path} {r.text[:120]!r}")
        return
    times[kind].append(elapsed)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def run(url: str, key: str, users: int, seconds: float) -> tuple[dict, dict, float]:
    times: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, list[str]] = defaultdict(list)
    limits = httpx.Limits(max_connections=users * 6, max_keepalive_connections=users * 6)
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=30,
                                 limits=limits) as client:
        # warm-up: one view per user, not counted
        warm_t: dict[str, list[float]] = defaultdict(list)
        warm_e: dict[str, list[str]] = defaultdict(list)
        await asyncio.gather(*(user(client, 10_000 + i, time.monotonic() + 0.1, warm_t, warm_e)
                               for i in range(min(users, 10))))
        t0 = time.monotonic()
        await asyncio.gather(*(user(client, i, t0 + seconds, times, errors) for i in range(users)))
        wall = time.monotonic() - t0
    return times, errors, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database", default="geoioc_bench")
    ap.add_argument("--scale", type=float, default=2.5)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()
    if args.seconds > 600 or args.users > 500:
        raise SystemExit("bench/load.py: at most 500 users for 600 s (a bounded run)")
    prepare_database(args.database, args.scale)
    url_db = db_url(args.database)
    with temp_user(url_db, "operator") as (_, _, key), serve(url_db) as url:
        times, errors, wall = asyncio.run(run(url, key, args.users, args.seconds))
    total = sum(len(v) for v in times.values())
    n_err = sum(len(v) for v in errors.values())
    lines = [f"`bench/load.py` run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
             f"{args.users} concurrent map users for {args.seconds:g} s against one `geoioc serve` "
             f"worker, database `{args.database}` (sample scale {args.scale:g}), loopback; "
             f"{total:,} requests ({total / wall:.0f}/s), **{n_err} errors**.", "",
             "| request kind | requests | p50 ms | p99 ms | max ms | errors |",
             "|---|---:|---:|---:|---:|---:|"]
    for kind in sorted(set(times) | set(errors)):
        v = times.get(kind, [])
        row = (f"| {kind} | {len(v):,} | {statistics.median(v):.1f} | {percentile(v, 99):.1f} | "
               f"{max(v):.1f} | {len(errors.get(kind, []))} |" if v else
               f"| {kind} | 0 | – | – | – | {len(errors.get(kind, []))} |")
        lines.append(row)
    report = "\n".join(lines)
    print(report)
    for kind, errs in errors.items():
        for e in errs[:5]:
            print(f"error ({kind}): {e}", file=sys.stderr)
    if not args.no_readme:
        write_section("load", report)
    if n_err:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
