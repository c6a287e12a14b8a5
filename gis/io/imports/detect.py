"""Which CRS and which text encoding an import file is in.

Both are decided per source table before any value is checked, because both silently corrupt
everything downstream when wrong: a VN-2000 file read without its datum shift lands 220 m off
(gis.io.sourcecrs refuses such a CRS and says which EPSG code was meant), and a TCVN3 or VNI
attribute table read as Latin-1 stores "X· Hoµ B×nh" for "Xã Hoà Bình" (gis.io.encodings
recognises the legacy encodings by whether the decoded words are Vietnamese syllables). When
the evidence is too thin to be sure, the import is refused with the option that settles it
(--crs, --from-encoding) rather than guessed. Both helper modules stay in gis.io because the
exports use them too.
"""

from __future__ import annotations

import re

import pyarrow as pa

from gis.io import encodings, sourcecrs
from gis.io.imports.errors import ImportFileError
from gis.io.imports.read import Source
from gis.io.imports.report import ImportReport, Reason

# Names users give the encodings (and those of other tools' menus) -> ours.
ENCODING_ALIASES = {"utf8": "utf-8", "unicode": "utf-8", "tcvn": "tcvn3", "abc": "tcvn3",
                    "vnitimes": "vni", "vni-windows": "vni", "windows-1258": "cp1258",
                    "iso-8859-1": "latin-1", "latin1": "latin-1"}
# Detection looks at this many rows of each column, and this many distinct non-ASCII values:
# a sample is enough to decide, and cheap on a million rows.
SAMPLE_ROWS = 50_000
SAMPLE_VALUES = 3000


def encoding_option(raw: str | None) -> str | None:
    """The --from-encoding option as one of encodings.ENCODINGS (None: detect). Checked before
    the file is read, so a typo fails at once."""
    if not raw:
        return None
    e = raw.strip().lower().replace("_", "-")
    e = ENCODING_ALIASES.get(e, e)
    if e not in encodings.ENCODINGS:
        raise ImportFileError(f"from-encoding: {raw!r} is not one of {', '.join(encodings.ENCODINGS)}",
                              "import_encoding_name", value=repr(raw),
                              choices=", ".join(encodings.ENCODINGS))
    return e


def fix_text(src: Source, fields: dict[str, str], forced: str | None, report: ImportReport) -> None:
    """Decide the encoding of SRC's text columns (those among FIELDS' file columns) and convert
    them to Unicode in place; FORCED (the caller's --from-encoding) overrides detection."""
    text_cols = [c for c in fields if pa.types.is_string(src.table.schema.field(c).type)
                 or pa.types.is_large_string(src.table.schema.field(c).type)]
    if not text_cols:
        return
    if forced:
        enc = forced
        if not src.raw_text and enc == "utf-8":
            return
    else:
        sample: list[str] = []
        for c in text_cols:
            values = src.table.column(c).slice(0, SAMPLE_ROWS).drop_null().unique().to_pylist()
            sample += [v for v in values[:SAMPLE_VALUES] if v and not v.isascii()]
        d = encodings.detect(sample, raw=src.raw_text)
        if d.encoding is None or (d.encoding == "utf-8" and src.raw_text):
            if not src.raw_text:  # Unicode as read, nothing to convert
                return
            enc = "utf-8"
        elif encodings.suspicious(d):
            raise ImportFileError(
                f"{src.name}: the text looks like legacy {d.describe()}, but there is too little of "
                f"it to be sure; re-run with --from-encoding {d.encoding} to convert it (or "
                "--from-encoding utf-8 to keep it as it is)", "import_encoding_unsure",
                file=src.name, encoding=d.encoding)
        elif d.legacy:
            enc = d.encoding
            report.warnings.append(Reason(f"{src.name}: text converted from {d.describe()} to Unicode",
                                          "import_w_converted", file=src.name, encoding=d.describe()))
        else:  # nothing Vietnamese, not UTF-8: the declared code page, or Latin-1
            enc = _codepage(src.declared_encoding) or "latin-1"
            report.warnings.append(Reason(f"{src.name}: text is not UTF-8; read as {enc}",
                                          "import_w_not_utf8", file=src.name, encoding=enc))
    report.encoding = enc
    for c in text_cols:
        col = src.table.column(c)
        i = src.table.column_names.index(c)
        if src.raw_text:
            if enc == "utf-8":
                try:
                    values = [None if v is None else v.encode("latin-1").decode("utf-8")
                              for v in col.to_pylist()]
                except UnicodeDecodeError:
                    raise ImportFileError(f"{src.name}: column {c} is not valid UTF-8; re-run with "
                                          "--from-encoding tcvn3 (or vni, cp1258)",
                                          "import_not_utf8", file=src.name, column=c) from None
            else:
                values = [None if v is None else encodings.decode(v.encode("latin-1"), enc)
                          for v in col.to_pylist()]
        else:
            values = [None if v is None else encodings.reinterpret(v, enc) for v in col.to_pylist()]
        src.table = src.table.set_column(i, c, pa.array(values, pa.string()))


def _codepage(declared: str | None) -> str | None:
    """A Shapefile's .cpg ("65001", "ANSI 1258", "CP1252") as a Python codec name, if it is one."""
    if not declared:
        return None
    d = declared.strip().upper()
    if d in ("UTF-8", "UTF8", "65001"):
        return "utf-8"
    m = re.fullmatch(r"(?:ANSI |CP|WINDOWS-)?(\d{3,4})", d)
    if m:
        return f"cp{m.group(1)}"
    return None


def source_crs(src: Source, crs: str | None, report: ImportReport) -> sourcecrs.SourceCRS:
    """SRC's CRS: the caller's CRS (--crs) if given, else the file's (.prj, GeoPackage, ...),
    else an EPSG code in the file's name; refused (ImportFileError) when unknown or a trap."""
    text, origin = src.crs_text, src.crs_origin
    if not text and not crs:
        m = re.search(r"EPSG[_-]?(\d{4,5})", src.name, re.IGNORECASE)
        if m:  # our own CSV exports carry the code in their name
            text, origin = f"EPSG:{m.group(1)}", "file name"
            report.warnings.append(Reason(f"{src.name}: CRS EPSG:{m.group(1)} taken from the file name",
                                          "import_w_crs_name", file=src.name, code=m.group(1)))
    try:
        out = sourcecrs.resolve(text, crs, origin)
    except sourcecrs.SourceCRSError as e:
        raise ImportFileError(f"{src.name}: {e}", "import_crs", file=src.name) from None
    # sourcecrs' one warning: the file's own CRS differs from the one asked for (used).
    report.warnings += [Reason(w, "import_w_crs_differs", asked=out.label) for w in out.warnings]
    return out
