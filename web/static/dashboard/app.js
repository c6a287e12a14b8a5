/* GeoIOC leaders' dashboard (web/dashboard_page.py): sign-in (web/static/map/session.js), the
 * filters, the KPI cards and the charts of the panel registry, PNG and CSV downloads, and the
 * video wall's mode (?wall=1): one panel at a time, rotating, figures refreshed every minute and
 * when a report arrives or moves (/api/reports/events).
 * The panels shown are those the registry (/api/dashboard/panels) gives the caller: a visitor
 * (or an account that may read only the public aggregates) gets the public ones, their small
 * counts suppressed by the server; the page says so and marks each hidden count as hidden,
 * never as 0. Staff who sign in get every panel. */
(function (G) {
  "use strict";

  const config = JSON.parse(document.getElementById("db-config").textContent);
  const S = config.strings;
  const lang = config.lang;
  G.lang = lang;
  const $ = (id) => document.getElementById(id);
  const charts = {}; // panel id -> canvas of its chart
  const bodies = {}; // panel id -> last JSON
  let idle = 0;
  let events = null;
  let refreshTimer = null;
  let rotateTimer = null;
  let province = null; // {code, name}: the indicator trend's unit when no unit is chosen
  let indicators = []; // GET /api/indicators: the choice of the indicator panels
  let registry = null; // GET /api/dashboard/panels: the caller's panels, `suppressed` for the public
  G.dashboard = { bodies };

  G.onIdle = () => { document.body.dataset.idle = String(++idle); };

  const fmtN = (v, d) => G.fmt.number(v, lang, d == null ? 0 : d);
  const fmtPct = (v) => (v == null ? "–" : (v > 0 ? "+" : "") + G.fmt.number(v, lang, 1) + " %");

  // --- filters -------------------------------------------------------------------------------

  function vnToday() {
    return new Date(Date.now() + 7 * 3600000).toISOString().slice(0, 10);
  }

  function addDays(day, n) {
    const d = new Date(day + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }

  function setWindow(days) {
    const today = vnToday();
    $("db-to").value = today;
    $("db-from").value = addDays(today, 1 - days);
  }

  function selected(id) {
    return Array.from($(id).selectedOptions).map((o) => o.value).join(",");
  }

  /** The filters as query parameters. Dates are Vietnamese days: the window runs from the
   * first day's local midnight to the midnight after the last day. */
  function params() {
    const p = new URLSearchParams();
    if ($("db-from").value) p.set("start", $("db-from").value + "T00:00:00+07:00");
    if ($("db-to").value) p.set("end", addDays($("db-to").value, 1) + "T00:00:00+07:00");
    for (const name of ["category", "severity", "status", "source"]) {
      const v = selected("db-" + name);
      if (v) p.set(name, v);
    }
    const unit = $("db-unit").value.trim();
    if (unit) p.set("unit", unit);
    return p;
  }

  function indicator() {
    const code = $("db-indicator").value;
    return indicators.find((i) => i.code === code) || null;
  }

  /** The panel's data URL: the page's incident filters and the panel's own parameters; the
   * indicator panels take the chosen indicator, the unit (else the province) or its last
   * period instead. Null when it cannot be asked yet (no indicator). */
  function dataUrl(panel, extra) {
    let p, url = panel.url;
    if (panel.filters === "indicator") {
      const ind = indicator();
      if (!ind || !province) return null;
      url = url.replace("{code}", encodeURIComponent(ind.code));
      p = new URLSearchParams();
      const fill = { "{unit}": $("db-unit").value.trim() || province.code, "{period}": ind.last_period };
      for (const [k, v] of Object.entries(panel.params || {})) p.set(k, fill[v] != null ? fill[v] : v);
    } else {
      p = params();
      for (const [k, v] of Object.entries(panel.params || {})) p.set(k, v);
      if (panel.kind === "choropleth" && $("db-classification")) p.set("classification", $("db-classification").value);
      // The hot spots' study area is the chosen unit (its grid covers that unit only).
      if (panel.kind === "hotspots" && p.get("unit")) p.set("commune", p.get("unit"));
    }
    if (panel.id === "kpis") {
      p.delete("start"); p.delete("end");
      if ($("db-week").value) p.set("week", $("db-week").value);
    }
    for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
    return url + "?" + p.toString();
  }

  // --- panels --------------------------------------------------------------------------------

  function panelsShown() {
    const mine = new Set(registry ? registry.panels.map((p) => p.id) : []);
    return config.panels.filter((p) => p.available && mine.has(p.id));
  }

  /** How many counts of a panel's answer the server suppressed (null in a suppressed answer). */
  function hiddenCount(panel, body) {
    if (!body || !body.suppressed) return 0;
    if (panel.kind === "stacked-bars") return body.series.reduce((n, s) => n + s.counts.filter((v) => v == null).length, 0);
    if (panel.kind === "heat-matrix") return body.matrix.reduce((n, r) => n + r.filter((v) => v == null).length, 0);
    if (panel.kind === "bars") return body.communes.filter((r) => r.suppressed).length;
    if (panel.kind === "choropleth") return body.features.filter((f) => f.properties.suppressed).length;
    return 0;
  }

  /** Under a chart of the public's figures: how many counts are hidden (not zeros). */
  function hiddenNote(panel, body) {
    const el = $("db-hidden-" + panel.id);
    if (!el) return;
    const k = String(body && body.min_count != null ? body.min_count : "");
    const n = hiddenCount(panel, body);
    let text = "";
    if (n) text = S.hidden_values.replace("{n}", fmtN(n)).replace("{k}", k);
    else if (body && body.suppressed && panel.kind === "raster") text = S.hidden_cells.replace("{k}", k);
    el.textContent = text;
    el.hidden = !text;
    el.dataset.hidden = String(n);
  }

  function put(scope, key, text) {
    const el = scope.querySelector(`[data-value="${key}"]`);
    if (el) el.textContent = text;
  }

  function showKpis(k) {
    const root = $("db-kpis");
    const inc = root.querySelector('[data-kpi="incidents"]');
    put(inc, "current", fmtN(k.incidents.current));
    put(inc, "previous", fmtN(k.incidents.previous));
    put(inc, "year_ago", fmtN(k.incidents.year_ago));
    put(inc, "change_vs_previous", fmtPct(k.incidents.change_vs_previous));
    put(inc, "change_vs_year_ago", fmtPct(k.incidents.change_vs_year_ago));
    put(inc, "partial", k.partial ? S.partial : "");
    put(root.querySelector('[data-kpi="open"]'), "open", fmtN(k.reports.open));
    put(root.querySelector('[data-kpi="overdue"]'), "overdue", fmtN(k.reports.overdue));
    const med = root.querySelector('[data-kpi="median"]');
    put(med, "median_hours", k.processing.median_hours == null ? "–" : fmtN(k.processing.median_hours, 2));
    put(med, "median_change", fmtPct(k.processing.change_vs_previous));
    put(med, "answered", S.answered.replace("{a}", fmtN(k.processing.answered)).replace("{r}", fmtN(k.processing.received)));
    const al = root.querySelector('[data-kpi="alerts"]');
    put(al, "alerts", k.alerts ? fmtN(k.alerts.open) : "–");
    put(al, "unacknowledged", k.alerts ? fmtN(k.alerts.unacknowledged) : "–");
    root.querySelector('[data-kpi="overdue"]').classList.toggle("db-bad", k.reports.overdue > 0);
  }

  function draw(panel) {
    const body = bodies[panel.id];
    if (!body) return;
    if (panel.kind === "kpis") { showKpis(body); return; }
    const el = $("db-chart-" + panel.id);
    hiddenNote(panel, body);
    const wall = document.body.classList.contains("db-wall");
    if (wall && !el.closest(".db-panel").classList.contains("db-active") && el._dbMap) return; // drawn when shown
    const height = wall ? Math.max(300, window.innerHeight - 160) : 300;
    const mapHeight = wall ? Math.max(300, window.innerHeight - 260) : 320;
    if (panel.kind === "stacked-bars" || panel.kind === "lines") charts[panel.id] = G.charts.lines(el, body, S, lang, height);
    else if (panel.kind === "heat-matrix") charts[panel.id] = G.charts.heatMatrix(el, body, S, lang);
    else if (panel.kind === "bars") charts[panel.id] = G.charts.bars(el, body, S, lang);
    else if (panel.kind === "indicator-lines") charts[panel.id] = G.charts.indicatorLines(el, body, S, lang, height);
    else if (panel.kind === "indicator-bars") charts[panel.id] = G.charts.indicatorBars(el, body, S, lang, wall ? 25 : 15);
    else if (panel.kind === "choropleth") charts[panel.id] = G.maps.choropleth(el, body, S, lang, mapHeight);
    else if (panel.kind === "raster") charts[panel.id] = G.maps.density(el, body, S, lang, mapHeight, bodies.choropleth);
    else if (panel.kind === "hotspots") charts[panel.id] = G.maps.hotspots(el, body, S, lang, mapHeight, config.hot_classes);
  }

  async function load(panel) {
    const url = dataUrl(panel);
    if (url === null) { bodies[panel.id] = null; $("db-chart-" + panel.id).textContent = S.no_indicator; return; }
    bodies[panel.id] = await G.api(url);
  }

  /** Every panel's data, then every chart: the density map outlines the communes of the
   * choropleth's data. A panel that fails says so; the others are drawn. */
  async function loadAll(only) {
    $("db-error").hidden = true;
    const shown = panelsShown().filter((p) => !only || only.includes(p.id));
    const results = await Promise.allSettled(shown.map(load));
    const failed = results.find((r) => r.status === "rejected");
    shown.forEach((panel, i) => {
      if (results[i].status !== "fulfilled") return;
      try { draw(panel); } catch (e) { console.error(e); }
    });
    if (failed) {
      const e = failed.reason;
      if (!e.worded) console.error(e); // a bug of the page: its details for the developer
      $("db-error").textContent = S.error.replace("{e}", G.errorText(e) || e.message);
      $("db-error").hidden = false;
    } else {
      $("db-updated").textContent = S.updated.replace("{t}", G.fmt.dateTime(new Date()));
    }
    const heat = panelsShown().find((p) => p.kind === "raster");
    if (heat && $("db-cog")) $("db-cog").href = dataUrl(heat).replace(heat.url + "?", heat.url + ".tif?");
    const b = $("db-briefing");
    const q = new URLSearchParams();
    const unit = $("db-unit").value.trim();
    if (unit) q.set("unit", unit);
    if ($("db-week").value) q.set("week", $("db-week").value);
    b.href = "/api/dashboard/briefing.pdf" + (q.toString() ? "?" + q : "");
  }

  // --- downloads -----------------------------------------------------------------------------

  function save(href, name) {
    const a = document.createElement("a");
    a.href = href;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  function panelById(id) {
    return config.panels.find((p) => p.id === id);
  }

  function downloadPng(id) {
    const chart = charts[id];
    if (!chart) return;
    const title = panelById(id).title[lang];
    const canvas = chart.toCanvas ? chart.toCanvas(title) : chart; // a map: painted with its legend
    save(G.charts.png(canvas, title), `dashboard-${id}.png`);
  }

  async function downloadCsv(id) {
    const panel = panelById(id);
    if (panel.csv === "page") { // another API's data: its table written here from the same JSON
      if (!bodies[id]) return;
      const url = URL.createObjectURL(new Blob([G.charts.csv(panel.kind, bodies[id])], { type: "text/csv;charset=utf-8" }));
      save(url, `dashboard-${id}.csv`);
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      return;
    }
    G.setBusy(+1);
    try {
      const r = await fetch(dataUrl(panelById(id), { f: "csv" }), { headers: { ...G.authHeaders }, credentials: "same-origin" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      const url = URL.createObjectURL(await r.blob());
      save(url, `dashboard-${id}.csv`);
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      $("db-error").textContent = S.error.replace("{e}", e.message);
      $("db-error").hidden = false;
    } finally {
      G.setBusy(-1);
    }
  }

  // --- wall mode -----------------------------------------------------------------------------

  function rotate() {
    const sections = Array.from(document.querySelectorAll(".db-panel:not([hidden])"));
    if (!sections.length) return;
    const i = sections.findIndex((s) => s.classList.contains("db-active"));
    sections.forEach((s) => s.classList.remove("db-active"));
    const next = sections[(i + 1) % sections.length];
    next.classList.add("db-active");
    document.body.dataset.panel = next.dataset.panel;
    const panel = panelById(next.dataset.panel);
    if (panel && panel.kind !== "kpis") draw(panel); // sized for the screen now it is shown
  }

  function listen() {
    if (events || !G.session() || typeof EventSource === "undefined") return;
    // The console's stream: a report arrived or moved. Figures follow within seconds.
    let pending = null;
    try {
      events = new EventSource("/api/reports/events", { withCredentials: true });
      events.onmessage = () => {
        clearTimeout(pending);
        pending = setTimeout(loadAll, 3000);
      };
      events.onerror = () => { /* EventSource reconnects by itself; the minute's refresh goes on */ };
    } catch (e) {
      events = null;
    }
  }

  function startWall() {
    rotate();
    clearInterval(rotateTimer);
    rotateTimer = setInterval(rotate, config.rotate * 1000);
    const fs = $("db-fullscreen");
    if (fs) fs.addEventListener("click", () => document.documentElement.requestFullscreen && document.documentElement.requestFullscreen().catch(() => {}));
    listen();
  }

  // --- start ---------------------------------------------------------------------------------

  /** The province (the indicator trend's default unit) and the indicators to choose from. */
  async function setup() {
    const reg = await G.api("/api/dashboard/panels");
    registry = reg;
    province = reg.province;
    try {
      indicators = (await G.api("/api/indicators")).indicators;
    } catch (e) {
      indicators = []; // no indicator the caller may read: the two panels say so
    }
    const sel = $("db-indicator");
    sel.textContent = "";
    for (const i of indicators) {
      const o = document.createElement("option");
      o.value = i.code;
      o.textContent = `${lang === "en" ? i.name_en : i.name_vi} (${lang === "en" ? i.unit_en : i.unit_vi})`;
      sel.appendChild(o);
    }
  }

  /** The panels the registry gives the caller, shown; the others (and those not served yet)
   * hidden. The public's view says what is hidden and why. */
  function showPanels() {
    const mine = new Set(panelsShown().map((p) => p.id));
    document.querySelectorAll(".db-panel").forEach((sec) => {
      sec.hidden = !mine.has(sec.dataset.panel);
      if (sec.hidden) sec.classList.remove("db-active");
    });
    const note = $("db-guest-note");
    note.hidden = !registry.suppressed;
    note.textContent = registry.suppressed ? S.guest_note.replace("{k}", String(registry.min_count)) : "";
  }

  /** Start (or restart after signing in or out): the caller's panels, their figures, the
   * minute's refresh, the wall. Signed in or not, the page shows what the caller may see. */
  async function enter() {
    clearInterval(refreshTimer);
    clearInterval(rotateTimer);
    if (events) { events.close(); events = null; }
    const s = G.session();
    delete document.body.dataset.view;
    $("db-updated").textContent = "";
    $("db-signin").hidden = true;
    $("db-user").textContent = s ? s.user || "" : "";
    $("db-signout").hidden = !s || !!s.cookie;
    $("db-signin-open").hidden = !!s;
    await setup();
    $("db-briefing").hidden = !s || !!registry.suppressed; // the briefing (its overdue list) is for staff
    showPanels();
    $("db-content").hidden = false;
    await loadAll();
    // Which view the page shows, once its figures are in (tests wait for it).
    document.body.dataset.view = registry.suppressed ? "public" : "staff";
    refreshTimer = setInterval(loadAll, config.refresh * 1000);
    if (config.wall) startWall();
  }

  function signedOut() {
    enter().catch((e) => { console.error(e); });
  }
  G.onSessionEnded = signedOut;

  document.addEventListener("DOMContentLoaded", async () => {
    setWindow(30);
    $("db-presets").addEventListener("click", (e) => {
      const days = e.target.dataset && e.target.dataset.days;
      if (days) { setWindow(Number(days)); loadAll(); }
    });
    $("db-filters").addEventListener("submit", (e) => { e.preventDefault(); loadAll(); });
    $("db-indicator").addEventListener("change", () => loadAll(["indicator-trends", "indicator-communes"]));
    if ($("db-classification")) $("db-classification").addEventListener("change", () => loadAll(["choropleth"]));
    document.addEventListener("click", (e) => {
      const t = e.target;
      if (t.classList.contains("db-png")) downloadPng(t.dataset.panel);
      if (t.classList.contains("db-csv")) downloadCsv(t.dataset.panel);
    });
    $("db-signin").addEventListener("submit", async (e) => {
      e.preventDefault();
      $("db-signin-error").textContent = "";
      try {
        await G.signIn($("db-username").value, $("db-password").value);
        await enter();
      } catch (err) {
        $("db-signin-error").textContent = G.errorText(err);
      }
    });
    $("db-signout").addEventListener("click", async () => { await G.signOut(); await enter(); });
    $("db-signin-open").addEventListener("click", () => {
      $("db-signin").hidden = false;
      $("db-username").focus();
    });
    window.addEventListener("resize", () => panelsShown().forEach(draw));
    G.setBusy(+1);
    try {
      await G.restoreSession();
      await enter();
    } catch (e) {
      $("db-error").textContent = S.error.replace("{e}", G.errorText(e) || e.message);
      $("db-error").hidden = false;
      $("db-content").hidden = false;
    } finally {
      G.setBusy(-1);
    }
  });
})(window.GeoIOC = window.GeoIOC || {});
