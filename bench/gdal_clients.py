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
is: never created, loaded or dropped here (`geoioc db migrate` only, and not even that with
--no-migrate, for a database the run must not write to). One `geoioc serve` worker on a free
port, the anonymous rate limit off; every figure is one run unless --runs asks for more (the
machine is shared: the load average is printed next to them). Figures go to bench/README.md
between the "bench-gdal-clients" markers.

--gdal312 adds the same export through the API with a current GDAL: the libgdal that pyogrio's
wheel bundles (3.12 when this was written; OAPIF and GPKG drivers, no PostgreSQL driver and no
command-line tools), driven through `GDALVectorTranslate`, the function `ogr2ogr` wraps
(bench/gdal_translate312.py, ctypes), once with the page size that GDAL picks by itself and once
with `-oo PAGE_SIZE=<advertised maximum>`. --runs N repeats the exports N times, the clients
alternating within each round, so that every ratio to `PG:` compares runs made minutes apart.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import platform
import re
import resource
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
    elapsed, _, out = timed_cpu(cmd, timeout)
    return elapsed, out


def timed_cpu(cmd: list[str], timeout: float) -> tuple[float, float, str]:
    """Wall time, the client process's CPU time (user + system, from the rusage of waited
    children: GDAL's own work, without the server's or PostgreSQL's) and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, proc.stdout


def gdal312(dst: str, url: str, open_options: list[str]) -> tuple[float, float, int, str]:
    """ogr2ogr of the bundled GDAL 3.12 (bench/gdal_translate312.py) in its own process, like the
    command-line ogr2ogr: wall, CPU, the feature count it reads back from the file, version."""
    cmd = [sys.executable, str(ROOT / "bench" / "gdal_translate312.py"), dst, url, "parcels"]
    for opt in open_options:
        cmd += ["-oo", opt]
    wall, cpu, out = timed_cpu(cmd, timeout=1800)
    got = orjson.loads(out.strip().splitlines()[-1])
    return wall, cpu, int(got["count"]), str(got["gdal"])


def median(xs: list[float]) -> float:
    s = sorted(xs)
    return (s[(len(s) - 1) // 2] + s[len(s) // 2]) / 2


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
    ap.add_argument("--no-migrate", action="store_true",
                    help="do not run `geoioc db migrate` (a database this run must not write to)")
    ap.add_argument("--gdal312", action="store_true",
                    help="also export through the API with pyogrio's bundled GDAL (GDALVectorTranslate)")
    ap.add_argument("--runs", type=int, default=1,
                    help="rounds of the exports, clients alternating within a round (default 1)")
    args = ap.parse_args()
    if not shutil.which("ogrinfo") or not shutil.which("ogr2ogr"):
        raise SystemExit("bench: needs Debian's gdal-bin (ogrinfo, ogr2ogr)")

    from layers.access import ANONYMOUS, readable_fields
    from layers.catalogue import get_layer

    columns = [f.name for f in readable_fields(get_layer("parcels"), ANONYMOUS)]
    load_before = load()
    if not args.no_migrate:
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
            page_opt = f"PAGE_SIZE={limit['maximum']}"
            # client -> per-round (wall, client CPU, features, load average before the run)
            results: dict[str, list[tuple[float, float, int, str]]] = {}
            gdal_new = ""
            for rnd in range(args.runs):
                # Alternate the order from round to round, so that no client always runs right
                # after the same other one (page cache, the server's warm connections).
                order = ["pg", "api"] + (["api312", "api312_page"] if args.gdal312 else [])
                if rnd % 2:
                    order.reverse()
                for client in order:
                    la = load()
                    dst = f"{tmp}/{client}.gpkg"
                    Path(dst).unlink(missing_ok=True)
                    if client == "pg":
                        wall, cpu, _ = timed_cpu(["ogr2ogr", "-f", "GPKG", dst, pg_dsn, "parcels",
                                                  "-select", ",".join(columns)], timeout=1800)
                        n = feature_count(dst, "parcels")
                    elif client == "api":
                        wall, cpu, _ = timed_cpu(["ogr2ogr", "-f", "GPKG", dst, url, "parcels",
                                                  "-oo", page_opt], timeout=1800)
                        n = feature_count(dst, "parcels")
                    else:
                        wall, cpu, n, gdal_new = gdal312(
                            dst, url, [page_opt] if client == "api312_page" else [])
                    results.setdefault(client, []).append((wall, cpu, n, la))
                    log(f"round {rnd + 1}/{args.runs} {client}: {wall:.1f} s wall, {cpu:.1f} s "
                        f"client CPU, {n:,} features (load {la})")
            pages_dir = Path(tmp) / "pages"
            pages_dir.mkdir()
            vrt = union_vrt(save_pages(server.port, limit["maximum"], pages_dir), Path(tmp) / "pages.vrt")
            local_s, local_cpu, _ = timed_cpu(["ogr2ogr", "-f", "GPKG", f"{tmp}/local.gpkg", str(vrt),
                                               "parcels"], timeout=1800)
            local_n = feature_count(f"{tmp}/local.gpkg", "parcels")
            log(f"ogr2ogr from the same pages saved as files: {local_s:.1f} s, {local_n:,} features")
            local312 = None
            if args.gdal312:
                # The same files through the new GDAL: its GeoJSON reading and GeoPackage writing
                # alone, to tell them apart from what its OAPIF driver adds on top.
                local312 = gdal312(f"{tmp}/local312.gpkg", str(vrt), [])
                log(f"GDAL 3.12 from the saved pages: {local312[0]:.1f} s wall, {local312[1]:.1f} s "
                    f"client CPU, {local312[2]:,} features")
            export = (results, local_s, local_cpu, local_n, gdal_new, local312)
    load_after = load()

    ok = ogrinfo_count == total and all(p[4] for p in pages)
    lines = [
        f"Run of {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: `bench/gdal_clients.py --database "
        f"{args.database}` = **{total:,} parcels**; {gdal}; one `geoioc serve` worker; "
        f"{platform.machine()}, {os.cpu_count()} CPUs shared with other work (load average "
        f"{load_before} before the run, {load_after} after), PostgreSQL {pg_version.split()[0]}. "
        "Every figure is a single run unless said otherwise (pages: best of 3).",
        "",
        "| client | time | goal | result |",
        "|---|---:|---:|---|",
        f"| `ogrinfo -ro -so OAPIF:…/ogc parcels`, first request to a fresh server | {cold_s:.2f} s | "
        f"< {GOAL_OGRINFO_S:g} s | (computes the collections' extents once per process) |",
        f"| `ogrinfo -ro -so OAPIF:…/ogc parcels` | {ogrinfo_s:.2f} s | < {GOAL_OGRINFO_S:g} s | "
        f"Feature Count {ogrinfo_count:,} {'✓' if ogrinfo_count == total else '✗'} (SQL {total:,}) |",
    ]
    if export:
        results, local_s, local_cpu, local_n, gdal_new, local312 = export
        pg = results["pg"]
        pg_s = median([r[0] for r in pg])

        def cell(client: str) -> tuple[str, str, str, float, bool]:
            """Time cell (the median, every run when there are several), client CPU cell, the
            1-minute load average before each run, the median of the per-round ratios to PG:,
            and whether every run had every feature."""
            rs = results[client]
            wall = median([r[0] for r in rs])
            t = f"{wall:.1f} s" + ("" if len(rs) == 1 else
                                   " (" + ", ".join(f"{r[0]:.1f}" for r in rs) + ")")
            cpu = f"{median([r[1] for r in rs]):.1f} s"
            la = ", ".join(r[3].split(" / ")[0] for r in rs)
            ratio = median([r[0] / p[0] for r, p in zip(rs, pg, strict=True)])
            return t, cpu, la, ratio, all(r[2] == total for r in rs)

        def api_row(label: str, client: str) -> str:
            t, cpu, la, ratio, full = cell(client)
            good = ratio <= GOAL_EXPORT_RATIO and full
            return (f"| {label} | {t} | {cpu} | {la} | ≤ {GOAL_EXPORT_RATIO:g}× PG | "
                    f"{results[client][-1][2]:,} features, **{ratio:.2f}× PG** {'✓' if good else '✗'} |")

        pg_t, pg_cpu, pg_la, _, pg_full = cell("pg")
        runs_note = ("" if args.runs == 1 else
                     f" {args.runs} rounds, the clients alternating: the time is the median "
                     "(each run in brackets), the ratio the median of each round's ratio to `PG:`.")
        lines += [
            "",
            f"Exports of every parcel to a GeoPackage.{runs_note} Client CPU: the GDAL process's "
            "user + system time (median; not the server's or PostgreSQL's); load: the 1-minute "
            "load average before each run.",
            "",
            "| client | time | client CPU | load | goal | result |",
            "|---|---:|---:|---:|---:|---|",
            f"| `ogr2ogr -f GPKG` from `PG:` (GDAL {gdal.split(',')[0].split()[-1]}; `-select` the "
            f"same {len(columns)} columns; geometry, id as FID) | {pg_t} | {pg_cpu} | {pg_la} | | "
            f"{pg[-1][2]:,} features |",
            api_row(f"`ogr2ogr -f GPKG` from `OAPIF:` (GDAL {gdal.split(',')[0].split()[-1]}, "
                    f"`-oo PAGE_SIZE={limit['maximum']}`, the advertised `limit` maximum)", "api"),
        ]
        if "api312" in results:
            v = gdal_new.split(",")[0].split()[1] if gdal_new else "?"
            lines += [
                api_row(f"GDAL {v} `GDALVectorTranslate` (ogr2ogr's logic) from `OAPIF:`, the page "
                        "size GDAL picks itself", "api312"),
                api_row(f"GDAL {v} `GDALVectorTranslate` from `OAPIF:`, `-oo PAGE_SIZE="
                        f"{limit['maximum']}`", "api312_page"),
            ]
        lines.append(
            f"| `ogr2ogr -f GPKG` from the same GeoJSON pages saved as files (no server: GDAL "
            f"{gdal.split(',')[0].split()[-1]}'s GeoJSON reading alone) | {local_s:.1f} s | "
            f"{local_cpu:.1f} s | | | "
            f"{local_n:,} features, {local_s / pg_s:.2f}× PG |")
        if local312:
            lines.append(
                f"| GDAL {gdal_new.split(',')[0].split()[1]} `GDALVectorTranslate` from the same "
                f"saved pages | {local312[0]:.1f} s | {local312[1]:.1f} s | | | {local312[2]:,} "
                f"features, {local312[0] / pg_s:.2f}× PG |")
            ok = ok and local312[2] == total
        ok = ok and pg_full and local_n == total and all(
            r[2] == total for rs in results.values() for r in rs)
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
        "starts reading it in 3.8, OSGeo/gdal#8522), hence the explicit PAGE_SIZE. From 3.8 the "
        "driver asks for max(1000, the advertised default) capped at the maximum, and reads them "
        "only from a `$ref`'d limit parameter: 1000 here either way (GDAL 3.12.4 asks `limit=1000`).",
        "- numberMatched is an exact `count(*)` under a 1 s statement timeout "
        "(gis/features.py `COUNT_TIMEOUT_MS`), left out when it does not finish in time: OGC API - "
        "Features allows no estimate there. Keyset pages (`after=`) of a layer over 100,000 rows "
        "leave it out (the first page has it), so a whole-layer read does not count the layer "
        "once per page.",
        "- Run: `.venv/bin/python bench/gdal_clients.py [--database geoioc_bench20] [--no-export] "
        "[--no-old-sql] [--no-readme] [--no-migrate] [--gdal312] [--runs N]`.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_readme:
        write_readme(text)
        log(f"figures written to {README.relative_to(ROOT)}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
