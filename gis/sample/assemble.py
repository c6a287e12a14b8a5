"""Assemble the sample: run the steps in order, then move every table to EPSG:4326 once."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from gis.sample.common import as_multipolygons, midnight, stream, to_storage
from gis.sample.facilities import build_facilities
from gis.sample.history import build_history
from gis.sample.incidents import build_incidents
from gis.sample.indicators import build_indicator_values
from gis.sample.landuse import build_landuse
from gis.sample.parcels import build_parcels
from gis.sample.points import build_cameras, build_tourism
from gis.sample.province import admin_rows, build_province
from gis.sample.roads import FREE_FLOW, build_roads, build_villages, traffic_states
from gis.sample.sensors import build_observations, build_sensors
from gis.sample.serialize import table_text

# Load order (sensors before observations, which refer to them).
TABLES = (
    "admin_units", "land_use_zones", "roads", "parcels", "tourism_places", "cameras", "sensors",
    "observations", "incidents", "public_facilities",
)  # fmt: skip
STEPS = ("province", "roads", "land use", "parcels", "parcel history", "points", "sensors", "incidents",
         "facilities", "indicators", "EPSG:4326")
# The later versions of the parcels with a legal history (gis.sample.history): not a table, but
# loaded (replayed through UPDATEs) and hashed like one, after the parcels.
PARCEL_VERSIONS = "parcel_versions"
# The socio-economic indicators' values (gis.sample.indicators): loaded after admin_units, whose
# ids they take, and hashed like a table.
INDICATOR_VALUES = "indicator_values"


@dataclass
class Sample:
    """A generated province: one DataFrame per table, columns as in the schema (geometries
    as shapely arrays in EPSG:4326, land_use_codes as PostgreSQL array literals).

    The parcels with a legal history are in their first version in `tables["parcels"]` (what is
    COPYed); `parcel_versions` holds their later versions (parcel = row of the parcels table,
    step, note, then the parcel's columns), which the loader applies in step order so that the
    database's triggers record the history. The last version of a parcel is its current row."""

    seed: int
    scale: float
    as_of: date
    tables: dict[str, pd.DataFrame]
    planted: dict[str, list[list]]
    parcel_versions: pd.DataFrame = field(default_factory=pd.DataFrame)
    indicator_values: pd.DataFrame = field(default_factory=pd.DataFrame)
    _hash: str | None = field(default=None, repr=False)

    def counts(self) -> dict[str, int]:
        return {name: len(df) for name, df in self.tables.items()}

    def data_hash(self) -> str:
        """sha256 over the canonical text of every table, in row order, plus the planted list.

        The canonical text is exactly what `load_sample` COPYs (observations name their
        sensor by code, since database ids are not known before loading).
        """
        if self._hash is None:
            h = new_hash(self)
            for name in TABLES:
                update_hash(h, name, table_text(self.tables, name, for_hash=True))
            update_hash(h, PARCEL_VERSIONS, self.versions_text())
            update_hash(h, INDICATOR_VALUES, self.indicators_text())
            self._hash = h.hexdigest()
        return self._hash

    def versions_text(self) -> str:
        """COPY text of parcel_versions (hashed, and COPYed by the loader)."""
        return table_text({PARCEL_VERSIONS: self.parcel_versions}, PARCEL_VERSIONS)

    def indicators_text(self) -> str:
        """COPY text of the indicator values (hashed, and COPYed by the loader)."""
        return table_text({INDICATOR_VALUES: self.indicator_values}, INDICATOR_VALUES)


def new_hash(sample: Sample) -> hashlib._Hash:
    h = hashlib.sha256()
    h.update(json.dumps(sample.planted, sort_keys=True, ensure_ascii=False, allow_nan=False).encode())
    return h


def update_hash(h: hashlib._Hash, name: str, text: str) -> None:
    h.update(f"\x00{name}\x00".encode())
    h.update(text.encode())


def generate(
    seed: int = 1,
    scale: float = 1.0,
    as_of: date | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Sample:
    """Generate the synthetic province deterministically from (seed, scale, as_of).

    `on_step` is told the name of each step as it starts (progress display).
    """
    if scale <= 0:
        raise ValueError("scale must be positive")
    if as_of is None:
        as_of = datetime.now(UTC).date()
    step = on_step or (lambda _name: None)

    step("province")
    p = build_province(seed)
    step("roads")
    villages = build_villages(p, seed)
    rn = build_roads(p, villages, seed)
    step("land use")
    lu = build_landuse(p, rn, villages, seed)
    step("parcels")
    parcels = build_parcels(p, lu, seed, scale)
    step("parcel history")
    history = build_history(parcels.df, p, parcels.planted, seed, scale)
    step("points")
    cameras = build_cameras(p, rn, seed, scale)
    tourism = build_tourism(p, villages, seed)
    step("sensors")
    sensors = build_sensors(p, villages, lu, seed)
    observations = build_observations(sensors, as_of, seed)
    step("incidents")
    incidents = build_incidents(p, rn, lu, as_of, seed, scale)
    step("facilities")
    facilities = build_facilities(p, villages, seed)
    step("indicators")
    indicator_values = build_indicator_values(p, seed)

    step("EPSG:4326")
    new_code = p.communes["new_code"].to_numpy()
    admin = admin_rows(p)
    admin["geom"] = to_storage(as_multipolygons(admin["geom"].to_numpy()))

    zones = lu.zones
    zones = pd.DataFrame(
        {
            "land_use_code": zones["land_use_code"].to_numpy(),
            "plan_name": zones["plan_name"].to_numpy(),
            "approved_on": zones["approved_on"].to_numpy(),
            "commune_code": new_code[zones["commune"].to_numpy()],
            "geom": to_storage(as_multipolygons(zones["geom"].to_numpy())),
        }
    )

    r = rn.roads
    minutes = stream(seed, "roads", 2).integers(1, 15, len(r))
    roads = pd.DataFrame(
        {
            "name": r["name"].to_numpy(),
            "road_class": r["road_class"].to_numpy(),
            "lanes": r["lanes"].to_numpy(),
            "max_speed": r["max_speed"].to_numpy(),
            "free_flow_speed": r["road_class"].map(FREE_FLOW).to_numpy(dtype=float),
            "traffic_state": traffic_states(rn, p, seed),
            "traffic_at": midnight(as_of) - (minutes * 60).astype("timedelta64[s]"),
            "geom": to_storage(r["geom"].to_numpy()),
        }
    )

    pc = parcels.df.assign(legal_valid_from=np.datetime64("NaT", "D"), decision_no=None)
    parcel_cols = ["commune_code", "old_commune_code", "sheet_no", "parcel_no", "land_use_codes",
                   "legal_area", "land_user", "land_user_id", "certificate_no", "use_until",
                   "origin", "legal_valid_from", "decision_no"]  # fmt: skip
    parcel_tab = pc[[*parcel_cols, "geom"]].copy()
    # Parcels with a legal history start from their first version.
    parcel_tab.loc[history.first.index, [*parcel_cols, "geom"]] = history.first[[*parcel_cols, "geom"]]
    parcel_tab["geom"] = to_storage(as_multipolygons(parcel_tab["geom"].to_numpy()))
    versions = history.later.copy()
    versions["geom"] = to_storage(as_multipolygons(versions["geom"].to_numpy()))

    tourism = tourism.assign(geom=to_storage(tourism["geom"].to_numpy()))
    cameras = cameras.assign(
        fov=to_storage(cameras["fov"].to_numpy()), geom=to_storage(cameras["geom"].to_numpy())
    )
    sensors_tab = sensors.drop(columns=["site", "station"]).assign(
        geom=to_storage(sensors["geom"].to_numpy())
    )
    incidents = incidents.assign(geom=to_storage(incidents["geom"].to_numpy()))
    facilities = facilities.assign(geom=to_storage(facilities["geom"].to_numpy()))

    tables = {
        "admin_units": admin,
        "land_use_zones": zones,
        "roads": roads,
        "parcels": parcel_tab,
        "tourism_places": tourism,
        "cameras": cameras,
        "sensors": sensors_tab,
        "observations": observations,
        "incidents": incidents,
        "public_facilities": facilities,
    }
    assert tuple(tables) == TABLES
    return Sample(seed=seed, scale=scale, as_of=as_of, tables=tables, planted=parcels.planted,
                  parcel_versions=versions, indicator_values=indicator_values)
