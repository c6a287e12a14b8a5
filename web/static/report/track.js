/* The tracking page (/report/track/{token}): the citizen's "reopen" button, shown by the server
 * only while the report may be reopened (resolved, within the configured days). It posts to
 * POST /api/reports/track/{token}/reopen with the optional note, then reads the page again and
 * puts its new status and history in place (one rendering, the server's, in Vietnam time). A
 * refusal (409: the window has passed, the report moved meanwhile) is the server's problem
 * detail, worded in the page's language (?lang=). */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("track-config").textContent);
  const T = config.t;
  const form = document.getElementById("reopen-form");
  if (!form) return;

  function showError(text) {
    const box = document.getElementById("reopen-error");
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
  }

  /** The page as the server renders it now: its status, answer and history replace ours. */
  async function refreshView() {
    const r = await fetch(location.href, { credentials: "same-origin", cache: "no-store",
                                           headers: { Accept: "text/html" } });
    if (!r.ok) throw new Error(String(r.status));
    const doc = new DOMParser().parseFromString(await r.text(), "text/html");
    const fresh = doc.getElementById("track-view");
    if (!fresh) throw new Error("no view");
    document.getElementById("track-view").replaceWith(document.importNode(fresh, true));
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const submit = document.getElementById("reopen-submit");
    const note = document.getElementById("reopen-note").value.trim();
    document.getElementById("reopen-error").hidden = true;
    submit.disabled = true;
    submit.textContent = T.reopening;
    let response;
    try {
      response = await fetch(`/api/reports/track/${encodeURIComponent(config.token)}/reopen?lang=${config.lang}`, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ note: note || null }) });
    } catch (e) {
      response = null;
    }
    submit.disabled = false;
    submit.textContent = T.reopen;
    if (!response) { showError(T.err_network); return; }
    let body = {};
    try { body = await response.json(); } catch (e) { body = {}; }
    if (!response.ok) {
      const reasons = (body.errors || []).map((x) => x.reason).filter(Boolean);
      showError(`${T.err_reopen} ${reasons.length ? reasons.join("; ") : body.detail || response.status}`);
      if (response.status === 409) { submit.disabled = true; document.getElementById("reopen-note").disabled = true; }
      return;
    }
    try {
      await refreshView();
    } catch (e) {
      location.reload();
      return;
    }
    const done = document.getElementById("track-reopened");
    done.hidden = false;
    done.scrollIntoView({ block: "nearest" });
  });
})();
