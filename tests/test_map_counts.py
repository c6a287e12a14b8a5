"""What the map's layer list and panels read from the server: counts in view (/api/map/counts)
equal the database's under the caller's access and reveal nothing of a hidden layer; identify
answers topmost layer first however the layers are asked; the manifest carries names for codes
and a legend for every layer, drawn from the catalogue."""

from __future__ import annotations

import pytest

from layers.catalogue import LAYERS, get_layer

VIEWS = ["106.05,21.17,106.09,21.19", "105.9,20.95,106.35,21.3", "106.08,21.13,106.10,21.15"]


def sql_count(conn, table: str, bbox: str, extra: str = "TRUE") -> int:
    x1, y1, x2, y2 = (float(v) for v in bbox.split(","))
    return conn.execute(
        f"SELECT count(*) FROM {table} t WHERE t.geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"  # noqa: S608
        f" AND ST_Intersects(t.geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326)) AND {extra}",
        (x1, y1, x2, y2, x1, y1, x2, y2)).fetchone()[0]


@pytest.mark.parametrize("bbox", VIEWS)
def test_counts_in_view_equal_the_database(client, conn, bbox) -> None:
    public = ["admin_units", "land_use_zones", "parcels", "roads", "tourism_places",
              "public_facilities", "sensors"]
    r = client.get("/api/map/counts", params={"layers": ",".join(public), "bbox": bbox})
    assert r.status_code == 200, r.text
    counts = r.json()["counts"]
    assert set(counts) == set(public)
    for layer in public:
        extra = "t.valid_to IS NULL" if layer == "admin_units" else "TRUE"
        assert counts[layer] == sql_count(conn, layer, bbox, extra), layer
    assert counts["roads"] > 0
    # the units before the reform, as of a day before it
    before = client.get("/api/map/counts", params={"layers": "admin_units", "bbox": bbox,
                                                   "as_of": "2025-06-30"}).json()["counts"]
    assert before["admin_units"] == sql_count(
        conn, "admin_units", bbox, "t.valid_from <= '2025-06-30 12:00Z' AND (t.valid_to IS NULL OR"
        " t.valid_to > '2025-06-30 12:00Z')")
    assert before["admin_units"] != counts["admin_units"] or bbox != VIEWS[1]


def test_counts_follow_access(client, conn, keys) -> None:
    bbox = VIEWS[1]
    unknown = client.get("/api/map/counts", params={"layers": "no_such_layer", "bbox": bbox})
    for role in ("anonymous", "citizen"):
        for hidden in ("cameras", "incidents", "roads,incidents"):
            r = client.get("/api/map/counts", params={"layers": hidden, "bbox": bbox}, headers=keys[role])
            assert r.status_code == 404
            # the same answer as for a layer that does not exist, and no number at all
            assert {k: v for k, v in r.json().items() if k != "instance"} == \
                {k: v for k, v in unknown.json().items() if k != "instance"}
            assert '"counts":' not in r.text
    everything = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
    security = conn.execute("SELECT count(*) FROM incidents WHERE category = 'security_event'").fetchone()[0]
    assert security > 0
    op = client.get("/api/map/counts", params={"layers": "incidents,cameras", "bbox": bbox},
                    headers=keys["operator"]).json()["counts"]
    officer = client.get("/api/map/counts", params={"layers": "incidents", "bbox": bbox},
                         headers=keys["security_officer"]).json()["counts"]
    assert op["incidents"] == sql_count(conn, "incidents", bbox, "t.category <> 'security_event'")
    assert officer["incidents"] == sql_count(conn, "incidents", bbox)
    assert officer["incidents"] - op["incidents"] == security and officer["incidents"] <= everything
    assert op["cameras"] == sql_count(conn, "cameras", bbox) > 0


@pytest.mark.parametrize(("params", "parameter"), [
    ({"layers": "roads"}, "bbox"),
    ({"layers": "roads", "bbox": "1,2,3"}, "bbox"),
    ({"layers": "", "bbox": VIEWS[0]}, "layers"),
    ({"layers": ",".join(f"layer{i}" for i in range(21)), "bbox": VIEWS[0]}, "layers"),
    ({"layers": "roads", "bbox": VIEWS[0], "as_of": "yesterday"}, "as_of"),
])
def test_counts_refuse_bad_parameters(client, params, parameter) -> None:
    r = client.get("/api/map/counts", params=params)
    assert r.status_code == 400, r.text
    assert parameter in r.text


def test_identify_answers_topmost_first_whatever_the_order_asked(client, conn) -> None:
    lon, lat = conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_LineInterpolatePoint(geom, 0.5) AS p FROM roads"
        " WHERE road_class = 'primary' ORDER BY id LIMIT 1) s").fetchone()
    for order in ("admin_units,land_use_zones,roads", "roads,admin_units,land_use_zones"):
        r = client.get("/api/map/identify", params={"lon": lon, "lat": lat, "z": 16, "layers": order})
        layers = [f["layer"] for f in r.json()["features"]]
        assert layers[0] == "roads" and layers[-1] == "admin_units", layers


def test_manifest_names_codes_and_has_a_legend_for_every_layer(client, conn, keys) -> None:
    body = client.get("/api/map/layers", headers=keys["security_officer"]).json()
    names = body["names"]
    for code, name in conn.execute("SELECT DISTINCT ON (code) code, name FROM admin_units"
                                   " ORDER BY code, valid_from DESC"):
        assert names["gazetteer"][code] == name
    for code, vi, en in conn.execute(
            "SELECT code, name_vi, name_en FROM land_use_codes WHERE valid_to IS NULL"):
        assert names["land_use"][code] == {"vi": vi, "en": en}
    refs = {(e["id"], f["name"]): f.get("ref") for e in body["layers"] for f in e["fields"]}
    assert refs[("incidents", "commune_code")] == "gazetteer"
    assert refs[("land_use_zones", "land_use_code")] == "land_use"
    assert refs[("parcels", "land_use_codes")] == "land_use"
    for entry in body["layers"]:
        assert entry["legend"], f"{entry['id']} has no legend"
        for e in entry["legend"] + entry["legend_more"]:
            assert e["symbol"] in ("fill", "line", "point", "ring", "cluster", "gradient"), e
            assert e["label"]["vi"] and e["label"]["en"] and e["color"].startswith("#")
    by_id = {e["id"]: e for e in body["layers"]}
    roads = by_id["roads"]
    assert {e["value"]: e["weight"] for e in roads["legend_more"]} == get_layer("roads").style.widths
    sensors = by_id["sensors"]
    assert {e["value"] for e in sensors["legend"]} == {"ok", "warn", "over", "none"}
    assert any(e.get("value") == "stale" and e.get("dash") for e in sensors["legend_more"])
    admin = by_id["admin_units"]
    assert {e["value"] for e in admin["legend"]} == {"province", "district", "commune"}
    drawn_in = {e["color"] for e in admin["legend"] + admin["legend_more"]}
    assert {era["color"] for era in admin["eras"]} <= drawn_in


def test_catalogue_line_styles_name_coded_values() -> None:
    for layer in LAYERS:
        s = layer.style
        if s.width_by:
            values = set(layer.field(s.width_by).values)
            assert set(s.widths) <= values and set(s.dashes) <= values and set(s.min_zooms) <= values
        for f in layer.fields:
            assert f.refers_to in (None, "gazetteer", "land_use")
