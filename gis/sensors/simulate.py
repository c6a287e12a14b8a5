"""The simulator's model: what a datastream reads at a time, as a pure function of (datastream,
time, seed), vectorised with numpy over datastreams x times.

Pure on purpose: the value of one datastream at one time does not depend on the window or the
chunk it was computed in, so a back-fill and the live part that follows join without a seam, a
restarted simulator publishes the same (datastream, time, value) again (the ingest stores nothing
twice) and a test can recompute what it should find stored. Randomness is therefore not drawn from
a sequential generator but hashed (splitmix64) from the seed, a key and the time.

What it draws, close to what the delta's automatic stations show:

- Air (PM2.5, PM10, NO2; VN_AQI from PM2.5): a morning (7-8 h) and an evening (18-19 h) traffic
  peak in Vietnam time, dust held near the ground at night and mixed away in the afternoon,
  station-level smooth noise (probes of one station breathe the same air) and a little of each
  probe's own, and regional pollution episodes (winter haze, shared by all stations): one in
  every 4-day block, 12-24 hours long, raising PM 2.5 to 3.1 times, so the network's PM2.5
  crosses QCVN 05:2023's 50 µg/m³ for a while and comes back.
- Rain: showers (in one 2-day block out of two or three, 1-5 hours, 4-25 mm/h). The runoff they
  cause peaks some 8 hours later and drains over two days: a water level rises after rain
  (water_level datastreams), turbidity and COD rise, dissolved oxygen and pH sag; on top, the
  daily photosynthesis cycle (DO and pH up in the afternoon).
- Traffic (traffic_speed, traffic_flow) of road segments with morning (7-9 h) and evening
  (17-19 h) rush hours in Vietnam time: speed falls from the segment's free-flow speed by its
  severity (about one segment in five jams at the morning peak), flow rises; and camera status
  (0 online, 1 degraded, 2 offline, see CAMERA_STATUS) with short outages, for datastreams of
  those properties when there are any.

Values are clipped to what a probe can read (no negative concentration, pH within 4-10, DO
within 0.2-14 mg/L) and rounded to two decimals.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F = npt.NDArray[np.float64]
U = npt.NDArray[np.uint64]

HOUR = 3600.0
DAY = 86400.0
VN_OFFSET = 7 * HOUR  # Vietnam time, UTC+7, no daylight saving
HAZE_BLOCK = 4 * DAY
RAIN_BLOCK = 2 * DAY
RUNOFF_PEAK = 8 * HOUR  # runoff peaks this long after the rain
RAIN_LOOKBACK = 6  # rain blocks whose runoff still shows (12 days; the kernel is < 0.1 % by then)
CAMERA_STATUS = ("online", "degraded", "offline")

# Properties the model draws; any other datastream is left alone (the caller says so).
AIR = ("pm25", "pm10", "no2", "aqi")
WATER = ("ph", "turbidity", "dissolved_oxygen", "cod", "water_level", "rainfall")
TRAFFIC = ("traffic_speed", "traffic_flow")
CAMERA = ("camera_status",)
MODELLED = AIR + WATER + TRAFFIC + CAMERA
# QCVN 05:2023/BTNMT ambient air limits the episodes are drawn against (µg/m³).
QCVN05_PM25 = 50.0


@dataclass(frozen=True)
class Streams:
    """The datastreams simulated: ids, observed property codes and the station of each (probes
    at one place share the station's air or water; any integer key, e.g. the smallest Thing id
    at that position)."""

    ids: npt.NDArray[np.int64]
    properties: npt.NDArray[np.str_]
    stations: npt.NDArray[np.int64]
    # A known reference level, NaN when none: a road segment's free-flow speed (km/h).
    reference: F

    @classmethod
    def of(cls, ids: list[int], properties: list[str], stations: list[int],
           reference: list[float | None] | None = None) -> Streams:
        ref = [np.nan if r is None else r for r in reference or [None] * len(ids)]
        return cls(np.asarray(ids, dtype=np.int64), np.asarray(properties, dtype=np.str_),
                   np.asarray(stations, dtype=np.int64), np.asarray(ref, dtype=np.float64))

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, mask: npt.NDArray[np.bool_]) -> Streams:
        return Streams(self.ids[mask], self.properties[mask], self.stations[mask],
                       self.reference[mask])


# --- counter-based randomness ---------------------------------------------------------------
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
# Streams of randomness, one per purpose, so that adding one never shifts another.
(K_HAZE, K_RAIN, K_STATION, K_PROBE, K_WAVE, K_WHITE, K_CAMERA, K_ROAD) = (
    np.uint64(k) for k in range(1, 9))


def _splitmix(x: U) -> U:
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _hash(seed: int, *keys: npt.ArrayLike) -> U:
    """A 64-bit hash of the seed and the keys (integers or integer arrays, broadcast)."""
    with np.errstate(over="ignore"):
        h = _splitmix(np.asarray([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
        for k in keys:
            h = _splitmix(h ^ np.asarray(k).astype(np.int64).astype(np.uint64))
    return h


def _uniform(seed: int, *keys: npt.ArrayLike) -> F:
    """Uniform in [0, 1), a pure function of its arguments."""
    return (_hash(seed, *keys) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _normal(seed: int, *keys: npt.ArrayLike) -> F:
    """Standard normal (Box-Muller on two hashed uniforms)."""
    u1 = 1.0 - _uniform(seed, *keys, 1)
    u2 = _uniform(seed, *keys, 2)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


# --- regional processes (functions of time only) --------------------------------------------
@dataclass(frozen=True)
class Episode:
    """A regional pollution episode: when it builds up and clears (UTC), its strength (PM
    multiplier minus one at its height)."""

    start: dt.datetime
    end: dt.datetime
    strength: float


def _haze_params(seed: int, block: npt.NDArray[np.int64]) -> tuple[F, F, F]:
    centre = (block + 0.25 + 0.5 * _uniform(seed, K_HAZE, block, 1)) * HAZE_BLOCK
    half = (6.0 + 6.0 * _uniform(seed, K_HAZE, block, 2)) * HOUR
    strength = 1.5 + 0.6 * _uniform(seed, K_HAZE, block, 3)
    return centre - half, centre + half, strength


def episodes(seed: int, start: dt.datetime, end: dt.datetime) -> list[Episode]:
    """The pollution episodes that overlap [start, end)."""
    a, b = start.timestamp(), end.timestamp()
    blocks = np.arange(int(a // HAZE_BLOCK) - 1, int(b // HAZE_BLOCK) + 1, dtype=np.int64)
    s, e, k = _haze_params(seed, blocks)
    return [Episode(dt.datetime.fromtimestamp(s_, dt.UTC), dt.datetime.fromtimestamp(e_, dt.UTC),
                    float(k_)) for s_, e_, k_ in zip(s, e, k, strict=True) if e_ > a and s_ < b]


def haze(t: F, seed: int) -> F:
    """The regional PM multiplier at times T (epoch seconds): 1 outside episodes."""
    block = (t // HAZE_BLOCK).astype(np.int64)
    out = np.ones_like(t)
    for d in (-1, 0, 1):  # an episode's smooth edges reach a little into the next block
        s, e, k = _haze_params(seed, block + d)
        out += k * 0.5 * (np.tanh((t - s) / (3 * HOUR)) - np.tanh((t - e) / (3 * HOUR)))
    return out


def _rain_params(seed: int, block: npt.NDArray[np.int64]) -> tuple[F, F, F]:
    wet = _uniform(seed, K_RAIN, block, 0) < 0.45
    start = (block + 0.9 * _uniform(seed, K_RAIN, block, 1)) * RAIN_BLOCK
    length = (1.0 + 4.0 * _uniform(seed, K_RAIN, block, 2)) * HOUR
    intensity = np.where(wet, 4.0 + 21.0 * _uniform(seed, K_RAIN, block, 3), 0.0)  # mm/h
    return start, length, intensity


def rain(t: F, seed: int) -> F:
    """Rain intensity (mm/h) at times T."""
    s, n, i = _rain_params(seed, (t // RAIN_BLOCK).astype(np.int64))
    return np.where((t >= s) & (t < s + n), i, 0.0)


def runoff(t: F, seed: int) -> F:
    """The catchment's response to the rain so far: 0 when dry, about 1 at the peak that follows
    a 40 mm shower (RUNOFF_PEAK after it), draining over a couple of days."""
    block = (t // RAIN_BLOCK).astype(np.int64)
    out = np.zeros_like(t)
    for d in range(RAIN_LOOKBACK + 1):
        s, n, i = _rain_params(seed, block - d)
        x = np.clip(t - (s + n / 2), 0.0, None) / RUNOFF_PEAK
        out += (i * n / HOUR / 40.0) * x * np.exp(1.0 - x)
    return out


def _waves(seed: int, station: npt.NDArray[np.int64], t: F, waves: int = 6) -> F:
    """Smooth noise per station (rows) over times T (columns), about standard normal: a sum of
    sinusoids with hashed periods (30 min to 12 h) and phases."""
    out = np.zeros((len(station), len(t)))
    for j in range(waves):
        period = HOUR * np.exp(np.log(0.5) + np.log(24.0) * _uniform(seed, K_WAVE, station, j, 1))
        phase = 2 * np.pi * _uniform(seed, K_WAVE, station, j, 2)
        out += np.sin(2 * np.pi * t[None, :] / period[:, None] + phase[:, None])
    return np.asarray(out * np.sqrt(2.0 / waves), dtype=np.float64)


def local_hour(t: F) -> F:
    """Hour of the day in Vietnam time (fractional)."""
    return ((t + VN_OFFSET) % DAY) / HOUR


def _bump(h: F, at: float, width: float) -> F:
    d = (h - at + 12.0) % 24.0 - 12.0  # wraps around midnight
    return np.exp(-(d**2) / (2 * width**2))


def _aqi_pm25(c: F) -> F:
    """VN_AQI from PM2.5 (Quyết định 1459/QĐ-TCMT breakpoints, hourly value as the input)."""
    bp_c = np.array([0, 25, 50, 80, 150, 250, 350, 500], dtype=np.float64)
    bp_i = np.array([0, 50, 100, 150, 200, 300, 400, 500], dtype=np.float64)
    return np.asarray(np.interp(c, bp_c, bp_i), dtype=np.float64)


# --- the model ------------------------------------------------------------------------------
def values(streams: Streams, times: F, seed: int) -> F:
    """The readings of STREAMS at TIMES (epoch seconds, UTC), shape (streams, times).

    Every element depends only on (datastream id, station, property, time, seed). Properties
    outside MODELLED read NaN (not published).
    """
    t = np.asarray(times, dtype=np.float64)
    n = len(streams)
    out = np.full((n, len(t)), np.nan)
    if n == 0 or len(t) == 0:
        return out
    h = local_hour(t)
    ids, st, prop = streams.ids, streams.stations, streams.properties
    # Station-level smooth noise and each probe's own (hashed per probe and millisecond).
    shared = _waves(seed, st, t)
    own = _normal(seed, K_WHITE, ids[:, None], (t * 1000).astype(np.int64)[None, :])
    noise = 0.85 * shared + 0.35 * own
    level = 0.75 + 0.5 * _uniform(seed, K_STATION, st)[:, None]   # the station's usual level
    probe = 0.9 + 0.2 * _uniform(seed, K_PROBE, ids)[:, None]     # the probe's calibration

    rush = _bump(h, 7.5, 1.2) + 0.9 * _bump(h, 18.5, 1.5)        # traffic peaks, VN time
    sun = np.clip(np.sin((h - 6.0) / 12.0 * np.pi), 0.0, None)   # 0 at night, 1 at noon
    still = _bump(h, 2.0, 3.0)  # the night's shallow mixing layer holds dust near the ground

    def rows(code: str | tuple[str, ...]) -> npt.NDArray[np.bool_]:
        return np.isin(prop, code)

    if (m := rows(("pm25", "pm10", "no2", "aqi"))).any():
        hz = haze(t, seed)[None, :]
        pm25 = 30.0 * level * (0.6 + 0.45 * rush + 0.35 * still) * hz * np.exp(0.15 * noise)
        out = np.where(rows("pm25")[:, None], pm25 * probe, out)
        out = np.where(rows("aqi")[:, None], _aqi_pm25(pm25), out)
        out = np.where(rows("pm10")[:, None], 1.65 * pm25 * probe * np.exp(0.05 * own), out)
        no2 = 30.0 * level * probe * (0.5 + 1.0 * rush) * (1 + 0.35 * (hz - 1)) * np.exp(0.2 * noise)
        out = np.where(rows("no2")[:, None], no2, out)
    if rows(WATER).any():
        r = runoff(t, seed)[None, :]
        out = np.where(rows("ph")[:, None],
                       7.1 + 0.3 * (level - 1) + 0.35 * sun - 0.3 * np.tanh(r) + 0.04 * noise, out)
        out = np.where(rows("turbidity")[:, None],
                       20.0 * level * probe * (1 + 2.2 * r) * np.exp(0.1 * noise), out)
        out = np.where(rows("dissolved_oxygen")[:, None],
                       5.8 + 1.5 * (level - 1) + 1.3 * (sun - 0.4) - 1.6 * np.tanh(r) + 0.18 * noise,
                       out)
        out = np.where(rows("cod")[:, None], 9.0 * level * probe * (1 + 0.9 * r) * np.exp(0.12 * noise),
                       out)
        out = np.where(rows("water_level")[:, None],
                       2.0 + 2.0 * level + 1.8 * r + 0.04 * np.sin(2 * np.pi * t / (12.42 * HOUR))
                       + 0.01 * noise, out)
        out = np.where(rows("rainfall")[:, None], rain(t, seed)[None, :] * level, out)
    if rows(TRAFFIC).any():
        out = np.where(rows(TRAFFIC)[:, None], traffic(streams, t, seed, noise), out)
    if (m := rows(CAMERA)).any():
        out = np.where(m[:, None], camera_status(ids, t, seed), out)
    return _plausible(prop, out)


def rush_hours(h: F) -> F:
    """The rush hours' weight at Vietnam hours H: 1 at the morning peak (7-9 h, highest about
    7:45), 0.85 at the evening one (17-19 h, highest about 18:00), near 0 elsewhere."""
    return np.asarray(_bump(h, 7.75, 0.7) + 0.85 * _bump(h, 18.0, 0.7), dtype=np.float64)


def severity(stations: npt.NDArray[np.int64], seed: int) -> F:
    """How much of its free-flow speed a segment loses at the height of the morning rush (0.3
    to 0.92): most segments slow to moderate or heavy, about one in five (the bottlenecks)
    jams (below a quarter of free flow)."""
    return 0.3 + 0.62 * _uniform(seed, K_ROAD, stations) ** 1.5


def traffic(streams: Streams, t: F, seed: int, noise: F) -> F:
    """Speed (km/h) and flow (vehicles/h) of road segments (rows of STREAMS; others NaN) at
    times T, with their smooth NOISE: speed near the segment's free-flow speed (its
    `reference`; 40-70 km/h when unknown) off-peak, falling in the rush hours by the segment's
    severity; flow low at night, high in the day and highest in the rush hours."""
    h = local_hour(t)
    st = streams.stations
    peak = rush_hours(h)[None, :]
    free = np.where(np.isfinite(streams.reference), streams.reference,  # free-flow, km/h
                    40.0 + 30.0 * _uniform(seed, K_STATION, st))[:, None]
    cap = 800.0 + 2400.0 * _uniform(seed, K_PROBE, st)[:, None]   # vehicles/h at its busiest
    peak = np.clip(peak, 0.0, 1.0)
    day = 0.08 + 0.45 * np.clip(np.sin((h - 5.0) / 18.0 * np.pi), 0.0, None)[None, :]
    speed = free * (0.97 - severity(st, seed)[:, None] * peak) * np.exp(0.04 * noise)
    flow = cap * (day + 0.5 * peak) * np.exp(0.08 * noise)
    prop = streams.properties[:, None]
    return np.where(prop == "traffic_speed", speed,
                    np.where(prop == "traffic_flow", flow, np.nan))


def camera_status(ids: npt.NDArray[np.int64], t: F, seed: int) -> F:
    """0 online, 1 degraded, 2 offline (CAMERA_STATUS): each camera has, in one day out of
    five, an outage of 10 to 90 minutes, degraded for 20 minutes around it."""
    day = (t // DAY).astype(np.int64)[None, :]
    cam = ids[:, None]
    down = _uniform(seed, K_CAMERA, cam, day, 0) < 0.2
    start = day * DAY + _uniform(seed, K_CAMERA, cam, day, 1) * (DAY - 2 * HOUR) + HOUR
    length = (10.0 + 80.0 * _uniform(seed, K_CAMERA, cam, day, 2)) * 60.0
    off = down & (t >= start) & (t < start + length)
    degraded = down & (t >= start - 1200.0) & (t < start + length + 1200.0)
    return np.where(off, 2.0, np.where(degraded, 1.0, 0.0))


# --- cameras that are not datastreams: heartbeats and detections (gis/sensors/cameras.py) ---
# What the simulated analytics report (detection_categories codes, migration 0023).
DETECTION_CATEGORIES = ("traffic_accident", "stopped_vehicle", "wrong_way", "crowd",
                        "road_obstruction", "smoke", "fire", "flooding")
DETECTIONS_PER_CAMERA_HOUR = 0.02  # ~6 an hour over the sample's 300 cameras
K_DETECT = np.uint64(8)


def camera_heartbeats(ids: npt.NDArray[np.int64], t: F, seed: int) -> F:
    """Each camera's state at times T, as camera_status (0 online, 1 degraded, 2 offline: an
    outage of 10 to 90 minutes one day in five, degraded around it), except that the first
    camera (the smallest id) has a poor link throughout: degraded whenever it is not offline."""
    out = camera_status(ids, t, seed)
    if len(ids):
        first = ids == ids.min()
        out[first] = np.where(out[first] == 2.0, 2.0, 1.0)
    return out


def camera_detections(ids: npt.NDArray[np.int64], t: F, seed: int, step: float
                      ) -> list[tuple[int, int, str, float]]:
    """Detections at times T (a grid of STEP seconds): (camera index, time index, category,
    confidence), about DETECTIONS_PER_CAMERA_HOUR per camera and hour, a pure function of
    (camera id, time, seed) as everything here; confidence from 0.45 to 0.99, so some are
    below the threshold and wait for an operator."""
    if not len(ids) or not len(t):
        return []
    stamp = (t * 1000).astype(np.int64)[None, :]
    cam = ids[:, None]
    hit = _uniform(seed, K_DETECT, cam, stamp, 0) < DETECTIONS_PER_CAMERA_HOUR * step / HOUR
    ci, ti = np.nonzero(hit)
    kind = (_uniform(seed, K_DETECT, ids[ci], stamp[0, ti], 1) * len(DETECTION_CATEGORIES))
    conf = 0.45 + 0.54 * _uniform(seed, K_DETECT, ids[ci], stamp[0, ti], 2)
    return [(int(c), int(k), DETECTION_CATEGORIES[int(x)], round(float(p), 2))
            for c, k, x, p in zip(ci, ti, kind, conf, strict=True)]


_BOUNDS = {
    "pm25": (1.0, 1000.0), "pm10": (2.0, 1500.0), "no2": (1.0, 1000.0), "aqi": (0.0, 500.0),
    "ph": (4.0, 10.0), "turbidity": (0.5, 4000.0), "dissolved_oxygen": (0.2, 14.0),
    "cod": (0.5, 500.0), "water_level": (0.0, 30.0), "rainfall": (0.0, 200.0),
    "traffic_speed": (3.0, 120.0), "traffic_flow": (0.0, 10000.0),
}  # fmt: skip


def _plausible(prop: npt.NDArray[np.str_], v: F) -> F:
    """Clip every property to what its probe can read; two decimals."""
    lo = np.array([_BOUNDS.get(p, (-np.inf, np.inf))[0] for p in prop])[:, None]
    hi = np.array([_BOUNDS.get(p, (-np.inf, np.inf))[1] for p in prop])[:, None]
    return np.asarray(np.round(np.clip(v, lo, hi), 2), dtype=np.float64)


def grid(start: float, end: float, step: float) -> F:
    """The observation times in [start, end): multiples of STEP seconds since the epoch, so that
    every run, whatever its start, reads at the same instants (and a re-run repeats keys)."""
    first = np.ceil(start / step) * step
    return np.arange(first, end, step, dtype=np.float64)
