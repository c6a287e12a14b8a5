"""The query parameters of the /ogc routes, declared once with their types and bounds (api/deps.py
style), so that FastAPI's /openapi.json describes /ogc as well as /api and a value out of range is
a 400 naming the parameter (rendered as an OGC exception by api/errors.py) before anything reaches
pygeoapi or PostgreSQL.

The routes keep reading `request.query_params` (pygeoapi and api/ogc/params.py parse them, as
they always have); these models only validate and document (`dependencies=`, value unused): a new
bound is one line here, whatever route reads the value. One model per route, validated in one
call (api.deps.QueryModel says why).

Why one document rather than pygeoapi's /ogc/openapi: pygeoapi's document refers to schemas on
schemas.opengis.net, which an offline machine (CI) cannot fetch, and it does not know our own
routes (tiles fast path, Processes). README (OGC API) says the same.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Path
from pydantic import Field, create_model

from api.deps import QueryModel, query
from api.ogc.config import DEFAULT_ITEMS, MAX_ITEMS
from api.ogc.tiles import MAX_FILTER_CHARS, MVT, TILE_MATRIX_SETS
from api.route_docs import GEOJSON, HTML, JSON, problems
from layers.catalogue import LAYERS
from layers.cql2 import MAX_FILTER_CHARS as MAX_CQL2_CHARS
from layers.crs import supported_crs_uris
from layers.errors import NotFound

# Far past any collection here (800,000 parcels at scale) and well inside PostgreSQL's bigint: an
# offset of 10^20 used to reach the database and fail there.
MAX_OFFSET = 1_000_000_000
JSONLD = "application/ld+json"
OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"

Lang = Annotated[str | None, Field(
    description="`en` for English; default Vietnamese (or the browser's Accept-Language)",
    max_length=10)]
CrsUri = Annotated[str | None, Field(
    description=f"output CRS; one of {', '.join(supported_crs_uris())}", max_length=200)]


class PageQuery(QueryModel):
    """`f` and `lang` of pygeoapi's pages (landing page, collections, queryables...)."""

    f: Annotated[Literal["json", "html", "jsonld"] | None, Field(
        description="response format (default: from Accept, else JSON)")] = None
    lang: Lang = None


class OpenAPIQuery(QueryModel):
    """pygeoapi's own OpenAPI document of /ogc (JSON or its HTML viewer)."""

    f: Annotated[Literal["json", "html"] | None, Field(description="response format")] = None
    lang: Lang = None


class ItemsQuery(QueryModel):
    """OGC API - Features Parts 1-3. Any other parameter is a property filter on a queryable
    (checked against the collection by api/ogc/params.py)."""

    f: Annotated[Literal["json", "geojson", "html", "jsonld"] | None, Field(
        description="response format (default: from Accept, else GeoJSON)")] = None
    lang: Lang = None
    limit: Annotated[int | None, Field(
        ge=1, le=MAX_ITEMS, description=f"page size (default {DEFAULT_ITEMS}, at most {MAX_ITEMS})")] = None
    offset: Annotated[int | None, Field(ge=0, le=MAX_OFFSET, description="features to skip")] = None
    after: Annotated[int | None, Field(ge=0, le=2**63 - 1, description=(
        "keyset paging: the features whose id is above this one, in id order (what `next` "
        "links use; not with `sortby`)"))] = None
    bbox: Annotated[str | None, Field(
        description="minx,miny,maxx,maxy (or 6 numbers) in `bbox-crs`, default CRS84",
        examples=["105.95,21.0,106.2,21.25"], max_length=400)] = None
    bbox_crs: Annotated[str | None, Field(
        alias="bbox-crs", description=f"CRS of `bbox`; one of {', '.join(supported_crs_uris())}",
        max_length=200)] = None
    datetime: Annotated[str | None, Field(
        description="an RFC 3339 instant, a date or an interval `start/end` (`..` open)",
        max_length=100)] = None
    crs: CrsUri = None
    sortby: Annotated[str | None, Field(
        description="comma-separated properties, `-` for descending", max_length=1000)] = None
    properties: Annotated[str | None, Field(
        description="comma-separated properties to return", max_length=2000)] = None
    skip_geometry: Annotated[Literal["true", "false"] | None, Field(alias="skipGeometry")] = None
    filter_: Annotated[str | None, Field(
        alias="filter", description="a CQL2 filter (text, or JSON with filter-lang=cql2-json)",
        max_length=MAX_CQL2_CHARS)] = None
    filter_lang: Annotated[Literal["cql2-text", "cql2-json"] | None, Field(alias="filter-lang")] = None
    filter_crs: Annotated[str | None, Field(
        alias="filter-crs", description="CRS of the filter's geometries (default CRS84)",
        max_length=200)] = None


class ItemQuery(QueryModel):
    """A single feature."""

    f: Annotated[Literal["json", "geojson", "html", "jsonld"] | None, Field(
        description="response format")] = None
    lang: Lang = None
    crs: CrsUri = None


CollectionId = Annotated[str, Path(description="a collection (a layer id of the catalogue)", max_length=64,
                                   examples=["roads"])]
FeatureId = Annotated[str, Path(description="a feature's id", max_length=40, examples=["1"])]
TileIndex = Annotated[str, Path(description="tile matrix (zoom), row or column: a whole number",
                                max_length=20, examples=["14"])]


async def get_tile_matrix_set(tms: Annotated[str, Path(
        description=f"tile matrix set; one of {', '.join(TILE_MATRIX_SETS)}", max_length=64,
        json_schema_extra={"examples": list(TILE_MATRIX_SETS)})]) -> str:
    """A tile matrix set we serve, or a 404 (pygeoapi failed on one it does not know)."""
    if tms not in TILE_MATRIX_SETS:
        raise NotFound(f"tile matrix set {tms!r} not found; available: {', '.join(TILE_MATRIX_SETS)}")
    return tms


TileMatrixSet = Annotated[str, Depends(get_tile_matrix_set)]


class TilesetQuery(QueryModel):
    """Tile set metadata."""

    f: Annotated[Literal["json", "html", "jsonld", "tilejson"] | None, Field(
        description="response format")] = None
    lang: Lang = None


class _TileQueryBase(QueryModel):
    """A vector tile."""

    f: Annotated[Literal["mvt", "pbf"] | None, Field(description="tile format (MVT)")] = None
    datetime: Annotated[str | None, Field(
        description="only features of this time: an RFC 3339 instant, a date or an interval "
                    "`start/end` (`..` open), as on /items", max_length=100)] = None


def _tile_filter_fields() -> dict[str, Any]:
    """The catalogue's tile filters (Layer.tile_filters) as typed, documented parameters: each
    names the collections that take it and its default there."""
    found: dict[str, list[str]] = {}
    for layer in LAYERS:
        for tf in layer.tile_filters:
            default = (f"default {tf.default}" if tf.default is not None
                       else "default: the latest" if tf.latest_by else "no default")
            found.setdefault(tf.field, []).append(f"{layer.id} ({default})")
    return {name: (str | None, Field(None, max_length=MAX_FILTER_CHARS, description=(
        f"only features whose `{name}` is this value, on the collections whose tiles are "
        f"filtered on it: {', '.join(where)}")))
        for name, where in found.items()}


# A tile's parameters: the common ones and the catalogue's tile filters.
TileQuery = create_model("TileQuery", __base__=_TileQueryBase, **_tile_filter_fields())


PAGE = (query(PageQuery),)
OPENAPI = (query(OpenAPIQuery),)
ITEMS = (query(ItemsQuery),)
ITEM = (query(ItemQuery),)
TILESET = (query(TilesetQuery),)
TILE = (query(TileQuery),)


def answers(*media: str, errors: tuple[int, ...] = (400, 404)) -> dict[int | str, dict[str, Any]]:
    """`responses=` of an /ogc route: 200 in MEDIA, and the OGC exception document (or an HTML
    page, when the page format was asked for) for ERRORS, 401/429 (credentials) and 500/503."""
    content = {m: {"schema": HTML if m == "text/html" else {"type": "object"}} for m in media}
    out: dict[int | str, dict[str, Any]] = {200: {"description": "the resource", "content": content},
                                            **problems(*errors, 401, 429, ogc=True, page=True)}
    if JSONLD in media:  # pygeoapi answers its errors in the format asked for, JSON-LD included
        for entry in out.values():
            if "content" in entry and JSON in entry["content"]:
                entry["content"][JSONLD] = entry["content"][JSON]
    return out


PAGE_MEDIA = (JSON, "text/html", JSONLD)
ITEMS_MEDIA = (GEOJSON, "text/html", JSONLD)
TILE_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "a Mapbox vector tile", "content": {MVT: {"schema": {"type": "string",
                                                                              "format": "binary"}}}},
    204: {"description": "an empty tile"},
    304: {"description": "not modified (If-None-Match)"},
    **problems(400, 401, 404, 429, ogc=True),
}
