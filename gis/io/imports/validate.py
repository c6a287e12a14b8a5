"""Validating an import's rows against the catalogue: which file column is which field, each
value converted to the field's type and coded values, who may write which fields and rows, and
the table's own rules that can be told before writing (required values, repeated keys).

Every check works on whole Arrow columns and records what it refuses in an ERRORS mapping
(row -> reasons), so one pass reports every bad row of a file with its number instead of
stopping at the first; Python touches single values only where Arrow has no cast for the
file's form (a Vietnamese date, a decimal comma, a label instead of a code). Geometry checks are in
gis.io.imports.geometry.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gis.fmt import VN_TZ
from gis.io.imports.errors import ImportFileError, ImportNotAllowed
from gis.io.imports.report import ImportReport, Reason
from gis.io.imports.table import Target
from gis.io.imports.versions import check_rows as check_versions
from layers.access import ADMIN, Principal, readable_layer
from layers.errors import LayerNotFound, Message
from layers.model import Field, Layer, Versions

# Columns that identify features in other systems (or GDAL's own), never imported.
IGNORED_COLUMNS = frozenset({"id", "fid", "ogc_fid", "objectid", "gid", "wkt", "geometry", "geom",
                             "the_geom", "wkb_geometry", "shape_leng", "shape_area", "shape_length"})
# Naive date-times in a file are Vietnamese local time.


def check_rights(layer_id: str, who: Principal) -> Layer:
    """The layer WHO may import into: LayerNotFound if they may not read it (no hint that it
    exists), ImportNotAllowed without one of its import roles (Layer.import_roles)."""
    layer = readable_layer(layer_id, who)
    if layer is None:
        raise LayerNotFound(f"layer {layer_id!r} not found")
    if layer.read_only:
        raise ImportNotAllowed(f"{layer.id} is read-only here; its data has an import of its own",
                               message=Message("import_read_only", {"layer": layer.id}))
    roles = layer.import_roles
    if who.anonymous or not (ADMIN in who.roles or who.roles & set(roles)):
        need = " or ".join([*roles, ADMIN])
        raise ImportNotAllowed(f"importing into {layer.id} requires role {need}")
    return layer


def _norm(name: str) -> str:
    """A column name or label as compared: NFC (files mix composed and decomposed Vietnamese),
    trimmed, any case."""
    return unicodedata.normalize("NFC", name).strip().lower()


def map_columns(layer: Layer, columns: Iterable[str], writable: set[str], report: ImportReport
                ) -> dict[str, str]:
    """File column -> catalogue field, by full name, short (export) name or the first 10
    characters of the full name (what GDAL makes of a long name in a .dbf)."""
    lookup: dict[str, Field] = {}
    for fld in layer.fields:
        for key in (fld.name, fld.export_name, fld.name[:10]):
            lookup.setdefault(_norm(key), fld)
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
            report.warnings.append(Reason(f"column {col} ({f.name}) is maintained by the system: "
                                          "ignored", "import_w_system_column", column=col,
                                          field=f.name))
            continue
        if f.name not in writable:
            raise ImportNotAllowed(f"column {col}: you may not write field {f.name!r} of {layer.id}")
        if f.name in out.values():
            first = next(c for c, n in out.items() if n == f.name)
            raise ImportFileError(f"columns {first} and {col} both hold field {f.name}",
                                  "import_same_field", a=first, b=col, field=f.name)
        out[col] = f.name
    if report.ignored_columns:
        report.warnings.append(Reason(f"columns not in layer {layer.id}, ignored: "
                                      f"{', '.join(report.ignored_columns)}", "import_w_ignored",
                                      layer=layer.id, columns=", ".join(report.ignored_columns)))
    return out


# A refused value's reason (Column.bad's WHY, by its start) -> its catalogue entry.
WHY_ENTRIES = (
    ("is not text", "import_not_text"),
    ("is not a list of codes", "import_not_codes"),
    ("is not an integer", "import_not_integer"),
    ("is not a finite number", "import_not_finite"),
    ("is not a number", "import_not_number"),
    ("is not a date-time", "import_not_datetime"),
    ("is not a date", "import_not_date"),
    ("is not true/false", "import_not_boolean"),
    ("has a value that is not one of", "import_not_one_of"),
    ("is not one of", "import_not_one_of"),
)


class Column:
    """One field's values, converted to its catalogue type; bad values are rejections."""

    def __init__(self, f: Field, errors: dict[int, list[str]], label: str) -> None:
        self.f, self.errors, self.label = f, errors, label

    def bad(self, i: int, value: Any, why: str) -> None:
        """Record row I's VALUE as refused, WHY (the row number is local to the column); the
        reason names its catalogue entry (WHY_ENTRIES)."""
        key = next((k for prefix, k in WHY_ENTRIES if why.startswith(prefix)), None)
        self.errors.setdefault(i, []).append(Reason(
            f"{self.label}: {value!r} {why}", key, column=self.label, value=repr(value),
            allowed=why.rpartition("one of ")[2]))

    def convert(self, arr: pa.Array) -> pa.Array:
        """ARR as an Arrow array of the field's type (nulls where a value was refused)."""
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
        out: list[Any] = []
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
    """An integer, also from 12.0 or "1 200" (thousands separated by a space)."""
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
    """A finite number, also with a Vietnamese decimal comma."""
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
    """A date in ISO or Vietnamese order (DD/MM/YYYY), or the date of a date-time."""
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
    """An aware UTC date-time; naive ones are Vietnamese local time (VN_TZ)."""
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
    return (t if t.tzinfo else t.replace(tzinfo=VN_TZ)).astimezone(dt.UTC)


def _as_bool(v: Any) -> bool:
    """True/false in English or Vietnamese (có/không), or a mark (x)."""
    s = str(v).strip().lower()
    if s in ("true", "t", "1", "yes", "y", "có", "co", "x"):
        return True
    if s in ("false", "f", "0", "no", "n", "không", "khong"):
        return False
    raise ValueError


def check_rows(layer: Layer, who: Principal, target: Target, names: list[str],
               columns: dict[str, pa.Array], errors: dict[int, list[str]],
               versions: Versions | None = None) -> None:
    """Rows the caller may not write (row rules), empty required values, repeated keys (in a
    history import, VERSIONS: repeated versions of a feature, gis.io.imports.versions)."""
    for rule in layer.row_rules:
        if rule.field in columns and not (ADMIN in who.roles or who.roles & set(rule.roles)):
            hidden = pc.fill_null(pc.is_in(columns[rule.field], pa.array(list(rule.values))), False)
            for i in np.flatnonzero(hidden.to_numpy(zero_copy_only=False)):
                value = columns[rule.field][int(i)].as_py()
                errors.setdefault(int(i), []).append(Reason(
                    f"{rule.field} {value!r} may only be written by {' or '.join(rule.roles)}",
                    "import_row_rule", field=rule.field, value=repr(value),
                    roles=", ".join(rule.roles)))
    for c in names:
        if c in target.required:
            for i in np.flatnonzero(pc.is_null(columns[c]).to_numpy(zero_copy_only=False)):
                if int(i) not in errors or not any(r.startswith(c) for r in errors[int(i)]):
                    f = layer.field(c)
                    errors.setdefault(int(i), []).append(Reason(
                        f"{f.export_name} ({c}) is empty", "import_empty",
                        column=f"{f.export_name} ({c})"))
    if versions is not None:
        check_versions(layer, versions, columns, errors)
    elif target.key:  # repeated keys, grouped in pandas: Python only touches the repeats
        keys = list(target.key)
        frame = pa.table({c: columns[c] for c in keys}).to_pandas(integer_object_nulls=True)
        frame["row"] = np.arange(len(frame))
        frame = frame[~frame["row"].isin(list(errors))]  # a refused row is no first occurrence
        first = frame.groupby(keys, dropna=False, sort=False)["row"].transform("min")
        repeats = frame[frame["row"] != first]
        for row, k, f in zip(repeats["row"], repeats[keys].itertuples(index=False), first[repeats.index],
                             strict=True):
            shown = "/".join("" if pd.isna(v) else str(v) for v in k)  # None, or NaN for a null
            errors.setdefault(int(row), []).append(Reason(
                f"same {'/'.join(keys)} {shown} as row {int(f) + 1}", "import_duplicate",
                keys="/".join(keys), shown=shown, row=str(int(f) + 1)))
