/* GeoIOC dashboard: the charts. Each draws into a <canvas> with its axes, their labels (and
 * units) and a legend where it needs one, so that the canvas alone, saved as PNG, is a complete
 * chart. Time series use the vendored uPlot (axes on its canvas, Vietnam time); the hour-by-day
 * matrix and the commune bars are drawn here on plain canvases.
 * A count the server suppressed for the public (null in an answer with `suppressed`) is drawn
 * as hidden (grey hatching, the word S.hidden_mark), never as a zero. */
(function (G) {
  "use strict";

  const DPR = () => window.devicePixelRatio || 1;
  const FONT = "12px system-ui, sans-serif";
  const HIDDEN = "#bdbdbd";
  /** A hatched grey fill: a hidden count, unlike the pale fill of a zero. */
  function hatch(ctx, x, y, w, h) {
    ctx.save();
    ctx.fillStyle = "#e0e0e0";
    ctx.fillRect(x, y, w, h);
    ctx.beginPath();
    ctx.rect(x, y, w, h);
    ctx.clip();
    ctx.strokeStyle = "#757575";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let d = -h; d < w; d += 5) { ctx.moveTo(x + d, y + h); ctx.lineTo(x + d + h, y); }
    ctx.stroke();
    ctx.restore();
  }

  const PALETTE = {
    traffic_accident: "#e6550d", public_order: "#756bb1", fire: "#de2d26", environment: "#31a354",
    land_violation: "#8c6d31", infrastructure: "#3182bd", security_event: "#252525",
  };

  function canvasIn(el, height) {
    el.textContent = "";
    const c = document.createElement("canvas");
    const w = Math.max(320, el.clientWidth || 600);
    c.width = w * DPR();
    c.height = height * DPR();
    c.style.width = w + "px";
    c.style.height = height + "px";
    el.appendChild(c);
    const ctx = c.getContext("2d");
    ctx.scale(DPR(), DPR());
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, height);
    ctx.font = FONT;
    return { c, ctx, w, h: height };
  }

  /** Incidents per bucket and category: one line per category (uPlot), x in Vietnam time. */
  function lines(el, data, S, lang, height) {
    el.textContent = "";
    if (!data.series.length) { el.textContent = S.no_data; return null; }
    const xs = data.buckets.map((d) => Date.parse(d + "T00:00:00+07:00") / 1000);
    const names = JSON.parse(document.getElementById("db-config").textContent).categories;
    const opts = {
      width: Math.max(320, el.clientWidth || 600), height: height || 300,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Asia/Ho_Chi_Minh"),
      fmtDate: () => (d) => `${String(d.getDate()).padStart(2, "0")}/${String(d.getMonth() + 1).padStart(2, "0")}`,
      scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] } },
      axes: [
        { label: data.unit === "week" ? S.axis_week : S.axis_day, labelSize: 18 },
        { label: S.axis_count, labelSize: 18, values: (u, vals) => vals.map((v) => G.fmt.number(v, lang, 0)) },
      ],
      series: [{ value: (u, v) => (v == null ? "–" : G.fmt.date(new Date(v * 1000))) }].concat(
        data.series.map((s) => ({
          label: names[s.category] || s.category, stroke: PALETTE[s.category] || "#888", width: 2,
          value: (u, v, si, i) => (v == null ? (data.suppressed && i != null ? S.hidden_mark : "–") : G.fmt.number(v, lang, 0)),
        }))),
    };
    const u = new uPlot(opts, [xs].concat(data.series.map((s) => s.counts)), el);
    return u.ctx.canvas;
  }

  /** Incidents per day of week (rows, Monday on top) and hour (columns); shade = count. */
  function heatMatrix(el, data, S, lang) {
    const days = S.weekdays.split(",");
    const { c, ctx, w, h } = canvasIn(el, 260);
    const left = 48, top = 10, right = 90, bottom = 42;
    const cw = (w - left - right) / 24, ch = (h - top - bottom) / 7;
    const peak = data.max || 1;
    const shade = (v) => `rgba(230, 85, 13, ${0.06 + 0.94 * v / peak})`;
    ctx.textBaseline = "middle";
    data.matrix.forEach((row, r) => {
      ctx.fillStyle = "#222";
      ctx.textAlign = "right";
      ctx.fillText(days[r], left - 6, top + (r + 0.5) * ch);
      row.forEach((n, hr) => {
        if (n == null) { hatch(ctx, left + hr * cw + 0.5, top + r * ch + 0.5, cw - 1, ch - 1); return; }
        ctx.fillStyle = n ? shade(n) : "#f4f4f4";
        ctx.fillRect(left + hr * cw + 0.5, top + r * ch + 0.5, cw - 1, ch - 1);
      });
    });
    ctx.fillStyle = "#222";
    ctx.textAlign = "center";
    for (let hr = 0; hr < 24; hr += 2) ctx.fillText(String(hr), left + (hr + 0.5) * cw, top + 7 * ch + 10);
    ctx.fillText(S.axis_hour, left + 12 * cw, h - 10);
    ctx.save();
    ctx.translate(12, top + 3.5 * ch);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(S.axis_weekday, 0, 0);
    ctx.restore();
    // The scale: from no incident to the busiest hour, in incidents.
    const x0 = w - right + 16, steps = 5, sh = (7 * ch) / steps;
    for (let i = 0; i < steps; i++) {
      ctx.fillStyle = shade(peak * (steps - i) / steps);
      ctx.fillRect(x0, top + i * sh, 14, sh);
    }
    ctx.fillStyle = "#222";
    ctx.textAlign = "left";
    ctx.fillText(G.fmt.number(peak, lang, 0), x0 + 18, top + 6);
    ctx.fillText("0", x0 + 18, top + 7 * ch - 6);
    ctx.fillText(S.axis_count, x0 - 4, h - 10);
    if (data.suppressed) { // the key of the hatching: hidden, not zero
      hatch(ctx, left, h - 17, 14, 12);
      ctx.fillStyle = "#222";
      ctx.fillText(S.hidden_legend, left + 18, h - 10);
    }
    return c;
  }

  /** Communes: this window's count (bar) and the previous window's (a tick), names on the left. */
  function bars(el, data, S, lang) {
    const rows = data.communes;
    if (!rows.length) { el.textContent = S.no_data; return null; }
    const rowH = 24;
    const { c, ctx, w, h } = canvasIn(el, 40 + rows.length * rowH + 40);
    const left = 190, right = 70, top = 28;
    const peak = Math.max(1, ...rows.map((r) => Math.max(r.current || 0, r.previous || 0)));
    const x = (v) => left + (w - left - right) * v / peak;
    // Legend.
    ctx.textBaseline = "middle";
    ctx.fillStyle = "#3182bd"; ctx.fillRect(left, 8, 12, 10);
    ctx.fillStyle = "#222"; ctx.textAlign = "left"; ctx.fillText(S.current, left + 16, 13);
    ctx.fillStyle = "#000"; ctx.fillRect(left + 120, 6, 2, 14);
    ctx.fillStyle = "#222"; ctx.fillText(S.previous, left + 126, 13);
    rows.forEach((r, i) => {
      const y = top + i * rowH;
      ctx.fillStyle = "#222";
      ctx.textAlign = "right";
      ctx.fillText(r.name.length > 26 ? r.name.slice(0, 25) + "…" : r.name, left - 6, y + rowH / 2);
      if (r.current == null) hatch(ctx, left, y + 4, 24, rowH - 8); // hidden, not zero
      else { ctx.fillStyle = "#3182bd"; ctx.fillRect(left, y + 4, x(r.current) - left, rowH - 8); }
      if (r.previous != null) { ctx.fillStyle = "#000"; ctx.fillRect(x(r.previous) - 1, y + 1, 2, rowH - 2); }
      ctx.fillStyle = "#222";
      ctx.textAlign = "left";
      const change = r.change == null ? "" : ` (${r.change > 0 ? "+" : ""}${G.fmt.number(r.change, lang, 1)} %)`;
      const end = Math.max(r.current == null ? left + 24 : x(r.current), r.previous == null ? 0 : x(r.previous));
      ctx.fillText((r.current == null ? S.hidden_mark : G.fmt.number(r.current, lang, 0)) + change, end + 4, y + rowH / 2);
    });
    // The x axis with ticks, in incidents.
    const axisY = top + rows.length * rowH + 4;
    ctx.strokeStyle = "#888";
    ctx.beginPath(); ctx.moveTo(left, axisY); ctx.lineTo(w - right, axisY); ctx.stroke();
    const step = Math.pow(10, Math.floor(Math.log10(peak))) * (peak / Math.pow(10, Math.floor(Math.log10(peak))) > 5 ? 2 : 1);
    ctx.fillStyle = "#222";
    ctx.textAlign = "center";
    for (let v = 0; v <= peak; v += step) {
      ctx.beginPath(); ctx.moveTo(x(v), axisY); ctx.lineTo(x(v), axisY + 4); ctx.stroke();
      ctx.fillText(G.fmt.number(v, lang, 0), x(v), axisY + 12);
    }
    ctx.fillText(S.axis_count, left + (w - left - right) / 2, h - 8);
    return c;
  }


  /** One unit's values of an indicator, oldest period first (uPlot: x the periods, y the
   * indicator's unit of measure). */
  function indicatorLines(el, data, S, lang, height) {
    el.textContent = "";
    const pts = data.series.filter((r) => r.value != null);
    if (!pts.length) { el.textContent = S.no_data; return null; }
    const ind = data.indicator;
    const unit = lang === "en" ? ind.unit_en : ind.unit_vi;
    const name = lang === "en" ? ind.name_en : ind.name_vi;
    const xs = data.series.map((r, i) => i);
    const digits = ind.decimals == null ? 2 : Math.min(ind.decimals, 2);
    const opts = {
      width: Math.max(320, el.clientWidth || 600), height: height || 300,
      scales: { x: { time: false, range: (u, lo, hi) => [lo - 0.3, hi + 0.3] } },
      axes: [
        { label: S.axis_period, labelSize: 18, splits: () => xs, values: (u, vals) => vals.map((v) => (data.series[v] ? data.series[v].period : "")) },
        { label: unit, labelSize: 18, size: 70, values: (u, vals) => vals.map((v) => G.fmt.number(v, lang, Math.abs(v) < 10 ? digits : 0)) },
      ],
      series: [{ value: (u, v) => (data.series[v] ? data.series[v].period : "–") }, {
        label: `${name} – ${data.unit.name}`, stroke: "#3182bd", width: 2, points: { size: 7 },
        value: (u, v) => (v == null ? "–" : G.fmt.number(v, lang, digits) + " " + unit),
      }],
    };
    const u = new uPlot(opts, [xs, data.series.map((r) => r.value)], el);
    el.dataset.last = String(pts[pts.length - 1].value);
    return u.ctx.canvas;
  }

  /** The communes' values of an indicator in one period: the highest TOP as bars, the median
   * of all communes as a dashed line, the indicator's unit on the axis. */
  function indicatorBars(el, data, S, lang, top) {
    const all = data.communes.filter((r) => r.value != null);
    if (!all.length) { el.textContent = S.no_data; return null; }
    const rows = all.slice(0, top || 15);
    const ind = data.indicator;
    const unit = lang === "en" ? ind.unit_en : ind.unit_vi;
    const digits = ind.decimals == null ? 2 : Math.min(ind.decimals, 2);
    const rowH = 20;
    const { c, ctx, w, h } = canvasIn(el, 46 + rows.length * rowH + 40);
    const left = 170, right = 80, top0 = 30;
    const peak = Math.max(...rows.map((r) => r.value), data.stats.median || 0) || 1;
    const x = (v) => left + (w - left - right) * Math.max(0, v) / peak;
    ctx.textBaseline = "middle";
    ctx.fillStyle = "#222"; ctx.textAlign = "left";
    ctx.fillText(S.top_of.replace("{k}", rows.length).replace("{n}", data.stats.n).replace("{p}", data.period), 4, 10);
    ctx.strokeStyle = "#d62728"; ctx.setLineDash([4, 3]);
    ctx.beginPath(); ctx.moveTo(w - right - 150, 22); ctx.lineTo(w - right - 136, 22); ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillText(S.median, w - right - 132, 22);
    rows.forEach((r, i) => {
      const y = top0 + i * rowH;
      ctx.fillStyle = "#222"; ctx.textAlign = "right";
      ctx.fillText(r.unit_name.length > 24 ? r.unit_name.slice(0, 23) + "…" : r.unit_name, left - 6, y + rowH / 2);
      ctx.fillStyle = "#6a51a3";
      ctx.fillRect(left, y + 3, x(r.value) - left, rowH - 6);
      ctx.fillStyle = "#222"; ctx.textAlign = "left";
      ctx.fillText(G.fmt.number(r.value, lang, digits), x(r.value) + 4, y + rowH / 2);
    });
    const axisY = top0 + rows.length * rowH + 4;
    if (data.stats.median != null) {
      ctx.strokeStyle = "#d62728"; ctx.setLineDash([4, 3]);
      ctx.beginPath(); ctx.moveTo(x(data.stats.median), top0); ctx.lineTo(x(data.stats.median), axisY); ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.strokeStyle = "#888";
    ctx.beginPath(); ctx.moveTo(left, axisY); ctx.lineTo(w - right, axisY); ctx.stroke();
    const mag = Math.pow(10, Math.floor(Math.log10(peak)));
    const step = mag * (peak / mag > 5 ? 2 : peak / mag > 2 ? 1 : 0.5);
    ctx.fillStyle = "#222"; ctx.textAlign = "center";
    for (let v = 0; v <= peak + 1e-9; v += step) {
      ctx.beginPath(); ctx.moveTo(x(v), axisY); ctx.lineTo(x(v), axisY + 4); ctx.stroke();
      ctx.fillText(G.fmt.number(v, lang, step < 1 ? 1 : 0), x(v), axisY + 12);
    }
    ctx.fillText(`${lang === "en" ? ind.name_en : ind.name_vi} (${unit})`, left + (w - left - right) / 2, h - 8);
    return c;
  }

  /** The tables behind the panels whose data is another API's (their CSV is written here,
   * from the same JSON the chart drew). */
  const TABLES = {
    "indicator-lines": (d) => [["unit_code", "unit_name", "indicator", "unit_of_measure", "period", "period_start", "value"],
      d.series.map((r) => [d.unit.code, d.unit.name, d.indicator.code, d.indicator.unit_vi, r.period, r.period_start, r.value])],
    "indicator-bars": (d) => [["rank", "unit_code", "unit_name", "indicator", "unit_of_measure", "period", "value"],
      d.communes.map((r) => [r.rank, r.unit_code, r.unit_name, d.indicator.code, d.indicator.unit_vi, d.period, r.value])],
    choropleth: (d) => [["rank", "code", "name", "population", "area_km2", "count", "per_km2", "per_1000", "class", "classification"],
      d.features.map((f) => f.properties).sort((a, b) => a.rank - b.rank).map((p) =>
        [p.rank, p.code, p.name, p.population, p.area_km2, p.count, p.per_km2, p.per_1000, p.class, d.legend.classification])],
    raster: (d) => [["class", "from_incidents_per_km2", "to_incidents_per_km2", "colour", "scale", "total_incidents", "max_incidents_per_km2", "bandwidth_m", "cell_m"],
      d.legend.colors.map((col, i) => [i, d.legend.breaks[i], d.legend.breaks[i + 1], col, d.legend.scale, d.total, d.max, d.bandwidth_m, d.grid.cell_m])],
    hotspots: (d) => [["i", "j", "count", "z", "p", "p_fdr", "gi_bin", "class", "trend", "trend_z", "trend_p"],
      d.features.map((f) => f.properties).map((p) => [p.i, p.j, p.count, p.z, p.p, p.p_fdr, p.gi_bin, p.class, p.trend, p.trend_z, p.trend_p])],
  };

  /** CSV text (UTF-8 with a byte-order mark for spreadsheet programs, as the server's). */
  function csv(kind, data) {
    const [header, rows] = TABLES[kind](data);
    const cell = (v) => {
      if (v == null) return "";
      const t = String(v);
      return /[",\r\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
    };
    return "\ufeff" + [header, ...rows].map((r) => r.map(cell).join(",")).join("\r\n") + "\r\n";
  }

  /** A PNG of the chart's canvas under its title, on white. */
  function png(canvas, title) {
    const pad = 8 * DPR(), titleH = 24 * DPR();
    const out = document.createElement("canvas");
    out.width = canvas.width + 2 * pad;
    out.height = canvas.height + titleH + 2 * pad;
    const ctx = out.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, out.width, out.height);
    ctx.fillStyle = "#111";
    ctx.font = `bold ${14 * DPR()}px system-ui, sans-serif`;
    ctx.textBaseline = "middle";
    ctx.fillText(title, pad, pad + titleH / 2);
    ctx.drawImage(canvas, pad, pad + titleH);
    return out.toDataURL("image/png");
  }

  G.charts = { lines, heatMatrix, bars, indicatorLines, indicatorBars, csv, png };
})(window.GeoIOC = window.GeoIOC || {});
