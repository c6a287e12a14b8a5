/* GeoIOC command map: Leaflet layers built from manifest entries (/api/map/layers).
 *
 * One factory per kind of entry:
 *   tiles     - OGC API vector tiles (Leaflet.VectorGrid), styled from the catalogue's style
 *   features  - OGC API items for the layer's extent (a few hundred points)
 *   cameras   - /api/map/cameras: points with their field-of-view polygons
 *   sensors   - /api/map/sensors: stations coloured by latest value against threshold
 *   incidents - /api/incidents/points: clustered points, or server-side clusters when there
 *               are too many to ship; filtered by the shared incident filters
 *   heatmap   - /api/incidents/density: kernel density in incidents/km² on a fixed scale (an
 *               image of the province and its legend from the server), same filters
 *   choropleth- /api/incidents/rates or /change: communes coloured by the server's classes
 * Every handle answers drawn() (how many features it currently draws: used by the tests and
 * the status line), colors() (the colours it draws features in: the legend must list each),
 * symbols() (the screen boxes of the point symbols it shows: place names keep clear of them),
 * and refresh(reason) for "filters", "view" or "style" changes. Point layers are clustered:
 * symbols closer than a few pixels merge into a cluster with their count (co-located stations
 * fan out when their cluster is clicked at the last zoom).
 *
 * Colours, line widths and dashes come from the manifest (the catalogue's styles, the legend's
 * entries), never from here: what is drawn is what the legend says. */
(function (G) {
  "use strict";

  const FOV_MIN_ZOOM = 13;
  /** How close (pixels) point symbols merge into a cluster, by zoom: wide when the province is
   * in view, only overlapping symbols from zoom 17 on. */
  const clusterRadius = (z) => (z >= 17 ? 14 : z >= 15 ? 22 : z >= 13 ? 28 : 32);

  function bboxBounds(b, pad) {
    const p = pad || 0;
    return L.latLngBounds([b[1] - p, b[0] - p], [b[3] + p, b[2] + p]);
  }

  function bboxParam(bounds) {
    const r = (v) => v.toFixed(5);
    return [r(bounds.getWest()), r(bounds.getSouth()), r(bounds.getEast()), r(bounds.getNorth())].join(",");
  }
  G.bboxParam = bboxParam;

  /** Padded view, clipped to the world: what bbox-driven layers ask for. */
  function viewBounds(map, pad) {
    const b = map.getBounds().pad(pad == null ? 0.25 : pad);
    return L.latLngBounds([Math.max(-85, b.getSouth()), Math.max(-180, b.getWest())],
                          [Math.min(85, b.getNorth()), Math.min(180, b.getEast())]);
  }

  function categoryColor(entry, value) {
    const s = entry.style || {};
    return (s.palette && s.palette[value]) || s.color || "#3388ff";
  }
  G.categoryColor = categoryColor;

  // --- vector tiles ---------------------------------------------------------------------------

  /** Width, dash and first zoom of a feature whose style varies by a coded field (roads by
   * class, administrative units by level); null when not drawn at ZOOM. */
  function byWidth(s, props, zoom) {
    const value = s.width_by ? props[s.width_by] : null;
    if (value == null) return { w: s.weight, dash: null };
    if (zoom < ((s.min_zooms || {})[value] || 0)) return null;
    return { w: (s.widths || {})[value] || s.weight, dash: (s.dashes || {})[value] || null };
  }

  function tileStyle(entry, ctx) {
    const s = entry.style;
    const line = entry.geometry.indexOf("LineString") >= 0;
    return function (props, zoom) {
      if (entry.gazetteer) return adminStyle(entry, ctx, props, zoom);
      let stroke = s.color;
      let fill = s.fill_color || s.color;
      if (s.by) {
        const value = String(props[s.by] == null ? "" : props[s.by]).split(",")[0];
        const c = s.palette[value];
        if (c) { if (line) stroke = c; else fill = c; }
      }
      if (line) {
        const bw = byWidth(s, props, zoom);
        if (!bw) return [];
        let w = bw.w;
        if (s.width_by && zoom >= 15) w *= 1.6;
        // A light casing under each line keeps it readable over any land-use colour.
        return [{ color: "#ffffff", weight: w + 2, opacity: 0.85, lineCap: "round", lineJoin: "round" },
                { color: stroke, weight: w, opacity: 0.95, lineCap: "round", lineJoin: "round" }];
      }
      return { color: s.color, weight: s.weight, opacity: zoom >= 13 ? 0.8 : 0.35,
               fill: true, fillColor: fill, fillOpacity: s.fill_opacity };
    };
  }

  /** Administrative units of the selected era only (tiles carry valid_from/valid_to), in the
   * era's colour; the units before the reform all dashed. */
  function adminStyle(entry, ctx, p, zoom) {
    const asOf = ctx.era();
    const from = p.valid_from || "";
    const to = p.valid_to || "";
    const valid = asOf ? (from <= asOf && (!to || to > asOf)) : !to;
    if (!valid) return [];
    const s = entry.style;
    const bw = byWidth(s, p, zoom);
    if (!bw) return [];
    const era = (entry.eras || []).find((e) => (e.as_of || null) === (asOf || null));
    const previous = (entry.legend_more || []).find((l) => l.value === "previous");
    return {
      color: era && era.color ? era.color : s.color,
      weight: bw.w * (zoom >= 14 ? 1.4 : 1),
      opacity: 0.9,
      dashArray: asOf && previous ? previous.dash : bw.dash,
      fill: true, fillColor: s.fill_color || "#ffffff", fillOpacity: s.fill_opacity,
    };
  }

  /** Colours a tile layer drew its loaded features in (stroke for lines, fill for areas). */
  function tileColors(entry, ctx, layer) {
    const style = tileStyle(entry, ctx);
    const zoom = Math.round(ctx.map.getZoom());
    const line = entry.geometry.indexOf("LineString") >= 0;
    const out = new Set();
    for (const key of Object.keys(layer._vectorTiles || {})) {
      for (const f of Object.values(layer._vectorTiles[key]._features || {})) {
        const props = (f.feature && f.feature.properties) || {};
        let st = style(props, zoom);
        if (Array.isArray(st)) st = st[st.length - 1];
        if (st) out.add(line || entry.gazetteer ? st.color : st.fillColor);
      }
    }
    return out;
  }

  function tilesHandle(entry, ctx) {
    const pane = ctx.paneFor(entry);
    const layer = L.vectorGrid.protobuf(entry.source, {
      pane: pane,
      rendererFactory: L.canvas.tile,
      interactive: false,
      vectorTileLayerStyles: { [entry.id]: tileStyle(entry, ctx) },
      getFeatureId: (f) => f.id,
      minZoom: entry.min_zoom,
      maxZoom: 22,
      bounds: bboxBounds(entry.bbox, 0.01),
      // same-origin: a map signed in only through the session cookie (another tab) sends it.
      fetchOptions: { headers: G.authHeaders, credentials: "same-origin" },
      updateWhenZooming: false,
      keepBuffer: 1,
    });
    // Busy while any tile it asked for is neither drawn nor dropped. (GridLayer's own "load"
    // event never comes when the last pending tile is pruned by a zoom or pan.)
    const h = { entry, layer, loading: false };
    const pending = new Set();
    const key = (e) => `${e.coords.z}/${e.coords.x}/${e.coords.y}`;
    function sync() {
      const now = pending.size > 0;
      if (now !== h.loading) { h.loading = now; G.setBusy(now ? +1 : -1); }
    }
    layer.on("tileloadstart", (e) => { pending.add(key(e)); sync(); });
    layer.on("tileload tileunload", (e) => { pending.delete(key(e)); sync(); });
    layer.on("remove", () => { pending.clear(); sync(); });
    h.drawn = function () {
      if (!ctx.map.hasLayer(layer)) return 0;
      let n = 0;
      for (const key of Object.keys(layer._vectorTiles || {})) {
        n += Object.keys(layer._vectorTiles[key]._features || {}).length;
      }
      return n;
    };
    h.colors = () => (ctx.map.hasLayer(layer) ? tileColors(entry, ctx, layer) : new Set());
    h.symbols = () => [];
    // Re-add rather than redraw(): GridLayer.redraw() takes a fractional map zoom (zoomSnap 0.5)
    // as the tile zoom and would ask for tiles such as z=11.5.
    h.refresh = function (reason) {
      if (reason === "style" && ctx.map.hasLayer(layer)) { ctx.map.removeLayer(layer); layer.addTo(ctx.map); }
    };
    /** Live restyle of features by id (road congestion, live.js): PATCHES maps a feature id to
     * the properties that changed (null: back to what the tile says). The feature is drawn by
     * the catalogue's own style with those properties (its palette, widths and zooms), and
     * VectorGrid keeps the override for the tiles loaded later too. */
    h.restyle = function (patches) {
      const base = tileStyle(entry, ctx);
      for (const [id, patch] of Object.entries(patches)) {
        if (patch == null) { layer.resetFeatureStyle(id); continue; }
        layer.setFeatureStyle(id, (props, zoom) => base(Object.assign({}, props, patch), zoom));
      }
    };
    return h;
  }

  // --- GeoJSON point layers -------------------------------------------------------------------

  /** What shows MARKER on MAP: itself, the cluster it is in (markercluster's own
   * getVisibleParent looks for an icon, which canvas circle markers do not have), or null. */
  function visibleParent(map, marker) {
    let v = marker;
    while (v && !map.hasLayer(v)) v = v.__parent;
    return v || null;
  }

  /** The screen box of what shows MARKER (itself, or the cluster it is in), or null. */
  function visibleBox(map, group, marker, seen) {
    const shown = group ? visibleParent(map, marker) : marker;
    if (!shown || seen.has(shown)) return null;
    seen.add(shown);
    const p = map.latLngToContainerPoint(shown.getLatLng());
    let r = 6;
    if (shown.options.icon && shown.options.icon.options.iconSize) r = shown.options.icon.options.iconSize[0] / 2;
    else if (shown.options.radius) r = shown.options.radius + (shown.options.weight || 0) / 2;
    return { x1: p.x - r, y1: p.y - r, x2: p.x + r, y2: p.y + r, cluster: shown instanceof L.MarkerCluster,
             layer: null };
  }

  /** Boxes of the symbols GROUP shows in the view (each cluster once). */
  function symbolBoxes(entry, ctx, group, markers) {
    if (!ctx.map.hasLayer(group)) return [];
    const view = ctx.map.getBounds().pad(0.05);
    const seen = new Set();
    const out = [];
    for (const m of markers) {
      if (!view.contains(m.getLatLng())) continue;
      const b = visibleBox(ctx.map, group, m, seen);
      if (b) { b.layer = entry.id; out.push(b); }
    }
    return out;
  }

  /** Panes of a point layer: its clusters stacked in the manifest's order, its symbols on one
   * canvas shared by every point layer. One canvas, because a canvas takes every click over the
   * whole map: with a canvas per layer, the top layer's canvas hid the symbols of the layers
   * under it from clicks (a station under a camera layer could not be identified). */
  function pointPanes(entry, ctx) {
    const order = ctx.orderOf(entry);
    const symbols = "gi-points";
    const clusters = "gi-pc-" + entry.id;
    if (!ctx.map.getPane(symbols)) ctx.map.createPane(symbols).style.zIndex = "410";
    if (!ctx.map.getPane(clusters)) ctx.map.createPane(clusters).style.zIndex = String(610 + order);
    if (!ctx.map._giPointRenderer) ctx.map._giPointRenderer = L.canvas({ pane: symbols });
    return { symbols, clusters, renderer: ctx.map._giPointRenderer };
  }

  function clusterGroup(entry, colorOf, panes) {
    return L.markerClusterGroup({
      clusterPane: panes.clusters,
      maxClusterRadius: clusterRadius,
      showCoverageOnHover: false,
      spiderfyOnMaxZoom: true,
      animate: false,
      // A few hundred points: clustered at once, the same way every time (chunked loading
      // clusters in time slices, and the clusters then depend on the machine's speed).
      chunkedLoading: false,
      iconCreateFunction: (c) => {
        const counts = {};
        for (const m of c.getAllChildMarkers()) {
          const k = colorOf(m);
          counts[k] = (counts[k] || 0) + 1;
        }
        const color = Object.keys(counts).sort((a, b) => counts[b] - counts[a])[0];
        const n = c.getChildCount();
        const size = n < 10 ? 24 : n < 100 ? 28 : 34;
        return L.divIcon({
          className: "gi-pcluster",
          html: `<div style="width:${size}px;height:${size}px;background:${color}"><span>${n}</span></div>`,
          iconSize: [size, size],
        });
      },
    });
  }

  function pointsHandle(entry, ctx, url, makeMarker) {
    const panes = pointPanes(entry, ctx);
    const group = clusterGroup(entry, (m) => m.options.fillColor || entry.style.color, panes);
    const h = { entry, layer: group, loaded: false, loading: null, data: null, markers: [] };
    h.load = async function () {
      const fc = await G.api(url);
      h.data = fc;
      group.clearLayers();
      h.markers = [];
      for (const f of fc.features || []) {
        if (!f.geometry) continue;
        const ll = L.latLng(f.geometry.coordinates[1], f.geometry.coordinates[0]);
        const m = makeMarker(f, ll);
        m.options.renderer = panes.renderer;
        m.options.pane = panes.symbols;
        m.feature = f;
        m.on("click", (e) => { L.DomEvent.stop(e); ctx.select(entry, f, ll); });
        h.markers.push(m);
      }
      group.addLayers(h.markers);
      h.loaded = true;
    };
    h.drawn = () => (ctx.map.hasLayer(group) ? h.markers.length : 0);
    h.colors = () => new Set(ctx.map.hasLayer(group) ? h.markers.map((m) => m.options.fillColor) : []);
    h.symbols = () => symbolBoxes(entry, ctx, group, h.markers);
    /** Names to write beside the symbols shown singly (not those inside a cluster). */
    h.labels = function () {
      const field = entry.label_field;
      if (!entry.label_priority || !field || !ctx.map.hasLayer(group)) return [];
      const order = (entry.legend || []).map((l) => l.value);
      const by = entry.style && entry.style.by;
      const view = ctx.map.getBounds();
      const out = [];
      for (const m of h.markers) {
        if (!view.contains(m.getLatLng()) || !ctx.map.hasLayer(m)) continue;
        const p = m.feature.properties || {};
        if (!p[field]) continue;
        const rank = by ? order.indexOf(p[by]) : 0;
        out.push({ text: String(p[field]), latlng: m.getLatLng(), r: (m.options.radius || 5) + 1,
                   priority: entry.label_priority - (rank < 0 ? order.length : rank) / 100,
                   layer: entry.id, id: m.feature.id });
      }
      return out;
    };
    h.refresh = function (reason) {
      if (reason === "show" && !h.loaded && !h.loading) {
        h.loading = h.load().then(ctx.onLoaded).catch(ctx.error).finally(() => { h.loading = null; });
      }
    };
    return h;
  }

  function featuresHandle(entry, ctx) {
    const url = entry.source + "?limit=1000&bbox=" + entry.bbox.join(",");
    return pointsHandle(entry, ctx, url, (f, ll) => {
      const s = entry.style;
      const color = s.by ? categoryColor(entry, f.properties[s.by]) : s.color;
      return L.circleMarker(ll, { radius: s.radius, color: "#ffffff", weight: 1.5,
                                  fillColor: color, fillOpacity: 0.95, bubblingMouseEvents: false })
        .bindTooltip(() => G.esc(String(f.properties[entry.label_field] || f.id)),
                     { direction: "top", offset: [0, -6] });
    });
  }

  function sensorsHandle(entry, ctx) {
    const states = {};
    for (const l of entry.legend) states[l.value] = l;
    const stale = (entry.legend_more || []).find((l) => l.value === "stale") || {};
    const lookOf = (p) => {
      const look = states[p.state] || states.none;
      return { color: look.outline, dashArray: p.stale ? stale.dash : null, fillColor: look.color,
               fillOpacity: p.stale ? stale.opacity : 0.95 };
    };
    const h = pointsHandle(entry, ctx, entry.source + "?bbox=" + entry.bbox.join(","), (f, ll) => {
      const p = f.properties;
      const m = L.circleMarker(ll, Object.assign({ radius: 6, weight: 2, bubblingMouseEvents: false },
                                                 lookOf(p)));
      m.bindTooltip(() => {
        const pct = p.ratio == null ? "–" : Math.round(p.ratio * 100);
        return `${p.name || p.code}<br>${p.parameter || ""}: ${G.fmtNumber(p.latest_value)} ${p.unit || ""}` +
               ` (${G.t("of_threshold", { p: pct })})`;
      }, { direction: "top", offset: [0, -6] });
      return m;
    });
    /** A live `sensor` event (live.js): the station's own reading moved; recolour its marker
     * (and its cluster) in place. Events of a station's other datastreams change nothing here. */
    h.live = function (ev) {
      if (!ev.main) return false;
      const m = h.markers.find((x) => x.feature.id === ev.station);
      if (!m) return false;
      const p = m.feature.properties;
      p.datastream = ev.datastream;
      p.latest_value = ev.value;
      p.observed_at = ev.time;
      p.state = ev.state || "none";
      p.stale = !!ev.stale;
      p.ratio = ev.value != null && p.threshold ? Math.round((ev.value / p.threshold) * 1000) / 1000 : null;
      m.setStyle(lookOf(p));
      if (h.layer.refreshClusters) h.layer.refreshClusters(m);
      return true;
    };
    return h;
  }

  function camerasHandle(entry, ctx) {
    const fov = L.featureGroup();
    // SVG, not the canvas: overlapping translucent fields of view come out the same at every
    // redraw (a canvas repaints the part of the view that changed, over what was there).
    const renderer = L.svg({ pane: "gi-fov" });
    const h = pointsHandle(entry, ctx, entry.source + "?bbox=" + entry.bbox.join(","), (f, ll) => {
      const color = categoryColor(entry, f.properties.status);
      if (f.fov) {
        fov.addLayer(L.geoJSON(f.fov, { pane: "gi-fov", renderer, interactive: false,
          style: { color: color, weight: 0.8, opacity: 0.7, fillColor: color, fillOpacity: 0.12 } }));
      }
      return L.circleMarker(ll, { radius: 4.5, color: "#0f172a", weight: 1.2, fillColor: color,
                                  fillOpacity: 1, bubblingMouseEvents: false })
        .bindTooltip(() => `${f.properties.code || ""} ${f.properties.name || ""}`,
                     { direction: "top", offset: [0, -5] });
    });
    const load = h.load;
    h.load = async function () { fov.clearLayers(); await load(); syncFov(); };
    function syncFov() {
      const want = ctx.map.hasLayer(h.layer) && ctx.map.getZoom() >= FOV_MIN_ZOOM;
      if (want && !ctx.map.hasLayer(fov)) fov.addTo(ctx.map);
      if (!want && ctx.map.hasLayer(fov)) ctx.map.removeLayer(fov);
    }
    const refresh = h.refresh;
    h.refresh = function (reason) { refresh(reason); syncFov(); };
    h.layer.on("remove", syncFov);
    h.fovLayer = fov;
    /** A live `camera` event: the camera's health changed; its symbol takes the colour. */
    h.live = function (ev, color) {
      const m = h.markers.find((x) => x.feature.id === ev.id);
      if (!m) return false;
      m.feature.properties.status = ev.status;
      m.feature.properties.last_seen = ev.last_seen;
      m.setStyle({ fillColor: color || categoryColor(entry, ev.status) });
      if (h.layer.refreshClusters) h.layer.refreshClusters(m);
      return true;
    };
    return h;
  }

  // --- incidents: clustered points and the heatmap --------------------------------------------

  /** Severity -> ring colour, from the legend (the manifest's severity entries). */
  function severityRings(entry) {
    const out = {};
    for (const l of entry.legend_more || []) if (l.symbol === "ring") out[l.value] = l.color;
    return out;
  }

  function incidentIcon(entry, id, category, severity) {
    const size = 8 + 2 * severity;
    return L.divIcon({
      className: "gi-incident gi-sev" + severity,
      html: `<span data-incident="${id}" style="background:${categoryColor(entry, category)};border-color:${severityRings(entry)[severity]}"></span>`,
      iconSize: [size, size],
    });
  }

  function clusterIcon(entry, count, severity, color) {
    const size = count < 10 ? 30 : count < 100 ? 36 : count < 1000 ? 44 : 52;
    return L.divIcon({
      className: "gi-cluster",
      html: `<div style="width:${size}px;height:${size}px;border-color:${severityRings(entry)[severity] || "#64748b"};` +
            `background:${color}"><span>${count >= 10000 ? Math.round(count / 1000) + "k" : count}</span></div>`,
      iconSize: [size, size],
    });
  }

  function incidentsHandle(entry, ctx) {
    const cluster = L.markerClusterGroup({
      chunkedLoading: true,
      showCoverageOnHover: false,
      maxClusterRadius: (z) => (z >= 17 ? 14 : z >= 15 ? 28 : 55),
      spiderfyOnMaxZoom: true,
      animate: false,
      iconCreateFunction: (c) => {
        const markers = c.getAllChildMarkers();
        let sev = 1;
        const counts = {};
        for (const m of markers) {
          sev = Math.max(sev, m.options.severity);
          counts[m.options.category] = (counts[m.options.category] || 0) + 1;
        }
        const top = Object.keys(counts).sort((a, b) => counts[b] - counts[a])[0];
        return clusterIcon(entry, c.getChildCount(), sev, categoryColor(entry, top));
      },
    });
    const serverClusters = L.featureGroup();
    const group = L.layerGroup([cluster, serverClusters]);
    const h = { entry, layer: group, mode: null, total: 0, fetched: null, seq: 0 };

    h.load = async function () {
      const params = ctx.filterParams();
      if (params === null) { clear(); h.total = 0; ctx.onIncidents(h); return; }
      const bounds = viewBounds(ctx.map);
      const z = Math.round(ctx.map.getZoom());
      const seq = ++h.seq;
      params.set("bbox", bboxParam(bounds));
      params.set("z", String(z));
      const body = await G.api(entry.source + "?" + params.toString());
      if (seq !== h.seq) return; // a newer request is on its way
      h.fetched = { bounds, z, mode: body.mode };
      h.mode = body.mode;
      h.total = body.total;
      clear();
      if (body.mode === "points") {
        const markers = body.points.map(([id, lon, lat, category, severity, status]) =>
          L.marker([lat, lon], { icon: incidentIcon(entry, id, category, severity), id, category,
                                 severity, status, keyboard: false })
            .on("click", (e) => { L.DomEvent.stop(e); ctx.select(entry, { id }, e.latlng); }));
        cluster.addLayers(markers);
      } else {
        for (const [lon, lat, count, category, severity] of body.clusters) {
          L.marker([lat, lon], { icon: clusterIcon(entry, count, severity, categoryColor(entry, category)),
                                 keyboard: false })
            .on("click", () => ctx.map.setView([lat, lon], Math.min(ctx.map.getZoom() + 2, 18)))
            .addTo(serverClusters);
        }
      }
      ctx.onIncidents(h);
    };

    function clear() { cluster.clearLayers(); serverClusters.clearLayers(); }

    h.drawn = function () {
      if (!ctx.map.hasLayer(group)) return 0;
      return h.mode === "points" ? cluster.getLayers().length : serverClusters.getLayers().length;
    };
    h.colors = function () {
      if (!ctx.map.hasLayer(group)) return new Set();
      const layers = h.mode === "points" ? cluster.getLayers() : [];
      return new Set(layers.map((m) => categoryColor(entry, m.options.category)));
    };
    h.symbols = function () {
      if (!ctx.map.hasLayer(group)) return [];
      if (h.mode !== "points") {
        return serverClusters.getLayers().map((m) => visibleBox(ctx.map, null, m, new Set()))
          .map((b) => Object.assign(b, { layer: entry.id }));
      }
      return symbolBoxes(entry, ctx, cluster, cluster.getLayers());
    };
    h.refresh = function (reason) {
      if (!ctx.map.hasLayer(group)) return;
      const f = h.fetched;
      const view = ctx.map.getBounds();
      const stale = !f || reason === "filters" || reason === "show" || !f.bounds.contains(view) ||
        (f.mode === "clusters" && Math.round(ctx.map.getZoom()) !== f.z);
      if (stale) h.load().catch(ctx.error);
    };
    return h;
  }

  // --- honest maps: kernel density on a fixed scale, choropleths with their legends -------------

  /** A legend on the map for a layer whose classes come with its data: a title, a unit and one
   * row per colour with its bound (density: "≥ lower bound"; rates: "≤ upper bound"). */
  function mapLegend(id) {
    const control = L.control({ position: "bottomleft" });
    control.onAdd = () => {
      const div = L.DomUtil.create("div", "gi-map-legend");
      div.dataset.legendFor = id;
      L.DomEvent.disableClickPropagation(div);
      return div;
    };
    return control;
  }

  function legendRows(title, unit, rows) {
    const lang = G.lang === "en" ? "en" : "vi";
    return `<div class="gi-map-legend-title">${G.esc(title)}</div>` +
      `<div class="gi-map-legend-unit">${G.esc(unit[lang] || unit.vi)}</div><ul>` +
      rows.map(([color, label]) => `<li><span class="gi-swatch" style="background:${G.esc(color)}"></span>` +
        `<span class="gi-map-legend-value">${G.esc(label)}</span></li>`).join("") + "</ul>";
  }

  /** The server's note when small counts are hidden from this caller (public aggregates: a
   * cell or commune under 3 incidents), Vietnamese first; nothing for exact counts. */
  function suppressionNote(body) {
    if (!body || !body.suppressed || !body.suppression_note) return "";
    const note = body.suppression_note[G.lang === "en" ? "en" : "vi"] || body.suppression_note.vi;
    return `<div class="gi-map-legend-note gi-suppressed-note">${G.esc(note)}</div>`;
  }

  const fmtBreak = (v) => G.fmtNumber(v, v >= 100 ? 0 : v >= 10 ? 1 : 2);

  /** Kernel density of the incidents (/api/incidents/density): one image of the province in
   * incidents per km², coloured on the server's fixed scale; fetched once per filter change,
   * so panning and zooming change neither the picture nor its legend. */
  function densityHandle(entry, ctx) {
    const group = L.layerGroup();
    const legend = mapLegend(entry.id);
    let overlay = null;
    const h = { entry, layer: group, total: 0, fetched: null, seq: 0, lastUrl: null, legend: null };
    group.on("add", () => { legend.addTo(ctx.map); renderLegend(); });
    group.on("remove", () => legend.remove());

    function renderLegend() {
      const div = legend.getContainer();
      if (!div || !h.legend) return;
      const l = h.legend;
      const rows = l.colors.map((c, i) => [c, "≥ " + fmtBreak(l.breaks[i])]).reverse();
      div.innerHTML = legendRows(G.t("density_legend"), l.unit, rows) +
        `<div class="gi-map-legend-note">${G.esc(G.t(l.scale === "fixed" ? "density_fixed" : "density_view"))}</div>` +
        suppressionNote(h.body);
    }

    h.load = async function () {
      const params = ctx.filterParams();
      const seq = ++h.seq;
      if (params === null) {
        if (overlay) group.removeLayer(overlay);
        overlay = null; h.total = 0; ctx.onHeatmap(h); return;
      }
      params.set("cell", String(entry.cell_m || 100));
      params.set("bandwidth", String(entry.bandwidth_m || 500));
      const url = entry.source + "?" + params.toString();
      h.lastUrl = url;
      const body = await G.api(url);
      if (seq !== h.seq) return;
      const [w, s, e, n] = body.image.bounds;
      if (overlay) group.removeLayer(overlay);
      overlay = L.imageOverlay(body.image.url, [[s, w], [n, e]], { interactive: false, className: "gi-density" });
      group.addLayer(overlay);
      h.fetched = true;
      h.total = body.total;
      h.legend = body.legend;
      h.body = body;
      renderLegend();
      ctx.onHeatmap(h);
    };
    h.drawn = () => (ctx.map.hasLayer(group) && overlay ? h.total : 0);
    h.colors = () => new Set(ctx.map.hasLayer(group) && overlay && h.total ? h.legend.colors : []);
    h.symbols = () => [];
    h.refresh = function (reason) {
      if (!ctx.map.hasLayer(group)) return;
      if (!h.fetched || reason === "filters" || reason === "show") h.load().catch(ctx.error);
    };
    return h;
  }

  /** Communes (or grid cells) coloured by a class the server computed (/api/incidents/rates,
   * /api/incidents/change), with the legend it sent. */
  function choroplethHandle(entry, ctx) {
    const legend = mapLegend(entry.id);
    const h = { entry, total: 0, fetched: null, seq: 0, body: null };
    const hot = entry.measure === "hotspots", emerging = entry.measure === "emerging";
    // Grid cells rather than communes: the incident counts per cell, or the change per cell.
    const cells = entry.measure === "grid" || (entry.params || {}).by === "grid";
    const colorOf = (p) => {
      if (hot) return p.class === "not_significant" ? null : entry.style.classes[p.class] || null;
      if (emerging) return entry.style.categories[p.category] || null;
      const l = h.body && h.body.legend;
      if (!l || p.class == null || p.class < 0) return null;
      return l.colors[Math.min(p.class, l.colors.length - 1)];
    };
    const layer = L.geoJSON(null, {
      style: (f) => {
        const c = colorOf(f.properties);
        if (hot || emerging) {
          return { color: c ? "#7f1d1d" : "#94a3b8", weight: c ? 0.5 : 0.3, opacity: c ? 0.7 : 0.5,
            fillColor: c || "#000", fillOpacity: c ? 0.72 : 0 };
        }
        return { color: "#334155", weight: 0.7, fillColor: c || "#000", fillOpacity: c ? 0.62 : 0 };
      },
      onEachFeature: (f, l) => {
        l.bindTooltip(() => tip(f.properties), { sticky: true });
      },
    });
    h.layer = layer;
    layer.on("add", () => { legend.addTo(ctx.map); renderLegend(); });
    layer.on("remove", () => legend.remove());

    const lang = () => (G.lang === "en" ? "en" : "vi");
    const classTitle = (k) => {
      const item = entry.legend.find((x) => x.value === k);
      return item ? item.label[lang()] : k;
    };

    /** Why the cell I,J is classed: the server's explanation (z, p, FDR-adjusted p, trend) in
     * a popup, Vietnamese (English under lang=en). */
    async function explain(p, latlng) {
      const params = query();
      if (params === null) return;
      params.set("cell", `${p.i},${p.j}`);
      const body = await G.api(entry.source + "?" + params.toString());
      const c = body.features[0].properties;
      const head = hot ? classTitle(c.class) : (c.title ? c.title[lang()] : classTitle(c.category));
      const figures = hot
        ? `z = ${G.fmtNumber(c.z, 2)} · p = ${G.esc(String(c.p))} · ${G.esc(G.t("hot_p_fdr"))} = ${G.esc(String(c.p_fdr))}` +
          `<br>${G.esc(G.t("hot_trend"))}: ${G.esc(G.t({ up: "hot_trend_up", down: "hot_trend_down" }[c.trend] || "hot_trend_none"))} (Mann-Kendall z = ${G.fmtNumber(c.trend_z, 2)})`
        : `${G.esc(G.t("hot_trend"))}: Mann-Kendall z = ${G.fmtNumber(c.trend_z, 2)}, p = ${G.esc(String(c.trend_p))}`;
      const html = `<div class="gi-hot-why" data-cell="${c.i},${c.j}"><b>${G.esc(head)}</b>` +
        `<div class="gi-hot-figures">${G.fmtNumber(c.count, 0)} ${G.esc(G.t("hot_incidents"))} · ${figures}</div>` +
        `<p class="gi-hot-text">${G.esc(c.why[lang()])}</p></div>`;
      L.popup({ maxWidth: 340 }).setLatLng(latlng).setContent(html).openOn(ctx.map);
    }
    h.explain = explain;

    /** The cell under LATLNG (ray casting over its rings), or null. */
    function cellAt(latlng) {
      let found = null;
      const inside = (ring) => {
        let c = false;
        for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
          const a = ring[i], b = ring[j];
          if ((a.lat > latlng.lat) !== (b.lat > latlng.lat) &&
              latlng.lng < (b.lng - a.lng) * (latlng.lat - a.lat) / (b.lat - a.lat) + a.lng) c = !c;
        }
        return c;
      };
      layer.eachLayer((l) => {
        if (found) return;
        if (!l.getBounds().contains(latlng)) return;
        let rings = l.getLatLngs();
        while (rings.length && !(rings[0] instanceof L.LatLng) && !(rings[0][0] instanceof L.LatLng)) rings = rings.flat();
        if (rings.length && rings[0] instanceof L.LatLng) rings = [rings];
        if (inside(rings[0])) found = l.feature.properties;
      });
      return found;
    }
    // The point layers draw on a canvas above this one and take the clicks: a click anywhere
    // on the map asks for the cell under it while the layer is shown.
    if (hot || emerging) {
      ctx.map.on("click", (e) => {
        if (!ctx.map.hasLayer(layer)) return;
        const p = cellAt(e.latlng);
        if (p) explain(p, e.latlng).catch(ctx.error);
      });
    } else if (cells) {
      // A grid cell says its count, or its change (both windows, direction and size), in a
      // popup: the figures are in the cell's properties already.
      ctx.map.on("click", (e) => {
        if (!ctx.map.hasLayer(layer)) return;
        const p = cellAt(e.latlng);
        if (!p) return;
        const html = `<div class="gi-cell-figures" data-cell="${G.esc(`${p.i},${p.j}`)}">${cellText(p)}</div>`;
        L.popup({ maxWidth: 320 }).setLatLng(e.latlng).setContent(html).openOn(ctx.map);
      });
    }

    // A count hidden from this caller (under 3 for the public) reads as a dash.
    const count = (v) => (v == null ? "–" : G.fmtNumber(v, 0));
    const signed = (v, d) => (v > 0 ? "+" : v < 0 ? "−" : "") + G.fmtNumber(Math.abs(v), d);

    /** What a grid cell holds: its incidents, or its change against the base window (counts of
     * both, the difference, the percent and which way), Vietnamese first. */
    function cellText(p) {
      const head = `<b>${G.esc(G.t("grid_cell", { i: p.i, j: p.j }))}</b><br>`;
      if (entry.measure === "grid") return head + G.esc(G.t("grid_tip", { n: count(p.count) }));
      let size = "–";
      if (!p.suppressed) {
        const word = G.t(p.direction === "up" ? "change_up" : p.direction === "down" ? "change_down" : "change_same");
        const pct = p.percent == null ? G.t("change_new") : signed(p.percent, 1) + " %";
        size = `${word} ${signed(p.change, 0)} (${pct})`;
      }
      return head + G.esc(G.t("change_tip", { n: count(p.current), b: count(p.base) })) +
        `<br>${G.esc(size)}${p.significance ? " · " + G.esc(G.t("change_significant", { c: p.significance })) : ""}`;
    }

    function tip(p) {
      if (hot) {
        return `<b>${G.esc(classTitle(p.class))}</b><br>${G.fmtNumber(p.count, 0)} ${G.esc(G.t("hot_incidents"))} · z = ${G.fmtNumber(p.z, 2)}` +
          `<br>${G.esc(G.t("hot_click"))}`;
      }
      if (emerging) {
        return `<b>${G.esc(p.title ? p.title[lang()] : p.category)}</b><br>${G.fmtNumber(p.count, 0)} ${G.esc(G.t("hot_incidents"))}` +
          `<br>${G.esc(G.t("hot_click"))}`;
      }
      if (cells) return cellText(p);
      const name = G.esc(p.name || `${p.i}, ${p.j}`);
      if (entry.measure === "change") {
        const pct = p.suppressed ? "–" : p.percent == null ? G.t("change_new") : (p.percent > 0 ? "+" : "") + G.fmtNumber(p.percent, 1) + " %";
        return `<b>${name}</b><br>${G.esc(G.t("change_tip", { n: count(p.current), b: count(p.base) }))}` +
          `<br>${G.esc(pct)}${p.significance ? " · " + G.esc(G.t("change_significant", { c: p.significance })) : ""}`;
      }
      return `<b>${name}</b><br>#${p.rank} · ${G.esc(G.t("rates_tip", {
        n: count(p.count), k: p.per_km2 == null ? "–" : G.fmtNumber(p.per_km2, 1),
        p: p.per_1000 == null ? "–" : G.fmtNumber(p.per_1000, 2) }))}`;
    }

    function renderLegend() {
      const div = legend.getContainer();
      if (!div || !h.body) return;
      if (hot || emerging) {
        // Hot first, then not significant, then cold (the server's order); the cells of each.
        const sum = h.body.summary || {};
        const rows = entry.legend.filter((x) => hot || sum[x.value])
          .map((x) => [hot && x.value === "not_significant" ? "transparent" : x.color,
            `${x.label[lang()]} (${G.fmtNumber(sum[x.value] || 0, 0)})`]);
        const unit = { vi: `${G.fmtNumber(h.body.cells, 0)} ô lục giác ${G.fmtNumber(h.body.cell_m, 0)} m`,
          en: `${G.fmtNumber(h.body.cells, 0)} hexagons of ${G.fmtNumber(h.body.cell_m, 0)} m` };
        div.innerHTML = legendRows(G.t(hot ? "hot_legend" : "emerging_legend"), unit, rows) +
          `<div class="gi-map-legend-note">${G.esc(G.t(hot ? "hot_note" : "emerging_note"))}</div>`;
        return;
      }
      const l = h.body.legend;
      let rows, note = "";
      const cellsNote = () => G.t("grid_note", { c: G.fmtNumber(h.body.features.length, 0),
        m: G.fmtNumber(Number(h.body.size_m), 0) });
      if (entry.measure === "change") {
        // Diverging: the direction (up red, down blue) and the size of the change, each class
        // its range of percent; a cell new in this window (none before) takes the top colour.
        const b = l.breaks, mid = b.findIndex((v) => v >= 0);
        const pct = (v) => signed(v, 0) + " %";
        rows = l.colors.map((c, i) => {
          const range = i === 0 ? "< " + pct(b[0]) : i === b.length ? "≥ " + pct(b[i - 1])
            : pct(b[i - 1]) + " … " + pct(b[i]);
          const word = i < mid ? G.t("change_down") : i > mid ? G.t("change_up") : G.t("change_same");
          return [c, `${word} ${range}`];
        }).reverse();
        note = G.t("change_total", { n: count(h.body.total), b: count(h.body.base_total) }) +
          " · " + G.t("change_new_top") + (cells ? " · " + cellsNote() : "");
      } else if (entry.measure === "grid") {
        // Class upper bounds of whole counts: the first class "≤ b0", then "b(i-1)+1 – b(i)".
        rows = l.colors.map((c, i) => [c, (i === 0 ? "≤ " : fmtBreak(Math.floor(l.breaks[i - 1]) + 1) + " – ") +
          fmtBreak(l.breaks[i]) + " " + G.t("hot_incidents")]).reverse();
        note = G.t("grid_total", { n: count(h.body.total) }) + " · " + cellsNote();
      } else {
        rows = l.colors.map((c, i) => [c, "≤ " + fmtBreak(l.breaks[i])]).reverse();
      }
      const title = entry.measure === "grid" ? "grid_legend" : entry.measure === "change"
        ? (cells ? "change_grid_legend" : "change_legend") : "rates_legend";
      div.innerHTML = legendRows(G.t(title), l.unit, rows) +
        (note ? `<div class="gi-map-legend-note">${G.esc(note)}</div>` : "") + suppressionNote(h.body);
    }

    /** The shared filters and the layer's own parameters; the emerging layer reads the
     * `months` months up to the window's end. */
    function query() {
      const params = ctx.filterParams();
      if (params === null) return null;
      for (const [k, v] of Object.entries(entry.params || {})) params.set(k, v);
      if (ctx.era && ctx.era()) params.set("as_of", ctx.era());
      if (entry.months) {
        const end = new Date(params.get("end") || Date.now());
        const start = new Date(end);
        start.setUTCMonth(start.getUTCMonth() - entry.months);
        params.set("start", start.toISOString());
      }
      return params;
    }

    h.load = async function () {
      const params = query();
      const seq = ++h.seq;
      if (params === null) { layer.clearLayers(); h.total = 0; return; }
      const body = await G.api(entry.source + "?" + params.toString());
      if (seq !== h.seq) return;
      h.body = body;
      h.total = body.features.length;
      h.fetched = true;
      layer.clearLayers();
      layer.addData(body);
      renderLegend();
    };
    h.drawn = () => (ctx.map.hasLayer(layer) ? layer.getLayers().length : 0);
    h.colors = () => new Set(ctx.map.hasLayer(layer) ? layer.getLayers().map((l) => colorOf(l.feature.properties)).filter(Boolean) : []);
    h.symbols = () => [];
    h.refresh = function (reason) {
      if (!ctx.map.hasLayer(layer)) return;
      if (!h.fetched || reason === "filters" || reason === "show") h.load().catch(ctx.error);
    };
    return h;
  }

  const FACTORIES = {
    tiles: tilesHandle,
    features: featuresHandle,
    sensors: sensorsHandle,
    cameras: camerasHandle,
    incidents: incidentsHandle,
    heatmap: densityHandle,
    choropleth: choroplethHandle,
  };

  G.createLayer = function (entry, ctx) {
    const make = FACTORIES[entry.kind];
    return make ? make(entry, ctx) : null;
  };
})(window.GeoIOC = window.GeoIOC || {});
