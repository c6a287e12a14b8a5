"""GDAL as a client of our OGC API, next to GDAL reading PostGIS directly.

    .venv/bin/python bench/gdal_clients.py                               # geoioc_bench20, README updated
    .venv/bin/python bench/gdal_clients.py --database geoioc_dev --no-readme   # a smoke run

Why: a GIS user opens the parcels collection in QGIS or runs `ogrinfo`/`ogr2ogr` on it. Before
this was measured, `ogrinfo -so` took about ten minutes at 800,000 parcels (no numberMatched, so
GDAL paged through everything to count) and a page of 1,000 parcels took 0.02 s at offset 0 but
3.7 s at offset 799,000, which made a full read quadratic. The figures that matter are therefore:

- `ogrinfo -ro -so OAPIF:<server>/ogc parcels`: wall time and the feature count it prints
  (checked against SQL); goal < 2 s.
- One page of 1,000 parcels at offsets 0, 200,000 and the last page, by `offset` and by the
  keyset cursor of the `next` links (`after=<id>`); goal: flat. Next to it, PostgreSQL's time for
  the pre-change SQL (the GeoJSON built in the same statement as the OFFSET), to show what the
  change removed.
- `ogr2ogr -f GPKG` of every parcel through the API next to `ogr2ogr -f GPKG` from `PG:` with the
  same columns (the ones an anonymous client sees); goal: the API within 2x.

GDAL is Debian's (`ogrinfo`, `ogr2ogr`). Its OAPIF driver before 3.8 does not read the page size
that /ogc/openapi advertises (the `limit` maximum), so the API export passes that advertised
maximum as `-oo PAGE_SIZE` (what the OpenAPI tells a client to use). The database is used as it
is: never created, loaded or dropped here (`geoioc db migrate` only). One `geoioc serve` worker on
a free port, the anonymous rate limit off; every figure is one run (the machine is shared: the
load average is printed next to them). Figures go to bench/README.md between the
"bench-gdal-clients" markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # layers.* for the field list an anonymous client sees

import orjson  # noqa: E402
import psycopg  # noqa: E402
from benchdb import GEOIOC, PG, Server, db_url, run  # noqa: E402
from parcels import log  # noqa: E402
from psycopg import sql  # noqa: E402

README = ROOT / "bench" / "README.md"
START, END = "<!-- bench-gdal-clients:start -->", "<!-- bench-gdal-clients:end -->"
PAGE = 1_000
GOAL_OGRINFO_S = 2.0
GOAL_EXPORT_RATIO = 2.0


def timed(cmd: list[str], timeout: float) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return elapsed, proc.stdout


def feature_count(path: str, layer: str) -> int:
    out = run(["ogrinfo", "-ro", "-so", path, layer])
    m = re.search(r"^Feature Count: (\d+)$", out, re.M)
    return int(m.group(1)) if m else -1


def get(port: int, path: str) -> tuple[float, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t0 = time.perf_counter()
    conn.request("GET", path, headers={"Accept-Encoding": "identity"})
    r = conn.getresponse()
    body = r.read()
    elapsed = time.perf_counter() - t0
    conn.close()
    if r.status != 200:
        raise SystemExit(f"bench: GET {path} -> {r.status} {body[:300]!r}")
    return elapsed, orjson.loads(body)


def best_of(n: int, port: int, path: str) -> tuple[float, dict[str, Any]]:
    runs = [get(port, path) for _ in range(n)]
    return min(t for t, _ in runs), runs[-1][1]


def save_pages(port: int, page_size: int, folder: Path) -> list[Path]:
    """Every page GDAL's OAPIF driver fetches (the `next` links from the first page), saved as
    GeoJSON files: the same bytes, to time GDAL's GeoJSON reading with no server in the way."""
    files: list[Path] = []
    path: str | None = f"/ogc/collections/parcels/items?f=json&limit={page_size}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    while path:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise SystemExit(f"bench: {path} -> {resp.status}")
        files.append(folder / f"page{len(files):04d}.geojson")
        files[-1].write_bytes(body)
        nxt = next((ln["href"] for ln in orjson.loads(body)["links"] if ln["rel"] == "next"), None)
        path = nxt.split(str(port), 1)[1] if nxt else None
    return files


def union_vrt(files: list[Path], target: Path) -> Path:
    """One OGR layer over the saved pages, so that one ogr2ogr writes one GeoPackage from them."""
    layers = "".join(f'<OGRVRTLayer name="p{i}"><SrcDataSource>{f}</SrcDataSource>'
                     f'<SrcLayer>{f.stem}</SrcLayer></OGRVRTLayer>'
                     for i, f in enumerate(files))
    target.write_text(f'<OGRVRTDataSource><OGRVRTUnionLayer name="parcels">{layers}'
                      "</OGRVRTUnionLayer></OGRVRTDataSource>")
    return target


def old_sql_seconds(conn: psycopg.Connection, columns: list[str], offset: int) -> float:
    """PostgreSQL's time for the pre-change statement: GeoJSON built for every skipped row."""
    props = sql.SQL(", ").join(sql.SQL("{}, t.{}").format(sql.Literal(c), sql.Identifier(c))
                               for c in columns)
    query = sql.SQL(
        "SELECT '{{\"type\":\"Feature\",\"id\":' || t.id || ',\"geometry\":' || "
        "COALESCE(ST_AsGeoJSON(t.geom, 8, 0), 'null') || ',\"properties\":' || "
        "json_build_object({})::text || '}}' FROM parcels AS t ORDER BY t.id LIMIT %s OFFSET %s"
    ).format(props)
    t0 = time.perf_counter()
    rows = conn.execute(query, (PAGE, offset)).fetchall()
    assert len(rows) == PAGE
    return time.perf_counter() - t0


def one(conn: psycopg.Connection[Any], query: str) -> Any:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def write_readme(text: str) -> None:
    current = README.read_text(encoding="utf-8")
    block = f"{START}\n{text}\n{END}"
    if START in current and END in current:
        before, rest = current.split(START, 1)
        new = before + block + rest.split(END, 1)[1]
    else:
        new = current.rstrip("\n") + "\n\n## GDAL clients\n\n" + block + "\n"
    README.write_text(new, encoding="utf-8")


def load() -> str:
    return " / ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", default="geoioc_bench20")
    ap.add_argument("--no-export", action="store_true", help="skip the two ogr2ogr exports")
    ap.add_argument("--no-old-sql", action="store_true", help="skip the pre-change SQL timings")
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()
    if not shutil.which("ogrinfo") or not shutil.which("ogr2ogr"):
        raise SystemExit("bench: needs Debian's gdal-bin (ogrinfo, ogr2ogr)")

    from layers.access import ANONYMOUS, readable_fields
    from layers.catalogue import get_layer

    columns = [f.name for f in readable_fields(get_layer("parcels"), ANONYMOUS)]
    load_before = load()
    run([GEOIOC, "db", "migrate"], env={"GEOIOC_DATABASE_URL": db_url(args.database)})
    with psycopg.connect(db_url(args.database), autocommit=True) as conn:
        total = int(one(conn, "SELECT count(*) FROM parcels"))
        ids = [r[0] for r in conn.execute("SELECT id FROM parcels ORDER BY id")]
        pg_version = str(one(conn, "SHOW server_version"))
        old = {}
        if not args.no_old_sql:
            for offset in (0, 200_000, total - PAGE):
                if offset < total:
                    old[offset] = old_sql_seconds(conn, columns, offset)
    log(f"{args.database}: {total:,} parcels")
    gdal = run(["ogrinfo", "--version"]).strip()

    with Server(args.database) as server, tempfile.TemporaryDirectory() as tmp:
        url = f"OAPIF:{server.url}/ogc"
        # ogrinfo -so: collections, one page; the count comes from numberMatched. Cold = the first
        # request the fresh server answers (it then computes the collections' extents once).
        cold_s, out = timed(["ogrinfo", "-ro", "-so", url, "parcels"], timeout=600)
        ogrinfo_s, out = timed(["ogrinfo", "-ro", "-so", url, "parcels"], timeout=600)
        m = re.search(r"^Feature Count: (\d+)$", out, re.M)
        ogrinfo_count = int(m.group(1)) if m else -1
        log(f"ogrinfo -so: {cold_s:.2f} s cold, {ogrinfo_s:.2f} s warm, Feature Count "
            f"{ogrinfo_count:,} (SQL: {total:,})")

        pages = []
        for offset in (0, 200_000, total - PAGE):
            if offset >= total:
                continue
            by_offset, body = best_of(3, server.port,
                                      f"/ogc/collections/parcels/items?limit={PAGE}&offset={offset}")
            got = [f["id"] for f in body["features"]]
            path = f"/ogc/collections/parcels/items?limit={PAGE}" + (
                f"&after={ids[offset - 1]}" if offset else "")
            by_key, body2 = best_of(3, server.port, path)
            same = got == [f["id"] for f in body2["features"]] == ids[offset:offset + PAGE]
            pages.append((offset, by_offset, by_key, old.get(offset), same))
            log(f"page at {offset:,}: offset {by_offset * 1000:.0f} ms, after {by_key * 1000:.0f} ms"
                f"{'' if same else ' WRONG'}")

        doc = get(server.port, "/ogc/openapi?f=json")[1]
        limit = next(p for p in doc["paths"]["/collections/parcels/items"]["get"]["parameters"]
                     if p.get("name") == "limit")["schema"]
        export = None
        if not args.no_export:
            pg_dsn = (f"PG:host={PG['host']} port={PG['port']} dbname={args.database} "
                      f"user={PG['user']} password={PG['password']}")
            pg_s, _ = timed(["ogr2ogr", "-f", "GPKG", f"{tmp}/pg.gpkg", pg_dsn, "parcels",
                             "-select", ",".join(columns)], timeout=1800)
            pg_n = feature_count(f"{tmp}/pg.gpkg", "parcels")
            log(f"ogr2ogr from PG: {pg_s:.1f} s, {pg_n:,} features")
            api_s, _ = timed(["ogr2ogr", "-f", "GPKG", f"{tmp}/api.gpkg", url, "parcels",
                              "-oo", f"PAGE_SIZE={limit['maximum']}"], timeout=1800)
            api_n = feature_count(f"{tmp}/api.gpkg", "parcels")
            log(f"ogr2ogr through the API: {api_s:.1f} s, {api_n:,} features")
            pages_dir = Path(tmp) / "pages"
            pages_dir.mkdir()
            vrt = union_vrt(save_pages(server.port, limit["maximum"], pages_dir), Path(tmp) / "pages.vrt")
            local_s, _ = timed(["ogr2ogr", "-f", "GPKG", f"{tmp}/local.gpkg", str(vrt), "parcels"],
                               timeout=1800)
            local_n = feature_count(f"{tmp}/local.gpkg", "parcels")
            log(f"ogr2ogr from the same pages saved as files: {local_s:.1f} s, {local_n:,} features")
            export = (pg_s, pg_n, api_s, api_n, local_s, local_n)
    load_after = load()

    ok = ogrinfo_count == total and all(p[4] for p in pages)
    lines = [
        f"Run of {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: `bench/gdal_clients.py --database "
        f"{args.database}` = **{total:,} parcels**; {gdal}; one `geoioc serve` worker; "
        f"{platform.machine()}, {os.cpu_count()} CPUs shared with other work (load average "
        f"{load_before} before the run, {load_after} after), PostgreSQL {pg_version.split()[0]}. "
        "Every figure is a single run (pages: best of 3).",
        "",
        "| client | time | goal | result |",
        "|---|---:|---:|---|",
        f"| `ogrinfo -ro -so OAPIF:…/ogc parcels`, first request to a fresh server | {cold_s:.2f} s | "
        f"< {GOAL_OGRINFO_S:g} s | (computes the collections' extents once per process) |",
        f"| `ogrinfo -ro -so OAPIF:…/ogc parcels` | {ogrinfo_s:.2f} s | < {GOAL_OGRINFO_S:g} s | "
        f"Feature Count {ogrinfo_count:,} {'✓' if ogrinfo_count == total else '✗'} (SQL {total:,}) |",
    ]
    if export:
        pg_s, pg_n, api_s, api_n, local_s, local_n = export
        export_ok = api_s <= GOAL_EXPORT_RATIO * pg_s and api_n == total
        lines += [
            f"| `ogr2ogr -f GPKG` from `PG:` (`-select` the same {len(columns)} columns; geometry, "
            f"id as FID) | {pg_s:.1f} s | | {pg_n:,} features |",
            f"| `ogr2ogr -f GPKG` from `OAPIF:` (`-oo PAGE_SIZE={limit['maximum']}`, the advertised "
            f"`limit` maximum) | {api_s:.1f} s | ≤ {GOAL_EXPORT_RATIO:g}× PG | {api_n:,} features, "
            f"**{api_s / pg_s:.2f}× PG** {'✓' if export_ok else '✗'} |",
            f"| `ogr2ogr -f GPKG` from the same GeoJSON pages saved as files (no server: GDAL's "
            f"GeoJSON reading alone) | {local_s:.1f} s | | {local_n:,} features, "
            f"{local_s / pg_s:.2f}× PG |",
        ]
        ok = ok and api_n == pg_n == total
    lines += [
        "",
        f"One page of {PAGE:,} parcels (GET, whole body read), by `offset` and by the keyset cursor "
        "that `next` links carry (`after=<id of the previous page's last feature>`); the last "
        "column is PostgreSQL alone running the pre-change statement (GeoJSON built for every "
        "skipped row):",
        "",
        "| position | `?offset=` | `?after=` | same features | pre-change SQL alone |",
        "|---:|---:|---:|:-:|---:|",
    ]
    for offset, by_offset, by_key, old_s, same in pages:
        lines.append(f"| {offset:,} | {by_offset * 1000:.0f} ms | {by_key * 1000:.0f} ms | "
                     f"{'✓' if same else '✗'} | "
                     f"{'' if old_s is None else f'{old_s * 1000:.0f} ms'} |")
    lines += [
        "",
        f"- /ogc/openapi advertises `limit` default {limit['default']} and maximum "
        f"{limit['maximum']}. GDAL {gdal.split(',')[0].split()[-1]} does not read it (its OAPIF driver "
        "starts reading it in 3.8, OSGeo/gdal#8522), hence the explicit PAGE_SIZE.",
        "- numberMatched is an exact `count(*)` under a 1 s statement timeout "
        "(gis/features.py `COUNT_TIMEOUT_MS`), left out when it does not finish in time: OGC API - "
        "Features allows no estimate there. Keyset pages (`after=`) of a layer over 100,000 rows "
        "leave it out (the first page has it), so a whole-layer read does not count the layer "
        "once per page.",
        "- Run: `.venv/bin/python bench/gdal_clients.py [--database geoioc_bench20] [--no-export] "
        "[--no-old-sql] [--no-readme]`.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_readme:
        write_readme(text)
        log(f"figures written to {README.relative_to(ROOT)}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
