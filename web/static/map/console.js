/* GeoIOC command map: the operator console of citizen reports (issue 15).
 *
 * For operators (and admins) a panel over the layer panel: the queue of open reports, the
 * nearest deadline first (GET /api/reports/queue), overdue ones flagged, with filters; the same
 * reports drawn on the map (red: overdue); a row or a marker flies there and opens the report in
 * the detail panel with its timeline, the moves the workflow allows (each with a note) and the
 * assignment to an agency; checkboxes for bulk moves and assignments (all or nothing: the
 * server's 409 names every report that cannot move); a report linked as a likely duplicate
 * can be unlinked (with the note). The queue follows live events (GET /api/reports/events,
 * server-sent events read with fetch so the token goes along): an event carries an id and
 * public facts only, so the console refetches what it shows. The stream is ended on sign-out
 * (session.js's `geoioc:signed-out`) and never opened for a user without the console. */
(function (G) {
  "use strict";

  const PAGE = 200;
  const c = {
    on: false, // the signed-in user may use the console
    open: false,
    items: [],
    total: 0,
    options: null,
    selected: new Set(),
    current: null, // id shown in the detail panel
    markers: null,
    stream: null, // AbortController of the event stream
    refetchTimer: null,
    seq: 0, // the queue's last request
    detailSeq: 0, // the detail panel's last request
    bound: false,
    notice: "",
  };
  G.consoleState = c;

  const esc = (s) => G.esc(s == null ? "" : String(s));
  const $ = (id) => document.getElementById(id);

  function isOperator() {
    const s = G.session();
    return !!(s && s.roles && (s.roles.includes("operator") || s.roles.includes("admin")));
  }

  function statusLabel(code) {
    const m = G.state.manifest;
    const entry = m && m.layers.find((e) => e.kind === "incidents");
    const field = entry && entry.fields.find((f) => f.name === "status");
    const v = field && field.values && field.values[code];
    return v ? G.pick(v) : code;
  }

  function named(code, list) {
    const hit = (list || []).find((x) => x.code === code);
    if (!hit) return code || "";
    return hit.name || (G.lang === "en" ? hit.name_en || hit.name_vi : hit.name_vi || hit.name_en);
  }

  /** "3 ngày 4 giờ" / "3 d 4 h": the largest two units of MS. */
  function duration(ms) {
    const min = Math.max(1, Math.round(Math.abs(ms) / 60000));
    const d = Math.floor(min / 1440), h = Math.floor((min % 1440) / 60), m = min % 60;
    const parts = [];
    if (d) parts.push(G.t("console_days", { n: d }));
    if (h && parts.length < 2) parts.push(G.t("console_hours", { n: h }));
    if (!d && m && parts.length < 2) parts.push(G.t("console_minutes", { n: m }));
    return parts.join(" ");
  }

  function dueWords(item) {
    if (!item.expected_at) return G.t("console_no_deadline");
    const ms = new Date(item.expected_at).getTime() - Date.now();
    return ms < 0 ? G.t("console_overdue_by", { d: duration(ms) }) : G.t("console_left", { d: duration(ms) });
  }

  // --- visibility and sign-in -------------------------------------------------------------------

  /** Called by app.js whenever the manifest (sign-in state) or the language changes. */
  G.consoleSync = function () {
    if (!c.bound) { c.bound = true; bind(); }
    const was = c.on;
    c.on = isOperator();
    $("gi-console-open").hidden = !c.on;
    if (!c.on) {
      shutDown();
      return;
    }
    if (!c.markers) c.markers = L.featureGroup([], { pane: "gi-highlight" }).addTo(G.state.map);
    if (!was) {
      c.options = null;
      c.current = null;
    } else if (c.open) {
      renderFilters();
      renderQueue();
      if (c.current) showReport(c.current).catch(G.error);
    }
  };

  /** No console for this user (signed out, or a role without it): closed, its event stream
   * ended, its markers, queue and open report gone. */
  function shutDown() {
    if ($("gi-report-actions")) G.hideDetails();
    c.on = false;
    c.open = false;
    stopStream();
    const panel = $("gi-console");
    if (panel) panel.hidden = true;
    const button = $("gi-console-open");
    if (button) { button.hidden = true; button.setAttribute("aria-expanded", "false"); }
    if (c.markers) c.markers.clearLayers();
    c.items = [];
    c.selected.clear();
    c.current = null;
  }

  // Signing out (or the session ending) ends the stream at once: not only when the map's
  // layers come back for the anonymous user (which may fail), and before the server is told.
  document.addEventListener("geoioc:signed-out", shutDown);

  /** The console is opened from its button; only then does it listen and draw its markers
   * (the map's own layers stay clickable for everyone else). */
  function setOpen(open) {
    c.open = open;
    $("gi-console").hidden = !open;
    $("gi-console-open").setAttribute("aria-expanded", String(open));
    if (open) {
      if (!c.options) loadOptions().then(renderFilters).catch(G.error);
      startStream();
      refetch();
    } else {
      stopStream();
      c.current = null;
      if (c.markers) c.markers.clearLayers();
    }
  }

  async function loadOptions() {
    c.options = await G.api("/api/reports/console-options");
  }

  // --- the queue --------------------------------------------------------------------------------

  function filterParams() {
    const form = $("gi-console-filters");
    const p = new URLSearchParams();
    for (const name of ["status", "service", "agency", "commune", "q"]) {
      const el = form.elements[name];
      if (el && el.value.trim()) p.set(name, el.value.trim());
    }
    if (form.elements.overdue.checked) p.set("overdue", "true");
    p.set("limit", String(PAGE));
    return p;
  }

  function refetch() {
    clearTimeout(c.refetchTimer);
    c.refetchTimer = setTimeout(() => loadQueue().catch(G.error), 150);
  }

  async function loadQueue() {
    if (!c.on || !c.open) return;
    const seq = ++c.seq;
    const body = await G.api("/api/reports/queue?" + filterParams().toString());
    if (seq !== c.seq) return;
    c.items = body.items;
    c.total = body.total;
    const ids = new Set(c.items.map((i) => i.id));
    for (const id of [...c.selected]) if (!ids.has(id)) c.selected.delete(id);
    renderQueue();
  }

  function option(value, label, current) {
    return `<option value="${esc(value)}"${value === current ? " selected" : ""}>${esc(label)}</option>`;
  }

  function renderFilters() {
    const form = $("gi-console-filters");
    if (!form || !c.options) return;
    const keep = (name) => (form.elements[name] ? form.elements[name].value : "");
    const pick = (x) => (G.lang === "en" ? x.name_en || x.name_vi : x.name_vi || x.name_en);
    const statuses = ["received", "verified", "assigned", "in_progress"];
    form.querySelector("[name=status]").innerHTML = option("", G.t("console_any_status"), keep("status")) +
      statuses.map((s) => option(s, statusLabel(s), keep("status"))).join("");
    form.querySelector("[name=service]").innerHTML = option("", G.t("console_any_service"), keep("service")) +
      c.options.services.map((s) => option(s.code, pick(s), keep("service"))).join("");
    form.querySelector("[name=agency]").innerHTML = option("", G.t("console_any_agency"), keep("agency")) +
      c.options.agencies.map((a) => option(a.code, pick(a), keep("agency"))).join("");
    form.querySelector("[name=commune]").innerHTML = option("", G.t("console_any_commune"), keep("commune")) +
      c.options.communes.map((x) => option(x.code, x.name, keep("commune"))).join("");
    const bulkAgency = $("gi-bulk-agency");
    const was = bulkAgency.value;
    bulkAgency.innerHTML = option("", G.t("console_choose_agency"), was) +
      c.options.agencies.map((a) => option(a.code, pick(a), was)).join("");
    const bulkStatus = $("gi-bulk-status");
    const wasStatus = bulkStatus.value;
    bulkStatus.innerHTML = option("", G.t("console_choose_status"), wasStatus) +
      ["verified", "assigned", "in_progress", "resolved", "rejected", "closed"]
        .map((s) => option(s, statusLabel(s), wasStatus)).join("");
  }

  function renderQueue() {
    const list = $("gi-console-list");
    if (!list) return;
    const overdue = c.items.filter((i) => i.overdue).length;
    $("gi-console-count").textContent = G.t("console_count", {
      n: G.fmtNumber(c.total, 0), o: G.fmtNumber(overdue, 0) });
    $("gi-console-notice").textContent = c.notice;
    if (!c.items.length) {
      list.innerHTML = `<li class="gi-muted gi-q-empty">${esc(G.t("console_empty"))}</li>`;
    } else {
      list.innerHTML = c.items.map((i) => {
        const service = G.lang === "en" ? i.service_name_en || i.service_name_vi : i.service_name_vi || i.service_name_en;
        const agency = G.lang === "en" ? i.agency_name_en || i.agency_name_vi : i.agency_name_vi || i.agency_name_en;
        return `<li class="gi-q-item${i.overdue ? " gi-overdue" : ""}${i.id === c.current ? " gi-q-current" : ""}" data-report="${i.id}">` +
          `<input type="checkbox" class="form-check-input gi-q-check" data-check="${i.id}"${c.selected.has(i.id) ? " checked" : ""} ` +
          `aria-label="${esc(G.t("console_select", { id: i.id }))}">` +
          `<button type="button" class="gi-q-main" data-open="${i.id}">` +
          `<span class="gi-q-head"><b>#${i.id}</b> ${esc(service || i.title || "")}` +
          `<span class="gi-q-status">${esc(statusLabel(i.status))}</span></span>` +
          `<span class="gi-q-meta">${esc(i.commune_name || "")}${agency ? " · " + esc(agency) : ""}` +
          `${i.duplicate_of ? " · " + esc(G.t("console_duplicate_of", { id: i.duplicate_of })) : ""}</span>` +
          `<span class="gi-q-due">${i.overdue ? `<span class="gi-q-flag">${esc(G.t("console_overdue"))}</span> ` : ""}` +
          `${esc(G.t("console_due"))}: <time datetime="${esc(i.expected_at || "")}">${esc(i.expected_at ? G.fmtDateTime(i.expected_at) : "–")}</time>` +
          ` · <span class="gi-q-words">${esc(dueWords(i))}</span></span></button></li>`;
      }).join("");
    }
    renderBulk();
    drawMarkers();
  }

  function renderBulk() {
    const n = c.selected.size;
    $("gi-bulk-n").textContent = G.t("console_selected", { n: G.fmtNumber(n, 0) });
    for (const b of document.querySelectorAll("#gi-bulk button")) b.disabled = n === 0;
  }

  function drawMarkers() {
    if (!c.markers) return;
    c.markers.clearLayers();
    if (!c.open) return;
    for (const i of c.items) {
      if (i.lat == null || i.lon == null) continue;
      const color = i.overdue ? "#ef4444" : "#f59e0b";
      L.circleMarker([i.lat, i.lon], { pane: "gi-highlight", radius: i.id === c.current ? 9 : 6, bubblingMouseEvents: false,
        color: "#111827", weight: 1.5, fillColor: color, fillOpacity: 0.95 })
        .bindTooltip(`#${i.id} · ${esc(statusLabel(i.status))}${i.overdue ? " · " + esc(G.t("console_overdue")) : ""}`)
        .on("click", (e) => { L.DomEvent.stopPropagation(e); select(i.id); })
        .addTo(c.markers);
    }
  }

  // --- one report: detail, timeline, moves ------------------------------------------------------

  function select(id) {
    const item = c.items.find((i) => i.id === id);
    if (item && item.lat != null) {
      G.state.map.flyTo([item.lat, item.lon], Math.max(G.state.map.getZoom(), 16), { duration: 0.6 });
    }
    c.current = id;
    renderQueue();
    showReport(id).catch(G.error);
  }

  const ACTORS = { system: "console_actor_system", citizen: "console_actor_citizen" };

  /** The English words the platform stores as the note of a duplicate link (gis/reports/
   * intake.py) and of an unlink no note was given for (workflow.unlink_duplicate): not shown,
   * the event's own label says it, with the original's number; an operator's note is shown. */
  const PLATFORM_NOTES = { duplicate: /^likely duplicate of (\d+)$/, unlink: /^not a duplicate of (\d+)$/ };
  function platformNote(t) {
    const m = PLATFORM_NOTES[t.kind] && t.note ? PLATFORM_NOTES[t.kind].exec(t.note) : null;
    return m ? m[1] : null;
  }
  const original = (t) => (platformNote(t) ? ` #${platformNote(t)}` : "");

  function timelineHtml(rows) {
    if (!rows.length) return `<p class="gi-muted">${esc(G.t("console_no_history"))}</p>`;
    const agencies = (c.options && c.options.agencies) || [];
    return `<ol class="gi-timeline">` + rows.map((t) => {
      let what;
      if (t.kind === "assign") what = G.t("console_tl_assign", { a: named(t.agency_code, agencies) });
      else if (t.kind === "duplicate") what = G.t("console_tl_duplicate") + original(t);
      else if (t.kind === "unlink") what = G.t("console_tl_unlink") + original(t);
      else if (!t.from_status) what = G.t("console_tl_created");
      else what = G.t("console_tl_move", { a: statusLabel(t.from_status), b: statusLabel(t.to_status) }) +
        (t.agency_code ? " · " + named(t.agency_code, agencies) : "");
      const actor = ACTORS[t.actor] ? G.t(ACTORS[t.actor]) : t.actor;
      return `<li><time datetime="${esc(t.at)}">${esc(G.fmtDateTime(t.at))}</time> ` +
        `<span class="gi-tl-what">${esc(what)}</span> <span class="gi-muted">· ${esc(actor)}</span>` +
        (t.note && !platformNote(t) ? `<div class="gi-tl-note">${esc(t.note)}</div>` : "") + `</li>`;
    }).join("") + `</ol>`;
  }

  G.timelineHtml = timelineHtml; // the map's incident detail shows it too (app.js)

  async function showReport(id) {
    const seq = ++c.detailSeq;
    const [r, tl] = await Promise.all([G.api(`/api/incidents/${id}/report`),
                                       G.api(`/api/incidents/${id}/timeline`)]);
    if (seq !== c.detailSeq || c.current !== id) return;
    const agencies = (c.options && c.options.agencies) || [];
    const item = { expected_at: r.expected_at };
    const overdue = r.allowed && r.expected_at && new Date(r.expected_at) < new Date() &&
      ["received", "verified", "assigned", "in_progress"].includes(r.own_status) && !r.duplicate_of;
    const pick = (a) => (G.lang === "en" ? a.name_en || a.name_vi : a.name_vi || a.name_en);
    const moves = (r.allowed || []).map((s) =>
      `<button type="button" class="btn btn-sm btn-outline-info" data-move="${esc(s)}">${esc(statusLabel(s))}</button>`).join(" ");
    const canAssign = ["verified", "assigned", "in_progress"].includes(r.own_status);
    const body =
      `<div class="gi-badge" style="--c:${overdue ? "#ef4444" : "#0891b2"}">${esc(statusLabel(r.own_status || r.status))}</div>` +
      (overdue ? ` <span class="gi-q-flag">${esc(G.t("console_overdue"))}</span>` : "") +
      `<table class="gi-table">` +
      `<tr><th>${esc(G.t("console_service"))}</th><td>${esc(G.pick(r.service_name))}</td></tr>` +
      `<tr><th>${esc(G.t("console_agency"))}</th><td>${esc(r.agency_code ? named(r.agency_code, agencies) : "–")}</td></tr>` +
      `<tr><th>${esc(G.t("console_reported"))}</th><td>${esc(G.fmtDateTime(r.reported_at))}</td></tr>` +
      `<tr><th>${esc(G.t("console_due"))}</th><td>${esc(r.expected_at ? G.fmtDateTime(r.expected_at) : "–")}` +
      (r.expected_at ? ` <small class="gi-muted">(${esc(dueWords(item))})</small>` : "") + `</td></tr>` +
      (r.duplicate_of ? `<tr><th>${esc(G.t("console_duplicate"))}</th><td>#${esc(r.duplicate_of)}</td></tr>` : "") +
      `</table>` +
      (r.description ? `<p class="gi-report-desc">${esc(r.description)}</p>` : "") +
      `<h4 class="gi-label">${esc(G.t("console_actions"))}</h4>` +
      `<form id="gi-report-actions" data-report="${r.id}">` +
      `<label class="gi-label" for="gi-move-note">${esc(G.t("console_note"))}</label>` +
      `<textarea class="form-control form-control-sm" id="gi-move-note" rows="2" maxlength="4000"></textarea>` +
      `<div class="gi-moves">${moves || `<span class="gi-muted">${esc(G.t("console_no_moves"))}</span>`}</div>` +
      (r.duplicate_of ? `<div class="gi-unlink"><button type="button" class="btn btn-sm btn-outline-warning" data-unlink="${esc(r.duplicate_of)}">` +
        `${esc(G.t("console_unlink"))}</button> <small class="gi-muted">${esc(G.t("console_unlink_hint", { id: r.duplicate_of }))}</small></div>` : "") +
      (canAssign ? `<div class="gi-assign"><select class="form-select form-select-sm" id="gi-assign-agency" aria-label="${esc(G.t("console_agency"))}">` +
        agencies.map((a) => option(a.code, pick(a), r.agency_code)).join("") + `</select>` +
        `<button type="button" class="btn btn-sm btn-info" data-assign="1">${esc(G.t("console_assign"))}</button></div>` : "") +
      `<p class="gi-error" id="gi-move-error" hidden></p></form>` +
      `<h4 class="gi-label">${esc(G.t("console_timeline"))}</h4>${timelineHtml(tl.transitions)}`;
    G.showDetails(G.section(G.t("console_report"), `#${r.id} · ${esc(G.pick(r.service_name))}`, body, "gi-sec-report"));
  }

  function problemText(e) {
    const lines = [e.message];
    if (e.body && e.body.errors) for (const x of e.body.errors) lines.push("– " + x.reason);
    return lines.join("\n");
  }

  async function act(url, body, errorEl) {
    try {
      await G.apiPost(url, body);
      if (errorEl) errorEl.hidden = true;
      return true;
    } catch (e) {
      if (!errorEl) throw e;
      errorEl.textContent = problemText(e);
      errorEl.hidden = false;
      return false;
    }
  }

  // --- live events ------------------------------------------------------------------------------

  function stopStream() {
    if (c.stream) c.stream.abort();
    c.stream = null;
    delete document.body.dataset.consoleLive;
  }

  /** The reports' event stream (G.readEventStream: fetch, for the Authorization header),
   * open while the console is in use by an operator; never (re)connected for a user who may
   * not have it (signed out, another role). */
  function startStream() {
    stopStream();
    if (!isOperator()) return;
    const ctl = new AbortController();
    c.stream = ctl;
    const end = () => { if (c.stream === ctl) stopStream(); else ctl.abort(); };
    G.readEventStream("/api/reports/events", ctl.signal, onEvent, {
      keep: () => { const ok = isOperator() && c.on && c.open; if (!ok) end(); return ok; },
      dropped: (status) => { if (status === 403) end(); },
    });
  }

  function onEvent(name, data) {
    if (name === "ready") { document.body.dataset.consoleLive = "1"; return; }
    if (name !== "report") return;
    let ev;
    try { ev = JSON.parse(data); } catch (e) { return; }
    if (ev.event === "report.created") c.notice = G.t("console_new_report", { id: ev.id });
    refetch();
    if (ev.id && ev.id === c.current) showReport(c.current).catch(G.error);
  }

  // --- events of the page -----------------------------------------------------------------------

  function bind() {
    $("gi-console-open").addEventListener("click", () => setOpen(!c.open));
    $("gi-console-close").addEventListener("click", () => setOpen(false));
    const form = $("gi-console-filters");
    form.addEventListener("change", refetch);
    form.addEventListener("input", (e) => { if (e.target.name === "q") refetch(); });
    form.addEventListener("submit", (e) => { e.preventDefault(); refetch(); });
    const list = $("gi-console-list");
    list.addEventListener("change", (e) => {
      const id = Number(e.target.dataset.check);
      if (!id) return;
      if (e.target.checked) c.selected.add(id); else c.selected.delete(id);
      renderBulk();
    });
    list.addEventListener("click", (e) => {
      const b = e.target.closest("[data-open]");
      if (b) select(Number(b.dataset.open));
    });
    $("gi-bulk-all").addEventListener("change", (e) => {
      c.selected = new Set(e.target.checked ? c.items.map((i) => i.id) : []);
      renderQueue();
    });
    $("gi-bulk").addEventListener("click", async (e) => {
      const b = e.target.closest("button[data-bulk]");
      if (!b || !c.selected.size) return;
      const ids = [...c.selected];
      const note = $("gi-bulk-note").value.trim() || null;
      const err = $("gi-bulk-error");
      let ok;
      if (b.dataset.bulk === "move") {
        const status = $("gi-bulk-status").value;
        if (!status) return;
        ok = await act("/api/reports/bulk/transitions", { ids, status, note }, err);
      } else {
        const agency = $("gi-bulk-agency").value;
        if (!agency) return;
        ok = await act("/api/reports/bulk/assignment", { ids, agency, note }, err);
      }
      if (ok) { c.selected.clear(); $("gi-bulk-note").value = ""; $("gi-bulk-all").checked = false; }
      refetch();
      if (c.current) showReport(c.current).catch(G.error);
    });
    $("gi-details-body").addEventListener("click", async (e) => {
      const move = e.target.closest("[data-move]");
      const assign = e.target.closest("[data-assign]");
      const unlink = e.target.closest("[data-unlink]");
      if (!move && !assign && !unlink) return;
      const form = $("gi-report-actions");
      const id = Number(form.dataset.report);
      const note = $("gi-move-note").value.trim() || null;
      const err = $("gi-move-error");
      const ok = move
        ? await act(`/api/incidents/${id}/transitions`, { status: move.dataset.move, note }, err)
        : unlink ? await act(`/api/incidents/${id}/duplicate/unlink`, { note }, err)
          : await act(`/api/incidents/${id}/assignment`, { agency: $("gi-assign-agency").value, note }, err);
      if (ok) { await showReport(id).catch(G.error); refetch(); }
    });
    // The words "3 hours left" age: re-render them each minute.
    setInterval(() => { if (c.open && c.items.length) renderQueue(); }, 60000);
  }

})(window.GeoIOC = window.GeoIOC || {});
