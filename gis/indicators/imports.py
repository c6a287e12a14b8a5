"""Importing indicator values from the files statistics offices publish.

Two layouts, in CSV (UTF-8, with or without BOM; comma, semicolon or tab) or XLSX:

* long: one row per unit, indicator, period and value; columns named (any case, with or without
  diacritics) `unit_code`/`Mã ĐVHC`/`Mã đơn vị`/`Mã xã`, `unit_name`/`Tên đơn vị`/`Đơn vị`,
  `indicator_code`/`Mã chỉ tiêu`/`Chỉ tiêu`, `period`/`Kỳ`/`Năm`, `value`/`Giá trị`/`Số liệu`.
* wide, as yearbooks print a table: one row per unit (its code or its name), one column per
  period (`2020`, `Năm 2021`, `Sơ bộ 2024`, `Quý 2/2024`, `6/2024`), for one indicator: given by
  the caller, or named by a title row above the header (its code, `Mã chỉ tiêu: POP`, or its
  Vietnamese name, e.g. "Dân số trung bình phân theo xã"). A row `Tổng số`/`Toàn tỉnh`/`Total`
  is the province. Cells `-`, `..`, `…`, `x` (the yearbooks' "no data") are skipped.

Values: Vietnamese decimal comma accepted (`12,5`; `1.234.567` and `1.234,5` too: with both
marks the last is the decimal one; a single comma is a decimal comma), a trailing `%` for a
percentage; checked against the indicator's range (a percentage within 0..100).

Units: by code or by Vietnamese name, diacritics-insensitive (`xa an binh` finds `Xã Ân Bình`,
with or without `Xã`/`Phường`/`Huyện`...); the unit must be valid on the period's last day (the
communes before the 2025 reform for 2024 and earlier), or on the day given as `boundaries` (a
series recomputed on the current boundaries). A name that fits several units is refused with
their codes; a code and a name that disagree are refused.

All or nothing: every row is checked first; one refused row and nothing is written, the report
naming each refused row (its number as the spreadsheet or editor shows it, the column, the
reason). Otherwise one transaction replaces, for each indicator and period of the file, the
values of the units of the file's levels on the same boundaries (values the file no longer
holds are removed), and the audit log records the import (action `import`, layer
`indicators`), committed or refused.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from gis import audit
from gis.indicators import periods, queries
from gis.indicators.periods import fold
from gis.indicators.read import Row, read_rows
from gis.io.imports.errors import ImportFileError, ImportNotAllowed, without_paths
from gis.io.imports.report import ImportReport, Reason, audit_target
from layers.access import ADMIN, Principal, access_condition
from layers.errors import Message

LAYER = "indicators"
# Who may import indicator values (and administrators): the centre's operators, who receive
# the statistics office's files.
IMPORT_ROLES = ("operator",)
Layout = Literal["auto", "long", "wide"]

_HEADERS: dict[str, tuple[str, ...]] = {
    "unit_code": ("unit_code", "ma dvhc", "ma don vi", "ma don vi hanh chinh", "ma xa", "madvhc",
                  "maxa", "code", "ma"),
    "unit_name": ("unit_name", "ten don vi", "don vi", "don vi hanh chinh", "ten", "ten xa",
                  "xa, phuong", "xa/phuong", "name", "unit"),
    "indicator": ("indicator_code", "indicator", "ma chi tieu", "chi tieu", "machitieu"),
    "period": ("period", "ky", "ky so lieu", "nam", "year", "thoi ky"),
    "value": ("value", "gia tri", "so lieu", "giatri"),
}
_LOOKUP = {name: key for key, names in _HEADERS.items() for name in names}
_NO_DATA = {"-", "..", "...", "…", "x", "—", "–"}
_TOTAL = {"tong so", "toan tinh", "total", "tong", "ca tinh"}
_PREFIXES = ("thanh pho ", "thi xa ", "thi tran ", "phuong ", "huyen ", "tinh ", "xa ", "quan ")


@dataclass
class IndicatorImportOptions:
    """What the caller asks for (the CLI's options, the API's form fields)."""

    indicator: str | None = None  # a wide table's indicator when no title row names it
    layout: Layout = "auto"
    boundaries: dt.date | None = None  # match units valid on this day instead of each period's end
    sheet: str | None = None  # an XLSX sheet (default: the first)
    dry_run: bool = False


@dataclass
class _Unit:
    id: int
    code: str
    name: str
    level: str
    valid_from: dt.date
    valid_to: dt.date | None

    def valid_on(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


@dataclass
class _Value:
    row: int
    indicator: str
    unit: _Unit
    period: str
    value: float
    day: dt.date


@dataclass
class _Checked:
    values: list[_Value] = field(default_factory=list)
    errors: dict[int, list[str]] = field(default_factory=dict)

    def refuse(self, number: int, column: str, reason: str, key: str, **args: Any) -> None:
        self.errors.setdefault(number, []).append(
            Reason(f"{column}: {reason}", key, column=column, **args))


def check_rights(who: Principal) -> None:
    if who.anonymous or not (ADMIN in who.roles or who.roles & set(IMPORT_ROLES)):
        raise ImportNotAllowed("importing indicator values requires role operator or admin",
                               message=Message("indicators_import_role"))


def import_indicators(conn: psycopg.Connection[Any], path: Path, opts: IndicatorImportOptions,
                      who: Principal, *, display: str | None = None, request: Any = None,
                      credential: str | None = None) -> ImportReport:
    """Import PATH's values; the report says what was written or why nothing was. CONN must be
    in autocommit mode (the import is one transaction; a refusal's audit row comes after)."""
    check_rights(who)
    display = display or path.name
    report = ImportReport(LAYER, display, dry_run=opts.dry_run)
    try:
        _run(conn, path, display, opts, who, report, request, credential)
    except ImportFileError as e:
        report.error = without_paths(str(e), display, path)
        report.error_entry = e.message or e.fallback
    except _Rollback:
        pass
    if not report.committed:
        audit.record(conn, who, "import", request=request, layer=LAYER, credential=credential,
                     status=200 if report.ok else 422, target=audit_target(report))
    return report


class _Rollback(Exception):
    """Nothing is written: refused rows, or a dry run."""


def _run(conn: psycopg.Connection[Any], path: Path, display: str, opts: IndicatorImportOptions,
         who: Principal, report: ImportReport, request: Any, credential: str | None) -> None:
    report.format, rows = read_rows(path, display, opts.sheet)
    if not rows:
        raise ImportFileError(f"{display}: the file is empty", "indicators_empty", file=display)
    defs = _definitions(conn, who)
    units = [_Unit(**r) for r in conn.cursor(row_factory=dict_row).execute(
        "SELECT id, code, name, level, valid_from, valid_to FROM admin_units").fetchall()]
    c = _Checked()
    layout, header_at, columns = _header(rows, opts.layout, display)
    body = rows[header_at + 1:]
    if layout == "long":
        _check_long(body, columns, defs, units, opts, c)
    else:
        code = _wide_indicator(rows[:header_at], opts.indicator, defs, display)
        _check_wide(body, columns, code, defs, units, opts, c)
    report.rows = len(body)
    _duplicates(c)
    for row in sorted(c.errors):
        report.reject(row, Reason.join(c.errors[row]))
    if c.errors:
        raise _Rollback
    if not c.values:
        raise ImportFileError(f"{display}: no value to import", "indicators_no_values", file=display)
    with conn.transaction():
        conn.execute(queries.LOCK)
        conn.execute(queries.STAGE)
        with conn.cursor().copy(queries.COPY_STAGE) as cp:
            for v in c.values:
                cp.write_row((v.indicator, v.unit.id, v.period, v.value, v.unit.level, v.day))
        counts = conn.execute(queries.COUNT_CHANGES).fetchone()
        assert counts is not None
        report.inserted, report.updated, report.unchanged = (int(counts[0]), int(counts[1]),
                                                             int(counts[2]))
        removed = conn.execute(queries.DELETE_REPLACED).rowcount
        if removed:
            report.warnings.append(Reason(
                f"{removed} value(s) of the same indicators, periods and units' levels that the "
                "file no longer holds were removed", "indicators_w_removed", n=removed))
        try:
            with conn.transaction():
                conn.execute(queries.UPSERT, {"file": display})
        except psycopg.errors.IntegrityError as e:
            raise ImportFileError(f"the database refused the import: {e.diag.message_primary}",
                                  "import_refused") from None
        if opts.dry_run:
            raise _Rollback
        report.committed = True
        pairs = sorted({(v.indicator, v.period) for v in c.values})
        audit.record(conn, who, "import", request=request, layer=LAYER, credential=credential,
                     status=200, target={**audit_target(report), "removed": removed,
                                         "replaced": [list(p) for p in pairs[:500]]})


def _definitions(conn: psycopg.Connection[Any], who: Principal) -> dict[str, dict[str, Any]]:
    """The indicators WHO may read (an import cannot write one the caller cannot see)."""
    from psycopg import sql
    cond = access_condition(who, sql.Identifier("i", "access"), sql.Identifier("i", "roles"))
    rows = conn.cursor(row_factory=dict_row).execute(
        sql.SQL("SELECT code, name_vi, name_en, unit_vi, periodicity, min_value, max_value "
                "FROM indicators AS i WHERE {}").format(cond if cond is not None else sql.SQL("TRUE"))
    ).fetchall()
    return {r["code"]: r for r in rows}


def _header(rows: list[Row], layout: Layout, display: str) -> tuple[str, int, dict[str, int]]:
    """(layout, index of the header row, role -> column): long when the header names an
    indicator, a period and a value column; wide when it names the unit and has period columns
    (role `period:<period>`)."""
    for k, (_, cells) in enumerate(rows[:30]):
        roles: dict[str, int] = {}
        for i, cell in enumerate(cells):
            key = _LOOKUP.get(fold(cell))
            if key and key not in roles:
                roles[key] = i
        unit = "unit_code" in roles or "unit_name" in roles
        if not unit:
            continue
        is_long = {"indicator", "period", "value"} <= set(roles)
        wide = {f"period:{p}": i for i, cell in enumerate(cells)
                if i not in roles.values() and (p := periods.parse_period(cell))}
        if (layout in ("auto", "long")) and is_long:
            return "long", k, roles
        if layout in ("auto", "wide") and wide:
            return "wide", k, {**{r: i for r, i in roles.items() if r.startswith("unit")}, **wide}
    expected = ("unit_code or unit_name, indicator_code, period and value columns (long), or a unit "
                "column and one column per period (wide)")
    raise ImportFileError(f"{display}: no header row found; expected {expected}",
                          "indicators_no_header", file=display)


def _wide_indicator(titles: list[Row], given: str | None, defs: dict[str, dict[str, Any]],
                    display: str) -> str:
    """The indicator of a wide table: the one given, or the one its title rows name."""
    if given:
        code = given.strip().upper()
        if code not in defs:
            raise ImportFileError(f"indicator {given!r} does not exist", "indicators_unknown",
                                  value=given)
        return code
    found: set[str] = set()
    for _, cells in titles:
        text = " ".join(c for c in cells if c)
        m = re.search(r"(?:ma chi tieu|indicator(?: code)?)\s*[:=]\s*([A-Za-z0-9_]+)", fold(text))
        if m and m.group(1).upper() in defs:
            found.add(m.group(1).upper())
            continue
        for cell in cells:
            if cell.strip().upper() in defs:
                found.add(cell.strip().upper())
        folded = fold(text)
        names = [(len(fold(d["name_vi"])), code) for code, d in defs.items()
                 if re.search(rf"(^|\W){re.escape(fold(d['name_vi']))}(\W|$)", folded)]
        if names:  # the longest name that appears ("Tỷ lệ hộ cận nghèo" over "hộ nghèo")
            found.add(max(names)[1])
    if len(found) == 1:
        return found.pop()
    if not found:
        raise ImportFileError(f"{display}: the table names no indicator; give one (indicator)",
                              "indicators_wide_which", file=display)
    raise ImportFileError(f"{display}: the title names several indicators ({', '.join(sorted(found))});"
                          " give one (indicator)", "indicators_wide_several", file=display,
                          codes=", ".join(sorted(found)))


def _cell(cells: list[str], i: int | None) -> str:
    return cells[i].strip() if i is not None and i < len(cells) else ""


def _check_long(body: list[Row], cols: dict[str, int], defs: dict[str, dict[str, Any]],
                units: list[_Unit], opts: IndicatorImportOptions, c: _Checked) -> None:
    for number, cells in body:
        raw_code = _cell(cells, cols["indicator"])
        code = raw_code.upper()
        d = defs.get(code)
        if d is None:
            c.refuse(number, "indicator_code", f"{raw_code or '(empty)'} is not an indicator",
                     "indicators_r_indicator", value=raw_code or "∅")
        period = _period(number, _cell(cells, cols["period"]), d, c)
        unit = _unit(number, cells, cols, units, period, opts, c)
        value = _value(number, "value", _cell(cells, cols["value"]), d, c, skip_empty=False)
        if d and period and unit and value is not None:
            c.values.append(_Value(number, code, unit, period, value, _day(period, opts)))


def _check_wide(body: list[Row], cols: dict[str, int], code: str, defs: dict[str, dict[str, Any]],
                units: list[_Unit], opts: IndicatorImportOptions, c: _Checked) -> None:
    d = defs[code]
    period_cols = {k.split(":", 1)[1]: i for k, i in cols.items() if k.startswith("period:")}
    for period in period_cols:
        if periods.periodicity(period) != d["periodicity"]:
            c.refuse(1, period, f"not a {d['periodicity']} period of {code}",
                     "indicators_r_periodicity", value=period, periodicity=d["periodicity"],
                     code=code)
    for number, cells in body:
        values = {p: _cell(cells, i) for p, i in period_cols.items()}
        if not any(v and v not in _NO_DATA for v in values.values()):
            continue  # a note, a blank line, a row of dashes
        by_period: dict[str, _Unit | None] = {}
        for period in period_cols:
            by_period[period] = _unit(number, cells, cols, units, period, opts, c, quiet=True)
        for period, raw in values.items():
            if not raw or raw in _NO_DATA:
                continue
            value = _value(number, period, raw, d, c, skip_empty=True)
            unit = by_period[period]
            if unit is None:
                _unit(number, cells, cols, units, period, opts, c)  # names the reason once
                break
            if value is not None:
                c.values.append(_Value(number, code, unit, period, value, _day(period, opts)))


def _day(period: str, opts: IndicatorImportOptions) -> dt.date:
    """The day whose units a period's values belong to: the period's last day, or the
    boundaries asked for."""
    return opts.boundaries or periods.bounds(period)[1] - dt.timedelta(days=1)


def _period(number: int, raw: str, d: dict[str, Any] | None, c: _Checked) -> str | None:
    period = periods.parse_period(raw)
    if period is None:
        c.refuse(number, "period", f"{raw or '(empty)'} is not a period (2023, 2023-Q2, 2023-06)",
                 "indicators_r_period", value=raw or "∅")
        return None
    if d is not None and periods.periodicity(period) != d["periodicity"]:
        c.refuse(number, "period", f"{raw} is not a {d['periodicity']} period of {d['code']}",
                 "indicators_r_periodicity", value=raw, periodicity=d["periodicity"],
                 code=d["code"])
        return None
    return period


def parse_number(raw: str) -> float | None:
    """A number as Vietnamese or English tables write it (see the module docstring)."""
    t = raw.replace("\u00a0", "").replace(" ", "").rstrip("%")
    if not t:
        return None
    if "," in t and "." in t:  # the last mark is the decimal one
        comma_last = t.rfind(",") > t.rfind(".")
        t = t.replace(".", "").replace(",", ".") if comma_last else t.replace(",", "")
    elif t.count(",") == 1:
        t = t.replace(",", ".")
    elif t.count(",") > 1:
        t = t.replace(",", "")
    elif t.count(".") > 1:
        t = t.replace(".", "")
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", t):
        return None
    return float(t)


def _value(number: int, column: str, raw: str, d: dict[str, Any] | None, c: _Checked,
           skip_empty: bool) -> float | None:
    if not raw and skip_empty:
        return None
    value = parse_number(raw)
    if value is None:
        c.refuse(number, column, f"{raw or '(empty)'} is not a number", "indicators_r_number",
                 value=raw or "∅")
        return None
    if d is None:
        return value
    lo, hi = d["min_value"], d["max_value"]
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        rng = f"{'-∞' if lo is None else _num(lo)}..{'∞' if hi is None else _num(hi)}"
        c.refuse(number, column, f"{raw} is outside {rng} ({d['unit_vi']}) for {d['code']}",
                 "indicators_r_range", value=raw, range=rng, unit=d["unit_vi"], code=d["code"])
        return None
    return value


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _strip_prefix(name: str) -> str:
    for p in _PREFIXES:
        if name.startswith(p):
            return name[len(p):]
    return name


def _bare(name: str) -> str:
    """NAME in lower case with its diacritics, without a leading "Xã", "Phường"...: NFC keeps
    one character per letter, so the folded prefix's length is the prefix's own."""
    low = unicodedata.normalize("NFC", " ".join(name.split())).lower()
    f = fold(low)
    for p in _PREFIXES:
        if f.startswith(p):
            return low[len(p):]
    return low


def _unit(number: int, cells: list[str], cols: dict[str, int], units: list[_Unit],
          period: str | None, opts: IndicatorImportOptions, c: _Checked,
          quiet: bool = False) -> _Unit | None:
    """The unit a row names, valid on its period's day; None (and, unless QUIET, a reason)."""
    code = _cell(cells, cols.get("unit_code"))
    name = _cell(cells, cols.get("unit_name"))
    if period is None:
        return None
    day = _day(period, opts)
    valid = [u for u in units if u.valid_on(day)]
    column = "unit_code" if code else "unit_name"

    def refuse(reason: str, key: str, **args: Any) -> None:
        if not quiet:
            c.refuse(number, column, reason, key, **args)

    if not code and not name:
        refuse("no unit code or name", "indicators_r_no_unit")
        return None
    if code:
        found = [u for u in valid if u.code == code]
        if not found:
            other = [u for u in units if u.code == code]
            if other:
                refuse(f"unit {code} was not valid on {day.isoformat()} (period {period})",
                       "indicators_r_unit_era", value=code, day=day.isoformat(), period=period)
            else:
                refuse(f"{code} is not an administrative unit code", "indicators_r_unit_code",
                       value=code)
            return None
        unit = found[0]
        if name and fold(name) not in _TOTAL and _strip_prefix(fold(name)) != _strip_prefix(
                fold(unit.name)):
            refuse(f"name {name} does not match unit {code} ({unit.name})",
                   "indicators_r_unit_mismatch", value=name, code=code, name=unit.name)
            return None
        return unit
    folded = fold(name)
    if folded in _TOTAL:
        found = [u for u in valid if u.level == "province"]
    else:
        found = [u for u in valid if fold(u.name) == folded]
        if not found:
            found = [u for u in valid if _strip_prefix(fold(u.name)) == _strip_prefix(folded)]
        if len(found) > 1:  # the exact spelling (with its diacritics) decides, when it can
            exact = [u for u in found if _bare(u.name) == _bare(name)]
            found = exact if len(exact) == 1 else found
    if not found:
        refuse(f"no administrative unit named {name} on {day.isoformat()} (period {period})",
               "indicators_r_unit_name", value=name, day=day.isoformat(), period=period)
        return None
    if len(found) > 1:
        codes = ", ".join(f"{u.code} {u.name}" for u in found)
        refuse(f"{name} is ambiguous: {codes}; give the unit code", "indicators_r_unit_ambiguous",
               value=name, codes=codes)
        return None
    return found[0]


def _duplicates(c: _Checked) -> None:
    """A unit's value given twice for one indicator and period: the later rows are refused."""
    seen: dict[tuple[str, int, str], int] = {}
    for v in c.values:
        key = (v.indicator, v.unit.id, v.period)
        if key in seen:
            c.refuse(v.row, v.period, f"{v.indicator} {v.period} of unit {v.unit.code} repeats "
                     f"row {seen[key]}", "indicators_r_repeat", code=v.indicator, period=v.period,
                     unit=v.unit.code, row=seen[key])
        else:
            seen[key] = v.row
