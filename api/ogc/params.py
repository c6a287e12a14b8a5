"""Query parameters of OGC API - Features items (Parts 1, 2 and 3), validated into a FeatureQuery.

Every problem becomes a 400 naming the parameter and the reason, so nothing malformed reaches
PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import orjson

from api.ogc.config import DEFAULT_ITEMS, MAX_ITEMS
from layers import query_params
from layers.crs import UnsupportedCRS, parse_crs_uri
from layers.errors import BadRequest
from layers.features_sql import FeatureQuery
from layers.model import Field, Layer

# Parameters with a meaning of their own; any other parameter must be a queryable property.
RESERVED = {"f", "lang", "limit", "offset", "after", "bbox", "bbox-crs", "datetime", "crs", "sortby",
            "properties", "skipGeometry", "filter", "filter-lang", "filter-crs"}
FORMATS = {"json", "geojson", "html", "jsonld"}
# Feature ids are bigint: a keyset position outside that range is a 400, never a database error.
MAX_ID = 2**63 - 1


def parse_int(name: str, raw: str | None, default: int, lo: int, hi: int | None = None) -> int:
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise BadRequest(f"{name}: {raw!r} is not an integer", parameter=name) from None
    if v < lo:
        raise BadRequest(f"{name}: {v} is below the minimum {lo}", parameter=name)
    if hi is not None and v > hi:
        raise BadRequest(f"{name}: {v} is above the maximum {hi}", parameter=name)
    return v


def parse_bbox(raw: str, crs_raw: str | None) -> tuple[tuple[float, float, float, float], int]:
    """The shared parser (layers.query_params), its error naming `bbox` or `bbox-crs`."""
    try:
        return query_params.parse_bbox(raw, crs_raw)
    except query_params.ParamError as e:
        raise _named(e) from None


def parse_datetime(raw: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    try:
        return query_params.parse_datetime(raw)
    except query_params.ParamError as e:
        raise _named(e) from None


def _named(e: query_params.ParamError) -> BadRequest:
    """The shared parsers' errors name their parameter ("bbox-crs: ...") and catalogue entry."""
    return BadRequest(e.detail, parameter=e.parameter, problems=e.problems, message=e.message)


def parse_value(f: Field, raw: str) -> object:
    """A property filter value, typed as its field (arrays match on membership)."""
    try:
        if f.type == "int":
            return int(raw)
        if f.type == "float":
            v = float(raw)
            if not math.isfinite(v):
                raise ValueError
            return v
        if f.type == "date":
            return dt.date.fromisoformat(raw)
        if f.type == "datetime":
            return query_params.parse_instant(raw)
        if f.type == "bool":
            if raw.lower() not in ("true", "false"):
                raise ValueError
            return raw.lower() == "true"
    except ValueError:  # ParamError included
        raise BadRequest(f"{f.name}: {raw!r} is not a valid {f.type}", parameter=f.name) from None
    return raw


def wants_html(params: Mapping[str, str], accept: str) -> bool:
    f = params.get("f")
    if f is not None:
        if f not in FORMATS:
            raise BadRequest(f"f: unsupported format {f!r}; use json or html", parameter="f")
        return f == "html"
    return "text/html" in accept and "json" not in accept.split(",")[0]


def output_crs(params: Mapping[str, str]) -> tuple[int, bool, str | None]:
    raw = params.get("crs")
    if not raw:
        return 4326, False, None
    try:
        srid, swap = parse_crs_uri(raw)
    except UnsupportedCRS as e:
        raise BadRequest.about("crs", e) from None
    return srid, swap, raw


def items_query(layer: Layer, fields: tuple[Field, ...], params: Mapping[str, str]) -> FeatureQuery:
    """Everything but the CQL2 filter (composed by the caller, which knows the visible fields)."""
    visible = {f.name: f for f in fields}
    q = FeatureQuery(layer=layer, fields=fields)
    q.limit = parse_int("limit", params.get("limit"), DEFAULT_ITEMS, 1, MAX_ITEMS)
    q.offset = parse_int("offset", params.get("offset"), 0, 0)
    if params.get("bbox"):
        q.bbox, q.bbox_srid = parse_bbox(params["bbox"], params.get("bbox-crs"))
    elif params.get("bbox-crs"):
        raise BadRequest("bbox-crs: given without bbox", parameter="bbox-crs")
    if params.get("datetime"):
        if not layer.time_column:
            raise BadRequest(f"datetime: collection {layer.id!r} has no time dimension",
                             parameter="datetime")
        q.time_range = parse_datetime(params["datetime"])
    q.out_srid, q.swap_axes, _ = output_crs(params)
    if params.get("skipGeometry"):
        if params["skipGeometry"] not in ("true", "false"):
            raise BadRequest("skipGeometry: expected true or false", parameter="skipGeometry")
        q.skip_geometry = params["skipGeometry"] == "true"
    if params.get("properties") is not None:
        names = [n for n in params["properties"].split(",") if n]
        unknown = [n for n in names if n not in visible]
        if unknown:
            raise BadRequest(f"properties: unknown {', '.join(map(repr, unknown))}; "
                             f"available: {', '.join(visible)}", parameter="properties")
        q.fields = tuple(visible[n] for n in names)
    if params.get("sortby"):
        order = []
        for key in params["sortby"].split(","):
            key = key.strip()
            asc = not key.startswith("-")
            name = key.lstrip("+-")
            if name not in visible and name != layer.id_column:
                raise BadRequest(f"sortby: unknown property {name!r}", parameter="sortby")
            order.append((name, asc))
        q.sortby = order
    if params.get("after") is not None:
        q.after = parse_int("after", params["after"], 0, 0, MAX_ID)
        if not q.keyset:
            raise BadRequest("after: pages by id, so it cannot be combined with sortby; "
                             "use offset to page a sorted result", parameter="after")
    for name, raw in params.items():
        if name in RESERVED:
            continue
        if name not in visible:
            raise BadRequest(f"unknown parameter {name!r}; queryable properties: "
                             f"{', '.join(visible)}", parameter=name)
        q.equals[name] = parse_value(visible[name], raw)
    return q


def filter_value(params: Mapping[str, str]) -> tuple[str | dict[str, Any], str] | None:
    raw = params.get("filter")
    lang = params.get("filter-lang") or "cql2-text"
    if lang not in ("cql2-text", "cql2-json"):
        raise BadRequest.for_field("cql2_language", "filter-lang",
                                   f"unsupported {lang!r}; use cql2-text or cql2-json",
                                   value=repr(lang))
    if raw is None or raw == "":
        return None
    if lang == "cql2-json":
        try:
            return orjson.loads(raw), lang
        except orjson.JSONDecodeError as e:
            raise BadRequest.for_field("json", "filter", f"not valid JSON ({e})") from None
    return raw, lang
