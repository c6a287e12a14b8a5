"""CSV and XLSX files into rows of text, each with the row number the user sees (the line in a
text editor, the row in Excel), header and title rows counted: yearbook tables carry title rows
above their header, so "the third data row" would name nothing the user can find.

CSV: UTF-8 with or without a byte-order mark (what Excel's "CSV UTF-8" writes), separated by
commas, semicolons (Excel where the decimal mark is a comma) or tabs. XLSX: read with the
standard library (zip + XML), the first sheet or the one named: shared and inline strings,
numbers (years and values), booleans and the cached results of formulas. No dependency: the
two layouts need cell text and row numbers, nothing of Excel's styling.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

from gis.io.imports.errors import ImportFileError

Row = tuple[int, list[str]]  # (row number, cells as text; "" when empty)

_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
       "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
       "rel": "http://schemas.openxmlformats.org/package/2006/relationships"}
# At most this many rows: a yearbook table has hundreds; a million-row sheet is a mistake.
MAX_ROWS = 200_000


def read_rows(path: Path, display: str, sheet: str | None = None) -> tuple[str, list[Row]]:
    """(format label, non-empty rows) of a CSV or XLSX file."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return "CSV", _csv_rows(path, display)
    if suffix in (".xlsx", ".xlsm"):
        return "XLSX", _xlsx_rows(path, display, sheet)
    raise ImportFileError(f"{display}: unsupported file type {suffix or '(none)'}; use CSV or XLSX",
                          "indicators_file_type", file=display, suffix=suffix or "–")


def _csv_rows(path: Path, display: str) -> list[Row]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFileError(f"{display}: the file is not UTF-8; save it as CSV UTF-8",
                              "indicators_not_utf8", file=display) from None
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max((";", ",", "\t"), key=first.count) if first else ","
    rows: list[Row] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    for cells in reader:
        if any(c.strip() for c in cells):
            rows.append((reader.line_num, [c.strip() for c in cells]))
        if len(rows) > MAX_ROWS:
            raise ImportFileError(f"{display}: more than {MAX_ROWS} rows", "indicators_too_many",
                                  file=display, n=MAX_ROWS)
    return rows


def _column_index(ref: str) -> int:
    letters = re.match(r"[A-Z]+", ref)
    n = 0
    for ch in letters.group(0) if letters else "A":
        n = n * 26 + ord(ch) - 64
    return n - 1


def _xlsx_rows(path: Path, display: str, sheet: str | None) -> list[Row]:
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            shared: list[str] = []
            if "xl/sharedStrings.xml" in names:
                for si in ET.fromstring(z.read("xl/sharedStrings.xml")).findall("m:si", _NS):
                    shared.append("".join(t.text or "" for t in si.iter(f"{{{_NS['m']}}}t")))
            book = ET.fromstring(z.read("xl/workbook.xml"))
            sheets = [(s.get("name") or "", s.get(f"{{{_NS['r']}}}id") or "")
                      for s in book.findall("m:sheets/m:sheet", _NS)]
            rels = {r.get("Id"): r.get("Target") or "" for r in ET.fromstring(
                z.read("xl/_rels/workbook.xml.rels")).findall("rel:Relationship", _NS)}
            if not sheets:
                raise ImportFileError(f"{display}: the workbook has no sheet", "indicators_no_sheet",
                                      file=display, sheets="–")
            if sheet is not None:
                chosen = [s for s in sheets if s[0] == sheet]
                if not chosen:
                    raise ImportFileError(f"{display} has no sheet {sheet!r}; sheets: "
                                          f"{', '.join(s[0] for s in sheets)}", "indicators_no_sheet",
                                          file=display, sheets=", ".join(s[0] for s in sheets))
                target = rels[chosen[0][1]]
            else:
                target = rels[sheets[0][1]]
            target = target.lstrip("/")
            member = target if target.startswith("xl/") else f"xl/{target}"
            data = z.read(member)
    except ImportFileError:
        raise
    except (zipfile.BadZipFile, KeyError, ET.ParseError, OSError) as e:
        raise ImportFileError(f"cannot read {display}: not a readable XLSX workbook ({type(e).__name__})",
                              "import_cannot_read", file=display) from None
    rows: list[Row] = []
    for row in ET.fromstring(data).iterfind("m:sheetData/m:row", _NS):
        number = int(row.get("r") or len(rows) + 1)
        cells: dict[int, str] = {}
        for k, c in enumerate(row.findall("m:c", _NS)):
            kind = c.get("t") or "n"
            ref = c.get("r")
            col = _column_index(ref) if ref else k
            v = c.find("m:v", _NS)
            if kind == "inlineStr":
                text = "".join(t.text or "" for t in c.iter(f"{{{_NS['m']}}}t"))
            elif v is None or v.text is None:
                continue
            elif kind == "s":
                text = shared[int(v.text)]
            elif kind == "b":
                text = "TRUE" if v.text == "1" else "FALSE"
            elif kind == "n":
                text = _number_text(v.text)
            else:  # str (a formula's text result), e (an error such as #DIV/0!)
                text = v.text
            cells[col] = text.strip()
        if any(cells.values()):
            width = max(cells) + 1
            rows.append((number, [cells.get(i, "") for i in range(width)]))
        if len(rows) > MAX_ROWS:
            raise ImportFileError(f"{display}: more than {MAX_ROWS} rows", "indicators_too_many",
                                  file=display, n=MAX_ROWS)
    return rows


def _number_text(raw: str) -> str:
    """A stored number as its shortest text (2020, not 2020.0; 12.5 as stored)."""
    try:
        f = float(raw)
    except ValueError:
        return raw
    return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)
