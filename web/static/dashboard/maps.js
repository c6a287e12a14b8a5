/* GeoIOC dashboard: the small maps (Leaflet, no basemap: nothing is fetched from another host,
 * the communes' outlines are the reference). Each map is drawn on Leaflet's canvas renderer and
 * has its legend under it; `toCanvas()` paints the map and its legend on one canvas, so the PNG
 * download is a complete map as the charts' canvases are complete charts.
 *   choropleth - /api/incidents/rates (GeoJSON): communes coloured by the server's classes
 *   raster     - /api/incidents/density: the KDE image on the fixed scale, communes outlined
 *   hotspots   - /api/incidents/hotspots: grid cells coloured by their Gi* class */
(function (G) {
  "use strict";

  const DPR = () => window.devicePixelRatio || 1;
  const HIDDEN = "#9e9e9e"; // a commune whose count is hidden from the public (not zero)
  const esc = (v) => String(v == null ? "" : v).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

  function fmtBreak(v, lang) {
    return G.fmt.number(v, lang, v >= 100 ? 0 : v >= 10 ? 1 : 2);
  }

  /** A map in EL (the previous one removed), its legend box under it. */
  function mapIn(el, height) {
    if (el._dbMap) { el._dbMap.remove(); el._dbMap = null; }
    el.textContent = "";
    const box = document.createElement("div");
    box.className = "db-map";
    box.style.height = height + "px";
    el.appendChild(box);
    const legend = document.createElement("div");
    legend.className = "db-legend";
    el.appendChild(legend);
    const map = L.map(box, { preferCanvas: true, attributionControl: false, zoomSnap: 0.25,
      scrollWheelZoom: false });
    el._dbMap = map;
    return { map, legend };
  }

  function legendHtml(title, unit, rows, note) {
    return `<div class="db-legend-title">${esc(title)}</div>` +
      (unit ? `<div class="db-legend-unit">${esc(unit)}</div>` : "") +
      `<ul>${rows.map((r) => `<li data-class="${esc(r.id)}"><span class="db-swatch" style="background:${esc(r.color)}"></span>` +
        `<span class="db-legend-label">${esc(r.label)}</span></li>`).join("")}</ul>` +
      (note ? `<div class="db-legend-note">${esc(note)}</div>` : "");
  }

  /** Rings of a Leaflet polygon's latlngs (Polygon or MultiPolygon), each an array of LatLng. */
  function rings(latlngs, out) {
    if (!latlngs.length) return out;
    if (latlngs[0] instanceof L.LatLng) out.push(latlngs);
    else latlngs.forEach((x) => rings(x, out));
    return out;
  }

  /** The map (its GeoJSON layers and image overlay) and its legend rows, on one canvas. */
  function paint(h, title) {
    const size = h.map.getSize();
    const rowsH = 18 * h.rows.length + 44;
    const legendW = 260;
    const W = size.x + legendW, H = Math.max(size.y, rowsH);
    const c = document.createElement("canvas");
    c.width = W * DPR(); c.height = H * DPR();
    const ctx = c.getContext("2d");
    ctx.scale(DPR(), DPR());
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
    ctx.save();
    ctx.beginPath(); ctx.rect(0, 0, size.x, size.y); ctx.clip();
    const pt = (ll) => h.map.latLngToContainerPoint(ll);
    if (h.image && h.image.complete) {
      const b = h.imageBounds;
      const a = pt(b.getNorthWest()), z = pt(b.getSouthEast());
      ctx.globalAlpha = 0.85;
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(h.image, a.x, a.y, z.x - a.x, z.y - a.y);
      ctx.globalAlpha = 1;
    }
    for (const layer of h.vectors) {
      layer.eachLayer((l) => {
        const o = l.options;
        ctx.beginPath();
        for (const ring of rings(l.getLatLngs(), [])) {
          ring.forEach((ll, i) => { const p = pt(ll); if (i) ctx.lineTo(p.x, p.y); else ctx.moveTo(p.x, p.y); });
          ctx.closePath();
        }
        if (o.fill !== false && o.fillOpacity) {
          ctx.globalAlpha = o.fillOpacity; ctx.fillStyle = o.fillColor || o.color; ctx.fill("evenodd");
        }
        if (o.stroke !== false && o.weight) {
          ctx.globalAlpha = o.opacity == null ? 1 : o.opacity; ctx.strokeStyle = o.color; ctx.lineWidth = o.weight; ctx.stroke();
        }
        ctx.globalAlpha = 1;
      });
    }
    ctx.restore();
    // The legend, right of the map.
    const x0 = size.x + 12;
    ctx.fillStyle = "#111"; ctx.font = "bold 12px system-ui, sans-serif"; ctx.textBaseline = "middle";
    ctx.fillText(title, x0, 12);
    ctx.font = "12px system-ui, sans-serif";
    if (h.unit) { ctx.fillStyle = "#555"; ctx.fillText(h.unit, x0, 28); }
    h.rows.forEach((r, i) => {
      const y = 44 + i * 18;
      ctx.fillStyle = r.color; ctx.fillRect(x0, y - 6, 16, 12);
      ctx.strokeStyle = "#888"; ctx.lineWidth = 1; ctx.strokeRect(x0, y - 6, 16, 12);
      ctx.fillStyle = "#222"; ctx.fillText(r.label, x0 + 22, y);
    });
    if (h.note) { ctx.fillStyle = "#555"; ctx.fillText(h.note, x0, 44 + h.rows.length * 18 + 4); }
    return c;
  }

  function handle(map, legend, title, unit, rows, note, vectors, extra) {
    legend.innerHTML = legendHtml(title, unit, rows, note);
    const h = Object.assign({ map, rows, unit, note, vectors, legend }, extra || {});
    h.toCanvas = (t) => paint(h, t || title);
    return h;
  }

  function fit(map, layer, fallback) {
    const b = layer && layer.getBounds && layer.getBounds();
    if (b && b.isValid()) map.fitBounds(b, { padding: [4, 4] });
    else if (fallback) map.fitBounds(fallback);
    else map.setView([21.1, 106.1], 10);
  }

  /** Communes coloured by their class of incidents per 1,000 residents (or per km², or the
   * count), with the breaks and the classification method the server used. */
  function choropleth(el, body, S, lang, height) {
    const { map, legend } = mapIn(el, height);
    const l = body.legend;
    const measure = l.measure;
    const layer = L.geoJSON(body, {
      style: (f) => {
        const k = f.properties.class;
        if (f.properties.suppressed) return { color: "#475569", weight: 0.6, opacity: 1, fillColor: HIDDEN, fillOpacity: 0.8 };
        const fill = k == null || k < 0 ? null : l.colors[Math.min(k, l.colors.length - 1)];
        return { color: "#475569", weight: 0.6, opacity: 1, fillColor: fill || "#fff", fillOpacity: fill ? 0.8 : 0 };
      },
      onEachFeature: (f, lay) => {
        const p = f.properties;
        const n = p.suppressed && p.count == null ? esc(S.hidden_mark) : G.fmt.number(p.count, lang, 0);
        lay.bindTooltip(() => `<b>${esc(p.name)}</b><br>#${p.rank == null ? "–" : p.rank} · ${n} ${esc(S.incidents)}` +
          ` · ${p.per_1000 == null ? "–" : G.fmt.number(p.per_1000, lang, 2)}${esc(S.per_1000)}` +
          ` · ${p.per_km2 == null ? "–" : G.fmt.number(p.per_km2, lang, 1)}${esc(S.per_km2)}`, { sticky: true });
      },
    }).addTo(map);
    fit(map, layer);
    const rows = l.colors.map((c, i) => ({ id: String(i), color: c,
      label: (i === 0 ? "≤ " : fmtBreak(l.breaks[i - 1], lang) + " – ") + fmtBreak(l.breaks[i], lang) }));
    const unit = l.unit[lang] || l.unit.vi;
    const method = S["class_" + l.classification] || l.classification;
    el.dataset.measure = measure;
    el.dataset.breaks = l.breaks.join(",");
    rows.reverse();
    if (body.suppressed) rows.push({ id: "hidden", color: HIDDEN, label: S.hidden_legend });
    return handle(map, legend, `${S.legend_rates} – ${method}`, unit, rows, "", [layer]);
  }

  /** The kernel density image (incidents per km², the server's fixed scale), the communes'
   * outlines (OUTLINES: the choropleth's GeoJSON, when loaded) for orientation. */
  function density(el, body, S, lang, height, outlines) {
    const { map, legend } = mapIn(el, height);
    const [w, s, e, n] = body.image.bounds;
    const bounds = L.latLngBounds([[s, w], [n, e]]);
    const overlay = L.imageOverlay(body.image.url, bounds, { interactive: false, className: "db-density", opacity: 0.85 }).addTo(map);
    const vectors = [];
    if (outlines) {
      vectors.push(L.geoJSON(outlines, { interactive: false,
        style: () => ({ color: "#64748b", weight: 0.5, opacity: 0.8, fill: false, fillOpacity: 0 }) }).addTo(map));
    }
    fit(map, null, bounds);
    const l = body.legend;
    const rows = l.colors.map((c, i) => ({ id: String(i), color: c, label: "≥ " + fmtBreak(l.breaks[i], lang) }));
    el.dataset.vmax = String(l.vmax);
    el.dataset.breaks = l.breaks.join(",");
    return handle(map, legend, S.legend_density, l.unit[lang] || l.unit.vi, rows.reverse(),
      S[l.scale === "fixed" ? "density_fixed" : "density_view"], vectors,
      { image: overlay.getElement(), imageBounds: bounds });
  }

  /** The grid's cells coloured by their Gi* class (hot/cold at 99, 95, 90 %; not significant
   * pale), the number of cells of each class in the legend. */
  function hotspots(el, body, S, lang, height, classes) {
    const { map, legend } = mapIn(el, height);
    const color = Object.fromEntries(classes.map((c) => [c.id, c.color]));
    const layer = L.geoJSON(body, {
      style: (f) => {
        const k = f.properties.class;
        const sig = k !== "not_significant";
        return { color: sig ? "#7f1d1d" : "#cbd5e1", weight: sig ? 0.4 : 0.3, opacity: sig ? 0.6 : 0.7,
          fillColor: color[k] || "#eee", fillOpacity: sig ? 0.85 : 0.25 };
      },
      onEachFeature: (f, lay) => {
        const p = f.properties;
        const t = classes.find((c) => c.id === p.class);
        lay.bindTooltip(() => `<b>${esc(t ? t.title : p.class)}</b><br>${G.fmt.number(p.count, lang, 0)} ${esc(S.incidents)}` +
          `<br>z = ${G.fmt.number(p.z, lang, 2)} · p (FDR) = ${esc(String(p.p_fdr))}`, { sticky: true });
      },
    }).addTo(map);
    fit(map, layer);
    const rows = classes.map((c) => ({ id: c.id, color: c.color,
      label: `${c.title} (${G.fmt.number(body.summary[c.id] || 0, lang, 0)} ${S.cells})` }));
    el.dataset.summary = JSON.stringify(body.summary);
    const note = body.p_value === "analytic" ? S.p_analytic : S.p_permutations.replace("{n}", G.fmt.number(body.permutations, lang, 0));
    return handle(map, legend, S.hot_legend, `${G.fmt.number(body.cells, lang, 0)} ${S.cells} · ${G.fmt.number(body.cell_m, lang, 0)} m`,
      rows, note, [layer]);
  }

  G.maps = { choropleth, density, hotspots };
})(window.GeoIOC = window.GeoIOC || {});
