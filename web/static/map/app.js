/* GeoIOC command map: start-up and interaction.
 *
 * folium builds the page and the Leaflet map, then calls GeoIOC.start(map, config). From here on
 * everything comes live from the API: the layer manifest (inlined for anonymous visitors, then
 * /api/map/layers once sign-in state is known), tiles and GeoJSON per layer, incident filters
 * shared by the clustered points, the heatmap and the counts, "what is here" on click, search.
 * The counts in the layer list are the database's, for the view (/api/map/counts; incidents
 * through their filtered statistics), asked again when the view settles. */
(function (G) {
  "use strict";

  const DAY = 86400000;
  const state = {
    map: null,
    config: null,
    manifest: null,
    handles: {},
    toggled: {}, // layer id -> on/off chosen by the user (kept across sign-in)
    era: null, // null = current administrative units, else an ISO date (before the reform)
    filters: null,
    selection: null, // what the detail panel shows: re-rendered on language or filter change
    highlight: null,
    labels: null, // the layer group names are drawn into (labels.js)
    places: null, // the gazetteer's names of the current era: {era, labels}
    placesEra: undefined,
    counts: {}, // layer id -> features in view (database), null when not counted
    countsTimer: null,
    ready: false,
    firstRender: null,
    statsSeq: 0,
    detailSeq: 0,
  };
  G.state = state;

  // --- start ----------------------------------------------------------------------------------

  /** What live.js and chart.js read of the map: its handles, manifest and Leaflet map. */
  G.layerHandles = () => state.handles;
  G.currentManifest = () => state.manifest;
  G.leafletMap = () => state.map;

  G.start = function (map, config) {
    state.map = map;
    state.config = config;
    const urlLang = new URLSearchParams(location.search).get("lang");
    G.lang = urlLang === "en" || urlLang === "vi" ? urlLang : config.lang || "vi";
    // folium fitted the province beside the 320 px layer panel; a phone's panel opens over the
    // map instead, so the province takes the whole width there.
    if (map.getSize().x <= 640) {
      const b = config.manifest.bbox;
      map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { padding: [8, 8], animate: false });
    }
    createPanes(map);
    state.highlight = L.featureGroup([], { pane: "gi-highlight" }).addTo(map);
    state.labels = L.layerGroup().addTo(map);
    bindUi();
    showZoom();
    G.translatePage();
    updateLangButton();
    tickClock();
    setInterval(tickClock, 30000);
    map.attributionControl.setPrefix('<a href="https://leafletjs.com" title="Leaflet">Leaflet</a>');
    L.control.scale({ imperial: false, position: "bottomleft" }).addTo(map);
    localizeControls();
    map.on("moveend", onMoveEnd);
    map.on("zoomend", () => { syncLabels(); showZoom(); });
    map.on("click", (e) => identifyAt(e.latlng).catch(error));
    map.on("mousemove", (e) => showZoom(e.latlng));
    G.onIdle = checkIdle;
    G.onSessionEnded = () => { loadManifest().catch(error); };
    G.restoreSession()
      .then((s) => (s ? G.api("/api/map/layers") : config.manifest))
      .catch(() => config.manifest)
      .then(applyManifest)
      .catch(error);
  };

  /** Leaflet's own words (zoom buttons) and the attribution, in the current language. */
  let attribution = null;
  function localizeControls() {
    const map = state.map;
    for (const [cls, key] of [["in", "zoom_in"], ["out", "zoom_out"]]) {
      const a = map.getContainer().querySelector(".leaflet-control-zoom-" + cls);
      if (a) { a.title = G.t(key); a.setAttribute("aria-label", G.t(key)); }
    }
    if (attribution) map.attributionControl.removeAttribution(attribution);
    attribution = state.config.basemap ? null : G.esc(G.t("basemap_off"));
    if (attribution) map.attributionControl.addAttribution(attribution);
  }

  /** The status line's position and zoom: coordinates with the page's decimal separator. */
  function showZoom(latlng) {
    if (latlng) state.pointer = latlng;
    const p = state.pointer;
    const num = (v) => G.fmt.number(v, G.lang, 5, { group: false });
    const where = p ? G.t("lat_lon", { lat: num(p.lat), lon: num(p.lng) }) + " · " : "";
    document.getElementById("gi-coords").textContent = `${where}z${state.map.getZoom()}`;
  }

  function createPanes(map) {
    const panes = { "gi-fov": 380, "gi-labels": 390, "gi-highlight": 395 };
    for (const [name, z] of Object.entries(panes)) {
      map.createPane(name).style.zIndex = String(z);
    }
    map.getPane("gi-labels").style.pointerEvents = "none";
    map.getPane("gi-fov").style.pointerEvents = "none";
  }

  /** Tile layers stack as a paper map does: filled areas, then lines, then outlines. */
  function paneFor(entry) {
    const name = "gi-t-" + entry.id;
    if (!state.map.getPane(name)) {
      const outline = entry.geometry.indexOf("Polygon") >= 0 && (entry.style.fill_opacity || 0) <= 0.1;
      const line = entry.geometry.indexOf("LineString") >= 0;
      const order = state.manifest.layers.filter((e) => e.kind === "tiles").indexOf(entry);
      const z = (outline ? 260 : line ? 240 : 210) + order;
      state.map.createPane(name).style.zIndex = String(z);
    }
    return name;
  }

  // --- the manifest ---------------------------------------------------------------------------

  async function loadManifest() {
    applyManifest(await G.api("/api/map/layers"));
  }

  function isOn(id) {
    if (id in state.toggled) return state.toggled[id];
    const e = state.manifest.layers.find((l) => l.id === id);
    return !!(e && e.visible);
  }

  function applyManifest(manifest) {
    for (const h of Object.values(state.handles)) {
      state.map.removeLayer(h.layer);
      if (h.fovLayer) state.map.removeLayer(h.fovLayer);
    }
    state.handles = {};
    state.manifest = manifest;
    const ctx = {
      map: state.map,
      paneFor,
      orderOf: (entry) => state.manifest.layers.indexOf(entry),
      era: () => state.era,
      filterParams,
      select: (entry, feature, latlng) => selectFeature(entry, feature, latlng).catch(error),
      onIncidents: updateIncidentNote,
      onHeatmap: () => {},
      onLoaded: relabelSoon,
      error,
    };
    for (const entry of manifest.layers) {
      const h = G.createLayer(entry, ctx);
      if (h) state.handles[entry.id] = h;
    }
    const incidents = manifest.layers.find((e) => e.kind === "incidents");
    if (incidents && !state.filters) state.filters = defaultFilters(incidents);
    if (!incidents) state.selection = state.selection && state.selection.kind === "incident" ? null : state.selection;
    renderPanels();
    loadCameraHealth().catch(error);
    for (const entry of manifest.layers) {
      if (isOn(entry.id)) showLayer(entry.id, true);
    }
    syncLabels();
    renderUser();
    if (G.consoleSync) G.consoleSync();
    if (G.liveSync) G.liveSync();
    loadFilterStats();
    scheduleCounts();
    if (state.selection) rerenderSelection();
    state.ready = true;
    checkIdle();
  }

  function showLayer(id, on) {
    const h = state.handles[id];
    if (!h) return;
    if (on) {
      if (!state.map.hasLayer(h.layer)) h.layer.addTo(state.map);
      if (h.refresh) h.refresh("show");
    } else if (state.map.hasLayer(h.layer)) {
      state.map.removeLayer(h.layer);
      if (h.refresh) h.refresh("hide");
    }
    if (id === gazetteerId()) syncLabels();
    relabelSoon();
    updateCounts();
    scheduleCounts();
  }

  function renderPanels() {
    G.renderLayerPanel(state.manifest, isOn, state.era);
    const incidents = state.manifest.layers.find((e) => e.kind === "incidents");
    G.renderFilters(incidents, state.filters);
    updateCounts();
  }

  function renderUser() {
    const s = G.session();
    const user = document.getElementById("gi-user");
    user.hidden = !s;
    const titles = (state.manifest && state.manifest.principal.role_titles) || {};
    user.textContent = s ? `${s.user} · ${s.roles.map((r) => G.pick(titles[r]) || r).join(", ")}` : "";
    document.getElementById("gi-signin-open").hidden = !!s;
    document.getElementById("gi-signout").hidden = !s;
  }

  // --- filters --------------------------------------------------------------------------------

  function defaultFilters(entry) {
    const end = new Date();
    return {
      days: 30,
      end,
      start: new Date(end.getTime() - 30 * DAY),
      category: new Set(entry.filters.category.map((v) => v.value)),
      severity: new Set(entry.filters.severity.map((v) => v.value)),
      status: new Set(entry.filters.status.map((v) => v.value)),
    };
  }

  /** Query parameters for the shared filters; null when a group has nothing selected. */
  function filterParams() {
    const f = state.filters;
    const entry = state.manifest.layers.find((e) => e.kind === "incidents");
    if (!entry && state.manifest.layers.some((e) => e.suppression)) {
      // The public: no incidents to filter, only their counts (small ones hidden by the
      // server), over the last 30 days.
      const end = new Date();
      return new URLSearchParams({ start: new Date(end.getTime() - 30 * DAY).toISOString(),
        end: end.toISOString() });
    }
    if (!f || !entry) return null;
    const p = new URLSearchParams({ start: f.start.toISOString(), end: f.end.toISOString() });
    for (const group of ["category", "severity", "status"]) {
      if (f[group].size === 0) return null;
      if (f[group].size < entry.filters[group].length) p.set(group, [...f[group]].join(","));
    }
    return p;
  }
  G.filterParams = filterParams;

  function filtersChanged() {
    for (const h of Object.values(state.handles)) {
      if (["incidents", "heatmap", "choropleth"].includes(h.entry.kind)) h.refresh("filters");
    }
    loadFilterStats();
    scheduleCounts();
    if (state.selection && state.selection.kind === "place") rerenderSelection();
  }

  async function loadFilterStats() {
    const entry = state.manifest && state.manifest.layers.find((e) => e.kind === "incidents");
    if (!entry) return;
    const params = filterParams();
    const seq = ++state.statsSeq;
    if (params === null) { G.renderFilterCounts(null); return; }
    const stats = await G.api(entry.stats_url + "?" + params.toString()).catch(error);
    if (seq === state.statsSeq && stats) G.renderFilterCounts(stats);
  }

  function setWindow(days) {
    const f = state.filters;
    f.days = days;
    if (days !== null) {
      f.end = new Date();
      f.start = new Date(f.end.getTime() - days * DAY);
    }
  }

  // --- counts, notes, idle --------------------------------------------------------------------

  function updateCounts() {
    G.updateLayerCounts(state.handles, state.counts, state.map.getZoom());
  }

  /** Count again once the view has settled (a drag fires many moves): busy meanwhile, so that
   * nobody reads the list as final before the counts arrive. */
  function scheduleCounts() {
    if (!state.manifest) return;
    if (state.countsTimer === null) G.setBusy(+1);
    else clearTimeout(state.countsTimer);
    state.countsTimer = setTimeout(() => {
      state.countsTimer = null;
      loadCounts().catch(error).finally(() => G.setBusy(-1));
    }, 250);
  }

  /** Features in view per layer shown, counted by the database under the caller's access:
   * /api/map/counts for the layers, the incidents' statistics (with the filters) for incidents
   * and their heatmap. Layers off or outside their zoom range show no count. */
  async function loadCounts() {
    const map = state.map;
    const zoom = map.getZoom();
    const b = map.getBounds();
    const bbox = G.bboxParam(L.latLngBounds([Math.max(-85, b.getSouth()), Math.max(-180, b.getWest())],
                                            [Math.min(85, b.getNorth()), Math.min(180, b.getEast())]));
    const shown = state.manifest.layers.filter((e) => state.handles[e.id] && isOn(e.id) &&
      zoom >= (e.min_zoom || 0) && zoom <= (e.max_zoom == null ? 99 : e.max_zoom));
    const plain = shown.filter((e) => !["incidents", "heatmap", "choropleth"].includes(e.kind));
    const filtered = shown.filter((e) => e.kind === "incidents" || e.kind === "heatmap");
    const counts = {};
    const asks = [];
    if (plain.length) {
      const p = new URLSearchParams({ layers: plain.map((e) => e.id).join(","), bbox });
      if (state.era) p.set("as_of", state.era);
      asks.push(G.api("/api/map/counts?" + p.toString()).then((body) => Object.assign(counts, body.counts)));
    }
    if (filtered.length) {
      const entry = state.manifest.layers.find((e) => e.kind === "incidents");
      const params = filterParams();
      if (entry && params) {
        params.set("bbox", bbox);
        asks.push(G.api(entry.stats_url + "?" + params.toString()).then((stats) => {
          for (const e of filtered) counts[e.id] = stats.current.total;
        }));
      } else {
        for (const e of filtered) counts[e.id] = 0;
      }
    }
    await Promise.all(asks);
    state.counts = counts;
    G.countsBBox = bbox;
    updateCounts();
  }

  function updateIncidentNote(h) {
    updateCounts();
    const el = document.querySelector('[data-layer="' + h.entry.id + '"] .gi-note');
    const text = h.mode === "clusters" ? G.t("clusters_note", { n: G.fmtNumber(h.drawn(), 0) }) : "";
    const row = document.querySelector('[data-layer="' + h.entry.id + '"]');
    if (!row) return;
    if (el) el.textContent = text;
    else if (text) row.insertAdjacentHTML("beforeend", `<small class="gi-note">${G.esc(text)}</small>`);
  }

  function checkIdle() {
    updateCounts();
    if (!state.ready || G.busy > 0) return;
    requestAnimationFrame(() => requestAnimationFrame(() => {
      if (G.busy > 0) return;
      relabel();
      if (state.firstRender === null) {
        state.firstRender = performance.now();
        performance.mark("geoioc:first-render");
        document.body.dataset.rendered = "true";
      }
      document.body.dataset.idle = String(Date.now());
    }));
  }

  /** Features drawn per layer, for the tests and the status line. */
  G.drawn = function () {
    const out = {};
    for (const [id, h] of Object.entries(state.handles)) out[id] = h.drawn();
    return out;
  };

  /** Colours each layer draws its features in now, and the screen boxes of the point symbols
   * it shows (clusters included): for the tests, against the legend and the names. */
  G.drawnColors = function () {
    const out = {};
    for (const [id, h] of Object.entries(state.handles)) out[id] = h.colors ? [...h.colors()] : [];
    return out;
  };
  G.symbolBoxes = function () {
    const out = {};
    for (const [id, h] of Object.entries(state.handles)) {
      out[id] = h.symbols ? h.symbols().map((b) => ({ x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2, cluster: b.cluster })) : [];
    }
    return out;
  };

  // --- map movement ---------------------------------------------------------------------------

  function onMoveEnd() {
    for (const h of Object.values(state.handles)) if (h.refresh) h.refresh("view");
    scheduleCounts();
    relabelSoon();
  }

  /** The gazetteer (administrative units with eras): the manifest says which layer it is. */
  function gazetteerId() {
    return state.manifest ? state.manifest.gazetteer : null;
  }

  /** The gazetteer's names of the current era, loaded once per era (then laid out with the
   * other names by labels.js whenever the view settles). */
  function syncLabels() {
    const gz = entryOf(gazetteerId());
    if (gz && gz.labels_url && state.placesEra !== state.era) {
      const era = state.era;
      state.placesEra = era;
      G.api(gz.labels_url + (era ? "?as_of=" + era : "")).then((body) => {
        if (state.placesEra !== era) return;
        state.places = { era, labels: body.labels };
        relabel();
      }).catch(error);
      return;
    }
    relabelSoon();
  }

  /** Names for the view, by priority (labels.js): the gazetteer's from zoom 11 while its layer
   * is shown, the point layers' from zoom 15. */
  function relabel() {
    if (!state.manifest) return;
    const gz = entryOf(gazetteerId());
    const admin = gz && state.handles[gz.id];
    const places = admin && state.places && state.map.hasLayer(admin.layer) && state.map.getZoom() >= 11
      ? { labels: state.places.labels, priority: gz.label_priority || 1, layer: gz.id } : null;
    // The panels over the map hide what is under them: no name goes there.
    const frame = state.map.getContainer().getBoundingClientRect();
    const covered = ["gi-panel", "gi-details"].map((id) => document.getElementById(id))
      .filter((el) => el && !el.hidden && el.offsetParent !== null).map((el) => {
        const r = el.getBoundingClientRect();
        return { x1: r.left - frame.left, y1: r.top - frame.top, x2: r.right - frame.left, y2: r.bottom - frame.top };
      });
    G.relabel(state.map, places, state.handles, state.labels, covered);
  }

  let relabelTimer = null;
  /** After the point layers have re-clustered for the new view (their own moveend handlers). */
  function relabelSoon() {
    clearTimeout(relabelTimer);
    relabelTimer = setTimeout(relabel, 0);
  }

  // --- selection and the detail panel ---------------------------------------------------------

  function entryOf(id) {
    return state.manifest && state.manifest.layers.find((e) => e.id === id);
  }

  function highlight(geojson, style) {
    state.highlight.clearLayers();
    if (!geojson) return;
    L.geoJSON(geojson, {
      pane: "gi-highlight", interactive: false,
      style: style || { color: "#06b6d4", weight: 3, fillColor: "#22d3ee", fillOpacity: 0.15 },
      pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 11, color: "#06b6d4", weight: 3, fill: false }),
    }).addTo(state.highlight);
  }

  /** Ask the server what the layers it identifies (manifest `identify`) have at LATLNG: the
   * polygon under it, the nearest point or line within a few pixels. The gazetteer is asked
   * even when hidden (the commune of a click is always shown). */
  async function identifyAt(latlng, extra) {
    const asked = state.manifest.layers.filter((e) => e.identify && (isOn(e.id) || e.gazetteer));
    if (!asked.length) return;
    state.selection = { kind: "place", latlng, extra };
    const seq = ++state.detailSeq;
    const params = new URLSearchParams({
      lon: latlng.lng.toFixed(7), lat: latlng.lat.toFixed(7), z: String(state.map.getZoom()),
      layers: asked.map((e) => e.id).join(","),
    });
    if (state.era) params.set("as_of", state.era);
    const fc = await G.api("/api/map/identify?" + params.toString());
    G.lastIdentify = fc;
    if (seq !== state.detailSeq) return;
    const sections = [];
    if (extra && extra.html) sections.push(extra.html);
    let unit = null;
    let first = null;
    // Topmost layer first, as the server answers; a few layers have a view of their own.
    for (const f of fc.features) {
      const entry = entryOf(f.layer);
      if (!entry) continue;
      if (entry.gazetteer) { unit = f; continue; }
      if (!first) first = f;
      if (f.layer === "parcels") sections.push(parcelSection(f));
      else if (f.layer === "land_use_zones") sections.push(zoneSection(f));
      else sections.push(featureSection(entry, f));
    }
    if (unit) sections.push(communeSection(unit));
    if (!sections.length) { G.hideDetails(); highlight(null); return; }
    G.showDetails(sections.join(""));
    const top = first || unit;
    highlight(top, top === unit ? { color: "#0891b2", weight: 2.5, fillColor: "#22d3ee", fillOpacity: 0.08, dashArray: "6 4" }
      : { color: "#f59e0b", weight: 3, fillColor: "#fbbf24", fillOpacity: 0.25 });
    if (extra && extra.marker) L.circleMarker(latlng, { radius: 8, color: "#e11d48", weight: 3, fillOpacity: 0.3,
                                                        pane: "gi-highlight" }).addTo(state.highlight);
    if (unit) loadCommuneStats(unit, seq);
  }

  /** Any identified feature: its layer as the kicker, its label field as the title, the coded
   * value of the style's field as a coloured badge, then its readable fields. */
  function featureSection(entry, f) {
    const p = f.properties || {};
    const label = entry.label_field;
    const by = entry.style && entry.style.by;
    const field = by && entry.fields.find((x) => x.name === by);
    const badge = field && field.values && field.values[p[by]]
      ? `<div class="gi-badge" style="--c:${G.esc(G.categoryColor(entry, p[by]))}">${G.esc(G.pick(field.values[p[by]]))}</div>` : "";
    return G.section(G.pick(entry.title), G.esc(String(p[label] || f.id)),
                     badge + G.fieldTable(entry, p, label ? [label] : []), "gi-sec-feature gi-sec-" + entry.id);
  }

  /** Land-use code -> its name in the current language (all codes, from the manifest). */
  function landUseNames() {
    const names = {};
    const table = (state.manifest.names || {}).land_use || {};
    for (const code of Object.keys(table)) names[code] = G.pick(table[code]);
    return names;
  }

  function parcelSection(f) {
    const entry = entryOf("parcels");
    const p = f.properties;
    const title = G.t("sheet_parcel", { s: G.esc(p.sheet_no), p: G.esc(p.parcel_no) });
    const link = `<a class="btn btn-sm btn-info gi-parcel-link" href="/parcels/${encodeURIComponent(f.id)}?lang=${G.lang}">${G.esc(G.t("parcel_page"))} →</a>`;
    return G.section(G.t("parcel"), `<span class="gi-parcel-no">${title}</span>`,
                     G.fieldTable(entry, p, ["sheet_no", "parcel_no"]) + link, "gi-sec-parcel");
  }

  function zoneSection(f) {
    const entry = entryOf("land_use_zones");
    const p = f.properties;
    const color = entry.style.palette[p.land_use_code] || "#999";
    const names = landUseNames();
    return G.section(G.t("zone"), `<span class="gi-swatch" style="--c:${G.esc(color)}"></span> ` +
                     `${G.esc(p.land_use_code)} – ${G.esc(names[p.land_use_code] || "")}`,
                     G.fieldTable(entry, p, ["land_use_code"]), "gi-sec-zone");
  }

  function communeSection(f) {
    const entry = entryOf(f.layer);
    const p = f.properties;
    const incidents = state.manifest.layers.find((e) => e.kind === "incidents");
    const stats = incidents ? `<div class="gi-stats" id="gi-commune-stats">${G.esc(G.t("loading"))}</div>`
      : `<p class="gi-muted">${G.esc(G.t("sign_in_for_incidents"))}</p>`;
    return G.section(G.t("commune"), G.esc(p.name), G.fieldTable(entry, p, ["name"]) + stats, "gi-sec-commune");
  }

  async function loadCommuneStats(unit, seq) {
    const entry = state.manifest.layers.find((e) => e.kind === "incidents");
    const params = filterParams();
    const el = () => document.getElementById("gi-commune-stats");
    if (!entry || !el()) return;
    if (params === null) { el().textContent = "–"; return; }
    params.set("commune", unit.properties.code);
    if (state.era) params.set("as_of", state.era);
    const stats = await G.api(entry.stats_url + "?" + params.toString());
    if (seq !== state.detailSeq || !el()) return;
    el().innerHTML = G.statsHtml(entry, stats);
  }

  async function selectFeature(entry, feature, latlng) {
    state.selection = { kind: "feature", entry: entry.id, feature, latlng };
    const seq = ++state.detailSeq;
    if (entry.kind === "incidents") return showIncident(entry, feature.id, latlng, seq);
    const p = feature.properties || {};
    let kicker = G.pick(entry.title);
    let body = G.fieldTable(entry, p, entry.label_field ? [entry.label_field] : []);
    if (entry.kind === "cameras") {
      kicker = G.t("camera");
      // Health (the last heartbeat, Vietnam time) and the latest snapshot's thumbnail.
      const seen = p.last_seen ? `${G.fmtDateTime(p.last_seen)} (${G.t("camera_ago", { t: agoText(p.last_seen) })})`
        : G.t("camera_never_seen");
      const snap = p.snapshot_at && entry.snapshot_url
        ? `<figure class="gi-cam-snap"><img alt="${G.esc(G.t("camera_snapshot"))}" loading="lazy" ` +
          `src="${G.esc(entry.snapshot_url.replace("{code}", encodeURIComponent(p.code)))}?t=${encodeURIComponent(p.snapshot_at)}">` +
          `<figcaption class="gi-muted">${G.esc(G.t("camera_snapshot"))} · ${G.esc(G.fmtDateTime(p.snapshot_at))}</figcaption></figure>`
        : "";
      body = statusBadge(entry, p) +
        `<div class="gi-muted gi-cam-seen">${G.esc(G.t("camera_last_seen"))}: ${G.esc(seen)}</div>` + snap + body;
    }
    if (entry.kind === "sensors") {
      kicker = G.t("sensor");
      const pct = p.ratio == null ? "–" : Math.round(p.ratio * 100);
      const state_ = entry.legend.find((l) => l.value === p.state);
      // The reading against its threshold in words, as the legend says it, then the value.
      const reading = state_ ? `<div class="gi-badge" style="--c:${G.esc(state_.color)}">${G.esc(G.pick(state_.label))}</div> ` : "";
      body = reading + statusBadge(entry, p) +
        `<div class="gi-bignum"><b style="color:${G.esc(state_ ? state_.color : "#999")}">${G.fmtNumber(p.latest_value)}</b> ` +
        `${G.esc(p.unit || "")} <small>${G.esc(G.t("of_threshold", { p: pct }))}${p.stale ? " · " + G.esc(G.t("stale")) : ""}</small></div>` +
        `<div class="gi-muted">${G.esc(G.t("latest_value"))}: ${G.esc(G.fmtDateTime(p.observed_at))}</div>` +
        (p.datastream ? `<button type="button" class="btn btn-sm btn-outline-info" data-chart="${G.esc(p.datastream)}">` +
                        `${G.esc(G.t("chart_open"))}</button>` : "") + body;
      // A click on a station opens its chart (the time series of its own parameter).
      if (p.datastream && G.chart) G.chart.open(p.datastream).catch(error);
    }
    G.showDetails(G.section(kicker, G.esc(p[entry.label_field] || p.name || p.code || feature.id), body,
                            "gi-sec-feature gi-sec-" + entry.id));
    highlight(feature.fov ? { type: "Feature", geometry: feature.fov, properties: {} }
      : { type: "Feature", geometry: { type: "Point", coordinates: [latlng.lng, latlng.lat] }, properties: {} });
  }

  /** How long ago an instant was, in the page's language (minutes, hours, days). */
  function agoText(iso) {
    const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
    const vi = G.lang !== "en";
    if (s < 60) return `${Math.round(s)} ${vi ? "giây" : "s"}`;
    if (s < 3600) return `${Math.floor(s / 60)} ${vi ? "phút" : "min"}`;
    if (s < 86400) return `${Math.floor(s / 3600)} ${vi ? "giờ" : "h"} ${Math.floor((s % 3600) / 60)} ${vi ? "phút" : "min"}`;
    return `${Math.floor(s / 86400)} ${vi ? "ngày" : "d"} ${Math.floor((s % 86400) / 3600)} ${vi ? "giờ" : "h"}`;
  }

  /** The camera health panel (roles that may see cameras): cameras offline or degraded by
   * commune with the time since each was last seen, counts per commune; every minute. */
  let cameraHealthTimer = null;
  async function loadCameraHealth() {
    const el = document.getElementById("gi-cam-health");
    const entry = state.manifest && state.manifest.layers.find((e) => e.kind === "cameras");
    clearTimeout(cameraHealthTimer);
    if (!el) return;
    if (!entry || !entry.health_url) { el.hidden = true; el.innerHTML = ""; return; }
    cameraHealthTimer = setTimeout(() => loadCameraHealth().catch(error), 60000);
    const h = await G.api(entry.health_url);
    const field = entry.fields.find((f) => f.name === "status");
    const word = (v) => (field && field.values && field.values[v] ? G.pick(field.values[v]) : v);
    const t = h.totals;
    let html = `<h2 class="gi-h">${G.esc(G.t("camera_health"))}</h2>` +
      `<div class="gi-muted">${G.esc(G.t("camera_health_totals", { offline: t.offline, degraded: t.degraded, total: t.total }))}</div>`;
    if (!h.communes.length) html += `<p class="gi-muted">${G.esc(G.t("camera_health_all_online"))}</p>`;
    html += h.communes.map((c) => {
      const n = (k) => c.cameras.filter((x) => x.status === k).length;
      const rows = c.cameras.map((x) =>
        `<li><button type="button" class="gi-cam" data-lat="${x.lat}" data-lon="${x.lon}" data-camera-code="${G.esc(x.code)}">` +
        `<span class="gi-swatch" style="--c:${G.esc(G.categoryColor(entry, x.status))}"></span>` +
        `<b>${G.esc(x.code)}</b> ${G.esc(word(x.status))}` +
        `<span class="gi-cam-d">${G.esc(x.since ? G.t("camera_ago", { t: G.pick(x.since) }) : G.t("camera_never_seen"))}</span></button>` +
        `<div class="gi-muted">${G.esc(x.name)}${x.last_seen ? " · " + G.esc(x.last_seen_text) : ""}</div></li>`).join("");
      return `<details class="gi-cam-commune"><summary>${G.esc(c.name || G.t("no_commune"))} ` +
        `<span class="gi-cam-n">${n("offline")} ${G.esc(word("offline"))} · ${n("degraded")} ${G.esc(word("degraded"))}</span></summary>` +
        `<ol class="gi-cams">${rows}</ol></details>`;
    }).join("");
    el.innerHTML = html;
    el.hidden = false;
  }

  /** A device's operating status (a coded field named status) in words, as a badge. */
  function statusBadge(entry, p) {
    const field = entry.fields.find((f) => f.name === "status");
    if (!field || !field.values || !field.values[p.status]) return "";
    const color = entry.style.by === "status" ? G.categoryColor(entry, p.status) : "#475569";
    return `<div class="gi-badge gi-status-badge" style="--c:${G.esc(color)}">` +
      `${G.esc(G.pick(field.title))}: ${G.esc(G.pick(field.values[p.status]))}</div> `;
  }

  async function showIncident(entry, id, latlng, seq) {
    const item = await G.api(`${entry.item_url}/${encodeURIComponent(id)}`);
    if (seq !== state.detailSeq) return;
    const p = item.properties;
    const cat = entry.fields.find((f) => f.name === "category");
    const color = G.categoryColor(entry, p.category);
    const catLabel = cat && cat.values && cat.values[p.category] ? G.pick(cat.values[p.category]) : p.category;
    const camerasReadable = !!entryOf("cameras");
    const head = `<div class="gi-badge" style="--c:${G.esc(color)}">${G.esc(catLabel)}</div>`;
    G.showDetails(G.section(G.t("incident"), G.esc(p.title || "#" + id),
      head + G.fieldTable(entry, p, ["title", "category"]) +
      (camerasReadable ? `<h4 class="gi-label">${G.esc(G.t("cameras_covering"))}</h4><div id="gi-cameras">${G.esc(G.t("loading"))}</div>` : "") +
      `<h4 class="gi-label">${G.esc(G.t("console_timeline"))}</h4><div id="gi-incident-timeline">${G.esc(G.t("loading"))}</div>`,
      "gi-sec-incident"));
    highlight(item);
    // The incident's stored moves (time, actor, note), oldest first.
    G.api(`/api/incidents/${encodeURIComponent(id)}/timeline`).then((tl) => {
      const el = document.getElementById("gi-incident-timeline");
      if (seq === state.detailSeq && el) el.innerHTML = G.timelineHtml(tl.transitions);
    }).catch(error);
    if (!camerasReadable) return;
    const cams = await G.api(entry.cameras_url.replace("{id}", encodeURIComponent(id)));
    if (seq !== state.detailSeq) return;
    document.getElementById("gi-cameras").innerHTML = G.cameraList(cams.features);
    for (const f of cams.features) {
      if (f.fov) L.geoJSON(f.fov, { pane: "gi-highlight", interactive: false,
        style: { color: "#22d3ee", weight: 1.5, fillColor: "#22d3ee", fillOpacity: 0.18 } }).addTo(state.highlight);
      L.circleMarker([f.geometry.coordinates[1], f.geometry.coordinates[0]], { pane: "gi-highlight",
        radius: 5, color: "#0e7490", weight: 2, fillColor: "#22d3ee", fillOpacity: 1 }).addTo(state.highlight);
    }
  }

  function rerenderSelection() {
    const s = state.selection;
    if (!s) return;
    if (s.kind === "place") identifyAt(s.latlng, s.extra).catch(error);
    else {
      const entry = entryOf(s.entry);
      if (entry) selectFeature(entry, s.feature, s.latlng).catch(error);
      else { G.hideDetails(); highlight(null); state.selection = null; }
    }
  }

  // --- search ---------------------------------------------------------------------------------

  let searchTimer = null;
  let searchSeq = 0;
  let lastHits = [];
  let lastSearch = null; // the answer shown, re-rendered when the language changes
  let openKinds = new Set(); // groups showing all their hits
  const HITS_SHOWN = 5; // per group until "more" is clicked

  async function runSearch(q) {
    const box = document.getElementById("gi-results");
    if (q.trim().length < 2) { box.hidden = true; lastHits = []; lastSearch = null; return; }
    const seq = ++searchSeq;
    const body = await G.api("/api/search?q=" + encodeURIComponent(q));
    if (seq !== searchSeq) return;
    lastSearch = body;
    openKinds = new Set();
    renderResults();
    box.hidden = false;
  }

  /** The hits grouped by kind of thing (the server's groups, best match first), each group
   * under its name in the page's language; lastHits numbers the buttons across groups. */
  function renderResults() {
    const box = document.getElementById("gi-results");
    const groups = lastSearch ? lastSearch.groups.filter((g) => g.results.length) : [];
    lastHits = [];
    box.innerHTML = groups.length ? groups.map((g) => {
      const kind = G.esc(G.pick(g.title));
      const shown = openKinds.has(g.key) ? g.results : g.results.slice(0, HITS_SHOWN);
      const hits = shown.map((h) => {
        const i = lastHits.push(h) - 1;
        return `<button type="button" class="gi-hit" data-hit="${i}" role="option"><b>${G.esc(G.pick(h.title))}</b>` +
          `<small>${G.esc(G.pick(h.subtitle))}</small></button>`;
      }).join("");
      const rest = g.results.length - shown.length;
      const more = rest > 0 ? `<button type="button" class="gi-hit gi-hit-more" data-more="${G.esc(g.key)}">` +
        `${G.esc(G.t("more_results", { n: rest }))}</button>` : "";
      return `<div class="gi-hit-group" role="group" aria-label="${kind}" data-kind="${G.esc(g.key)}">` +
        `<div class="gi-hit-kind">${kind}<span class="gi-count">${g.results.length}</span></div>${hits}${more}</div>`;
    }).join("") : `<div class="gi-hit gi-muted">${G.esc(G.t("no_results"))}</div>`;
  }

  function chooseHit(hit) {
    document.getElementById("gi-results").hidden = true;
    const map = state.map;
    const center = L.latLng(hit.center[1], hit.center[0]);
    // Clear of the layer and detail panels where they sit beside the map (not on a phone).
    const pad = map.getSize().x > 900 ? { paddingTopLeft: [340, 70], paddingBottomRight: [380, 20] }
      : { padding: [20, 20] };
    const spread = hit.bbox && (hit.bbox[2] > hit.bbox[0] || hit.bbox[3] > hit.bbox[1]);
    const bounds = spread && [[hit.bbox[1], hit.bbox[0]], [hit.bbox[3], hit.bbox[2]]];
    if (hit.kind === "admin_unit") {
      const admin = entryOf(hit.layer);
      if (admin && admin.eras) {
        const previous = admin.eras.find((e) => e.as_of);
        setEra(hit.properties.current ? null : (previous ? previous.as_of : null));
      }
      map.fitBounds(bounds, { animate: false, ...pad });
    } else if (hit.kind === "parcel") {
      map.fitBounds(bounds, { animate: false, maxZoom: 18, ...pad });
      if (map.getZoom() < 16) map.setView(center, 16, { animate: false });
    } else if (bounds) { // a road: all of its stretch
      map.fitBounds(bounds, { animate: false, maxZoom: 17, ...pad });
    } else {
      map.setView(center, Math.max(map.getZoom(), 16), { animate: false });
    }
    let extra = null;
    if (hit.kind === "coordinate") {
      extra = { marker: true,
                html: G.section(G.t("location"), G.esc(G.pick(hit.title)), `<p class="gi-muted">${G.esc(G.pick(hit.subtitle))}</p>`) };
    } else if (hit.kind === "feature") {
      // Show the hit's layer if it was off, and the hit itself unless a click there reports it.
      const entry = entryOf(hit.layer);
      if (entry && !isOn(entry.id)) {
        state.toggled[entry.id] = true;
        showLayer(entry.id, true);
        renderPanels();
      }
      if (!entry || !entry.identify) {
        extra = { marker: true,
                  html: G.section(entry ? G.pick(entry.title) : "", G.esc(G.pick(hit.title)),
                                  `<p class="gi-muted">${G.esc(G.pick(hit.subtitle))}</p>`, "gi-sec-hit gi-sec-" + hit.layer) };
      }
    }
    identifyAt(center, extra).catch(error);
  }

  // --- eras, language, sign-in, UI wiring -----------------------------------------------------

  function setEra(asOf) {
    if (state.era === (asOf || null)) return;
    state.era = asOf || null;
    const admin = state.handles[gazetteerId()];
    if (admin) admin.refresh("style");
    document.querySelectorAll("[data-era]").forEach((b) => {
      b.classList.toggle("active", (b.dataset.era || null) === state.era);
    });
    syncLabels();
    if (state.selection && state.selection.kind === "place") rerenderSelection();
  }

  function updateLangButton() {
    document.getElementById("gi-lang").textContent = G.lang === "vi" ? "EN" : "VI";
    document.getElementById("gi-lang").title = G.lang === "vi" ? "English" : "Tiếng Việt";
    document.getElementById("gi-report-link").href = G.lang === "en" ? "/report?lang=en" : "/report";
  }

  function setLang(lang) {
    G.lang = lang;
    const url = new URL(location.href);
    url.searchParams.set("lang", lang);
    history.replaceState(null, "", url);
    G.translatePage();
    updateLangButton();
    tickClock();
    showZoom();
    G.renderStatus();
    localizeControls();
    renderUser();
    renderPanels();
    loadCameraHealth().catch(error); // its words come with the data: asked again in the new language
    if (G.consoleSync) G.consoleSync();
    if (G.liveSync) G.liveSync();
    loadFilterStats();
    if (!(G.consoleState && G.consoleState.current)) rerenderSelection();
    if (lastSearch) renderResults();
    relabel();
  }

  function tickClock() {
    const now = new Date();
    document.getElementById("gi-clock").textContent = G.fmtClock(now);
  }

  function bindUi() {
    document.getElementById("gi-lang").addEventListener("click", () => setLang(G.lang === "vi" ? "en" : "vi"));
    // On a phone the layer panel opens over the map from its button (on wider screens it stays).
    document.getElementById("gi-panel-toggle").addEventListener("click", (e) => {
      const closed = document.getElementById("gi-panel").classList.toggle("gi-closed");
      e.currentTarget.setAttribute("aria-expanded", String(!closed));
    });
    document.getElementById("gi-details-close").addEventListener("click", () => {
      state.selection = null;
      G.hideDetails();
      highlight(null);
    });
    // layer panel (delegated: it is re-rendered on language and sign-in changes)
    const layers = document.getElementById("gi-layers");
    layers.addEventListener("change", (e) => {
      const id = e.target.dataset.layerToggle;
      if (!id) return;
      state.toggled[id] = e.target.checked;
      showLayer(id, e.target.checked);
    });
    layers.addEventListener("click", (e) => {
      const b = e.target.closest("[data-era]");
      if (b) setEra(b.dataset.era || null);
    });
    // filters
    const filters = document.getElementById("gi-filters");
    filters.addEventListener("click", (e) => {
      const chip = e.target.closest("[data-filter]");
      const all = e.target.closest("[data-filter-all]");
      const none = e.target.closest("[data-filter-none]");
      const incidents = state.manifest.layers.find((x) => x.kind === "incidents");
      if (chip) {
        const set = state.filters[chip.dataset.filter];
        if (set.has(chip.dataset.value)) set.delete(chip.dataset.value); else set.add(chip.dataset.value);
        chip.classList.toggle("on");
        chip.setAttribute("aria-pressed", String(set.has(chip.dataset.value)));
      } else if (all || none) {
        const group = (all || none).dataset[all ? "filterAll" : "filterNone"];
        state.filters[group] = new Set(all ? incidents.filters[group].map((v) => v.value) : []);
        G.renderFilters(incidents, state.filters);
      } else {
        return;
      }
      filtersChanged();
    });
    filters.addEventListener("change", (e) => {
      if (e.target.id === "gi-window") {
        const custom = e.target.value === "custom";
        document.getElementById("gi-custom").hidden = !custom;
        setWindow(custom ? null : Number(e.target.value));
      } else if (e.target.id === "gi-start" || e.target.id === "gi-end") {
        // What the user typed is Vietnam time, whatever the browser's own time zone.
        const start = G.fmt.vnInputToDate(document.getElementById("gi-start").value);
        const end = G.fmt.vnInputToDate(document.getElementById("gi-end").value);
        if (!windowProblems(start, end)) return;
        state.filters.start = start;
        state.filters.end = end;
      } else {
        return;
      }
      filtersChanged();
    });
    // search
    const q = document.getElementById("gi-q");
    q.addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => runSearch(q.value).catch(error), 250);
    });
    document.getElementById("gi-search").addEventListener("submit", async (e) => {
      e.preventDefault();
      clearTimeout(searchTimer);
      await runSearch(q.value).catch(error);
      if (lastHits.length) chooseHit(lastHits[0]);
    });
    document.getElementById("gi-results").addEventListener("click", (e) => {
      const more = e.target.closest("[data-more]");
      if (more) {
        openKinds.add(more.dataset.more);
        renderResults();
        return;
      }
      const b = e.target.closest("[data-hit]");
      if (b) chooseHit(lastHits[Number(b.dataset.hit)]);
    });
    // the chart button of a station's details
    document.getElementById("gi-details-body").addEventListener("click", (e) => {
      const chartButton = e.target.closest("[data-chart]");
      if (chartButton && G.chart) G.chart.open(Number(chartButton.dataset.chart)).catch(error);
    });
    // cameras in the incident panel and in the camera health panel
    for (const id of ["gi-details-body", "gi-cam-health"]) {
      document.getElementById(id).addEventListener("click", (e) => {
        const b = e.target.closest(".gi-cam");
        if (b) state.map.setView([Number(b.dataset.lat), Number(b.dataset.lon)], Math.max(state.map.getZoom(), 17));
      });
    }
    // sign-in
    const modal = document.getElementById("gi-signin");
    document.getElementById("gi-signin-open").addEventListener("click", () => {
      modal.hidden = false;
      document.getElementById("gi-signin-error").hidden = true;
      document.getElementById("gi-username").focus();
    });
    document.getElementById("gi-signin-cancel").addEventListener("click", () => { modal.hidden = true; });
    document.getElementById("gi-signin-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const err = document.getElementById("gi-signin-error");
      try {
        await G.signIn(document.getElementById("gi-username").value, document.getElementById("gi-password").value);
        document.getElementById("gi-password").value = "";
        modal.hidden = true;
        await loadManifest();
      } catch (ex) {
        err.textContent = G.errorText(ex);
        err.hidden = false;
      }
    });
    document.getElementById("gi-signout").addEventListener("click", async () => {
      await G.signOut();
      await loadManifest().catch(error);
    });
  }

  /** The custom window's fields in error, all of them at once, each with its reason in the
   * page's language (marked on the field, listed under them); true when there is none. */
  function windowProblems(start, end) {
    const problems = [];
    if (Number.isNaN(start.getTime())) problems.push(["gi-start", G.t("from"), G.t("window_date_needed")]);
    if (Number.isNaN(end.getTime())) problems.push(["gi-end", G.t("to"), G.t("window_date_needed")]);
    if (!problems.length && start >= end) problems.push(["gi-end", G.t("to"), G.t("window_order")]);
    const list = document.getElementById("gi-custom-error");
    for (const id of ["gi-start", "gi-end"]) {
      const bad = problems.some((p) => p[0] === id);
      document.getElementById(id).classList.toggle("is-invalid", bad);
      document.getElementById(id).setAttribute("aria-invalid", String(bad));
    }
    if (list) {
      list.innerHTML = problems.map(([id, label, why]) =>
        `<li data-field="${id}">${G.esc(label)}: ${G.esc(why)}</li>`).join("");
      list.hidden = !problems.length;
    }
    return !problems.length;
  }

  G.error = error;
  function error(e) {
    if (!e || e.name === "AbortError") return;
    // An error message in the status line, in the page's language (G.errorText: never the
    // browser's own English; session.js keeps it until the next loads), and on the console as
    // a warning with its details (not an error: a dropped network connection is a condition
    // to report, not a bug in the page).
    G.showError(e);
    console.warn("GeoIOC:", e);
  }
})(window.GeoIOC = window.GeoIOC || {});
