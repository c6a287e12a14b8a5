"""Imports into a catalogue layer from Shapefile (zip or .shp), GeoPackage, GeoJSON, FlatGeobuf
and CSV (a WKT column, or longitude/latitude columns).

What a land officer can count on (and why it is built so):

* All or nothing by default. Every row is checked before anything is written; a file with one
  bad row writes nothing and the report lists every rejected row with its number (1-based, in
  the order of the source file, header not counted) and the reason. `partial` writes the good
  rows and reports the others.
* Idempotent. Rows are matched on the layer's natural key (Layer.natural_key; parcels: commune,
  pre-2025 commune, sheet, parcel; cameras and sensors: code; administrative units: code and
  start of validity) and only rows that differ are updated, so importing the same file twice
  changes nothing (no new parcel versions, no history rows). Layers without a natural key
  (roads, land-use zones, tourism places, incidents) match on content: a row identical to a
  stored one (same values and geometry) is left alone, any other row is added - re-importing is
  still a no-op, but an edited row comes in as a new feature (there is no key to say which one
  it replaces).
* Never a 500 for a bad file: damaged zips, missing .shx/.dbf, unknown or trap CRS (the 220 m
  VN-2000 .prj, gis.io.sourcecrs), legacy TCVN3/VNI text (gis.io.encodings: converted when
  certain or when asked, otherwise refused with a hint), wrong geometry types, invalid
  geometries (repaired with ST_MakeValid only when asked), attribute values that do not fit the
  catalogue's types or coded values, and database constraints (checked per row by bisection when
  the bulk write fails) all end in an ImportFileError or a report with rejections.
* Fast: files are read as Arrow (pyogrio), reprojected with pyproj and checked with shapely in
  whole arrays, staged with one binary COPY (pgpq) and written with one UPDATE and one INSERT;
  a bulk load rebuilds the layer's secondary indexes instead of maintaining them row by row
  (_set_indexes_aside).
* Column names: the catalogue's full names or its short Shapefile names (both accepted, any
  case), so an exported file re-imports as it is. `id`/`fid` columns are ignored (identifiers are
  the database's), and so are system fields (a parcel's version and update time).
* Rights: the caller may only write fields they may read and rows they may see (an operator
  cannot plant security events in the incidents layer); who may import into which layer is
  Layer.import_roles in the catalogue. Every import, committed or not, is in the audit log.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import shutil
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pgpq
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import shapely
from psycopg import sql
from pyproj import Transformer

from gis.io import encodings, sourcecrs
from gis.overviews import refresh_overviews
from layers.access import ADMIN, Principal, readable_fields, readable_layer
from layers.errors import Forbidden, Invalid, LayerNotFound
from layers.model import Field, Layer

# Columns that identify features in other systems (or GDAL's own), never imported.
IGNORED_COLUMNS = frozenset({"id", "fid", "ogc_fid", "objectid", "gid", "wkt", "geometry", "geom",
                             "the_geom", "wkb_geometry", "shape_leng", "shape_area", "shape_length"})
# Vietnam's extent with the offshore islands: a point outside after reprojection means the
# file's CRS is wrong.
VIETNAM_EXTENT = (101.0, 6.0, 118.0, 24.0)
# Naive date-times in a file are Vietnamese local time.
LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
# How many rows the constraint bisection looks for before it stops (the report then says so).
MAX_DIAGNOSED = 200
# Bulk loads rebuild the layer's secondary indexes instead of maintaining them row by row
# (_set_indexes_aside): from this many new rows, at least this share of the stored ones, if
# the table's readers let go within this time.
BULK_MIN_ROWS = 50_000
BULK_SHARE = 0.5
BULK_LOCK_WAIT = "3s"
# Rejections listed in a report (the count is always exact).
MAX_LISTED = 1000
ENCODING_ALIASES = {"utf8": "utf-8", "unicode": "utf-8", "tcvn": "tcvn3", "abc": "tcvn3",
                    "vnitimes": "vni", "vni-windows": "vni", "windows-1258": "cp1258",
                    "iso-8859-1": "latin-1", "latin1": "latin-1"}

Progress = Callable[[str, int, int], None]


class ImportFileError(Invalid, ValueError):
    """The file cannot be imported at all (damaged, incomplete, unknown CRS, ...): nothing is
    written; HTTP 422, CLI exit code 2."""


class ImportNotAllowed(Forbidden, PermissionError):
    """The caller may not import into this layer (HTTP 403)."""




@dataclass
class ImportOptions:
    layer: str
    crs: str | None = None
    from_encoding: str | None = None
    repair: bool = False
    partial: bool = False  # False: all or nothing
    dry_run: bool = False
    source_layer: str | None = None


@dataclass
class Rejection:
    row: int
    reason: str
    file: str | None = None


@dataclass
class ImportReport:
    layer: str
    file: str
    format: str = ""
    source_crs: str | None = None
    encoding: str | None = None
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    repaired: int = 0
    rejected_count: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    committed: bool = False
    dry_run: bool = False
    all_or_nothing: bool = True
    error: str | None = None

    def reject(self, row: int, reason: str, file: str | None = None) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_LISTED:
            self.rejected.append(Rejection(row, reason, file))

    @property
    def ok(self) -> bool:
        return self.error is None and (self.rejected_count == 0 or not self.all_or_nothing)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        return out


# --- reading ----------------------------------------------------------------------------------

@dataclass
class Source:
    """One table read from the file (a zip may hold several shapefiles)."""

    name: str
    table: pa.Table  # attributes, and the geometry as WKB in column "geometry"
    crs_text: str | None
    crs_origin: str
    raw_text: bool  # strings hold single-byte legacy text as Latin-1 code points
    declared_encoding: str | None = None


_SHP_PARTS = (".shp", ".shx", ".dbf")


def _sibling(shp: Path, ext: str) -> Path | None:
    for cand in shp.parent.iterdir():
        if cand.stem == shp.stem and cand.suffix.lower() == ext:
            return cand
    return None


def _gdal_error(name: str, e: Exception) -> ImportFileError:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return ImportFileError(f"cannot read {name}: {msg}")


def _read_shapefile(shp: Path, display: str, work: Path) -> Source:
    for ext in (".shx", ".dbf"):
        if _sibling(shp, ext) is None:
            what = "index" if ext == ".shx" else "attribute table"
            raise ImportFileError(f"{display}: the Shapefile has no {ext} ({what}); add "
                                  f"{shp.stem}{ext} next to {shp.name} (in the zip)")
    prj = _sibling(shp, ".prj")
    cpg = _sibling(shp, ".cpg")
    declared = cpg.read_text(errors="replace").strip() if cpg else None
    prj_text = prj.read_text(errors="replace") if prj else None
    if prj_text is not None and not _parses(prj_text):
        # GDAL refuses to open a Shapefile whose .prj it cannot parse: read a copy without it
        # (sourcecrs then reports the unknown CRS, or --crs replaces it).
        copy = work / f"noprj-{len(list(work.iterdir()))}"
        copy.mkdir()
        for part in shp.parent.iterdir():
            if part.stem == shp.stem and part.suffix.lower() in (".shp", ".shx", ".dbf", ".cpg"):
                shutil.copy(part, copy / part.name)
        shp = copy / shp.name
    try:
        # Latin-1: every byte of the .dbf comes through as one code point, whatever the .cpg
        # claims; encodings.detect then decides what the text really is.
        _, table = pyogrio.read_arrow(str(shp), encoding="ISO-8859-1")
    except Exception as e:  # pyogrio raises several GDAL error types; all mean "unreadable"
        raise _gdal_error(display, e) from None
    return Source(display, _geometry_named(table), prj_text,
                  f"{shp.stem}.prj" if prj else "no .prj", True, declared)


def _parses(crs_text: str) -> bool:
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        CRS.from_user_input(crs_text)
    except CRSError:
        return False
    return True


def _geometry_named(table: pa.Table) -> pa.Table:
    names = table.column_names
    for cand in ("wkb_geometry", "geometry", "geom"):
        if cand in names:
            i = names.index(cand)
            if pa.types.is_binary(table.schema.types[i]) or pa.types.is_large_binary(table.schema.types[i]):
                return table.rename_columns([*names[:i], "geometry", *names[i + 1:]])
    raise ImportFileError("the file has no geometry")


def _read_gdal(path: Path, display: str, layer: str | None, **open_options: str) -> Source:
    try:
        meta, table = pyogrio.read_arrow(str(path), layer=layer, **open_options)
    except Exception as e:
        raise _gdal_error(display, e) from None
    if meta.get("geometry_type") in (None, "None") and "wkb_geometry" not in table.column_names:
        raise ImportFileError(f"{display}: no geometry (expected a WKT column named WKT, geometry "
                              "or geom, or longitude/latitude columns)")
    return Source(display, _geometry_named(table), meta.get("crs"), "file", False)


def _choose_gpkg_layer(path: Path, wanted: str | None, target: Layer, display: str) -> str:
    try:
        layers = [(str(n), str(g)) for n, g in pyogrio.list_layers(str(path))]
    except Exception as e:
        raise _gdal_error(display, e) from None
    spatial = [n for n, g in layers if g not in ("None", "")]
    if wanted:
        if wanted not in [n for n, _ in layers]:
            raise ImportFileError(f"{display} has no layer {wanted!r}; layers: "
                                  f"{', '.join(n for n, _ in layers)}")
        return wanted
    if len(spatial) == 1:
        return spatial[0]
    for n in spatial:
        if n in (target.id, target.table):
            return n
    raise ImportFileError(f"{display} has {len(spatial)} spatial layers ({', '.join(spatial)}); "
                          "choose one with --source-layer")


def _read_csv(path: Path, display: str) -> Source:
    raw = path.read_bytes()
    legacy = False
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        # Not UTF-8: hand GDAL a UTF-8 copy holding each byte as one Latin-1 code point, and
        # let encodings.detect decide what the bytes are.
        legacy = True
        path = path.with_name(f"{path.stem}.utf8{path.suffix}")
        path.write_text(raw.decode("latin-1"), encoding="utf-8")
    src = _read_gdal(path, display, None, GEOM_POSSIBLE_NAMES="wkt,geometry,geom,the_geom",
                     X_POSSIBLE_NAMES="lon,lng,long,longitude,x,kinh_do,kinhdo",
                     Y_POSSIBLE_NAMES="lat,latitude,y,vi_do,vido",
                     KEEP_GEOM_COLUMNS="NO", AUTODETECT_TYPE="NO", EMPTY_STRING_AS_NULL="YES")
    src.raw_text = legacy
    return src


def read_sources(path: Path, display: str, target: Layer, opts: ImportOptions, work: Path
                 ) -> tuple[str, list[Source]]:
    """(format label, tables) of an uploaded or local file."""
    suffix = path.suffix.lower()
    if suffix == ".zip" or zipfile.is_zipfile(path) and suffix not in (".gpkg", ".xlsx"):
        try:
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
                if bad is not None:
                    raise ImportFileError(f"{display}: the zip is damaged ({bad} fails its checksum)")
                z.extractall(work / "unzipped")
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
            raise ImportFileError(f"{display}: not a readable zip file (damaged or truncated?): {e}"
                                  ) from None
        root = work / "unzipped"
        files = sorted(p for p in root.rglob("*") if p.is_file() and "__MACOSX" not in p.parts)
        shps = [p for p in files if p.suffix.lower() == ".shp"]
        if shps:
            return "Shapefile (zip)", [_read_shapefile(s, f"{display}:{s.relative_to(root)}", work)
                                       for s in shps]
        others = [p for p in files if p.suffix.lower() in (".gpkg", ".geojson", ".json", ".csv", ".fgb")]
        if len(others) == 1:
            fmt, sources = read_sources(others[0], f"{display}:{others[0].name}", target, opts, work)
            return f"{fmt} (zip)", sources
        dangling = [p.name for p in files if p.suffix.lower() in (".dbf", ".shx", ".prj")]
        if dangling:
            raise ImportFileError(f"{display}: the zip has {', '.join(dangling)} but no .shp file")
        raise ImportFileError(f"{display}: the zip holds no Shapefile, GeoPackage, GeoJSON or CSV")
    if suffix == ".shp":
        return "Shapefile", [_read_shapefile(path, display, work)]
    if suffix in (".dbf", ".shx", ".prj", ".cpg"):
        raise ImportFileError(f"{display}: give the .shp (with its .shx, .dbf and .prj beside it) "
                              "or a zip of them")
    if suffix == ".gpkg":
        layer = _choose_gpkg_layer(path, opts.source_layer, target, display)
        return "GeoPackage", [_read_gdal(path, display, layer)]
    if suffix in (".geojson", ".json"):
        return "GeoJSON", [_read_gdal(path, display, None)]
    if suffix == ".fgb":
        return "FlatGeobuf", [_read_gdal(path, display, None)]
    if suffix in (".csv", ".txt"):
        return "CSV", [_read_csv(path, display)]
    raise ImportFileError(f"{display}: unsupported file type {suffix or '(none)'}; use a Shapefile "
                          "(zip), GeoPackage, GeoJSON, FlatGeobuf or CSV")


# --- columns and values -------------------------------------------------------------------------

def _norm(name: str) -> str:
    return unicodedata.normalize("NFC", name).strip().lower()


def map_columns(layer: Layer, columns: Iterable[str], writable: set[str], report: ImportReport
                ) -> dict[str, str]:
    """File column -> catalogue field, by full name, short (export) name or the first 10
    characters of the full name (what GDAL makes of a long name in a .dbf)."""
    lookup: dict[str, Field] = {}
    for f in layer.fields:
        for key in (f.name, f.export_name, f.name[:10]):
            lookup.setdefault(_norm(key), f)
    system = layer.server_managed_fields
    out: dict[str, str] = {}
    for col in columns:
        if col == "geometry":
            continue
        f = lookup.get(_norm(col))
        if f is None:
            if _norm(col) not in IGNORED_COLUMNS:
                report.ignored_columns.append(col)
            continue
        if f.name in system:
            report.warnings.append(f"column {col} ({f.name}) is maintained by the system: ignored")
            continue
        if f.name not in writable:
            raise ImportNotAllowed(f"column {col}: you may not write field {f.name!r} of {layer.id}")
        if f.name in out.values():
            first = next(c for c, n in out.items() if n == f.name)
            raise ImportFileError(f"columns {first} and {col} both hold field {f.name}")
        out[col] = f.name
    if report.ignored_columns:
        report.warnings.append(f"columns not in layer {layer.id}, ignored: "
                               f"{', '.join(report.ignored_columns)}")
    return out


class _Column:
    """One field's values, converted to its catalogue type; bad values are rejections."""

    def __init__(self, f: Field, errors: dict[int, list[str]], label: str) -> None:
        self.f, self.errors, self.label = f, errors, label

    def bad(self, i: int, value: Any, why: str) -> None:
        self.errors.setdefault(i, []).append(f"{self.label}: {value!r} {why}")

    def convert(self, arr: pa.Array) -> pa.Array:
        t = self.f.type
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            arr = pc.utf8_trim_whitespace(arr.cast(pa.string()))
            arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
        converted = {"str": self._str, "str[]": self._str_list, "int": self._int,
                     "float": self._float, "date": self._date, "datetime": self._datetime,
                     "bool": self._bool}[t](arr)
        if self.f.values and t in ("str", "str[]"):
            converted = self._coded(converted)
        return converted

    # Each converter: fast path in Arrow, value-by-value only for what Arrow refused.
    def _per_value(self, arr: pa.Array, parse: Callable[[Any], Any], typ: pa.DataType, why: str
                   ) -> pa.Array:
        out = []
        for i, v in enumerate(arr.to_pylist()):
            if v is None:
                out.append(None)
                continue
            try:
                out.append(parse(v))
            except (ValueError, TypeError, OverflowError):
                self.bad(i, v, why)
                out.append(None)
        return pa.array(out, type=typ)

    def _str(self, arr: pa.Array) -> pa.Array:
        if pa.types.is_string(arr.type):
            return arr
        if pa.types.is_floating(arr.type):
            return self._per_value(arr, lambda v: str(int(v)) if float(v).is_integer() else repr(v),
                                   pa.string(), "is not text")
        return self._per_value(arr, lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v),
                               pa.string(), "is not text")

    def _str_list(self, arr: pa.Array) -> pa.Array:
        if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
            return arr.cast(pa.list_(pa.string()))
        text = self._str(arr)

        def split(v: str) -> list[str]:
            parts = [p.strip() for p in re.split(r"[,;+|]", v) if p.strip()]
            if not parts:
                raise ValueError
            return parts

        return self._per_value(text, split, pa.list_(pa.string()), "is not a list of codes")

    def _int(self, arr: pa.Array) -> pa.Array:
        if pa.types.is_integer(arr.type):
            return arr.cast(pa.int64())
        if pa.types.is_floating(arr.type):
            integral = pc.fill_null(pc.equal(pc.floor(arr), arr), True)
            if pc.all(integral).as_py():
                return pc.cast(arr, pa.int64(), safe=False)
            return self._per_value(arr, _as_int, pa.int64(), "is not an integer")
        if pa.types.is_string(arr.type):
            try:
                return arr.cast(pa.int64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
        return self._per_value(arr, _as_int, pa.int64(), "is not an integer")

    def _float(self, arr: pa.Array) -> pa.Array:
        if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_decimal(arr.type):
            out = arr.cast(pa.float64())
        else:
            try:
                out = arr.cast(pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return self._per_value(arr, _as_float, pa.float64(), "is not a number")
        finite = pc.fill_null(pc.is_finite(out), True)
        if not pc.all(finite).as_py():
            return self._per_value(out, _as_float, pa.float64(), "is not a finite number")
        return out

    def _date(self, arr: pa.Array) -> pa.Array:
        if pa.types.is_date(arr.type):
            return arr.cast(pa.date32())
        if pa.types.is_timestamp(arr.type):
            return arr.cast(pa.date32())
        return self._per_value(arr, _as_date, pa.date32(), "is not a date (YYYY-MM-DD or DD/MM/YYYY)")

    def _datetime(self, arr: pa.Array) -> pa.Array:
        typ = pa.timestamp("us", tz="UTC")
        if pa.types.is_timestamp(arr.type):
            if arr.type.tz is None:
                return self._per_value(arr, _as_datetime, typ, "is not a date-time")
            return arr.cast(typ)
        return self._per_value(arr, _as_datetime, typ, "is not a date-time (ISO 8601)")

    def _bool(self, arr: pa.Array) -> pa.Array:
        if pa.types.is_boolean(arr.type):
            return arr
        return self._per_value(arr, _as_bool, pa.bool_(), "is not true/false")

    def _coded(self, arr: pa.Array) -> pa.Array:
        """Codes as they are; Vietnamese or English labels (any case) become their code."""
        codes = list(self.f.values)
        labels = {_norm(k): k for k in codes}
        for k, (vi, en) in self.f.values.items():
            labels.setdefault(_norm(vi), k)
            labels.setdefault(_norm(en), k)
        flat = pc.list_flatten(arr) if pa.types.is_list(arr.type) else arr
        if pc.all(pc.fill_null(pc.is_in(flat, pa.array(codes)), True)).as_py():
            return arr

        def one(v: str) -> str:
            code = v if v in self.f.values else labels.get(_norm(v))
            if code is None:
                raise ValueError
            return code

        allowed = ", ".join(codes)
        if pa.types.is_list(arr.type):
            return self._per_value(arr, lambda vs: [one(v) for v in vs], arr.type,
                                   f"has a value that is not one of {allowed}")
        return self._per_value(arr, one, pa.string(), f"is not one of {allowed}")


def _as_int(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError
    if isinstance(v, float):
        if not v.is_integer():
            raise ValueError
        return int(v)
    s = str(v).strip().replace(" ", "")
    if re.fullmatch(r"[+-]?\d+(\.0+)?", s):
        return int(s.split(".")[0])
    raise ValueError


def _as_float(v: Any) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool):
        out = float(v)
    else:
        s = str(v).strip().replace(" ", "")
        if "," in s and "." not in s:  # Vietnamese decimal comma: 12,5
            s = s.replace(",", ".")
        out = float(s)
    if not math.isfinite(out):
        raise ValueError
    return out


def _as_date(v: Any) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    s = str(v).strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%Y/%m/%d", "%d-%m-%Y", "%Y%m%d"):
        try:
            return dt.datetime.strptime(s, fmt).date()
        except ValueError:
            continue
    if len(s) > 10 and s[10] in "T ":
        return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).date()
    raise ValueError


def _as_datetime(v: Any) -> dt.datetime:
    if isinstance(v, dt.datetime):
        t = v
    elif isinstance(v, dt.date):
        t = dt.datetime.combine(v, dt.time())
    else:
        s = str(v).strip().replace("Z", "+00:00").replace("z", "+00:00")
        s = re.sub(r"^(\d{4})/(\d{2})/(\d{2})", r"\1-\2-\3", s)  # GDAL's CSV style
        m = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})(.*)", s)
        if m:
            s = f"{m.group(3)}-{int(m.group(2)):02d}-{int(m.group(1)):02d}{m.group(4)}"
        if re.search(r"[+-]\d{2}$", s):
            s += ":00"
        t = dt.datetime.fromisoformat(s)
    return (t if t.tzinfo else t.replace(tzinfo=LOCAL_TZ)).astimezone(dt.UTC)


def _as_bool(v: Any) -> bool:
    s = str(v).strip().lower()
    if s in ("true", "t", "1", "yes", "y", "có", "co", "x"):
        return True
    if s in ("false", "f", "0", "no", "n", "không", "khong"):
        return False
    raise ValueError


# --- geometry ----------------------------------------------------------------------------------

_TYPE_IDS = {"Point": 0, "LineString": 1, "Polygon": 3, "MultiPolygon": 6}
_TYPE_NAMES = {0: "Point", 1: "LineString", 2: "LinearRing", 3: "Polygon", 4: "MultiPoint",
               5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection"}


# A 2D little-endian WKB point, as GDAL hands points out: byte order, type, x, y.
_WKB_POINT = np.dtype({"names": ["order", "type", "x", "y"], "formats": ["u1", "<u4", "<f8", "<f8"],
                       "offsets": [0, 1, 5, 13], "itemsize": 21})


def _to_wgs84(src: sourcecrs.SourceCRS) -> Callable[[np.ndarray], np.ndarray]:
    """(n, 2) coordinates in the file's CRS -> longitude, latitude."""
    # GDAL hands out x = easting / longitude whatever the CRS's axis order: always_xy.
    tr = Transformer.from_crs(src.crs, 4326, always_xy=True)

    def project(xy: np.ndarray) -> np.ndarray:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return project


def _outside_vietnam(bounds: np.ndarray, ok: np.ndarray, src: sourcecrs.SourceCRS,
                     errors: dict[int, list[str]]) -> np.ndarray:
    """Rows (among OK) whose bounds (n, 4) in WGS84 leave Vietnam: a wrong CRS, said per row."""
    minx, miny, maxx, maxy = VIETNAM_EXTENT
    with np.errstate(invalid="ignore"):
        outside = ok & ~((bounds[:, 0] >= minx) & (bounds[:, 2] <= maxx)
                         & (bounds[:, 1] >= miny) & (bounds[:, 3] <= maxy))
    for i in np.flatnonzero(outside):
        x, y = bounds[i, 0], bounds[i, 1]
        where = "not finite" if not (math.isfinite(x) and math.isfinite(y)) else f"lon {x:.5f}, lat {y:.5f}"
        errors.setdefault(int(i), []).append(
            f"outside Vietnam after reprojection from {src.label} ({where}): wrong CRS?")
    return outside


def _wkb_points(wkb: np.ndarray) -> np.ndarray | None:
    """The (n, 2) coordinates when every row is a 2D little-endian WKB point, else None (then
    shapely reads them). A million points are checked from their bytes in numpy, without
    building a million geometries (shapely.from_wkb alone took 0.9 s of a 12 s import)."""
    if not len(wkb):
        return None
    try:
        if (np.fromiter(map(len, wkb), np.int64, len(wkb)) != _WKB_POINT.itemsize).any():
            return None
    except TypeError:  # a missing geometry (None)
        return None
    rec = np.frombuffer(b"".join(wkb), _WKB_POINT)
    if (rec["order"] != 1).any() or (rec["type"] != 1).any():
        return None
    return np.column_stack([rec["x"], rec["y"]])


def _check_points(xy: np.ndarray, wkb: np.ndarray, src: sourcecrs.SourceCRS,
                  errors: dict[int, list[str]]) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """check_geometries for a file of 2D points (_wkb_points): a finite point is valid."""
    n = len(xy)
    empty = np.isnan(xy).all(axis=1)  # WKB writes an empty point as NaN, NaN
    for i in np.flatnonzero(empty):
        errors.setdefault(int(i), []).append("empty geometry")
    ok = ~empty
    out = wkb.copy()
    if not src.is_wgs84 and ok.any():
        xy = xy.copy()
        xy[ok] = _to_wgs84(src)(xy[ok])
        rec = np.zeros(n, _WKB_POINT)
        rec["order"], rec["type"], rec["x"], rec["y"] = 1, 1, xy[:, 0], xy[:, 1]
        raw = rec.tobytes()
        size = _WKB_POINT.itemsize
        out[:] = [raw[k:k + size] for k in range(0, n * size, size)]
    ok &= ~_outside_vietnam(np.column_stack([xy, xy]), ok, src, errors)
    out[~ok] = None
    return out, np.zeros(n, dtype=bool), {}


def check_geometries(layer: Layer, wkb: np.ndarray, src: sourcecrs.SourceCRS, repair: bool,
                     errors: dict[int, list[str]]) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """(WKB in EPSG:4326, repair flags, invalid geometries). Type, emptiness, reprojection and
    extent are checked on whole arrays; rows that fail get their reason in ERRORS. Invalid
    geometries are returned apart: one within a millimetre of the stored geometry of the same
    feature is no change (a round trip through VN-2000 can make a valid polygon's near-touching
    vertices cross by 1e-10 degree), which only the database can tell."""
    xy = _wkb_points(wkb) if layer.geometry_type == "Point" else None
    if xy is not None:
        return _check_points(xy, wkb, src, errors)
    geoms = shapely.from_wkb(wkb, on_invalid="ignore")
    n = len(geoms)
    missing = shapely.is_missing(geoms)
    empty = ~missing & shapely.is_empty(geoms)
    for i in np.flatnonzero(missing):
        errors.setdefault(int(i), []).append("no geometry" if wkb[i] is None else "unreadable geometry")
    for i in np.flatnonzero(empty):
        errors.setdefault(int(i), []).append("empty geometry")
    ok = ~(missing | empty)
    geoms = np.where(ok, geoms, None)
    # Rows whose geometry differs from the file's WKB (the others pass their bytes on as read).
    modified = np.zeros(n, dtype=bool)
    if shapely.has_z(geoms[ok]).any():
        geoms[ok] = shapely.force_2d(geoms[ok])
        modified[ok] = True
    types = np.full(n, -1)
    types[ok] = shapely.get_type_id(geoms[ok])
    parts = np.ones(n, dtype=int)
    parts[ok] = shapely.get_num_geometries(geoms[ok])
    want = _TYPE_IDS[layer.geometry_type]
    if layer.geometry_type == "MultiPolygon":
        fits = (types == 3) | (types == 6)
    else:  # a single-part Multi* is taken as its part (in SQL)
        fits = (types == want) | ((types == want + 3) & (parts == 1))
    for i in np.flatnonzero(ok & ~fits):
        what = _TYPE_NAMES.get(int(types[i]), "geometry")
        if types[i] == want + 3:
            what = f"{what} of {parts[i]} parts"
        errors.setdefault(int(i), []).append(f"{what} where layer {layer.id} holds {layer.geometry_type}s")
    ok &= fits
    single = ok & (types == want + 3)
    if single.any():  # a one-part MultiPoint/MultiLineString/MultiPolygon: its part
        geoms[single] = shapely.get_geometry(geoms[single], 0)
        modified |= single
    if not src.is_wgs84 and ok.any():
        geoms[ok] = shapely.transform(geoms[ok], _to_wgs84(src))
        modified[ok] = True
    bounds = np.full((n, 4), np.nan)
    bounds[ok] = shapely.bounds(geoms[ok])
    ok &= ~_outside_vietnam(bounds, ok, src, errors)
    flags = np.zeros(n, dtype=bool)
    invalid: dict[int, str] = {}
    if ok.any() and layer.geometry_type != "Point":  # a finite point is valid
        valid = np.zeros(n, dtype=bool)
        valid[ok] = shapely.is_valid(geoms[ok])
        for i in np.flatnonzero(ok & ~valid):
            flags[i] = repair
            invalid[int(i)] = (f"invalid geometry ({shapely.is_valid_reason(geoms[i])}); "
                               "re-run with repair to fix it with ST_MakeValid")
    out = np.empty(n, dtype=object)
    redo = ok & modified
    out[redo] = shapely.to_wkb(geoms[redo])
    same = ok & ~modified
    out[same] = wkb[same]  # the file's own bytes: no re-encoding
    return out, flags, invalid


# --- the database side -----------------------------------------------------------------------

@dataclass
class _Target:
    layer: Layer
    types: dict[str, str]  # column -> SQL type (format_type)
    required: set[str]  # NOT NULL without a default
    key: tuple[str, ...]


def _target(conn: psycopg.Connection, layer: Layer) -> _Target:
    rows = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull AND NOT atthasdef "
        "AND attidentity = '' FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped", (layer.table,)).fetchall()
    types = {r[0]: r[1] for r in rows}
    required = {r[0] for r in rows if r[2]}
    return _Target(layer, types, required, layer.natural_key)


# Staging column types: SQL for the temporary table, Arrow for the binary COPY that fills it
# (COPY's binary format is strict: the two must agree).
_STAGE_TYPES: dict[str, tuple[str, pa.DataType]] = {
    "str": ("text", pa.string()), "str[]": ("text[]", pa.list_(pa.string())),
    "int": ("bigint", pa.int64()), "float": ("float8", pa.float64()), "date": ("date", pa.date32()),
    "datetime": ("timestamptz", pa.timestamp("us", tz="UTC")), "bool": ("boolean", pa.bool_())}
_COPY_BATCH = 65_536


def _stage(conn: psycopg.Connection, fields: list[Field], columns: dict[str, pa.Array],
           rownums: np.ndarray, wkb: np.ndarray, repair: np.ndarray, invalid: list[str | None] | None
           ) -> None:
    """COPY the checked rows into a temporary table, in PostgreSQL's binary format encoded from
    Arrow by pgpq (a third of the time of a CSV with hex-encoded WKB, which the server must
    parse back)."""
    defs = [sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(_STAGE_TYPES[f.type][0]))
            for f in fields]
    conn.execute(sql.SQL("CREATE TEMP TABLE _geoioc_stage (rownum int NOT NULL, {}wkb bytea NOT NULL, "
                         "repair boolean NOT NULL, invalid text) ON COMMIT DROP").format(
        sql.SQL("").join(d + sql.SQL(", ") for d in defs)))
    table = pa.table({
        "rownum": pa.array(rownums, pa.int32()),
        **{f.name: columns[f.name].cast(_STAGE_TYPES[f.type][1]) for f in fields},
        "wkb": pa.array(wkb, pa.binary()),
        "repair": pa.array(repair, pa.bool_()),
        "invalid": pa.nulls(len(rownums), pa.string()) if invalid is None else pa.array(invalid, pa.string()),
    })
    encoder = pgpq.ArrowToPostgresBinaryEncoder(table.schema)
    with conn.cursor().copy(sql.SQL("COPY _geoioc_stage ({}) FROM STDIN (FORMAT binary)").format(
            sql.SQL(", ").join(sql.Identifier(n) for n in table.column_names))) as cp:
        cp.write(encoder.write_header())
        for batch in table.to_batches(max_chunksize=_COPY_BATCH):
            cp.write(encoder.write_batch(batch))
        cp.write(encoder.finish())
    conn.execute("ANALYZE _geoioc_stage")


def _raw_geom(t: _Target) -> sql.Composable:
    """The staged geometry as the file has it (promoted to Multi for a MultiPolygon layer)."""
    g = sql.SQL("ST_GeomFromWKB(s.wkb, 4326)")
    return sql.SQL("ST_Multi({})").format(g) if t.layer.geometry_type == "MultiPolygon" else g


def _geom_expr(t: _Target) -> sql.Composable:
    """The geometry to write: repaired with ST_MakeValid when the row asks for it."""
    g = sql.SQL("ST_GeomFromWKB(s.wkb, 4326)")
    dim = {"Point": 1, "LineString": 2, "Polygon": 3, "MultiPolygon": 3}[t.layer.geometry_type]
    g = sql.SQL("CASE WHEN s.repair THEN ST_CollectionExtract(ST_MakeValid({g}), {d}) ELSE {g} END"
                ).format(g=g, d=sql.Literal(dim))
    if t.layer.geometry_type == "MultiPolygon":
        return sql.SQL("ST_Multi({})").format(g)
    return g


def _value(t: _Target, name: str) -> sql.Composable:
    return sql.SQL("CAST(s.{} AS {})").format(sql.Identifier(name), sql.SQL(t.types[name]))


def _same_geometry(a: sql.Composable, b: sql.Composable) -> sql.Composable:
    """Equal, or the same vertices within 1e-8 degree (about 1 mm): a file that went through a
    projected CRS and back is not a change."""
    # The && on top lets a join use the layer's GiST index.
    return sql.SQL("({a} && ST_Expand({b}, 1e-8) AND ({a} = {b} OR (ST_NPoints({a}) = ST_NPoints({b}) "
                   "AND ST_HausdorffDistance({a}, {b}) < 1e-8)))").format(a=a, b=b)


class _Rollback(Exception):
    """Raised inside a transaction block to roll it back (dry runs, diagnosis, refusals)."""


def _match(conn: psycopg.Connection, t: _Target, names: list[str]) -> None:
    """_geoioc_match (rownum, id): the stored feature each staged row is (natural key, or same
    values and geometry within a millimetre for layers without a key)."""
    geom = sql.Identifier("t", t.layer.geometry_column)
    source = sql.SQL("_geoioc_stage")
    if t.key:
        conds = [sql.SQL("t.{c} IS NOT DISTINCT FROM {v}" if c not in t.required else "t.{c} = {v}"
                         ).format(c=sql.Identifier(c), v=_value(t, c)) for c in t.key]
    else:
        conds = [sql.SQL("t.{c} IS NOT DISTINCT FROM {v}" if c not in t.required else "t.{c} = {v}"
                         ).format(c=sql.Identifier(c), v=_value(t, c)) for c in names]
        equal = [sql.SQL("t.{c} = {v}").format(c=sql.Identifier(c), v=_value(t, c))
                 for c in names if c in t.required]
        if equal:
            # Candidates first, by a hash semi-join on the NOT NULL values: new data (a million
            # new incidents) then costs no geometry comparison at all.
            conn.execute(sql.SQL(
                "CREATE TEMP TABLE _geoioc_cand ON COMMIT DROP AS SELECT * FROM _geoioc_stage s "
                "WHERE EXISTS (SELECT 1 FROM {table} t WHERE {eq})").format(
                table=sql.Identifier(t.layer.table), eq=sql.SQL(" AND ").join(equal)))
            source = sql.SQL("_geoioc_cand")
        conds.append(_same_geometry(geom, _raw_geom(t)))
        # Then the geometry is the selective part: probe the layer's GiST index per candidate
        # rather than hash on low-cardinality columns (road class, lanes) and compare thousands
        # of geometries per bucket.
        conn.execute("SET LOCAL enable_hashjoin = off")
        conn.execute("SET LOCAL enable_mergejoin = off")
    conn.execute(sql.SQL(
        "CREATE TEMP TABLE _geoioc_match ON COMMIT DROP AS SELECT DISTINCT ON (s.rownum) s.rownum, "
        "t.{id} AS id FROM {source} s JOIN {table} t ON {cond} ORDER BY s.rownum, t.{id}").format(
        id=sql.Identifier(t.layer.id_column), table=sql.Identifier(t.layer.table), source=source,
        cond=sql.SQL(" AND ").join(conds)))
    if not t.key:
        conn.execute("RESET enable_hashjoin")
        conn.execute("RESET enable_mergejoin")
    conn.execute("ANALYZE _geoioc_match")


def _set_indexes_aside(conn: psycopg.Connection, t: _Target) -> bool:
    """Drop the layer's secondary indexes for a bulk insert (geoioc_bulk_load_end re-creates
    them before commit), when that is cheaper than maintaining them row by row.

    Row-by-row upkeep of a GiST and a B-tree index costs about 11 µs per new row; building them
    afresh about 3.5 µs per row of the whole table. The price is the table's ACCESS EXCLUSIVE
    lock until commit (readers wait for the insert and the rebuild: about 8 s for a million
    points), so it is only taken for loads of at least BULK_MIN_ROWS that are at least
    BULK_SHARE of the stored rows, and only if readers let go within BULK_LOCK_WAIT; otherwise
    the insert maintains the indexes as usual."""
    incoming = conn.execute("SELECT (SELECT count(*) FROM _geoioc_stage) - "
                            "(SELECT count(*) FROM _geoioc_match)").fetchone()[0]
    stored = conn.execute("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = %s::regclass",
                          (t.layer.table,)).fetchone()[0]
    if incoming < BULK_MIN_ROWS or incoming < BULK_SHARE * stored:
        return False
    try:
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(BULK_LOCK_WAIT)))
            conn.execute("SELECT geoioc_bulk_load_begin(%s)", (t.layer.table,))
    except psycopg.errors.LockNotAvailable:
        return False
    finally:
        conn.execute("SET LOCAL lock_timeout TO DEFAULT")
    return True


def _write(conn: psycopg.Connection, t: _Target, names: list[str], only: list[int] | None = None,
           update: bool | None = None, new_ids: bool = False, bulk: bool = False) -> tuple[int, int]:
    """UPDATE changed matched rows, INSERT unmatched ones: (inserted, updated).

    update: whether matched rows are updated (default: layers with a natural key; a content
    match has nothing to update). new_ids: insert with the ids staged in s.new_id (a harvest
    needs to know which local feature each source feature became). bulk: a big insert may set
    the layer's secondary indexes aside and rebuild them after (_set_indexes_aside)."""
    geom_col = sql.Identifier(t.layer.geometry_column)
    g = _geom_expr(t)
    subset = sql.SQL(" AND s.rownum = ANY(%s)") if only is not None else sql.SQL("")
    params = [only] if only is not None else []
    updated = 0
    if update if update is not None else bool(t.key):
        stored = sql.SQL("t.{}").format(geom_col)
        same = _same_geometry(stored, _raw_geom(t))
        sets = [sql.SQL("{} = {}").format(sql.Identifier(c), _value(t, c)) for c in names]
        # Within a millimetre the stored geometry stays: no churn from a round trip.
        sets.append(sql.SQL("{} = CASE WHEN {} THEN {} ELSE {} END").format(geom_col, same, stored, g))
        changed = [sql.SQL("t.{} IS DISTINCT FROM {}").format(sql.Identifier(c), _value(t, c))
                   for c in names if c not in t.key]
        changed.append(sql.SQL("NOT {}").format(same))
        cur = conn.execute(sql.SQL(
            "UPDATE {table} AS t SET {sets} FROM _geoioc_stage s JOIN _geoioc_match m USING (rownum) "
            "WHERE t.{id} = m.id AND ({changed}){subset}").format(
            table=sql.Identifier(t.layer.table), sets=sql.SQL(", ").join(sets),
            id=sql.Identifier(t.layer.id_column), changed=sql.SQL(" OR ").join(changed), subset=subset),
            params)
        updated = cur.rowcount
    cols = [*names, t.layer.geometry_column]
    vals = [*(_value(t, c) for c in names), g]
    overriding = sql.SQL("")
    if new_ids:
        cols.insert(0, t.layer.id_column)
        vals.insert(0, sql.SQL("s.new_id"))
        overriding = sql.SQL(" OVERRIDING SYSTEM VALUE")
    aside = bulk and _set_indexes_aside(conn, t)
    cur = conn.execute(sql.SQL(
        "INSERT INTO {table} ({cols}){overriding} SELECT {vals} FROM _geoioc_stage s WHERE NOT EXISTS "
        "(SELECT 1 FROM _geoioc_match m WHERE m.rownum = s.rownum){subset}").format(
        table=sql.Identifier(t.layer.table), cols=sql.SQL(", ").join(sql.Identifier(c) for c in cols),
        overriding=overriding, vals=sql.SQL(", ").join(vals), subset=subset), params)
    if aside:
        conn.execute("SELECT geoioc_bulk_load_end(%s)", (t.layer.table,))
    return cur.rowcount, updated


def _explain(conn: psycopg.Connection, e: psycopg.Error) -> str:
    """A database error as a reason a land officer can act on."""
    diag = e.diag
    msg = (diag.message_primary or str(e)).strip()
    if diag.constraint_name:
        try:
            with conn.transaction():
                row = conn.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = %s "
                                   "LIMIT 1", (diag.constraint_name,)).fetchone()
        except psycopg.Error:
            row = None
        if row:
            return f"{msg}: {row[0]}"
    if diag.message_detail:
        return f"{msg} ({diag.message_detail.strip()})"
    return msg


def _diagnose(conn: psycopg.Connection, t: _Target, names: list[str], rows: list[int],
              found: dict[int, str], **write: Any) -> None:
    """Find the rows the database refuses, by bisection (each try rolled back)."""
    if len(found) >= MAX_DIAGNOSED or not rows:
        return
    try:
        with conn.transaction():
            _write(conn, t, names, rows, **write)
            raise _Rollback
    except _Rollback:
        return
    except psycopg.Error as e:
        if isinstance(e, psycopg.OperationalError):
            raise
        if len(rows) == 1:
            found[rows[0]] = _explain(conn, e)
            return
    mid = len(rows) // 2
    _diagnose(conn, t, names, rows[:mid], found, **write)
    _diagnose(conn, t, names, rows[mid:], found, **write)



# --- the import ----------------------------------------------------------------------------------

def _check_rights(layer_id: str, who: Principal) -> Layer:
    layer = readable_layer(layer_id, who)
    if layer is None:
        raise LayerNotFound(f"layer {layer_id!r} not found")
    roles = layer.import_roles
    if who.anonymous or not (ADMIN in who.roles or who.roles & set(roles)):
        need = " or ".join([*roles, ADMIN])
        raise ImportNotAllowed(f"importing into {layer.id} requires role {need}")
    return layer


def _encoding_option(raw: str | None) -> str | None:
    if not raw:
        return None
    e = raw.strip().lower().replace("_", "-")
    e = ENCODING_ALIASES.get(e, e)
    if e not in encodings.ENCODINGS:
        raise ImportFileError(f"from-encoding: {raw!r} is not one of {', '.join(encodings.ENCODINGS)}")
    return e


def _fix_text(src: Source, fields: dict[str, str], forced: str | None, report: ImportReport) -> None:
    """Decide the encoding of SRC's text columns and convert them to Unicode in place."""
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
            # A sample is enough to decide, and cheap on a million rows.
            values = src.table.column(c).slice(0, 50_000).drop_null().unique().to_pylist()
            sample += [v for v in values[:3000] if v and not v.isascii()]
        d = encodings.detect(sample, raw=src.raw_text)
        if d.encoding is None or (d.encoding == "utf-8" and src.raw_text):
            enc = "utf-8" if src.raw_text else None
            if enc is None:
                return
        elif encodings.suspicious(d):
            raise ImportFileError(
                f"{src.name}: the text looks like legacy {d.describe()}, but there is too little of "
                f"it to be sure; re-run with --from-encoding {d.encoding} to convert it (or "
                "--from-encoding utf-8 to keep it as it is)")
        elif d.legacy:
            enc = d.encoding
            report.warnings.append(f"{src.name}: text converted from {d.describe()} to Unicode")
        else:  # nothing Vietnamese, not UTF-8: the declared code page, or Latin-1
            enc = _codepage(src.declared_encoding) or "latin-1"
            report.warnings.append(f"{src.name}: text is not UTF-8; read as {enc}")
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
                                          "--from-encoding tcvn3 (or vni, cp1258)") from None
            else:
                values = [None if v is None else encodings.decode(v.encode("latin-1"), enc)
                          for v in col.to_pylist()]
        else:
            values = [None if v is None else encodings.reinterpret(v, enc) for v in col.to_pylist()]
        src.table = src.table.set_column(i, c, pa.array(values, pa.string()))


def _codepage(declared: str | None) -> str | None:
    if not declared:
        return None
    d = declared.strip().upper()
    if d in ("UTF-8", "UTF8", "65001"):
        return "utf-8"
    m = re.fullmatch(r"(?:ANSI |CP|WINDOWS-)?(\d{3,4})", d)
    if m:
        return f"cp{m.group(1)}"
    return None


def _source_crs(src: Source, opts: ImportOptions, report: ImportReport) -> sourcecrs.SourceCRS:
    text, origin = src.crs_text, src.crs_origin
    if not text and not opts.crs:
        m = re.search(r"EPSG[_-]?(\d{4,5})", src.name, re.IGNORECASE)
        if m:  # our own CSV exports carry the code in their name
            text, origin = f"EPSG:{m.group(1)}", "file name"
            report.warnings.append(f"{src.name}: CRS EPSG:{m.group(1)} taken from the file name")
    try:
        out = sourcecrs.resolve(text, opts.crs, origin)
    except sourcecrs.SourceCRSError as e:
        raise ImportFileError(f"{src.name}: {e}") from None
    report.warnings += out.warnings
    return out


def import_file(conn: psycopg.Connection, path: Path, opts: ImportOptions, who: Principal, *,
                display: str | None = None, progress: Progress | None = None, request: Any = None,
                credential: str | None = None) -> ImportReport:
    """Import PATH into a layer; returns the report (committed or not). Raises LayerNotFound,
    ImportNotAllowed; file problems come back as report.error (nothing written).

    CONN must be in autocommit mode: the import is one explicit transaction, and the audit row
    of a refused import is written after its rollback."""
    from gis import audit

    layer = _check_rights(opts.layer, who)
    display = display or path.name
    report = ImportReport(layer.id, display, dry_run=opts.dry_run, all_or_nothing=not opts.partial)
    work = Path(tempfile.mkdtemp(prefix="geoioc-import-"))
    status = 422
    try:
        _run(conn, path, display, layer, opts, who, report, work, progress, request, credential)
    except _Rollback:  # a dry run, or rows the database refused: nothing was written
        pass
    except ImportFileError as e:
        report.error = str(e)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    status = 200 if report.ok else 422
    if not report.committed:
        audit.record(conn, who, "import", request=request, layer=layer.id, credential=credential,
                     status=status, target=_audit_target(report))
    return report


def _audit_target(report: ImportReport) -> dict[str, Any]:
    keys = ("file", "format", "source_crs", "encoding", "rows", "inserted", "updated", "unchanged",
            "repaired", "rejected_count", "dry_run", "committed", "error")
    return {k: getattr(report, k) for k in keys}


def _run(conn: psycopg.Connection, path: Path, display: str, layer: Layer, opts: ImportOptions,
         who: Principal, report: ImportReport, work: Path, progress: Progress | None,
         request: Any, credential: str | None) -> None:
    from gis import audit

    def step(phase: str, done: int, total: int) -> None:
        if progress:
            progress(phase, done, total)

    forced = _encoding_option(opts.from_encoding)
    step("reading", 0, 0)
    report.format, sources = read_sources(path, display, layer, opts, work)
    target = _target(conn, layer)
    writable = {f.name for f in readable_fields(layer, who)}
    errors: dict[int, list[str]] = {}
    converted: dict[str, list[pa.Array]] = {}
    wkbs: list[np.ndarray] = []
    flags: list[np.ndarray] = []
    firsts = np.cumsum([0, *(src.table.num_rows for src in sources)])
    starts = [(int(firsts[k]), src.name) for k, src in enumerate(sources)]  # (first global row, file)
    names: list[str] | None = None
    crs_labels: set[str] = set()
    invalid: dict[int, str] = {}  # global row -> why its geometry is invalid
    for k, src in enumerate(sources):
        mapping = map_columns(layer, src.table.column_names, writable, report)
        these = sorted(mapping.values(), key=layer.field_names.index)
        if names is None:
            names = these
        elif these != names:
            raise ImportFileError(f"{src.name} has other columns than {sources[0].name}")
        missing = [c for c in target.required if c != layer.geometry_column
                   and c in layer.field_names and c not in these
                   and c not in layer.server_managed_fields]
        if missing:
            fl = [layer.field(c) for c in missing]
            raise ImportFileError(f"{src.name} lacks required field(s) "
                                  f"{', '.join(f'{f.name} ({f.export_name})' for f in fl)}")
        lacking_key = [c for c in target.key if c not in these and c in target.required]
        if lacking_key:
            raise ImportFileError(f"{src.name} lacks key field(s) {', '.join(lacking_key)} that match "
                                  f"rows of {layer.id}")
        for c in target.key:
            if c not in these and src is sources[0]:  # e.g. no pre-2025 commune column: empty
                f = layer.field(c)
                report.warnings.append(f"no column {f.export_name} ({c}): taken as empty for every row")
        _fix_text(src, mapping, forced, report)
        crs = _source_crs(src, opts, report)
        crs_labels.add(crs.label)
        base = starts[k][0]
        n = src.table.num_rows
        local: dict[int, list[str]] = {}
        for col, fname in mapping.items():
            f = layer.field(fname)
            label = col if col == fname else f"{col} ({fname})"
            converted.setdefault(fname, []).append(_Column(f, local, label).convert(src.table.column(col)
                                                                                      .combine_chunks()))
        step("checking", 0, n)
        wkb = src.table.column("geometry").to_numpy(zero_copy_only=False)
        w, fl, bad_geoms = check_geometries(layer, wkb, crs, opts.repair, local)
        wkbs.append(w)
        flags.append(fl)
        if not opts.repair:
            invalid.update({base + i: reason for i, reason in bad_geoms.items()})
        for i, reasons in local.items():
            errors[base + i] = reasons
    assert names is not None
    report.source_crs = ", ".join(sorted(crs_labels))
    total = int(firsts[-1])
    report.rows = total
    columns = {n: pa.concat_arrays(arrs) if len(arrs) > 1 else arrs[0]
               for n, arrs in converted.items()}
    for c in target.key:  # nullable key columns the file lacks: NULL, so that rows still match
        if c not in columns:
            f = layer.field(c)
            columns[c] = pa.nulls(total, pa.list_(pa.string()) if f.type == "str[]" else
                                  {"int": pa.int64(), "float": pa.float64(), "date": pa.date32()}.get(
                                      f.type, pa.string()))
            names = sorted([*names, c], key=layer.field_names.index)
    wkb_all = np.concatenate(wkbs) if wkbs else np.empty(0, dtype=object)
    repair_all = np.concatenate(flags) if flags else np.empty(0, dtype=bool)
    _check_rows(layer, who, target, names, columns, errors)
    multi = len(sources) > 1
    refused: dict[int, str] = {i: "; ".join(r) for i, r in errors.items()}

    def settle() -> None:
        for i in sorted(refused):
            base, f = next(st for st in reversed(starts) if st[0] <= i)
            r = i - base + 1
            report.reject(r, refused[i], f if multi else None)

    keep = np.ones(total, dtype=bool)
    keep[list(errors)] = False
    rownums = np.flatnonzero(keep)
    if not len(rownums) or refused and report.all_or_nothing and not invalid:
        settle()  # nothing to write, or refused already (no geometry needs the database's look)
        return
    kept = {n: columns[n].filter(pa.array(keep)) for n in names}
    step("writing", 0, len(rownums))
    with conn.transaction():
        conn.execute("SET LOCAL statement_timeout = 0")
        conn.execute("SET LOCAL jit = off")  # compiling costs more than it saves on these statements
        conn.execute("SELECT set_config('geoioc.user', %s, true), set_config('geoioc.note', %s, true)",
                     (who.user or "import", f"import {display}"[:200]))
        # One import at a time per layer (reads go on): two concurrent imports of overlapping
        # files would otherwise both insert the same new rows.
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(sql.Identifier(layer.table)))
        fields = [layer.field(n) for n in names]
        _stage(conn, fields, kept, rownums, wkb_all[keep], repair_all[keep],
               [invalid.get(int(i)) for i in rownums] if invalid else None)
        _match(conn, target, names)
        if invalid:  # invalid geometries are refused unless the stored one is the same
            still = dict(conn.execute(sql.SQL(
                "SELECT s.rownum, s.invalid FROM _geoioc_stage s WHERE s.invalid IS NOT NULL AND NOT "
                "EXISTS (SELECT 1 FROM _geoioc_match m JOIN {table} t ON t.{id} = m.id "
                "WHERE m.rownum = s.rownum AND {same})").format(
                table=sql.Identifier(layer.table), id=sql.Identifier(layer.id_column),
                same=_same_geometry(sql.SQL("t.{}").format(sql.Identifier(layer.geometry_column)),
                                    _raw_geom(target)))).fetchall())
            refused.update(still)
            if still and not report.all_or_nothing:
                conn.execute("DELETE FROM _geoioc_stage WHERE rownum = ANY(%s)", (list(still),))
                conn.execute("DELETE FROM _geoioc_match WHERE rownum = ANY(%s)", (list(still),))
        if refused and report.all_or_nothing:
            settle()
            raise _Rollback
        try:
            with conn.transaction():
                # A dry run keeps the indexes (no exclusive lock for a result that is rolled back).
                inserted, updated = _write(conn, target, names, bulk=not opts.dry_run)
        except psycopg.Error as e:
            if isinstance(e, psycopg.OperationalError):
                raise
            found: dict[int, str] = {}
            left = [r[0] for r in conn.execute("SELECT rownum FROM _geoioc_stage ORDER BY rownum")]
            _diagnose(conn, target, names, left, found)
            if not found:  # not attributable to a row: report the statement's error
                raise ImportFileError(f"the database refused the import: {_explain(conn, e)}") from None
            refused.update(found)
            if len(found) >= MAX_DIAGNOSED:
                report.warnings.append(f"stopped looking after {MAX_DIAGNOSED} rows refused by the "
                                       "database; there may be more")
            if report.all_or_nothing:
                settle()
                raise _Rollback from None
            conn.execute("DELETE FROM _geoioc_stage WHERE rownum = ANY(%s)", (list(found),))
            conn.execute("DELETE FROM _geoioc_match WHERE rownum = ANY(%s)", (list(found),))
            inserted, updated = _write(conn, target, names, bulk=not opts.dry_run)
        settle()
        matched = conn.execute("SELECT count(*) FROM _geoioc_match").fetchone()[0]
        report.inserted, report.updated = inserted, updated
        report.unchanged = matched - updated
        report.repaired = int(repair_all[keep].sum())
        step("writing", len(rownums), len(rownums))
        if opts.dry_run:
            raise _Rollback
        if layer.overview is not None and (inserted or updated):
            refresh_overviews(conn, [layer])  # low-zoom tiles show what was just imported
        report.committed = True
        audit.record(conn, who, "import", request=request, layer=layer.id, credential=credential,
                     status=200, target=_audit_target(report))


def _check_rows(layer: Layer, who: Principal, target: _Target, names: list[str],
                columns: dict[str, pa.Array], errors: dict[int, list[str]]) -> None:
    """Rows the caller may not write (row rules), empty required values, repeated keys."""
    for rule in layer.row_rules:
        if rule.field in columns and not (ADMIN in who.roles or who.roles & set(rule.roles)):
            hidden = pc.fill_null(pc.is_in(columns[rule.field], pa.array(list(rule.values))), False)
            for i in np.flatnonzero(hidden.to_numpy(zero_copy_only=False)):
                errors.setdefault(int(i), []).append(
                    f"{rule.field} {columns[rule.field][int(i)].as_py()!r} may only be written by "
                    f"{' or '.join(rule.roles)}")
    for c in names:
        if c in target.required:
            for i in np.flatnonzero(pc.is_null(columns[c]).to_numpy(zero_copy_only=False)):
                if int(i) not in errors or not any(r.startswith(c) for r in errors[int(i)]):
                    f = layer.field(c)
                    errors.setdefault(int(i), []).append(f"{f.export_name} ({c}) is empty")
    if target.key:  # repeated keys, grouped in pandas: Python only touches the repeats
        keys = list(target.key)
        frame = pa.table({c: columns[c] for c in keys}).to_pandas(integer_object_nulls=True)
        frame["row"] = np.arange(len(frame))
        frame = frame[~frame["row"].isin(list(errors))]  # a refused row is no first occurrence
        first = frame.groupby(keys, dropna=False, sort=False)["row"].transform("min")
        repeats = frame[frame["row"] != first]
        for row, k, f in zip(repeats["row"], repeats[keys].itertuples(index=False), first[repeats.index],
                             strict=True):
            shown = "/".join("" if pd.isna(v) else str(v) for v in k)  # None, or NaN for a null
            errors.setdefault(int(row), []).append(f"same {'/'.join(keys)} {shown} as row {int(f) + 1}")

