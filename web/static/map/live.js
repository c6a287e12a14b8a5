/* GeoIOC command map: live updates without reload, from the server's event stream
 * (/api/map/events: one stream per map, filtered by the server for who is signed in; a guest
 * hears public layers and public datastreams only).
 *
 *   sensor      the station's marker takes the colour of its new reading (layers.js h.live)
 *   alert       a ring around the station while its alert is open; a notice when one opens
 *   report,     the incidents layer refetches what it shows (debounced) and a notice says so
 *   incident
 *   camera      the camera's symbol takes its health colour (the cameras layer's palette)
 *   congestion  road segments restyled by id in the vector tiles, in the roads layer's own
 *               traffic state palette (the catalogue's)
 *   detection   a notice
 *   resync      the stream was interrupted: point layers load again
 *
 * The stream is EventSource when the page needs no Authorization header (a guest, or a tab
 * signed in by the session cookie: EventSource sends same-origin cookies), and fetch read as
 * text/event-stream when it does (EventSource cannot send headers). Both reconnect. */
(function (G) {
  "use strict";

  const RETRY_MS = 3000;
  const live = {
    stream: null, // {close()} of the current stream
    key: null, // who the stream is for (a new sign-in restarts it)
    rings: L.layerGroup(),
    alerts: {}, // alert id -> ring marker
    counts: {}, // event name -> how many were applied (the tests read them)
    congestion: {}, // road id -> class
    refetchTimer: null,
  };
  G.live = live;

  function manifestLive() {
    const m = G.currentManifest && G.currentManifest();
    return (m && m.live) || null;
  }

  function handleOf(kind) {
    const handles = G.layerHandles ? G.layerHandles() : {};
    return Object.values(handles).find((h) => h.entry && h.entry.kind === kind) || null;
  }

  function handleById(id) {
    const handles = G.layerHandles ? G.layerHandles() : {};
    return handles[id] || null;
  }

  function count(name) {
    live.counts[name] = (live.counts[name] || 0) + 1;
    document.body.dataset.liveEvents = String(Object.values(live.counts).reduce((a, b) => a + b, 0));
  }

  function notice(text) {
    const el = document.getElementById("gi-live-notice");
    if (!el) return;
    el.textContent = text;
    el.hidden = false;
    clearTimeout(live.noticeTimer);
    live.noticeTimer = setTimeout(() => { el.hidden = true; }, 8000);
  }

  // --- what each event does ---------------------------------------------------------------------

  const ON = {
    sensor(ev) {
      const h = handleOf("sensors");
      if (h && h.live && h.live(ev)) count("sensor");
      if (G.chart && G.chart.onLive) G.chart.onLive(ev);
    },
    alert(ev) {
      const map = G.leafletMap && G.leafletMap();
      if (!map) return;
      if (!map.hasLayer(live.rings)) live.rings.addTo(map);
      const old = live.alerts[ev.id];
      if (old) { live.rings.removeLayer(old); delete live.alerts[ev.id]; }
      if (ev.event !== "closed" && ev.lat != null) {
        const ring = L.circleMarker([ev.lat, ev.lon], {
          radius: 13, color: ev.event === "acknowledged" ? "#fdae61" : "#d73027", weight: 3,
          fill: false, interactive: false, className: "gi-alert-ring",
        });
        ring.alert = ev;
        live.alerts[ev.id] = ring;
        live.rings.addLayer(ring);
      }
      if (ev.event === "opened") {
        notice(G.t("live_alert_opened", { station: ev.station_code, rule: G.pick({ vi: ev.rule_vi, en: ev.rule_en }) }));
      }
      document.body.dataset.liveAlerts = String(Object.keys(live.alerts).length);
      count("alert");
    },
    report(ev) { incidentsChanged(ev, "live_new_report"); },
    incident(ev) { incidentsChanged(ev, "live_new_incident"); },
    camera(ev) {
      const h = handleOf("cameras");
      if (!h || !h.live) return;
      // The cameras layer's own colour for the status (the catalogue's palette).
      const palette = (h.entry.style && h.entry.style.palette) || {};
      if (h.live(ev, palette[ev.status] || h.entry.style.color)) count("camera");
    },
    congestion(ev) {
      const h = handleById(ev.layer);
      const field = h && h.entry.style && h.entry.style.by; // roads: traffic_state
      if (!h || !h.restyle || !field) return;
      const patches = {};
      for (const [id, cls] of ev.segments) {
        live.congestion[id] = cls;
        patches[id] = { [field]: cls };
      }
      h.restyle(patches);
      count("congestion");
    },
    detection(ev) {
      notice(G.t("live_detection", { camera: ev.camera, category: ev.category || "" }));
      count("detection");
    },
    resync() {
      for (const kind of ["sensors", "cameras"]) {
        const h = handleOf(kind);
        if (h && h.loaded && h.load) h.load().catch(G.error);
      }
      const inc = handleOf("incidents");
      if (inc && inc.refresh) inc.refresh("filters");
    },
  };

  function incidentsChanged(ev, words) {
    if (ev.event === "report.created" || ev.event == null) notice(G.t(words, { id: ev.id }));
    clearTimeout(live.refetchTimer);
    live.refetchTimer = setTimeout(() => {
      const h = handleOf("incidents");
      if (h && h.refresh) h.refresh("filters");
    }, 1000);
    count(ev.service_code ? "report" : "incident");
  }

  function dispatch(name, data) {
    // `ready` says whether the server's LISTEN is in place; when it is not yet (a slow start),
    // the `resync` that follows its connection says so, and the map refetches what it missed.
    if (name === "ready") {
      let listening = true;
      try { listening = JSON.parse(data || "{}").listening !== false; } catch (e) { /* as sent */ }
      if (listening) document.body.dataset.live = "1";
      return;
    }
    if (name === "resync") document.body.dataset.live = "1";
    const fn = ON[name];
    if (!fn) return;
    let ev;
    try { ev = data ? JSON.parse(data) : {}; } catch (e) { return; }
    try { fn(ev); } catch (e) { console.warn("GeoIOC live:", e); }
  }

  // --- the stream -------------------------------------------------------------------------------

  function viaEventSource(url) {
    const es = new EventSource(url, { withCredentials: true });
    for (const name of ["ready", ...Object.keys(ON)]) {
      es.addEventListener(name, (e) => dispatch(name, e.data));
    }
    es.onerror = () => { delete document.body.dataset.live; }; // EventSource reconnects itself
    return { close: () => es.close() };
  }

  function viaFetch(url) {
    const ctl = new AbortController();
    G.readEventStream(url, ctl.signal, dispatch, {
      dropped: () => { delete document.body.dataset.live; }, retry: RETRY_MS });
    return { close: () => ctl.abort() };
  }

  /** (Re)start the stream for whoever is signed in now; called after each manifest load. */
  G.liveSync = function () {
    const l = manifestLive();
    if (!l) return;
    const key = (G.authHeaders.Authorization || "") + "|" + JSON.stringify((G.currentManifest() || {}).principal || {});
    if (live.stream && live.key === key) return;
    if (live.stream) live.stream.close();
    for (const ring of Object.values(live.alerts)) live.rings.removeLayer(ring);
    live.alerts = {};
    live.key = key;
    delete document.body.dataset.live;
    live.stream = G.authHeaders.Authorization ? viaFetch(l.events) : viaEventSource(l.events);
  };

  document.addEventListener("geoioc:signed-out", () => {
    if (live.stream) live.stream.close();
    live.stream = null;
    live.key = null;
  });
})(window.GeoIOC = window.GeoIOC || {});
