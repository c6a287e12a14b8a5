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
 * the status line), and refresh(reason) for "filters", "view" or "style" changes. */
(function (G) {
  "use strict";

  const FOV_MIN_ZOOM = 13;
  const ROAD_WEIGHTS = { expressway: 4.5, trunk: 3.5, primary: 2.8, secondary: 2, local: 1.2 };
  const ADMIN_WEIGHTS = { province: 3, district: 2, commune: 1.1 };

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
        let w = s.weight;
        if (entry.id === "roads" && props.road_class) {
          w = ROAD_WEIGHTS[props.road_class] || s.weight;
          if (props.road_class === "local" && zoom < 13) return [];
          if (props.road_class === "secondary" && zoom < 11) return [];
          if (zoom >= 15) w *= 1.6;
        }
        // A light casing under each line keeps it readable over any land-use colour.
        return [{ color: "#ffffff", weight: w + 2, opacity: 0.85, lineCap: "round", lineJoin: "round" },
                { color: stroke, weight: w, opacity: 0.95, lineCap: "round", lineJoin: "round" }];
      }
      return { color: s.color, weight: s.weight, opacity: zoom >= 13 ? 0.8 : 0.35,
               fill: true, fillColor: fill, fillOpacity: s.fill_opacity };
    };
  }

  /** Administrative units of the selected era only (tiles carry valid_from/valid_to). */
  function adminStyle(entry, ctx, p, zoom) {
    const asOf = ctx.era();
    const from = p.valid_from || "";
    const to = p.valid_to || "";
    const valid = asOf ? (from <= asOf && (!to || to > asOf)) : !to;
    if (!valid) return [];
    if (p.level === "commune" && zoom < 9) return [];
    const previous = !!asOf;
    return {
      color: previous ? "#7b3294" : "#334155",
      weight: (ADMIN_WEIGHTS[p.level] || 1) * (zoom >= 14 ? 1.4 : 1),
      opacity: 0.9,
      dashArray: p.level === "district" || (previous && p.level === "commune") ? "6 4" : null,
      fill: true, fillColor: "#ffffff", fillOpacity: 0.02,
    };
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
    // Re-add rather than redraw(): GridLayer.redraw() takes a fractional map zoom (zoomSnap 0.5)
    // as the tile zoom and would ask for tiles such as z=11.5.
    h.refresh = function (reason) {
      if (reason === "style" && ctx.map.hasLayer(layer)) { ctx.map.removeLayer(layer); layer.addTo(ctx.map); }
    };
    return h;
  }

  // --- GeoJSON point layers -------------------------------------------------------------------

  function pointsHandle(entry, ctx, url, makeMarker) {
    const group = L.featureGroup();
    const h = { entry, layer: group, loaded: false, loading: null, data: null };
    h.load = async function () {
      const fc = await G.api(url);
      h.data = fc;
      group.clearLayers();
      for (const f of fc.features || []) {
        if (!f.geometry) continue;
        const ll = L.latLng(f.geometry.coordinates[1], f.geometry.coordinates[0]);
        const m = makeMarker(f, ll);
        m.on("click", (e) => { L.DomEvent.stop(e); ctx.select(entry, f, ll); });
        group.addLayer(m);
      }
      h.loaded = true;
    };
    h.drawn = () => (ctx.map.hasLayer(group) ? group.getLayers().length : 0);
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
    const colors = {};
    for (const l of entry.legend) colors[l.value] = l.color;
    return pointsHandle(entry, ctx, entry.source + "?bbox=" + entry.bbox.join(","), (f, ll) => {
      const p = f.properties;
      const m = L.circleMarker(ll, {
        radius: 6, color: "#0f172a", weight: 2, dashArray: p.stale ? "2 3" : null,
        fillColor: colors[p.state] || "#9e9e9e", fillOpacity: p.stale ? 0.5 : 0.95,
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
    const h = pointsHandle(entry, ctx, entry.source + "?bbox=" + entry.bbox.join(","), (f, ll) => {
      const color = categoryColor(entry, f.properties.status);
      if (f.fov) {
        fov.addLayer(L.geoJSON(f.fov, { pane: "gi-fov", interactive: false,
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

  const SEVERITY_RING = { 1: "#74add1", 2: "#fee090", 3: "#f46d43", 4: "#a50026" };

  function incidentIcon(entry, id, category, severity) {
    const size = 8 + 2 * severity;
    return L.divIcon({
      className: "gi-incident gi-sev" + severity,
      html: `<span data-incident="${id}" style="background:${categoryColor(entry, category)};border-color:${SEVERITY_RING[severity]}"></span>`,
      iconSize: [size, size],
    });
  }

  function clusterIcon(count, severity, color) {
    const size = count < 10 ? 30 : count < 100 ? 36 : count < 1000 ? 44 : 52;
    return L.divIcon({
      className: "gi-cluster",
      html: `<div style="width:${size}px;height:${size}px;border-color:${SEVERITY_RING[severity] || "#64748b"};` +
            `background:${color}"><span>${count >= 10000 ? Math.round(count / 1000) + "k" : count}</span></div>`,
      iconSize: [size, size],
    });
  }

  function incidentsHandle(entry, ctx) {
    const cluster = L.markerClusterGroup({
      chunkedLoading: true,
      showCoverageOnHover: false,
      maxClusterRadius: 55,
      spiderfyOnMaxZoom: true,
      disableClusteringAtZoom: 17,
      iconCreateFunction: (c) => {
        const markers = c.getAllChildMarkers();
        let sev = 1;
        const counts = {};
        for (const m of markers) {
          sev = Math.max(sev, m.options.severity);
          counts[m.options.category] = (counts[m.options.category] || 0) + 1;
        }
        const top = Object.keys(counts).sort((a, b) => counts[b] - counts[a])[0];
        return clusterIcon(c.getChildCount(), sev, categoryColor(entry, top));
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
          L.marker([lat, lon], { icon: clusterIcon(count, severity, categoryColor(entry, category)),
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
      gradient: { 0.2: "#2c7bb6", 0.4: "#00a6ca", 0.6: "#f9d057", 0.8: "#f29e2e", 1.0: "#d7191c" } });
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
