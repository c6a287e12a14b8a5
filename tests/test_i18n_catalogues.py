"""Every message catalogue has every key in both languages, and every key the code asks for.

The catalogues: the map's strings (web/static/map/i18n.js), the parcel pages' labels
(web/parcels_pages.py LABELS), the extract's texts (gis/parcels/extract.py TEXTS), the error
page's titles (web/errors.py), the map page's titles, role titles (gis/auth/roles.py), the error
messages (api/messages.py MESSAGES, with one entry per pydantic error type it maps) and the
catalogue's own labels (layers/catalogue.py). The OGC pages' .po files are checked by
tests/test_ogc_html_locale.py. Also here: the number and date rules (gis/fmt.py) that the
browser tests see on the pages. Needs no database.
"""

from __future__ import annotations

import datetime as dt
import re
import string
import typing
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic_core.core_schema import ErrorType

import gis.io.export  # noqa: F401  (their error classes, for the fallbacks)
import gis.io.imports.errors  # noqa: F401
import gis.parcels.errors  # noqa: F401
import layers.cql2  # noqa: F401
from api import messages
from api.errors import STATUS_CODES
from gis import fmt
from gis.auth.roles import ROLE_TITLES, ROLES
from gis.parcels.extract import TEXTS
from layers.catalogue import DOMAINS, LAYERS
from layers.errors import GeoIOCError
from web import errors as web_errors
from web import map_page, parcels_pages, report_pages
from web.manifest import HEATMAP, SENSOR_STATES

ROOT = Path(__file__).resolve().parents[1]
MAP_JS = ROOT / "web" / "static" / "map"
TEMPLATES = ROOT / "web" / "templates" / "parcels"
LANGS = ("vi", "en")


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _js_placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", text))


def map_strings() -> dict[str, dict[str, str]]:
    """STRINGS of i18n.js, read as the file writes it: `lang: {`, then `key: "text",` lines.
    Any other line inside a block fails the test (the reader must not skip keys silently)."""
    source = (MAP_JS / "i18n.js").read_text(encoding="utf-8")
    body = source[source.index("const STRINGS = {"):source.index("\n  };\n")]
    tables: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in body.splitlines()[1:]:
        line = line.strip()
        if m := re.fullmatch(r"(\w+): \{", line):
            current = tables.setdefault(m.group(1), {})
        elif line == "},":
            current = None
        elif line:
            m = re.fullmatch(r'(\w+): "((?:[^"\\]|\\.)*)",', line)
            assert m and current is not None, f"i18n.js: cannot read {line!r}"
            assert m.group(1) not in current, f"i18n.js: {m.group(1)} twice"
            current[m.group(1)] = m.group(2)
    return tables


# --- the map ----------------------------------------------------------------------------------


def test_map_strings_have_every_key_in_both_languages() -> None:
    tables = map_strings()
    assert set(tables) == set(LANGS)
    assert len(tables["vi"]) > 50
    assert tables["vi"].keys() == tables["en"].keys(), \
        set(tables["vi"]).symmetric_difference(tables["en"])
    for key in tables["vi"]:
        vi, en = tables["vi"][key], tables["en"][key]
        assert vi and en, key
        assert _js_placeholders(vi) == _js_placeholders(en), key


def test_map_asks_only_for_keys_it_has() -> None:
    keys = map_strings()["vi"]
    used: set[str] = set()
    for path in MAP_JS.glob("*.js"):
        used |= set(re.findall(r'G\.t\(\s*"(\w+)"', path.read_text(encoding="utf-8")))
    page = (ROOT / "web" / "map_page.py").read_text(encoding="utf-8")
    used |= set(re.findall(r'data-i18n(?:-[\w-]+)?="(\w+)"', page))
    # Keys chosen at run time: the era buttons, Leaflet's zoom buttons.
    used |= {"era_previous", "era_current", "zoom_in", "zoom_out"}
    assert len(used) > 40
    assert not used - set(keys), used - set(keys)


def test_map_page_titles() -> None:
    for table in (map_page.TITLES, map_page.NOSCRIPT):
        assert set(table) == set(LANGS) and all(table[lang] for lang in LANGS)
    # The subtitle the page is served with is the one the script puts back after a switch.
    strings = map_strings()
    for lang in LANGS:
        assert map_page.TITLES[lang][1] == f"GeoIOC – {strings[lang]['app_subtitle']}"
        assert map_page.TITLES[lang][0] == strings[lang]["app_title"]


# --- the parcel pages, the extract, the error page -------------------------------------------


def test_parcel_page_labels_have_every_key_in_both_languages() -> None:
    vi, en = parcels_pages.LABELS["vi"], parcels_pages.LABELS["en"]
    assert set(parcels_pages.LABELS) == set(LANGS)
    assert vi.keys() == en.keys(), set(vi).symmetric_difference(en)
    assert all(vi[k] and en[k] for k in vi)


def test_report_page_labels_have_every_key_in_both_languages() -> None:
    """The citizens' pages (web/report_pages.py): both languages, same placeholders; every label
    the templates, the page script's list and the tracking view ask for exists."""
    vi, en = report_pages.LABELS["vi"], report_pages.LABELS["en"]
    assert set(report_pages.LABELS) == set(LANGS)
    assert vi.keys() == en.keys(), set(vi).symmetric_difference(en)
    for key in vi:
        assert vi[key] and en[key], key
        assert _js_placeholders(vi[key]) == _js_placeholders(en[key]), key
    used = set(report_pages.SCRIPT_KEYS) | set(report_pages.TRACK_SCRIPT_KEYS)
    for name in ("_base.html", "report.html", "track.html"):
        used |= set(re.findall(r"\bt\.(\w+)", (ROOT / "web" / "templates" / "report" / name)
                               .read_text(encoding="utf-8")))
    used |= {f"kind_{k}" for k in ("assign", "duplicate", "unlink", "reopen")}
    used |= {f"actor_{a}" for a in ("citizen", "system", "staff")}
    used |= {"track_bad_code", "track_not_found"}  # error= of track_page
    assert not used - set(vi), used - set(vi)
    script = (ROOT / "web" / "static" / "report" / "report.js").read_text(encoding="utf-8")
    assert set(re.findall(r"\bT\.(\w+)", script)) <= set(report_pages.SCRIPT_KEYS)
    script = (ROOT / "web" / "static" / "report" / "track.js").read_text(encoding="utf-8")
    assert set(re.findall(r"\bT\.(\w+)", script)) <= set(report_pages.TRACK_SCRIPT_KEYS)


def test_parcel_templates_ask_only_for_labels_they_have() -> None:
    used: set[str] = set()
    for name in ("_base.html", "search.html", "parcel.html"):
        used |= set(re.findall(r"\bt\.(\w+)", (TEMPLATES / name).read_text(encoding="utf-8")))
    used |= {"area_discrepancy", "zoning_conflict"}  # t[f] for the parcel's flags
    assert not used - set(parcels_pages.LABELS["vi"]), used - set(parcels_pages.LABELS["vi"])
    extract_used = set(re.findall(r"\bt\.(\w+)", (TEMPLATES / "extract.html").read_text(encoding="utf-8")))
    for module in ("gis/parcels/extract.py", "gis/parcels/pdf.py"):
        source = (ROOT / module).read_text(encoding="utf-8")
        extract_used |= set(re.findall(r"""\bt\[["'](\w+)["']\]""", source))
    assert extract_used and not extract_used - set(TEXTS["vi"]), extract_used - set(TEXTS["vi"])


def test_extract_texts_have_every_key_in_both_languages() -> None:
    assert set(TEXTS) == set(LANGS)
    assert TEXTS["vi"].keys() == TEXTS["en"].keys()
    for key in TEXTS["vi"]:
        assert TEXTS["vi"][key] and TEXTS["en"][key], key
        assert _placeholders(TEXTS["vi"][key]) == _placeholders(TEXTS["en"][key]), key


def test_error_page_titles_and_role_titles() -> None:
    assert web_errors.TITLES["vi"].keys() == web_errors.TITLES["en"].keys()
    assert set(web_errors.FALLBACK) == set(LANGS)
    assert set(ROLE_TITLES) == set(ROLES)
    assert all(vi and en and vi != en for vi, en in ROLE_TITLES.values())


def test_catalogue_labels_in_both_languages() -> None:
    """What the manifest sends the map: layer titles and descriptions, field titles, coded values."""
    for layer in LAYERS:
        assert layer.title_vi and layer.title_en and layer.description_vi and layer.description_en
        for f in layer.fields:
            assert f.title_vi and f.title_en, (layer.id, f.name)
            for value, labels in f.values.items():
                assert len(labels) == 2 and all(labels), (layer.id, f.name, value)
    assert all(len(t) == 2 and all(t) for t in DOMAINS.values())
    assert all(vi and en for vi, en, _ in SENSOR_STATES.values())
    assert set(HEATMAP["title"]) == set(HEATMAP["description"]) == set(LANGS)


# --- error messages ---------------------------------------------------------------------------


def test_error_messages_have_both_languages_with_the_same_placeholders() -> None:
    assert len(messages.MESSAGES) > 40
    for key, (vi, en) in messages.MESSAGES.items():
        assert vi and en and vi != en, key
        assert _placeholders(vi) == _placeholders(en), key


def test_every_pydantic_error_type_mapped_is_real_and_has_a_message() -> None:
    real = set(typing.get_args(ErrorType))
    assert not set(messages.PYDANTIC) - real, set(messages.PYDANTIC) - real
    assert set(messages.PYDANTIC.values()) <= set(messages.MESSAGES)
    # The types a request can produce on our parameters and bodies are all worded.
    for common in ("missing", "extra_forbidden", "int_parsing", "float_parsing", "string_too_long",
                   "less_than_equal", "greater_than_equal", "literal_error", "date_parsing",
                   "datetime_parsing", "list_type", "dict_type", "json_invalid", "bool_parsing"):
        assert common in messages.PYDANTIC, common


def test_every_message_the_code_raises_is_in_the_catalogue() -> None:
    used: set[str] = set()
    for package in ("api", "gis", "layers", "web"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            used |= set(re.findall(r'(?:Message|for_field|_Bad)\(\s*"(\w+)"', text))
            # Helpers that take the entry after the English text: _bad(english, "key", ...),
            # ParamError(english, "key"), ExportError.field(name, english, "key", ...),
            # ImportFileError(english, "key", ...), Reason(english, "key", ...).
            used |= set(re.findall(r'(?:\b_bad|\bsta_error|ParamError|\.field|ImportFileError|Reason)\('
                                   r'(?:[^()]|\([^()]*\))*?,\s*"(\w+)"\s*[,)]', text, re.S))
    used.discard("problems")  # layers.errors.PROBLEMS: the problems listed
    from gis.geos import GEOS_REASONS, OTHER
    from gis.io.imports.validate import WHY_ENTRIES

    used |= {key for _, key in WHY_ENTRIES}

    used |= {*GEOS_REASONS.values(), OTHER}
    used |= {f"status_{status}" for status in STATUS_CODES.values()} | {"status_other"}
    # Each error class's fallback.
    for cls in _subclasses(GeoIOCError):
        if cls.fallback is not None:
            used.add(cls.fallback.key)
    for key in ("bbox_numbers", "interval_order", "export_no_field", "geometry_ring_open",
                "geometry_position", "export_encoding", "status_422", "cql2_invalid", "export_invalid",
                "geometry_invalid", "param_invalid", "crs_unsupported_any", "import_file_type",
                "import_duplicate", "import_empty_geometry", "import_row_refused", "import_crs"):
        assert key in used, key  # the readers above see the helpers' entries
    assert len(used) > 25
    assert not used - set(messages.MESSAGES), used - set(messages.MESSAGES)


def _subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_subclasses(sub)}
    return out


def test_a_pydantic_error_reads_in_either_language() -> None:
    p = messages.from_pydantic("limit", {"type": "less_than_equal", "ctx": {"le": 10000}})
    assert p.reason == "must be at most 10,000"
    assert messages.reason(p, "vi") == "không được lớn hơn 10.000"
    p = messages.from_pydantic("format", {"type": "literal_error", "ctx": {"expected": "'shp' or 'kml'"}})
    assert messages.reason(p, "vi") == "phải là một trong các giá trị: 'shp' hoặc 'kml'"
    unknown = messages.from_pydantic("x", {"type": "no_such_type"})
    assert messages.reason(unknown, "vi") == "giá trị không hợp lệ" and unknown.reason == "invalid value"


# --- numbers and dates (gis/fmt.py; web/static/common/format.js applies the same rules) ------


@pytest.mark.parametrize("value, lang, decimals, kwargs, text", [
    (1234.5, "vi", 1, {}, "1.234,5"),
    (1234.5, "en", 1, {}, "1,234.5"),
    (Decimal("24.1"), "vi", 1, {}, "24,1"),
    (24.100000000000001, "en", 1, {}, "24.1"),
    (1234567, "vi", 0, {}, "1.234.567"),
    (-1.03, "vi", 2, {"sign": True}, "-1,03"),
    (3.5, "en", 2, {"sign": True}, "+3.50"),
    (-0.001, "vi", 2, {}, "0,00"),
    (2340446.6704, "vi", 3, {"group": False}, "2340446,670"),
    (None, "vi", 1, {}, "–"),
    (float("nan"), "en", 1, {}, "–"),
])
def test_numbers(value, lang, decimals, kwargs, text) -> None:
    assert fmt.number(value, lang, decimals, **kwargs) == text


def test_times_are_vietnam_time_whatever_the_input() -> None:
    utc = dt.datetime(2025, 6, 30, 17, 5, tzinfo=dt.UTC)  # 1 July 00:05 in Vietnam
    assert fmt.datetime(utc) == "01/07/2025 00:05"
    assert fmt.datetime("2025-06-30T17:05:00+00:00") == "01/07/2025 00:05"
    assert fmt.datetime("2025-06-30T17:05:00Z") == "01/07/2025 00:05"
    assert fmt.datetime(dt.datetime(2025, 6, 30, 17, 5)) == "01/07/2025 00:05"  # naive = UTC
    assert fmt.datetime(utc.astimezone(dt.timezone(dt.timedelta(hours=-5)))) == "01/07/2025 00:05"
    assert fmt.date(utc) == "01/07/2025"
    assert fmt.date("2025-07-01") == fmt.date(dt.date(2025, 7, 1)) == "01/07/2025"
    assert fmt.datetime(None) == fmt.date("") == "–"
