"""Sign-in holds across pages (issue 13, item 6): signing in on the map also sets an HttpOnly,
SameSite=Strict page-session cookie bound to the web session, so the server-rendered parcel
pages and a map opened in another tab are signed in too; it counts for GET and HEAD only (no
write can be forged with it); sign-out, from the map or a page, ends the session everywhere.

HTTP-level checks with a TestClient of their own (its cookie jar must not leak into other
tests), then the real thing in Chromium against the real server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from http.cookies import SimpleCookie

import pytest
from chromium import TIMEOUT, launched
from fastapi.testclient import TestClient

from api.security import SESSION_COOKIE
from gis.auth import users

PASSWORD = "mật-khẩu-đủ-dài-1"
RUN = uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def officer(conn) -> Iterator[str]:
    name = f"sess{RUN}-land-officer"
    users.add_user(conn, name, PASSWORD, roles=["land_officer"])
    yield name
    conn.execute("DELETE FROM users WHERE username LIKE %s", (f"sess{RUN}-%",))


@pytest.fixture(scope="module")
def parcel(conn) -> tuple[int, str]:
    """A parcel with a land user (personal data only land officers see)."""
    return conn.execute("SELECT id, land_user FROM parcels WHERE land_user IS NOT NULL "
                        "ORDER BY id LIMIT 1").fetchone()


@pytest.fixture()
def web() -> Iterator[TestClient]:
    from api.app import create_app

    with TestClient(create_app(), raise_server_exceptions=True) as c:
        yield c


def _sign_in(web: TestClient, username: str) -> dict:
    r = web.post("/api/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json() | {"set-cookie": r.headers.get_list("set-cookie")}


def _cookie_header(set_cookies: list[str]) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for h in set_cookies:
        jar.load(h)
    return jar


def test_sign_in_sets_an_httponly_strict_session_cookie(web, officer) -> None:
    tokens = _sign_in(web, officer)
    morsel = _cookie_header(tokens["set-cookie"])[SESSION_COOKIE]
    raw = next(h for h in tokens["set-cookie"] if h.startswith(SESSION_COOKIE + "="))
    assert morsel["httponly"] and morsel["samesite"].lower() == "strict" and morsel["path"] == "/"
    assert not morsel["secure"]  # plain http here; see the https test
    assert 0 < int(morsel["max-age"]) <= tokens["refresh_expires_in"]
    # The cookie is none of the tokens, and is no Bearer token.
    assert morsel.value not in (tokens["access_token"], tokens["refresh_token"]), raw
    web.cookies.clear()
    r = web.get("/api/auth/me", headers={"Authorization": f"Bearer {morsel.value}"})
    assert r.status_code == 401


def test_cookie_is_secure_over_https(officer) -> None:
    from api.app import create_app

    with TestClient(create_app(), base_url="https://testserver") as c:
        r = c.post("/api/auth/token", data={"username": officer, "password": PASSWORD})
        assert r.status_code == 200
        assert _cookie_header(r.headers.get_list("set-cookie"))[SESSION_COOKIE]["secure"]


def test_pages_and_reads_are_signed_in_by_the_cookie(web, officer, parcel) -> None:
    pid, land_user = parcel
    _sign_in(web, officer)  # the client keeps the cookie, and sends no token from here on
    page = web.get(f"/parcels/{pid}")
    assert page.status_code == 200
    assert land_user in page.text and officer in page.text
    assert 'id="gi-signout-form"' in page.text  # the page can end the session
    assert land_user in web.get(f"/parcels/{pid}/extract.html").text
    assert web.get(f"/api/parcels/{pid}").json()["properties"]["land_user"] == land_user
    state = web.get("/api/auth/session").json()
    assert state == {"signed_in": True, "user": officer, "roles": ["land_officer"], "auth": "cookie"}
    # Cookie-dependent answers are private and vary on the cookie.
    r = web.get("/ogc/collections/parcels/items?limit=1&f=json")
    assert "Cookie" in r.headers.get("vary", "") and "public" not in r.headers.get("cache-control", "")
    # Without the cookie: anonymous.
    web.cookies.clear()
    page = web.get(f"/parcels/{pid}")
    assert land_user not in page.text and 'id="gi-signout-form"' not in page.text
    assert web.get("/api/auth/session").json()["signed_in"] is False


def test_the_cookie_is_refused_for_writes(web, officer, parcel, conn) -> None:
    """No CSRF: a POST or PATCH carrying only the cookie is anonymous."""
    pid, _ = parcel
    _sign_in(web, officer)
    version = web.get(f"/api/parcels/{pid}").json()["version"]
    r = web.patch(f"/api/parcels/{pid}", headers={"If-Match": f'"{version}"'},
                  json={"properties": {"certificate_no": "CS 777777"}})
    assert r.status_code == 401, r.text
    (cert,) = conn.execute("SELECT certificate_no FROM parcels WHERE id = %s", (pid,)).fetchone()
    assert cert != "CS 777777"
    r = web.post("/api/exports", json={"layer": "parcels", "format": "geojson", "fields": "land_user",
                                        "filter": f"id = {pid}"})
    # The field does not exist for anonymous callers.
    assert r.status_code == 400 and "land_user" in r.json()["detail"]
    r = web.post("/api/parcels/search", json={"owner": "nguyen van"})
    assert r.status_code in (400, 401)


def test_sign_out_ends_the_session_everywhere(web, officer, parcel) -> None:
    pid, land_user = parcel
    tokens = _sign_in(web, officer)
    cookie = _cookie_header(tokens["set-cookie"])[SESSION_COOKIE].value
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    r = web.post("/api/auth/signout", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 204
    deleted = _cookie_header(r.headers.get_list("set-cookie"))[SESSION_COOKIE]
    assert deleted.value in ("", '""') and int(deleted["max-age"]) == 0
    assert SESSION_COOKIE not in web.cookies
    # Even a copy of the old cookie no longer signs anyone in; the tokens are dead too.
    web.cookies.set(SESSION_COOKIE, cookie)
    assert land_user not in web.get(f"/parcels/{pid}").text
    assert web.get("/api/auth/session").json()["signed_in"] is False
    web.cookies.clear()
    assert web.get("/api/auth/me", headers=bearer).status_code == 401
    r = web.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401


def test_a_cookie_only_tab_signs_out_with_the_cookie(web, officer) -> None:
    tokens = _sign_in(web, officer)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    # From another site: the cookie is not taken (SameSite=Strict would not even send it).
    r = web.post("/api/auth/signout", headers={"Origin": "https://evil.example",
                                               "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 400
    assert web.get("/api/auth/me", headers=bearer).status_code == 200
    r = web.post("/api/auth/signout", headers={"Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 204
    assert web.get("/api/auth/me", headers=bearer).status_code == 401


def test_the_pages_sign_out_button(web, officer, parcel) -> None:
    pid, _ = parcel
    tokens = _sign_in(web, officer)
    r = web.post(f"/sign-out?next=/parcels/{pid}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/parcels/{pid}"
    assert SESSION_COOKIE not in web.cookies
    r = web.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert r.status_code == 401
    # Only to this site.
    r = web.post("/sign-out?next=https://evil.example/", follow_redirects=False)
    assert r.headers["location"] == "/parcels"
    r = web.post("/sign-out?next=//evil.example/", follow_redirects=False)
    assert r.headers["location"] == "/parcels"


def test_refresh_renews_the_cookie(web, officer) -> None:
    tokens = _sign_in(web, officer)
    r = web.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200
    assert _cookie_header(r.headers.get_list("set-cookie"))[SESSION_COOKIE].value
    assert web.get("/api/auth/session").json()["auth"] == "cookie"


# --- in the browser --------------------------------------------------------------------------------


def test_map_sign_in_holds_on_parcel_pages_and_sign_out_ends_it(live_server, officer, parcel) -> None:
    pid, land_user = parcel
    with launched() as browser:
        try:
            ctx = browser.new_context(locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
            prompts: list[str] = []
            page = ctx.new_page()
            page.on("response", lambda r: prompts.append(r.url) if r.status == 401 else None)
            page.goto(live_server + "/")
            page.wait_for_selector("body[data-rendered=true]", state="attached", timeout=TIMEOUT)
            page.click("#gi-signin-open")
            page.fill("#gi-username", officer)
            page.fill("#gi-password", PASSWORD)
            page.click("#gi-signin-form button[type=submit]")
            page.wait_for_selector("#gi-signout:not([hidden])", timeout=TIMEOUT)
            assert "HttpOnly" not in page.evaluate("document.cookie") and \
                SESSION_COOKIE not in page.evaluate("document.cookie")  # script cannot read it

            # The parcel page in a new tab of the same browser: signed in, no password asked.
            tab = ctx.new_page()
            tab.on("response", lambda r: prompts.append(r.url) if r.status == 401 else None)
            tab.goto(f"{live_server}/parcels/{pid}")
            assert tab.text_content("#gi-user") == officer
            assert land_user in tab.content()
            assert not prompts, prompts

            # A map opened in another tab finds the session too.
            map2 = ctx.new_page()
            map2.goto(live_server + "/")
            map2.wait_for_selector("#gi-signout:not([hidden])", timeout=TIMEOUT)
            assert officer in (map2.text_content("#gi-user") or "")
            map2.close()

            # Sign out on the map: the parcel page, reloaded, is signed out; the map's token too.
            page.click("#gi-signout")
            page.wait_for_selector("#gi-signin-open:not([hidden])", timeout=TIMEOUT)
            tab.wait_for_timeout(300)
            tab.reload()
            assert tab.query_selector("#gi-user") is None
            assert land_user not in tab.content()
            assert not [c for c in ctx.cookies() if c["name"] == SESSION_COOKIE]

            # Sign in again, then out from the parcel page's button: the map tab is signed out.
            page.click("#gi-signin-open")
            page.fill("#gi-username", officer)
            page.fill("#gi-password", PASSWORD)
            page.click("#gi-signin-form button[type=submit]")
            page.wait_for_selector("#gi-signout:not([hidden])", timeout=TIMEOUT)
            tab.reload()
            assert tab.text_content("#gi-user") == officer
            tab.click("#gi-signout")
            tab.wait_for_load_state()
            assert tab.query_selector("#gi-user") is None
            page.reload()
            page.wait_for_selector("body[data-rendered=true]", state="attached", timeout=TIMEOUT)
            page.wait_for_selector("#gi-signin-open:not([hidden])", timeout=TIMEOUT)
        finally:
            browser.close()


@pytest.mark.slow
def test_the_maps_sign_in_says_why_in_the_page_language(live_server) -> None:
    """A wrong password, then a lockout, as the sign-in box of the map says them: in the page's
    language, nothing English on a Vietnamese page."""
    from test_language_browser import ENGLISH

    from gis.settings import get_settings

    said = {"vi": "Sai tên đăng nhập hoặc mật khẩu.", "en": "Wrong user name or password."}
    with launched() as browser:
        try:
            for lang in ("vi", "en"):
                page = browser.new_page(locale="vi-VN" if lang == "vi" else "en-US")
                page.goto(f"{live_server}/?lang={lang}")
                page.wait_for_selector("body[data-rendered=true]", state="attached", timeout=TIMEOUT)
                page.click("#gi-signin-open")
                page.fill("#gi-username", f"khong-co-{uuid.uuid4().hex[:8]}")

                def attempt(password: str, page=page) -> str:
                    page.fill("#gi-password", password)
                    page.eval_on_selector("#gi-signin-error", "e => { e.hidden = true; }")
                    page.click("#gi-signin-form button[type=submit]")
                    page.wait_for_selector("#gi-signin-error:not([hidden])", timeout=TIMEOUT)
                    return page.text_content("#gi-signin-error") or ""

                assert attempt("sai-1") == said[lang]
                if lang == "vi":
                    for i in range(get_settings().signin_max_failures_per_user):
                        text = attempt(f"sai-{i + 2}")
                    assert text.startswith("Tạm khóa do nhập sai nhiều lần. Thử lại sau "), text
                    assert not ENGLISH.search(text), text
                    assert not ENGLISH.search(said[lang])
                page.close()
        finally:
            browser.close()
