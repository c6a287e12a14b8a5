"""Cadastral extract ("trích lục bản đồ địa chính"): the data, and the map as a display list
that the HTML (inline SVG) and the PDF (reportlab) draw alike.

Coordinates: the stored lon/lat vertices transformed with pyproj to the province's VN-2000
TM-3 CRS (EPSG:9209 for Bắc Ninh), so the table equals pyproj's values to the millimetre, and
printed as land officers read them: X = northing, Y = easting. Rings run clockwise from the
north-west corner (vertex 1 nearest the top-left of the parcel's bounding box); edge lengths
are grid distances between consecutive vertices; the area is the planar area in the same CRS
(= ST_Area(ST_Transform(geom, srid))).

The map scale is the first of the usual cadastral scales at which the parcel with a margin
fits the frame; neighbours (every parcel in the frame, at the same instant) are outlined with
their numbers, the sheet added when it differs. Labels keep clear of the scale bar and the north
arrow (they are measured in DejaVu Sans, gis/parcels/fonts.py): a vertex number moves round its
vertex, a neighbour's number moves inside the neighbour, and a label with nowhere else to go
(an edge length, a grid coordinate) is left out rather than hidden under them.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from html import escape
from typing import Any, Literal

import numpy as np
import psycopg
import shapely
from psycopg import sql

from gis import fmt
from gis.crs import transformer
from gis.parcels import checks, detail
from gis.parcels.fonts import ASCENT, DESCENT, text_width
from layers.access import Principal

STANDARD_SCALES = (200, 500, 1000, 2000, 5000, 10_000, 25_000, 50_000, 100_000)
MAP_W_MM = 170.0
MAP_H_MM = 110.0
FILL_SHARE = 0.75  # of the frame the parcel may use at most
MAX_NEIGHBOURS = 3000
# Paper sizes (mm) of map lettering.
TEXT_MM = 2.4
SMALL_MM = 2.0
MIN_EDGE_LABEL_MM = 9.0
MIN_LABEL_AREA_MM2 = 18.0
HALO_MM = 0.5  # stroke width of a label's white halo
# Room kept between a label and the scale bar or north arrow.
CLEARANCE_MM = 0.6
# Where a vertex number may go, in turn: straight out from the parcel's centre, then turned
# by these angles (degrees) round the vertex.
VERTEX_TURNS = (0, 45, -45, 90, -90, 135, -135, 180)

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 on paper (mm, y down)


@dataclass(frozen=True)
class Vertex:
    label: int
    x: float  # northing
    y: float  # easting
    edge: float  # to the next vertex of the ring
    next_label: int


@dataclass(frozen=True)
class Ring:
    part: int  # 1-based polygon of a multipolygon
    hole: int  # 0 = outer boundary, k = k-th hole
    vertices: list[Vertex]


# --- Display list (paper millimetres, y down) ---------------------------------------------------


@dataclass(frozen=True)
class Shape:
    rings: list[list[tuple[float, float]]]
    stroke: str = "#000000"
    width: float = 0.25
    fill: str | None = None
    dash: tuple[float, ...] = ()
    closed: bool = True
    role: str = ""  # what it belongs to (scalebar, north, ...): the SVG's class


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    size: float = TEXT_MM
    anchor: Literal["start", "middle", "end"] = "middle"
    angle: float = 0.0  # degrees, clockwise on paper
    bold: bool = False
    fill: str = "#000000"
    halo: bool = False
    role: str = ""


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    r: float = 0.5
    fill: str = "#000000"
    role: str = ""


@dataclass
class MapDrawing:
    width: float
    height: float
    scale: int
    items: list[Shape | Text | Dot] = field(default_factory=list)


@dataclass
class Extract:
    parcel_id: int
    version: int
    updated_at: dt.datetime
    as_of: dt.datetime | None
    issued: dt.date
    commune: dict[str, Any]
    sheet_no: int
    parcel_no: int
    land_use: list[dict[str, Any]]
    legal_area: float
    computed_area: float
    area_flagged: bool
    properties: dict[str, Any]  # readable fields (land user only for those who may read it)
    rings: list[Ring]
    srid: int
    drawing: MapDrawing
    neighbours: list[dict[str, Any]]

    @property
    def vertex_count(self) -> int:
        return sum(len(r.vertices) for r in self.rings)


def _to_grid(geom: shapely.Geometry, srid: int) -> shapely.Geometry:
    t = transformer(4326, srid)

    def f(xy: np.ndarray) -> np.ndarray:
        e, n = t.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([e, n])

    return shapely.transform(geom, f)


def _clockwise(coords: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Open ring (no repeated last point), clockwise with north up, starting at the vertex
    nearest the north-west corner of its bounding box; repeated vertices (stored twice in a
    row) dropped, distinct ones kept however close: the table lists what is stored."""
    pts: list[tuple[float, float]] = []
    for p in coords:
        if not pts or p != pts[-1]:
            pts.append(p)
    if len(pts) > 1 and pts[0] == pts[-1]:
        pts.pop()
    twice_area = sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(pts, pts[1:] + pts[:1], strict=True))
    if twice_area > 0:  # counter-clockwise in (easting, northing)
        pts.reverse()
    west = min(p[0] for p in pts)
    north = max(p[1] for p in pts)
    start = min(range(len(pts)), key=lambda i: (math.hypot(pts[i][0] - west, north - pts[i][1]), i))
    return pts[start:] + pts[:start]


def vertex_rings(grid: shapely.Geometry) -> list[Ring]:
    """Numbered vertices of every ring of a (multi)polygon in grid coordinates (E, N)."""
    rings: list[Ring] = []
    label = 1
    for part, poly in enumerate(shapely.get_parts(grid), 1):
        for hole, ring in enumerate([poly.exterior, *poly.interiors]):
            pts = _clockwise(list(ring.coords))
            n = len(pts)
            labels = list(range(label, label + n))
            vs = []
            for i, (e, nn) in enumerate(pts):
                e2, n2 = pts[(i + 1) % n]
                vs.append(Vertex(labels[i], nn, e, math.hypot(e2 - e, n2 - nn), labels[(i + 1) % n]))
            rings.append(Ring(part, hole, vs))
            label += n
    return rings


def choose_scale(width_m: float, height_m: float) -> int:
    for s in STANDARD_SCALES:
        if width_m * 1000 / s <= MAP_W_MM * FILL_SHARE and height_m * 1000 / s <= MAP_H_MM * FILL_SHARE:
            return s
    return STANDARD_SCALES[-1]


def _nice(limit: float, steps: tuple[float, ...]) -> float:
    best = steps[0]
    for s in steps:
        if s <= limit:
            best = s
    return best


NICE = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000)


def build(conn: psycopg.Connection, parcel_id: int, who: Principal, srid: int,
          as_of: dt.datetime | None = None, lang: str = "vi") -> Extract:
    state = detail.load(conn, parcel_id, who, srid, as_of)
    r = state.row
    grid = _to_grid(shapely.from_wkb(state.wkb), srid)
    rings = vertex_rings(grid)
    e1, n1, e2, n2 = grid.bounds
    scale = choose_scale(e2 - e1, n2 - n1)
    ce, cn = (e1 + e2) / 2, (n1 + n2) / 2
    half_w, half_h = MAP_W_MM * scale / 2000, MAP_H_MM * scale / 2000
    frame = (ce - half_w, cn - half_h, ce + half_w, cn + half_h)
    neighbours = _frame_parcels(conn, parcel_id, frame, srid, as_of)
    drawing = _draw(grid, rings, neighbours, frame, scale, r, lang)
    visible = detail.readable(who)
    return Extract(
        parcel_id=parcel_id, version=r["version"], updated_at=r["updated_at"], as_of=as_of,
        issued=dt.datetime.now(fmt.VN_TZ).date(),
        commune=detail.commune(conn, r["commune_code"], r["old_commune_code"]),
        sheet_no=r["sheet_no"], parcel_no=r["parcel_no"],
        land_use=detail.land_use(conn, list(r["land_use_codes"])),
        legal_area=float(r["legal_area"]), computed_area=float(grid.area),
        area_flagged=checks.area_check(r["legal_area"], float(grid.area))["flagged"],
        properties={n: r[n] for n in visible}, rings=rings, srid=srid, drawing=drawing,
        neighbours=[{k: v for k, v in n.items() if k != "grid"} for n in neighbours],
    )


def _frame_parcels(conn: psycopg.Connection, parcel_id: int, frame: tuple[float, float, float, float],
                   srid: int, as_of: dt.datetime | None) -> list[dict[str, Any]]:
    inv = transformer(srid, 4326)
    xs = [frame[0], frame[2], frame[0], frame[2]]
    ys = [frame[1], frame[1], frame[3], frame[3]]
    lons, lats = inv.transform(xs, ys)
    source, params = detail.as_of_source(as_of)
    stmt = sql.SQL(
        "SELECT n.id, n.sheet_no, n.parcel_no, ST_AsBinary(n.geom) FROM {source}"
        " WHERE n.geom && ST_MakeEnvelope(%(x1)s, %(y1)s, %(x2)s, %(y2)s, 4326) AND n.id <> %(id)s"
        " LIMIT %(limit)s").format(source=source)
    pad = 1e-5
    params.update(x1=min(lons) - pad, y1=min(lats) - pad, x2=max(lons) + pad, y2=max(lats) + pad,
                  id=parcel_id, limit=MAX_NEIGHBOURS)
    rows = conn.execute(stmt, params).fetchall()
    if not rows:
        return []
    geoms = _to_grid(shapely.from_wkb([bytes(r[3]) for r in rows]), srid)
    clipped = shapely.clip_by_rect(geoms, *frame)
    out = []
    for (nid, sheet, number, _), g in zip(rows, clipped, strict=True):
        if g is None or g.is_empty or g.area <= 0:
            continue
        out.append({"id": nid, "sheet_no": sheet, "parcel_no": number, "grid": g})
    return out


def text_box(t: Text) -> Box:
    """The paper box a label's ink may cover (its halo included), rotation taken into account:
    the extent of DejaVu Sans's line box (ascent above the baseline, descent below) over the
    text's advance width."""
    w = text_width(t.text, t.size, t.bold)
    x0 = {"start": 0.0, "middle": -w / 2, "end": -w}[t.anchor]
    pad = HALO_MM / 2 if t.halo else 0.0
    corners = [(x0 - pad, -ASCENT * t.size - pad), (x0 + w + pad, -ASCENT * t.size - pad),
               (x0 + w + pad, DESCENT * t.size + pad), (x0 - pad, DESCENT * t.size + pad)]
    a = math.radians(t.angle)  # clockwise on paper (y down), as SVG's rotate()
    xs = [t.x + cx * math.cos(a) - cy * math.sin(a) for cx, cy in corners]
    ys = [t.y + cx * math.sin(a) + cy * math.cos(a) for cx, cy in corners]
    return min(xs), min(ys), max(xs), max(ys)


def item_box(it: Shape | Text | Dot) -> Box:
    if isinstance(it, Text):
        return text_box(it)
    if isinstance(it, Dot):
        return it.x - it.r, it.y - it.r, it.x + it.r, it.y + it.r
    xs = [x for ring in it.rings for x, _ in ring]
    ys = [y for ring in it.rings for _, y in ring]
    half = it.width / 2
    return min(xs) - half, min(ys) - half, max(xs) + half, max(ys) + half


def _union(boxes: list[Box], margin: float = 0.0) -> Box:
    return (min(b[0] for b in boxes) - margin, min(b[1] for b in boxes) - margin,
            max(b[2] for b in boxes) + margin, max(b[3] for b in boxes) + margin)


def overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class _Clear:
    """The parts of the frame no label may cover (the scale bar, the north arrow)."""

    def __init__(self, zones: list[Box]) -> None:
        self.zones = zones

    def ok(self, *texts: Text) -> bool:
        return not any(overlaps(text_box(t), z) for t in texts for z in self.zones)


def _draw(grid: shapely.Geometry, rings: list[Ring], neighbours: list[dict[str, Any]],
          frame: tuple[float, float, float, float], scale: int, row: dict[str, Any],
          lang: str) -> MapDrawing:
    e0, n_top = frame[0], frame[3]
    k = 1000.0 / scale

    def paper(e: float, n: float) -> tuple[float, float]:
        return ((e - e0) * k, (n_top - n) * k)

    def shape_rings(g: shapely.Geometry) -> list[list[tuple[float, float]]]:
        out = []
        for poly in shapely.get_parts(g):
            if poly.geom_type != "Polygon":
                continue
            for ring in [poly.exterior, *poly.interiors]:
                out.append([paper(e, n) for e, n in ring.coords])
        return out

    d = MapDrawing(MAP_W_MM, MAP_H_MM, scale)
    # The scale bar and north arrow are laid out first (drawn last, on top): the labels keep
    # clear of them.
    furniture = [_north_arrow(d, lang), _scale_bar(d, scale, lang)]
    clear = _Clear([_union([item_box(it) for it in group], CLEARANCE_MM) for group in furniture])
    # The same zones on the ground, to find room for a label inside a parcel away from them.
    keep_out = shapely.union_all([shapely.box(e0 + z[0] / k, n_top - z[3] / k, e0 + z[2] / k,
                                              n_top - z[1] / k) for z in clear.zones])
    # Neighbours, then the parcel on top.
    for nb in neighbours:
        d.items.append(Shape(shape_rings(nb["grid"]), stroke="#555555", width=0.2, role="neighbour"))
    d.items.append(Shape(shape_rings(grid), stroke="#c00000", width=0.6, fill="#fff3b0", role="parcel"))
    for nb in neighbours:
        area_mm2 = nb["grid"].area * k * k
        if area_mm2 < MIN_LABEL_AREA_MM2:
            continue
        # The number, with the sheet when it differs, if that fits the parcel on paper.
        room = 1.6 * math.sqrt(area_mm2)
        text = str(nb["parcel_no"])
        if nb["sheet_no"] != row["sheet_no"]:
            longer = f"{text} ({'tờ' if lang == 'vi' else 'sheet'} {nb['sheet_no']})"
            text = longer if len(longer) * SMALL_MM * 0.55 <= room else f"{nb['sheet_no']}/{text}"
        if len(text) * SMALL_MM * 0.55 > room:
            continue
        free = nb["grid"].difference(keep_out)
        for where in (nb["grid"], free):
            if where.is_empty:
                continue
            x, y = paper(*shapely.point_on_surface(where).coords[0])
            label = Text(x, y + SMALL_MM / 3, text, SMALL_MM, fill="#333333", role="neighbour")
            if clear.ok(label):
                d.items.append(label)
                break
    # The parcel's own label (number - land use / area) where the scale bar and arrow are not;
    # drawn last, the edge lengths keep clear of it.
    free = grid.difference(keep_out)
    for where in (grid, free if not free.is_empty else grid):
        px, py = paper(*shapely.point_on_surface(where).coords[0])
        number = Text(px, py - 0.6, f"{row['parcel_no']} - {'+'.join(row['land_use_codes'])}",
                      TEXT_MM * 1.15, bold=True, halo=True, role="parcel")
        area = Text(px, py + 3.2, f"{fmt.number(float(grid.area), lang, 1)} m²", TEXT_MM, halo=True,
                    role="parcel")
        if clear.ok(number, area):
            break
    else:  # inside the frame's free part whatever the parcel's shape: move it up out of the way
        while not clear.ok(number, area) and number.y > TEXT_MM * 2:
            number = replace(number, y=number.y - 1.0)
            area = replace(area, y=area.y - 1.0)
        py = number.y + 0.6
    # Edges: length along each edge long enough on paper, inside the parcel.
    cx, cy = paper(grid.centroid.x, grid.centroid.y)
    for ring in rings:
        vs = ring.vertices
        for i, v in enumerate(vs):
            w = vs[(i + 1) % len(vs)]
            (x1, y1), (x2, y2) = paper(v.y, v.x), paper(w.y, w.x)
            length = math.hypot(x2 - x1, y2 - y1)
            if length < MIN_EDGE_LABEL_MM:
                continue
            mx, my = (x1 + x2) / 2, (y1 + y2) / 2
            nx, ny = -(y2 - y1) / length, (x2 - x1) / length
            if (cx - mx) * nx + (cy - my) * ny < 0:  # normal towards the inside
                nx, ny = -nx, -ny
            angle = math.degrees(math.atan2(y2 - y1, x2 - x1))
            if angle > 90:
                angle -= 180
            elif angle < -90:
                angle += 180
            label = Text(mx + nx * 1.6, my + ny * 1.6 + SMALL_MM / 3, fmt.number(v.edge, lang, 2),
                         SMALL_MM, angle=angle, fill="#7a0000", role="edge")
            box = text_box(label)
            if clear.ok(label) and not any(overlaps(box, text_box(t)) for t in (number, area)):
                d.items.append(label)  # else the table gives it
    # Vertices: a dot and the number, pushed away from the parcel's centre (or round the vertex
    # when the scale bar or north arrow is there).
    for ring in rings:
        for v in ring.vertices:
            x, y = paper(v.y, v.x)
            d.items.append(Dot(x, y, 0.55, "#c00000", role="vertex"))
            dx, dy = x - cx, y - cy
            base = math.atan2(dy, dx)
            candidates = []
            for turn in VERTEX_TURNS:
                a = base + math.radians(turn)
                candidates.append(Text(x + math.cos(a) * 2.6, y + math.sin(a) * 2.6 + TEXT_MM / 3,
                                       str(v.label), TEXT_MM, bold=True, fill="#c00000", halo=True,
                                       role="vertex"))
            d.items.append(next((t for t in candidates if clear.ok(t)), candidates[0]))
    d.items += [number,
                Shape([[(number.x - 7, py + 0.4), (number.x + 7, py + 0.4)]], width=0.25, closed=False,
                      role="parcel"),
                area]
    _grid_ticks(d, frame, scale, paper, clear)
    for group in furniture:
        d.items += group
    d.items.append(Shape([[(0, 0), (MAP_W_MM, 0), (MAP_W_MM, MAP_H_MM), (0, MAP_H_MM)]], width=0.5))
    return d


def _grid_ticks(d: MapDrawing, frame: tuple[float, float, float, float], scale: int, paper,
                clear: _Clear) -> None:
    """Grid crosses every round number of metres, labelled on the frame: X (northing) on the
    left edge, Y (easting) on the top edge, as on cadastral sheets (a label the north arrow or
    scale bar would cover is left out: the next cross has one)."""
    step = next((s for s in NICE if s * 1000 / scale >= 30), NICE[-1])
    e = math.ceil(frame[0] / step) * step
    while e < frame[2]:
        x, _ = paper(e, frame[3])
        label = Text(x, 2.6, f"Y={e:.0f}", 1.8, fill="#444444", role="grid")
        if 8 < x < d.width - 8 and clear.ok(label):
            d.items.append(label)
        n = math.ceil(frame[1] / step) * step
        while n < frame[3]:
            px, py = paper(e, n)
            d.items.append(Shape([[(px - 1.5, py), (px + 1.5, py)], [(px, py - 1.5), (px, py + 1.5)]],
                                 stroke="#777777", width=0.15, closed=False, role="grid"))
            n += step
        e += step
    n = math.ceil(frame[1] / step) * step
    while n < frame[3]:
        _, y = paper(frame[0], n)
        label = Text(1.2, y - 0.8, f"X={n:.0f}", 1.8, anchor="start", fill="#444444", role="grid")
        if 8 < y < d.height - 12 and clear.ok(label):
            d.items.append(label)
        n += step


def _north_arrow(d: MapDrawing, lang: str) -> list[Shape | Text | Dot]:
    x, y = d.width - 9, 7
    return [
        Shape([[(x - 4, y - 4.5), (x + 4, y - 4.5), (x + 4, y + 9.5), (x - 4, y + 9.5)]],
              stroke="#ffffff", width=0.1, fill="#ffffff", role="north"),
        Shape([[(x, y), (x - 2.5, y + 8), (x, y + 6), (x + 2.5, y + 8)]], width=0.3, fill="#000000",
              role="north"),
        Text(x, y - 1.2, "B" if lang == "vi" else "N", 3.0, bold=True, role="north"),
    ]


def _scale_bar(d: MapDrawing, scale: int, lang: str) -> list[Shape | Text | Dot]:
    metres = _nice(40 * scale / 1000, NICE)
    length = metres * 1000 / scale
    x, y = 6.0, d.height - 7.0
    half = length / 2
    bar = fmt.number(metres, lang, 0 if metres == int(metres) else 1)
    label = f"{'Tỷ lệ' if lang == 'vi' else 'Scale'} 1:{fmt.number(scale, lang)}"
    return [
        Shape([[(x - 3, y - 4.5), (x + length + 32, y - 4.5), (x + length + 32, y + 3.5),
                (x - 3, y + 3.5)]], stroke="#ffffff", width=0.1, fill="#ffffff", role="scalebar"),
        Shape([[(x, y), (x + half, y), (x + half, y + 1.5), (x, y + 1.5)]], width=0.25,
              fill="#000000", role="scalebar"),
        Shape([[(x + half, y), (x + length, y), (x + length, y + 1.5), (x + half, y + 1.5)]],
              width=0.25, fill="#ffffff", role="scalebar"),
        Text(x, y - 1.0, "0", SMALL_MM, halo=True, role="scalebar"),
        Text(x + length, y - 1.0, f"{bar} m", SMALL_MM, halo=True, role="scalebar"),
        Text(x + length + 4, y + 1.4, label, TEXT_MM, anchor="start", bold=True, halo=True,
             role="scalebar"),
    ]


# --- SVG ---------------------------------------------------------------------------------------


def svg(d: MapDrawing) -> str:
    """The map as an inline SVG in millimetres (prints at the stated scale); each element's
    class names what it belongs to (scalebar, north, vertex, edge, neighbour, parcel, grid)."""

    def role(it: Shape | Text | Dot) -> str:
        return f' class="{it.role}"' if it.role else ""

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="extract-map" width="{d.width:g}mm" '
           f'height="{d.height:g}mm" viewBox="0 0 {d.width:g} {d.height:g}" '
           f'font-family="DejaVu Sans, Arial, sans-serif" role="img">',
           f'<clipPath id="frame"><rect x="0" y="0" width="{d.width:g}" height="{d.height:g}"/></clipPath>',
           '<g clip-path="url(#frame)">']
    for it in d.items:
        if isinstance(it, Shape):
            if it.closed:
                path = " ".join("M" + " L".join(f"{x:.2f},{y:.2f}" for x, y in ring) + " Z"
                                for ring in it.rings if ring)
            else:
                path = " ".join("M" + " L".join(f"{x:.2f},{y:.2f}" for x, y in ring)
                                for ring in it.rings if ring)
            dash = f' stroke-dasharray="{",".join(f"{v:g}" for v in it.dash)}"' if it.dash else ""
            out.append(f'<path{role(it)} d="{path}" fill="{it.fill or "none"}" fill-rule="evenodd" '
                       f'stroke="{it.stroke}" stroke-width="{it.width:g}"{dash}/>')
        elif isinstance(it, Dot):
            out.append(f'<circle{role(it)} cx="{it.x:.2f}" cy="{it.y:.2f}" r="{it.r:g}" fill="{it.fill}"/>')
        else:
            attrs = (f'x="{it.x:.2f}" y="{it.y:.2f}" font-size="{it.size:g}" text-anchor="{it.anchor}" '
                     f'fill="{it.fill}"' + (' font-weight="bold"' if it.bold else "")) + role(it)
            if it.angle:
                attrs += f' transform="rotate({it.angle:.1f} {it.x:.2f} {it.y:.2f})"'
            if it.halo:
                attrs += ' stroke="#ffffff" stroke-width="0.5" paint-order="stroke"'
            out.append(f"<text {attrs}>{escape(it.text)}</text>")
    out.append("</g></svg>")
    return "".join(out)


# --- Text shared by the HTML and PDF documents ---------------------------------------------------

TEXTS = {
    "vi": {
        "title": "TRÍCH LỤC BẢN ĐỒ ĐỊA CHÍNH",
        "nation": "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "motto": "Độc lập - Tự do - Hạnh phúc",
        "office": "VĂN PHÒNG ĐĂNG KÝ ĐẤT ĐAI",
        "synthetic": "DỮ LIỆU MẪU TỔNG HỢP – KHÔNG CÓ GIÁ TRỊ PHÁP LÝ",
        "number": "Số",
        "parcel": "Thửa đất số", "sheet": "Tờ bản đồ số", "commune": "Xã/phường",
        "old_commune": "Trước sắp xếp năm 2025 thuộc", "area": "Diện tích",
        "legal_area": "Diện tích pháp lý (trên giấy chứng nhận)", "land_use": "Mục đích sử dụng đất",
        "land_user": "Người sử dụng đất", "certificate": "Số giấy chứng nhận",
        "use_until": "Thời hạn sử dụng", "permanent": "Lâu dài",
        "crs": "Hệ tọa độ",
        "crs_value": "VN-2000, kinh tuyến trục {cm}, múi chiếu 3°, k = 0,9999 (EPSG:{srid})",
        "as_of": "Hiện trạng thửa đất tại thời điểm", "version": "Phiên bản dữ liệu",
        "map": "SƠ ĐỒ THỬA ĐẤT", "table": "BẢNG TỌA ĐỘ CÁC ĐỈNH THỬA ĐẤT",
        "point": "Điểm", "x": "X (m)", "y": "Y (m)", "edge": "Cạnh (m)",
        "axes": "X: tọa độ Bắc, Y: tọa độ Đông; cạnh: từ điểm đến điểm kế tiếp.",
        "part": "Phần {part}", "hole": "lỗ {hole}",
        "area_flag": "Lưu ý: diện tích tính theo tọa độ chênh lệch với diện tích pháp lý vượt quá "
                     "max(5 %, 10 m²).",
        "date": "ngày {d} tháng {m} năm {y}",
        "drawer": "NGƯỜI TRÍCH LỤC", "head": "GIÁM ĐỐC",
        "sign": "(Ký, ghi rõ họ tên)", "sign_head": "(Ký tên, đóng dấu)",
        "neighbours": "Thửa liền kề",
    },
    "en": {
        "title": "CADASTRAL MAP EXTRACT",
        "nation": "SOCIALIST REPUBLIC OF VIET NAM",
        "motto": "Independence - Freedom - Happiness",
        "office": "LAND REGISTRATION OFFICE",
        "synthetic": "SYNTHETIC SAMPLE DATA – NO LEGAL VALUE",
        "number": "No.",
        "parcel": "Parcel number", "sheet": "Map sheet", "commune": "Commune",
        "old_commune": "Before the 2025 reform in", "area": "Area",
        "legal_area": "Legal area (certificate)", "land_use": "Land use",
        "land_user": "Land user", "certificate": "Certificate number",
        "use_until": "Use term", "permanent": "Permanent",
        "crs": "Coordinate system",
        "crs_value": "VN-2000, central meridian {cm}, 3° zone, k = 0.9999 (EPSG:{srid})",
        "as_of": "Parcel as it was at", "version": "Data version",
        "map": "PARCEL MAP", "table": "VERTEX COORDINATES",
        "point": "Point", "x": "X (m)", "y": "Y (m)", "edge": "Edge (m)",
        "axes": "X: northing, Y: easting (Vietnamese survey order); edge: to the next point.",
        "part": "Part {part}", "hole": "hole {hole}",
        "area_flag": "Note: the computed area differs from the legal area by more than max(5 %, 10 m²).",
        "date": "{d:02d}/{m:02d}/{y}",
        "drawer": "PREPARED BY", "head": "DIRECTOR",
        "sign": "(Signature, full name)", "sign_head": "(Signature, seal)",
        "neighbours": "Adjacent parcels",
    },
}


def central_meridian_text(srid: int) -> str:
    from gis.crs import central_meridian

    cm = central_meridian(srid)
    deg = int(cm)
    minutes = round((cm - deg) * 60)
    return f"{deg}°{minutes:02d}'"


def document_lines(ex: Extract, lang: str) -> list[tuple[str, str]]:
    """(label, value) lines of the extract's header block, in order."""
    t = TEXTS[lang]
    c = ex.commune
    lines = [
        (t["parcel"], str(ex.parcel_no)),
        (t["sheet"], str(ex.sheet_no)),
        (t["commune"], f"{c['name'] or ''} ({c['code']})"),
    ]
    if c.get("old_code"):
        lines.append((t["old_commune"], f"{c.get('old_name') or ''} ({c['old_code']})"))
    lines.append((t["area"], f"{fmt.number(ex.computed_area, lang, 1)} m²"))
    lines.append((t["legal_area"], f"{fmt.number(ex.legal_area, lang, 1)} m²"))
    uses = "; ".join(f"{u['code']} – {u['name_vi'] if lang == 'vi' else u['name_en']}" for u in ex.land_use)
    lines.append((t["land_use"], uses))
    p = ex.properties
    if "land_user" in p and p["land_user"]:
        lines.append((t["land_user"], str(p["land_user"])))
    if p.get("certificate_no"):
        lines.append((t["certificate"], str(p["certificate_no"])))
    if "use_until" in p:
        lines.append((t["use_until"], fmt.date(p["use_until"]) if p["use_until"] else t["permanent"]))
    lines.append((t["crs"], t["crs_value"].format(cm=central_meridian_text(ex.srid), srid=ex.srid)))
    if ex.as_of is not None:
        lines.append((t["as_of"], fmt.datetime(ex.as_of)))
    lines.append((t["version"], f"{ex.version} ({fmt.datetime(ex.updated_at)})"))
    return lines


def vertex_cells(v: Vertex, lang: str) -> tuple[str, str, str, str]:
    """A row of the coordinate table (HTML and PDF alike): X and Y to the millimetre without
    thousands separators (surveyors read them digit by digit), the edge in the page's numbers."""
    return (str(v.label), fmt.number(v.x, lang, 3, group=False), fmt.number(v.y, lang, 3, group=False),
            fmt.number(v.edge, lang, 3))


def ring_caption(ring: Ring, ex: Extract, lang: str) -> str | None:
    """A caption row before a ring when the parcel has several parts or holes."""
    if len(ex.rings) == 1:
        return None
    t = TEXTS[lang]
    text = t["part"].format(part=ring.part)
    return text + (", " + t["hole"].format(hole=ring.hole) if ring.hole else "")


def issued_text(ex: Extract, lang: str) -> str:
    d = ex.issued
    return TEXTS[lang]["date"].format(d=d.day, m=d.month, y=d.year)


def extract_number(ex: Extract) -> str:
    return f"{ex.parcel_id}.{ex.version}/TL"
