/* Parcel search page: the map shows parcels (public vector tiles) and the results; a click
 * fills the point field, "Draw area" collects corners and submits them as a GeoJSON polygon. */
(function () {
  "use strict";
  const el = document.getElementById("search-map");
  if (!el || !window.L) return;
  const results = JSON.parse(document.getElementById("search-results").textContent || "[]");
  const form = document.getElementById("parcel-search");
  const langQuery = "?lang=" + (document.documentElement.lang === "en" ? "en" : "vi");
  const map = L.map(el, { maxZoom: 22, zoomControl: false }).setView([21.18, 106.07], 12);
  // Leaflet's own words in the page's language (the template gives them).
  L.control.zoom({ zoomInTitle: el.dataset.zoomIn, zoomOutTitle: el.dataset.zoomOut }).addTo(map);
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  if (el.dataset.basemap) L.tileLayer(el.dataset.basemap, { maxZoom: 22 }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);
  if (L.vectorGrid) {
    const tiles = function (id, style, minZoom) {
      return L.vectorGrid.protobuf("/ogc/collections/" + id + "/tiles/WebMercatorQuad/{z}/{y}/{x}", {
        rendererFactory: L.canvas.tile, interactive: false, minZoom: minZoom, maxZoom: 22,
        vectorTileLayerStyles: { [id]: style }, fetchOptions: { credentials: "omit" },
      });
    };
    tiles("admin_units", { color: "#334155", weight: 1, fill: false }, 0).addTo(map);
    tiles("parcels", { color: "#8c6d31", weight: 0.6, fill: true, fillOpacity: 0.05 }, 15).addTo(map);
  }
  const found = L.featureGroup().addTo(map);
  results.forEach(function (r) {
    const b = r.bbox;
    L.rectangle([[b[1], b[0]], [b[3], b[2]]], { color: "#c00000", weight: 2, fillOpacity: 0.1 })
      .bindTooltip(r.key).on("click", function () { window.location.href = "/parcels/" + r.id + langQuery; })
      .addTo(found);
  });
  const polyInput = document.getElementById("polygon");
  if (polyInput.value) {
    try { L.geoJSON(JSON.parse(polyInput.value), { style: { color: "#1f6feb", weight: 2, fillOpacity: 0.05 } }).addTo(found); } catch (e) { /* ignore */ }
  }
  if (found.getLayers().length) map.fitBounds(found.getBounds().pad(0.3), { maxZoom: 18 });

  let drawing = null;
  const startBtn = document.getElementById("draw-start");
  const finishBtn = document.getElementById("draw-finish");
  startBtn.addEventListener("click", function () {
    drawing = { pts: [], line: L.polyline([], { color: "#1f6feb" }).addTo(map) };
    finishBtn.disabled = false;
    map.doubleClickZoom.disable();
  });
  finishBtn.addEventListener("click", function () {
    if (!drawing || drawing.pts.length < 3) return;
    const ring = drawing.pts.map(function (p) { return [Number(p.lng.toFixed(7)), Number(p.lat.toFixed(7))]; });
    ring.push(ring[0]);
    polyInput.value = JSON.stringify({ type: "Polygon", coordinates: [ring] });
    document.getElementById("point").value = "";
    form.submit();
  });
  map.on("click", function (e) {
    if (drawing) {
      drawing.pts.push(e.latlng);
      drawing.line.setLatLngs(drawing.pts.concat(drawing.pts.length > 2 ? [drawing.pts[0]] : []));
      return;
    }
    document.getElementById("point").value = e.latlng.lng.toFixed(7) + ", " + e.latlng.lat.toFixed(7);
  });
})();
