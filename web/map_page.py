"""The command map page (`/`), generated with folium.

What folium does here: the HTML document, the Leaflet map (centre, zoom range, fit to the
province, scale bar, an optional basemap from settings.basemap_url) and the collection of
JavaScript/CSS assets. What it does not do: the layers. Folium embeds layer data in the page,
and this map must load everything live from the API, per caller (a signed-in officer sees more
than a visitor). So the page carries the public layer manifest for a fast first paint and a few
small scripts of our own (web/static/map/*.js) that build the layers, panels, filters and search
from the manifest (/api/map/layers once sign-in state is known).

Offline: folium's defaults load Leaflet, jQuery, Bootstrap, Font Awesome and every plugin from
CDNs, and the page draws nothing without internet. localize() rewrites each asset folium (or a
folium plugin we use the JavaScript of) asks for to our vendored copy under web/static/vendor
(served at /ogc/static/vendor), drops the ones the page does not need, and refuses an asset it
has no copy of, so a folium upgrade that adds a CDN asset fails loudly instead of going online.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from urllib.parse import urlsplit

import folium
from branca.element import Element, Figure, MacroElement
from folium.plugins import HeatMap, MarkerCluster, VectorGridProtobuf
from folium.template import Template

from gis.settings import Settings

STATIC_URL = "/ogc/static"
STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDOR = "vendor"
# folium asset name -> our copy (relative to web/static).
LOCAL_ASSETS: dict[str, str] = {
    "leaflet": f"{VENDOR}/leaflet/leaflet.js",
    "leaflet_css": f"{VENDOR}/leaflet/leaflet.css",
    "bootstrap_css": f"{VENDOR}/bootstrap/css/bootstrap.min.css",
    "markerclusterjs": f"{VENDOR}/leaflet.markercluster/leaflet.markercluster.js",
    "markerclustercss": f"{VENDOR}/leaflet.markercluster/MarkerCluster.css",
    "markerclusterdefaultcss": f"{VENDOR}/leaflet.markercluster/MarkerCluster.Default.css",
    "leaflet-heat.js": f"{VENDOR}/leaflet.heat/leaflet-heat.js",
    "vectorGrid": f"{VENDOR}/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js",
}
# folium defaults this page has no use for: jQuery (folium's Map template needs it only for
# objects kept in front), Bootstrap's JS, awesome-markers and their icon fonts.
UNUSED_ASSETS = frozenset({"jquery", "bootstrap", "awesome_markers", "glyphicons_css",
                           "awesome_markers_font_css", "awesome_markers_css",
                           "awesome_rotate_css"})
# Plugins whose JavaScript the map client uses (it creates the layers itself, from live data).
PLUGINS = (VectorGridProtobuf, MarkerCluster, HeatMap)
# Our own client, after the libraries (order matters: each file extends window.GeoIOC).
CLIENT_JS = ("common/format.js", "vendor/uplot/uPlot.iife.min.js", "map/i18n.js", "map/session.js",
             "map/layers.js", "map/labels.js", "map/panels.js", "map/console.js", "map/live.js",
             "map/chart.js", "map/app.js")
CLIENT_CSS = ("vendor/uplot/uPlot.min.css", "map/map.css")

TITLES = {
    "vi": ("Bản đồ điều hành", "GeoIOC – Nền tảng GIS mở cho Trung tâm điều hành thông minh"),
    "en": ("Command map", "GeoIOC – open GIS platform for an Intelligent Operations Center"),
}
NOSCRIPT = {
    "vi": "Bản đồ cần JavaScript. Các lớp dữ liệu công khai cũng có qua OGC API tại /ogc.",
    "en": "The map needs JavaScript. The public layers are also available as OGC API at /ogc.",
}


class AssetNotVendored(LookupError):
    """folium asked for a CDN asset we have no local copy of."""


def static_url(relative: str) -> str:
    return f"{STATIC_URL}/{relative}"


def localize(assets: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """folium's (name, CDN URL) list with every URL replaced by our copy; unused ones dropped."""
    out = []
    for name, url in assets:
        if name in UNUSED_ASSETS:
            continue
        if name not in LOCAL_ASSETS:
            raise AssetNotVendored(f"folium asset {name!r} ({url}) has no copy in web/static/vendor "
                                   "(add it to scripts/vendor_assets.sh and LOCAL_ASSETS)")
        out.append((name, static_url(LOCAL_ASSETS[name])))
    return out


class Page(Figure):
    """branca's Figure with a language and a colour theme on <html>."""

    _template = Template(
        "<!DOCTYPE html>\n"
        '<html lang="{{ this.lang }}" data-bs-theme="dark">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        "<title>{{ this.title|e }}</title>\n"
        "{{ this.header.render(**kwargs) }}\n"
        "</head>\n"
        "<body>\n"
        "{{ this.html.render(**kwargs) }}\n"
        "</body>\n"
        "<script>\n"
        "{{ this.script.render(**kwargs) }}\n"
        "</script>\n"
        "</html>\n"
    )

    def __init__(self, lang: str, title: str) -> None:
        super().__init__(title=title)
        self.lang = lang


class MapClient(MacroElement):
    """Starts our client on the folium map (rendered after the map's own script)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        GeoIOC.start({{ this._parent.get_name() }},
            JSON.parse(document.getElementById("gi-config").textContent));
        {% endmacro %}
        """
    )


def _json_for_script(value: object) -> str:
    """JSON safe inside <script type=application/json> (no '</script>' can close it early); UTF-8
    text kept as is, so Vietnamese reads as Vietnamese in the page source."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(lang: str, settings: Settings, public_manifest: dict) -> str:
    """The whole page for LANG ('vi' or 'en'), with the anonymous layer manifest inlined."""
    short, long = TITLES[lang]
    page = Page(lang, f"{short} · {long}")
    west, south, east, north = public_manifest["bbox"]
    # The scale bar is app.js's (metric only: folium's would show miles too).
    m = folium.Map(location=[(south + north) / 2, (west + east) / 2], zoom_start=11, tiles=None,
                   control_scale=False, prefer_canvas=True, zoom_control="bottomright",
                   min_zoom=7, max_zoom=20, zoom_snap=0.5, worldCopyJump=False)
    page.add_child(m)
    # The map's own assets, then the plugins' and ours: all served by this server.
    m.default_js = [*localize(folium.Map.default_js),
                    *(a for plugin in PLUGINS for a in localize(plugin.default_js)),
                    *((f"geoioc_{Path(f).stem}", static_url(f)) for f in CLIENT_JS)]
    m.default_css = [*localize(folium.Map.default_css),
                     *(a for plugin in PLUGINS for a in localize(plugin.default_css)),
                     *((f"geoioc_{Path(f).stem}_css", static_url(f)) for f in CLIENT_CSS)]
    if settings.basemap_url:
        host = urlsplit(settings.basemap_url).hostname or "basemap"
        folium.TileLayer(tiles=settings.basemap_url, attr=html.escape(host), name="basemap",
                         max_zoom=20, control=False).add_to(m)
    # Leave room for the layer panel on the left and the top bar.
    m.fit_bounds([[south, west], [north, east]], padding_top_left=(340, 70),
                 padding_bottom_right=(20, 20))
    page.header.add_child(Element(
        f'<link rel="icon" href="{static_url("img/favicon.ico")}">'
        f'<meta name="description" content="{html.escape(long)}">'), name="geoioc_meta")
    config = {"lang": lang, "manifest": public_manifest,
              "basemap": bool(settings.basemap_url), "static": STATIC_URL}
    page.html.add_child(Element(_skeleton(lang, short, long) +
                                f'<script type="application/json" id="gi-config">'
                                f"{_json_for_script(config)}</script>"), name="geoioc_ui")
    MapClient().add_to(m)
    return page.render()


def _skeleton(lang: str, short: str, long: str) -> str:
    """The panels' empty frames; app.js fills them in the current language."""
    e = html.escape
    return f"""
<header class="gi-top" id="gi-top">
  <div class="gi-brand"><span class="gi-logo" aria-hidden="true"></span>
    <span><b>GeoIOC</b> <span class="gi-brand-title" data-i18n="app_title">{e(short)}</span>
    <small class="gi-brand-sub" data-i18n="app_subtitle">{e(long.removeprefix("GeoIOC – "))}</small>
    </span></div>
  <form class="gi-search" id="gi-search" role="search" autocomplete="off">
    <input id="gi-q" name="q" type="search" class="form-control form-control-sm"
           data-i18n-placeholder="search_placeholder" data-i18n-aria-label="search">
    <div class="gi-results" id="gi-results" role="listbox" hidden></div>
  </form>
  <div class="gi-top-right">
    <button type="button" class="btn btn-sm btn-outline-light gi-panel-toggle" id="gi-panel-toggle"
            aria-controls="gi-panel" aria-expanded="false" data-i18n="panel_toggle"></button>
    <button type="button" class="btn btn-sm btn-warning" id="gi-console-open" hidden
            aria-controls="gi-console" aria-expanded="false" data-i18n="console_toggle"></button>
    <span class="gi-clock" id="gi-clock"></span>
    <a class="btn btn-sm btn-warning" id="gi-report-link" href="/report{"?lang=en" if lang == "en" else ""}"
       data-i18n-title="report_problem_title"><span class="gi-long" data-i18n="report_problem"></span><span
       class="gi-short" data-i18n="report_short"></span></a>
    <button type="button" class="btn btn-sm btn-outline-light" id="gi-lang"></button>
    <span class="gi-user" id="gi-user" hidden></span>
    <button type="button" class="btn btn-sm btn-info" id="gi-signin-open" data-i18n="sign_in"></button>
    <button type="button" class="btn btn-sm btn-outline-light" id="gi-signout" hidden
            data-i18n="sign_out"></button>
  </div>
</header>
<aside class="gi-panel gi-closed" id="gi-panel">
  <section class="gi-filters" id="gi-filters" hidden></section>
  <section class="gi-layers" id="gi-layers"></section>
  <section class="gi-cam-health" id="gi-cam-health" hidden aria-live="polite"></section>
</aside>
<aside class="gi-console" id="gi-console" hidden aria-labelledby="gi-console-title">
  <div class="gi-console-head">
    <h2 class="gi-h" id="gi-console-title" data-i18n="console_title"></h2>
    <button type="button" class="btn-close btn-close-white" id="gi-console-close"
            data-i18n-aria-label="close"></button>
  </div>
  <form class="gi-console-filters" id="gi-console-filters" autocomplete="off">
    <input class="form-control form-control-sm" name="q" type="search"
           data-i18n-placeholder="console_search" data-i18n-aria-label="console_search">
    <select class="form-select form-select-sm" name="status" data-i18n-aria-label="console_status"></select>
    <select class="form-select form-select-sm" name="service" data-i18n-aria-label="console_service"></select>
    <select class="form-select form-select-sm" name="agency" data-i18n-aria-label="console_agency"></select>
    <select class="form-select form-select-sm" name="commune" data-i18n-aria-label="console_commune"></select>
    <label class="gi-console-check"><input type="checkbox" class="form-check-input" name="overdue">
      <span data-i18n="console_overdue_only"></span></label>
  </form>
  <div class="gi-console-count"><span id="gi-console-count"></span>
    <span class="gi-console-notice" id="gi-console-notice" role="status"></span></div>
  <div class="gi-bulk" id="gi-bulk">
    <label class="gi-console-check"><input type="checkbox" class="form-check-input" id="gi-bulk-all">
      <span id="gi-bulk-n"></span></label>
    <input class="form-control form-control-sm" id="gi-bulk-note" maxlength="4000"
           data-i18n-placeholder="console_note" data-i18n-aria-label="console_note">
    <div class="gi-bulk-row">
      <select class="form-select form-select-sm" id="gi-bulk-status"
              data-i18n-aria-label="console_choose_status"></select>
      <button type="button" class="btn btn-sm btn-outline-info" data-bulk="move"
              data-i18n="console_apply"></button></div>
    <div class="gi-bulk-row">
      <select class="form-select form-select-sm" id="gi-bulk-agency"
              data-i18n-aria-label="console_choose_agency"></select>
      <button type="button" class="btn btn-sm btn-outline-info" data-bulk="assign"
              data-i18n="console_assign"></button></div>
    <p class="gi-error" id="gi-bulk-error" hidden></p>
  </div>
  <ol class="gi-queue" id="gi-console-list"></ol>
</aside>
<aside class="gi-details" id="gi-details" hidden>
  <button type="button" class="btn-close btn-close-white gi-details-close" id="gi-details-close"
          data-i18n-aria-label="close"></button>
  <div id="gi-details-body"></div>
</aside>
<aside class="gi-chart" id="gi-chart" hidden aria-labelledby="gi-chart-title">
  <div class="gi-chart-head">
    <h2 id="gi-chart-title" data-i18n="chart_title"></h2>
    <div class="btn-group btn-group-sm" role="group">
      <button type="button" class="btn btn-outline-info" data-range="day" data-i18n="chart_day"></button>
      <button type="button" class="btn btn-outline-info" data-range="week" data-i18n="chart_week"></button>
      <button type="button" class="btn btn-outline-info" data-range="month" data-i18n="chart_month"></button>
    </div>
    <button type="button" class="btn-close btn-close-white" id="gi-chart-close"
            data-i18n-aria-label="close"></button>
  </div>
  <form class="gi-chart-custom" id="gi-chart-custom">
    <label><span data-i18n="from"></span>
      <input type="datetime-local" class="form-control form-control-sm" id="gi-chart-start"></label>
    <label><span data-i18n="to"></span>
      <input type="datetime-local" class="form-control form-control-sm" id="gi-chart-end"></label>
    <button type="submit" class="btn btn-sm btn-outline-info" data-i18n="chart_apply"></button>
    <select class="form-select form-select-sm" id="gi-chart-add" data-i18n-aria-label="chart_add"></select>
  </form>
  <p class="gi-error" id="gi-chart-error" hidden></p>
  <div class="gi-chart-plot" id="gi-chart-plot"></div>
  <ul class="gi-chart-series" id="gi-chart-series"></ul>
  <p class="gi-muted gi-chart-note" id="gi-chart-note"></p>
</aside>
<div class="gi-live-notice" id="gi-live-notice" role="status" hidden></div>
<div class="gi-status" id="gi-status"><span id="gi-coords"></span><span id="gi-busy"></span></div>
<div class="gi-modal" id="gi-signin" hidden>
  <form class="gi-signin-form" id="gi-signin-form">
    <h2 data-i18n="sign_in_title"></h2>
    <label class="form-label" for="gi-username" data-i18n="username"></label>
    <input class="form-control" id="gi-username" name="username" autocomplete="username" required>
    <label class="form-label" for="gi-password" data-i18n="password"></label>
    <input class="form-control" id="gi-password" name="password" type="password"
           autocomplete="current-password" required>
    <p class="gi-error" id="gi-signin-error" hidden></p>
    <div class="gi-signin-actions">
      <button type="button" class="btn btn-outline-light" id="gi-signin-cancel" data-i18n="cancel"></button>
      <button type="submit" class="btn btn-info" data-i18n="sign_in"></button>
    </div>
  </form>
</div>
<noscript><p class="gi-noscript">{e(NOSCRIPT[lang])}</p></noscript>
"""
