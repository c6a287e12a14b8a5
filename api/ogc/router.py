"""Routes under /ogc: our fast paths for JSON items and tiles, pygeoapi for the rest."""

from __future__ import annotations

import pygeoapi.api as core_api
import pygeoapi.api.itemtypes as itemtypes_api
import pygeoapi.api.tiles as tiles_api
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.ogc import features, tiles
from api.ogc.bridge import PygeoapiBridge
from api.ogc.conformance import conformance as conformance_handler
from api.ogc.params import wants_html
from api.ogc.query import (
    ITEM,
    ITEMS,
    ITEMS_MEDIA,
    OPENAPI,
    OPENAPI_JSON,
    PAGE,
    PAGE_MEDIA,
    TILE,
    TILE_ANSWERS,
    TILESET,
    CollectionId,
    FeatureId,
    TileIndex,
    TileMatrixSet,
    answers,
)
from api.security import Who
from gis import audit

BRIDGE = PygeoapiBridge()
# An import or an edit that drops a layer's tiles also dates its extents.
tiles.CACHE.listeners.append(BRIDGE.forget_extents)
router = APIRouter(prefix="/ogc", tags=["OGC API"])


@router.get("", dependencies=PAGE, responses=answers(*PAGE_MEDIA))
@router.get("/", dependencies=PAGE, responses=answers(*PAGE_MEDIA))
async def landing_page(request: Request, who: Who) -> Response:
    return await BRIDGE.call(core_api.landing_page, request, who)


@router.get("/openapi", dependencies=OPENAPI, responses=answers(OPENAPI_JSON, "text/html"))
async def openapi(request: Request, who: Who) -> Response:
    return await BRIDGE.call(core_api.openapi_, request, who)


@router.get("/conformance", dependencies=PAGE, responses=answers(*PAGE_MEDIA))
async def conformance(request: Request, who: Who) -> Response:
    return await BRIDGE.call(conformance_handler, request, who)


@router.get("/collections", dependencies=PAGE, responses=answers(*PAGE_MEDIA))
async def collections(request: Request, who: Who) -> Response:
    return await BRIDGE.call(core_api.describe_collections, request, who)


@router.get("/collections/{collection_id}", dependencies=PAGE, responses=answers(*PAGE_MEDIA))
async def collection(collection_id: CollectionId, request: Request,
                     who: Who) -> Response:
    features.readable_layer(collection_id, who)
    return await BRIDGE.call(core_api.describe_collections, request, who, collection_id)


@router.get("/collections/{collection_id}/queryables", dependencies=PAGE,
            responses=answers("application/schema+json", *PAGE_MEDIA))
async def queryables(collection_id: CollectionId, request: Request,
                     who: Who) -> Response:
    features.readable_layer(collection_id, who)
    return await BRIDGE.call(itemtypes_api.get_collection_queryables, request, who, collection_id)


@router.get("/collections/{collection_id}/schema", dependencies=PAGE,
            responses=answers("application/schema+json", *PAGE_MEDIA))
async def schema(collection_id: CollectionId, request: Request,
                 who: Who) -> Response:
    features.readable_layer(collection_id, who)
    return await BRIDGE.call(core_api.get_collection_schema, request, who, collection_id)


@router.get("/collections/{collection_id}/items", dependencies=ITEMS, responses=answers(*ITEMS_MEDIA))
async def items(collection_id: CollectionId, request: Request,
                who: Who) -> Response:
    layer = features.readable_layer(collection_id, who)
    html = wants_html(request.query_params, request.headers.get("accept", ""))
    await audit.record_read_async(who, layer, "ogc-items-html" if html else "ogc-items",
                                  filter=dict(request.query_params), request=request)
    if html:
        # The page takes the same parameters as GeoJSON: checked by the same code (pygeoapi
        # failed with a 500 on a filter naming an unknown or hidden property).
        features.build_query(layer, who, dict(request.query_params))
        return await BRIDGE.call(itemtypes_api.get_collection_items, request, who, collection_id)
    return await run_in_threadpool(features.items, layer, who, request)


@router.get("/collections/{collection_id}/items/{feature_id}", dependencies=ITEM,
            responses=answers(*ITEMS_MEDIA))
async def item(collection_id: CollectionId, feature_id: FeatureId, request: Request,
               who: Who) -> Response:
    layer = features.readable_layer(collection_id, who)
    html = wants_html(request.query_params, request.headers.get("accept", ""))
    await audit.record_read_async(who, layer, "ogc-item-html" if html else "ogc-item",
                                  ids=[feature_id], request=request)
    if html:
        return await BRIDGE.call(itemtypes_api.get_collection_item, request, who, collection_id,
                                 feature_id)
    return await run_in_threadpool(features.item, layer, who, feature_id, request)


@router.get("/TileMatrixSets", dependencies=PAGE, responses=answers(*PAGE_MEDIA))
async def tile_matrix_sets(request: Request, who: Who) -> Response:
    return await BRIDGE.call(tiles_api.tilematrixsets, request, who)


@router.get("/TileMatrixSets/{tms}", dependencies=PAGE, responses=answers(*PAGE_MEDIA))
async def tile_matrix_set(tms: str, request: Request,
                          who: Who) -> Response:
    return await BRIDGE.call(tiles_api.tilematrixset, request, who, tms)


@router.get("/collections/{collection_id}/tiles", dependencies=TILESET, responses=answers(*PAGE_MEDIA))
async def collection_tiles(collection_id: CollectionId, request: Request,
                           who: Who) -> Response:
    features.readable_layer(collection_id, who)
    return await BRIDGE.call(tiles_api.get_collection_tiles, request, who, collection_id)


@router.get("/collections/{collection_id}/tiles/{tms}", dependencies=TILESET,
            responses=answers(*PAGE_MEDIA))
@router.get("/collections/{collection_id}/tiles/{tms}/metadata", dependencies=TILESET,
            responses=answers(*PAGE_MEDIA))
async def collection_tiles_metadata(collection_id: CollectionId, tms: TileMatrixSet,
                                    request: Request,
                                    who: Who) -> Response:
    features.readable_layer(collection_id, who)
    return await BRIDGE.call(tiles_api.get_collection_tiles_metadata, request, who,
                             collection_id, tms)


@router.get("/collections/{collection_id}/tiles/{tms}/{z}/{y}/{x}", dependencies=TILE,
            response_class=Response, responses=TILE_ANSWERS)
async def collection_tile(collection_id: CollectionId, tms: TileMatrixSet, z: TileIndex, y: TileIndex,
                          x: TileIndex, request: Request,
                          who: Who) -> Response:
    layer = features.readable_layer(collection_id, who)
    await audit.record_read_async(who, layer, "tile", filter={"tile": [tms, z, y, x]}, request=request,
                                  fields=[f for f in layer.fields if f.in_tiles])
    return await run_in_threadpool(tiles.tile, layer, who, tms, z, y, x, request)

