"""Environmental sensors and their hourly observations over the 30 days before as_of.

Values follow what monitoring stations in the delta show: PM2.5 with morning and evening peaks
and multi-day haze episodes shared by all stations (weather is regional), water quality with a
daily photosynthesis cycle and occasional discharge or rain episodes. Some stations cross their
threshold at times, so alerting has something to find.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import shapely
from scipy.signal import lfilter

from gis.sample.common import midnight, stream
from gis.sample.landuse import LandUse
from gis.sample.points import _commune_of
from gis.sample.province import Province
from gis.sample.roads import Villages

HOURS = 30 * 24
# parameter: kind, unit, threshold (QCVN 05:2023 / 08:2023 style; dissolved oxygen is a minimum)
PARAMETERS = {
    "pm25": ("air", "µg/m³", 50.0),
    "pm10": ("air", "µg/m³", 100.0),
    "no2": ("air", "µg/m³", 200.0),
    "ph": ("water", "pH", 8.5),
    "turbidity": ("water", "NTU", 50.0),
    "dissolved_oxygen": ("water", "mg/L", 4.0),
    "cod": ("water", "mg/L", 15.0),
}
LABELS = {"pm25": "PM2.5", "pm10": "PM10", "no2": "NO2", "ph": "pH", "turbidity": "độ đục",
          "dissolved_oxygen": "oxy hòa tan", "cod": "COD"}  # fmt: skip
# Stations carry several probes, one sensor row each: every air station measures PM2.5, some
# also PM10 or NO2; every water station measures all four water parameters.
AIR_STATIONS = {"town": 12, "industry": 5, "rural": 5}
EXTRA_AIR = ("pm10",) * 5 + ("no2",) * 3
WATER_STATIONS = {"river": 3, "pond": 2}
WATER_PARAMS = ("ph", "turbidity", "dissolved_oxygen", "cod")


def build_sensors(p: Province, v: Villages, lu: LandUse, seed: int) -> pd.DataFrame:
    rng = stream(seed, "sensors")
    ward = p.communes["is_ward"].to_numpy()[v.commune]
    # Air: towns and wards, industrial zones, and a few villages as background.
    town = rng.choice(np.flatnonzero(v.main & ward), AIR_STATIONS["town"], replace=False)
    rural = rng.choice(np.flatnonzero(v.main & ~ward), AIR_STATIONS["rural"], replace=False)
    iz = lu.industrial.iloc[: AIR_STATIONS["industry"]]
    sx = np.concatenate([v.x[town], iz["x"].to_numpy(), v.x[rural]])
    sy = np.concatenate([v.y[town], iz["y"].to_numpy(), v.y[rural]])
    n_air = len(sx)
    sx, sy = sx + rng.normal(0, 60, n_air), sy + rng.normal(0, 60, n_air)
    site = ["town"] * len(town) + ["industry"] * len(iz) + ["rural"] * len(rural)

    # Water: on the river's centre line and in fish-pond zones.
    river_in = shapely.intersection(p.river_line, p.outline)
    t = (np.arange(WATER_STATIONS["river"]) + rng.uniform(0.2, 0.8, WATER_STATIONS["river"]))
    t /= WATER_STATIONS["river"]
    rp = shapely.get_coordinates(shapely.line_interpolate_point(river_in, t, normalized=True))
    ponds = lu.zones[lu.zones["land_use_code"] == "NTS"]["geom"].to_numpy()
    pick = rng.choice(len(ponds), WATER_STATIONS["pond"], replace=False)
    pp = shapely.get_coordinates(shapely.point_on_surface(ponds[pick]))
    sx = np.concatenate([sx, rp[:, 0], pp[:, 0]])
    sy = np.concatenate([sy, rp[:, 1], pp[:, 1]])
    site += ["river"] * len(rp) + ["pond"] * len(pp)
    site_arr = np.array(site)
    place = p.communes["name"].to_numpy()[_commune_of(p, sx, sy)]
    station_name = np.array([
        f"Trạm quan trắc không khí {pl}" + (" (KCN)" if st == "industry" else "")
        if st in AIR_STATIONS else
        (f"Trạm quan trắc nước Sông Đuống – {pl}" if st == "river"
         else f"Trạm quan trắc nước ao hồ {pl}")
        for st, pl in zip(site, place, strict=True)
    ], dtype=object)  # fmt: skip
    station_status = rng.choice(["online", "offline", "maintenance"], len(site),
                                p=[0.9, 0.06, 0.04])  # fmt: skip

    # Sensor rows: PM2.5 everywhere in the air, extras at the first (town) stations.
    extra_at = np.arange(len(EXTRA_AIR)) % AIR_STATIONS["town"]
    water = np.flatnonzero(np.isin(site_arr, list(WATER_STATIONS)))
    station = np.concatenate([np.arange(n_air), extra_at, np.repeat(water, len(WATER_PARAMS))])
    params = np.concatenate([["pm25"] * n_air, EXTRA_AIR, np.tile(WATER_PARAMS, len(water))])
    kind = np.array([PARAMETERS[q][0] for q in params])
    order = np.lexsort((station, kind))  # air first, grouped by station
    station, params, kind = station[order], params[order], kind[order]
    n_a = int((kind == "air").sum())
    codes = [f"AIR-{i:03d}" for i in range(1, n_a + 1)]
    codes += [f"WAT-{i:03d}" for i in range(1, len(kind) - n_a + 1)]
    return pd.DataFrame(
        {
            "code": codes,
            "name": [f"{station_name[s_]} – {LABELS[q]}" for s_, q in zip(station, params,
                                                                      strict=True)],
            "kind": kind,
            "parameter": params,
            "unit": [PARAMETERS[q][1] for q in params],
            "threshold": [PARAMETERS[q][2] for q in params],
            "status": station_status[station],
            "site": site_arr[station],
            "station": station,
            "geom": shapely.points(sx[station], sy[station]),
        }
    )


def build_observations(sensors: pd.DataFrame, as_of: date, seed: int) -> pd.DataFrame:
    """Hourly values for the HOURS before as_of's midnight (UTC), vectorised over sensors."""
    rng = stream(seed, "observations")
    ns = len(sensors)
    times = midnight(as_of) - np.arange(HOURS, 0, -1).astype("timedelta64[h]")
    local_h = ((np.arange(HOURS) - HOURS + 7) % 24).astype(float)  # hour of day in UTC+7

    # Regional episodes (haze for air, rain/discharge for water), shared by all stations.
    haze = np.ones(HOURS)
    for _ in range(int(rng.integers(2, 5))):
        start, length = rng.integers(0, HOURS - 24), rng.integers(24, 96)
        ramp = np.clip(1 - np.abs(np.arange(HOURS) - start - length / 2) / (length / 2), 0, 1)
        haze += rng.uniform(0.8, 1.6) * ramp
    rain = np.zeros(HOURS)
    for _ in range(int(rng.integers(2, 6))):
        start = rng.integers(0, HOURS - 12)
        rain += rng.uniform(0.5, 1.5) * np.exp(-np.clip(np.arange(HOURS) - start, 0, None) / 18.0) * (
            np.arange(HOURS) >= start
        )

    # AR(1) noise per station (probes of one station see the same air or water) plus a
    # little of each probe's own.
    station = sensors["station"].to_numpy()
    shared = lfilter([0.53], [1.0, -0.85], rng.normal(0, 1, (station.max() + 1, HOURS)), axis=1)
    noise = 0.9 * shared[station] + 0.3 * rng.normal(0, 1, (ns, HOURS))

    param = sensors["parameter"].to_numpy()
    site = sensors["site"].to_numpy()
    rush = np.exp(-((local_h - 8) ** 2) / 4) + 0.9 * np.exp(-((local_h - 20) ** 2) / 6)
    sun = np.clip(np.sin((local_h - 6) / 12 * np.pi), 0, None)  # 0 at night, 1 at 12:00
    values: np.ndarray = np.empty((ns, HOURS))
    for k in range(ns):
        q = param[k]
        if q in ("pm25", "pm10"):
            base = {"town": 34.0, "industry": 40.0, "rural": 24.0}[site[k]] * rng.uniform(0.85, 1.2)
            v = base * (0.75 + 0.45 * rush) * haze * np.exp(0.18 * noise[k])
            values[k] = v * (1.7 if q == "pm10" else 1.0)
        elif q == "no2":
            values[k] = 28.0 * rng.uniform(0.8, 1.3) * (0.6 + 0.9 * rush) * np.exp(0.2 * noise[k])
        elif q == "ph":
            values[k] = 7.2 + rng.normal(0, 0.15) + 0.35 * sun + 0.6 * rain / 1.5 + 0.05 * noise[k]
        elif q == "turbidity":
            values[k] = 22.0 * rng.uniform(0.7, 1.3) * (1 + 1.8 * rain) * np.exp(0.12 * noise[k])
        elif q == "dissolved_oxygen":
            values[k] = 5.6 + rng.normal(0, 0.3) + 1.4 * (sun - 0.4) - 1.2 * rain + 0.2 * noise[k]
        else:  # cod
            values[k] = 9.0 * rng.uniform(0.8, 1.3) * (1 + 0.9 * rain) * np.exp(0.15 * noise[k])
    values = np.round(np.clip(values, 0.0, None), 2)

    # Offline stations stopped reporting 1-5 days ago; maintenance ones have a recent gap.
    keep = rng.random((ns, HOURS)) > 0.005
    status = sensors["status"].to_numpy()
    for j in np.flatnonzero(status != "online"):
        stop = HOURS - int(rng.integers(24, 120))
        if status[j] == "offline":
            keep[j, stop:] = False
        else:
            keep[j, stop : stop + int(rng.integers(6, 30))] = False
    si, hi = np.nonzero(keep)
    return pd.DataFrame(
        {
            "sensor_code": sensors["code"].to_numpy()[si],
            "observed_at": times[hi],
            "value": values[si, hi],
        }
    )
