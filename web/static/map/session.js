/* GeoIOC command map: sign-in state and API calls.
 *
 * Tokens come from POST /api/auth/token (OAuth2 password form) and are kept in sessionStorage
 * (gone when the tab closes). The access token is refreshed before it expires with POST
 * /api/auth/refresh. G.authHeaders is one shared object: vector tile layers hold a reference to
 * it in their fetch options, so a refreshed token reaches them without rebuilding the layers.
 *
 * Sign-in also sets the server's HttpOnly page-session cookie (SameSite=Strict), which the
 * parcel pages read. A map opened in a new tab has no tokens but the cookie: on load it asks
 * GET /api/auth/session, and when the cookie names a live session the tab is signed in "by cookie"
 * (session.cookie = true): its reads carry the cookie (GET only; the server refuses it for
 * writes), and sign-out sends no token, the cookie names the session. Sign-out anywhere ends the
 * session everywhere: other tabs' tokens and the cookie stop working. Sign-out here, or the
 * session ending, fires `geoioc:signed-out` on the document first (the console closes its
 * event stream on it). */
(function (G) {
  "use strict";

  const KEY = "geoioc.session";
  const REFRESH_MARGIN_S = 60;
  let session = null;
  let refreshTimer = null;
  let refreshing = null;

  G.authHeaders = {};
  G.busy = 0;

  // The status line's message: "loading" while anything loads, then the error of the last
  // burst of loads if one failed (G.showError), in the current language (G.renderStatus
  // again after a switch); a new burst of loads starts without it.
  let statusError = null;

  function renderStatus() {
    const el = document.getElementById("gi-busy");
    if (!el) return;
    el.textContent = G.busy > 0 ? G.t("loading")
      : statusError ? G.t("error", { e: G.errorText(statusError) }) : "";
  }
  G.renderStatus = renderStatus;

  G.showError = function (e) {
    statusError = e;
    renderStatus();
  };

  function setBusy(delta) {
    if (G.busy === 0 && delta > 0) statusError = null;
    G.busy += delta;
    renderStatus();
    document.body.dataset.busy = String(G.busy);
    if (G.busy === 0 && G.onIdle) G.onIdle();
  }
  G.setBusy = setBusy;

  function save() {
    if (session && !session.cookie) sessionStorage.setItem(KEY, JSON.stringify(session));
    else sessionStorage.removeItem(KEY);
    for (const k of Object.keys(G.authHeaders)) delete G.authHeaders[k];
    if (session && !session.cookie) G.authHeaders.Authorization = "Bearer " + session.access_token;
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

  /** Tell the page's parts that hold something of the session (the console's event stream)
   * that it is over, before anything else happens: they let go at once. */
  function ended() {
    document.dispatchEvent(new Event("geoioc:signed-out"));
  }

  function expire() {
    session = null;
    save();
    clearTimeout(refreshTimer);
    ended();
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
    if (!session) return adoptCookieSession();
    if (session.expires_at - Date.now() / 1000 < REFRESH_MARGIN_S) {
      try {
        await refresh();
      } catch (e) {
        session = null;
        save();
        return adoptCookieSession();
      }
    } else {
      save();
      schedule();
    }
    return session;
  };

  /** A session of another tab, known to this one through the page-session cookie only. */
  async function adoptCookieSession() {
    try {
      const r = await fetch("/api/auth/session", { credentials: "same-origin",
                                                   headers: { Accept: "application/json" } });
      if (!r.ok) return null;
      const me = await r.json();
      if (!me.signed_in || me.auth !== "cookie") return null;
      session = { cookie: true, user: me.user, roles: me.roles };
      return session;
    } catch (e) {
      return null;
    }
  }

  // A tab signed in by cookie learns of a sign-out elsewhere when it is looked at again.
  document.addEventListener("visibilitychange", async () => {
    if (document.visibilityState !== "visible" || !session || !session.cookie) return;
    const before = session;
    session = null;
    if (!(await adoptCookieSession())) { session = before; expire(); }
  });

  async function refresh() {
    if (!session) throw new Error("not signed in");
    if (session.cookie) throw new Error("signed in by the session cookie: nothing to refresh");
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
    const r = await send("/api/auth/token", { method: "POST", body: form });
    if (!r.ok) {
      const retry = r.headers.get("Retry-After");
      throw r.status === 429 ? wordedAs("sign_in_locked", { s: retry || "60" }, r.status)
        : wordedAs("sign_in_failed", {}, r.status);
    }
    adopt(await r.json());
    return session;
  };

  G.signOut = async function () {
    const ending = session;
    session = null;
    save();
    clearTimeout(refreshTimer);
    ended();
    if (ending) {
      try {
        // The response also deletes the page-session cookie; a cookie-only tab sends no token.
        await fetch("/api/auth/signout", ending.cookie
          ? { method: "POST", credentials: "same-origin" }
          : { method: "POST", credentials: "same-origin",
              headers: { "Content-Type": "application/json" },
              body: JSON.stringify({ refresh_token: ending.refresh_token }) });
      } catch (e) { /* the tokens are forgotten here either way */ }
    }
  };

  /** An Error G.errorText words in the page's language: by its string KEY (and VARS) of
   * i18n.js, again in the new language after a switch; or, KEY null, by MESSAGE as it is (the
   * server's detail, already in the page's language of the request). */
  function worded(message, status, key, vars) {
    const err = new Error(message);
    err.worded = true;
    err.key = key || null;
    err.vars = vars || {};
    if (status) err.status = status;
    return err;
  }
  const wordedAs = (key, vars, status) => worded(G.t(key, vars), status, key, vars);

  /** fetch, with a network failure worded in the page's language (the browser's own text,
   * "Failed to fetch", is English whatever the page). An abort stays an AbortError. */
  async function send(url, init) {
    try {
      return await fetch(url, init);
    } catch (e) {
      if (e && e.name === "AbortError") throw e;
      throw wordedAs("network_error");
    }
  }

  /** What the status line (and the sign-in box) says about E, in the page's language: our own
   * worded errors as they are, anything else (a bug in the page, the browser's words) as
   * "an error in the page"; its details go to the console. Empty for an abort. */
  G.errorText = function (e) {
    if (!e || e.name === "AbortError") return "";
    if (e.worded) return e.key ? G.t(e.key, e.vars) : e.message;
    return G.t("page_error");
  };

  /** POST JSON to our API with the caller's token and language; one refresh-and-retry on a
   * 401. A refusal throws an Error whose message is the problem's detail (in the page's
   * language) and whose `body` is the problem document (its `errors` list each reason). */
  G.apiPost = async function (url, body) {
    setBusy(+1);
    const init = () => ({ method: "POST", body: JSON.stringify(body), headers: {
      ...G.authHeaders, "Content-Type": "application/json", Accept: "application/json",
      "Accept-Language": G.lang } });
    try {
      let r = await send(url, init());
      if (r.status === 401 && session && !session.cookie) {
        await refresh().catch(() => expire());
        r = await send(url, init());
      }
      let out = null;
      try { out = await r.json(); } catch (e) { /* not JSON */ }
      if (!r.ok) {
        // The problem's detail is in the page's language; never the browser's statusText.
        const detail = out && (out.detail || out.description);
        const err = detail ? worded(detail, r.status) : wordedAs("http_error", { s: r.status }, r.status);
        err.body = out;
        throw err;
      }
      return out;
    } finally {
      setBusy(-1);
    }
  };

  /** GET JSON from our API with the caller's token; one refresh-and-retry on a 401. The
   * page's language goes along, so that error messages come back in it. */
  G.api = async function (url, options) {
    setBusy(+1);
    const headers = () => ({ ...G.authHeaders, Accept: "application/json", "Accept-Language": G.lang });
    try {
      let r = await send(url, { headers: headers(), signal: options && options.signal });
      if (r.status === 401 && session) {
        await refresh().catch(() => expire());
        r = await send(url, { headers: headers(), signal: options && options.signal });
      }
      if (!r.ok) {
        // The server words its errors in the page's language (Accept-Language above); the
        // browser's statusText ("Not Found") is English whatever the page, so it is not used.
        let detail = null;
        try { const body = await r.json(); detail = body.detail || body.description || null; } catch (e) { /* not JSON */ }
        throw detail ? worded(r.status + " " + detail, r.status)
          : wordedAs("http_error", { s: r.status }, r.status);
      }
      return await r.json();
    } finally {
      setBusy(-1);
    }
  };

  /** Read a text/event-stream with fetch, sending the caller's Authorization header (which
   * EventSource cannot): ON(name, data) for each event. The stream is opened again RETRY ms
   * after it ends, until SIGNAL aborts, KEEP() says no before a (re)connection, or the server
   * answers 403 (this role may not listen: no retries). DROPPED(status) runs after each end
   * (status: 403 for a refusal, else null). */
  G.readEventStream = function (url, signal, on, { keep = () => true, dropped = () => {}, retry = 3000 } = {}) {
    (async () => {
      while (!signal.aborted && keep()) {
        try {
          const r = await fetch(url, { signal, credentials: "same-origin",
            headers: { ...G.authHeaders, Accept: "text/event-stream" } });
          if (r.status === 403) { dropped(403); return; }
          if (!r.ok || !r.body) throw new Error(String(r.status));
          const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
          let buf = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buf += value;
            let cut;
            while ((cut = buf.indexOf("\n\n")) >= 0) {
              const block = buf.slice(0, cut);
              buf = buf.slice(cut + 2);
              let name = "message", data = "";
              for (const line of block.split("\n")) {
                if (line.startsWith("event:")) name = line.slice(6).trim();
                else if (line.startsWith("data:")) data += line.slice(5).trim();
              }
              on(name, data);
            }
          }
        } catch (e) {
          if (signal.aborted) return;
        }
        dropped(null);
        await new Promise((res) => setTimeout(res, retry));
      }
    })();
  };
})(window.GeoIOC = window.GeoIOC || {});
