"""Exports as an OGC API - Processes process, driven by OWSLib against the real server: the
description offers what the caller may read, a job runs, its result is the file, and the usual
rules hold (bad input is a 400 at once, other people's jobs do not exist, hidden layers are 404)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pyogrio
import pytest
from _io_util import wait_for_job
from owslib.ogcapi.processes import Processes

pytestmark = pytest.mark.slow  # OWSLib against the live server, export jobs



@pytest.fixture(autouse=True)
def _owslib_forgets_our_key():
    """OWSLib's API objects update its module-wide REQUEST_HEADERS with the headers they are given:
    without this the operator's key would go with every later OWSLib request of the run."""
    import owslib.ogcapi

    saved = dict(owslib.ogcapi.REQUEST_HEADERS)
    yield
    owslib.ogcapi.REQUEST_HEADERS.clear()
    owslib.ogcapi.REQUEST_HEADERS.update(saved)


def test_owslib_runs_an_export_job_and_gets_the_file(live_server, conn, keys, tmp_path: Path) -> None:
    operator = keys["operator"]
    client = Processes(live_server + "/ogc", headers=operator)
    assert [p["id"] for p in client.processes()] == ["export"]
    description = client.process("export")
    assert description["jobControlOptions"] == ["async-execute"]
    assert "incidents" in description["inputs"]["layer"]["schema"]["enum"]  # operators read incidents
    anonymous = httpx.get(live_server + "/ogc/processes/export").json()
    assert "incidents" not in anonymous["inputs"]["layer"]["schema"]["enum"]
    assert "tourism_places" in anonymous["inputs"]["layer"]["schema"]["enum"]

    status = client.execute("export", {"layer": "tourism_places", "format": "gpkg", "crs": "EPSG:9209",
                                       "fields": ["name", "category"]}, async_=True)
    assert status["processID"] == "export" and status["status"] in ("accepted", "running", "successful")
    job_url = status["links"][0]["href"]
    assert job_url == f"{live_server}/ogc/jobs/{status['jobID']}"
    done = wait_for_job(httpx.get, job_url, operator, seconds=30)
    assert done["status"] == "successful" and done["progress"] == 100, done
    results = next(link["href"] for link in done["links"] if link["rel"].endswith("/results"))
    r = httpx.get(results, headers=operator)
    assert r.status_code == 200 and r.headers["content-type"] == "application/geopackage+sqlite3"
    path = tmp_path / "export.gpkg"
    path.write_bytes(r.content)
    df = pyogrio.read_dataframe(path)
    expected = conn.execute("SELECT name FROM tourism_places ORDER BY name").fetchall()
    assert sorted(df["name"]) == [e[0] for e in expected]
    assert set(df.columns) == {"id", "name", "category", "geometry"}  # the id always comes along
    assert pyogrio.read_info(path)["crs"] == "EPSG:9209"

    listed = httpx.get(live_server + "/ogc/jobs", headers=operator).json()["jobs"]
    assert status["jobID"] in [j["jobID"] for j in listed]
    other = keys["land_officer"]
    assert httpx.get(job_url, headers=other).status_code == 404
    assert httpx.get(results, headers=other).status_code == 404
    theirs = httpx.get(live_server + "/ogc/jobs", headers=other).json()["jobs"]
    assert status["jobID"] not in [j["jobID"] for j in theirs]


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"inputs": {"layer": "tourism_places", "format": "dwg"}}, 400, ["format", "dwg"]),
    ({"inputs": {"layer": "tourism_places", "crs": "EPSG:2000"}}, 400, ["crs"]),
    ({"inputs": {"layer": "tourism_places", "filter": "rating >"}}, 400, ["filter"]),
    ({"inputs": {"layer": "incidents"}}, 404, ["incidents"]),  # anonymous may not read it
    ({"inputs": {"layer": "tourism_places", "mode": "sync"}}, 400, ["mode"]),
    ({"inputs": {"layer": "tourism_places"}, "extra": 1}, 400, ["extra"]),
    ({"layer": "tourism_places"}, 400, ["inputs"]),
])
def test_bad_execute_requests_are_refused_at_once(live_server, body, status, words) -> None:
    r = httpx.post(live_server + "/ogc/processes/export/execution", json=body)
    assert r.status_code == status, r.text
    for w in words:
        assert w in r.text
    assert httpx.post(live_server + "/ogc/processes/buffer/execution", json=body).status_code == 404
