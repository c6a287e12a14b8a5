"""Authentication and the audit log: sign-in, tokens, API keys, HTTP Basic, disabled users,
401 versus 403, brute-force and rate limits, CORS, security headers, and an audit log the
application cannot rewrite.

Users and keys get unique names per run, so the suite can run again on the same database.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import stat
import uuid

import jwt
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from api.app import create_app
from gis import audit
from gis.auth import api_keys, users
from gis.auth.errors import CredentialsRejected, UserError
from gis.auth.secret import jwt_secret
from gis.auth.throttle import FailureCounter
from gis.db import APP_ROLE, connection
from gis.settings import get_settings

RUN = uuid.uuid4().hex[:8]
PASSWORD = "mật-khẩu-đủ-dài-1"
_count = 0


@pytest.fixture(scope="module", autouse=True)
def _remove_this_runs_users(conn):
    """Users (with their keys and sessions) go at the end; their audit rows stay, by design."""
    yield
    conn.execute("DELETE FROM users WHERE username LIKE %s", (f"t{RUN}-%",))


@pytest.fixture(scope="module", autouse=True)
def _in_english(client):
    """These tests read the reasons as raised (English); tests/test_error_language.py checks
    that people read them in their language (Vietnamese by default)."""
    client.headers["Accept-Language"] = "en"
    yield
    del client.headers["Accept-Language"]


def new_user(conn: psycopg.Connection, *roles: str, password: str = PASSWORD) -> str:
    global _count
    _count += 1
    name = f"t{RUN}-{_count}"
    users.add_user(conn, name, password, full_name="Người thử nghiệm", roles=roles)
    return name


def sign_in(client: TestClient, username: str, password: str = PASSWORD):
    return client.post("/api/auth/token", data={"username": username, "password": password})


def tokens(client: TestClient, username: str) -> dict:
    r = sign_in(client, username)
    assert r.status_code == 200, r.text
    return r.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def error_text(r) -> str:
    """The message of an error body: RFC 9457 `detail` under /api, the OGC document's
    `description` under /ogc."""
    body = r.json()
    if r.headers["content-type"].startswith("application/problem+json"):
        return body["detail"]
    return body["description"]


def assert_401(r, reason: str) -> None:
    assert r.status_code == 401, r.text
    body = r.json()
    assert body["code"] == "Unauthorized"
    assert reason in error_text(r), body
    challenges = r.headers.get_list("www-authenticate")
    assert any(c.startswith('Bearer realm="GeoIOC"') for c in challenges), challenges


def audit_rows(conn: psycopg.Connection, username: str, action: str) -> list[tuple]:
    return conn.execute(
        "SELECT status, target, credential, client FROM audit_log WHERE username = %s "
        "AND action = %s ORDER BY id", (username, action)).fetchall()


def app_with(**overrides) -> TestClient:
    """A separate app with its own settings (and fresh counters), without touching the env."""
    settings = get_settings().model_copy(update=overrides)
    return TestClient(create_app(settings), headers={"Accept-Language": "en"})


# --- password sign-in and tokens --------------------------------------------------------------
def test_sign_in_issues_tokens_that_work_and_is_audited(client, conn) -> None:
    name = new_user(conn, "operator", "land_officer")
    r = sign_in(client, name.upper())  # usernames are case-insensitive
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "bearer"
    assert 0 < body["expires_in"] <= 15 * 60
    assert 15 * 60 < body["refresh_expires_in"] <= 8 * 3600
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "geoioc" and claims["typ"] == "access" and claims["sub"] == name
    assert {"iss", "iat", "exp", "jti", "sid"} <= claims.keys()
    me = client.get("/api/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json() == {"user": name, "roles": ["land_officer", "operator"], "auth": "jwt"}
    rows = audit_rows(conn, name, "sign_in")
    assert len(rows) == 1 and rows[0][0] == 200 and rows[0][2] == "password"
    assert rows[0][3] == "testclient"


def test_wrong_password_is_401_and_audited(client, conn) -> None:
    name = new_user(conn, "operator")
    r = sign_in(client, name, "not-the-password")
    assert_401(r, "wrong username or password")
    rows = audit_rows(conn, name, "sign_in_failed")
    assert len(rows) == 1 and rows[0][0] == 401
    assert rows[0][1] == {"reason": "wrong username or password"}
    # An unknown user gets the same answer (no user enumeration).
    assert_401(sign_in(client, f"nobody-{RUN}"), "wrong username or password")


def test_anonymous_is_anonymous_and_me_needs_sign_in(client) -> None:
    assert client.get("/healthz").status_code == 200
    r = client.get("/api/auth/me")
    assert_401(r, "sign-in required")
    # QGIS and GDAL are told they may use Basic; browser scripts are not (no password dialog).
    assert any(c.startswith("Basic") for c in r.headers.get_list("www-authenticate"))
    r = client.get("/api/auth/me", headers={"Sec-Fetch-Mode": "cors"})
    assert not any(c.startswith("Basic") for c in r.headers.get_list("www-authenticate"))


@pytest.fixture(scope="module")
def signed_in(client, conn) -> dict:
    name = new_user(conn, "operator")
    return {"user": name, **tokens(client, name)}


def _forge(client, signed_in, **changes) -> str:
    claims = jwt.decode(signed_in["access_token"], options={"verify_signature": False})
    claims.update(changes)
    return client.app.state.auth.codec.encode(claims)


@pytest.mark.parametrize(("case", "reason"), [
    ("tampered", "token signature is invalid"),
    ("other_key", "token signature is invalid"),
    ("expired", "token expired"),
    ("wrong_audience", "wrong audience"),
    ("wrong_issuer", "wrong issuer"),
    ("refresh_as_access", "refresh token used as access token"),
    ("alg_none", "malformed token"),
    ("garbage", "malformed token"),
    ("no_sid", "lacks the 'sid' claim"),
])
def test_bad_jwts_are_rejected_with_the_reason(client, signed_in, case: str, reason: str) -> None:
    now = dt.datetime.now(dt.UTC)
    good = signed_in["access_token"]
    claims = jwt.decode(good, options={"verify_signature": False})
    if case == "tampered":  # same signature, payload now claims admin
        header, _, sig = good.split(".")
        payload = base64.urlsafe_b64encode(
            json.dumps({**claims, "roles": ["admin"]}).encode()).rstrip(b"=").decode()
        token = f"{header}.{payload}.{sig}"
    elif case == "other_key":
        token = jwt.encode(claims, "x" * 48, algorithm="HS256")
    elif case == "expired":
        token = _forge(client, signed_in, iat=now - dt.timedelta(hours=2),
                       exp=now - dt.timedelta(hours=1))
    elif case == "wrong_audience":
        token = _forge(client, signed_in, aud="another-system")
    elif case == "wrong_issuer":
        token = _forge(client, signed_in, iss="someone-else")
    elif case == "refresh_as_access":
        token = signed_in["refresh_token"]
    elif case == "alg_none":
        token = jwt.encode({**claims, "roles": ["admin"]}, None, algorithm="none")
    elif case == "garbage":
        token = "eyJhbGciOi.not-a-token"
    else:
        token = client.app.state.auth.codec.encode({k: v for k, v in claims.items() if k != "sid"})
    assert_401(client.get("/api/auth/me", headers=bearer(token)), reason)
    # The failure is never a silent fall-back to anonymous on public endpoints either.
    assert_401(client.get("/ogc/collections", headers=bearer(token)), reason)


def test_refresh_rotates_and_sign_out_ends_the_session(client, conn) -> None:
    name = new_user(conn, "leader")
    first = tokens(client, name)
    r = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["access_token"] != first["access_token"]
    assert client.get("/api/auth/me", headers=bearer(second["access_token"])).status_code == 200
    # Form-encoded, as OAuth2 clients send it.
    r = client.post("/api/auth/refresh", data={"refresh_token": second["refresh_token"]})
    assert r.status_code == 200, r.text
    third = r.json()
    r = client.post("/api/auth/signout", json={"refresh_token": third["refresh_token"]})
    assert r.status_code == 204
    assert_401(client.post("/api/auth/refresh", json={"refresh_token": third["refresh_token"]}),
               "signed out")
    assert_401(client.get("/api/auth/me", headers=bearer(third["access_token"])), "signed out")
    assert audit_rows(conn, name, "sign_out")
    assert len(audit_rows(conn, name, "refresh")) == 2


def test_reused_refresh_token_revokes_the_session(client, conn) -> None:
    name = new_user(conn, "operator")
    first = tokens(client, name)
    second = client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    # Someone replays the first refresh token: both copies of the session end.
    assert_401(client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]}),
               "already used")
    assert_401(client.get("/api/auth/me", headers=bearer(second["access_token"])), "signed out")
    assert_401(client.post("/api/auth/refresh", json={"refresh_token": second["refresh_token"]}),
               "signed out")


def test_sign_out_with_the_access_token(client, conn) -> None:
    name = new_user(conn, "operator")
    t = tokens(client, name)
    assert client.post("/api/auth/signout", headers=bearer(t["access_token"])).status_code == 204
    assert_401(client.get("/api/auth/me", headers=bearer(t["access_token"])), "signed out")
    assert client.post("/api/auth/signout").status_code == 400


def test_revoked_role_leaves_the_token_at_once(client, conn) -> None:
    name = new_user(conn, "operator", "land_officer")
    t = tokens(client, name)
    users.revoke_role(conn, name, "land_officer")
    me = client.get("/api/auth/me", headers=bearer(t["access_token"])).json()
    assert me["roles"] == ["operator"]


# --- API keys ---------------------------------------------------------------------------------
def test_api_key_via_header_bearer_and_basic(client, conn) -> None:
    name = new_user(conn, "operator", "security_officer")
    key = api_keys.create_key(conn, name, "qgis", roles=["security_officer"])
    assert key.key.startswith(f"gioc_{key.prefix}_")
    stored = conn.execute("SELECT key_hash FROM api_keys WHERE prefix = %s",
                          (key.prefix,)).fetchone()[0]
    assert key.key not in stored and key.key.split("_", 2)[2] not in stored
    expected = {"user": name, "roles": ["security_officer"], "auth": f"api_key:{key.prefix}"}
    for headers in ({"X-API-Key": key.key}, bearer(key.key), basic(name, key.key)):
        r = client.get("/api/auth/me", headers=headers)
        assert r.status_code == 200, (headers, r.text)
        assert r.json() == expected
    assert_401(client.get("/api/auth/me", headers=basic("someone-else", key.key)),
               "another user")
    wrong_secret = key.key[:-4] + ("AAAA" if not key.key.endswith("AAAA") else "BBBB")
    assert_401(client.get("/api/auth/me", headers={"X-API-Key": wrong_secret}), "invalid API key")
    assert_401(client.get("/api/auth/me", headers={"X-API-Key": "gioc_nonsense"}),
               "malformed API key")


def test_revoked_and_expired_api_keys_are_rejected(client, conn) -> None:
    name = new_user(conn, "operator")
    revoked = api_keys.create_key(conn, name, "old script")
    assert client.get("/api/auth/me", headers={"X-API-Key": revoked.key}).status_code == 200
    api_keys.revoke_key(conn, revoked.prefix)
    assert_401(client.get("/api/auth/me", headers={"X-API-Key": revoked.key}), "API key revoked")
    expired = api_keys.create_key(conn, name, "gdal", days=1,
                                  now=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
    assert_401(client.get("/api/auth/me", headers=bearer(expired.key)), "API key expired")
    listed = {k.prefix: k.status() for k in api_keys.list_keys(conn, name)}
    assert listed == {revoked.prefix: "revoked", expired.prefix: "expired"}


def test_key_roles_are_limited_to_the_users_roles(client, conn) -> None:
    name = new_user(conn, "operator")
    with pytest.raises(UserError, match="does not hold role admin"):
        api_keys.create_key(conn, name, "escalation", roles=["operator", "admin"])
    # The database refuses it too, whatever the code path.
    user_id = users.require_account(conn, name).id
    with pytest.raises(psycopg.errors.CheckViolation, match="not held by its user"):
        conn.execute("INSERT INTO api_keys (name, prefix, key_hash, user_id, roles, expires_at) "
                     "VALUES ('x', %s, %s, %s, '{admin}', now() + interval '1 day')",
                     (uuid.uuid4().hex[:12], "0" * 64, user_id))
    # A key never acts with a role its user has lost, even if granted again later.
    users.grant_role(conn, name, "land_officer")
    key = api_keys.create_key(conn, name, "both")
    assert set(key.roles) == {"operator", "land_officer"}
    users.revoke_role(conn, name, "land_officer")
    users.grant_role(conn, name, "land_officer")
    me = client.get("/api/auth/me", headers={"X-API-Key": key.key}).json()
    assert me["roles"] == ["operator"]


# --- HTTP Basic ---------------------------------------------------------------------------------
def test_basic_auth_works_and_verifies_argon2_once(client, conn, monkeypatch) -> None:
    from gis.auth import passwords

    name = new_user(conn, "land_officer")
    calls = []
    real = passwords.verify_password
    monkeypatch.setattr(passwords, "verify_password", lambda h, p: calls.append(1) or real(h, p))
    for _ in range(5):  # QGIS paging: one argon2 verification, then the cache
        r = client.get("/api/auth/me", headers=basic(name, PASSWORD))
        assert r.status_code == 200, r.text
        assert r.json() == {"user": name, "roles": ["land_officer"], "auth": "basic"}
    assert len(calls) == 1
    assert_401(client.get("/api/auth/me", headers=basic(name, "wrong-password-x")),
               "wrong username or password")
    rows = audit_rows(conn, name, "sign_in_failed")
    assert len(rows) == 1 and rows[0][2] == "basic"
    # A new password invalidates the cached verification at once.
    users.set_password(conn, name, "a-new-password-2")
    assert_401(client.get("/api/auth/me", headers=basic(name, PASSWORD)), "wrong username")
    assert client.get("/api/auth/me", headers=basic(name, "a-new-password-2")).status_code == 200


@pytest.mark.parametrize("header", ["Basic !!!notbase64", "Basic " + base64.b64encode(b"nocolon")
                                    .decode(), "Digest username=x", "Bearer "])
def test_malformed_authorization_is_401(client, header: str) -> None:
    r = client.get("/ogc/collections", headers={"Authorization": header})
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "Unauthorized"


def test_disabled_user_is_rejected_everywhere(client, conn) -> None:
    name = new_user(conn, "operator")
    t = tokens(client, name)
    key = api_keys.create_key(conn, name, "script")
    assert client.get("/api/auth/me", headers=basic(name, PASSWORD)).status_code == 200
    users.set_disabled(conn, name, True)
    assert_401(client.get("/api/auth/me", headers=bearer(t["access_token"])), "user disabled")
    assert_401(client.get("/api/auth/me", headers={"X-API-Key": key.key}), "user disabled")
    assert_401(client.get("/api/auth/me", headers=basic(name, PASSWORD)), "user disabled")
    assert_401(sign_in(client, name), "user disabled")
    assert_401(client.post("/api/auth/refresh", json={"refresh_token": t["refresh_token"]}),
               "signed out")
    users.set_disabled(conn, name, False)
    assert client.get("/api/auth/me", headers={"X-API-Key": key.key}).status_code == 200


# --- 401 versus 403 -----------------------------------------------------------------------------
def test_require_roles_401_for_anonymous_403_for_lacking_role(client, conn) -> None:
    assert_401(client.get("/api/auth/users"), "sign-in required")
    operator = new_user(conn, "operator")
    r = client.get("/api/auth/users", headers=basic(operator, PASSWORD))
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "Forbidden" and "admin" in r.json()["detail"]
    admin = new_user(conn, "admin")
    r = client.get("/api/auth/users", headers=basic(admin, PASSWORD))
    assert r.status_code == 200, r.text
    listed = {u["username"]: u["roles"] for u in r.json()}
    assert listed[operator] == ["operator"] and listed[admin] == ["admin"]
    assert "password_hash" not in r.text


def test_require_roles_refuses_unknown_roles() -> None:
    from api.security import require_roles

    with pytest.raises(ValueError, match="unknown role"):
        require_roles("land_oficer")


# --- brute force and rate limits ----------------------------------------------------------------
def test_brute_force_locks_the_user_out_with_429(conn) -> None:
    limit = get_settings().signin_max_failures_per_user
    name = new_user(conn, "operator")
    c = app_with()
    for i in range(limit):
        assert_401(sign_in(c, name, f"guess-number-{i}"), "wrong username or password")
    r = sign_in(c, name)  # even the right password waits
    assert r.status_code == 429, r.text
    assert r.json()["code"] == "TooManyRequests"
    assert int(r.headers["retry-after"]) >= 1
    assert c.get("/api/auth/me", headers=basic(name, PASSWORD)).status_code == 429
    assert audit_rows(conn, name, "sign_in_locked")
    assert len(audit_rows(conn, name, "sign_in_failed")) == limit


def test_repeating_the_same_wrong_password_counts_once(conn) -> None:
    name = new_user(conn, "operator")
    c = app_with()
    for _ in range(get_settings().signin_max_failures_per_user + 3):
        assert c.get("/api/auth/me", headers=basic(name, "stale-saved-password")).status_code == 401
    assert c.get("/api/auth/me", headers=basic(name, PASSWORD)).status_code == 200


def test_one_address_guessing_many_users_is_locked_out(conn) -> None:
    c = app_with(signin_max_failures_per_ip=3)
    for i in range(3):
        assert sign_in(c, f"spray-{RUN}-{i}", "Password123!").status_code == 401
    assert sign_in(c, f"spray-{RUN}-9", "Password123!").status_code == 429


def test_failure_counter_backs_off_exponentially() -> None:
    now = [0.0]
    counter = FailureCounter(3, lockout=10, max_lockout=35, window=100, clock=lambda: now[0])
    assert [counter.failure("u") for _ in range(3)] == [0.0, 0.0, 10.0]
    assert counter.retry_after("u") == 10.0
    now[0] = 11
    assert counter.retry_after("u") == 0.0
    assert counter.failure("u") == 20.0
    now[0] = 32
    assert counter.failure("u") == 35.0  # capped
    counter.success("u")
    assert counter.retry_after("u") == 0.0


def test_anonymous_rate_limit(conn) -> None:
    c = app_with(rate_limit_anonymous_per_second=0.5, rate_limit_anonymous_burst=3)
    assert [c.get("/healthz").status_code for _ in range(3)] == [200, 200, 200]
    r = c.get("/healthz")
    assert r.status_code == 429
    assert r.json()["code"] == "TooManyRequests"
    assert int(r.headers["retry-after"]) >= 1
    # Signed-in clients are not limited by the anonymous bucket.
    name = new_user(conn, "operator")
    key = api_keys.create_key(conn, name, "bulk")
    assert all(c.get("/api/auth/me", headers={"X-API-Key": key.key}).status_code == 200
               for _ in range(5))


# --- CORS and security headers ------------------------------------------------------------------
def test_security_headers_on_html(client) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "http" not in csp.replace("'self'", "")  # no other host by default
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    j = client.get("/healthz")
    assert j.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in j.headers


def test_cors_only_for_configured_origins(client) -> None:
    r = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    c = app_with(cors_origins=["https://ioc.bacninh.example"])
    ok = c.get("/healthz", headers={"Origin": "https://ioc.bacninh.example"})
    assert ok.headers["access-control-allow-origin"] == "https://ioc.bacninh.example"
    bad = c.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in bad.headers
    pre = c.options("/api/auth/me", headers={"Origin": "https://evil.example",
                                             "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in pre.headers
    pre = c.options("/api/auth/me", headers={"Origin": "https://ioc.bacninh.example",
                                             "Access-Control-Request-Method": "GET",
                                             "Access-Control-Request-Headers": "authorization"})
    assert pre.status_code == 200
    assert "authorization" in pre.headers["access-control-allow-headers"].lower()


# --- the audit log ------------------------------------------------------------------------------
def test_pool_runs_as_the_application_role(conn) -> None:
    # scripts/setup.sh creates the role and grants it: without it the checks below prove nothing.
    member = conn.execute("SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles "
                          "WHERE rolname = %s", (APP_ROLE,)).fetchone()
    assert member and member[0], f"database role {APP_ROLE} missing or not granted (scripts/setup.sh)"
    with connection() as c:
        assert c.execute("SELECT current_user").fetchone()[0] == APP_ROLE
        assert c.execute("SHOW TimeZone").fetchone()[0] == "UTC"


def test_audit_log_is_append_only(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as c:
        has_role = c.execute("SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles "
                             "WHERE rolname = %s", (APP_ROLE,)).fetchone()
        assert has_role and has_role[0], f"database role {APP_ROLE} missing (scripts/setup.sh makes it)"
        audit.record(c, None, "test_entry", username=f"audit-{RUN}", target={"n": 1})
        c.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(APP_ROLE)))
        try:
            audit.record(c, None, "test_entry", username=f"audit-{RUN}", target={"n": 2})
            assert c.execute("SELECT count(*) FROM audit_log WHERE username = %s",
                             (f"audit-{RUN}",)).fetchone()[0] == 2
            for stmt in ("DELETE FROM audit_log", "UPDATE audit_log SET status = 200",
                         "TRUNCATE audit_log"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege,
                                   match="permission denied"):
                    c.execute(stmt)
        finally:
            c.execute("RESET ROLE")
        # The owner is stopped by the trigger.
        for stmt in ("DELETE FROM audit_log WHERE username = 'nobody'",
                     "UPDATE audit_log SET status = 200 WHERE false", "TRUNCATE audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                c.execute(stmt)


def test_audit_query_filters(conn) -> None:
    who = f"query-{RUN}"
    audit.record(conn, None, "write", username=who, layer="parcels", target={"ids": [1, 2]},
                 status=200)
    audit.record(conn, None, "read", username=who, layer="cameras", status=200)
    rows = audit.query(conn, user=who)
    assert [r.action for r in rows] == ["read", "write"]
    rows = audit.query(conn, user=who, layer="parcels", action="write",
                       since=audit.parse_since("1h"))
    assert len(rows) == 1 and rows[0].target == {"ids": [1, 2]}
    assert audit.query(conn, user=who, since=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)) == []
    with pytest.raises(ValueError):
        audit.parse_since("last tuesday")


# --- configuration ------------------------------------------------------------------------------
def test_jwt_secret_generated_once_with_private_mode(tmp_path) -> None:
    settings = get_settings().model_copy(update={"jwt_secret": ""})
    path = tmp_path / ".geoioc" / "jwt-secret"
    first = jwt_secret(settings, path)
    assert len(first) >= 64
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert jwt_secret(settings, path) == first
    assert jwt_secret(settings.model_copy(update={"jwt_secret": "s" * 40}), path) == "s" * 40
    with pytest.raises(ValueError, match="at least 32"):
        jwt_secret(settings.model_copy(update={"jwt_secret": "short"}), path)


def test_tokens_from_another_secret_are_rejected() -> None:
    from gis.auth.tokens import TokenCodec

    ours, theirs = TokenCodec("a" * 40), TokenCodec("b" * 40)
    token = theirs.access_token("x", ("admin",), str(uuid.uuid4())).token
    with pytest.raises(CredentialsRejected, match="signature"):
        ours.decode(token, "access")


# --- command line -------------------------------------------------------------------------------
def test_cli_user_role_key_and_audit(conn, monkeypatch) -> None:
    from typer.testing import CliRunner

    from gis.cli import CliError, app

    runner = CliRunner()
    name = f"t{RUN}-cli"
    monkeypatch.setenv("GEOIOC_NEW_PASSWORD", PASSWORD)
    r = runner.invoke(app, ["user", "add", name, "--full-name", "Trần Thị B", "--role", "operator"])
    assert r.exit_code == 0, r.output
    assert users.require_account(conn, name).roles == ("operator",)
    r = runner.invoke(app, ["role", "grant", name, "admin"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["role", "grant", name, "wizard"])
    assert isinstance(r.exception, CliError) and "unknown role wizard" in str(r.exception)
    r = runner.invoke(app, ["key", "create", name, "--name", "qgis", "--role", "operator",
                            "--days", "7"])
    assert r.exit_code == 0, r.output
    key = r.stdout.strip().splitlines()[-1]
    assert api_keys.authenticate_key(conn, key).username == name
    r = runner.invoke(app, ["key", "create", name, "--name", "x", "--role", "leader"])
    assert isinstance(r.exception, CliError) and "does not hold role leader" in str(r.exception)
    prefix = key.split("_")[1]
    assert runner.invoke(app, ["key", "revoke", prefix]).exit_code == 0
    with pytest.raises(CredentialsRejected, match="revoked"):
        api_keys.authenticate_key(conn, key)
    assert runner.invoke(app, ["user", "disable", name]).exit_code == 0
    assert users.require_account(conn, name).disabled
    r = runner.invoke(app, ["audit", "--action", "key_create", "--since", "1h", "--json"])
    assert r.exit_code == 0, r.output
    created = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert any(e["target"]["prefix"] == prefix and e["username"].startswith("cli")
               for e in created)
