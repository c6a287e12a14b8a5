"""Exports of one catalogue layer to Shapefile, GeoPackage, GeoJSON, FlatGeobuf, CSV or KML.

Why it is built this way:

* PostGIS does the work it is best at: the filter (bbox, administrative unit, CQL2, time window,
  the caller's row rules), the reprojection (ST_Transform with the EPSG SRIDs registered by
  migration 0002, checked against pyproj to the millimetre) and the WKB encoding. Python only
  moves column batches: rows come through a binary server-side cursor, are turned into Arrow
  record batches and streamed into GDAL (pyogrio.write_arrow), so memory stays bounded and no
  per-feature Python object is built for the geometry.
* Access is the catalogue's (layers.access): a layer the caller may not read is "not found",
  fields they may not read are absent (not empty), hidden rows are excluded. Exports that carry
  restricted layers, fields or rows, or personal data, are audited.
* CRS are written as EPSG codes (pyogrio crs="EPSG:9209"): the .prj then names datum
  D_Vietnam_2000, which re-opens with the datum shift. Every .prj written is re-read and checked
  (gis.io.sourcecrs) so a file that would re-open 220 m off is never handed out.
* Shapefile: what planners expect - UTF-8 text with a .cpg, 10-character field names from the
  catalogue (MAXA, SOTO, SOTHUA, ...) plus fields.csv mapping them to full names and titles, dates
  as dBase dates and date-times as ISO text (dBase has no date-time type). One shapefile per
  geometry type (points, multipoints, lines, polygons) and, past the format's 2 GB limit per
  file, numbered parts (name_2.shp, ...); more than 255 fields is refused. Text longer than the
  dBase limit of 254 bytes is cut by GDAL and reported in the warnings.
* TCVN3 on request only (Shapefile and CSV): text is converted to TCVN3 bytes and written
  without recoding (the .dbf goes through GDAL with ENCODING=ISO-8859-1, byte for byte), and no
  .cpg is written - legacy readers show the bytes with a .VnTime font; a readme in the zip says
  so. Other formats are UTF-8 by definition and refuse TCVN3.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import queue
import shutil
import threading
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
from psycopg import sql

from gis.io.encodings import tcvn3_encode, tcvn3_encode_as_latin1
from gis.io.formats import Format, FormatError, get_format, parse_export_crs
from gis.rows import scalar
from layers import query_params
from layers.access import Principal, is_sensitive_read, readable_fields, readable_layer, row_filter
from layers.errors import Ambiguous, BadRequest, LayerNotFound, Message
from layers.features_sql import FeatureQuery, where
from layers.model import Field, Layer

# Rows per Arrow batch: big enough for GDAL to write efficiently, small enough for steady
# progress and bounded memory.
BATCH_ROWS = 20_000
# dBase and .shp offsets are 32-bit: keep each file under 2 GiB with some headroom.
SHAPEFILE_MAX_BYTES = 2**31 - 2**24
SHAPEFILE_MAX_FIELDS = 255
DBF_MAX_TEXT = 254
# Significant digits of a float field with catalogue decimals, written as an Arrow decimal:
# GDAL makes it a Real field of that width and precision (a .dbf column N(17,1) holding "24.1",
# a GeoPackage REAL), not a double printed as 24.100000000000001. 15 digits hold legal areas to
# 0.1 m² up to 10^13 m² and stay exact in a double.
DECIMAL_DIGITS = 15
# Datum of a "pre-2025" administrative unit when the caller says so without a date.
PRE_2025 = dt.date(2025, 6, 30)

Progress = Callable[[int, int | None], None]


class ExportError(BadRequest, ValueError):
    """A request that cannot be exported as asked (HTTP 400, a one-line CLI error). The common
    refusals name their catalogue entry (api/messages.py), the others read "the export cannot
    be made as asked" in Vietnamese and keep their English detail."""

    fallback = Message("export_invalid")

    @classmethod
    def field(cls, name: str, reason: str, key: str, **args: Any) -> ExportError:
        return cls.for_field(key, name, reason, **args)




@dataclass
class ExportRequest:
    """What to export; strings as they come from a query string, JSON body or command line."""

    layer: str
    format: str = "gpkg"
    crs: str | int | None = None
    bbox: str | Sequence[float] | None = None
    bbox_crs: str | None = None
    # Administrative unit code (commune, district or province) and the date its boundary is
    # taken at: None = today (current units); "pre-2025" = the units before the 2025 reform.
    commune: str | None = None
    commune_date: str | dt.date | None = None
    filter: str | dict | None = None
    filter_lang: str | None = None
    filter_crs: str | None = None
    datetime: str | None = None
    fields: str | Sequence[str] | None = None
    encoding: str = "utf-8"

    def summary(self) -> dict[str, Any]:
        """For the audit log and job status: what was asked, without noise."""
        out = {k: v for k, v in self.__dict__.items() if v not in (None, "", [], ())}
        if isinstance(out.get("commune_date"), dt.date):
            out["commune_date"] = out["commune_date"].isoformat()
        return out


@dataclass
class ExportPlan:
    request: ExportRequest
    layer: Layer
    fmt: Format
    srid: int
    fields: tuple[Field, ...]
    condition: sql.Composable
    params: list[Any]
    encoding: str
    basename: str
    sensitive: bool
    # Shapefile: one zip (downloads), or the files themselves in the output directory (the
    # command line's `-o name.shp`).
    zip: bool = True


@dataclass
class ExportResult:
    path: Path
    filename: str
    media_type: str
    rows: int
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Download name in Vietnamese ("Thửa đất địa chính - EPSG9209.zip"), for filename*.
    title: str = ""


# --- planning ---------------------------------------------------------------------------------

def _readable_layer(layer_id: str, who: Principal) -> Layer:
    layer = readable_layer(layer_id, who)
    if layer is None:
        raise LayerNotFound(f"layer {layer_id!r} not found")
    return layer


def _param(parse: Callable[..., Any], *raw: Any) -> Any:
    try:
        return parse(*raw)
    except query_params.ParamError as e:
        raise ExportError(e.detail, parameter=e.parameter, problems=e.problems,
                          message=e.message) from None


def _admin_date(raw: str | dt.date | None) -> dt.date:
    if raw is None or raw == "":
        return dt.datetime.now(dt.UTC).date()
    if isinstance(raw, dt.date):
        return raw
    if raw.strip().lower() in ("pre-2025", "pre2025", "truoc-2025", "old"):
        return PRE_2025
    try:
        return dt.date.fromisoformat(raw.strip())
    except ValueError:
        raise ExportError.field("commune-date", f"{raw!r} is not a date (YYYY-MM-DD) or 'pre-2025'",
                                "export_commune_date", value=repr(raw)) from None


def _select_fields(layer: Layer, visible: tuple[Field, ...], wanted: str | Sequence[str] | None
                   ) -> tuple[Field, ...]:
    """Fields by catalogue name or short (export) name; one the caller may not read is reported
    as unknown, exactly like a misspelt one."""
    if wanted is None or wanted == "" or wanted == []:
        return visible
    if not isinstance(wanted, str) and not (isinstance(wanted, Sequence)
                                            and all(isinstance(n, str) for n in wanted)):
        raise ExportError(f"fields: expected names separated by commas or a list of names, got {wanted!r}")
    names = [n.strip() for n in (wanted.split(",") if isinstance(wanted, str) else wanted)]
    by_name = {f.name.lower(): f for f in visible} | {f.export_name.lower(): f for f in visible}
    out: list[Field] = []
    for n in names:
        if not n:
            continue
        f = by_name.get(n.lower())
        if f is None:
            raise ExportError.field("fields", f"{layer.id!r} has no field {n!r}; fields: "
                                    f"{', '.join(f.name for f in visible)}", "export_no_field",
                                    given=repr(n), fields=", ".join(f.name for f in visible))
        if f not in out:
            out.append(f)
    return tuple(out)


def plan(conn: psycopg.Connection, req: ExportRequest, who: Principal) -> ExportPlan:
    """Validate a request against the catalogue and the caller's rights; nothing is read yet."""
    from layers.cql2 import FilterError, filter_to_sql, parse_filter

    layer = _readable_layer(req.layer, who)
    try:
        fmt = get_format(req.format)
    except FormatError as e:
        raise ExportError.about("format", e) from None
    try:
        srid = parse_export_crs(req.crs if req.crs not in (None, "") else fmt.fixed_srid)
    except FormatError as e:
        raise ExportError.about("crs", e) from None
    if fmt.fixed_srid is not None and srid != fmt.fixed_srid:
        raise ExportError(f"{fmt.label} is always in EPSG:{fmt.fixed_srid} (WGS 84); "
                          "choose another format for VN-2000",
                          message=Message("export_fixed_crs", {"format": fmt.label,
                                                               "srid": str(fmt.fixed_srid)}))
    encoding = (req.encoding or "utf-8").strip().lower().replace("_", "-")
    if encoding in ("utf8", "unicode"):
        encoding = "utf-8"
    if encoding not in ("utf-8", "tcvn3"):
        raise ExportError.field("encoding", f"{req.encoding!r} is not supported; use utf-8 or tcvn3",
                                "export_encoding", value=repr(req.encoding))
    if encoding == "tcvn3" and not fmt.tcvn3:
        raise ExportError(f"encoding tcvn3: {fmt.label} is UTF-8 by definition; TCVN3 is offered "
                          "for Shapefile and CSV")
    visible = readable_fields(layer, who)
    fields = _select_fields(layer, visible, req.fields)
    if fmt.key == "shp" and len(fields) + 1 > SHAPEFILE_MAX_FIELDS:
        raise ExportError(f"a Shapefile holds at most {SHAPEFILE_MAX_FIELDS} fields; {len(fields) + 1} "
                          "asked: choose fewer fields or GeoPackage")

    q = FeatureQuery(layer=layer, fields=fields, restrict=row_filter(layer, who))
    if req.bbox not in (None, "", []):
        q.bbox, q.bbox_srid = _param(query_params.parse_bbox, req.bbox, req.bbox_crs)
    if req.datetime:
        if not layer.time_column:
            raise ExportError.field("datetime", f"layer {layer.id!r} has no time dimension",
                                    "no_time", layer=layer.id)
        q.time_range = _param(query_params.parse_datetime, req.datetime)
    if req.filter not in (None, ""):
        from gis.crs import UnsupportedCRS, parse_crs_uri

        try:
            fsrid, fswap = parse_crs_uri(req.filter_crs or "CRS84")
        except UnsupportedCRS as e:
            raise ExportError.about("filter-crs", e) from None
        lang = req.filter_lang or ("cql2-json" if isinstance(req.filter, dict) else "cql2-text")
        try:
            node = parse_filter(req.filter, lang)
            # Only visible fields may be filtered on: a hidden field must not leak through a
            # filter that selects on it.
            q.condition = filter_to_sql(node, layer, allowed=[f.name for f in visible],
                                        filter_srid=fsrid, filter_swap_axes=fswap, table_alias="t")
        except FilterError as e:
            raise ExportError.about("filter", e) from None
    cond, params = where(q)
    suffix = ""
    if req.commune not in (None, ""):
        day = _admin_date(req.commune_date)
        code = resolve_unit(conn, str(req.commune), day)
        cond = sql.SQL("({}) AND ST_Intersects({}, (SELECT ST_Union(a.geom) FROM admin_units a "
                       "WHERE a.code = %s AND a.valid_from <= %s "
                       "AND (a.valid_to IS NULL OR a.valid_to > %s)))").format(
            cond, sql.Identifier("t", layer.geometry_column))
        params = [*params, code, day, day]
        suffix = f"_{code}" + ("_truoc2025" if day < dt.date(2025, 7, 1) else "")
    sensitive = is_sensitive_read(layer, who, fields)
    basename = f"{layer.id}{suffix}_EPSG{srid}"
    return ExportPlan(req, layer, fmt, srid, fields, cond, params, encoding, basename, sensitive)


# Kinds of administrative unit as they begin their names ("Xã Bảo Yên"), folded: a name may be
# given with or without them.
_UNIT_KINDS = ("xa", "phuong", "thi tran", "dac khu", "huyen", "quan", "thi xa", "thanh pho", "tinh")
# Candidates listed when a name is ambiguous.
MAX_CANDIDATES = 20


def resolve_unit(conn: psycopg.Connection, text: str, day: dt.date) -> str:
    """The code of the administrative unit TEXT names on DAY: its code, or its name without
    accents or case (like the map's search: "bao yen", "Xã Bảo Yên", "BẢO YÊN"), with or
    without the kind of unit. A name equal to one unit's wins over names that only contain it;
    several equal names (or, without one, several containing it) are Ambiguous (HTTP 300), the
    candidates listed with their codes, never a guess; none is a 400."""
    raw = text.strip()
    when = f" on {day.isoformat()}"
    hint = " (pass commune-date=pre-2025 for the units before the 2025 reform)"
    if raw.isdigit():
        found = scalar(conn.execute(
            "SELECT count(*) FROM admin_units WHERE code = %s AND valid_from <= %s "
            "AND (valid_to IS NULL OR valid_to > %s)", (raw, day, day)))
        if not found:
            raise ExportError.field("commune", f"no administrative unit {raw!r}{when}{hint}",
                                    "export_no_unit", value=repr(raw), day=day)
        return raw
    q = _fold(raw)
    bare, wanted_kind = q, None
    for kind in _UNIT_KINDS:  # "xa bao yen" -> "bao yen"; the kind given narrows below
        if q.startswith(kind + " ") and len(q) > len(kind) + 1:
            bare, wanted_kind = q[len(kind) + 1:], kind
            break
    if len(bare) < 2:
        raise ExportError.field("commune", "give an administrative unit code or at least two letters "
                                "of its name", "export_unit_name")
    rows = conn.execute(
        "SELECT code, name, level, geoioc_fold(name) FROM admin_units "
        "WHERE valid_from <= %s AND (valid_to IS NULL OR valid_to > %s) "
        "AND geoioc_fold(name) LIKE %s ORDER BY level, code LIMIT 1000",
        (day, day, "%" + _like_escape(bare) + "%")).fetchall()
    exact = [r for r in rows if _same_name(r[3], bare, wanted_kind)]
    matches = exact or rows
    if len({r[0] for r in matches}) == 1:
        return str(matches[0][0])
    if not matches:
        raise ExportError.field("commune", f"no administrative unit named {raw!r}{when}{hint}",
                                "export_no_unit", value=repr(raw), day=day)
    listed = sorted({(r[0], r[1], r[2]) for r in matches})[:MAX_CANDIDATES]
    raise Ambiguous(
        f"commune: {raw!r} names {len({r[0] for r in matches})} administrative units{when}: "
        + "; ".join(f"{code} {name} ({level})" for code, name, level in listed)
        + ". Give the code.", parameter="commune",
        candidates=[{"code": code, "name": name, "level": level} for code, name, level in listed])


def _same_name(folded: str, bare: str, kind: str | None) -> bool:
    if folded == bare:
        return kind is None
    return any(folded == f"{k} {bare}" for k in ((kind,) if kind else _UNIT_KINDS))


def _fold(text: str) -> str:
    """geoioc_fold() on the Python side: lower case, no diacritics, đ as d, single spaces."""
    import unicodedata

    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.lower().split())


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- reading ----------------------------------------------------------------------------------

def _column(f: Field, fmt: Format) -> sql.Composable:
    col = sql.Identifier("t", f.name)
    if f.type == "str[]":
        return sql.SQL("array_to_string({}, ',')").format(col)
    if f.type == "float" and f.decimals is not None:
        return sql.SQL("round({}::numeric, {})").format(col, sql.Literal(f.decimals))
    if f.type == "float":
        return sql.SQL("{}::float8").format(col)
    if f.type == "int":  # catalogue integers fit 32 bits: N(11) in dBase instead of N(20)
        return sql.SQL("{}::int4").format(col)
    if f.type == "datetime" and fmt.datetime_as_text:
        # ISO 8601 in UTC; fractions of a second only when there are some (a re-import must
        # find the same instant).
        return sql.SQL("""to_char({0} AT TIME ZONE 'UTC', CASE WHEN date_trunc('second', {0}) = {0} """
                       """THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END)"""
                       ).format(col)
    if f.type == "bool":
        return sql.SQL("{}::bool").format(col)
    return col


def _arrow_type(f: Field, fmt: Format) -> pa.DataType:
    if f.type == "int":
        return pa.int32()
    if f.type == "float" and f.decimals is not None:
        return pa.decimal128(DECIMAL_DIGITS, f.decimals)
    if f.type == "float":
        return pa.float64()
    if f.type == "date":
        return pa.date32()
    if f.type == "datetime":
        return pa.string() if fmt.datetime_as_text else pa.timestamp("us", tz="UTC")
    if f.type == "bool":
        return pa.bool_()
    return pa.string()


def column_names(p: ExportPlan) -> list[str]:
    """Output field names: short names for Shapefile (unique, at most 10 characters)."""
    if not p.fmt.short_names:
        return ["id", *(f.name for f in p.fields)]
    names = ["ID"]
    for f in p.fields:
        name = f.export_name.upper()[:10]
        n = 1
        while name in names:  # the catalogue's test keeps them unique; never fail an export on it
            n += 1
            name = f"{f.export_name.upper()[:10 - len(str(n))]}{n}"
        names.append(name)
    return names


def _schema(p: ExportPlan) -> pa.Schema:
    names = column_names(p)
    types = [pa.int64(), *(_arrow_type(f, p.fmt) for f in p.fields)]
    return pa.schema([*(pa.field(n, t) for n, t in zip(names, types, strict=True)),
                      pa.field("geometry", pa.binary())])


def _select(p: ExportPlan, extra: sql.Composable | None = None) -> sql.Composed:
    geom: sql.Composable = sql.Identifier("t", p.layer.geometry_column)
    if p.srid != 4326:
        geom = sql.SQL("ST_Transform({}, {})").format(geom, sql.Literal(p.srid))
    cond = p.condition if extra is None else sql.SQL("({}) AND ({})").format(p.condition, extra)
    return sql.SQL("SELECT {id}::int8, {cols}{sep}ST_AsBinary({geom}) FROM {table} AS t "
                   "WHERE {cond} ORDER BY {id}").format(
        id=sql.Identifier("t", p.layer.id_column),
        cols=sql.SQL(", ").join(_column(f, p.fmt) for f in p.fields),
        sep=sql.SQL(", ") if p.fields else sql.SQL(""),
        geom=geom, table=sql.Identifier(p.layer.table), cond=cond)


def estimate(conn: psycopg.Connection, p: ExportPlan, cap: int | None = None) -> int:
    """How many features the export has (counting stops past CAP when given)."""
    inner = sql.SQL("SELECT 1 FROM {} AS t WHERE {}").format(sql.Identifier(p.layer.table), p.condition)
    params = list(p.params)
    if cap is not None:
        inner = inner + sql.SQL(" LIMIT %s")
        params.append(cap + 1)
    return int(scalar(conn.execute(sql.SQL("SELECT count(*) FROM ({}) AS s").format(inner), params)))


class _Rows:
    """Batches of one query through a binary server-side cursor, as Arrow record batches.

    A reader thread fetches and converts the next batch while GDAL writes the current one, so
    PostgreSQL (query, reprojection, WKB) and the file writer work at the same time on two
    cores instead of waiting for each other. The connection is used by that thread only until
    close()."""

    def __init__(self, conn: psycopg.Connection, p: ExportPlan, query: sql.Composed,
                 params: list[Any], tick: Callable[[int], None]) -> None:
        self.conn, self.plan, self.tick = conn, p, tick
        self.schema = _schema(p)
        self.cursor = conn.cursor(name="geoioc_export", binary=True)
        self.cursor.execute(query, params)
        self.pending: pa.RecordBatch | None = None
        self.done = False
        self.long_text: dict[str, int] = {}
        self._text_columns = [i + 1 for i, f in enumerate(p.fields)
                              if _arrow_type(f, p.fmt) == pa.string()]
        self._queue: queue.Queue[pa.RecordBatch | BaseException | None] = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="geoioc-export-reader", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            while not self._stop.is_set():
                rows = self.cursor.fetchmany(BATCH_ROWS)
                if not rows:
                    break
                self._queue.put(self._convert(rows))
        except BaseException as e:  # handed to the consumer, which raises it
            self._queue.put(e)
            return
        self._queue.put(None)

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():  # unblock a reader waiting to put
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.05)
        self.cursor.close()

    def _convert(self, rows: list[tuple]) -> pa.RecordBatch:
        columns: list[Any] = list(zip(*rows, strict=True))
        if self.plan.encoding == "tcvn3":
            for i in self._text_columns:
                columns[i] = [None if v is None else tcvn3_encode_as_latin1(v) for v in columns[i]]
        arrays = [pa.array(c, type=t) for c, t in zip(columns, self.schema.types, strict=True)]
        if self.plan.fmt.key == "shp":
            for i in self._text_columns:
                n = pc.sum(pc.greater(pc.binary_length(arrays[i]), DBF_MAX_TEXT)).as_py()
                if n:
                    name = self.schema.names[i]
                    self.long_text[name] = self.long_text.get(name, 0) + n
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def next_batch(self) -> pa.RecordBatch | None:
        if self.pending is not None:
            batch, self.pending = self.pending, None
            return batch
        if self.done:
            return None
        item = self._queue.get()
        if item is None or isinstance(item, BaseException):
            self.done = True
            if isinstance(item, BaseException):
                raise item
            return None
        self.tick(item.num_rows)
        return item


# --- writing ----------------------------------------------------------------------------------

_SHP_FAMILIES = {  # GeometryType() values -> (file suffix, GDAL geometry type)
    "point": (("POINT",), "Point"),
    "multipoint": (("MULTIPOINT",), "MultiPoint"),
    "line": (("LINESTRING", "MULTILINESTRING"), "MultiLineString"),
    "polygon": (("POLYGON", "MULTIPOLYGON"), "MultiPolygon"),
}


def _geometry_type(layer: Layer) -> str:
    return layer.geometry_type


def _write_stream(path: Path, p: ExportPlan, rows: _Rows, geometry_type: str,
                  limit: Callable[[pa.RecordBatch], bool] | None = None) -> int:
    """Write batches from ROWS into one file until they run out or LIMIT says the next batch
    would not fit (it then stays pending for the next file). Returns the rows written."""
    written = 0

    def gen() -> Iterator[pa.RecordBatch]:
        nonlocal written
        while (batch := rows.next_batch()) is not None:
            if limit is not None and written and limit(batch):
                rows.pending = batch
                return
            written += batch.num_rows
            yield batch

    reader = pa.RecordBatchReader.from_batches(rows.schema, gen())
    options: dict[str, Any] = {}
    dataset_options: dict[str, Any] = {}
    encoding = None
    driver = p.fmt.driver
    if p.fmt.key == "shp":
        # No RESIZE: shrinking the .dbf at close rewrites it and took 80 % of the export time;
        # text fields keep GDAL's default width of 80 (widened up to 254 as needed), as with
        # ogr2ogr, and the padding costs nothing in the zip.
        encoding = "ISO-8859-1" if p.encoding == "tcvn3" else "UTF-8"
    elif p.fmt.key == "gpkg":
        options.update({"SPATIAL_INDEX": "YES", "IDENTIFIER": p.layer.title_vi,
                        "DESCRIPTION": p.layer.description_vi})
    elif p.fmt.key == "geojson":
        if p.srid == 4326:
            options["RFC7946"] = "YES"
            options["COORDINATE_PRECISION"] = 9
        options["WRITE_NAME"] = "NO"
    elif p.fmt.key == "csv":
        options.update({"GEOMETRY": "AS_WKT", "WRITE_BOM": "NO" if p.encoding == "tcvn3" else "YES",
                        "CREATE_CSVT": "NO"})
    elif p.fmt.key == "kml":
        names = column_names(p)
        name_field = next((n for n in ("name", "title", "code") if n in names), None)
        if name_field:
            dataset_options["NameField"] = name_field
    pyogrio.write_arrow(
        reader, str(path), layer=p.layer.id if p.fmt.key == "gpkg" else path.stem, driver=driver,
        geometry_name="geometry", geometry_type=geometry_type, crs=f"EPSG:{p.srid}",
        encoding=encoding, layer_options=options or None, dataset_options=dataset_options or None)
    return written


def _dbf_record_length(p: ExportPlan, widths: dict[int, int]) -> int:
    n = 1
    for i, f in enumerate(p.fields, start=1):
        t = _arrow_type(f, p.fmt)
        if t == pa.string():
            n += min(DBF_MAX_TEXT, max(80, widths.get(i, 0)))
        elif t == pa.date32():
            n += 8
        elif t == pa.bool_():
            n += 1
        elif t == pa.int32():
            n += 11
        elif pa.types.is_decimal(t):
            n += DECIMAL_DIGITS + 2
        else:
            n += 24
    return n + 20  # the ID


def _shapefile_limit(p: ExportPlan) -> Callable[[pa.RecordBatch], bool]:
    """A LIMIT for _write_stream: True when the next batch would take the .shp or .dbf past
    SHAPEFILE_MAX_BYTES (estimated from WKB sizes and the widest text seen)."""
    state = {"rows": 0, "shp": 100}
    widths: dict[int, int] = {}

    def over(batch: pa.RecordBatch) -> bool:
        geoms = batch.column(batch.num_columns - 1)
        shp = state["shp"] + (pc.sum(pc.binary_length(geoms)).as_py() or 0) + 48 * batch.num_rows
        for i in range(1, batch.num_columns - 1):
            if batch.schema.types[i] == pa.string():
                widest = pc.max(pc.binary_length(batch.column(i))).as_py()
                if widest:
                    widths[i] = max(widths.get(i, 0), widest)
        dbf = (state["rows"] + batch.num_rows) * _dbf_record_length(p, widths)
        if max(shp, dbf) > SHAPEFILE_MAX_BYTES:
            state["rows"], state["shp"] = 0, 100
            widths.clear()
            return True
        state["rows"] += batch.num_rows
        state["shp"] = shp
        return False

    return over


def _check_prj(prj: Path, srid: int) -> None:
    """The .prj must re-open as EPSG:SRID with the datum shift, never as a 'ballpark' CRS."""
    from gis.io.sourcecrs import SourceCRSError, resolve

    try:
        got = resolve(prj.read_text(), None, origin=prj.name)
    except SourceCRSError as e:
        raise ExportError(f"internal check failed: {prj.name} would not re-open in place: {e}") from None
    if got.label != f"EPSG:{srid}":
        raise ExportError(f"internal check failed: {prj.name} re-opens as {got.label}, not EPSG:{srid}")


def _csv_type(f: Field, fmt: Format) -> str:
    """A field's type as the file holds it, in words for whoever opens fields.csv."""
    if f.type == "datetime":
        return ("datetime (ISO 8601 text, UTC: dBase has no date-time type)" if fmt.datetime_as_text
                else "datetime (UTC)")
    if f.type == "float" and f.decimals is not None:
        return f"decimal ({f.decimals} decimal{'s' if f.decimals != 1 else ''})"
    if f.type == "str[]":
        return "str (codes separated by ',')"
    return f.type


def _fields_csv(p: ExportPlan) -> str:
    """fields.csv: short name -> full name, titles, type and coded values (UTF-8 with BOM so
    that a spreadsheet shows the Vietnamese titles)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["short_name", "name", "title_vi", "title_en", "type", "values"])
    w.writerow(["ID", "id", "Mã định danh", "Identifier", "int", ""])
    for short, f in zip(column_names(p)[1:], p.fields, strict=True):
        values = "; ".join(f"{k} = {vi} / {en}" for k, (vi, en) in f.values.items())
        ftype = _csv_type(f, p.fmt)
        w.writerow([short, f.name, f.title_vi, f.title_en, ftype, values])
    return "\ufeff" + buf.getvalue()


_TCVN3_README = (
    "Bảng thuộc tính (.dbf) được mã hoá TCVN3 (TCVN 5712:1993) theo yêu cầu, dành cho phần mềm cũ "
    "dùng phông .VnTime; không có tệp .cpg. Dữ liệu chuẩn của hệ thống là Unicode (UTF-8).\r\n"
    "The attribute tables (.dbf) are encoded in TCVN3 (TCVN 5712:1993) on request, for legacy "
    "software with .VnTime fonts; there is deliberately no .cpg file. The system's own data are "
    "Unicode (UTF-8).\r\n"
)


def _write_shapefiles(conn: psycopg.Connection, p: ExportPlan, work: Path, tick: Callable[[int], None],
                      warnings: list[str], announce: Callable[[int], None]) -> list[Path]:
    families: dict[str, int] = dict(conn.execute(
        sql.SQL("SELECT upper(GeometryType(t.{})), count(*) FROM {} AS t WHERE {} GROUP BY 1").format(
            sql.Identifier(p.layer.geometry_column), sql.Identifier(p.layer.table), p.condition),
        p.params).fetchall())
    announce(sum(families.values()))
    found: dict[str, int] = {}
    for gtype, n in families.items():
        fam = next((k for k, (types, _) in _SHP_FAMILIES.items() if gtype in types), None)
        if fam is None:
            raise ExportError(f"{n} features are {gtype}s, which a Shapefile cannot hold; "
                              "choose GeoPackage")
        found[fam] = found.get(fam, 0) + n
    if not found:  # no rows: one empty shapefile of the layer's type
        found = {next(k for k, (types, _) in _SHP_FAMILIES.items()
                      if p.layer.geometry_type.upper() in types): 0}
    files: list[Path] = []
    for fam in found:
        types, gdal_type = _SHP_FAMILIES[fam]
        stem = p.basename if len(found) == 1 else f"{p.basename}_{fam}"
        extra = sql.SQL("upper(GeometryType(t.{})) = ANY(%s)").format(
            sql.Identifier(p.layer.geometry_column))
        rows = _Rows(conn, p, _select(p, extra), [*p.params, list(types)], tick)
        try:
            part = 1
            limit = _shapefile_limit(p)
            while True:
                name = stem if part == 1 else f"{stem}_{part}"
                _write_stream(work / f"{name}.shp", p, rows, gdal_type, limit)
                files.append(work / f"{name}.shp")
                if rows.pending is None and rows.done:
                    break
                part += 1
        finally:
            rows.close()
        for name, n in rows.long_text.items():
            warnings.append(f"{n} values of field {name} were longer than the Shapefile limit of "
                            f"{DBF_MAX_TEXT} bytes and were cut; GeoPackage keeps them whole")
    if len(found) > 1:
        warnings.append("features of several geometry types: one shapefile per type "
                        f"({', '.join(found)})")
    if len(files) > len(found):
        warnings.append(f"over the Shapefile limit of 2 GB per file: written in {len(files)} parts")
    return files


def run(conn: psycopg.Connection, p: ExportPlan, out_dir: Path, progress: Progress | None = None,
        total: int | None = None) -> ExportResult:
    """Write the export into OUT_DIR (created); returns the file to hand out."""
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / f".work-{p.basename}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    done = 0
    if total is None and p.fmt.key != "shp":  # a Shapefile counts its geometry types anyway
        total = estimate(conn, p)
    if progress and total is not None:
        progress(0, total)

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    def announce(n: int) -> None:
        nonlocal total
        total = n
        if progress:
            progress(done, total)

    warnings: list[str] = []
    try:
        with conn.transaction():
            conn.execute("SET LOCAL TimeZone = 'UTC'")
            if p.fmt.key == "shp":
                files = _write_shapefiles(conn, p, work, tick, warnings, announce)
            else:
                path = work / f"{p.basename}{p.fmt.extension}"
                rows = _Rows(conn, p, _select(p), list(p.params), tick)
                try:
                    _write_stream(path, p, rows, _geometry_type(p.layer))
                finally:
                    rows.close()
                files = [path]
        result = _package(p, work, out_dir, files, done, warnings)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if progress:
        progress(done, done)
    return result


def _package(p: ExportPlan, work: Path, out_dir: Path, files: list[Path], rows: int,
             warnings: list[str]) -> ExportResult:
    if p.fmt.key == "shp":
        members: list[Path] = []
        for shp in files:
            _check_prj(shp.with_suffix(".prj"), p.srid)
            if p.encoding == "tcvn3":
                shp.with_suffix(".cpg").unlink(missing_ok=True)
            members += [shp.with_suffix(ext) for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg")
                        if shp.with_suffix(ext).exists()]
        if not p.zip:
            (work / "fields.csv").write_text(_fields_csv(p), encoding="utf-8")
            extra = [work / "fields.csv"]
            if p.encoding == "tcvn3":
                (work / "README-TCVN3.txt").write_text(_TCVN3_README, encoding="utf-8")
                extra.append(work / "README-TCVN3.txt")
            moved = []
            for m in [*members, *extra]:
                shutil.move(m, out_dir / m.name)
                moved.append(out_dir / m.name)
            return ExportResult(out_dir / files[0].name, files[0].name, "application/x-esri-shape", rows,
                                [m.name for m in moved], warnings, _title(p))
        target = out_dir / f"{p.basename}.zip"
        # Level 1: .shp/.dbf compress well even so, and the zip is not the slow part of the export.
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            for m in members:
                z.write(m, m.name)
            z.writestr("fields.csv", _fields_csv(p))
            if p.encoding == "tcvn3":
                z.writestr("README-TCVN3.txt", _TCVN3_README)
        names = [m.name for m in members] + ["fields.csv"]
        return ExportResult(target, target.name, p.fmt.media_type, rows, names, warnings, _title(p))
    (src,) = files
    if p.fmt.key == "csv" and p.encoding == "tcvn3":
        src.write_bytes(tcvn3_encode(src.read_text(encoding="utf-8")))
    target = out_dir / src.name
    shutil.move(src, target)
    return ExportResult(target, target.name, p.fmt.media_type, rows, [target.name], warnings, _title(p))


def _title(p: ExportPlan) -> str:
    return f"{p.layer.title_vi} - EPSG{p.srid}{p.fmt.extension}"


def export(conn: psycopg.Connection, req: ExportRequest, who: Principal, out_dir: Path,
           progress: Progress | None = None, request: Any = None,
           credential: str | None = None, channel: str = "export") -> ExportResult:
    """Plan, write and (for restricted or personal data) audit one export."""
    p = plan(conn, req, who)
    result = run(conn, p, out_dir, progress)
    audit_export(conn, who, p, result, channel, request=request, credential=credential)
    return result


def audit_export(conn: psycopg.Connection, who: Principal, p: ExportPlan, result: ExportResult,
                 channel: str, *, request: Any = None, credential: str | None = None,
                 **extra: Any) -> bool:
    """The audit row of an export that carried restricted or personal data (gis.audit.record_read
    over the fields written): the request as its filter, the rows and fields written."""
    from gis import audit

    return audit.record_read(conn, who, p.layer, channel, fields=p.fields, filter=p.request.summary(),
                             action="export", request=request, credential=credential, status=200,
                             extra={"rows": result.rows, "fields": [f.name for f in p.fields], **extra})


def content_disposition(result: ExportResult) -> str:
    """ASCII file name for every client plus the Vietnamese title (RFC 6266 filename*)."""
    from urllib.parse import quote

    if not result.title:
        return f'attachment; filename="{result.filename}"'
    return f"attachment; filename=\"{result.filename}\"; filename*=UTF-8''{quote(result.title)}"
