"""The sample province across the 2025 commune merger: parcels and incidents recorded under
pre-2025 communes, found by the old commune code, counted by analytics on the old boundaries,
and parcel histories that cross the merger. Reads the sample `make test` loaded."""

from __future__ import annotations

import pytest

# Incidents of the first half of 2025, before the reform (midnight of 1 July, province time).
BEFORE = {"start": "2025-01-01T00:00:00+07:00", "end": "2025-07-01T00:00:00+07:00"}


@pytest.fixture(scope="module")
def old_code(conn) -> str:
    """A pre-2025 commune that lost its code in the merger and whose parcels the sample has."""
    row = conn.execute(
        "SELECT old_commune_code FROM parcels WHERE old_commune_code <> commune_code"
        " GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()
    assert row is not None, "no parcel recorded under a pre-2025 commune that was merged away"
    return row[0]


def test_parcels_and_incidents_recorded_under_pre_2025_communes(conn, old_code) -> None:
    # The code names a unit before the reform only.
    eras = conn.execute("SELECT valid_to::text FROM admin_units WHERE code = %s AND level = 'commune'",
                        (old_code,)).fetchall()
    assert eras == [("2025-07-01",)]
    parcels, inside = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE ST_CoveredBy(ST_PointOnSurface(p.geom), a.geom))"
        " FROM parcels p JOIN admin_units a ON a.code = p.old_commune_code AND a.level = 'commune'"
        " WHERE p.old_commune_code = %s", (old_code,)).fetchone()
    assert parcels > 1000 and inside == parcels
    # Incidents are recorded under the commune of their time: pre-2025 codes before the reform,
    # current codes after it, never the other way round.
    before, after = conn.execute(
        "SELECT count(*) FILTER (WHERE reported_at < '2025-07-01T00:00+07'),"
        " count(*) FILTER (WHERE reported_at >= '2025-07-01T00:00+07') FROM incidents"
        " WHERE commune_code = %s", (old_code,)).fetchone()
    # Exactly the pre-reform incidents located in the old commune carry its code. The count
    # itself shrinks as the sample's window (which ends today) moves on, so it is only bounded.
    located = conn.execute(
        "SELECT count(*) FROM incidents i JOIN admin_units a ON a.code = %s AND a.level = 'commune'"
        " WHERE i.reported_at < '2025-07-01T00:00+07' AND ST_Covers(a.geom, i.geom)",
        (old_code,)).fetchone()[0]
    assert before == located >= 20 and after == 0
    stale = conn.execute(
        "SELECT count(*) FROM incidents i WHERE i.reported_at >= '2025-07-01T00:00+07' AND NOT EXISTS"
        " (SELECT 1 FROM admin_units a WHERE a.code = i.commune_code AND a.valid_to IS NULL)").fetchone()[0]
    assert stale == 0
    # Parcel histories reach back before the merger, under the old code.
    history = conn.execute(
        "SELECT count(DISTINCT parcel_id) FROM parcel_history WHERE commune_code = %s"
        " AND old_commune_code IS NULL AND legal_valid_from < '2025-07-01'", (old_code,)).fetchone()[0]
    assert history >= 10


def test_search_by_the_old_commune_code_finds_them(client, conn, keys, old_code) -> None:
    r = client.get("/api/parcels/search", params={"commune": old_code, "limit": 100})
    assert r.status_code == 200, r.text
    found = r.json()["results"]
    assert len(found) == 100 and r.json()["more"]
    assert {p["old_commune_code"] for p in found} == {old_code}
    assert all(p["commune_code"] != old_code for p in found)
    # A parcel's number under its old commune names it.
    pid, sheet, number = conn.execute(
        "SELECT id, sheet_no, parcel_no FROM parcels WHERE old_commune_code = %s ORDER BY id LIMIT 1",
        (old_code,)).fetchone()
    r = client.get(f"/api/parcels/by-number/{old_code}/{sheet}/{number}")
    assert r.status_code == 200 and r.json()["id"] == pid
    # Incidents by the code they were recorded under (OGC API property filter).
    expected = conn.execute("SELECT count(*) FROM incidents WHERE commune_code = %s",
                            (old_code,)).fetchone()[0]
    r = client.get("/ogc/collections/incidents/items",
                   params={"commune_code": old_code, "limit": 10000, "f": "json"},
                   headers=keys["security_officer"])
    assert r.status_code == 200, r.text
    items = r.json()["features"]
    assert len(items) == expected > 0
    assert all(f["properties"]["reported_at"] < "2025-07" for f in items)


def test_analytics_on_old_boundaries_count_them(client, conn, keys, old_code) -> None:
    # Incident statistics for the pre-2025 commune (its boundary as of before the reform) count
    # exactly the incidents recorded under its code in that window.
    r = client.get("/api/incidents/stats", headers=keys["security_officer"],
                   params={**BEFORE, "commune": old_code, "as_of": "2025-06-30"})
    assert r.status_code == 200, r.text
    body = r.json()
    recorded = conn.execute(
        "SELECT count(*) FROM incidents WHERE commune_code = %s AND reported_at >= %s AND reported_at < %s",
        (old_code, BEFORE["start"], BEFORE["end"])).fetchone()[0]
    assert body["area"]["code"] == old_code and body["area"]["valid_to"] == "2025-07-01"
    assert body["current"]["total"] == recorded > 0
    # The same code today names no unit: asking without the date is a 404 that says so.
    assert client.get("/api/incidents/stats", headers=keys["security_officer"],
                      params={**BEFORE, "commune": old_code}).status_code == 404
    # Exports by the old boundary (commune-date=pre-2025): every parcel recorded under it.
    parcels = conn.execute("SELECT count(*) FROM parcels WHERE old_commune_code = %s",
                           (old_code,)).fetchone()[0]
    r = client.post("/api/exports", headers=keys["land_officer"],
                    json={"layer": "parcels", "format": "geojson", "commune": old_code,
                          "commune-date": "pre-2025", "fields": "commune_code,old_commune_code"})
    assert r.status_code == 200, r.text
    features = r.json()["features"]
    assert len(features) == parcels
    assert {f["properties"]["old_commune_code"] for f in features} == {old_code}
    r = client.post("/api/exports", headers=keys["security_officer"],
                    json={"layer": "incidents", "format": "geojson", "commune": old_code,
                          "commune-date": "pre-2025", "datetime": f"{BEFORE['start']}/{BEFORE['end']}",
                          "fields": "commune_code"})
    assert r.status_code == 200, r.text
    assert len(r.json()["features"]) == recorded
    assert {f["properties"]["commune_code"] for f in r.json()["features"]} == {old_code}


def test_a_sample_parcel_history_crosses_the_merger(client, conn, keys, old_code) -> None:
    (pid,) = conn.execute(
        "SELECT parcel_id FROM parcel_history WHERE commune_code = %s AND legal_valid_from IS NOT NULL"
        " ORDER BY parcel_id LIMIT 1", (old_code,)).fetchone()
    history = client.get(f"/api/parcels/{pid}", headers=keys["land_officer"]).json()["history"]
    dates = [h["legal_valid_from"] for h in history]
    assert len(history) == 3 and dates == sorted(dates) and dates[-1] == "2025-07-01"
    assert all(h["decision_no"] for h in history)
    assert history[-1]["decision_no"].endswith("/NQ-UBTVQH15")
    merger = history[-1]["changes"]
    assert merger["commune_code"]["from"] == old_code
    assert merger["old_commune_code"] == {"from": None, "to": old_code}
    assert "land_user" in history[1]["changes"] or "land_use_codes" in history[1]["changes"]
    assert "geometry" in history[1]["changes"]
    page = client.get(f"/parcels/{pid}", headers=keys["land_officer"]).text
    assert "01/07/2025" in page and history[-1]["decision_no"] in page
