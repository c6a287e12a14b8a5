"""History imports (gis.io.imports.versions) next to the way one would do without them.

    .venv/bin/python bench/history_import.py [--parcels 20000] [--url postgresql://...]

A land office sends the legal history of N parcels: three versions each (a first certificate,
a transfer with a resurvey, the 2025 merger that changed the commune code), 3N rows. Two ways
to load them, timed on the same database, each from an empty commune:

* history import: the 3N rows in one file, one import (validation once, one transaction; the
  versions are written in rounds, every parcel's oldest first);
* without history imports (what the platform did before them): three files of N rows, one per
  version and without legal dates, imported one after the other in legal order (the ordinary
  import matches on the natural key, which the merger changes: the third file is given the old
  key so that it updates instead of duplicating, and the key is fixed by hand afterwards).

Both end with the same current rows and history rows (checked; only the history import has the
legal dates). Then the no-op re-import of the history file
(every version already recorded) against the re-import of the last version file. The database is
GEOIOC_DATABASE_URL (or --url): migrated, ideally with the sample loaded (the identity match then
runs against a real parcels table); the bench's parcels (communes 99990/99991) are removed before
and after.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402
import psycopg  # noqa: E402
import shapely  # noqa: E402

OLD, NEW = "99990", "99991"
DATES = ("2004-05-06", "2016-10-11", "2025-07-01")


def versions(n: int) -> list[gpd.GeoDataFrame]:
    """The three versions of N parcels on a grid (about 20 m squares) east of the province."""
    i = np.arange(n)
    x = 106.28 + (i % 200) * 0.0002
    y = 21.00 + (i // 200) * 0.0002
    out = []
    for k, date in enumerate(DATES):
        grow = 0.00018 if k == 0 else 0.00017
        gdf = gpd.GeoDataFrame({
            "MAXA": NEW if k == 2 else OLD, "MAXACU": OLD if k == 2 else None,
            "SOTO": 1 + i // 5000, "SOTHUA": 1 + i % 5000,
            "LOAIDAT": "LUC" if k == 0 else "ONT", "DIENTICH": 300.0 if k == 0 else 280.0,
            "CHUSUDUNG": "Nguyễn Văn A" if k == 0 else "Trần Thị B",
            "HIEULUC": date, "SOQD": f"{100 + k}/QĐ-UBND"},
            geometry=shapely.box(x, y, x + grow, y + grow), crs=4326)
        out.append(gdf)
    return out


def clean(conn: psycopg.Connection) -> None:
    conn.execute("DELETE FROM parcels WHERE commune_code IN (%s, %s)", (OLD, NEW))
    conn.execute("DELETE FROM parcel_history WHERE commune_code IN (%s, %s)", (OLD, NEW))


def state(conn: psycopg.Connection) -> tuple:
    """(current parcels, history rows) of the bench's communes."""
    return conn.execute(
        "SELECT (SELECT count(*) FROM parcels WHERE commune_code = %(n)s AND old_commune_code = %(o)s),"
        " (SELECT count(*) FROM parcel_history WHERE commune_code = %(o)s)",
        {"n": NEW, "o": OLD}).fetchone()


def timed(conn: psycopg.Connection, path: Path, who) -> tuple[float, object]:
    from gis.io.imports import ImportOptions, import_file

    start = time.perf_counter()
    rep = import_file(conn, path, ImportOptions("parcels"), who)
    elapsed = time.perf_counter() - start
    if not rep.ok:
        raise SystemExit(f"bench: import of {path.name} refused: {rep.to_json()}")
    return elapsed, rep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parcels", type=int, default=20_000)
    ap.add_argument("--url", default=os.environ.get("GEOIOC_DATABASE_URL"))
    args = ap.parse_args()
    if not args.url:
        raise SystemExit("bench: give --url or GEOIOC_DATABASE_URL (a migrated GeoIOC database)")
    os.environ["GEOIOC_DATABASE_URL"] = args.url
    from layers.access import Principal

    who = Principal("bench-history", frozenset({"land_officer"}))
    work = Path(tempfile.mkdtemp(prefix="geoioc-bench-history-"))
    files = []
    for k, gdf in enumerate(versions(args.parcels)):
        path = work / f"v{k + 1}.gpkg"
        gdf.drop(columns=["HIEULUC", "SOQD"]).to_file(path, driver="GPKG", engine="pyogrio")
        files.append((gdf, path))
    history = work / "history.gpkg"
    gpd.GeoDataFrame(gpd.pd.concat([g for g, _ in files], ignore_index=True), crs=4326).to_file(
        history, driver="GPKG", engine="pyogrio")
    # Without history imports the merger's file must carry the old key to update the parcels.
    third, _ = files[2]
    keyed = work / "v3-old-key.gpkg"
    third.assign(MAXA=OLD, MAXACU=None).drop(columns=["HIEULUC", "SOQD"]).to_file(
        keyed, driver="GPKG", engine="pyogrio")
    with psycopg.connect(args.url, autocommit=True) as conn:
        parcels = conn.execute("SELECT count(*) FROM parcels").fetchone()[0]
        clean(conn)
        t_hist, rep = timed(conn, history, who)
        after_history = state(conn)
        t_noop_hist, noop = timed(conn, history, who)
        clean(conn)
        t_files = []
        for path in (files[0][1], files[1][1], keyed):
            t, _ = timed(conn, path, who)
            t_files.append(t)
        start = time.perf_counter()  # what the merger's file could not say with the old key
        conn.execute("UPDATE parcels SET commune_code = %s, old_commune_code = %s WHERE commune_code = %s",
                     (NEW, OLD, OLD))
        t_files.append(time.perf_counter() - start)
        after_files = state(conn)
        t_noop_file, _ = timed(conn, keyed, who)
        clean(conn)
    n = args.parcels
    print(f"parcels table: {parcels:,} rows; {n:,} parcels x 3 versions = {3 * n:,} rows")
    print(f"history import (one file, {3 * n:,} rows): {t_hist:7.2f} s  "
          f"(inserted {rep.inserted:,}, updated {rep.updated:,})")
    print(f"three ordinary imports ({n:,} rows each), UPDATE of the merger's key: {sum(t_files):7.2f} s "
          f"({' + '.join(f'{t:.2f}' for t in t_files)})")
    print(f"re-import, nothing to do:  history file {t_noop_hist:.2f} s (unchanged {noop.unchanged:,}), "
          f"last version file {t_noop_file:.2f} s")
    print(f"same rows: {after_history == after_files} (current parcels, history rows: {after_history}; "
          f"without history imports {after_files})")


if __name__ == "__main__":
    main()
