"""Public facilities of the sample province: what every commune has, and what only towns have.

Every current (post-2025) commune gets its People's Committee office, a primary school, a
health station and a commune police post, near the main village of one of the communes it was
formed from (where such offices are in practice); each district seat gets a general hospital and
the larger ones a fire and rescue station. Deterministic from the seed, like every other step.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from gis.sample.common import stream
from gis.sample.province import PROVINCE_NAME, Province
from gis.sample.roads import Villages

# type: code prefix, capacity range (pupils, beds or staff)
KINDS: dict[str, tuple[str, tuple[int, int]]] = {
    "people_committee": ("UBND", (25, 60)),
    "school": ("TH", (300, 1200)),
    "clinic": ("TYT", (5, 15)),
    "police": ("CA", (10, 40)),
    "hospital": ("BV", (150, 800)),
    "fire_station": ("PCCC", (30, 90)),
}
# Fire and rescue stations: only at the seats of the largest districts (by weight).
FIRE_STATIONS = 4
AREA_CODE = "0222"  # the province's telephone area code


def _unit(name: str) -> tuple[str, str]:
    """("xã"/"phường", bare name) from "Xã Bồng Hòa": offices write the unit type in lower case."""
    kind, _, bare = name.partition(" ")
    return kind.lower(), bare


def _near(rng: np.random.Generator, x: float, y: float, r: float, area: shapely.Geometry
          ) -> tuple[float, float]:
    """A point within R metres of (x, y) inside AREA (its representative point if none is)."""
    for _ in range(20):
        a, d = rng.uniform(0, 2 * np.pi), r * np.sqrt(rng.uniform(0.0, 1.0))
        px, py = x + d * np.cos(a), y + d * np.sin(a)
        if area.contains(shapely.Point(px, py)):
            return float(px), float(py)
    q = area.representative_point()
    return float(q.x), float(q.y)


def build_facilities(p: Province, v: Villages, seed: int) -> pd.DataFrame:
    """One row per facility: code, name, type, address, capacity, phone, commune_code, geom
    (metric, like the other builders)."""
    rng = stream(seed, "facilities")
    rows: list[dict[str, object]] = []
    seq: dict[tuple[str, str], int] = {}

    def add(kind: str, name: str, code: str, commune: str, x: float, y: float) -> None:
        prefix, (lo, hi) = KINDS[kind]
        k = seq[(prefix, code)] = seq.get((prefix, code), 0) + 1
        rows.append({
            "code": f"{prefix}-{code}-{k:02d}", "name": name, "type": kind,
            "address": f"{commune}, {PROVINCE_NAME}", "capacity": int(rng.integers(lo, hi + 1)),
            "phone": f"{AREA_CODE} {int(rng.integers(3_600_000, 3_900_000))}",
            "commune_code": code, "x": x, "y": y,
        })

    for c in p.new_communes.itertuples():
        members = list(c.members)
        cores = np.flatnonzero(np.isin(v.commune, members) & v.main)
        area = c.geom
        if cores.size:
            core = int(cores[rng.integers(cores.size)])
            cx, cy, r = float(v.x[core]), float(v.y[core]), float(v.radius[core])
        else:
            q = area.representative_point()
            cx, cy, r = float(q.x), float(q.y), 300.0
        unit, bare = _unit(c.name)
        for kind, name in (("people_committee", f"Ủy ban nhân dân {unit} {bare}"),
                           ("school", f"Trường Tiểu học {bare}"),
                           ("clinic", f"Trạm Y tế {unit} {bare}"),
                           ("police", f"Công an {unit} {bare}")):
            x, y = _near(rng, cx, cy, max(r * 0.6, 80.0), area)
            add(kind, name, c.code, c.name, x, y)

    # Hospitals and fire stations at the district seats, named after the commune they stand in.
    geoms = p.new_communes["geom"].to_numpy()
    tree = shapely.STRtree(geoms)
    towns = p.towns.sort_values("weight", ascending=False, kind="stable").reset_index(drop=True)
    for i, t in enumerate(towns.itertuples()):
        at = int(tree.query_nearest(shapely.Point(t.x, t.y))[0])
        commune = p.new_communes.iloc[at]
        _, bare = _unit(commune["name"])
        x, y = _near(rng, float(t.x), float(t.y), 900.0, geoms[at])
        add("hospital", f"Bệnh viện Đa khoa khu vực {bare}", commune["code"], commune["name"], x, y)
        if i < FIRE_STATIONS:
            x, y = _near(rng, float(t.x), float(t.y), 1200.0, geoms[at])
            add("fire_station", f"Đội Cảnh sát PCCC và CNCH khu vực {bare}", commune["code"],
                commune["name"], x, y)
    df = pd.DataFrame(rows)
    df["geom"] = shapely.points(df["x"].to_numpy(), df["y"].to_numpy())
    return df[["code", "name", "type", "address", "capacity", "phone", "commune_code", "geom"]]
