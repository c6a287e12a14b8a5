"""The OGC API HTML pages and our web assets work on a closed network.

No template under api/ogc_templates and no html/js/css file under web/ may make the browser fetch
anything from another host (CDN scripts and styles, web fonts, images, imports), and every
`{{ config['server']['url'] }}/static/...` asset a template references must exist under
web/static (the folder pygeoapi serves at /ogc/static). Needs no database.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "api" / "ogc_templates"
WEB = ROOT / "web"
STATIC = WEB / "static"
WEB_SUFFIXES = {".html", ".htm", ".js", ".mjs", ".css"}

# URLs that name things rather than fetch them (OGC/schema.org identifiers), and the hosts a
# plain <a href> may point to (pygeoapi attribution in the footer, Leaflet's attribution link).
IDENTIFIER_PREFIXES = (
    "http://www.opengis.net/def/",
    "https://www.opengis.net/def/",
    "http://www.opengis.net/spec/",
    "https://schema.org",
    "http://schema.org",
)
ANCHOR_HOSTS = {"pygeoapi.io", "leafletjs.com"}

_URL = r"""((?:https?:)?//[^"'`\s)<>\\]+)"""
# contexts in which a browser fetches a URL by itself
FETCH_PATTERNS = {
    "attribute": re.compile(r"""\b(src|srcset|href|poster|action|data|background)\s*=\s*\\?["']?\s*""" + _URL,
                            re.I),
    "js src property": re.compile(r"""\b(src|srcset)\s*:\s*["'`]""" + _URL),
    "css url()": re.compile(r"""url\(\s*\\?["']?\s*""" + _URL, re.I),
    "import": re.compile(
        r"""(@import\s+(?:url\()?\s*["']?|\bimport\s*\(\s*["'`]|\bimport\s+["']|\bfrom\s*["']"""
        r"""|importScripts\(\s*["'`]|fetch\(\s*["'`]|new\s+Worker\(\s*["'`])""" + _URL),
}
JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.S)
STATIC_REF = re.compile(
    r"""\{\{\s*config\[['"]server['"]\]\[['"]url['"]\]\s*\}\}/static/([^"'\s)?#]+)"""
    r"""|config\[['"]server['"]\]\[['"]url['"]\]\s*\+\s*['"]/static/([^"'\s)?#]+)['"]"""
)


def _template_files() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*") if p.is_file())


def _web_files() -> list[Path]:
    return sorted(p for p in WEB.rglob("*") if p.is_file() and p.suffix.lower() in WEB_SUFFIXES)


def _rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def _is_identifier(url: str) -> bool:
    return url.startswith(IDENTIFIER_PREFIXES)


def _enclosing_tag(text: str, pos: int) -> str:
    start = text.rfind("<", 0, pos)
    if start < 0 or text.rfind(">", start, pos) >= 0:
        return ""
    m = re.match(r"<\s*([a-zA-Z0-9-]+)", text[start:])
    return m.group(1).lower() if m else ""


def external_fetches(text: str) -> list[tuple[str, str]]:
    """(url, excerpt) for every external URL that `text` (HTML/JS/CSS or a Jinja template) makes a
    browser fetch."""
    found = []
    for kind, rx in FETCH_PATTERNS.items():
        for m in rx.finditer(text):
            url = m.groups()[-1]
            if _is_identifier(url):
                continue
            if kind == "attribute" and m.group(1).lower() == "href":
                tag = _enclosing_tag(text, m.start())
                host = urlsplit(url if "://" in url else "http:" + url).hostname or ""
                # a plain link is only followed when clicked: allowed to a few known hosts
                if tag == "a" and host.removeprefix("www.") in ANCHOR_HOSTS:
                    continue
            found.append((url, f"{kind}: {text[max(0, m.start() - 40):m.end()].strip()}"))
    return found


# --- the folder structure --------------------------------------------------------------------


def test_template_tree_covers_every_pygeoapi_template() -> None:
    """pygeoapi falls back to its own (CDN-loading) template for any file missing here."""
    pygeoapi = pytest.importorskip("pygeoapi")
    stock = Path(pygeoapi.__file__).parent / "templates"
    ours = {p.relative_to(TEMPLATES) for p in _template_files()}
    missing = sorted(str(p.relative_to(stock)) for p in stock.rglob("*")
                     if p.is_file() and p.relative_to(stock) not in ours)
    assert not missing, f"pygeoapi templates without a GeoIOC copy in api/ogc_templates: {missing}"


def test_static_folder_has_pygeoapi_assets_and_vendor_licences() -> None:
    for name in ("css/default.css", "img/favicon.ico", "img/logo.png", "img/pygeoapi.png",
                 "vendor/VERSIONS.md"):
        assert (STATIC / name).is_file(), name
    vendor = STATIC / "vendor"
    packages = [p for p in vendor.iterdir() if p.is_dir()]
    assert {"leaflet", "leaflet.markercluster", "leaflet.vectorgrid", "leaflet.heat", "bootstrap",
            "swagger-ui-dist", "redoc"} <= {p.name for p in packages}
    versions = (vendor / "VERSIONS.md").read_text()
    for pkg in packages:
        assert (pkg / "LICENSE").is_file(), f"{pkg.name} has no LICENSE"
        assert f"| {pkg.name}@" in versions, f"{pkg.name} not listed in VERSIONS.md"
    size = sum(p.stat().st_size for p in vendor.rglob("*") if p.is_file())
    assert size < 5 * 1024 * 1024, f"vendored assets are {size / 1e6:.1f} MB"


# --- no external fetches in the sources -----------------------------------------------------


@pytest.mark.parametrize("path", _template_files(), ids=_rel)
def test_template_fetches_nothing_external(path: Path) -> None:
    text = JINJA_COMMENT.sub("", path.read_text(encoding="utf-8"))
    assert not external_fetches(text), external_fetches(text)
    # and no other literal internet URL, apart from identifiers and the pygeoapi attribution
    others = [u for u in re.findall(r"https?://[^\s\"'<>)]+", text)
              if not _is_identifier(u) and urlsplit(u).hostname not in ANCHOR_HOSTS]
    assert not others, others


def test_web_files_exist() -> None:
    assert _web_files(), "nothing under web/ to check"


@pytest.mark.parametrize("path", _web_files(), ids=_rel)
def test_web_file_fetches_nothing_external(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    assert not external_fetches(text), external_fetches(text)


@pytest.mark.parametrize("path", [p for p in _web_files() if p.suffix == ".css"], ids=_rel)
def test_css_relative_urls_resolve(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    for ref in re.findall(r"""url\(\s*["']?([^"')]+?)["']?\s*\)""", text):
        if ref.startswith(("data:", "#", "%23")):
            continue
        target = (path.parent / ref.split("?")[0].split("#")[0]).resolve()
        assert target.is_file(), f"{_rel(path)}: url({ref}) -> missing {target}"


def test_template_static_references_exist() -> None:
    seen = 0
    for path in _template_files():
        text = JINJA_COMMENT.sub("", path.read_text(encoding="utf-8"))
        for m in STATIC_REF.finditer(text):
            ref = m.group(1) or m.group(2)
            assert "{" not in ref, f"{_rel(path)}: templated static path {ref!r} cannot be checked"
            assert (STATIC / ref).is_file(), f"{_rel(path)}: /static/{ref} does not exist in web/static"
            seen += 1
    assert seen >= 20  # bootstrap, default.css, images, leaflet, markercluster, swagger, redoc ...


@pytest.mark.parametrize("source, expect", [
    ('<script src="https://unpkg.com/x.js"></script>', 1),
    ('<link rel="stylesheet" href="//cdn.example.com/x.css">', 1),
    ("@import url('https://fonts.googleapis.com/css?family=Roboto');", 2),  # as @import and url()
    ('.x { background: url("https://example.com/a.png") }', 1),
    ('<a href="https://pygeoapi.io">pygeoapi</a>', 0),
    ('<a href="https://example.com">x</a>', 1),
    ('<link rel="canonical" href="http://www.opengis.net/def/crs/OGC/1.3/CRS84">', 0),
    ("<img src=\"{{ config['server']['url'] }}/static/img/logo.png\">", 0),
    ('.x { background: url("data:image/svg+xml,<svg xmlns=\'http://www.w3.org/2000/svg\'/>") }', 0),
])
def test_scanner_catches_external_fetches(source: str, expect: int) -> None:
    assert len(external_fetches(source)) == expect


# --- rendered pages ------------------------------------------------------------------------

SERVER_URL = "http://testserver/ogc"


def _config(tmp: Path, map_url: str) -> dict:
    data = tmp / "poi.geojson"
    data.write_text(
        '{"type": "FeatureCollection", "features": ['
        '{"type": "Feature", "id": 1, "properties": {"name": "UBND tinh"},'
        ' "geometry": {"type": "Point", "coordinates": [105.85, 21.03]}},'
        '{"type": "Feature", "id": 2, "properties": {"name": "Ranh gioi"}, "geometry": {"type": "Polygon",'
        ' "coordinates": [[[105.8, 21.0], [105.9, 21.0], [105.9, 21.1], [105.8, 21.0]]]}}]}'
    )
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": 5000}, "url": SERVER_URL,
            "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8",
            "languages": ["en-US", "vi-VN"], "limits": {"default_items": 10, "max_items": 50},
            "map": {"url": map_url, "attribution": ""},
            "templates": {"path": str(TEMPLATES), "static": str(STATIC)},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {"title": "GeoIOC", "description": "test", "keywords": ["geoioc"],
                               "keywords_type": "theme", "terms_of_service": "", "url": SERVER_URL},
            "license": {"name": "CC-BY 4.0", "url": SERVER_URL},
            "provider": {"name": "GeoIOC", "url": SERVER_URL},
            "contact": {"name": "Ops", "email": "ops@example.invalid"},
        },
        "resources": {"poi": {
            "type": "collection", "title": "Points", "description": "Points", "keywords": ["poi"],
            "links": [],
            "extents": {"spatial": {"bbox": [105.7, 20.9, 106.0, 21.1],
                                    "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
            "providers": [{"type": "feature", "name": "GeoJSON", "data": str(data),
                           "id_field": "id", "title_field": "name"}],
        }},
    }


def _render_pages(config: dict) -> dict[str, str]:
    pytest.importorskip("pygeoapi")
    import pygeoapi.api as core
    import pygeoapi.api.itemtypes as itemtypes
    from pygeoapi import l10n
    from pygeoapi.openapi import get_oas
    from starlette.requests import Request

    # pygeoapi caches the translated config per locale for the whole process
    l10n._cfg_cache.clear()
    try:
        return _render_with(core.API(config, get_oas(config)), core, itemtypes, Request)
    finally:
        l10n._cfg_cache.clear()


def _render_with(api, core, itemtypes, Request) -> dict[str, str]:

    def req(path: str, query: str = "f=html"):
        scope = {"type": "http", "method": "GET", "path": path, "query_string": query.encode(),
                 "headers": [(b"accept", b"text/html")]}
        return core.APIRequest(Request(scope), api.locales)

    calls = {
        "landing": (core.landing_page, req("/")),
        "collections": (core.describe_collections, req("/collections")),
        "collection": (core.describe_collections, req("/collections/poi"), "poi"),
        "items": (itemtypes.get_collection_items, req("/collections/poi/items"), "poi"),
        "item": (itemtypes.get_collection_item, req("/collections/poi/items/2"), "poi", "2"),
        "queryables": (itemtypes.get_collection_queryables, req("/collections/poi/queryables"), "poi"),
        "conformance": (core.conformance, req("/conformance")),
        "swagger": (core.openapi_, req("/openapi")),
        "redoc": (core.openapi_, req("/openapi", "f=html&ui=redoc")),
    }
    pages = {}
    for name, (func, request, *args) in calls.items():
        headers, status, content = func(api, request, *args)
        assert status == 200, (name, status, content[:500])
        assert "text/html" in headers["Content-Type"], name
        pages[name] = content
    return pages


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, str]:
    return _render_pages(_config(tmp_path_factory.mktemp("ogc"), map_url=""))


def test_rendered_pages_fetch_only_local_assets(rendered: dict[str, str]) -> None:
    for name, html in rendered.items():
        external = [e for url, e in external_fetches(html) if urlsplit(url).hostname != "testserver"]
        assert not external, (name, external)
        for ref in re.findall(re.escape(SERVER_URL) + r"/static/([^\"'\s)?#]+)", html):
            assert (STATIC / ref).is_file(), (name, ref)
        assert "googleapis" not in html and "html5shiv" not in html, name


def test_rendered_pages_use_vendored_libraries(rendered: dict[str, str]) -> None:
    vendor = f"{SERVER_URL}/static/vendor"
    assert f"{vendor}/bootstrap/css/bootstrap.min.css" in rendered["landing"]
    assert f"{vendor}/leaflet/leaflet.js" in rendered["items"]
    assert f"{vendor}/leaflet.markercluster/leaflet.markercluster.js" in rendered["items"]
    assert f"{vendor}/swagger-ui-dist/swagger-ui-bundle.js" in rendered["swagger"]
    assert f"{vendor}/redoc/redoc.standalone.js" in rendered["redoc"]
    # the OpenAPI UIs get the document with its internet $refs replaced before rendering it
    for ui in ("swagger", "redoc"):
        assert "geoiocLoadOpenAPI(" in rendered[ui]
    assert "GeoIOC" in rendered["landing"] and "pygeoapi" in rendered["landing"]  # brand + attribution


def test_no_basemap_without_map_url(rendered: dict[str, str]) -> None:
    for name in ("collection", "items", "item"):
        assert "L.TileLayer(" not in rendered[name], name
        assert "fitBounds(" in rendered[name], name


def test_basemap_when_map_url_configured(tmp_path: Path) -> None:
    tiles = "http://127.0.0.1:8080/basemap/{z}/{x}/{y}.png"
    pages = _render_pages(_config(tmp_path, map_url=tiles))
    for name in ("collection", "items", "item"):
        assert "L.TileLayer(" in pages[name] and tiles in pages[name], name
