"""PostGIS providers that pygeoapi loads by dotted path (`api.ogc.providers.PostGISFeatureProvider`).

pygeoapi instantiates a provider on every request, so construction only looks up the catalogue:
connections come from the process-wide pool, SQL comes from features_sql / tiles_sql (the same
code behind our fast OGC routes).
"""

from __future__ import annotations

import orjson
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
    ProviderQueryError,
)
from pygeoapi.provider.base_mvt import BaseMVTProvider
from pygeoapi.provider.tile import ProviderTileNotFoundError

from gis.db import read_connection
from gis.features import fetch_one, fetch_page, number_matched, page_number_matched
from gis.tiles import render_tile
from layers.access import Principal, row_filter
from layers.catalogue import get_layer
from layers.features_sql import FeatureQuery
from layers.model import Layer
from layers.tiles_sql import TileOutOfRange

JSON_SCHEMA_TYPES = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "str": {"type": "string"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "bool": {"type": "boolean"},
    "str[]": {"type": "array", "items": {"type": "string"}},
}


def json_schema(layer: Layer, names: list[str]) -> dict[str, dict]:
    out = {}
    for name in names:
        f = layer.field(name)
        schema = {**JSON_SCHEMA_TYPES[f.type], "title": f.title_vi, "x-title-en": f.title_en}
        if f.values:
            schema["enum"] = [int(v) if f.type == "int" else v for v in f.values]
        out[name] = schema
    return out


class _CatalogueProvider:
    """Shared set-up: the layer, and the fields this (per-principal) configuration may show."""

    def _init_layer(self, provider_def: dict) -> None:
        self.layer = get_layer(provider_def["data"])
        visible = provider_def.get("properties") or list(self.layer.field_names)
        self.visible_fields = [self.layer.field(n) for n in visible]
        options = provider_def.get("options") or {}
        who = Principal(None if options.get("anonymous", True) else "profile",
                        frozenset(options.get("roles", ())))
        self.restrict = row_filter(self.layer, who)


class PostGISFeatureProvider(_CatalogueProvider, BaseProvider):
    def __init__(self, provider_def: dict):
        BaseProvider.__init__(self, provider_def)
        self._init_layer(provider_def)
        self.id_field = self.layer.id_column
        self.time_field = self.layer.time_column
        self._fields = json_schema(self.layer, [f.name for f in self.visible_fields])
        # pygeoapi drops query parameters that are not fields unless this is set; we want one,
        # `after` (keyset paging, see api.ogc.features), and still ignore the others.
        self.include_extra_query_parameters = True

    def get_fields(self) -> dict:
        return self._fields

    def query(self, offset=0, limit=10, resulttype="results", bbox=None, datetime_=None,
              properties=None, sortby=None, select_properties=None, skip_geometry=False,
              filterq=None, **kwargs) -> dict:
        """Used by pygeoapi's own paths (HTML pages); JSON items go through api.ogc.features.

        Like them, it answers numberMatched exactly or not at all (gis.features.number_matched)
        and numberReturned; `after` (forwarded among the properties) is the keyset position.
        """
        from layers.cql2 import FilterError, filter_to_sql

        fields = self.visible_fields
        if select_properties:
            fields = [f for f in fields if f.name in select_properties]
        q = FeatureQuery(layer=self.layer, fields=fields, limit=int(limit), offset=int(offset),
                         skip_geometry=bool(skip_geometry), restrict=self.restrict)
        if bbox:
            q.bbox = tuple(float(v) for v in bbox[:4])
        known = {f.name for f in self.visible_fields}
        for name, value in properties or ():
            if name == "after":
                q.after = _after(value)
            elif name in known:  # other unknown parameters are ignored, as pygeoapi does
                q.equals[name] = value
        if sortby:
            q.sortby = [(s["property"], s["order"] == "+") for s in sortby]
        if q.after is not None and not q.keyset:
            raise ProviderInvalidQueryError("after cannot be combined with sortby; use offset")
        if filterq is not None:
            try:
                q.condition = filter_to_sql(filterq, self.layer,
                                            allowed=[f.name for f in self.visible_fields])
            except FilterError as e:
                raise ProviderQueryError(str(e)) from e
        with read_connection() as conn:
            if resulttype == "hits":
                out = {"type": "FeatureCollection", "features": [], "numberReturned": 0}
                matched = number_matched(conn, q)
                return out if matched is None else {**out, "numberMatched": matched}
            page = fetch_page(conn, q)
            matched = page_number_matched(conn, q, page)
        features = orjson.loads(b"[" + ",".join(page.rows).encode() + b"]")
        out = {"type": "FeatureCollection", "features": features,
               "numberReturned": len(features)}
        if matched is not None:
            out["numberMatched"] = matched
        return out

    def get(self, identifier, **kwargs) -> dict:
        try:
            fid = int(identifier)
        except (TypeError, ValueError):
            raise ProviderItemNotFoundError(f"feature {identifier!r} not found") from None
        q = FeatureQuery(layer=self.layer, fields=self.visible_fields, feature_id=fid, limit=1,
                         restrict=self.restrict)
        with read_connection() as conn:
            row = fetch_one(conn, q)
        if row is None:
            raise ProviderItemNotFoundError(f"feature {identifier!r} not found")
        return orjson.loads(row)

    def __repr__(self) -> str:
        return f"<PostGISFeatureProvider {self.layer.id}>"


def _after(value: object) -> int:
    """The keyset position: a bigint id (pygeoapi turns a bad one into a 400)."""
    try:
        after = int(str(value))
    except ValueError:
        raise ProviderInvalidQueryError(f"after: {value!r} is not an integer") from None
    if not 0 <= after < 2**63:
        raise ProviderInvalidQueryError(f"after: {after} is out of range")
    return after


class PostGISTileProvider(_CatalogueProvider, BaseMVTProvider):
    """Vector tiles from ST_AsMVT; metadata for pygeoapi's tiles endpoints."""

    def __init__(self, provider_def: dict):
        BaseMVTProvider.__init__(self, provider_def)
        self._init_layer(provider_def)

    def get_layer(self) -> str:
        return self.layer.id

    def get_fields(self) -> dict:
        return json_schema(self.layer, [f.name for f in self.visible_fields])

    def get_tiling_schemes(self) -> list:
        from pygeoapi.models.provider.base import TileMatrixSetEnum

        return [TileMatrixSetEnum.WEBMERCATORQUAD.value]

    def get_tiles_service(self, baseurl=None, servicepath=None, dirpath=None, tile_type=None):
        BaseMVTProvider.get_tiles_service(self, baseurl, servicepath, dirpath, tile_type)
        self._service_url = servicepath
        return self.get_tms_links()

    def get_tiles(self, layer=None, tileset=None, z=None, y=None, x=None, format_=None):
        try:
            with read_connection() as conn:
                return render_tile(conn, self.layer, self.visible_fields, int(z), int(x), int(y),
                                   self.restrict)
        except TileOutOfRange:
            return ProviderTileNotFoundError

    def get_metadata(self, dataset, server_url, layer=None, tileset=None, metadata_format=None,
                     title=None, description=None, keywords=None, **kwargs):
        """pygeoapi passes the raw `f` (None when a client asks without one, by Accept or not at
        all), and its base class failed on None: the default is the JSON document."""
        return BaseMVTProvider.get_metadata(self, dataset, server_url, layer=layer, tileset=tileset,
                                            metadata_format=metadata_format or "json", title=title,
                                            description=description, keywords=keywords, **kwargs)

    def get_html_metadata(self, dataset, server_url, layer, tileset, title, description,
                          keywords, **kwargs) -> dict:
        base = f"{server_url}/collections/{dataset}/tiles/{tileset}"
        return {"id": dataset, "title": title, "tileset": tileset,
                "collections_path": base + "/{tileMatrix}/{tileRow}/{tileCol}?f=mvt",
                "json_url": base + "/metadata?f=json"}

    def get_default_metadata(self, dataset, server_url, layer, tileset, title, description,
                             keywords, **kwargs) -> dict:
        from pygeoapi.models.provider.base import (
            LinkType,
            TileMatrixSetEnum,
            TileSetMetadata,
        )

        scheme = TileMatrixSetEnum.WEBMERCATORQUAD.value
        content = TileSetMetadata(title=title, description=description, keywords=keywords,
                                  crs=scheme.crs, tileMatrixSetURI=scheme.tileMatrixSetURI)
        content.links = [
            LinkType(href=f"{server_url}/TileMatrixSets/{scheme.tileMatrixSet}",
                     rel="http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                     type_="application/json", title=f"{scheme.tileMatrixSet} definition"),
            LinkType(href=f"{server_url}/collections/{dataset}/tiles/{tileset}"
                          "/{tileMatrix}/{tileRow}/{tileCol}?f=mvt",
                     rel="item", type_="application/vnd.mapbox-vector-tile",
                     title=f"{tileset} vector tiles for {layer}"),
        ]
        return content.model_dump(exclude_none=True)

    def __repr__(self) -> str:
        return f"<PostGISTileProvider {self.layer.id}>"

