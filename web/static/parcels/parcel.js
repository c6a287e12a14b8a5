/* Parcel page: a small Leaflet map of the parcel and its neighbours, from the GeoJSON the page
 * carries (no basemap unless one is configured; nothing is fetched). */
(function () {
  "use strict";
  const el = document.getElementById("parcel-map");
  const dataEl = document.getElementById("parcel-data");
  if (!el || !dataEl || !window.L) return;
  const data = JSON.parse(dataEl.textContent);
  const map = L.map(el, { zoomSnap: 0.25, maxZoom: 22, zoomControl: false });
  // Leaflet's own words in the page's language (the template gives them).
  L.control.zoom({ zoomInTitle: el.dataset.zoomIn, zoomOutTitle: el.dataset.zoomOut }).addTo(map);
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  if (el.dataset.basemap) L.tileLayer(el.dataset.basemap, { maxZoom: 22 }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);
  const neighbours = L.geoJSON(data.neighbours, {
    style: { color: "#555", weight: 1, fillColor: "#ffffff", fillOpacity: 0.3 },
    onEachFeature: function (f, layer) {
      layer.bindTooltip(String(f.properties.label), { permanent: true, direction: "center", className: "parcel-label" });
      layer.on("click", function () { window.location.href = f.properties.href; });
    },
  }).addTo(map);
  const subject = L.geoJSON(data.parcel, {
    style: { color: "#c00000", weight: 3, fillColor: "#fff3b0", fillOpacity: 0.7 },
    onEachFeature: function (f, layer) {
      layer.bindTooltip(String(f.properties.label), { permanent: true, direction: "center", className: "parcel-label subject" });
    },
  }).addTo(map);
  L.geoJSON(data.incidents || [], {
    pointToLayer: function (f, ll) { return L.circleMarker(ll, { radius: 5, color: "#e6550d", fillOpacity: 0.9 }); },
    onEachFeature: function (f, layer) { layer.bindTooltip(f.properties.title || ""); },
  }).addTo(map);
  map.fitBounds(subject.getBounds().pad(1.2));
  void neighbours;
})();
