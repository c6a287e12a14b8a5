/* GeoIOC command map: a station's time series chart (uPlot, vendored), opened by a click on a
 * station.
 *
 * Data from /api/map/series (the server picks raw readings, hourly or daily means by the range,
 * never more than 2,000 points a series, under the caller's access). The range is the last day,
 * week or month, or a chosen one; the time axis is in Vietnam time whatever the browser's zone;
 * the value axis carries the unit; the thresholds (the alert rules' and the station's own) are
 * drawn as dashed lines. Other stations' series can be added to compare them: one value axis per
 * unit. A live `sensor` event of a shown datastream appends its reading (short ranges). */
(function (G) {
  "use strict";

  const TZ = "Asia/Ho_Chi_Minh";
  const COLORS = ["#38bdf8", "#f472b6", "#a3e635", "#fbbf24", "#c084fc", "#fb923c"];
  const MAX_SERIES = 6;
  const chart = {
    series: [], // [{id, body}] in the order added
    range: { preset: "day" },
    plot: null,
    thresholdsDrawn: [], // [{value, y}] drawn at the last redraw (the tests read them)
    seq: 0,
  };
  G.chart = chart;

  const $ = (id) => document.getElementById(id);
  const tzDate = (ts) => uPlot.tzDate(new Date(ts * 1000), TZ);

  function rangeParams() {
    if (chart.range.preset) return { range: chart.range.preset };
    const out = { start: chart.range.start };
    if (chart.range.end) out.end = chart.range.end;
    return out;
  }

  async function fetchSeries(id) {
    const q = new URLSearchParams({ datastream: String(id), ...rangeParams() });
    return G.api("/api/map/series?" + q.toString());
  }

  function label(body) {
    const d = body.datastream;
    return `${d.station_code} · ${G.pick(d.property_name)}${d.unit ? " (" + d.unit + ")" : ""}`;
  }

  /** One shared time axis for every series (uPlot's data layout): the union of their times,
   * a gap (null) where a series has no point. */
  function aligned() {
    const times = new Set();
    for (const s of chart.series) for (const p of s.body.points) times.add(p[0]);
    const xs = [...times].sort((a, b) => a - b);
    const index = new Map(xs.map((t, i) => [t, i]));
    const data = [xs];
    for (const s of chart.series) {
      const ys = new Array(xs.length).fill(null);
      for (const p of s.body.points) ys[index.get(p[0])] = p[1];
      data.push(ys);
    }
    return data;
  }

  function thresholdLines(u) {
    const ctx = u.ctx;
    chart.thresholdsDrawn = [];
    const done = new Set(); // one line per value and axis (two stations share their limits)
    chart.series.forEach((s, i) => {
      const scale = "u:" + s.body.datastream.unit;
      for (const t of s.body.thresholds) {
        for (const value of [t.upper, t.lower]) {
          if (value == null || done.has(scale + "|" + value)) continue;
          done.add(scale + "|" + value);
          const y = u.valToPos(value, scale, true);
          if (!Number.isFinite(y) || y < u.bbox.top || y > u.bbox.top + u.bbox.height) continue;
          ctx.save();
          ctx.strokeStyle = t.code === "station" ? "#fbbf24" : "#ef4444";
          ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
          ctx.lineWidth = 1.5 * devicePixelRatio;
          ctx.beginPath();
          ctx.moveTo(u.bbox.left, y);
          ctx.lineTo(u.bbox.left + u.bbox.width, y);
          ctx.stroke();
          ctx.setLineDash([]);
          ctx.fillStyle = ctx.strokeStyle;
          ctx.font = `${11 * devicePixelRatio}px sans-serif`;
          ctx.textAlign = "right";
          const text = `${G.pick(t.name)}: ${G.fmtNumber(value)}`;
          const room = u.bbox.width - 8 * devicePixelRatio;
          ctx.fillText(text.length * 6 * devicePixelRatio > room ? G.fmtNumber(value) : text,
                       u.bbox.left + u.bbox.width - 4 * devicePixelRatio, y - 4 * devicePixelRatio);
          ctx.restore();
          chart.thresholdsDrawn.push({ series: i, code: t.code, value, y: y / devicePixelRatio });
        }
      }
    });
    document.body.dataset.chartThresholds = String(chart.thresholdsDrawn.length);
  }

  function draw() {
    const host = $("gi-chart-plot");
    if (chart.plot) { chart.plot.destroy(); chart.plot = null; }
    host.innerHTML = "";
    if (!chart.series.length) return;
    const units = [...new Set(chart.series.map((s) => s.body.datastream.unit))];
    const scales = { x: { time: true } };
    // Ticks in Vietnamese order (day/month), hours for short ranges; already in Vietnam time
    // (tzDate).
    const hm = uPlot.fmtDate("{HH}:{mm}"), dm = uPlot.fmtDate("{DD}/{MM}"), dmy = uPlot.fmtDate("{DD}/{MM}/{YYYY}");
    const ticks = (u, splits) => {
      const span = splits.length > 1 ? splits[splits.length - 1] - splits[0] : 0;
      return splits.map((ts, i) => {
        const d = tzDate(ts);
        if (span <= 2 * 86400) return hm(d) + (i === 0 || (d.getHours() === 0 && d.getMinutes() === 0) ? "\n" + dm(d) : "");
        return span > 400 * 86400 ? dmy(d) : dm(d);
      });
    };
    const axes = [{ stroke: "#cbd5e1", grid: { stroke: "rgba(148,163,184,.15)" }, label: G.t("chart_time_vn"),
                    values: ticks, size: 52 }];
    units.forEach((unit, i) => {
      // The range holds the thresholds too, so that their lines are in view.
      const limits = chart.series.filter((s) => s.body.datastream.unit === unit)
        .flatMap((s) => s.body.thresholds.flatMap((t) => [t.upper, t.lower]).filter((v) => v != null));
      scales["u:" + unit] = {
        range: (u, min, max) => {
          const lo = Math.min(min == null ? Infinity : min, ...limits);
          const hi = Math.max(max == null ? -Infinity : max, ...limits);
          if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
          const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1;
          return [lo - pad, hi + pad];
        },
      };
      axes.push({ scale: "u:" + unit, label: unit || G.t("chart_value"), side: i === 0 ? 3 : 1,
                  stroke: "#cbd5e1", grid: { show: i === 0, stroke: "rgba(148,163,184,.15)" },
                  values: (u, vals) => vals.map((v) => G.fmtNumber(v)) });
    });
    const series = [{ label: G.t("chart_time_vn"), value: (u, ts) => (ts == null ? "–" : G.fmtDateTime(new Date(ts * 1000).toISOString())) }];
    chart.series.forEach((s, i) => {
      series.push({ label: label(s.body), scale: "u:" + s.body.datastream.unit, stroke: COLORS[i % COLORS.length],
                    width: 1.6, spanGaps: s.body.resolution !== "raw",
                    value: (u, v) => (v == null ? "–" : G.fmtNumber(v)) });
    });
    const width = Math.max(320, host.clientWidth || 560);
    chart.plot = new uPlot({
      width, height: 260, tzDate, scales, axes, series,
      legend: { show: true },
      hooks: { draw: [thresholdLines] },
    }, aligned(), host);
    document.body.dataset.chartSeries = String(chart.series.length);
    const words = { raw: G.t("chart_res_raw"), hour: G.t("chart_res_hour"), day: G.t("chart_res_day") };
    const res = chart.series.map((s) => words[s.body.resolution]);
    $("gi-chart-note").textContent = G.t("chart_note", { res: [...new Set(res)].join(", ") });
  }

  async function reload() {
    const seq = ++chart.seq;
    const bodies = await Promise.all(chart.series.map((s) => fetchSeries(s.id)));
    if (seq !== chart.seq) return;
    chart.series.forEach((s, i) => { s.body = bodies[i]; });
    draw();
    renderPicker();
  }

  function stations() {
    const h = Object.values(G.layerHandles ? G.layerHandles() : {}).find((x) => x.entry && x.entry.kind === "sensors");
    return h ? h.markers.map((m) => m.feature).filter((f) => f.properties.datastream) : [];
  }

  function renderPicker() {
    const sel = $("gi-chart-add");
    const shown = new Set(chart.series.map((s) => s.id));
    const opts = stations().filter((f) => !shown.has(f.properties.datastream))
      .sort((a, b) => String(a.properties.code).localeCompare(String(b.properties.code)));
    sel.innerHTML = `<option value="">${G.esc(G.t("chart_add"))}</option>` + opts.map((f) =>
      `<option value="${f.properties.datastream}">${G.esc(f.properties.code)} · ${G.esc(f.properties.name || "")}` +
      ` (${G.esc(f.properties.parameter || "")})</option>`).join("");
    sel.disabled = chart.series.length >= MAX_SERIES;
    const list = $("gi-chart-series");
    list.innerHTML = chart.series.map((s, i) =>
      `<li><span class="gi-chart-swatch" style="background:${COLORS[i % COLORS.length]}"></span>` +
      `${G.esc(label(s.body))} <button type="button" class="btn btn-sm btn-link" data-remove="${s.id}"` +
      ` aria-label="${G.esc(G.t("chart_remove"))}">×</button></li>`).join("");
  }

  function setPresetButtons() {
    for (const b of document.querySelectorAll("#gi-chart [data-range]")) {
      b.classList.toggle("active", b.dataset.range === chart.range.preset);
    }
  }

  /** Open the chart for one datastream (a click on a station): it replaces what was shown. */
  chart.open = async function (datastream) {
    $("gi-chart").hidden = false;
    chart.series = [{ id: datastream, body: null }];
    setPresetButtons();
    await reload();
  };

  chart.add = async function (datastream) {
    if (chart.series.some((s) => s.id === datastream) || chart.series.length >= MAX_SERIES) return;
    chart.series.push({ id: datastream, body: null });
    await reload();
  };

  chart.close = function () {
    $("gi-chart").hidden = true;
    if (chart.plot) chart.plot.destroy();
    chart.plot = null;
    chart.series = [];
    delete document.body.dataset.chartSeries;
  };

  /** A live reading of a shown datastream, appended when the range ends now and is raw. */
  chart.onLive = function (ev) {
    if (!chart.plot || !chart.range.preset) return;
    const s = chart.series.find((x) => x.id === ev.datastream);
    if (!s || !s.body || s.body.resolution !== "raw" || ev.value == null) return;
    const t = Date.parse(ev.time) / 1000;
    const pts = s.body.points;
    if (pts.length && pts[pts.length - 1][0] >= t) return;
    pts.push([t, ev.value, ev.value, ev.value]);
    chart.plot.setData(aligned());
  };

  /** A local datetime-local value (Vietnam time) as ISO 8601 with the +07:00 offset. */
  function vnIso(value) {
    return value ? (value.length === 16 ? value + ":00" : value) + "+07:00" : null;
  }

  function bind() {
    $("gi-chart-close").addEventListener("click", chart.close);
    $("gi-chart").addEventListener("click", (e) => {
      const preset = e.target.closest("[data-range]");
      if (preset) {
        chart.range = { preset: preset.dataset.range };
        setPresetButtons();
        reload().catch(G.error);
      }
      const rm = e.target.closest("[data-remove]");
      if (rm) {
        chart.series = chart.series.filter((s) => String(s.id) !== rm.dataset.remove);
        if (!chart.series.length) chart.close(); else reload().catch(G.error);
      }
    });
    $("gi-chart-custom").addEventListener("submit", (e) => {
      e.preventDefault();
      const start = vnIso($("gi-chart-start").value);
      const end = vnIso($("gi-chart-end").value);
      const err = $("gi-chart-error");
      err.hidden = true;
      if (!start || (end && Date.parse(end) <= Date.parse(start))) {
        err.textContent = !start ? G.t("window_date_needed") : G.t("window_order");
        err.hidden = false;
        return;
      }
      chart.range = { start, end };
      setPresetButtons();
      reload().catch((x) => { err.textContent = G.errorText(x); err.hidden = false; });
    });
    $("gi-chart-add").addEventListener("change", (e) => {
      const id = Number(e.target.value);
      if (id) chart.add(id).catch(G.error);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", bind);
  else bind();
})(window.GeoIOC = window.GeoIOC || {});
