/* The report page (/report): category, pin on the map (or the device's location), description,
 * up to three photos with previews, optional name and phone; sent to POST /api/reports as
 * multipart/form-data. What the page checks before sending (a category, a pin, the number, size
 * and type of photos) only spares a round trip: the server decides, and each field it refuses
 * is shown beside its input, in the page's language (the server words the reasons: ?lang=). */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("report-config").textContent);
  const T = config.t;
  const lang = config.lang;
  const form = document.getElementById("report-form");
  const latInput = document.getElementById("lat");
  const lonInput = document.getElementById("long");
  const pinText = document.getElementById("pin-text");
  const fileInput = document.getElementById("media");
  const previews = document.getElementById("previews");
  const submit = document.getElementById("report-submit");
  const ACCEPTED = ["image/jpeg", "image/png", "image/webp"];
  let files = [];
  let marker = null;

  function fill(text, args) {
    return text.replace(/\{(\w+)\}/g, (m, k) => (args && k in args ? String(args[k]) : m));
  }

  // --- the map: the province's units as vector tiles from this server (no CDN, no basemap
  // unless one is configured), a pin where the person taps.
  const mapEl = document.getElementById("report-map");
  const b = config.bbox;
  const map = L.map(mapEl, { maxZoom: 20, zoomControl: false });
  L.control.zoom({ zoomInTitle: "+", zoomOutTitle: "−" }).addTo(map);
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  map.fitBounds([[b[1], b[0]], [b[3], b[2]]]);
  if (config.basemap) L.tileLayer(config.basemap, { maxZoom: 20 }).addTo(map);
  if (L.vectorGrid) {
    L.vectorGrid.protobuf("/ogc/collections/admin_units/tiles/WebMercatorQuad/{z}/{y}/{x}", {
      rendererFactory: L.canvas.tile, interactive: false, maxZoom: 20,
      vectorTileLayerStyles: { admin_units: { color: "#334155", weight: 1, fill: false } },
      fetchOptions: { credentials: "omit" },
    }).addTo(map);
  }
  L.control.scale({ imperial: false }).addTo(map);
  L.Icon.Default.imagePath = "/ogc/static/vendor/leaflet/images/";

  function setPin(lat, lon, zoom) {
    const ll = L.latLng(lat, lon);
    if (!marker) {
      marker = L.marker(ll, { draggable: true, autoPan: true }).addTo(map);
      marker.on("dragend", () => { const p = marker.getLatLng(); setPin(p.lat, p.lng); });
    } else {
      marker.setLatLng(ll);
    }
    latInput.value = lat.toFixed(7);
    lonInput.value = lon.toFixed(7);
    pinText.textContent = `${T.pin_at} ${GeoIOC.fmt.number(lat, lang, 5, { group: false })}, ` +
      `${GeoIOC.fmt.number(lon, lang, 5, { group: false })}`;
    clearError("location");
    if (zoom) map.setView(ll, Math.max(map.getZoom(), zoom));
  }
  map.on("click", (e) => setPin(e.latlng.lat, e.latlng.lng));
  // For tests and for a person's keyboard: the map is the only way to a pin otherwise.
  window.GeoIOCReport = { map: map, setPin: setPin };

  document.getElementById("use-location").addEventListener("click", () => {
    if (!navigator.geolocation) { pinText.textContent = T.no_location_device; return; }
    pinText.textContent = T.locating;
    navigator.geolocation.getCurrentPosition(
      (pos) => setPin(pos.coords.latitude, pos.coords.longitude, 16),
      () => { pinText.textContent = marker ? pinText.textContent : T.no_location_device; },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
  });

  // --- the category's own questions (Open311 attributes) -----------------------------------
  const select = document.getElementById("service_code");
  const attrBox = document.getElementById("attributes");
  function renderAttributes() {
    attrBox.textContent = "";
    const opt = select.selectedOptions[0];
    document.getElementById("service-description").textContent = opt && opt.value ? opt.title : "";
    for (const a of config.attributes[select.value] || []) {
      const name = `attribute[${a.code}]`;
      const wrap = document.createElement("div");
      wrap.className = "mb-3";
      const label = document.createElement("label");
      label.className = "form-label fw-semibold";
      label.htmlFor = `attr-${a.code}`;
      label.textContent = a.label + (a.required ? " *" : "");
      wrap.appendChild(label);
      let input;
      if (a.datatype === "singlevaluelist" || a.datatype === "multivaluelist") {
        input = document.createElement("select");
        input.className = "form-select";
        input.multiple = a.datatype === "multivaluelist";
        if (!input.multiple) input.add(new Option(T.choose_value, ""));
        for (const v of a.values) input.add(new Option(v.name, v.key));
      } else {
        input = document.createElement(a.datatype === "text" ? "textarea" : "input");
        input.className = "form-control";
        if (a.datatype === "number") { input.type = "number"; input.step = "any"; input.inputMode = "decimal"; }
        if (a.datatype === "datetime") input.type = "datetime-local";
      }
      input.id = `attr-${a.code}`;
      input.name = name;
      input.dataset.datatype = a.datatype;
      wrap.appendChild(input);
      const err = document.createElement("div");
      err.className = "invalid-feedback";
      err.dataset.errorFor = name;
      wrap.appendChild(err);
      attrBox.appendChild(wrap);
    }
  }
  select.addEventListener("change", () => { clearError("service_code"); renderAttributes(); });

  // --- photos: previews, at most MAX, each checked for type and size before sending ---------
  function renderPreviews() {
    previews.textContent = "";
    files.forEach((f, i) => {
      const fig = document.createElement("figure");
      const img = document.createElement("img");
      img.src = URL.createObjectURL(f);
      img.alt = fill(T.photo_n, { n: i + 1 });
      img.onload = () => URL.revokeObjectURL(img.src);
      const cap = document.createElement("figcaption");
      cap.textContent = f.name;
      const rm = document.createElement("button");
      rm.type = "button";
      rm.className = "btn btn-sm btn-light rp-remove";
      rm.textContent = "×";
      rm.title = T.remove_photo;
      rm.setAttribute("aria-label", T.remove_photo);
      rm.addEventListener("click", () => { files.splice(i, 1); clearError("media"); renderPreviews(); });
      fig.append(img, rm, cap);
      previews.appendChild(fig);
    });
  }
  fileInput.addEventListener("change", () => {
    const problems = [];
    for (const f of Array.from(fileInput.files)) {
      if (files.length >= config.max_photos) { problems.push(fill(T.err_too_many, { max: config.max_photos })); break; }
      if (f.type && !ACCEPTED.includes(f.type)) { problems.push(fill(T.err_not_image, { name: f.name })); continue; }
      if (f.size > config.max_bytes) { problems.push(fill(T.err_too_large, { name: f.name, mb: config.max_mb })); continue; }
      files.push(f);
    }
    fileInput.value = "";
    renderPreviews();
    if (problems.length) showError("media", problems); else clearError("media");
  });

  // --- errors beside their fields ------------------------------------------------------------
  const summary = document.getElementById("report-errors");
  function slotFor(field) {
    if (["lat", "long", "address_string", "address_id"].includes(field)) field = "location";
    if (field === "last_name") field = "first_name";
    return form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
  }
  function showError(field, messages) {
    const slot = slotFor(field);
    if (!slot) return false;
    slot.textContent = "";
    for (const m of messages) { const d = document.createElement("div"); d.textContent = m; slot.appendChild(d); }
    slot.classList.add("rp-shown");
    const input = slot.parentElement.querySelector("input:not([type=hidden]), select, textarea");
    if (input) input.classList.add("is-invalid");
    if (field === "location" || ["lat", "long"].includes(field)) mapEl.classList.add("border-danger");
    return true;
  }
  function clearError(field) {
    const slot = slotFor(field);
    if (!slot) return;
    slot.textContent = "";
    slot.classList.remove("rp-shown");
    const input = slot.parentElement.querySelector(".is-invalid");
    if (input) input.classList.remove("is-invalid");
    if (field === "location") mapEl.classList.remove("border-danger");
  }
  function clearAll() {
    form.querySelectorAll("[data-error-for]").forEach((s) => clearError(s.dataset.errorFor));
    summary.hidden = true;
    summary.textContent = "";
  }
  function showSummary(head, lines) {
    summary.textContent = "";
    const p = document.createElement("p");
    p.className = "mb-1";
    p.textContent = head;
    summary.appendChild(p);
    if (lines.length) {
      const ul = document.createElement("ul");
      ul.className = "mb-0";
      for (const l of lines) { const li = document.createElement("li"); li.textContent = l; ul.appendChild(li); }
      summary.appendChild(ul);
    }
    summary.hidden = false;
    summary.scrollIntoView({ block: "nearest" });
  }
  /** The server's problems (api/errors.py: errors[] of {field, reason, row?}) beside their fields. */
  function showServerErrors(body) {
    const byField = {};
    const loose = [];
    for (const e of body.errors || []) {
      const text = e.row ? `${fill(T.photo_n, { n: e.row })}: ${e.reason}` : e.reason;
      if (e.field && slotFor(e.field)) (byField[e.field] = byField[e.field] || []).push(text);
      else loose.push(text);
    }
    for (const [field, messages] of Object.entries(byField)) showError(field, messages);
    if (!body.errors || !body.errors.length) loose.push(body.detail || "");
    showSummary(loose.length && !Object.keys(byField).length ? T.err_server : T.fix_errors, loose);
  }

  // --- sending ---------------------------------------------------------------------------------
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearAll();
    let ok = true;
    if (!select.value) { showError("service_code", [T.err_category]); ok = false; }
    if (!latInput.value) { showError("location", [T.err_location]); ok = false; }
    if (files.length > config.max_photos) { showError("media", [fill(T.err_too_many, { max: config.max_photos })]); ok = false; }
    if (!ok) { showSummary(T.fix_errors, []); return; }
    const data = new FormData();
    for (const el of form.querySelectorAll("input[name], select[name], textarea[name]")) {
      if (el.type === "file") continue;
      if (el.multiple) { for (const o of el.selectedOptions) data.append(el.name, o.value); continue; }
      if (el.value.trim() === "") continue;
      let value = el.value;
      if (el.dataset.datatype === "datetime") value = GeoIOC.fmt.vnInputToDate(value).toISOString();
      data.append(el.name, value);
    }
    for (const f of files) data.append("media", f, f.name);
    submit.disabled = true;
    submit.textContent = T.sending;
    let response;
    try {
      response = await fetch(`/api/reports?lang=${lang}`, {
        method: "POST", body: data, credentials: "same-origin", headers: { Accept: "application/json" } });
    } catch (e) {
      showSummary(T.err_network, []);
      submit.disabled = false;
      submit.textContent = T.submit;
      return;
    }
    submit.disabled = false;
    submit.textContent = T.submit;
    let body = {};
    try { body = await response.json(); } catch (e) { body = {}; }
    if (response.status !== 201) { showServerErrors(body); return; }
    done(body);
  });

  function done(body) {
    form.hidden = true;
    const section = document.getElementById("report-done");
    document.getElementById("report-code").textContent = body.token;
    document.getElementById("report-expected").textContent = body.expected_at
      ? `${T.done_expected} ${GeoIOC.fmt.dateTime(body.expected_at)}` : "";
    const dup = document.getElementById("report-duplicate");
    if (body.duplicate_of) { dup.textContent = fill(T.done_duplicate, { id: body.duplicate_of }); dup.hidden = false; }
    document.getElementById("report-track-link").href =
      body.tracking_url + (lang === "en" ? "?lang=en" : "");
    section.hidden = false;
    section.scrollIntoView({ block: "start" });
  }
})();
