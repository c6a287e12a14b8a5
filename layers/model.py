"""The declarative shape of a layer: everything else (OGC collections, map layers, export
schemas, access checks) is derived from these definitions, never written beside them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

FieldType = Literal["int", "float", "str", "date", "datetime", "bool", "str[]"]
GeometryType = Literal["Point", "LineString", "Polygon", "MultiPolygon"]


class Access(StrEnum):
    """Who may read: public = anyone; internal = any signed-in staff role;
    restricted = only the named roles; secret = admin only."""

    PUBLIC = "public"
    INTERNAL = "internal"
    RESTRICTED = "restricted"
    SECRET = "secret"


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    title_vi: str
    title_en: str
    # Shapefile field name (dBase limit: 10 characters), upper case by Vietnamese habit.
    export_name: str
    # Personal data (names, ID numbers, contact details): hidden from roles without the right.
    personal: bool = False
    # A field can be stricter than its layer (e.g. a camera's stream URL).
    access: Access = Access.PUBLIC
    roles: tuple[str, ...] = ()
    # Carried in vector tiles: identifiers and styling attributes yes, long or personal text no
    # (the map fetches a feature's details on click).
    in_tiles: bool = True
    # Coded values with their Vietnamese and English labels (legends, filters, exports).
    values: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Maintained by the database (triggers, defaults): never taken from an imported file.
    server_managed: bool = False
    # Decimals stored for a float (areas to 0.1 m², readings to 0.01): exports and the sample
    # write exactly this many.
    decimals: int | None = None
    # A code of another list, which people read by its name: the gazetteer's units (a commune
    # code) or the land-use codes. The map shows the name beside the code.
    refers_to: Literal["gazetteer", "land_use"] | None = None


@dataclass(frozen=True)
class Style:
    color: str = "#3388ff"
    fill_color: str | None = None
    weight: float = 1.0
    fill_opacity: float = 0.4
    radius: float = 5.0
    # Categorical colouring: property name and value -> colour.
    by: str | None = None
    palette: dict[str, str] = field(default_factory=dict)
    # Lines by a coded field (road class, administrative level): value -> width in pixels, dash
    # pattern, and the zoom from which features of that value are drawn. The legend shows them.
    width_by: str | None = None
    widths: dict[str, float] = field(default_factory=dict)
    dashes: dict[str, str] = field(default_factory=dict)
    min_zooms: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RowRule:
    """Rows whose `field` takes one of `values` are hidden from everyone but `roles` (and admin):
    e.g. security events inside the incidents layer that operators otherwise see."""

    field: str
    values: tuple[str, ...]
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Aggregates:
    """Counts of a layer's rows readable by more people than the rows themselves: the public
    may see how many incidents a commune or a grid cell had, never one incident.

    A caller who may read the layer gets exact counts; one who may only read its aggregates
    (ACCESS and ROLES, as a layer's) gets counts in which every unit (a grid cell, a raster
    cell, a commune, a category, a time bucket) holding fewer than MIN_COUNT rows is suppressed
    (gis/analysis/suppression.py), over the rows the layer's row rules leave to that caller
    (security events are counted for nobody without their roles). Items, points, tiles of
    single features and personal fields stay behind the layer's own access."""

    access: Access = Access.PUBLIC
    roles: tuple[str, ...] = ()
    min_count: int = 3


@dataclass(frozen=True)
class Overview:
    """A dissolved, simplified copy of a dense polygon layer for low-zoom tiles.

    It lives in the materialized view `<table>_overview` (geometry in EPSG:3857, column `geom`,
    one row per distinct `group_by` values) created by a migration and refreshed after loads;
    tiles below `below_zoom` read it instead of the detailed table.
    """

    below_zoom: int
    group_by: tuple[str, ...]
    tolerance_m: float


@dataclass(frozen=True)
class Versions:
    """The legal versions of a feature, beside the system time its history table keeps.

    A feature's legal history is older than the database (a certificate of 2008, a transfer of
    2017, a commune merger): each version is dated by the field `valid_from` (when it took legal
    effect) and names the decision that made it (`decision`). An import may carry several rows
    of one feature with different dates: they are its versions, applied oldest first, so that
    the history table ends up holding them in legal order and the stored row is the latest.

    `identity` names the feature across its versions, which its natural key may not do (a
    parcel numbered in commune 09244 before the 2025 merger is commune 09241, pre-2025 commune
    09244 after it): each member is a field, or a tuple of fields meaning the first non-empty of
    them. `history_id` is the history table's column holding the feature's id."""

    valid_from: str
    decision: str
    identity: tuple[str | tuple[str, ...], ...]
    history_id: str


@dataclass(frozen=True)
class TileFilter:
    """A field the layer's vector tiles are always filtered on, by the query parameter of its
    name (`/tiles/WebMercatorQuad/{z}/{y}/{x}?indicator_code=POP&period=2024`).

    For a table that stacks many rows on one geometry (the indicators: every unit once per
    indicator and period), an unfiltered tile would carry every stacked copy (megabytes); with
    its filters a tile holds one copy per geometry. When the parameter is absent the tile takes
    `default`, or, with `latest_by`, the field's value in the newest row (by that column) among
    the rows the filters before it select and the caller may read (the latest period of the
    indicator chosen). Filters apply in their order of declaration."""

    field: str
    default: str | None = None
    latest_by: str | None = None


@dataclass(frozen=True)
class Layer:
    id: str
    title_vi: str
    title_en: str
    description_vi: str
    description_en: str
    # Group in the map's layer panel.
    domain: Literal["admin", "land", "services", "traffic", "tourism", "safety", "environment"]
    table: str
    geometry_type: GeometryType
    fields: tuple[Field, ...]
    access: Access = Access.PUBLIC
    roles: tuple[str, ...] = ()
    geometry_column: str = "geom"
    # Further geometry columns served on request (e.g. a camera's field of view).
    extra_geometry_columns: tuple[str, ...] = ()
    id_column: str = "id"
    # Time column for OGC `datetime`; an end column makes the feature's time an interval.
    time_column: str | None = None
    time_end_column: str | None = None
    style: Style = field(default_factory=Style)
    min_zoom: int = 0
    max_zoom: int = 22
    overview: Overview | None = None
    # Table keeping past versions of the rows (written by a trigger), for "as of" views.
    history_table: str | None = None
    # Legal versions an import may carry (needs history_table); None: one row per feature.
    versions: Versions | None = None
    row_rules: tuple[RowRule, ...] = ()
    # Who may read counts of the rows beyond the layer's own access, and with what suppression
    # of small counts (None: aggregates are as private as the rows).
    aggregates: Aggregates | None = None
    # Rows that carry their own access level (an Access value) and roles, in these two columns
    # of the table (not fields: nothing serves them): e.g. an indicator kept internal among
    # public ones. layers.access.row_filter hides the rows the caller may not read.
    row_access: tuple[str, str] | None = None
    # The table is a view of other tables (joined for serving): read through every way out,
    # never imported into (its data has its own import, e.g. gis/indicators).
    read_only: bool = False
    # How the map draws it: vector tiles, bbox GeoJSON features, or a view of its own
    # (cameras with fields of view, sensors against thresholds, filtered incidents + heatmap).
    # None: tiles for lines and polygons, features for points.
    # "none": not drawn on the map at all (the values of the indicators layer: one feature per
    # unit, indicator and period, overlapping; dashboards draw them as choropleths).
    map_kind: Literal["tiles", "features", "cameras", "sensors", "incidents", "none"] | None = None
    # Shown when the map opens (the others are one click away in the layer panel).
    map_visible: bool = True
    # Fields its tiles are filtered on, each with its default (TileFilter); the OGC items take
    # the same fields as property filters, with no default.
    tile_filters: tuple[TileFilter, ...] = ()
    keywords: tuple[str, ...] = ()
    # Fields that identify a feature in the real world: imports match rows on them (a re-import
    # updates instead of duplicating); empty = match on identical content.
    natural_key: tuple[str, ...] = ()
    # Roles that may import into the layer (admin always may; empty = admin only).
    import_roles: tuple[str, ...] = ()
    # Text fields the map's search box looks in (accent-insensitive); empty = not searched by name.
    search_fields: tuple[str, ...] = ()
    # Features are pieces of one named thing (a road cut at junctions and commune boundaries):
    # the search box shows one hit per name and connected stretch, not one per piece.
    search_merges_pieces: bool = False
    # Whether a click on the map asks the server what of this layer is there (a polygon under
    # the point; the nearest line or point within a tolerance in metres derived from the zoom),
    # and an equality on a coded field that narrows it (admin units: the commune, not the
    # district around it).
    identify: bool = False
    identify_filter: tuple[str, str] | None = None
    # Names written on the map (the label field; a point layer's from zoom 15 on): the higher,
    # the sooner a name is placed where names would collide; 0 = none.
    label_priority: int = 0

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"layer {self.id!r} has no field {name!r}")

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def server_managed_fields(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields if f.server_managed)

    def title(self, lang: str = "vi") -> str:
        return self.title_en if lang == "en" else self.title_vi
