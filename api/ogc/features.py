"""The hot paths of OGC API - Features: items and single items as GeoJSON, built in PostGIS.

pygeoapi answers everything else (landing page, collections, queryables, HTML). Measured in
bench/README.md, stock pygeoapi spends a 100-item page mostly waiting on PostgreSQL: a count(*)
of the whole table on every page, a connection check and a rollback per request, and five
queries for one feature; on a 10,000-feature page, turning rows into dicts and re-encoding them
is 82 % of its time. These endpoints run one statement that returns finished GeoJSON text per
row and join the texts.

GIS clients read whole collections through these pages, so two things matter to them: an exact
`numberMatched` (GDAL's `ogrinfo -so` takes the feature count from the first page; without it,
it reads everything), counted under a short timeout and left out rather than guessed
(gis.features.number_matched); and pages that cost the same wherever they lie: `next` links
page by key (`after=<id>`), and an `offset` skips rows before any GeoJSON is built.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from urllib.parse import urlencode

import orjson
from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from api.ogc.params import filter_value, items_query, output_crs
from gis.db import read_connection
from gis.features import (
    fetch_one,
    fetch_page,
    keyset_count_skipped,
    number_matched,
    page_number_matched,
    stream_features,
)
from gis.settings import get_settings
from layers import access
from layers.access import Principal, readable_fields, row_filter
from layers.crs import CRS84_URI, UnsupportedCRS, parse_crs_uri
from layers.errors import BadRequest, NotFound
from layers.features_sql import FeatureQuery
from layers.model import Layer

GEOJSON = "application/geo+json"
STREAM_ABOVE = 1_000


def readable_layer(collection_id: str, who: Principal) -> Layer:
    """The layer behind a collection id, or a 404 that does not reveal whether it exists."""
    layer = access.readable_layer(collection_id, who)
    if layer is None:
        raise NotFound(f"collection {collection_id!r} not found")
    return layer


def _items_url(layer: Layer, params: dict[str, str]) -> str:
    base = f"{get_settings().base_url}/ogc/collections/{layer.id}/items"
    return f"{base}?{urlencode(params)}" if params else base


def _links(layer: Layer, q: FeatureQuery, params: dict[str, str], has_more: bool,
           last_id: int | None) -> list[dict[str, str]]:
    """self, alternate, collection, and next/prev.

    `next` pages by key when the order is the id order: `after=<last id of this page>`, which
    PostgreSQL answers from the primary key wherever the page lies, so a client reading a whole
    collection (GDAL, QGIS, OWSLib follow `next`) does not get slower page after page. A sorted
    result pages by offset (cheap too: rows are skipped on ids, see layers.features_sql).
    """
    keep = {k: v for k, v in params.items() if k != "offset"}
    links = [
        {"rel": "self", "type": GEOJSON, "href": _items_url(layer, params)},
        {"rel": "alternate", "type": "text/html",
         "href": _items_url(layer, {**keep, "offset": str(q.offset), "f": "html"})},
        {"rel": "collection", "type": "application/json",
         "href": f"{get_settings().base_url}/ogc/collections/{layer.id}"},
    ]
    if has_more:
        if q.keyset and last_id is not None:
            after = {k: v for k, v in keep.items() if k != "after"}
            href = _items_url(layer, {**after, "after": str(last_id)})
        else:
            href = _items_url(layer, {**keep, "offset": str(q.offset + q.limit)})
        links.append({"rel": "next", "type": GEOJSON, "href": href})
    if q.offset > 0:
        links.append({"rel": "prev", "type": GEOJSON,
                      "href": _items_url(layer, {**keep, "offset": str(max(0, q.offset - q.limit))})})
    return links


def _headers(crs_uri: str | None) -> dict[str, str]:
    return {"Content-Crs": f"<{crs_uri or CRS84_URI}>"}


def build_query(layer: Layer, who: Principal, params: dict[str, str]) -> FeatureQuery:
    from layers.cql2 import FilterError, filter_to_sql, parse_filter

    fields = readable_fields(layer, who)
    q = items_query(layer, fields, params)
    q.restrict = row_filter(layer, who)
    spec = filter_value(params)
    if spec is not None:
        try:
            filter_srid, filter_swap = parse_crs_uri(params.get("filter-crs") or "CRS84")
        except UnsupportedCRS as e:
            raise BadRequest.about("filter-crs", e) from None
        try:
            node = parse_filter(spec[0], spec[1])
            q.condition = filter_to_sql(node, layer, allowed=[f.name for f in fields],
                                        filter_srid=filter_srid, filter_swap_axes=filter_swap,
                                        table_alias="t")
        except FilterError as e:
            raise BadRequest.about("filter", e) from None
    return q


def _tail(numbers: dict[str, int], links: list[dict[str, str]]) -> bytes:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return orjson.dumps({**numbers, "timeStamp": stamp, "links": links})[1:]


def items(layer: Layer, who: Principal, request: Request) -> Response:
    params = dict(request.query_params)
    q = build_query(layer, who, params)
    _, _, crs_uri = output_crs(params)
    head = b'{"type":"FeatureCollection","features":['
    if q.limit > STREAM_ABOVE:
        return StreamingResponse(_stream(layer, q, params, head), media_type=GEOJSON,
                                 headers=_headers(crs_uri))
    with read_connection() as conn:
        page = fetch_page(conn, q)
        matched = page_number_matched(conn, q, page)
        if not page.rows and q.offset > 0:
            raise _offset_beyond_end(q, matched)
    numbers = {"numberReturned": len(page.rows)}
    if matched is not None:
        numbers["numberMatched"] = matched
    body = b"".join((head, ",".join(page.rows).encode(), b"],",
                     _tail(numbers, _links(layer, q, params, page.has_more, page.last_id))))
    return Response(body, media_type=GEOJSON, headers=_headers(crs_uri))


def _offset_beyond_end(q: FeatureQuery, matched: int | None) -> BadRequest:
    total = "" if matched is None else f" ({matched} features match)"
    return BadRequest(f"offset: {q.offset} is beyond the end of the results{total}",
                      parameter="offset")


def _stream(layer: Layer, q: FeatureQuery, params: dict[str, str], head: bytes) -> Iterator[bytes]:
    with read_connection() as conn:
        matched = None if keyset_count_skipped(conn, q) else number_matched(conn, q)
        yield head
        sent = 0
        has_more = False
        last_id: int | None = None
        for chunk in stream_features(conn, q):
            if sent + len(chunk) > q.limit:
                has_more = True
                chunk = chunk[: q.limit - sent]
            if chunk:
                yield (b"," if sent else b"") + ",".join(text for text, _ in chunk).encode()
                sent += len(chunk)
                last_id = chunk[-1][1]
    numbers = {"numberReturned": sent}
    if matched is not None:
        numbers["numberMatched"] = matched
    yield b"],"
    yield _tail(numbers, _links(layer, q, params, has_more, last_id))


def item(layer: Layer, who: Principal, feature_id: str, request: Request) -> Response:
    params = dict(request.query_params)
    unknown = set(params) - {"f", "lang", "crs"}
    if unknown:
        name = sorted(unknown)[0]
        raise BadRequest(f"unknown parameter {name!r} for a single feature", parameter=name)
    try:
        fid = int(feature_id)
    except ValueError:
        raise NotFound(f"feature {feature_id!r} not found in collection {layer.id!r}") from None
    srid, swap, crs_uri = output_crs(params)
    q = FeatureQuery(layer=layer, fields=readable_fields(layer, who), feature_id=fid, limit=1,
                     out_srid=srid, swap_axes=swap, restrict=row_filter(layer, who))
    with read_connection() as conn:
        row = fetch_one(conn, q)
    if row is None:
        raise NotFound(f"feature {feature_id!r} not found in collection {layer.id!r}")
    base = f"{get_settings().base_url}/ogc/collections/{layer.id}"
    links = [
        {"rel": "self", "type": GEOJSON, "href": f"{base}/items/{fid}"},
        {"rel": "alternate", "type": "text/html", "href": f"{base}/items/{fid}?f=html"},
        {"rel": "collection", "type": "application/json", "href": base},
    ]
    body = row[:-1].encode() + b',"links":' + orjson.dumps(links) + b"}"
    return Response(body, media_type=GEOJSON, headers=_headers(crs_uri))
