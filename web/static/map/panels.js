/* GeoIOC command map: the layer panel (grouped by domain, with legends), the incident filters,
 * and the detail panel's sections (parcel, planning zone, commune with its incident trend,
 * incident with covering cameras, camera, station, place). Plain DOM, no framework. */
(function (G) {
  "use strict";

  const esc = (v) => String(v == null ? "" : v).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  G.esc = esc;

  // --- layer panel ----------------------------------------------------------------------------

  /** One legend symbol as the map draws it: an area with its outline, a line with its width
   * and dash, a point with its outline, a severity ring, a cluster, the heatmap's ramp. */
  function symbolHtml(l) {
    const c = esc(l.color || "#999");
    switch (l.symbol) {
      case "line": {
        const w = Math.max(1, Math.min(6, l.weight || 2));
        const dash = l.dash ? ` stroke-dasharray="${esc(l.dash)}"` : "";
        return `<svg class="gi-sym" width="22" height="12" aria-hidden="true"><line x1="1" y1="6" x2="21" y2="6" ` +
               `stroke="${c}" stroke-width="${w}"${dash} stroke-linecap="round"/></svg>`;
      }
      case "point": {
        const dash = l.dash ? ` stroke-dasharray="${esc(l.dash)}"` : "";
        return `<svg class="gi-sym" width="22" height="14" aria-hidden="true"><circle cx="11" cy="7" r="5" fill="${c}" ` +
               `fill-opacity="${l.opacity == null ? 0.95 : l.opacity}" stroke="${esc(l.outline || "#fff")}" stroke-width="1.6"${dash}/></svg>`;
      }
      case "ring":
        return `<svg class="gi-sym" width="22" height="14" aria-hidden="true"><circle cx="11" cy="7" r="5" fill="#64748b" ` +
               `stroke="${c}" stroke-width="2.5"/></svg>`;
      case "cluster":
        return `<svg class="gi-sym" width="22" height="16" aria-hidden="true"><circle cx="11" cy="8" r="7" fill="${c}" ` +
               `stroke="${esc(l.outline || "#fff")}" stroke-width="1.5"/><text x="11" y="11" text-anchor="middle" ` +
               `font-size="8" font-weight="700" fill="#fff">12</text></svg>`;
      case "gradient":
        return `<span class="gi-sym gi-sym-ramp" style="background:linear-gradient(90deg,${(l.gradient || [c]).map(esc).join(",")})"></span>`;
      default: // a filled area
        return `<span class="gi-swatch" style="--c:${c};border-color:${esc(l.outline || "rgba(255,255,255,0.35)")}"></span>`;
    }
  }

  /** Everything the layer draws: one entry per coded value of its style, then the rest of its
   * symbols (legend_more), under their group's heading when they have one. */
  function legendHtml(entry) {
    const all = (entry.legend || []).concat(entry.legend_more || []);
    if (!all.length) return "";
    let group = null;
    const items = all.map((l) => {
      let head = "";
      const g = l.group ? G.pick(l.group) : null;
      if (g && g !== group) head = `<li class="gi-legend-group">${esc(g)}</li>`;
      group = g;
      return head + `<li data-legend-value="${esc(l.value == null ? "" : l.value)}" data-symbol="${esc(l.symbol || "")}" ` +
        `data-color="${esc(l.gradient ? l.gradient.join(" ") : l.color || "")}">${symbolHtml(l)}${esc(G.pick(l.label))}</li>`;
    }).join("");
    // Short legends open; long ones (land-use codes) one click away.
    return `<details class="gi-legend"${all.length <= 10 ? " open" : ""}>` +
           `<summary>${esc(G.t("legend"))}</summary><ul>${items}</ul></details>`;
  }

  function swatchFor(entry) {
    const s = entry.style || {};
    if (entry.kind === "heatmap") return `background:linear-gradient(90deg,${Object.values(s.gradient || {}).map(esc).join(",")})`;
    const c = s.by && entry.legend && entry.legend.length ? entry.legend[0].color : (s.fill_color || s.color);
    return `--c:${c || "#999"}`;
  }

  /** The layer list, grouped by domain; CHECKED(id) says which layers are on. */
  G.renderLayerPanel = function (manifest, checked, era) {
    const root = document.getElementById("gi-layers");
    const groups = manifest.domains.map((d) => {
      const rows = manifest.layers.filter((e) => e.domain === d.id).map((e) => {
        const zoomNote = e.min_zoom > 0
          ? `<small class="gi-zoomnote" data-minzoom="${e.min_zoom}">${esc(G.t("from_zoom", { z: e.min_zoom }))}</small>` : "";
        let eras = "";
        if (e.eras) {
          eras = `<div class="btn-group btn-group-sm gi-eras" role="group">` + e.eras.map((er) =>
            `<button type="button" class="btn btn-outline-info${(er.as_of || null) === era ? " active" : ""}" ` +
            `data-era="${esc(er.as_of || "")}" title="${esc(G.pick(er.title))}">` +
            `${esc(G.t(er.as_of ? "era_previous" : "era_current"))}</button>`).join("") + `</div>`;
        }
        return `<div class="gi-layer" data-layer="${esc(e.id)}">` +
          `<label><input type="checkbox" class="form-check-input" data-layer-toggle="${esc(e.id)}"` +
          `${checked(e.id) ? " checked" : ""}> <span class="gi-swatch${e.geometry.indexOf("Line") >= 0 ? " gi-swatch-line" : ""}" style="${swatchFor(e)}"></span>` +
          `<span class="gi-layer-title" title="${esc(G.pick(e.description))}">${esc(G.pick(e.title))}</span>` +
          `<span class="gi-count" data-count="${esc(e.id)}"></span></label>${zoomNote}${eras}${legendHtml(e)}</div>`;
      }).join("");
      return `<div class="gi-domain"><div class="gi-domain-title">${esc(G.pick(d.title))}</div>${rows}</div>`;
    }).join("");
    root.innerHTML = `<h2 class="gi-h">${esc(G.t("layers"))}</h2>${groups}`;
  };

  /** Counters next to each layer (features in view, counted by the database: COUNTS, layer id
   * -> number; null when it could not count in time) and the "zoom in" notes. */
  G.updateLayerCounts = function (handles, counts, zoom) {
    for (const id of Object.keys(handles)) {
      const el = document.querySelector(`[data-count="${id}"]`);
      if (el) {
        const n = counts[id];
        el.textContent = n == null ? (id in counts ? "?" : "") : G.fmtNumber(n, 0);
        el.title = id in counts ? G.t("count_in_view") : "";
      }
    }
    document.querySelectorAll("[data-minzoom]").forEach((el) => {
      el.classList.toggle("gi-zoomnote-warn", zoom < Number(el.dataset.minzoom));
      el.textContent = zoom < Number(el.dataset.minzoom)
        ? G.t("zoom_in_to_see", { z: el.dataset.minzoom }) : G.t("from_zoom", { z: el.dataset.minzoom });
    });
  };

  // --- incident filters -----------------------------------------------------------------------

  const PRESETS = [7, 30, 90, 365];

  G.renderFilters = function (entry, filters) {
    const root = document.getElementById("gi-filters");
    if (!entry) { root.hidden = true; root.innerHTML = ""; return; }
    const f = entry.filters;
    const presetOptions = PRESETS.map((n) =>
      `<option value="${n}"${filters.days === n ? " selected" : ""}>${esc(n === 365 ? G.t("last_year") : G.t("last_days", { n }))}</option>`
    ).join("") + `<option value="custom"${filters.days === null ? " selected" : ""}>${esc(G.t("custom"))}</option>`;
    const local = G.fmt.dateToVnInput; // the window's ends on Vietnam's clock
    const chip = (group, v) => {
      const on = filters[group].has(v.value);
      const dot = v.color ? `<span class="gi-dot" style="background:${esc(v.color)}"></span>` : "";
      return `<button type="button" class="gi-chip${on ? " on" : ""}" data-filter="${group}" data-value="${esc(v.value)}" aria-pressed="${on}">` +
             `${dot}${esc(G.pick(v.label))}<span class="gi-chip-count" data-filter-count="${group}:${esc(v.value)}"></span></button>`;
    };
    root.innerHTML =
      `<h2 class="gi-h">${esc(G.t("filters"))}</h2>` +
      `<div class="gi-summary" id="gi-summary"><span class="gi-total" id="gi-total">…</span>` +
      ` <span>${esc(G.t("incidents_in_window"))}</span> <span class="gi-trend" id="gi-trend"></span></div>` +
      `<div class="gi-field"><label class="gi-label" for="gi-window">${esc(G.t("window"))}</label>` +
      `<select class="form-select form-select-sm" id="gi-window">${presetOptions}</select>` +
      `<div class="gi-custom" id="gi-custom"${filters.days === null ? "" : " hidden"}>` +
      `<label>${esc(G.t("from"))} <input type="datetime-local" class="form-control form-control-sm" id="gi-start" value="${local(filters.start)}"></label>` +
      `<label>${esc(G.t("to"))} <input type="datetime-local" class="form-control form-control-sm" id="gi-end" value="${local(filters.end)}"></label>` +
      `<ul class="gi-custom-error" id="gi-custom-error" role="alert" hidden></ul></div></div>` +
      `<div class="gi-field"><span class="gi-label">${esc(G.t("categories"))}` +
      ` <button type="button" class="gi-link" data-filter-all="category">${esc(G.t("all"))}</button>` +
      ` <button type="button" class="gi-link" data-filter-none="category">${esc(G.t("none"))}</button></span>` +
      `<div class="gi-chips gi-chips-col">${f.category.map((v) => chip("category", v)).join("")}</div></div>` +
      `<div class="gi-field"><span class="gi-label">${esc(G.t("severity"))}</span>` +
      `<div class="gi-chips">${f.severity.map((v) => chip("severity", v)).join("")}</div></div>` +
      `<div class="gi-field"><span class="gi-label">${esc(G.t("status"))}</span>` +
      `<div class="gi-chips">${f.status.map((v) => chip("status", v)).join("")}</div></div>`;
    root.hidden = false;
  };

  function trendHtml(change, previousTotal) {
    if (change == null) return `<span class="gi-flat">${esc(G.t("no_previous"))}</span>`;
    const pct = Math.round(change * 1000) / 10;
    const cls = pct > 0 ? "gi-up" : pct < 0 ? "gi-down" : "gi-flat";
    const arrow = pct > 0 ? "▲" : pct < 0 ? "▼" : "■";
    return `<span class="${cls}">${arrow} ${G.fmtNumber(Math.abs(pct), 1)}%</span> ` +
           `<span class="gi-muted">${esc(G.t("vs_previous", { n: G.fmtNumber(previousTotal, 0) }))}</span>`;
  }

  G.renderFilterCounts = function (stats) {
    const total = document.getElementById("gi-total");
    if (!total) return;
    total.textContent = stats ? G.fmtNumber(stats.current.total, 0) : "0";
    document.getElementById("gi-trend").innerHTML = stats ? trendHtml(stats.change, stats.previous.total) : "";
    document.querySelectorAll("[data-filter-count]").forEach((el) => {
      const [group, value] = el.dataset.filterCount.split(":");
      const table = stats && stats.current["by_" + group];
      el.textContent = table && table[value] ? G.fmtNumber(table[value], 0) : "";
    });
  };

  // --- detail panel ---------------------------------------------------------------------------

  /** A code read with its name: a gazetteer unit's "name (code)", a land-use type's
   * "code – name" (the manifest's names; the bare code when it has none). */
  function refText(field, value) {
    const names = ((G.state && G.state.manifest && G.state.manifest.names) || {})[field.ref] || {};
    const name = names[value] == null ? "" : G.pick(names[value]);
    if (!name) return String(value);
    return field.ref === "gazetteer" ? `${name} (${value})` : `${value} – ${name}`;
  }
  G.refText = refText;

  function valueText(field, value, lookups) {
    if (value == null || value === "") {
      return field.name === "use_until" ? G.t("permanent") : "–";
    }
    if (field.values && field.values[String(value)]) return G.pick(field.values[String(value)]);
    if (field.ref) return (Array.isArray(value) ? value : [value]).map((v) => refText(field, v)).join(", ");
    if (Array.isArray(value)) return value.map((v) => (lookups && lookups[v]) ? `${v} – ${lookups[v]}` : v).join(", ");
    if (field.type === "datetime") return G.fmtDateTime(value);
    if (field.type === "date") return G.fmtDate(value);
    if (field.type === "float" || field.type === "int") {
      // Numbers with the decimals the catalogue stores (a legal area: 1), counts without.
      const digits = field.type === "int" ? 0 : field.decimals;
      return typeof value === "number" ? G.fmtNumber(value, digits) : String(value);
    }
    if (field.type === "bool") return value ? G.t("yes") : G.t("no");
    return String(value);
  }

  /** A two-column table of the readable fields of ENTRY present in PROPS. */
  G.fieldTable = function (entry, props, skip, lookups) {
    const rows = entry.fields.filter((f) => !(skip || []).includes(f.name) && f.name in props)
      .map((f) => `<tr><th>${esc(G.pick(f.title))}</th><td>${esc(valueText(f, props[f.name], lookups))}</td></tr>`)
      .join("");
    return `<table class="gi-table">${rows}</table>`;
  };

  G.section = function (kicker, title, body, extraClass) {
    return `<section class="gi-sec ${extraClass || ""}"><div class="gi-kicker">${esc(kicker)}</div>` +
           `<h3 class="gi-sec-title">${title}</h3>${body}</section>`;
  };

  /** Bars by category: the window's counts, widest = largest. */
  G.categoryBars = function (entry, current, previous) {
    const values = Object.keys(current).sort((a, b) => current[b] - current[a]);
    if (!values.length) return "";
    const max = Math.max(...values.map((v) => current[v]));
    const field = entry.fields.find((f) => f.name === "category");
    return `<ul class="gi-bars">` + values.map((v) => {
      const label = field && field.values && field.values[v] ? G.pick(field.values[v]) : v;
      const prev = previous[v] || 0;
      return `<li><span class="gi-bar-label">${esc(label)}</span>` +
        `<span class="gi-bar"><span style="width:${(100 * current[v] / max).toFixed(1)}%;background:${esc(G.categoryColor(entry, v))}"></span></span>` +
        `<span class="gi-bar-n">${G.fmtNumber(current[v], 0)}<small> / ${G.fmtNumber(prev, 0)}</small></span></li>`;
    }).join("") + `</ul>`;
  };

  /** This window's series against the previous window's, as a small SVG chart. */
  G.sparkline = function (current, previous) {
    const w = 300, h = 64, pad = 4;
    const n = Math.max(current.length, 1);
    const max = Math.max(1, ...current, ...previous);
    const pts = (series) => series.map((v, i) =>
      `${(pad + (w - 2 * pad) * (n === 1 ? 0.5 : i / (n - 1))).toFixed(1)},${(h - pad - (h - 2 * pad) * v / max).toFixed(1)}`).join(" ");
    return `<svg class="gi-spark" viewBox="0 0 ${w} ${h}" preserveAspectRatio="none" role="img">` +
      `<polyline class="gi-spark-prev" points="${pts(previous)}"/>` +
      `<polyline class="gi-spark-cur" points="${pts(current)}"/></svg>` +
      `<div class="gi-spark-legend"><span class="gi-k-cur"></span>${esc(G.t("this_window"))}` +
      `<span class="gi-k-prev"></span>${esc(G.t("previous_window"))}</div>`;
  };

  G.statsHtml = function (entry, stats) {
    const cur = stats.current;
    return `<div class="gi-bignum"><b>${G.fmtNumber(cur.total, 0)}</b> ${esc(G.t("incidents_here"))}</div>` +
      `<div class="gi-trendline">${trendHtml(stats.change, stats.previous.total)}</div>` +
      `<div class="gi-label">${esc(G.t("trend"))}</div>${G.sparkline(cur.series, stats.previous.series)}` +
      G.categoryBars(entry, cur.by_category, stats.previous.by_category);
  };

  G.cameraList = function (features) {
    if (!features.length) return `<p class="gi-muted">${esc(G.t("no_cameras"))}</p>`;
    return `<ol class="gi-cams">` + features.map((f) => {
      const p = f.properties;
      return `<li data-camera="${f.id}"><button type="button" class="gi-cam" data-lat="${f.geometry.coordinates[1]}" data-lon="${f.geometry.coordinates[0]}">` +
        `<b>${esc(p.code || f.id)}</b> ${esc(p.name || "")}<span class="gi-cam-d">${esc(G.t("distance", { d: G.fmtNumber(p.distance_m, 0) }))}</span></button>` +
        (p.stream_url ? `<div class="gi-cam-url"><code>${esc(p.stream_url)}</code></div>` : "") + `</li>`;
    }).join("") + `</ol>`;
  };

  G.showDetails = function (html) {
    const panel = document.getElementById("gi-details");
    document.getElementById("gi-details-body").innerHTML = html;
    panel.hidden = false;
    panel.scrollTop = 0;
  };

  G.hideDetails = function () {
    document.getElementById("gi-details").hidden = true;
    document.getElementById("gi-details-body").innerHTML = "";
  };
})(window.GeoIOC = window.GeoIOC || {});
