"""pygeoapi's configuration, generated from the layer catalogue at start-up.

There is no hand-kept YAML that could drift: collections, their fields (per principal, so a
hidden layer or field is absent from every pygeoapi page), CRS lists, zoom ranges and extents
all come from the catalogue and the database.
"""

from __future__ import annotations

import datetime as dt

import psycopg
from psycopg import sql

from gis.settings import PROJECT_ROOT, Settings
from layers.access import Principal, readable_fields, readable_layers
from layers.catalogue import PROVINCE_BBOX
from layers.crs import CRS84_URI, supported_crs_uris
from layers.model import Layer

MAX_ITEMS = 10_000
DEFAULT_ITEMS = 10
TEMPLATES = PROJECT_ROOT / "api" / "ogc_templates"
STATIC = PROJECT_ROOT / "web" / "static"
# Translations of the page templates (pygeoapi ships none): Vietnamese first.
LOCALES = PROJECT_ROOT / "api" / "ogc_locale"


def layer_extents(conn: psycopg.Connection, layers: tuple[Layer, ...]) -> dict[str, dict]:
    """Spatial (and temporal) extents of LAYERS."""
    out: dict[str, dict] = {}
    for layer in layers:
        ext = conn.execute(
            sql.SQL("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                    "(SELECT ST_Extent({g})::geometry AS e FROM {t}) s").format(
                g=sql.Identifier(layer.geometry_column), t=sql.Identifier(layer.table))
        ).fetchone()
        bbox = [round(v, 6) for v in ext] if ext[0] is not None else PROVINCE_BBOX
        extent: dict = {"spatial": {"bbox": bbox, "crs": CRS84_URI}}
        temporal = temporal_extent(conn, layer)
        if temporal is not None:
            extent["temporal"] = temporal
        out[layer.id] = extent
    return out


def temporal_extent(conn: psycopg.Connection, layer: Layer) -> dict | None:
    """The first and last instant of LAYER's time column (None without one, or when empty);
    open-ended for layers whose rows have a validity end (current rows run on)."""
    if not layer.time_column:
        return None
    begin, end = conn.execute(
        sql.SQL("SELECT min({c}), max({c}) FROM {t}").format(
            c=sql.Identifier(layer.time_column), t=sql.Identifier(layer.table))
    ).fetchone()
    if begin is None:
        return None
    return {"begin": _iso(begin), "end": None if layer.time_end_column else _iso(end),
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}


def _iso(v: dt.date | dt.datetime) -> str:
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return dt.datetime.combine(v, dt.time(), dt.UTC).isoformat().replace("+00:00", "Z")


def resource(layer: Layer, who: Principal, extents: dict, base_url: str) -> dict:
    fields = [f.name for f in readable_fields(layer, who)]
    # The providers re-derive row rules from the roles (pygeoapi hands them only their config).
    audience = {"anonymous": who.anonymous, "roles": sorted(who.roles)}
    return {
        "type": "collection",
        "title": {"vi": layer.title_vi, "en": layer.title_en},
        "description": {"vi": layer.description_vi, "en": layer.description_en},
        "keywords": {"vi": list(layer.keywords), "en": list(layer.keywords)},
        # GDAL's OAPIF driver takes field types from the describedby schema instead of guessing
        # them from the first page (it read 8.5 as the integer 8 when the page began with 50).
        "links": [{"type": "application/schema+json", "rel": "describedby",
                   "title": "JSON Schema", "href": f"{base_url}/ogc/collections/{layer.id}/schema?f=json"}],
        "extents": extents,
        "limits": {"default_items": DEFAULT_ITEMS, "max_items": MAX_ITEMS, "on_exceed": "error"},
        "providers": [
            {
                "type": "feature",
                "name": "api.ogc.providers.PostGISFeatureProvider",
                "data": layer.id,
                "id_field": layer.id_column,
                "time_field": layer.time_column,
                "properties": fields,
                "crs": supported_crs_uris(),
                "storage_crs": CRS84_URI,
                "options": audience,
            },
            {
                "type": "tile",
                "name": "api.ogc.providers.PostGISTileProvider",
                "data": layer.id,
                "properties": fields,
                "options": {
                    "zoom": {"min": layer.min_zoom, "max": layer.max_zoom},
                    "schemes": ["WebMercatorQuad"],
                    **audience,
                },
                "format": {"name": "mvt", "mimetype": "application/vnd.mapbox-vector-tile"},
            },
        ],
    }


AFTER_PARAMETER = {
    "name": "after",
    "in": "query",
    "required": False,
    "style": "form",
    "explode": False,
    "description": "Keyset paging: only the features whose id is above this one, in id order (what "
                   "the `next` links use; pages cost the same wherever they lie). Not with sortby; "
                   "offset then counts from this position.",
    "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
}


def add_keyset_parameter(oas: dict) -> dict:
    """pygeoapi's OpenAPI document knows `limit` and `offset` (their default and maximum come
    from `limits` in build_config); our items routes also take `after`, so it is listed too."""
    for path, item in oas.get("paths", {}).items():
        if path.startswith("/collections/") and path.endswith("/items") and "get" in item:
            params = item["get"].setdefault("parameters", [])
            if not any(p.get("name") == "after" for p in params):
                params.append(dict(AFTER_PARAMETER))
    return oas


def build_config(settings: Settings, who: Principal, extents: dict[str, dict]) -> dict:
    return {
        # pygeoapi 0.21 renders the TileMatrixSets pages with a top-level template path.
        "path": str(TEMPLATES),
        "server": {
            "bind": {"host": settings.host, "port": settings.port},
            "url": settings.base_url + "/ogc",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "gzip": False,
            "languages": ["vi", "en"],
            "locale_dir": str(LOCALES),
            "cors": False,
            "pretty_print": False,
            "limits": {"default_items": DEFAULT_ITEMS, "max_items": MAX_ITEMS,
                       "on_exceed": "error"},
            "map": {"url": settings.basemap_url, "attribution": ""},
            "templates": {"path": str(TEMPLATES), "static": str(STATIC)},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": {"vi": "GeoIOC – Dữ liệu không gian tỉnh (mẫu)",
                          "en": "GeoIOC – provincial spatial data (sample)"},
                "description": {
                    "vi": "API OGC cho các lớp dữ liệu của Trung tâm điều hành thông minh. "
                          "Dữ liệu mẫu tổng hợp, không phải dữ liệu thật.",
                    "en": "OGC API for the layers of the Intelligent Operations Center. "
                          "Synthetic sample data, not real data.",
                },
                "keywords": {"vi": ["GIS", "IOC", "OGC"], "en": ["GIS", "IOC", "OGC"]},
                "keywords_type": "theme",
                "terms_of_service": "",
                "url": settings.base_url,
            },
            "license": {"name": "CC-BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"},
            "provider": {"name": "GeoIOC", "url": settings.base_url},
            "contact": {"name": "GeoIOC", "position": "", "address": "", "city": "Bắc Ninh",
                        "stateorprovince": "", "postalcode": "", "country": "Việt Nam",
                        "phone": "", "fax": "", "email": "", "url": settings.base_url,
                        "hours": "", "instructions": "", "role": "pointOfContact"},
        },
        "resources": {
            layer.id: resource(layer, who, extents.get(layer.id, {}), settings.base_url)
            for layer in readable_layers(who)
        },
    }
