"""Parcel inspection under load: search by number and by point, the PDF extract.

    .venv/bin/python bench/parcels.py                    # scale 20 (~800,000 parcels), README updated
    .venv/bin/python bench/parcels.py --prepare-only     # just create/load the database
    .venv/bin/python bench/parcels.py --scale 1 --database geoioc_dev --no-readme   # smoke run

Why: the issue asks for p99 under 50 ms for searches by number and by point and under 1 s for
a PDF extract at --scale 20; those figures only mean something next to what a user would do
without this feature, measured the same way. So each case runs through the real HTTP server
(`geoioc serve`, one worker, on a free port, the anonymous rate limit off) with one client
(sequential requests on a kept-alive connection: the latency one officer sees), next to the
naive alternative: the OGC API items endpoint with a property filter (number) or a small bbox
(point; the client still has to test which candidate contains the point).

The database (default `geoioc_bench20`) is created like scripts/setup.sh's create_database
(superuser over `psql -h 127.0.0.1 -U postgres`), migrated, and loaded with
`geoioc sample load --scale S` unless sample_info already says scale S. Every response is
checked (status, the expected parcel in the answer, a PDF that starts with %PDF); a case with a
wrong answer is marked ✗. Figures go to bench/README.md between the "bench-parcels" markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import math
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import orjson
import psycopg
from benchdb import Server, db_url, prepare_database

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "bench" / "README.md"
START, END = "<!-- bench-parcels:start -->", "<!-- bench-parcels:end -->"


def log(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


@dataclass
class Case:
    name: str
    requests: list[tuple[str, Callable[[int, bytes], bool]]]
    times: list[float] = field(default_factory=list)
    failures: int = 0
    first_failure: str = ""

    def run(self, port: int, warmup: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for i, (path, check) in enumerate(self.requests):
            t0 = time.perf_counter()
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            elapsed = time.perf_counter() - t0
            if not check(r.status, body):
                self.failures += 1
                self.first_failure = self.first_failure or f"{path} -> {r.status} {body[:200]!r}"
            if i >= warmup:
                self.times.append(elapsed)
        conn.close()

    def pct(self, p: float) -> float:
        s = sorted(self.times)
        return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))] * 1000

    @property
    def ok(self) -> bool:
        return self.failures == 0 and bool(self.times)


def has_id(pid: int) -> Callable[[int, bytes], bool]:
    def check(status: int, body: bytes) -> bool:
        if status != 200:
            return False
        doc = orjson.loads(body)
        items = doc.get("results") or doc.get("features") or []
        return any(x.get("id") == pid for x in items)

    return check


def is_pdf(status: int, body: bytes) -> bool:
    return status == 200 and body.startswith(b"%PDF-") and len(body) > 5000


def sample(database: str, n: int, seed: int) -> list[dict]:
    """N parcels spread over the province (BERNOULLI sample, repeatable), with a point inside."""
    with psycopg.connect(db_url(database)) as conn:
        total = conn.execute("SELECT count(*) FROM parcels").fetchone()[0]
        pct = min(100.0, 100.0 * n * 3 / max(total, 1))
        rows = conn.execute(
            "SELECT id, commune_code, old_commune_code, sheet_no, parcel_no,"
            " ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom))"
            " FROM parcels TABLESAMPLE BERNOULLI (%s) REPEATABLE (%s)", (pct, seed)).fetchall()
    random.Random(seed).shuffle(rows)
    keys = ("id", "commune", "old", "sheet", "parcel", "lon", "lat")
    return [dict(zip(keys, r, strict=True)) for r in rows[:n]], total


def build_cases(parcels: list[dict], pdf_count: int) -> list[Case]:
    eps = 0.00002  # ~2 m: a click's tolerance for the naive bbox query
    number, naive_number, point, naive_point, pdfs, html, detail = ([] for _ in range(7))
    for p in parcels:
        code = p["old"] or p["commune"]  # the key printed on the parcel's certificate
        number.append((f"/api/parcels/search?commune={code}&sheet={p['sheet']}&parcel={p['parcel']}",
                       has_id(p["id"])))
        detail.append((f"/api/parcels/by-number/{code}/{p['sheet']}/{p['parcel']}", lambda s, b: s == 200))
        filt = f"commune_code={p['commune']}&sheet_no={p['sheet']}&parcel_no={p['parcel']}"
        if p["old"]:
            filt += f"&old_commune_code={p['old']}"
        naive_number.append((f"/ogc/collections/parcels/items?{filt}&f=json", has_id(p["id"])))
        point.append((f"/api/parcels/search?point={p['lon']!r},{p['lat']!r}", has_id(p["id"])))
        bbox = f"{p['lon'] - eps!r},{p['lat'] - eps!r},{p['lon'] + eps!r},{p['lat'] + eps!r}"
        naive_point.append((f"/ogc/collections/parcels/items?bbox={quote(bbox)}&f=json", has_id(p["id"])))
    for p in parcels[:pdf_count]:
        pdfs.append((f"/parcels/{p['id']}/extract.pdf", is_pdf))
        html.append((f"/parcels/{p['id']}/extract.html", lambda s, b: s == 200 and b"<svg" in b))
    return [
        Case("search by number: GET /api/parcels/search?commune&sheet&parcel", number),
        Case("  naive: OGC items with property filters commune_code, sheet_no, parcel_no", naive_number),
        Case("search by point: GET /api/parcels/search?point=lon,lat", point),
        Case("  naive: OGC items with a ±2 m bbox (candidates, client must test containment)", naive_point),
        Case("parcel file: GET /api/parcels/by-number/{commune}/{sheet}/{parcel}", detail),
        Case("extract PDF: GET /parcels/{id}/extract.pdf", pdfs),
        Case("extract HTML: GET /parcels/{id}/extract.html", html),
    ]


def table(cases: list[Case]) -> str:
    lines = ["| case | requests | p50 ms | p95 ms | p99 ms | max ms | ok |",
             "|---|---:|---:|---:|---:|---:|:-:|"]
    for c in cases:
        if not c.times:
            continue
        lines.append(f"| {c.name.strip()} | {len(c.times)} | {c.pct(50):.1f} | {c.pct(95):.1f} | "
                     f"{c.pct(99):.1f} | {max(c.times) * 1000:.1f} | {'✓' if c.ok else '✗'} |")
    return "\n".join(lines)


def write_readme(text: str) -> None:
    current = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n"
    block = f"{START}\n{text}\n{END}"
    if START in current and END in current:
        before, rest = current.split(START, 1)
        after = rest.split(END, 1)[1]
        new = before + block + after
    else:
        new = current.rstrip("\n") + "\n\n## Parcels\n\n" + block + "\n"
    README.write_text(new, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=20.0)
    ap.add_argument("--database", default="geoioc_bench20")
    ap.add_argument("--requests", type=int, default=500, help="timed requests per search case")
    ap.add_argument("--warmup", type=int, default=30, help="untimed requests first, per case")
    ap.add_argument("--pdfs", type=int, default=60, help="timed extracts per format")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--prepare-only", action="store_true")
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()

    prepare_database(args.database, args.scale, log=log)
    if args.prepare_only:
        return
    parcels, total = sample(args.database, args.requests + args.warmup, args.seed)
    log(f"{total:,} parcels; {len(parcels)} sampled")
    cases = build_cases(parcels, args.pdfs + 5)
    with Server(args.database) as server:
        log(f"geoioc serve on {server.url}")
        for c in cases:
            warm = 5 if "extract" in c.name else args.warmup
            c.run(server.port, warm)
            status = "ok" if c.ok else f"{c.failures} WRONG, e.g. {c.first_failure}"
            log(f"{c.name.strip()}: p50 {c.pct(50):.1f} ms, p99 {c.pct(99):.1f} ms ({status})")
    result = table(cases)
    print(result)
    by = {c.name.split(":")[0].strip(): c for c in cases}
    goals = (f"- search by number p99 {by['search by number'].pct(99):.1f} ms, by point p99 "
             f"{by['search by point'].pct(99):.1f} ms (goal < 50 ms); PDF extract p99 "
             f"{by['extract PDF'].pct(99):.0f} ms, max {max(by['extract PDF'].times) * 1000:.0f} ms "
             "(goal < 1 s).")
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
               f"Python {platform.python_version()}, "
               "PostgreSQL "
               f"{psycopg.connect(db_url(args.database)).execute('SHOW server_version').fetchone()[0]}")
    text = "\n".join([
        f"`bench/parcels.py` run {dt.date.today().isoformat()}: database `{args.database}`, "
        f"`geoioc sample load --scale {args.scale:g}` = **{total:,} parcels**; one `geoioc serve` "
        "worker, one client sending sequential requests on a kept-alive connection (the latency an "
        f"officer sees), {args.warmup} untimed requests first; {machine}.",
        "",
        result,
        "",
        goals,
        "- The naive lines are what a user of the plain OGC API would do: property filters on "
        "`/ogc/collections/parcels/items`, and a ±2 m bbox around a clicked point. Both are index "
        "lookups too (the property filter uses the (commune_code, sheet_no, parcel_no) index that "
        "migration 0006 adds), so they are about as fast; what they do not do: find a parcel by the "
        "pre-2025 commune code printed on its certificate without knowing the new one, tell which "
        "candidate of the bbox contains the point (the client must test it), or give the area "
        "check, zoning conflicts, neighbours, incidents and history of the parcel file.",
        "- The slowest extract (and parcel file) is the first request on a freshly opened pool "
        "connection: a PostgreSQL backend's first ST_Transform to the province CRS loads PROJ's "
        "database (~150 ms); later ones on that connection take the p50 above.",
        "- Run: `.venv/bin/python bench/parcels.py` (creates and loads the database the first time; "
        "`--prepare-only`, `--requests`, `--pdfs`, `--no-readme`).",
    ])
    if not args.no_readme:
        write_readme(text)
        log(f"figures written to {README.relative_to(ROOT)}")
    if not all(c.ok for c in cases):
        sys.exit(1)


if __name__ == "__main__":
    main()
