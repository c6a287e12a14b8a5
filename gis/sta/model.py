"""The SensorThings API v1.1 entity model over GeoIOC's tables (migration 0020): for each entity
set its table, its properties (how each is read in SQL and written in JSON) and its navigation
properties (how two entities join), and who may see which rows. gis/sta/queries.py compiles
requests against it; nothing else knows the tables behind STA.

    Thing              things                  (a station's probe, a row of the `sensors`
                                                layer, or a road segment with a traffic
                                                detector, a row of `roads`: migration 0024)
    Location           thing_locations         (every position a Thing had; its current one is
    HistoricalLocation thing_locations          the latest; each row is both, with one id)
    Datastream         datastreams + datastream_latest (phenomenonTime, resultTime)
    Sensor             sensor_models
    ObservedProperty   observed_properties
    Observation        observations            (@iot.id = sta_observation_id(datastream, time))
    FeatureOfInterest  features_of_interest

Every SQL fragment here is a constant template whose only hole is the table alias `{a}` (and
`{p}`/`{c}` for the parent and child of a navigation): values never enter them.

Who sees what (`visible`): a Thing, its Locations and HistoricalLocations follow the layer
of its kind (a station the `sensors` layer, a road segment the `roads` layer: both public
today); Sensors, ObservedProperties and FeaturesOfInterest are seen by whoever may read either;
a Datastream by its own access level and roles (layers.access.access_condition, the
catalogue's guard written for rows: camera and security datastreams are restricted to their
roles) and its Thing's kind; an Observation its Datastream.
The condition is applied to every alias a request introduces (the entity set, each step of the
path, each $expand, each navigation inside $filter), so a hidden datastream is absent whichever
way it is reached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from psycopg import sql

from layers.access import Principal, access_condition, can_read
from layers.catalogue import get_layer

Kind = Literal["id", "string", "number", "datetime", "interval", "geometry", "json", "result"]

# ISO 8601 in UTC with milliseconds, as STA clients expect (2026-12-01T03:00:00.000Z).
ISO = "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'"


def iso(expr: str) -> str:
    """SQL text of the JSON string of timestamptz EXPR (NULL stays NULL)."""
    return f"to_json(to_char(({expr}) AT TIME ZONE 'UTC', {ISO}))::text"


def interval(start: str, end: str) -> str:
    """SQL text of the JSON string 'start/end' (just 'start' when both are equal)."""
    s = f"to_char(({start}) AT TIME ZONE 'UTC', {ISO})"
    e = f"to_char(({end}) AT TIME ZONE 'UTC', {ISO})"
    return (f"CASE WHEN ({start}) IS NULL THEN NULL WHEN ({end}) IS NULL OR ({end}) = ({start}) "
            f"THEN to_json({s})::text ELSE to_json({s} || '/' || {e})::text END")


@dataclass(frozen=True)
class Prop:
    """A property: KIND, its value in SQL (`sql`; for an interval the start, `end` the end) and
    its JSON text (`json`, default derived from the kind). `optional` ones are left out of an
    entity when NULL (STA's optional properties); the others are written as null.
    `members`: JSON sub-properties read from columns (properties/code of a Thing is its code
    column, so a filter on it uses the column's index)."""

    kind: Kind
    sql: str
    json: str | None = None
    end: str | None = None
    optional: bool = False
    members: dict[str, tuple[Kind, str]] = field(default_factory=dict)

    def json_text(self) -> str:
        if self.json is not None:
            return self.json
        if self.kind == "datetime":
            return iso(self.sql)
        if self.kind == "interval":
            return interval(self.sql, self.end or self.sql)
        if self.kind == "geometry":
            return f"ST_AsGeoJSON({self.sql}, 9)"
        if self.kind == "json":
            return f"({self.sql})::text"
        return f"to_json({self.sql})::text"


@dataclass(frozen=True)
class Nav:
    """A navigation property: the TARGET entity set, one or many, and the join as SQL over the
    parent `{p}` and the child `{c}`. `child_fk`/`parent_fk`: when the join is an equality of a
    child column with the parent's id (or the reverse), a known parent id becomes a plain
    equality on that column, which the child's index serves."""

    target: str
    many: bool
    join: str
    child_fk: str | None = None
    parent_fk: str | None = None
    # The children are exactly as visible as the parent (a Datastream's Observations): reached
    # from a parent whose visibility is applied, they need no condition of their own, which
    # would hide the key's order from the planner.
    inherits: bool = False


@dataclass(frozen=True)
class Entity:
    name: str  # singular: Thing
    plural: str  # entity set: Things
    table: str
    id_sql: str  # the @iot.id in SQL over {a}
    props: dict[str, Prop]
    navs: dict[str, Nav]
    # What keeps a page's order stable after the requested keys (a unique key), and the
    # default order: the id's, as columns (Observations: their key, which is the id's order).
    key_order: tuple[str, ...] = ("{a}.id",)
    # The properties those columns are (a key already sorted on is not repeated).
    key_props: tuple[str, ...] = ("id",)
    # Extra FROM items after the table (a LEFT JOIN that some properties read), over {a}.
    joins: str = ""

    def prop(self, name: str) -> Prop | None:
        return self.props.get(name)


# A Thing is a station's probe (its sensors row, {a}_s) or a road segment ({a}_r): what STA
# shows of it is read from that row, so it follows the layer's edits at once.
_STATION_DESCRIPTION = (
    "concat_ws(' ', CASE {a}_s.kind WHEN 'air' THEN 'Trạm quan trắc không khí' "
    "WHEN 'water' THEN 'Trạm quan trắc nước mặt' ELSE 'Trạm quan trắc' END, {a}_s.code, "
    "'–', {a}_s.parameter)")
_ROAD_DESCRIPTION = (
    "concat_ws(' ', 'Đoạn đường có thiết bị đo giao thông:', coalesce({a}_r.name, 'không tên'), "
    "'(' || CASE {a}_r.road_class WHEN 'expressway' THEN 'đường cao tốc' WHEN 'trunk' "
    "THEN 'quốc lộ' WHEN 'primary' THEN 'tỉnh lộ' WHEN 'secondary' THEN 'đường huyện' "
    "ELSE 'đường xã' END || ')')")


def _by_kind(station: str, road: str) -> str:
    return f"CASE WHEN {{a}}.sensor_id IS NOT NULL THEN {station} ELSE {road} END"


THING = Entity(
    "Thing", "Things", "things", "{a}.id",
    joins="LEFT JOIN sensors {a}_s ON {a}_s.id = {a}.sensor_id "
          "LEFT JOIN roads {a}_r ON {a}_r.id = {a}.road_id",
    props={
        "name": Prop("string", _by_kind("{a}_s.name", "geoioc_road_label({a}_r)")),
        "description": Prop("string", _by_kind(_STATION_DESCRIPTION, _ROAD_DESCRIPTION)),
        "properties": Prop(
            "json", _by_kind(
                "jsonb_build_object('code', {a}_s.code, 'kind', {a}_s.kind, 'parameter', "
                "{a}_s.parameter, 'unit', {a}_s.unit, 'threshold', {a}_s.threshold, 'status', "
                "{a}_s.status)",
                "jsonb_build_object('kind', 'road_segment', 'road_id', {a}_r.id, 'name', "
                "{a}_r.name, 'road_class', {a}_r.road_class, 'lanes', {a}_r.lanes, 'max_speed', "
                "{a}_r.max_speed, 'free_flow_speed', coalesce({a}_r.free_flow_speed, "
                "{a}_r.max_speed), 'traffic_state', {a}_r.traffic_state, 'speed_ratio', "
                "{a}_r.speed_ratio, 'traffic_at', {a}_r.traffic_at)"),
            members={"code": ("string", "{a}_s.code"),
                     "kind": ("string", "coalesce({a}_s.kind, 'road_segment')"),
                     "parameter": ("string", "{a}_s.parameter"), "unit": ("string", "{a}_s.unit"),
                     "threshold": ("number", "{a}_s.threshold"),
                     "status": ("string", "{a}_s.status"),
                     "road_id": ("number", "{a}.road_id"),
                     "road_class": ("string", "{a}_r.road_class"),
                     "traffic_state": ("string", "{a}_r.traffic_state"),
                     "speed_ratio": ("number", "{a}_r.speed_ratio")},
            optional=True),
    },
    navs={
        "Datastreams": Nav("Datastreams", True, "{c}.thing_id = {p}.id", child_fk="thing_id"),
        # A Thing's Location is its latest position.
        "Locations": Nav("Locations", True,
                         "{c}.thing_id = {p}.id AND {c}.time = (SELECT max(x.time) FROM "
                         "thing_locations x WHERE x.thing_id = {p}.id)", child_fk="thing_id"),
        "HistoricalLocations": Nav("HistoricalLocations", True, "{c}.thing_id = {p}.id",
                                   child_fk="thing_id"),
    },
)

_LOCATION_PROPS = {
    "name": Prop("string", "{a}.name"),
    "description": Prop("string", "{a}.description"),
    "encodingType": Prop("string", "{a}.encoding_type"),
    "location": Prop("geometry", "{a}.geom"),
}

LOCATION = Entity(
    "Location", "Locations", "thing_locations", "{a}.id",
    props=_LOCATION_PROPS,
    navs={
        "Things": Nav("Things", True, "{c}.id = {p}.thing_id", parent_fk="thing_id"),
        "HistoricalLocations": Nav("HistoricalLocations", True, "{c}.id = {p}.id",
                                   child_fk="id", parent_fk="id"),
    },
)

HISTORICAL_LOCATION = Entity(
    "HistoricalLocation", "HistoricalLocations", "thing_locations", "{a}.id",
    props={"time": Prop("datetime", "{a}.time")},
    navs={
        "Thing": Nav("Things", False, "{c}.id = {p}.thing_id", parent_fk="thing_id"),
        "Locations": Nav("Locations", True, "{c}.id = {p}.id", child_fk="id", parent_fk="id"),
    },
)

DATASTREAM = Entity(
    "Datastream", "Datastreams", "datastreams", "{a}.id",
    joins="LEFT JOIN datastream_latest {a}_l ON {a}_l.datastream_id = {a}.id",
    props={
        "name": Prop("string", "{a}.name"),
        "description": Prop("string", "{a}.description"),
        "unitOfMeasurement": Prop("json", "{a}.unit_of_measurement"),
        "observationType": Prop("string", "{a}.observation_type"),
        "observedArea": Prop("geometry", "{a}.observed_area", optional=True),
        "phenomenonTime": Prop("interval", "{a}_l.phenomenon_time_start",
                               end="{a}_l.phenomenon_time_end", optional=True),
        "resultTime": Prop("interval", "{a}_l.result_time_start", end="{a}_l.result_time_end",
                           optional=True),
        "properties": Prop("json", "{a}.properties", optional=True),
    },
    navs={
        "Thing": Nav("Things", False, "{c}.id = {p}.thing_id", parent_fk="thing_id"),
        "Sensor": Nav("Sensors", False, "{c}.id = {p}.sensor_model_id",
                      parent_fk="sensor_model_id"),
        "ObservedProperty": Nav("ObservedProperties", False, "{c}.id = {p}.observed_property_id",
                                parent_fk="observed_property_id"),
        "Observations": Nav("Observations", True, "{c}.datastream_id = {p}.id",
                            child_fk="datastream_id", inherits=True),
    },
)

SENSOR = Entity(
    "Sensor", "Sensors", "sensor_models", "{a}.id",
    props={
        "name": Prop("string", "{a}.name"),
        "description": Prop("string", "{a}.description"),
        "encodingType": Prop("string", "{a}.encoding_type"),
        "metadata": Prop("string", "{a}.metadata"),
        "properties": Prop("json", "{a}.properties", optional=True),
    },
    navs={"Datastreams": Nav("Datastreams", True, "{c}.sensor_model_id = {p}.id",
                             child_fk="sensor_model_id")},
)

OBSERVED_PROPERTY = Entity(
    "ObservedProperty", "ObservedProperties", "observed_properties", "{a}.id",
    props={
        "name": Prop("string", "{a}.name_vi"),
        "definition": Prop("string", "{a}.definition"),
        "description": Prop("string", "{a}.description"),
        "properties": Prop(
            "json", "jsonb_build_object('code', {a}.code, 'name_en', {a}.name_en) "
            "|| coalesce({a}.properties, '{{}}'::jsonb)",
            members={"code": ("string", "{a}.code"), "name_en": ("string", "{a}.name_en")},
            optional=True),
    },
    navs={"Datastreams": Nav("Datastreams", True, "{c}.observed_property_id = {p}.id",
                             child_fk="observed_property_id")},
)

OBSERVATION = Entity(
    "Observation", "Observations", "observations",
    "sta_observation_id({a}.datastream_id, {a}.phenomenon_time)",
    key_order=("{a}.datastream_id", "{a}.phenomenon_time"),
    key_props=("Datastream/id", "phenomenonTime"),
    props={
        "phenomenonTime": Prop("interval", "{a}.phenomenon_time",
                               end="coalesce({a}.phenomenon_time_end, {a}.phenomenon_time)"),
        "result": Prop("result", "{a}.result",
                       json="coalesce(to_json({a}.result)::text, {a}.result_json::text, 'null')"),
        "resultTime": Prop("datetime", "{a}.result_time"),
        "parameters": Prop("json", "{a}.parameters", optional=True),
    },
    navs={
        "Datastream": Nav("Datastreams", False, "{c}.id = {p}.datastream_id",
                          parent_fk="datastream_id"),
        "FeatureOfInterest": Nav("FeaturesOfInterest", False,
                                 "{c}.id = {p}.feature_of_interest_id",
                                 parent_fk="feature_of_interest_id"),
    },
)

FEATURE_OF_INTEREST = Entity(
    "FeatureOfInterest", "FeaturesOfInterest", "features_of_interest", "{a}.id",
    props={
        "name": Prop("string", "{a}.name"),
        "description": Prop("string", "{a}.description"),
        "encodingType": Prop("string", "{a}.encoding_type"),
        "feature": Prop("geometry", "{a}.feature"),
        "properties": Prop("json", "{a}.properties", optional=True),
    },
    navs={"Observations": Nav("Observations", True, "{c}.feature_of_interest_id = {p}.id",
                              child_fk="feature_of_interest_id")},
)

ENTITIES: dict[str, Entity] = {e.plural: e for e in (
    THING, LOCATION, HISTORICAL_LOCATION, DATASTREAM, SENSOR, OBSERVED_PROPERTY, OBSERVATION,
    FEATURE_OF_INTEREST)}
BY_SINGULAR = {e.name: e for e in ENTITIES.values()}

# The layers whose access rules Things follow: stations, road segments.
STATIONS_LAYER = "sensors"
ROADS_LAYER = "roads"


_ALIAS = re.compile(r"[a-z][a-z0-9]*")


def tpl(template: str, **aliases: str) -> sql.Composable:
    """A constant TEMPLATE with its alias holes ({a}, {p}, {c}) filled by table aliases, which
    the compiler makes (a1, a2...; checked here, and never from a request), so that `{a}_l`
    names the alias's companion join. `{{` and `}}` stand for literal braces."""
    for v in aliases.values():
        if not _ALIAS.fullmatch(v):
            raise ValueError(f"not an alias: {v!r}")
    return sql.SQL(template).format(**{k: sql.SQL(v) for k, v in aliases.items()})


# Only one kind of Thing readable: the conditions over a Thing, or a row with its thing_id.
_ROAD_THING, _STATION_THING = "{a}.road_id IS NOT NULL", "{a}.road_id IS NULL"
_OF_ROAD = "{a}.thing_id IN (SELECT t.id FROM things t WHERE t.road_id IS NOT NULL)"
_OF_STATION = "{a}.thing_id IN (SELECT t.id FROM things t WHERE t.road_id IS NULL)"


def visible(entity: Entity, alias: str, who: Principal) -> sql.Composable | None:
    """The rows of ENTITY (as ALIAS) that WHO may see (None: all of them)."""
    stations = can_read(get_layer(STATIONS_LAYER), who)
    roads = can_read(get_layer(ROADS_LAYER), who)
    if not stations and not roads:
        return sql.SQL("false")
    # A Thing of a kind the caller may not read is hidden, with what hangs from it.
    kind: sql.Composable | None = None
    if stations != roads:
        if entity is THING:
            kind = tpl(_ROAD_THING if roads else _STATION_THING, a=alias)
        elif entity in (LOCATION, HISTORICAL_LOCATION, DATASTREAM):
            kind = tpl(_OF_ROAD if roads else _OF_STATION, a=alias)
    if entity is DATASTREAM:
        cond = access_condition(who, tpl("{a}.access", a=alias), tpl("{a}.roles", a=alias))
        parts = [c for c in (cond, kind) if c is not None]
        return sql.SQL(" AND ").join(parts) if parts else None
    if entity is OBSERVATION:
        inner = access_condition(who, sql.SQL("d.access"), sql.SQL("d.roles"))
        if stations != roads:
            road = sql.SQL("d.thing_id IN (SELECT t.id FROM things t WHERE t.road_id {})").format(
                sql.SQL("IS NOT NULL" if roads else "IS NULL"))
            inner = road if inner is None else sql.SQL("{} AND {}").format(inner, road)
        if inner is None:
            return None
        return sql.SQL("{} IN (SELECT d.id FROM datastreams d WHERE {})").format(
            tpl("{a}.datastream_id", a=alias), inner)
    return kind
