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
"""

from __future__ import annotations

import datetime as dt

from gis import fmt
from gis.auth.roles import ROLE_TITLES
from gis.maps.reference import Reference
from layers.access import ADMIN, Principal, can_read, readable_fields, readable_layers, row_filter
from layers.catalogue import DOMAINS, PROVINCE_BBOX, gazetteer, get_layer, label_field
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
    "over": ("Vượt ngưỡng", "Above threshold", "#d73027"),
    "none": ("Không có số liệu 24 giờ", "No reading in 24 h", "#9e9e9e"),
}
SEVERITY_COLORS = {"1": "#74add1", "2": "#fee090", "3": "#f46d43", "4": "#a50026"}
HEATMAP = {
    "id": "incidents_heatmap",
    "title": {"vi": "Bản đồ nhiệt sự cố", "en": "Incident heatmap"},
    "description": {"vi": "Mật độ sự cố theo bộ lọc (tổng hợp theo ô lưới).",
                    "en": "Incident density for the current filters (grid cells)."},
}


def _both(vi: str, en: str) -> dict[str, str]:
    return {"vi": vi, "en": en}


def _palette(layer: Layer, ref: Reference) -> tuple[dict[str, str], list[dict]]:
    """(value -> colour, legend entries) for the layer's categorical style."""
    style = layer.style
    if style.by in ("land_use_code", "land_use_codes"):
        palette = {lu["code"]: lu["color"] for lu in ref.land_use}
        legend = [{"value": lu["code"], "label": _both(f"{lu['code']} – {lu['name_vi']}",
                                                     f"{lu['code']} – {lu['name_en']}"),
                   "color": lu["color"]} for lu in ref.land_use if lu["in_use"]]
        return palette, legend
    if not style.by:
        return {}, []
    values = layer.field(style.by).values
    palette = dict(style.palette) or {v: QUALITATIVE[i % len(QUALITATIVE)]
                                      for i, v in enumerate(values)}
    legend = [{"value": v, "label": _both(*values[v]) if v in values else _both(v, v),
               "color": c} for v, c in palette.items()]
    return palette, legend


def _fields(layer: Layer, who: Principal) -> list[dict]:
    return [{"name": f.name, "title": _both(f.title_vi, f.title_en), "type": f.type,
             **({"decimals": f.decimals} if f.decimals is not None else {}),
             **({"values": {k: _both(*v) for k, v in f.values.items()}} if f.values else {})}
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
        "fields": _fields(layer, who),
        "item_url": f"/ogc/collections/{layer.id}/items",
        # A click asks the server (/api/map/identify) what of this layer is there.
        "identify": layer.identify,
        "label_field": label_field(layer),
        "search_fields": list(layer.search_fields),
    }
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
    if is_gazetteer and ref.reform_date:
        before = dt.date.fromisoformat(ref.reform_date) - dt.timedelta(days=1)
        since, until = fmt.date(ref.reform_date), fmt.date(before)
        entry["eras"] = [
            {"id": "current", "as_of": None,
             "title": _both(f"Hiện hành (từ {since})", f"Current (from {since})")},
            {"id": "previous", "as_of": before.isoformat(),
             "title": _both(f"Trước sắp xếp ({until})", f"Before the reform ({until})")},
        ]
    if kind == "sensors":
        entry["legend"] = [{"value": k, "label": _both(vi, en), "color": c}
                           for k, (vi, en, c) in SENSOR_STATES.items()]
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
        entry["stats_url"] = f"/api/{layer.id}/stats"
        entry["cameras_url"] = f"/api/{layer.id}/{{id}}/cameras"
    return entry


def manifest(ref: Reference, who: Principal) -> dict:
    """Everything the map client needs to draw what WHO may read (REF: the database's part,
    gis.maps.reference, read by the caller: pages never touch the database)."""
    layers = []
    for layer in readable_layers(who):
        entry = layer_entry(layer, who, ref)
        layers.append(entry)
        if entry["kind"] == "incidents":
            layers.append({**HEATMAP, "domain": layer.domain, "geometry": "Point",
                           "kind": "heatmap", "derived_from": layer.id,
                           "source": f"/api/{layer.id}/heatmap", "min_zoom": layer.min_zoom,
                           "max_zoom": layer.max_zoom, "visible": False,
                           "bbox": entry["bbox"], "style": {}, "legend": [], "fields": []})
    domains = [{"id": d, "title": _both(*DOMAINS[d])} for d in DOMAINS
               if any(e["domain"] == d for e in layers)]
    units = next((e["id"] for e in layers if e.get("gazetteer")), None)
    bbox = ref.extents.get(units, list(PROVINCE_BBOX)) if units else list(PROVINCE_BBOX)
    return {
        "principal": {"user": who.user, "roles": sorted(who.roles),
                      "role_titles": {r: _both(*ROLE_TITLES[r]) for r in sorted(who.roles)
                                      if r in ROLE_TITLES}},
        "bbox": bbox,
        "gazetteer": units,
        "domains": domains,
        "layers": layers,
    }


def can_read_id(layer_id: str, who: Principal) -> bool:
    try:
        return can_read(get_layer(layer_id), who)
    except KeyError:
        return False
