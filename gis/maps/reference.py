"""What the map's layer manifest reads from the database: the same for every caller, so it is
read once and cached (web.manifest turns it into each caller's manifest)."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from gis.rows import scalar
from layers.catalogue import LAYERS, PROVINCE_BBOX, gazetteer, label_field

CACHE_SECONDS = 300


@dataclass
class Reference:
    """What the manifest reads from the database: the same for every caller, cached."""

    land_use: list[dict[str, Any]]  # code, name_vi, name_en, color, in_use (by any layer)
    extents: dict[str, list[float]]
    # Land-use codes each layer styled by land use holds (its legend lists those).
    land_use_in: dict[str, set[str]]
    # The gazetteer's units by code, with the name of their latest era: a commune code read
    # anywhere (an incident's, a zone's) is shown with its name.
    unit_names: dict[str, str]
    reform_date: str | None  # first day of the current administrative units (2025-07-01)
    loaded: float


_reference: Reference | None = None
_lock = threading.Lock()


def reference(conn: psycopg.Connection, max_age: float = CACHE_SECONDS) -> Reference:
    global _reference
    with _lock:
        if _reference is None or time.monotonic() - _reference.loaded > max_age:
            _reference = _load_reference(conn)
        return _reference


def _load_reference(conn: psycopg.Connection) -> Reference:
    land_use = [
        {"code": c, "name_vi": vi, "name_en": en, "color": color}
        for c, vi, en, color in conn.execute(
            "SELECT l.code, l.name_vi, l.name_en, l.color FROM land_use_codes AS l"
            " WHERE l.valid_to IS NULL OR l.valid_to > now()"
            " ORDER BY array_position(ARRAY['agricultural', 'residential', 'public', 'business',"
            " 'public_works', 'other', 'unused'], l.grp), l.code").fetchall()
    ]
    land_use_in: dict[str, set[str]] = {}
    for layer in LAYERS:
        by = layer.style.by
        if by is None or layer.field(by).refers_to != "land_use":
            continue
        column = sql.Identifier(by)
        # An index lookup per code (btree, or GIN for arrays), not a scan of a large layer.
        test = (sql.SQL("t.{} @> ARRAY[%s]") if layer.field(by).type == "str[]"
                else sql.SQL("t.{} = %s")).format(column)
        land_use_in[layer.id] = {
            lu["code"] for lu in land_use
            if scalar(conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {} AS t WHERE {})").format(
                sql.Identifier(layer.table), test), (lu["code"],)))}
    used = set().union(*land_use_in.values()) if land_use_in else set()
    for lu in land_use:
        lu["in_use"] = lu["code"] in used
    extents = {}
    for layer in LAYERS:
        row = conn.execute(sql.SQL(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT "
            "ST_Extent({})::geometry AS e FROM {}) s").format(
            sql.Identifier(layer.geometry_column), sql.Identifier(layer.table))).fetchone()
        extents[layer.id] = _outward(row) if row and row[0] is not None else list(PROVINCE_BBOX)
    reform = None
    unit_names: dict[str, str] = {}
    units = gazetteer()
    if units is not None and units.time_end_column:  # its last era began at the reform
        reform = scalar(conn.execute(sql.SQL("SELECT max({})::text FROM {}").format(
            sql.Identifier(units.time_end_column), sql.Identifier(units.table))))
    if units is not None and units.natural_key and label_field(units):
        key = units.natural_key[0]
        order = sql.SQL(", {}").format(sql.Identifier(units.time_column)) if units.time_column \
            else sql.SQL("")
        unit_names = {str(code): name for code, name in conn.execute(sql.SQL(
            "SELECT {key}, {name} FROM {table} ORDER BY {key}{order}").format(
            key=sql.Identifier(key), name=sql.Identifier(label_field(units) or key),
            table=sql.Identifier(units.table), order=order)).fetchall()}  # the latest era last
    return Reference(land_use, extents, land_use_in, unit_names, reform, time.monotonic())


def _outward(box: tuple[float, float, float, float], step: float = 1e-5) -> list[float]:
    """A bbox rounded to STEP outwards, so that it still contains the features on its edges
    (the map asks for points with it)."""
    return [round(math.floor(box[0] / step) * step, 5), round(math.floor(box[1] / step) * step, 5),
            round(math.ceil(box[2] / step) * step, 5), round(math.ceil(box[3] / step) * step, 5)]


