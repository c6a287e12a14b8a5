"""The map's search box: one text field that understands what operators type.

- administrative unit names, with or without Vietnamese diacritics ("xa bong hoa" finds
  "Xã Bồng Hòa"; đ is folded to d on both sides: PostgreSQL's unaccent does it, and so does
  fold() here);
- names of units that ended with the 2025 reform (a merged commune's old name), told apart
  from current units and with the commune that took them over;
- names in any other layer the caller may read, in the fields its catalogue entry lists as
  Layer.search_fields (facilities, tourism places, cameras, stations, roads), folded the same
  way, grouped by layer, each with a centre to go to; a layer stored in pieces
  (Layer.search_merges_pieces: a road cut at junctions) gives one hit per name and stretch;
- cadastral numbers "sheet/parcel" ("12/345", "tờ 12 thửa 345"), optionally followed by a
  commune name or code;
- coordinates: WGS84 latitude, longitude ("21.18, 106.07"; longitude first is recognised when
  the first number cannot be a latitude) or VN-2000 TM-3 in the province's zone, as land officers
  write them, X = northing, Y = easting ("X=2342986 Y=558990", or just two big numbers).

Which layers may be searched is the caller's business (layers.access); the functions here take
flags and row filters and never decide access themselves.

Every hit has a rank (0 the exact name, 1 a name starting with the text, 2 a word of it
starting with the text, 3 the text inside a word) so that the kinds of things found can be
ordered by their best hit. Names are compared as geoioc_fold(column) with a trigram index on
each (migrations 0012, 0013), so a search costs an index lookup per layer, not a scan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import psycopg
from psycopg import sql

from gis.crs import transformer
from gis.parcels.common import fold, like_escape
from layers.catalogue import label_field
from layers.model import Field, Layer

Kind = Literal["admin_unit", "parcel", "coordinate", "feature"]
MAX_RESULTS = 10
MIN_NAME_CHARS = 2
# Where a point can be in Vietnam (with a margin): a VN-2000 guess outside it is not a hit.
VIETNAM_BOX = (101.0, 7.0, 118.0, 24.0)
# VN-2000 TM-3 ranges: northings in Vietnam lie between ~0.9 and ~2.6 million metres,
# eastings within the 3-degree zone stay between ~0.2 and ~0.8 million.
NORTHING_RANGE = (800_000.0, 2_700_000.0)
EASTING_RANGE = (100_000.0, 900_000.0)

_NUM = r"[-+]?\d+(?:\.\d+)?"
_LABELLED = re.compile(
    rf"^\s*(?P<a>[xy])\s*[=:]?\s*(?P<va>{_NUM})\s*[,;]?\s*(?P<b>[xy])\s*[=:]?\s*(?P<vb>{_NUM})\s*$",
    re.I)
_PAIR = re.compile(rf"^\s*(?P<a>{_NUM})\s*(?:[,;]\s*|\s+)(?P<b>{_NUM})\s*$")
# On folded text: "12/345", "12 / 345 bong hoa", "to 12 thua 345", "sheet 12 parcel 345"
_PARCEL = re.compile(
    r"^\s*(?:(?:to|sheet)\s*(?:so\s*)?)?(?P<sheet>\d{1,4})\s*"
    r"(?:/|\s+(?:thua|parcel)\s*(?:so\s*)?|\s*,\s*(?:thua|parcel)\s*(?:so\s*)?)"
    r"\s*(?P<parcel>\d{1,5})(?:\s*[,;-]?\s*(?P<rest>.*))?$")
_UNIT_PREFIX = re.compile(r"^(?:xa|phuong|thi tran|huyen|thanh pho|thi xa|tinh)\s+")


@dataclass
class Hit:
    kind: Kind
    title: dict[str, str]
    subtitle: dict[str, str]
    center: tuple[float, float]  # lon, lat
    bbox: tuple[float, float, float, float] | None = None
    layer: str | None = None
    id: int | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    rank: int = 0  # how well the name matched (module docstring); not sent

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "title": self.title, "subtitle": self.subtitle,
                "center": list(self.center), "bbox": list(self.bbox) if self.bbox else None,
                "layer": self.layer, "id": self.id, "properties": self.properties}


# --- coordinates -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Coordinate:
    lon: float
    lat: float
    crs: Literal["wgs84", "vn2000"]
    # VN-2000 as typed, X = northing, Y = easting (None for WGS84 input)
    northing: float | None = None
    easting: float | None = None


def _in_box(lon: float, lat: float, box: tuple[float, float, float, float]) -> bool:
    return box[0] <= lon <= box[2] and box[1] <= lat <= box[3]


def _vn2000(a: float, b: float, srid: int) -> Coordinate | None:
    """Two metre values, assigned to northing/easting by magnitude (the ranges do not overlap in
    Vietnam, so a swapped pair is still understood)."""
    northing, easting = (a, b) if a > b else (b, a)
    if not (NORTHING_RANGE[0] <= northing <= NORTHING_RANGE[1]
            and EASTING_RANGE[0] <= easting <= EASTING_RANGE[1]):
        return None
    lon, lat = transformer(srid, 4326).transform(easting, northing)
    if not _in_box(lon, lat, VIETNAM_BOX):
        return None
    return Coordinate(lon, lat, "vn2000", northing, easting)


def parse_coordinate(text: str, province_srid: int) -> Coordinate | None:
    """A coordinate typed in the search box, or None if TEXT is not one."""
    m = _LABELLED.match(text)
    if m and m.group("a").lower() != m.group("b").lower():
        values = {m.group("a").lower(): float(m.group("va")), m.group("b").lower(): float(m.group("vb"))}
        return _vn2000(values["x"], values["y"], province_srid)
    m = _PAIR.match(text)
    if not m:
        return None
    a, b = float(m.group("a")), float(m.group("b"))
    if abs(a) > 1000 and abs(b) > 1000:
        return _vn2000(a, b, province_srid)
    if abs(a) <= 90 and abs(b) <= 180:
        return Coordinate(lon=b, lat=a, crs="wgs84")
    if abs(b) <= 90 and abs(a) <= 180:  # longitude first
        return Coordinate(lon=a, lat=b, crs="wgs84")
    return None


# --- cadastral numbers -----------------------------------------------------------------------


@dataclass(frozen=True)
class ParcelQuery:
    sheet: int
    parcel: int
    commune: str = ""  # folded commune name or a 5-digit code, may be empty


def parse_parcel(text: str) -> ParcelQuery | None:
    m = _PARCEL.match(fold(text))
    if not m:
        return None
    rest = _UNIT_PREFIX.sub("", (m.group("rest") or "").strip(" ,;-"))
    return ParcelQuery(int(m.group("sheet")), int(m.group("parcel")), rest)


# --- SQL -------------------------------------------------------------------------------------

FOLDED_NAME = sql.SQL("geoioc_fold(a.name)")


def _rank(folded: sql.Composable) -> sql.Composable:
    """0 exact, 1 starts with, 2 a word starts with, 3 anywhere (params q, starts, word)."""
    return sql.SQL("CASE WHEN {f} = %(q)s THEN 0 WHEN {f} LIKE %(starts)s THEN 1"
                   " WHEN {f} LIKE %(word)s THEN 2 ELSE 3 END").format(f=folded)


def _name_params(q: str) -> dict[str, str]:
    e = like_escape(q)
    return {"q": q, "like": f"%{e}%", "starts": f"{e}%", "word": f"% {e}%"}


def admin_units(conn: psycopg.Connection, text: str, limit: int = MAX_RESULTS) -> list[Hit]:
    """Units whose folded name contains the folded text: exact names first, then names starting
    with it (after the unit type, "Xã ..."), then the rest; communes before districts and the
    province. LIMIT current units and LIMIT units that ended (before the 2025 reform), the
    latter without those that continue unchanged (same code and name) as a current unit found
    here, and with the current commune covering them ("now part of")."""
    q = fold(text)
    if len(q) < MIN_NAME_CHARS:
        return []
    bare = _UNIT_PREFIX.sub("", q)
    stmt = sql.SQL(
        "WITH found AS (SELECT a.id, a.code, a.name, a.level, a.valid_from, a.valid_to, a.geom,"
        "  CASE WHEN lower(a.name) = lower(%(raw)s) OR a.code = %(raw)s OR {name} = %(q)s THEN 0"
        "   WHEN regexp_replace({name}, %(prefix)s, '') = %(bare)s THEN 1"
        "   WHEN regexp_replace({name}, %(prefix)s, '') LIKE %(bare_starts)s THEN 2 ELSE 3 END AS rank"
        "  FROM admin_units AS a WHERE {name} LIKE %(like)s OR a.code = %(raw)s),"
        " ranked AS (SELECT f.*, row_number() OVER (PARTITION BY f.valid_to IS NULL ORDER BY f.rank,"
        "  CASE f.level WHEN 'commune' THEN 0 WHEN 'district' THEN 1 ELSE 2 END, f.name,"
        "  f.valid_from DESC) AS n FROM found AS f"
        "  WHERE f.valid_to IS NULL OR NOT EXISTS (SELECT FROM found AS c WHERE c.valid_to IS NULL"
        "   AND c.code = f.code AND c.name = f.name))"
        " SELECT r.id, r.code, r.name, r.level, r.valid_from::text, r.valid_to::text,"
        " ST_XMin(r.geom), ST_YMin(r.geom), ST_XMax(r.geom), ST_YMax(r.geom),"
        " ST_X(ST_PointOnSurface(r.geom)), ST_Y(ST_PointOnSurface(r.geom)), r.rank,"
        " (SELECT string_agg(s.name || ' (' || s.code || ')', ', ' ORDER BY s.name)"
        "  FROM admin_units AS s WHERE r.valid_to IS NOT NULL AND s.valid_to IS NULL"
        "  AND s.level = r.level AND ST_Covers(s.geom, ST_PointOnSurface(r.geom)))"
        " FROM ranked AS r WHERE r.n <= %(limit)s"
        " ORDER BY r.valid_to IS NOT NULL, r.n"
    ).format(name=FOLDED_NAME)
    rows = conn.execute(stmt, {
        "like": f"%{like_escape(q)}%", "raw": text.strip(), "q": q, "bare": bare,
        "bare_starts": f"{like_escape(bare)}%", "prefix": _UNIT_PREFIX.pattern, "limit": limit,
    }).fetchall()
    return [_unit_hit(r) for r in rows]


LEVEL_LABELS = {"province": ("Tỉnh", "Province"), "district": ("Huyện", "District"),
                "commune": ("Xã, phường", "Commune")}


MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_day(iso: str, lang: str) -> str:
    """A date as people read it: 01/07/2025 in Vietnamese, 1 Jul 2025 in English (whatever
    the server's locale)."""
    d = date.fromisoformat(iso)
    return f"{d:%d/%m/%Y}" if lang == "vi" else f"{d.day} {MONTHS_EN[d.month - 1]} {d.year}"


def _unit_hit(row: tuple) -> Hit:
    uid, code, name, level, valid_from, valid_to, x1, y1, x2, y2, cx, cy, rank, now_in = row
    vi_level, en_level = LEVEL_LABELS.get(level, (level, level))
    era_vi = f" · trước {format_day(valid_to, 'vi')}" if valid_to else ""
    era_en = f" · before {format_day(valid_to, 'en')}" if valid_to else ""
    now_vi = f" · nay thuộc {now_in}" if now_in else ""
    now_en = f" · now part of {now_in}" if now_in else ""
    return Hit(kind="admin_unit", title={"vi": name, "en": name},
               subtitle={"vi": f"{vi_level} · mã {code}{era_vi}{now_vi}",
                         "en": f"{en_level} · code {code}{era_en}{now_en}"},
               center=(cx, cy), bbox=(x1, y1, x2, y2), layer="admin_units", id=uid,
               properties={"code": code, "level": level, "valid_from": valid_from,
                           "valid_to": valid_to, "current": valid_to is None,
                           "now_part_of": now_in},
               rank=rank)


def parcels(conn: psycopg.Connection, pq: ParcelQuery, restrict: sql.Composable | None,
            limit: int = MAX_RESULTS) -> list[Hit]:
    """Parcels with that sheet and parcel number (in every commune, or in the commune named or
    coded in pq.commune: current or pre-2025 code, since sheets were numbered per old commune)."""
    conds: list[sql.Composable] = [sql.SQL("t.sheet_no = %(sheet)s AND t.parcel_no = %(parcel)s")]
    params: dict = {"sheet": pq.sheet, "parcel": pq.parcel, "limit": limit}
    if pq.commune:
        conds.append(sql.SQL(
            "(t.commune_code = %(commune)s OR t.old_commune_code = %(commune)s OR EXISTS ("
            " SELECT 1 FROM admin_units AS a WHERE a.code IN (t.commune_code, t.old_commune_code)"
            " AND a.level = 'commune' AND {name} LIKE %(like)s))").format(name=FOLDED_NAME))
        params["commune"] = pq.commune
        params["like"] = f"%{like_escape(pq.commune)}%"
    if restrict is not None:
        conds.append(restrict)
    stmt = sql.SQL(
        "SELECT t.id, t.commune_code, t.old_commune_code, t.sheet_no, t.parcel_no,"
        " (SELECT a.name FROM admin_units AS a WHERE a.code = t.commune_code AND a.level = 'commune'"
        "  ORDER BY a.valid_to IS NOT NULL, a.valid_from DESC LIMIT 1),"
        " ST_XMin(t.geom), ST_YMin(t.geom), ST_XMax(t.geom), ST_YMax(t.geom),"
        " ST_X(ST_PointOnSurface(t.geom)), ST_Y(ST_PointOnSurface(t.geom))"
        " FROM parcels AS t WHERE {cond} ORDER BY t.commune_code, t.old_commune_code NULLS FIRST, t.id"
        " LIMIT %(limit)s"
    ).format(cond=sql.SQL(" AND ").join(conds))
    hits = []
    for (pid, commune, old, sheet, parcel, commune_name, x1, y1, x2, y2, cx,
         cy) in conn.execute(stmt, params).fetchall():
        where_vi = f"{commune_name or 'Xã'} ({commune})" + (f" · mã xã cũ {old}" if old else "")
        where_en = f"{commune_name or 'Commune'} ({commune})" + (f" · old code {old}" if old else "")
        hits.append(Hit(kind="parcel", title={"vi": f"Tờ {sheet} · Thửa {parcel}",
                                              "en": f"Sheet {sheet} · Parcel {parcel}"},
                        subtitle={"vi": where_vi, "en": where_en}, center=(cx, cy),
                        bbox=(x1, y1, x2, y2), layer="parcels", id=pid,
                        properties={"commune_code": commune, "old_commune_code": old,
                                    "sheet_no": sheet, "parcel_no": parcel}))
    return hits


def containing_commune(conn: psycopg.Connection, lon: float, lat: float) -> tuple[str, str] | None:
    """(code, name) of the current commune containing the point, if any."""
    row = conn.execute(
        "SELECT code, name FROM admin_units WHERE level = 'commune' AND valid_to IS NULL"
        " AND ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) LIMIT 1", (lon, lat)
    ).fetchone()
    return (row[0], row[1]) if row else None


def coordinate_hit(c: Coordinate, commune: tuple[str, str] | None, srid: int) -> Hit:
    if c.crs == "vn2000":
        typed = f"X={c.northing:.2f} Y={c.easting:.2f}"
        title = {"vi": f"VN-2000 (EPSG:{srid}) {typed}", "en": f"VN-2000 (EPSG:{srid}) {typed}"}
    else:
        title = {"vi": f"WGS84 {c.lat:.6f}, {c.lon:.6f}", "en": f"WGS84 {c.lat:.6f}, {c.lon:.6f}"}
    where_vi = f" · {commune[1]}" if commune else ""
    where_en = f" · {commune[1]}" if commune else ""
    return Hit(kind="coordinate", title=title,
               subtitle={"vi": f"Vĩ độ {c.lat:.6f}, kinh độ {c.lon:.6f}{where_vi}",
                         "en": f"Latitude {c.lat:.6f}, longitude {c.lon:.6f}{where_en}"},
               center=(c.lon, c.lat),
               properties={"crs": c.crs, "lon": c.lon, "lat": c.lat, "northing": c.northing,
                           "easting": c.easting, "commune_code": commune[0] if commune else None})


# --- any layer's search fields ---------------------------------------------------------------


def _centre(layer: Layer, geom: sql.Composable | None = None) -> sql.Composable:
    """A point on the feature: itself, the middle of a line, a point inside a polygon."""
    g = geom if geom is not None else sql.Identifier("t", layer.geometry_column)
    if layer.geometry_type == "Point":
        return g
    if layer.geometry_type == "LineString":
        return sql.SQL("ST_LineInterpolatePoint({}, 0.5)").format(g)
    return sql.SQL("ST_PointOnSurface({})").format(g)


def layer_features(conn: psycopg.Connection, layer: Layer, fields: tuple[Field, ...],
                   restrict: sql.Composable | None, text: str,
                   limit: int = MAX_RESULTS) -> list[Hit]:
    """Features of LAYER whose folded search fields contain the folded TEXT, best match first
    (exact, starts with, a word starts with, anywhere), then by label. FIELDS are those the
    caller may read: a search field outside them is neither searched (a hit would leak its
    value) nor shown. A layer stored in pieces gives one hit per label and stretch
    (_merged_pieces)."""
    q = fold(text)
    readable = {f.name: f for f in fields}
    searched = [name for name in layer.search_fields if name in readable]
    if len(q) < MIN_NAME_CHARS or not searched:
        return []
    # A text column as it is, so that the index on geoioc_fold(column) serves the search.
    folded = [sql.SQL("geoioc_fold({}{})").format(
        sql.Identifier("t", n), sql.SQL("" if readable[n].type == "str" else "::text"))
        for n in searched]
    label = next((n for n in (label_field(layer),) if n in readable), searched[0])
    restrict_sql = restrict if restrict is not None else sql.SQL("TRUE")
    matches = sql.SQL(" OR ").join(sql.SQL("{} LIKE %(like)s").format(f) for f in folded)
    rank = sql.SQL("LEAST({})").format(sql.SQL(", ").join(_rank(f) for f in folded))
    params: dict[str, Any] = {**_name_params(q), "limit": limit}
    if layer.search_merges_pieces:
        return _merged_pieces(conn, layer, label, matches, rank, restrict_sql, params)
    coded = layer.style.by if layer.style.by in readable else None
    shown = [n for n in dict.fromkeys([label, *searched, *([coded] if coded else [])])]
    g = sql.Identifier("t", layer.geometry_column)
    stmt = sql.SQL(
        "SELECT t.{id}, jsonb_build_object({props}), ST_X(c), ST_Y(c),"
        " ST_XMin({g}), ST_YMin({g}), ST_XMax({g}), ST_YMax({g}), r"
        " FROM (SELECT t.*, {rank} AS r FROM {table} AS t WHERE ({any}) AND {restrict}"
        "  ORDER BY r, t.{label}, t.{id} LIMIT %(limit)s) AS t"
        " CROSS JOIN LATERAL (SELECT {centre} AS c) AS p"
        " ORDER BY r, t.{label}, t.{id}"
    ).format(
        id=sql.Identifier(layer.id_column), g=g, table=sql.Identifier(layer.table),
        props=sql.SQL(", ").join(sql.SQL("{}, t.{}").format(sql.Literal(n), sql.Identifier(n))
                                 for n in shown),
        centre=_centre(layer), any=matches, rank=rank, label=sql.Identifier(label),
        restrict=restrict_sql)
    hits = []
    for fid, props, cx, cy, x1, y1, x2, y2, r in conn.execute(stmt, params).fetchall():
        kind_vi, kind_en = layer.title_vi, layer.title_en
        if coded and props.get(coded) in readable[coded].values:
            kind_vi, kind_en = readable[coded].values[props[coded]]
        extra = [str(props[n]) for n in searched if n != label and props.get(n)]
        where = f" · {extra[0]}" if extra else ""
        title = str(props.get(label) or fid)
        hits.append(Hit(kind="feature", title={"vi": title, "en": title},
                        subtitle={"vi": f"{kind_vi}{where}", "en": f"{kind_en}{where}"},
                        center=(cx, cy), bbox=(x1, y1, x2, y2), layer=layer.id, id=fid,
                        properties=props, rank=r))
    return hits


# Pieces of one named thing closer than this (degrees, ~30 m) are one stretch of it.
PIECES_APART = 0.0003


def _merged_pieces(conn: psycopg.Connection, layer: Layer, label: str, matches: sql.Composable,
                   rank: sql.Composable, restrict: sql.Composable,
                   params: dict[str, Any]) -> list[Hit]:
    """One hit per label and place: "Đường Vũ Kiệt" is 49 pieces of road in the sample. Pieces
    that touch are one stretch (a highway through several communes stays one hit); stretches of
    one name whose longest piece lies in the same current commune are one street of that
    commune, and the same name in two communes is two streets. Only the pieces of the LIMIT
    best labels are clustered; each hit spans its pieces (bbox), is centred on its longest piece
    and names the commune."""
    stmt = sql.SQL(
        "WITH m AS (SELECT t.{id} AS id, t.{label} AS label, t.{geom} AS geom, {rank} AS r"
        "  FROM {table} AS t WHERE ({any}) AND {restrict} AND t.{label} IS NOT NULL),"
        " best AS (SELECT label, min(r) AS r FROM m GROUP BY label ORDER BY 2, 1 LIMIT %(limit)s),"
        " pieces AS (SELECT m.id, m.label, m.geom, best.r,"
        "  ST_ClusterDBSCAN(m.geom, %(apart)s, 1) OVER (PARTITION BY m.label) AS k"
        "  FROM m JOIN best USING (label)),"
        " stretches AS (SELECT label, k, (array_agg(geom ORDER BY ST_Length(geom) DESC, id))[1]"
        "  AS longest FROM pieces GROUP BY label, k),"
        " placed AS (SELECT s.label, s.k, u.code, u.name FROM stretches AS s"
        "  CROSS JOIN LATERAL (SELECT {centre} AS c) AS p"
        "  LEFT JOIN LATERAL (SELECT a.code, a.name FROM admin_units AS a WHERE a.level = 'commune'"
        "   AND a.valid_to IS NULL AND ST_Covers(a.geom, p.c) LIMIT 1) AS u ON TRUE),"
        " streets AS (SELECT x.label, x.name AS commune, min(x.r) AS r,"
        "  array_agg(x.id ORDER BY x.id) AS ids, ST_Extent(x.geom) AS box,"
        "  (array_agg(x.geom ORDER BY ST_Length(x.geom) DESC, x.id))[1] AS longest,"
        "  sum(ST_Length(x.geom::geography)) AS metres"
        "  FROM (SELECT pieces.*, placed.code, placed.name FROM pieces JOIN placed USING (label, k))"
        "  AS x GROUP BY x.label, x.code, x.name)"
        " SELECT s.ids, s.label, ST_X(p.c), ST_Y(p.c), ST_XMin(s.box), ST_YMin(s.box),"
        "  ST_XMax(s.box), ST_YMax(s.box), s.r, s.metres, s.commune"
        " FROM streets AS s CROSS JOIN LATERAL (SELECT {centre_s} AS c) AS p"
        " ORDER BY s.r, s.label, s.commune, s.ids[1] LIMIT %(limit)s"
    ).format(id=sql.Identifier(layer.id_column), label=sql.Identifier(label),
             geom=sql.Identifier(layer.geometry_column), rank=rank,
             table=sql.Identifier(layer.table), any=matches, restrict=restrict,
             centre=_centre(layer, sql.SQL("s.longest")),
             centre_s=_centre(layer, sql.SQL("s.longest")))
    hits = []
    for (ids, name, cx, cy, x1, y1, x2, y2, r, metres,
         commune) in conn.execute(stmt, {**params, "apart": PIECES_APART}).fetchall():
        km = float(metres) / 1000
        where = f"{commune} · " if commune else ""
        hits.append(Hit(kind="feature", title={"vi": name, "en": name},
                        subtitle={"vi": where + f"{km:.1f}".replace(".", ",") + " km",
                                  "en": f"{where}{km:.1f} km"},
                        center=(cx, cy), bbox=(x1, y1, x2, y2), layer=layer.id, id=ids[0],
                        properties={label: name, "ids": ids, "length_m": round(float(metres))},
                        rank=r))
    return hits
