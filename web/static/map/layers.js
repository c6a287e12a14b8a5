/* GeoIOC command map: Leaflet layers built from manifest entries (/api/map/layers).
 *
 * One factory per kind of entry:
 *   tiles     - OGC API vector tiles (Leaflet.VectorGrid), styled from the catalogue's style
 *   features  - OGC API items for the layer's extent (a few hundred points)
 *   cameras   - /api/map/cameras: points with their field-of-view polygons
 *   sensors   - /api/map/sensors: stations coloured by latest value against threshold
 *   incidents - /api/incidents/points: clustered points, or server-side clusters when there
 *               are too many to ship; filtered by the shared incident filters
 *   heatmap   - /api/incidents/heatmap: grid cells aggregated in PostGIS, same filters
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
    return pointsHandle(entry, ctx, entry.source + "?bbox=" + entry.bbox.join(","), (f, ll) => {
      const p = f.properties;
      const look = states[p.state] || states.none;
      const m = L.circleMarker(ll, {
        radius: 6, color: look.outline, weight: 2, dashArray: p.stale ? stale.dash : null,
        fillColor: look.color, fillOpacity: p.stale ? stale.opacity : 0.95,
        bubblingMouseEvents: false,
      });
      m.bindTooltip(() => {
        const pct = p.ratio == null ? "–" : Math.round(p.ratio * 100);
        return `${p.name || p.code}<br>${p.parameter || ""}: ${G.fmtNumber(p.latest_value)} ${p.unit || ""}` +
               ` (${G.t("of_threshold", { p: pct })})`;
      }, { direction: "top", offset: [0, -6] });
      return m;
    });
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

  function heatmapHandle(entry, ctx) {
    const heat = L.heatLayer([], { radius: 18, blur: 15, minOpacity: 0.05, max: 1,
      gradient: entry.style.gradient });
    const h = { entry, layer: heat, cells: 0, total: 0, fetched: null, seq: 0, lastUrl: null };
    h.load = async function () {
      const params = ctx.filterParams();
      if (params === null) { heat.setLatLngs([]); h.cells = 0; h.total = 0; ctx.onHeatmap(h); return; }
      const bounds = viewBounds(ctx.map, 0.3);
      const z = Math.round(ctx.map.getZoom());
      params.set("bbox", bboxParam(bounds));
      params.set("z", String(z));
      const url = entry.source + "?" + params.toString();
      const seq = ++h.seq;
      h.lastUrl = url;
      const body = await G.api(url);
      if (seq !== h.seq) return;
      h.fetched = { bounds, z };
      const max = Math.max(1, body.max);
      const points = body.cells.map(([lat, lon, w]) => [lat, lon, w / max]);
      heat.setOptions({ maxZoom: z, max: 1 });
      heat.setLatLngs(points);
      h.cells = points.length;
      h.total = body.total;
      h.cellM = body.cell_m;
      ctx.onHeatmap(h);
    };
    h.drawn = () => (ctx.map.hasLayer(heat) ? h.cells : 0);
    h.colors = () => new Set(ctx.map.hasLayer(heat) && h.cells ? Object.values(entry.style.gradient) : []);
    h.symbols = () => [];
    h.refresh = function (reason) {
      if (!ctx.map.hasLayer(heat)) return;
      const f = h.fetched;
      const stale = !f || reason === "filters" || reason === "show" ||
        !f.bounds.contains(ctx.map.getBounds()) || Math.round(ctx.map.getZoom()) !== f.z;
      if (stale) h.load().catch(ctx.error);
    };
    return h;
  }

  const FACTORIES = {
    tiles: tilesHandle,
    features: featuresHandle,
    sensors: sensorsHandle,
    cameras: camerasHandle,
    incidents: incidentsHandle,
    heatmap: heatmapHandle,
  };

  G.createLayer = function (entry, ctx) {
    const make = FACTORIES[entry.kind];
    return make ? make(entry, ctx) : null;
  };
})(window.GeoIOC = window.GeoIOC || {});
