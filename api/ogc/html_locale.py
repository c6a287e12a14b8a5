"""pygeoapi's HTML pages as the rest of GeoIOC shows things (gis/fmt.py), after they are rendered.

pygeoapi builds its own Jinja environment on every render (pygeoapi.util.render_j2_template) and
prints the values of features, extents and jobs as the data holds them: UTC ISO 8601 date-times
and numbers with a decimal point. Its templates (api/ogc_templates) cannot reach our formatting
rules, so the page is finished here, on the text a person reads:

- a text node that is one ISO date-time becomes Vietnam time, dd/mm/yyyy HH:mm; one ISO date
  dd/mm/yyyy (the same in both languages, gis.fmt);
- a text node that is one decimal number gets the page's separators (1.234,5 on Vietnamese
  pages, 1,234.5 on English ones), with the decimals it has; whole numbers are left as they are
  (identifiers, codes and years are whole numbers too); a missing value (Python's None) is
  the dash the other pages show;
- every link to another GeoIOC page carries the page's language (`lang=`), as on the parcel
  pages: without it, the next page would follow the browser's Accept-Language instead.

Only text between tags and href attributes are touched: scripts (the map's GeoJSON), styles,
a form's options (the templates word them in the page's language) and other attributes pass
unchanged.
"""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gis import fmt

# Passed as they are: scripts, styles and the options of a form (the templates word those).
_BLOCKS = re.compile(r"(<script\b.*?</script>|<style\b.*?</style>|<option\b.*?</option>)",
                     re.S | re.I)
_TEXT = re.compile(r">(\s*)([^<>]+?)(\s*)<")
_DATETIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?")
_DATE = re.compile(r"\d{4}-\d\d-\d\d")
_DECIMAL = re.compile(r"-?\d+\.\d+")
_HREF = re.compile(r'(\shref=")([^"]*)(")')


def _value(text: str, lang: str) -> str:
    if _DATETIME.fullmatch(text):
        try:
            return fmt.datetime(text.replace(" ", "T", 1))
        except ValueError:
            return text
    if _DATE.fullmatch(text):
        try:
            return fmt.date(text)
        except ValueError:
            return text
    if text == "None":  # a missing value, as Python prints it
        return fmt.EMPTY
    if _DECIMAL.fullmatch(text):
        decimals = len(text) - text.index(".") - 1
        return fmt.number(Decimal(text), lang, decimals)
    return text


def _link(href: str, lang: str, bases: tuple[str, ...]) -> str:
    """HREF with lang=LANG when it leads to a GeoIOC page (relative, or under one of BASES)."""
    raw = href.replace("&amp;", "&")
    parts = urlsplit(raw)
    if parts.scheme not in ("", "http", "https") or raw.startswith(("#", "mailto:")):
        return href
    if parts.netloc and not any(b and raw.startswith(b) for b in bases):
        return href  # another site
    if "/static/" in parts.path:
        return href  # a style sheet, an image
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "lang"]
    query.append(("lang", lang))
    return urlunsplit(parts._replace(query=urlencode(query))).replace("&", "&amp;")


def localise(html: str, lang: str, bases: tuple[str, ...] = ()) -> str:
    """HTML with its date-times, dates and decimal numbers in LANG's way and its links keeping
    LANG. BASES: the server's own URLs (links starting with one are ours)."""

    def text(m: re.Match[str]) -> str:
        return f">{m.group(1)}{_value(m.group(2), lang)}{m.group(3)}<"

    def href(m: re.Match[str]) -> str:
        return m.group(1) + _link(m.group(2), lang, bases) + m.group(3)

    out = []
    for i, part in enumerate(_BLOCKS.split(html)):
        if i % 2:  # a script or style block, as it is
            out.append(part)
        else:
            out.append(_HREF.sub(href, _TEXT.sub(text, part)))
    return "".join(out)
