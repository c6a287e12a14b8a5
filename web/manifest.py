"""The map's layer manifest: what the caller may see and how to draw it, derived from the layer
catalogue (layers/catalogue.py) and the access rules (layers/access.py).

The map page is the same HTML for everyone (web/map_page.py); what differs per caller is this
manifest, fetched by the page's script from /api/map/layers once sign-in state is known. A layer
the caller may not read is simply absent, with its fields, legend and filters: nothing in the
manifest names it. Titles, field labels, legends and palettes come from the catalogue's coded
values and from the land_use_codes table, never written a second time here.

How a layer is drawn comes from the catalogue too (Layer.map_kind, Layer.map_visible): tiles or
features by geometry type unless the layer needs a view of its own (incidents: filtered clusters
and a heatmap; cameras: fields of view; sensors: latest value against threshold, read from the
observations table).

The legend is what the map draws, symbol by symbol: `legend` holds one entry per value of the
style's coded field (its colour, and the symbol: a filled area, a line with its width and dash, a
point with its outline), `legend_more` the rest of what is drawn (line widths by road class,
severity rings, clusters, stale readings, fields of view, the heatmap's ramp, the units before the
reform). The map's drawing code reads colours, widths and dashes from these same entries.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gis import fmt
from gis.analysis import suppression
from gis.analysis.hotspots import CATEGORY_COLORS, CATEGORY_WORDS, CLASS_COLORS, CLASS_TITLES
from gis.auth.roles import ROLE_TITLES
from gis.maps.reference import Reference
from layers.access import (
    ADMIN,
    Principal,
    aggregate_read,
    can_read,
    readable_fields,
    readable_layers,
    row_filter,
)
from layers.catalogue import DOMAINS, LAYERS, PROVINCE_BBOX, gazetteer, get_layer, label_field
from layers.model import Layer

# How each layer reaches the map. "tiles": OGC vector tiles (polygons and lines of any size);
# "features": OGC items for the visible bbox (a few hundred points at most).
# Categorical colours for coded fields whose layer style gives no palette of its own.
QUALITATIVE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
               "#1f78b4", "#b2df8a", "#fb9a99")
# Sensors: the latest value against the station's alert threshold.
SENSOR_STATES = {
    "ok": ("Dưới 80% ngưỡng", "Below 80% of threshold", "#1a9850"),
    "warn": ("80–100% ngưỡng", "80–100% of threshold", "#fdae61"),
    "over": ("Vượt ngưỡng", "Limit breached", "#d73027"),  # above, or an open low-side alert
    "none": ("Không có số liệu 24 giờ", "No reading in 24 h", "#9e9e9e"),
}
SENSOR_OUTLINE = "#0f172a"
STALE = ("Số liệu cũ hơn 24 giờ (viền nét đứt)", "Reading older than 24 h (dashed outline)")
SEVERITY_COLORS = {"1": "#74add1", "2": "#fee090", "3": "#f46d43", "4": "#a50026"}
# Administrative units of the selected era: current ones in slate, those before the reform in
# purple, dashed.
ERA_COLORS = {"current": "#334155", "previous": "#7b3294"}
# The density overlay's colours: gis.analysis.density.RAMP (web/ may not import gis/; a test
# checks they are the same). The classes' numbers come with the data (incidents/km²).
HEATMAP_RAMP = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#bd0026",
                "#800026")
HEATMAP_GRADIENT = {f"{(i + 1) / len(HEATMAP_RAMP):.3f}": c for i, c in enumerate(HEATMAP_RAMP)}
HEATMAP = {
    "id": "incidents_heatmap",
    "title": {"vi": "Mật độ sự cố (sự cố/km²)", "en": "Incident density (incidents/km²)"},
    "description": {"vi": "Mật độ nhân (bán kính 500 m) theo bộ lọc, thang màu cố định.",
                    "en": "Kernel density (500 m bandwidth) for the current filters, fixed "
                          "colour scale."},
}
DERIVED = (
    {"id": "incident_rates", "measure": "rates", "source": "/api/incidents/rates",
     "params": {"format": "geojson", "measure": "per_1000"},
     "title": {"vi": "Tỷ lệ sự cố theo xã (trên 1.000 dân)",
               "en": "Incident rate by commune (per 1,000 residents)"},
     "description": {"vi": "Bản đồ phân tầng, ngắt lớp tự nhiên (Fisher-Jenks).",
                     "en": "Choropleth, natural breaks (Fisher-Jenks)."}},
    {"id": "incident_change", "measure": "change", "source": "/api/incidents/change",
     "params": {"against": "previous"},
     "title": {"vi": "Thay đổi số sự cố theo xã", "en": "Change in incidents by commune"},
     "description": {"vi": "So với kỳ liền trước cùng độ dài.",
                     "en": "Against the previous window of the same length."}},
    # Grid counts and per-cell change (/api/incidents/grid, /change?by=grid): the same filters,
    # the legend in incidents per cell, resp. diverging by direction and size of the change.
    {"id": "incident_grid", "measure": "grid", "source": "/api/incidents/grid",
     "params": {"shape": "hexagon", "size": "500"},
     "title": {"vi": "Số sự cố theo ô lưới (lục giác 500 m)",
               "en": "Incidents per grid cell (500 m hexagons)"},
     "description": {"vi": "Đếm sự cố trong từng ô lục giác 500 m theo bộ lọc, ngắt lớp tự "
                           "nhiên; bấm vào ô để xem số sự cố.",
                     "en": "Incidents counted per 500 m hexagon for the current filters, natural "
                           "breaks; click a cell for its count."}},
    {"id": "incident_change_grid", "measure": "change", "source": "/api/incidents/change",
     "params": {"against": "previous", "by": "grid", "shape": "hexagon", "size": "1000"},
     "title": {"vi": "Thay đổi số sự cố theo ô lưới (lục giác 1 km)",
               "en": "Change in incidents per grid cell (1 km hexagons)"},
     "description": {"vi": "Mỗi ô lục giác 1 km so với kỳ liền trước cùng độ dài: tăng (đỏ) "
                           "hay giảm (xanh) và bao nhiêu; bấm vào ô để xem số liệu.",
                     "en": "Each 1 km hexagon against the previous window of the same length: "
                           "up (red) or down (blue) and by how much; click a cell for its "
                           "figures."}},
)
# The change overlays' diverging ramp, fewer (blue) to more (red): the API's legend
# (api/routes/incident_density.CHANGE_COLORS; a test checks they are the same).
CHANGE_RAMP = ("#2166ac", "#67a9cf", "#d1e5f0", "#f7f7f7", "#fddbc7", "#ef8a62", "#b2182b")
# Significant hot and cold spots (Gi*) and emerging hot spots, on 1 km hexagons (a few hundred
# cells over the province); the emerging layer reads the twelve months up to the window's end
# (monthly bins: the ten bins a trend needs whatever window is chosen). Colours and titles:
# gis.analysis.hotspots, as on the dashboard and in the briefing.
HOTSPOT_LAYERS = (
    {"id": "incident_hotspots", "measure": "hotspots", "source": "/api/incidents/hotspots",
     "params": {"cell_m": "1000"},
     "title": {"vi": "Điểm nóng/lạnh sự cố (Gi*)", "en": "Incident hot and cold spots (Gi*)"},
     "description": {"vi": "Getis-Ord Gi* trên lưới lục giác 1 km, p hiệu chỉnh FDR; bấm vào ô "
                           "để xem lý do.",
                     "en": "Getis-Ord Gi* on 1 km hexagons, FDR-corrected p; click a cell for "
                           "why it is classed."},
     "style": {"classes": CLASS_COLORS},
     "legend": [{"value": k, "symbol": "fill", "color": c, "outline": "#475569", "opacity": 0.8,
                 "label": {"vi": CLASS_TITLES[k][0], "en": CLASS_TITLES[k][1]}}
                for k, c in CLASS_COLORS.items()]},
    {"id": "incident_emerging", "measure": "emerging", "source": "/api/incidents/hotspots/emerging",
     "params": {"cell_m": "1000", "bin": "monthly"}, "months": 12,
     "title": {"vi": "Xu hướng điểm nóng (12 tháng)", "en": "Emerging hot spots (12 months)"},
     "description": {"vi": "Phân tích điểm nóng theo không gian - thời gian, 12 tháng đến hết kỳ "
                           "lọc, xu hướng Mann-Kendall.",
                     "en": "Space-time hot-spot analysis, the 12 months up to the window's end, "
                           "Mann-Kendall trend."},
     "style": {"categories": CATEGORY_COLORS},
     "legend": [{"value": k, "symbol": "fill", "color": c, "outline": "#475569", "opacity": 0.8,
                 "label": {"vi": f"Điểm {'nóng' if k.endswith('_hot') else 'lạnh'} "
                                 f"{CATEGORY_WORDS[k.rsplit('_', 1)[0]][0]}",
                           "en": f"{CATEGORY_WORDS[k.rsplit('_', 1)[0]][1].capitalize()} "
                                 f"{k.rsplit('_', 1)[1]} spot"}}
                for k, c in CATEGORY_COLORS.items()]},
)
# Symbols of the legend (web/static/map/panels.js draws each).
FILL, LINE, POINT = "fill", "line", "point"
CLUSTER = {"vi": "Cụm điểm (số điểm; phóng to hoặc bấm để tách)",
                      "en": "Cluster (number of points; zoom in or click to split)"}


def _both(vi: str, en: str) -> dict[str, str]:
    return {"vi": vi, "en": en}


def _symbol(layer: Layer) -> dict:
    """How one feature of LAYER is drawn, as the legend shows it."""
    s = layer.style
    if layer.geometry_type == "Point":
        return {"symbol": POINT, "outline": "#ffffff"}
    if "LineString" in layer.geometry_type:
        return {"symbol": LINE, "weight": s.weight}
    return {"symbol": FILL, "outline": s.color, "opacity": s.fill_opacity}


def _palette(layer: Layer, ref: Reference) -> tuple[dict[str, str], list[dict]]:
    """(value -> colour, legend entries) for the layer's categorical style."""
    style = layer.style
    symbol = _symbol(layer)
    if style.by and layer.field(style.by).refers_to == "land_use":
        palette = {lu["code"]: lu["color"] for lu in ref.land_use}
        held = ref.land_use_in.get(layer.id, set())
        legend = [{"value": lu["code"], "label": _both(f"{lu['code']} – {lu['name_vi']}",
                                                     f"{lu['code']} – {lu['name_en']}"),
                   "color": lu["color"], **symbol} for lu in ref.land_use if lu["code"] in held]
        return palette, legend
    if not style.by:
        color = style.fill_color or style.color
        return {}, [{"value": None, "label": _both(layer.title_vi, layer.title_en),
                     "color": color, **symbol}]
    values = layer.field(style.by).values
    palette = dict(style.palette) or {v: QUALITATIVE[i % len(QUALITATIVE)]
                                      for i, v in enumerate(values)}
    legend = [{"value": v, "label": _both(*values[v]) if v in values else _both(v, v),
               "color": c, **symbol} for v, c in palette.items()]
    return palette, legend


def _widths(layer: Layer, color: str) -> list[dict]:
    """Line widths (and dashes) by a coded field: road classes, administrative levels."""
    s = layer.style
    if not s.width_by:
        return []
    field = layer.field(s.width_by)
    group = _both(field.title_vi, field.title_en)
    out = []
    for value, width in s.widths.items():
        vi, en = field.values.get(value, (value, value))
        if value in s.min_zooms:
            vi, en = f"{vi} (từ mức {s.min_zooms[value]})", f"{en} (from zoom {s.min_zooms[value]})"
        out.append({"value": value, "label": _both(vi, en), "color": color, "symbol": LINE,
                    "weight": width, "dash": s.dashes.get(value), "group": group,
                    "min_zoom": s.min_zooms.get(value, 0)})
    return out


def _fields(layer: Layer, who: Principal) -> list[dict]:
    return [{"name": f.name, "title": _both(f.title_vi, f.title_en), "type": f.type,
             **({"decimals": f.decimals} if f.decimals is not None else {}),
             **({"values": {k: _both(*v) for k, v in f.values.items()}} if f.values else {}),
             **({"ref": f.refers_to} if f.refers_to else {})}
            for f in readable_fields(layer, who)]


def _hidden_values(layer: Layer, who: Principal) -> dict[str, set[str]]:
    """Coded values whose rows this caller may not see (a filter must not offer them)."""
    if row_filter(layer, who) is None:
        return {}
    hidden: dict[str, set[str]] = {}
    for rule in layer.row_rules:
        if ADMIN not in who.roles and not who.roles & set(rule.roles):
            hidden.setdefault(rule.field, set()).update(rule.values)
    return hidden


def layer_entry(layer: Layer, who: Principal, ref: Reference) -> dict:
    kind = layer.map_kind or ("tiles" if layer.geometry_type != "Point" else "features")
    palette, legend = _palette(layer, ref)
    s = layer.style
    entry: dict = {
        "id": layer.id,
        "title": _both(layer.title_vi, layer.title_en),
        "description": _both(layer.description_vi, layer.description_en),
        "domain": layer.domain,
        "geometry": layer.geometry_type,
        "kind": kind,
        "min_zoom": layer.min_zoom,
        "max_zoom": layer.max_zoom,
        "visible": layer.map_visible,
        "bbox": ref.extents.get(layer.id, list(PROVINCE_BBOX)),
        "style": {"color": s.color, "fill_color": s.fill_color or s.color, "weight": s.weight,
                  "fill_opacity": s.fill_opacity, "radius": s.radius, "by": s.by,
                  "palette": palette},
        "legend": legend,
        "legend_more": [],
        "fields": _fields(layer, who),
        "item_url": f"/ogc/collections/{layer.id}/items",
        # A click asks the server (/api/map/identify) what of this layer is there.
        "identify": layer.identify,
        "label_field": label_field(layer),
        "label_priority": layer.label_priority,
        "search_fields": list(layer.search_fields),
    }
    if s.width_by:
        entry["style"].update(width_by=s.width_by, widths=dict(s.widths), dashes=dict(s.dashes),
                              min_zooms=dict(s.min_zooms))
    if s.by:
        by = layer.field(s.by)
        for e in legend:
            e["group"] = _both(by.title_vi, by.title_en)
    if kind == "tiles":
        entry["source"] = f"/ogc/collections/{layer.id}/tiles/WebMercatorQuad/{{z}}/{{y}}/{{x}}"
    elif kind == "features":
        entry["source"] = f"/ogc/collections/{layer.id}/items"
    else:
        entry["source"] = {"cameras": "/api/map/cameras", "sensors": "/api/map/sensors",
                           "incidents": f"/api/{layer.id}/points"}[kind]
    is_gazetteer = layer is gazetteer()
    if is_gazetteer:
        entry["gazetteer"] = True
        entry["labels_url"] = "/api/map/labels"
        if layer.identify_filter:
            entry["identify_filter"] = list(layer.identify_filter)
    if is_gazetteer:
        # Boundaries by level (the width and dash of each), in the current era's colour.
        entry["legend"] = _widths(layer, ERA_COLORS["current"])
        for e in entry["legend"]:
            e.pop("group", None)
    elif s.width_by:
        entry["legend_more"] = _widths(layer, "#64748b")
    if is_gazetteer and ref.reform_date:
        before = dt.date.fromisoformat(ref.reform_date) - dt.timedelta(days=1)
        since, until = fmt.date(ref.reform_date), fmt.date(before)
        entry["eras"] = [
            {"id": "current", "as_of": None, "color": ERA_COLORS["current"],
             "title": _both(f"Hiện hành (từ {since})", f"Current (from {since})")},
            {"id": "previous", "as_of": before.isoformat(), "color": ERA_COLORS["previous"],
             "title": _both(f"Trước sắp xếp ({until})", f"Before the reform ({until})")},
        ]
        entry["legend_more"] = [{"value": "previous", "symbol": LINE, "weight": 1.1, "dash": "6 4",
                                 "color": ERA_COLORS["previous"],
                                 "label": _both("Ranh giới trước sắp xếp 2025 (khi chọn Trước 2025)",
                                                "Boundaries before the 2025 reform (Before 2025)")}]
    if kind in ("features", "cameras", "sensors"):
        entry["legend_more"].append({"symbol": "cluster", "color": s.color, "label": CLUSTER})
    if kind == "cameras":
        # The health panel and the popup's snapshot (api/routes/cameras.py).
        entry["health_url"] = "/api/cameras/health"
        entry["snapshot_url"] = "/api/cameras/{code}/snapshot/thumb"
        entry["legend_more"].append({
            "symbol": FILL, "color": s.color, "opacity": 0.12, "outline": s.color,
            "label": _both("Vùng quan sát (từ mức 13)", "Field of view (from zoom 13)")})
    if kind == "sensors":
        entry["legend"] = [{"value": k, "label": _both(vi, en), "color": c, "symbol": POINT,
                            "outline": SENSOR_OUTLINE,
                            "group": _both("Giá trị mới nhất so với ngưỡng",
                                           "Latest value against threshold")}
                           for k, (vi, en, c) in SENSOR_STATES.items()]
        entry["legend_more"].insert(0, {"value": "stale", "symbol": POINT, "color": "#9e9e9e",
                                        "outline": SENSOR_OUTLINE, "dash": "2 3", "opacity": 0.5,
                                        "label": _both(*STALE)})
    if kind == "incidents":
        hidden = _hidden_values(layer, who)

        def coded(name: str, colors: dict[str, str]) -> list[dict]:
            return [{"value": v, "label": _both(*labels), "color": colors.get(v)}
                    for v, labels in layer.field(name).values.items()
                    if v not in hidden.get(name, set())]

        entry["filters"] = {"category": coded("category", palette),
                            "severity": coded("severity", SEVERITY_COLORS),
                            "status": coded("status", {})}
        entry["legend"] = [e for e in legend if e["value"] not in hidden.get(s.by or "", set())]
        severity = layer.field("severity")
        entry["legend_more"] = [
            {"value": v, "symbol": "ring", "color": c,
             "label": _both(*severity.values[v]), "group": _both(severity.title_vi, severity.title_en)}
            for v, c in SEVERITY_COLORS.items()] + [
            {"symbol": "cluster", "color": s.color, "outline": SEVERITY_COLORS["4"],
             "label": _both("Cụm sự cố (màu: lĩnh vực nhiều nhất, viền: mức độ cao nhất)",
                            "Incident cluster (colour: most frequent category, ring: highest "
                            "severity)")}]
        entry["stats_url"] = f"/api/{layer.id}/stats"
        entry["cameras_url"] = f"/api/{layer.id}/{{id}}/cameras"
    return entry


LEGEND_NOTES = {
    "rates": _both("Các lớp và số liệu: chú giải trên bản đồ", "Classes and figures: the map legend"),
    "grid": _both("Ít → nhiều sự cố mỗi ô (các lớp: chú giải trên bản đồ)",
                  "Few → many incidents per cell (classes: the map legend)"),
    "change": _both("Giảm (xanh) → tăng (đỏ) so với kỳ trước (các mức: chú giải trên bản đồ)",
                    "Down (blue) → up (red) against the previous window (levels: the map legend)"),
}


def aggregate_entries(layer: Layer, bbox: list[float], min_count: int = 0) -> list[dict]:
    """The heatmap and the commune choropleths of LAYER's counts: for a caller who reads the
    layer (MIN_COUNT 0), and for one who may read only its aggregates (the public: counts
    under MIN_COUNT hidden; `suppression` carries the note, also added to the description;
    the map's legends show the one the data comes with)."""
    common = {"domain": layer.domain, "derived_from": layer.id, "min_zoom": layer.min_zoom,
              "max_zoom": layer.max_zoom, "visible": False, "bbox": bbox, "legend_more": [],
              "fields": [], "label_priority": 0}
    out: list[dict] = [{
        **HEATMAP, **common, "geometry": "Point", "kind": "heatmap",
        "source": f"/api/{layer.id}/density", "cell_m": 100, "bandwidth_m": 500,
        "style": {"gradient": HEATMAP_GRADIENT},
        "legend": [{"value": None, "symbol": "gradient", "color": HEATMAP_RAMP[-1],
                    "gradient": list(HEATMAP_RAMP),
                    "label": _both("Ít → nhiều sự cố/km² (thang cố định; số trên chú giải bản đồ)",
                                   "Few → many incidents/km² (fixed scale; figures in the map "
                                   "legend)")}]}]
    for d in DERIVED:
        out.append({
            **d, **common, "geometry": "Polygon", "kind": "choropleth",
            "style": {"color": "#334155", "fill_color": HEATMAP_RAMP[4]},
            "legend": [{"value": None, "symbol": "gradient", "color": HEATMAP_RAMP[-1],
                        "gradient": list(CHANGE_RAMP) if d["measure"] == "change"
                        else list(HEATMAP_RAMP),
                        "label": LEGEND_NOTES[d["measure"]]}]})
    if min_count:
        note = suppression.note(min_count)
        for e in out:
            e["suppression"] = {"min_count": min_count, "note": note}
            e["description"] = {lang: f"{e['description'][lang]} {note[lang]}" for lang in note}
    return out


def manifest(ref: Reference, who: Principal) -> dict:
    """Everything the map client needs to draw what WHO may read (REF: the database's part,
    gis.maps.reference, read by the caller: pages never touch the database)."""
    layers = []
    for layer in readable_layers(who):
        if layer.map_kind == "none":  # served to other clients, not drawn on the map
            continue
        entry = layer_entry(layer, who, ref)
        layers.append(entry)
        if entry["kind"] == "incidents":
            layers.extend(aggregate_entries(layer, entry["bbox"]))
            for d in HOTSPOT_LAYERS:
                layers.append({**d, "domain": layer.domain, "geometry": "Polygon",
                               "kind": "choropleth", "derived_from": layer.id,
                               "min_zoom": layer.min_zoom, "max_zoom": layer.max_zoom,
                               "visible": False, "bbox": entry["bbox"],
                               "legend_more": [], "fields": [], "label_priority": 0})
    # Counts of layers whose rows WHO may not read but whose aggregates are public (incidents:
    # layers.model.Aggregates), with small counts hidden and the legend saying so.
    for layer in LAYERS:
        agg = aggregate_read(layer.id, who)
        if layer.map_kind == "incidents" and agg is not None and agg.suppressed:
            layers.extend(aggregate_entries(layer, ref.extents.get(layer.id, list(PROVINCE_BBOX)),
                                            agg.min_count))
    domains = [{"id": d, "title": _both(*DOMAINS[d])} for d in DOMAINS
               if any(e["domain"] == d for e in layers)]
    units = next((e["id"] for e in layers if e.get("gazetteer")), None)
    bbox = ref.extents.get(units, list(PROVINCE_BBOX)) if units else list(PROVINCE_BBOX)
    # Names of the codes fields refer to (a commune code, a land-use code), for the detail
    # panel: the gazetteer's only for a caller who may read it.
    names: dict[str, dict] = {"land_use": {lu["code"]: _both(lu["name_vi"], lu["name_en"])
                                           for lu in ref.land_use}}
    if units:
        names["gazetteer"] = ref.unit_names
    return {
        "principal": {"user": who.user, "roles": sorted(who.roles),
                      "role_titles": {r: _both(*ROLE_TITLES[r]) for r in sorted(who.roles)
                                      if r in ROLE_TITLES}},
        "bbox": bbox,
        "gazetteer": units,
        "domains": domains,
        "layers": layers,
        "names": names,
        "live": LIVE,
    }


# The live map (web/static/map/live.js): its event stream and the sensor chart's series. A
# camera's health colour and road congestion are drawn in their layers' own palettes (the
# catalogue's), so a status has one colour wherever it shows.
LIVE: dict[str, Any] = {
    "events": "/api/map/events",
    "series": "/api/map/series",
}


def can_read_id(layer_id: str, who: Principal) -> bool:
    try:
        return can_read(get_layer(layer_id), who)
    except KeyError:
        return False
