"""The /api routes of incident analytics, sign-in and health describe themselves in /openapi.json
(parameters with their bounds, bodies, every status code with its media type and schema), and
errors come out of the one error model: 401/403/429 keep their headers, /ogc keeps the OGC
document, and an unexpected exception is a 500 problem+json with an error id, no Python text,
on a connection that stays open."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from gis.settings import get_settings

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    with TestClient(create_app()) as client:
        r = client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def _params(spec: dict[str, Any], path: str, method: str = "get") -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in spec["paths"][path][method].get("parameters", [])}


def _responses(spec: dict[str, Any], path: str, method: str = "get") -> dict[str, Any]:
    return spec["paths"][path][method]["responses"]


def _schema(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def _assert_problem(spec: dict[str, Any], path: str, method: str, *statuses: int) -> None:
    responses = _responses(spec, path, method)
    for status in (*statuses, 500):
        content = responses[str(status)]["content"]
        assert list(content) == [PROBLEM], (path, status, content)
        props = _schema(spec, content[PROBLEM]["schema"])["properties"]
        assert {"type", "title", "status", "detail", "code"} <= set(props), (path, status)


@pytest.mark.parametrize("path", ["/api/incidents/heatmap", "/api/incidents/points",
                                  "/api/incidents/stats"])
def test_incident_views_declare_every_filter_with_bounds(spec, path) -> None:
    params = _params(spec, path)
    expected = {"start", "end", "category", "severity", "status", "source", "bbox", "unit",
                "boundaries", "as_of", "z"}
    if path.endswith("stats"):
        expected |= {"commune"}
    assert set(params) == expected
    for name, p in params.items():
        assert p["in"] == "query" and not p.get("required", False), name
        assert p.get("description"), name
        schema = p["schema"]
        if name != "z" or path.endswith("stats"):
            text = next(s for s in schema.get("anyOf", [schema]) if s.get("type") == "string")
            if name == "boundaries":  # a closed list
                assert text["enum"] == ["current", "pre2025"]
                continue
            assert 0 < text["maxLength"] <= 1000, name
    if not path.endswith("stats"):
        assert params["z"]["schema"]["type"] == "number"
        assert params["z"]["schema"]["minimum"] == 0 and params["z"]["schema"]["maximum"] == 22
    # the code lists come from the catalogue
    assert "fire" in params["category"]["description"]
    assert "in_progress" in params["status"]["description"]
    ok = _responses(spec, path)["200"]["content"]
    assert list(ok) == ["application/json"]
    props = set(_schema(spec, ok["application/json"]["schema"])["properties"])
    assert {"current", "previous", "change"} <= props if path.endswith("stats") else "total" in props
    _assert_problem(spec, path, "get", 400, 401, 404, 429, 503)


def test_covering_cameras_declares_its_path_and_geojson(spec) -> None:
    path = "/api/incidents/{incident_id}/cameras"
    p = _params(spec, path)["incident_id"]
    assert p["in"] == "path" and p["schema"]["type"] == "integer"
    assert p["schema"]["minimum"] == 1 and p["schema"]["maximum"] == 2**63 - 1
    ok = _responses(spec, path)["200"]["content"]
    assert list(ok) == ["application/geo+json"]
    assert ok["application/geo+json"]["schema"]["properties"]["type"]["const"] == "FeatureCollection"
    _assert_problem(spec, path, "get", 400, 404)


def test_auth_routes_declare_bodies_and_statuses(spec) -> None:
    token = spec["paths"]["/api/auth/token"]["post"]
    form = token["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    form = _schema(spec, form)
    assert {"username", "password"} <= set(form["properties"]) and "username" in form["required"]
    assert "access_token" in str(_schema(spec, token["responses"]["200"]["content"]
                                         ["application/json"]["schema"]))
    _assert_problem(spec, "/api/auth/token", "post", 401, 422, 429)
    assert "WWW-Authenticate" in token["responses"]["401"]["headers"]
    assert "Retry-After" in token["responses"]["429"]["headers"]
    for path in ("/api/auth/refresh", "/api/auth/signout"):
        body = spec["paths"][path]["post"]["requestBody"]["content"]
        assert set(body) == {"application/json", "application/x-www-form-urlencoded"}
        assert "refresh_token" in body["application/json"]["schema"]["properties"]
        max_len = str(body["application/json"]["schema"]["properties"]["refresh_token"])
        assert "maxLength" in max_len
        _assert_problem(spec, path, "post", 400, 401, 503)
    assert "204" in _responses(spec, "/api/auth/signout", "post")
    _assert_problem(spec, "/api/auth/me", "get", 401)
    _assert_problem(spec, "/api/auth/users", "get", 401, 403)
    users = _responses(spec, "/api/auth/users")["200"]["content"]["application/json"]["schema"]
    assert users["type"] == "array"


def test_health_declares_its_body_and_503(spec) -> None:
    ok = _responses(spec, "/healthz")["200"]["content"]["application/json"]["schema"]
    assert {"status", "postgis", "schema_revision", "admin_units"} <= set(_schema(spec, ok)["properties"])
    _assert_problem(spec, "/healthz", "get", 503)
    assert "Retry-After" in _responses(spec, "/healthz")["503"]["headers"]


def test_map_page_declares_lang(spec) -> None:
    lang = _params(spec, "/")["lang"]
    text = next(s for s in lang["schema"].get("anyOf", [lang["schema"]]) if s.get("type") == "string")
    assert text["maxLength"] == 100
    assert "text/html" in _responses(spec, "/")["200"]["content"]


# --- the error model at work -----------------------------------------------------------------


def test_401_403_keep_challenges_and_no_store_in_both_formats() -> None:
    with TestClient(create_app()) as client:
        api = client.get("/api/auth/me", headers={"X-API-Key": "gioc_nonsense"})
        ogc = client.get("/ogc/collections", headers={"X-API-Key": "gioc_nonsense"})
        anon = client.get("/api/auth/users")
    assert api.status_code == ogc.status_code == anon.status_code == 401
    assert api.headers["content-type"].startswith(PROBLEM)
    body = api.json()
    assert body["status"] == 401 and body["code"] == "Unauthorized" and body["detail"]
    assert set(ogc.json()) == {"code", "description"} and ogc.json()["code"] == "Unauthorized"
    assert ogc.headers["content-type"].startswith("application/json")
    for r in (api, ogc, anon):
        assert r.headers["cache-control"] == "no-store"
        assert any(c.startswith('Bearer realm="GeoIOC"') for c in r.headers.get_list("www-authenticate"))
    # a script's call (no navigation) is not offered Basic: no browser password dialog
    assert not any(c.startswith("Basic") for c in api.headers.get_list("www-authenticate"))


def test_rate_limit_429_in_the_format_of_the_way_out() -> None:
    settings = get_settings().model_copy(update={"rate_limit_anonymous_per_second": 0.01,
                                                 "rate_limit_anonymous_burst": 1})
    client = TestClient(create_app(settings))
    assert client.get("/healthz").status_code == 200
    api = client.get("/api/auth/me")
    assert api.status_code == 429 and api.headers["content-type"].startswith(PROBLEM)
    assert api.json()["code"] == "TooManyRequests" and "đăng nhập" in api.json()["detail"]
    en = client.get("/api/auth/me", headers={"Accept-Language": "en"})
    assert en.status_code == 429 and "sign in" in en.json()["detail"]
    ogc = client.get("/ogc/collections")
    assert ogc.status_code == 429 and set(ogc.json()) == {"code", "description"}
    for r in (api, ogc):
        assert int(r.headers["retry-after"]) >= 1
        assert r.headers["x-content-type-options"] == "nosniff"


SECRET = "boom at /srv/geoioc/secret.py: SELECT password_hash FROM users"


def _app_with_a_failing_route() -> FastAPI:
    app = create_app()

    def fail() -> None:
        raise RuntimeError(SECRET)

    app.add_api_route("/api/test-routes-b/fail", fail, methods=["GET"])
    return app


def _assert_500(status: int, ctype: str, text: str) -> None:
    assert status == 500
    assert ctype.startswith(PROBLEM)
    body = json.loads(text)
    assert body["status"] == 500 and body["code"] == "InternalError"
    assert len(body["error_id"]) == 12 and body["error_id"] in body["detail"]
    for leak in ("RuntimeError", "SELECT", "/srv", "secret", "Traceback", "password"):
        assert leak not in text, leak


def test_unexpected_error_is_500_problem_with_an_error_id(caplog) -> None:
    with (TestClient(_app_with_a_failing_route(), raise_server_exceptions=False) as client,
          caplog.at_level("ERROR", logger="geoioc.errors")):
        r = client.get("/api/test-routes-b/fail")
    _assert_500(r.status_code, r.headers["content-type"], r.text)
    # the id is in the log, with the stack
    record = next(rec for rec in caplog.records if r.json()["error_id"] in rec.getMessage())
    assert record.exc_info is not None and SECRET in str(record.exc_info[1])


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    """The app with a failing route under a real HTTP server (keep-alive is the server's)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(_app_with_a_failing_route(), host="127.0.0.1", port=port,
                            log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield port
    srv.should_exit = True
    thread.join(10)


def test_keep_alive_connection_survives_an_unexpected_error(server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    try:
        conn.request("GET", "/api/test-routes-b/fail")
        r = conn.getresponse()
        text = r.read().decode()
        _assert_500(r.status, r.getheader("content-type", ""), text)
        assert (r.getheader("connection") or "").lower() != "close"
        sock = conn.sock
        assert sock is not None
        local = sock.getsockname()
        conn.request("GET", "/healthz")  # same socket: http.client would reconnect if closed
        ok = conn.getresponse()
        assert ok.status == 200 and json.loads(ok.read())["status"] == "ok"
        assert conn.sock is sock and sock.getsockname() == local
    finally:
        conn.close()
