"""/openapi.json describes the parcel, export, import and OGC Processes routes: every parameter
with its type and bounds, every request body with its schema, every status code each route can
answer with its media type (problem details under /api, the OGC exception document under /ogc).
A client generator or a person at /docs can then use them without reading the code."""

from __future__ import annotations

from typing import Any

import pytest

PROBLEM = "application/problem+json"
OGC_ERROR = "application/json"


@pytest.fixture(scope="module")
def spec(client) -> dict[str, Any]:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def _op(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    assert path in spec["paths"], path
    return spec["paths"][path][method]


def _param(op: dict[str, Any], name: str, where: str = "query") -> dict[str, Any]:
    for p in op.get("parameters", []):
        if p["name"] == name and p["in"] == where:
            return p
    raise AssertionError(f"{name} ({where}) not documented")


def _bounds(schema: dict[str, Any]) -> dict[str, Any]:
    """The first branch of an optional parameter that carries the type."""
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") not in (None, "null"):
            return branch
    return schema


def _statuses(op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in op["responses"].items() if k != "default"}


def _assert_errors(op: dict[str, Any], statuses: set[int], media: str = PROBLEM) -> None:
    responses = _statuses(op)
    for status in statuses | {500, 503}:
        assert str(status) in responses, (status, sorted(responses))
        content = responses[str(status)]["content"]
        assert media in content and content[media]["schema"]["properties"]["code"]["type"] == "string"
    # FastAPI's own 422 schema is not advertised: api/errors.py never sends it.
    for response in op["responses"].values():
        assert "HTTPValidationError" not in str(response)


# --- parcels -------------------------------------------------------------------------------------


def test_parcel_search_parameters_bounds_and_statuses(spec) -> None:
    op = _op(spec, "get", "/api/parcels/search")
    assert _bounds(_param(op, "limit")["schema"]) == {"type": "integer", "minimum": 1, "maximum": 500}
    assert _bounds(_param(op, "offset")["schema"])["maximum"] == 100_000
    assert _bounds(_param(op, "sheet")["schema"]) == {"type": "integer", "minimum": 1, "maximum": 9999}
    assert _bounds(_param(op, "parcel")["schema"])["maximum"] == 99999
    for name in ("commune", "land_use", "owner", "point", "xy"):
        assert _bounds(_param(op, name)["schema"])["maxLength"] > 0, name
    assert "application/json" in op["responses"]["200"]["content"]
    _assert_errors(op, {400, 401, 403, 404, 422, 429})
    assert "WWW-Authenticate" in op["responses"]["401"]["headers"]
    assert "Retry-After" in op["responses"]["503"]["headers"]


def test_parcel_polygon_search_body(spec) -> None:
    op = _op(spec, "post", "/api/parcels/search")
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["geometry"] and body["additionalProperties"] is False
    assert body["properties"]["relation"]["enum"] == ["intersects", "within"]
    assert _bounds(body["properties"]["limit"])["maximum"] == 500
    assert _bounds(body["properties"]["sheet"])["maximum"] == 9999
    _assert_errors(op, {400, 401, 403, 404, 422})


def test_parcel_by_number_detail_and_anomalies(spec) -> None:
    op = _op(spec, "get", "/api/parcels/by-number/{commune}/{sheet}/{parcel}")
    assert _param(op, "sheet", "path")["schema"] == {"type": "integer", "minimum": 1, "maximum": 9999,
                                                      "description": "map sheet number", "title": "Sheet"}
    assert _param(op, "parcel", "path")["schema"]["maximum"] == 99999
    assert _param(op, "commune", "path")["schema"]["maxLength"] == 100
    assert _bounds(_param(op, "as_of")["schema"])["maxLength"] == 40
    assert "ETag" in op["responses"]["200"]["headers"]
    _assert_errors(op, {300, 400, 401, 404})

    op = _op(spec, "get", "/api/parcels/{parcel_id}")
    assert _param(op, "parcel_id", "path")["schema"]["maxLength"] == 100
    _assert_errors(op, {400, 404})

    op = _op(spec, "get", "/api/parcels/anomalies")
    assert _bounds(_param(op, "commune")["schema"])["maxLength"] == 100
    _assert_errors(op, {400, 401, 403, 404})


def test_parcel_patch_body_and_statuses(spec) -> None:
    op = _op(spec, "patch", "/api/parcels/{parcel_id}")
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert body["additionalProperties"] is False
    assert set(body["properties"]) == {"type", "id", "version", "properties", "geometry", "crs", "note"}
    assert _bounds(body["properties"]["version"])["minimum"] == 1
    assert _param(op, "if-match", "header")["schema"]["anyOf"][0]["maxLength"] == 100
    assert "ETag" in op["responses"]["200"]["headers"]
    _assert_errors(op, {400, 401, 403, 404, 409, 422, 428})


@pytest.mark.parametrize("path, media", [("/parcels/{parcel_id}/extract.pdf", "application/pdf"),
                                         ("/parcels/{parcel_id}/extract.html", "text/html")])
def test_extracts_media_types(spec, path, media) -> None:
    op = _op(spec, "get", path)
    assert list(op["responses"]["200"]["content"]) == [media]
    assert _bounds(_param(op, "lang")["schema"])["maxLength"] == 10
    _assert_errors(op, {400, 404})
    assert "text/html" in op["responses"]["404"]["content"]  # a browser gets a page


# --- exports and imports -------------------------------------------------------------------------


def test_export_parameters_body_and_files(spec) -> None:
    get = _op(spec, "get", "/api/exports")
    for name in ("layer", "format", "crs", "bbox", "bbox-crs", "commune", "commune-date", "filter",
                 "filter-lang", "filter-crs", "datetime", "fields", "encoding", "mode"):
        assert _bounds(_param(get, name)["schema"])["maxLength"] > 0, name
    files = get["responses"]["200"]["content"]
    for media in ("application/zip", "application/geo+json", "application/geopackage+sqlite3",
                  "application/flatgeobuf", "application/vnd.google-earth.kml+xml"):
        assert files[media]["schema"] == {"type": "string", "format": "binary"}, media
    assert "Location" in get["responses"]["202"]["headers"]
    assert "application/json" in get["responses"]["202"]["content"]
    _assert_errors(get, {400, 401, 404})

    post = _op(spec, "post", "/api/exports")
    body = post["requestBody"]["content"]["application/json"]["schema"]
    params, wrapped = body["oneOf"]
    assert "bbox-crs" in params["properties"] and params["additionalProperties"] is False
    assert wrapped["required"] == ["inputs"]
    assert not any(p["name"].lower() == "content-type" for p in post["parameters"])
    _assert_errors(post, {400, 401, 404, 415})


def test_export_jobs(spec) -> None:
    op = _op(spec, "get", "/api/exports/jobs/{job_id}")
    assert _param(op, "job_id", "path")["schema"]["maxLength"] == 64
    _assert_errors(op, {401, 404})
    op = _op(spec, "get", "/api/exports/jobs/{job_id}/download")
    assert "application/zip" in op["responses"]["200"]["content"]
    _assert_errors(op, {401, 404, 409})
    assert "application/json" in _op(spec, "get", "/api/exports/formats")["responses"]["200"]["content"]


def test_import_form_and_report(spec) -> None:
    op = _op(spec, "post", "/api/imports")
    form = op["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(form["required"]) == {"file", "layer"}
    assert form["properties"]["file"]["format"] == "binary"
    assert form["properties"]["layer"]["maxLength"] == 64
    assert _bounds(_param(op, "layer")["schema"])["maxLength"] == 64
    for status in ("200", "422"):  # the import report, written or not
        assert "application/json" in op["responses"][status]["content"]
    _assert_errors(op, {400, 401, 403, 404, 413})


# --- OGC API - Processes -------------------------------------------------------------------------


def test_processes_routes(spec) -> None:
    op = _op(spec, "post", "/ogc/processes/{process_id}/execution")
    assert _param(op, "process_id", "path")["schema"]["maxLength"] == 64
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["inputs"] and "layer" in body["properties"]["inputs"]["properties"]
    assert "201" in op["responses"] and "200" not in op["responses"]
    assert "Location" in op["responses"]["201"]["headers"]
    _assert_errors(op, {400, 401, 404, 413}, media=OGC_ERROR)
    assert op["responses"]["404"]["content"][OGC_ERROR]["schema"]["required"] == ["code", "description"]

    for path in ("/ogc/processes/{process_id}", "/ogc/jobs/{job_id}", "/ogc/jobs/{job_id}/results"):
        _assert_errors(_op(spec, "get", path), {401, 404}, media=OGC_ERROR)
    results = _op(spec, "get", "/ogc/jobs/{job_id}/results")
    assert "application/zip" in results["responses"]["200"]["content"]
    assert "409" in results["responses"]
    _assert_errors(_op(spec, "get", "/ogc/jobs"), {401}, media=OGC_ERROR)
    assert _bounds(_param(_op(spec, "get", "/ogc/processes"), "lang")["schema"])["maxLength"] == 10


def test_docs_page_is_served(client) -> None:
    r = client.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()
