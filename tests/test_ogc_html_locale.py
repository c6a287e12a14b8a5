"""The OGC API's HTML pages (pygeoapi's templates in api/ogc_templates) speak Vietnamese first and
English on request; the compiled catalogues are those of the .po sources and cover every text
the templates translate."""

from __future__ import annotations

import re

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from api.ogc.config import LOCALES, TEMPLATES


def _catalog(lang: str, ext: str) -> dict[str, str]:
    path = LOCALES / lang / "LC_MESSAGES" / f"messages.{ext}"
    with path.open("rb") as f:
        cat = read_po(f) if ext == "po" else read_mo(f)
    return {m.id: m.string for m in cat if m.id}


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_compiled_catalogues_match_their_sources(lang) -> None:
    assert _catalog(lang, "mo") == _catalog(lang, "po")


def test_every_template_text_has_a_vietnamese_translation() -> None:
    used = {m[2] for m in extract_from_dir(str(TEMPLATES), method_map=[("**.html", "jinja2")],
                                            options_map={"**.html": {"extensions": "jinja2.ext.i18n"}})}
    vi = _catalog("vi", "po")
    assert used and not used - {k for k, v in vi.items() if v}


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_pages_are_vietnamese_first_and_english_on_request(client) -> None:
    vi = client.get("/ogc?f=html")
    assert '<html lang="vi" dir="ltr"' in vi.text
    assert "Xem các bộ dữ liệu của dịch vụ này" in _text(vi.text)
    assert "View the collections" not in vi.text
    en = client.get("/ogc?f=html&lang=en")
    assert '<html lang="en" dir="ltr"' in en.text
    assert "View the collections in this service" in _text(en.text)
    items = _text(client.get("/ogc/collections/parcels/items?f=html&limit=2").text)
    assert "Bộ dữ liệu / Thửa đất địa chính / Đối tượng" in items
    assert "Cảnh báo: không nên đặt giới hạn cao hơn!" in items


def test_times_numbers_and_links_are_the_pages_own(client, conn) -> None:
    """Vietnam time dd/mm/yyyy HH:mm (gis/fmt.py) instead of UTC ISO text, the page's decimal
    separator, and links that keep the page's language."""
    from gis import fmt

    row = conn.execute("SELECT id, updated_at, legal_area FROM parcels WHERE legal_area <> round(legal_area)"
                       " ORDER BY id LIMIT 1").fetchone()
    pid, updated, area = row
    for lang, sep in (("vi", ","), ("en", ".")):
        r = client.get(f"/ogc/collections/parcels/items/{pid}?f=html&lang={lang}")
        assert r.status_code == 200
        text = _text(re.sub(r"<script.*?</script>", " ", r.text, flags=re.S))
        assert fmt.datetime(updated) in text
        assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", text), text
        assert f" {fmt.number(area, lang, 1)} " in text and sep in fmt.number(area, lang, 1)
        assert " None " not in text
        ours = [h for h in re.findall(r'href="([^"]+)"', r.text)
                if "/ogc" in h and "/static/" not in h]
        assert ours and all(f"lang={lang}" in h for h in ours), ours
    items = client.get("/ogc/collections/roads/items?f=html&limit=3").text
    assert not re.search(r">\s*\d{4}-\d\d-\d\dT\d\d:\d\d", items)
    assert re.search(r">\s*\d\d/\d\d/\d{4} \d\d:\d\d\s*<", items)
