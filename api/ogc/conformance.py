"""The conformance classes we implement, in place of pygeoapi's list.

pygeoapi 0.21 declares OGC API - Features Part 4 (create, replace, delete) for every feature
provider, although our collections are read-only (a client such as QGIS would offer editing
that can only fail), and leaves out Part 3 filtering and CQL2, which layers/cql2.py implements
(so GDAL and QGIS would not send their filters to the server). Its handler also extends a
module-level list on every request. This handler has pygeoapi's signature, so the bridge calls
it like any core function, and renders pygeoapi's own conformance page for HTML.
"""

from __future__ import annotations

from http import HTTPStatus

from pygeoapi.api import API, APIRequest
from pygeoapi.util import render_j2_template, to_json

COMMON = "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/"
FEATURES = "http://www.opengis.net/spec/ogcapi-features-{}/1.0/conf/"
CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf/"
TILES = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/"
PROCESSES = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf/"

# CQL2 classes and a filter on the incidents layer that exercises each (tests/test_ogc_api.py
# runs them all, so a class is only listed while its example works).
CQL2_EXAMPLES: dict[str, str] = {
    "basic-cql2": "severity >= 3 AND NOT (status = 'closed') AND resolved_at IS NULL",
    "advanced-comparison-operators": "title LIKE '%a%' AND severity BETWEEN 2 AND 3 "
                                     "AND category IN ('fire', 'public_order')",
    "case-insensitive-comparison": "CASEI(category) = casei('FIRE')",
    "accent-insensitive-comparison": "ACCENTI(title) LIKE accenti('%Chay%')",
    "basic-spatial-functions": "S_INTERSECTS(geom, BBOX(105.9, 20.9, 106.4, 21.3))",
    "spatial-functions": "S_WITHIN(geom, POLYGON((105.9 20.9, 106.4 20.9, 106.4 21.3, "
                         "105.9 21.3, 105.9 20.9)))",
    "temporal-functions": "T_AFTER(reported_at, TIMESTAMP('2020-01-01T00:00:00Z'))",
    "arithmetic": "severity * 2 > 5",
}
# On a layer with a list-valued property.
ARRAY_EXAMPLE = ("parcels", "A_OVERLAPS(land_use_codes, ('ONT', 'LUC'))")

CONFORMS_TO = sorted({
    *(COMMON + c for c in ("core", "landing-page", "json", "html", "oas30")),
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    *(FEATURES.format(1) + c for c in ("core", "oas30", "html", "geojson")),
    FEATURES.format(2) + "crs",
    *(FEATURES.format(3) + c for c in ("queryables", "queryables-query-parameters", "filter",
                                       "features-filter")),
    *(FEATURES.format(5) + c for c in ("schemas", "core-roles-features")),
    *(CQL2 + c for c in ("cql2-text", "cql2-json", *CQL2_EXAMPLES, "array-functions")),
    *(TILES + c for c in ("core", "mvt", "tileset", "tilesets-list", "oas30", "geodata-tilesets")),
    # Exports as a process (api/ogc/processes.py).
    *(PROCESSES + c for c in ("core", "ogc-process-description", "json", "job-list")),
})


def conformance(api: API, request: APIRequest) -> tuple[dict[str, str], int, str]:
    headers = request.get_response_headers(**api.api_headers)
    data = {"conformsTo": CONFORMS_TO}
    if request.format == "html":
        return headers, HTTPStatus.OK, render_j2_template(
            api.tpl_config, api.config["server"]["templates"], "conformance.html", data, request.locale)
    return headers, HTTPStatus.OK, to_json(data, api.pretty_print)
