"""Periods as statistics offices write them: `2023` (annual), `2023-Q2` (quarterly), `2023-06`
(monthly); what a file may write instead (`Năm 2023`, `Sơ bộ 2023` / `Prel. 2023` for a
preliminary figure, `Quý 2/2023`, `Q2/2023`, `6/2023`, `Tháng 6/2023`) is read into them.
The database derives each period's first day and the day after it (migration 0026); the same
rule is here for the importer, which needs the day a period's units are taken from."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

PERIODICITIES = {"annual": ("Năm", "Annual"), "quarterly": ("Quý", "Quarterly"),
                 "monthly": ("Tháng", "Monthly")}

_CANON = re.compile(r"^(\d{4})(?:-Q([1-4])|-(0[1-9]|1[0-2]))?$")


def fold(text: str) -> str:
    """TEXT without diacritics, lower case, single spaces: how names are compared (đ is d)."""
    t = unicodedata.normalize("NFD", str(text)).replace("đ", "d").replace("Đ", "D")
    t = "".join(ch for ch in t if unicodedata.category(ch) != "Mn")
    return " ".join(t.lower().split())


def parse_period(raw: object) -> str | None:
    """The canonical period of RAW, or None when it is not one."""
    if raw is None:
        return None
    text = str(raw).strip()
    if re.fullmatch(r"\d{4}\.0", text):  # a year read from a spreadsheet as a number
        text = text[:4]
    if _CANON.match(text):
        return text
    f = fold(text)
    f = re.sub(r"^(nam|year|so bo|uoc tinh|prel\.?|preliminary|est\.?)\s*", "", f)
    f = re.sub(r"\s*\((so bo|prel\.?|preliminary|uoc tinh)\)$", "", f)
    if re.fullmatch(r"\d{4}", f):
        return f
    m = re.fullmatch(r"(?:quy|q|quarter)\s*([1-4])\s*[/-]\s*(\d{4})", f) or None
    if m:
        return f"{m.group(2)}-Q{m.group(1)}"
    m = re.fullmatch(r"(\d{4})\s*[/-]?\s*(?:quy|q)\s*([1-4])", f)
    if m:
        return f"{m.group(1)}-Q{m.group(2)}"
    m = re.fullmatch(r"(?:thang|month)?\s*(\d{1,2})\s*[/-]\s*(\d{4})", f)
    if m and 1 <= int(m.group(1)) <= 12:
        return f"{m.group(2)}-{int(m.group(1)):02d}"
    return None


def periodicity(period: str) -> str:
    return "quarterly" if "-Q" in period else "monthly" if "-" in period else "annual"


def bounds(period: str) -> tuple[dt.date, dt.date]:
    """(first day, day after the last) of a canonical period."""
    m = _CANON.match(period)
    if not m:
        raise ValueError(f"not a period: {period!r}")
    year = int(m.group(1))
    if m.group(2):
        q = int(m.group(2))
        start = dt.date(year, 3 * q - 2, 1)
        end = dt.date(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1)
    elif m.group(3):
        month = int(m.group(3))
        start = dt.date(year, month, 1)
        end = dt.date(year + (month == 12), 1 if month == 12 else month + 1, 1)
    else:
        start, end = dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
    return start, end


def label(period: str, lang: str = "vi") -> str:
    """A canonical period as people read it: `2024`, `Quý 2/2024` (`Q2 2024`), `Tháng 6/2024`
    (`06/2024`)."""
    m = _CANON.match(period)
    if not m:
        return period
    if m.group(2):
        return f"Quý {m.group(2)}/{m.group(1)}" if lang == "vi" else f"Q{m.group(2)} {m.group(1)}"
    if m.group(3):
        return (f"Tháng {int(m.group(3))}/{m.group(1)}" if lang == "vi"
                else f"{m.group(3)}/{m.group(1)}")
    return m.group(1)
