/* GeoIOC command map: sign-in state and API calls.
 *
 * Tokens come from POST /api/auth/token (OAuth2 password form) and are kept in sessionStorage
 * (gone when the tab closes; never in cookies, so no cross-site request can use them). The access
 * token is refreshed before it expires with POST /api/auth/refresh. G.authHeaders is one shared
 * object: vector tile layers hold a reference to it in their fetch options, so a refreshed token
 * reaches them without rebuilding the layers. */
(function (G) {
  "use strict";

  const KEY = "geoioc.session";
  const REFRESH_MARGIN_S = 60;
  let session = null;
  let refreshTimer = null;
  let refreshing = null;

  G.authHeaders = {};
  G.busy = 0;

  function setBusy(delta) {
    G.busy += delta;
    const el = document.getElementById("gi-busy");
    if (el) el.textContent = G.busy > 0 ? G.t("loading") : "";
    document.body.dataset.busy = String(G.busy);
    if (G.busy === 0 && G.onIdle) G.onIdle();
  }
  G.setBusy = setBusy;

  function save() {
    if (session) sessionStorage.setItem(KEY, JSON.stringify(session));
    else sessionStorage.removeItem(KEY);
    for (const k of Object.keys(G.authHeaders)) delete G.authHeaders[k];
    if (session) G.authHeaders.Authorization = "Bearer " + session.access_token;
  }

  function schedule() {
    clearTimeout(refreshTimer);
    if (!session) return;
    const wait = Math.max(5, session.expires_at - Date.now() / 1000 - REFRESH_MARGIN_S);
    refreshTimer = setTimeout(() => refresh().catch(() => expire()), wait * 1000);
  }

  function adopt(body) {
    session = {
      access_token: body.access_token,
      refresh_token: body.refresh_token,
      expires_at: Date.now() / 1000 + body.expires_in,
      user: body.user,
      roles: body.roles,
    };
    save();
    schedule();
  }

  function expire() {
    session = null;
    save();
    clearTimeout(refreshTimer);
    if (G.onSessionEnded) G.onSessionEnded();
  }

  G.session = () => session;

  /** Restore a session of this tab (a page reload keeps the user signed in). */
  G.restoreSession = async function () {
    try {
      session = JSON.parse(sessionStorage.getItem(KEY) || "null");
    } catch (e) {
      session = null;
    }
    if (!session) return null;
    if (session.expires_at - Date.now() / 1000 < REFRESH_MARGIN_S) {
      try {
        await refresh();
      } catch (e) {
        session = null;
        save();
        return null;
      }
    } else {
      save();
      schedule();
    }
    return session;
  };

  async function refresh() {
    if (!session) throw new Error("not signed in");
    if (!refreshing) {
      refreshing = (async () => {
        const r = await fetch("/api/auth/refresh", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ refresh_token: session.refresh_token }),
        });
        if (!r.ok) throw new Error("refresh failed: " + r.status);
        adopt(await r.json());
      })().finally(() => { refreshing = null; });
    }
    return refreshing;
  }

  G.signIn = async function (username, password) {
    const form = new URLSearchParams({ username, password, grant_type: "password" });
    const r = await fetch("/api/auth/token", { method: "POST", body: form });
    if (!r.ok) {
      const retry = r.headers.get("Retry-After");
      const err = new Error(r.status === 429 ? G.t("sign_in_locked", { s: retry || "60" })
        : G.t("sign_in_failed"));
      err.status = r.status;
      throw err;
    }
    adopt(await r.json());
    return session;
  };

  G.signOut = async function () {
    const ending = session;
    session = null;
    save();
    clearTimeout(refreshTimer);
    if (ending) {
      try {
        await fetch("/api/auth/signout", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ refresh_token: ending.refresh_token }),
        });
      } catch (e) { /* the tokens are forgotten here either way */ }
    }
  };

  /** GET JSON from our API with the caller's token; one refresh-and-retry on a 401. */
  G.api = async function (url, options) {
    setBusy(+1);
    try {
      let r = await fetch(url, { headers: { ...G.authHeaders, Accept: "application/json" },
                                 signal: options && options.signal });
      if (r.status === 401 && session) {
        await refresh().catch(() => expire());
        r = await fetch(url, { headers: { ...G.authHeaders, Accept: "application/json" },
                               signal: options && options.signal });
      }
      if (!r.ok) {
        let detail = r.statusText;
        try { const body = await r.json(); detail = body.detail || body.description || detail; } catch (e) { /* not JSON */ }
        const err = new Error(r.status + " " + detail);
        err.status = r.status;
        throw err;
      }
      return await r.json();
    } finally {
      setBusy(-1);
    }
  };
})(window.GeoIOC = window.GeoIOC || {});
