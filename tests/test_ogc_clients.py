"""Real GIS clients read our OGC API: GDAL's OAPIF driver (pyogrio and Debian's ogrinfo) and
OWSLib. Counts and attribute values must equal the database, in EPSG:4326 and EPSG:9209."""

from __future__ import annotations

import datetime as dt
import math
import subprocess

import numpy as np
import pandas as pd
import pyogrio
import pytest
from owslib.ogcapi.features import Features
from psycopg import sql

from layers.access import ANONYMOUS, readable_fields, readable_layers, row_filter
from layers.catalogue import LAYERS

pytestmark = pytest.mark.slow  # GDAL and OWSLib against the live server

PUBLIC = readable_layers(ANONYMOUS)
HIDDEN = [layer for layer in LAYERS if layer not in PUBLIC]


def _norm(value, ftype: str):
    """One comparable form for values from GDAL and from psycopg."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if ftype == "str[]":
        if isinstance(value, str):  # GDAL may hand a JSON list back as text
            import json

            value = json.loads(value) if value.startswith("[") else value.split(",")
        return [str(v) for v in value]
    if ftype == "float":
        return round(float(value), 3)
    if ftype == "int":
        return int(value)
    if ftype == "date":
        if isinstance(value, (dt.datetime, pd.Timestamp)):
            return value.date().isoformat()
        return str(value)[:10].replace("/", "-")  # GDAL writes dates as YYYY/MM/DD
    if ftype == "datetime":
        ts = pd.Timestamp(value)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        # GDAL keeps milliseconds, rounded (42.9996 s reads back as 43.000): the same here.
        return ts.round("ms").floor("s").isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _db_rows(conn, layer) -> dict[int, dict]:
    fields = readable_fields(layer, ANONYMOUS)
    cols = sql.SQL(", ").join(sql.Identifier(f.name) for f in fields)
    hidden = row_filter(layer, ANONYMOUS)
    rows = conn.execute(sql.SQL("SELECT {}, {} FROM {} AS t WHERE {}").format(
        sql.Identifier(layer.id_column), cols, sql.Identifier(layer.table),
        hidden if hidden is not None else sql.SQL("TRUE"))).fetchall()
    return {r[0]: {f.name: _norm(v, f.type) for f, v in zip(fields, r[1:], strict=True)}
            for r in rows}


# The indicators' values (one unit polygon per indicator and period, ~45,000) are read with a
# filter, as clients do (tests/test_indicators.py), not whole.
WHOLE = [layer for layer in PUBLIC if layer.id != "indicators"]


@pytest.mark.parametrize("srid", [4326, 9209])
@pytest.mark.parametrize("layer", WHOLE, ids=lambda layer: layer.id)
def test_gdal_reads_every_feature_like_the_database(live_server, conn, layer, srid) -> None:
    df = pyogrio.read_dataframe(
        f"OAPIF:{live_server}/ogc", layer=layer.id, PAGE_SIZE="10000", fid_as_index=True,
        **({"CRS": f"EPSG:{srid}"} if srid != 4326 else {}),
    )
    expected = _db_rows(conn, layer)
    assert len(df) == len(expected) > 0
    fields = readable_fields(layer, ANONYMOUS)
    # GDAL makes the GeoJSON feature id the OGR FID.
    got = {int(fid): {f.name: _norm(row[f.name], f.type) for f in fields}
           for fid, row in zip(df.index, df.to_dict("records"), strict=True)}
    assert got.keys() == expected.keys()
    mismatches = [(k, got[k], expected[k]) for k in expected if got[k] != expected[k]]
    assert not mismatches, [(k, {n: (v, e[n]) for n, v in g.items() if v != e[n]})
                            for k, g, e in mismatches[:3]]
    # Geometries sit where PostGIS (equal to pyproj, see test_migrations) puts them.
    extent = conn.execute(sql.SQL(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        "(SELECT ST_Extent(ST_Transform({}, %s)) AS e FROM {}) s").format(
        sql.Identifier(layer.geometry_column), sql.Identifier(layer.table)), (srid,)).fetchone()
    tol = 1e-7 if srid == 4326 else 0.002
    assert np.allclose(df.total_bounds, extent, rtol=0, atol=tol), (df.total_bounds, extent)


def test_gdal_does_not_see_internal_layers(live_server) -> None:
    names = {name for name, _ in pyogrio.list_layers(f"OAPIF:{live_server}/ogc")}
    assert names == {layer.id for layer in PUBLIC}
    assert not names & {layer.id for layer in HIDDEN}


def test_debian_ogrinfo_lists_public_collections(live_server) -> None:
    out = subprocess.run(["ogrinfo", "-ro", "-q", f"OAPIF:{live_server}/ogc"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    for layer in PUBLIC:
        assert layer.id in out
    for layer in HIDDEN:
        assert layer.id not in out


def test_owslib_pages_through_a_collection_to_the_end(live_server, conn) -> None:
    api = Features(live_server + "/ogc")
    assert {c["id"] for c in api.collections()["collections"]} == {layer.id for layer in PUBLIC}
    seen: list[int] = []
    offset = 0
    while True:
        page = api.collection_items("admin_units", limit=37, offset=offset)
        seen += [f["id"] for f in page["features"]]
        if not any(link["rel"] == "next" for link in page["links"]):
            break
        offset += 37
    total = conn.execute("SELECT count(*) FROM admin_units").fetchone()[0]
    assert len(seen) == len(set(seen)) == total
    assert page["numberMatched"] == total


def test_gdal_with_credentials_reads_a_restricted_layer(live_server, conn, role_keys) -> None:
    """QGIS/GDAL authenticate with HTTP Basic (GDAL_HTTP_AUTH/GDAL_HTTP_USERPWD); without the
    credentials the internal layers are not even listed."""
    name, password = role_keys["security_officer"]["user"], role_keys["security_officer"]["password"]
    try:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": "BASIC",
                                         "GDAL_HTTP_USERPWD": f"{name}:{password}"})
        names = {n for n, _ in pyogrio.list_layers(f"OAPIF:{live_server}/ogc")}
        df = pyogrio.read_dataframe(f"OAPIF:{live_server}/ogc", layer="cameras", PAGE_SIZE="10000")
    finally:
        pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": None, "GDAL_HTTP_USERPWD": None})
    assert {"incidents", "cameras"} <= names
    assert len(df) == conn.execute("SELECT count(*) FROM cameras").fetchone()[0]
    assert df["stream_url"].str.startswith("rtsp://").all()  # restricted field, visible to this role
    anonymous = {n for n, _ in pyogrio.list_layers(f"OAPIF:{live_server}/ogc")}
    assert "cameras" not in anonymous and "incidents" not in anonymous
