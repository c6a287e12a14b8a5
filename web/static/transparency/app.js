/* GeoIOC transparency page: loads the period's figures from /api/transparency and shows them
 * (tables, ranking, choropleth of the median processing time, map of overdue reports) in the
 * page's language and number format (common/format.js). The period is in Vietnamese calendar
 * days; the API's `end` is the day after the last one shown in "to". */
(function (G) {
  "use strict";

  const T = JSON.parse(document.getElementById("tp-strings").textContent);
  const LANG = document.documentElement.lang === "en" ? "en" : "vi";
  const fmt = G.fmt;
  const BREAKS = [12, 24, 48, 96];
  const COLOURS = ["#1a9850", "#91cf60", "#fee08b", "#fc8d59", "#d73027"];
  const NO_DATA = "#dddddd";
  const HIDDEN = "#9e9e9e"; // a commune whose small figures are hidden from the public
  let busy = 0;
  let idle = 0;

  function setBusy(delta) {
    busy += delta;
    document.body.dataset.busy = String(busy);
    if (busy === 0) document.body.dataset.idle = String(++idle);
  }

  function name(row) { return LANG === "en" ? (row.name_en || row.name) : (row.name_vi || row.name); }
  const count = (v) => fmt.number(v, LANG, 0);
  const hours = (v) => fmt.number(v, LANG, 2);
  const share = (v) => (v == null ? fmt.number(null, LANG) : fmt.number(v * 100, LANG, 2) + " %");

  /** A figure of ROW as text: the hidden mark where the public's answer suppressed it. */
  function shown(row, key, f) {
    return row.suppressed && row[key] == null ? T.hidden_mark : f(row[key]);
  }

  function addDays(iso, n) {
    const d = new Date(iso + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  const FIGURES = [["received", count], ["resolved", count], ["rejected", count],
    ["open", count, "pending"], ["median_hours", hours, "median"], ["p90_hours", hours, "p90"],
    ["within_sla", count, "on_time"], ["due", count], ["within_sla_share", share, "share"]];

  function table(id, first, rows) {
    const el = document.getElementById(id);
    el.textContent = "";
    const head = el.createTHead().insertRow();
    for (const [label, cls] of first) {
      const th = document.createElement("th");
      th.textContent = T[label];
      if (cls) th.className = cls;
      head.appendChild(th);
    }
    for (const [, , label] of FIGURES.map((f) => [f[0], f[1], f[2] || f[0]])) {
      const th = document.createElement("th");
      th.textContent = T[label];
      th.className = "num";
      head.appendChild(th);
    }
    const body = el.createTBody();
    for (const r of rows) {
      const tr = body.insertRow();
      tr.dataset.code = r.code || "";
      for (const text of r.first) cell(tr, text);
      for (const [key, f] of FIGURES) {
        // A figure hidden because it is small (issue 17): says so, never 0 or "no data".
        const hidden = r.row.suppressed && r.row[key] == null;
        const td = cell(tr, hidden ? T.hidden_mark : f(r.row[key]), hidden ? "num tp-hidden" : "num");
        td.dataset.key = key;
        if (hidden) td.title = T.hidden_title;
      }
    }
  }

  function colour(h, suppressed) {
    if (h == null) return suppressed ? HIDDEN : NO_DATA;
    let i = 0;
    while (i < BREAKS.length && h >= BREAKS[i]) i++;
    return COLOURS[i];
  }

  function legend() {
    const el = document.getElementById("tp-legend");
    el.textContent = "";
    const items = [["< " + count(BREAKS[0]), COLOURS[0]]];
    for (let i = 1; i < BREAKS.length; i++) {
      items.push([count(BREAKS[i - 1]) + "–" + count(BREAKS[i]), COLOURS[i]]);
    }
    items.push(["≥ " + count(BREAKS[BREAKS.length - 1]), COLOURS[BREAKS.length]]);
    items.push([T.no_data, NO_DATA]);
    if (hiddenShown) items.push([T.hidden_legend, HIDDEN]);
    for (const [text, c] of items) {
      const box = document.createElement("span");
      box.className = "tp-legend-box";
      box.style.background = c;
      el.appendChild(box);
      el.appendChild(document.createTextNode(text));
    }
  }

  function baseMap(id) {
    const m = L.map(id, { attributionControl: false, zoomControl: false });
    L.control.zoom({ zoomInTitle: T.zoom_in, zoomOutTitle: T.zoom_out }).addTo(m);
    return m;
  }

  const choro = baseMap("tp-choropleth");
  const overdueMap = baseMap("tp-overdue");
  let choroLayer = null;
  let hiddenShown = false; // the public's answer hides small figures: the legend says so
  let outline = null;

  function esc(text) {
    const d = document.createElement("div");
    d.textContent = text == null ? "" : String(text);
    return d.innerHTML;
  }

  async function getJson(url) {
    const r = await fetch(url, { headers: { Accept: "application/json", "Accept-Language": LANG } });
    const body = await r.json();
    if (!r.ok) throw new Error(body.detail || T.error);
    return body;
  }

  async function loadFigures(params) {
    const q = new URLSearchParams(params);
    q.set("lang", LANG);
    const [ag, co, rk] = await Promise.all([
      getJson("/api/transparency/agencies?" + q),
      getJson("/api/transparency/communes?" + q),
      getJson("/api/transparency/ranking?" + q),
    ]);
    const p = ag.period;
    hiddenShown = !!co.suppressed;
    const note = document.getElementById("tp-suppressed");
    note.hidden = !co.suppressed;
    note.textContent = co.suppressed ? T.suppressed_note.split("{k}").join(String(co.min_count)) : "";
    document.getElementById("tp-from").value = p.start;
    document.getElementById("tp-to").value = addDays(p.end, -1);
    document.getElementById("tp-period-text").textContent =
      "(" + fmt.date(p.start) + " – " + fmt.date(addDays(p.end, -1)) + ")";
    document.getElementById("tp-computed").textContent =
      ag.computed_at ? "· " + T.computed_at + " " + fmt.dateTime(ag.computed_at) : "";
    table("tp-province", [], [{ code: "province", first: [], row: ag.province || {} }]);
    const agencyRows = ag.agencies.map((a) => ({ code: a.code, first: [name(a)], row: a }));
    if (ag.unassigned) agencyRows.push({ code: "", first: [T.unassigned], row: ag.unassigned });
    table("tp-agencies", [["agency"]], agencyRows);
    table("tp-ranking", [["rank"], ["agency"]], rk.ranking.map((a) => ({
      code: a.code, first: [count(a.rank), name(a)], row: a })));
    table("tp-communes", [["commune_col"]], co.features.map((f) => ({
      code: f.properties.code, first: [f.properties.name], row: f.properties })));
    if (choroLayer) choro.removeLayer(choroLayer);
    choroLayer = L.geoJSON(co, {
      style: (f) => ({ color: "#555", weight: 1, fillOpacity: 0.7,
                       fillColor: colour(f.properties.median_hours, f.properties.suppressed) }),
      onEachFeature: (f, layer) => layer.bindPopup(
        "<b>" + esc(f.properties.name) + "</b><br>" + esc(T.received) + ": " +
        esc(shown(f.properties, "received", count)) + "<br>" + esc(T.median) + ": " +
        esc(shown(f.properties, "median_hours", hours)) + "<br>" + esc(T.share) + ": " +
        esc(shown(f.properties, "within_sla_share", share))),
    }).addTo(choro);
    if (!outline && co.features.length) {
      outline = choroLayer.getBounds();
      choro.fitBounds(outline);
      overdueMap.fitBounds(outline);
    }
    legend();
  }

  async function loadOverdue() {
    const od = await getJson("/api/transparency/overdue?lang=" + LANG);
    document.getElementById("tp-overdue-count").textContent = count(od.features.length);
    L.geoJSON(od, {
      pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 5, color: "#b2182b", weight: 1,
                                                     fillOpacity: 0.8 }),
      onEachFeature: (f, layer) => {
        const p = f.properties;
        const what = LANG === "en" ? p.service_name_en : p.service_name_vi;
        const who = LANG === "en" ? p.agency_name_en : p.agency_name_vi;
        layer.bindPopup("<b>" + esc(what) + "</b><br>" + esc(who || T.unassigned) + "<br>" +
          esc(T.received_at) + ": " + esc(fmt.dateTime(p.reported_at)) + "<br>" +
          esc(T.deadline) + ": " + esc(fmt.dateTime(p.expected_at)) + "<br>" +
          esc(T.days_late) + ": " + esc(count(p.days_late)) + "<br>" +
          (p.sensitive ? "<i>" + esc(T.sensitive) + "</i>" : esc(p.description)));
      },
    }).addTo(overdueMap);
  }

  function showError(e) {
    const el = document.getElementById("tp-error");
    el.textContent = T.error + ": " + e.message;
    el.hidden = false;
  }

  async function run(task) {
    setBusy(1);
    try { await task(); } catch (e) { showError(e); } finally { setBusy(-1); }
  }

  const url = new URLSearchParams(location.search);
  const initial = {};
  if (url.get("start")) initial.start = url.get("start");
  if (url.get("end")) initial.end = url.get("end");

  document.getElementById("tp-period").addEventListener("submit", (ev) => {
    ev.preventDefault();
    document.getElementById("tp-error").hidden = true;
    const start = document.getElementById("tp-from").value;
    const to = document.getElementById("tp-to").value;
    const params = { start, end: to ? addDays(to, 1) : "" };
    const next = new URLSearchParams(params);
    if (LANG === "en") next.set("lang", "en");
    history.replaceState(null, "", "?" + next);
    run(() => loadFigures(params));
  });

  /** The page's usual periods, as gis/reports/transparency.offered_periods computes them (the
   * server keeps their figures ready): [start, end) in Vietnamese calendar days. */
  function preset(kind) {
    const n = fmt.vnParts(new Date());
    const today = n.year + "-" + n.month + "-" + n.day;
    const tomorrow = addDays(today, 1);
    if (kind === "30d") return { start: addDays(tomorrow, -30), end: tomorrow };
    if (kind === "365d") return { start: addDays(tomorrow, -365), end: tomorrow };
    if (kind === "month") {
      const next = n.month === "12" ? (Number(n.year) + 1) + "-01-01"
        : n.year + "-" + String(Number(n.month) + 1).padStart(2, "0") + "-01";
      return { start: n.year + "-" + n.month + "-01", end: next };
    }
    return { start: n.year + "-01-01", end: (Number(n.year) + 1) + "-01-01" };
  }

  document.querySelectorAll("#tp-presets [data-preset]").forEach((b) => b.addEventListener("click", () => {
    const p = preset(b.dataset.preset);
    document.getElementById("tp-from").value = p.start;
    document.getElementById("tp-to").value = addDays(p.end, -1);
    document.getElementById("tp-period").requestSubmit();
  }));

  run(() => loadFigures(initial));
  run(loadOverdue);
  setBusy(0);
})(window.GeoIOC = window.GeoIOC || {});
