"""Legal histories of some sample parcels: versions from before the data was loaded, across the
2025 commune merger.

A land office's records go back decades: a first certificate under the 1993 Land Law, a
transfer or a change of land use registered later, a resurvey that redrew the outline, and on
1 July 2025 the merger that put the parcel's commune into a new one (the parcel keeps its sheet
and number, its key gains the new commune code and keeps the old one). A few parcels of the
sample get such a chain, so that the parcel history, search by an old commune code and the
history across the merger can be seen and tested on the sample:

1. the first certificate (1994-2009): another land user (an old 9-digit identity card number),
   an older certificate, the outline before the resurvey, garden land (CLN) where the parcel
   is residential now, farm land held until 15/10/2013 (the term of the 1993 law);
2. a transfer with resurvey, or a change of land use to residential (2012-2024): the parcel as
   it is now, under its pre-2025 commune code;
3. for parcels of merged communes, the merger itself (1 July 2025, the province's resolution):
   the new commune code, the old one kept beside it.

The last version is the parcel as the rest of the sample has it; the loader replays the
versions through UPDATEs, so the database's own triggers write the history (migration 0006)
with the legal dates and decision numbers of migration 0013 beside the system time of the load.
Decision numbers, like everything in the sample, are synthetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import shapely
import shapely.affinity

from gis.sample.common import stream
from gis.sample.names import person_names
from gis.sample.province import REFORM_DATE, Province

# How many parcels get a history, at scale 1 (more with the square root of the scale), and
# which share of them lies in merged communes.
HISTORY_PARCELS = 60
MERGED_SHARE = 2 / 3
FIRST_CERTIFICATES = (date(1994, 1, 1), date(2009, 12, 31))
LATER_CHANGES = (date(2012, 1, 1), date(2024, 12, 31))
# The term of farm land allocated under the 1993 Land Law (extended to 2063 by the 2013 law).
FARM_TERM_1993 = np.datetime64("2013-10-15")
OLD_CERT_SERIES = ("AA", "AB", "AĐ", "AK", "AL", "AM")
# Why each version was made (the history's change note, Vietnamese as the land office writes).
NOTES = {
    "transfer": "Đăng ký biến động: chuyển nhượng quyền sử dụng đất, đo đạc lại thửa đất",
    "conversion": "Chuyển mục đích sử dụng đất sang đất ở, đo đạc lại thửa đất",
    "merger": "Sắp xếp đơn vị hành chính cấp xã năm 2025",
}
# The versioned columns, as in the parcels table (the sample's columns, without the geometry).
COLUMNS = ("commune_code", "old_commune_code", "sheet_no", "parcel_no", "land_use_codes",
           "legal_area", "land_user", "land_user_id", "certificate_no", "use_until", "origin",
           "legal_valid_from", "decision_no")


@dataclass
class ParcelHistory:
    """`first`: the first version of each history parcel, indexed like the parcels frame (the
    row the loader COPYs); `later`: the versions after it (step 2, 3, ...), each naming its
    parcel's row (`parcel`), its `step` and the `note` recorded with it; the last step of a
    parcel is its current row. Geometries are metric, as in the parcels frame."""

    first: pd.DataFrame
    later: pd.DataFrame


def _random_dates(rng: np.random.Generator, span: tuple[date, date], n: int) -> np.ndarray:
    lo, hi = (np.datetime64(d.isoformat(), "D") for d in span)
    return lo + rng.integers(0, int((hi - lo).astype(int)) + 1, n).astype("timedelta64[D]")


def _decisions(rng: np.random.Generator, n: int, kind: str = "QĐ-UBND") -> np.ndarray:
    return np.array([f"{k}/{kind}" for k in rng.integers(100, 9999, n)], dtype=object)


def build_history(df: pd.DataFrame, p: Province, planted: dict[str, list[list]], seed: int,
                  scale: float) -> ParcelHistory:
    """Pick the history parcels of the parcels frame DF (persons' residential or farm land,
    none of the planted anomalies) and write their versions."""
    rng = stream(seed, "parcel_history")
    c = p.communes
    planted_keys = {(k[0], k[2], k[3]) for k in planted["area_discrepancies"] + planted["zoning_conflicts"]}
    key = list(zip(df["commune_code"], df["sheet_no"], df["parcel_no"], strict=True))
    codes = df["land_use_codes"].to_numpy()
    person = df["land_user_id"].notna().to_numpy()
    usable = person & np.array([k not in planted_keys for k in key]) & np.isin(
        codes, ["{ONT}", "{ONT,CLN}", "{LUC}", "{CLN}"])
    merged = c["merged"].to_numpy()[df["commune"].to_numpy()]
    n = max(6, int(round(HISTORY_PARCELS * scale**0.5)))
    from_merged, elsewhere = np.flatnonzero(usable & merged), np.flatnonzero(usable & ~merged)
    n_merged = min(int(round(n * MERGED_SHARE)), len(from_merged))
    pick = np.concatenate([
        rng.choice(from_merged, n_merged, replace=False),
        rng.choice(elsewhere, min(n - n_merged, len(elsewhere)), replace=False),
    ])
    pick = np.sort(pick)
    cur = df.loc[pick].reset_index(drop=True)
    m = len(cur)
    old_code = c["code"].to_numpy()[cur["commune"].to_numpy()]
    in_merged = merged[pick]
    residential = cur["land_use_codes"].str.startswith("{ONT").to_numpy()
    farm = ~residential

    # Version 2 is the parcel as it is now, before the merger: a transfer, or for half of the
    # residential parcels a change of use to residential (the holder's name stays, the old
    # 9-digit identity card gave way to a citizen ID).
    conversion = residential & (rng.random(m) < 0.5)

    # Version 1: the first certificate.
    first = cur.copy()
    first["commune_code"] = old_code
    first["old_commune_code"] = None
    first["land_use_codes"] = np.where(residential, "{CLN}", cur["land_use_codes"].to_numpy())
    olds, _ = person_names(rng, m)
    first["land_user"] = np.where(conversion, cur["land_user"].to_numpy(), olds)
    first["land_user_id"] = np.array([f"125{v:06d}" for v in rng.integers(0, 1_000_000, m)],
                                     dtype=object)  # 9-digit identity cards of Bắc Ninh
    series = np.asarray(OLD_CERT_SERIES, dtype=object)[rng.integers(0, len(OLD_CERT_SERIES), m)]
    first["certificate_no"] = series + " " + np.array(
        [f"{v:06d}" for v in rng.integers(0, 1_000_000, m)], dtype=object)
    until = np.full(m, np.datetime64("NaT"), dtype="datetime64[D]")
    until[farm] = FARM_TERM_1993
    first["use_until"] = until
    first["origin"] = np.where(farm, "allocation", "recognition").astype(object)
    # The outline before the resurvey: a little larger and shifted, its legal area to match.
    factor = rng.uniform(1.04, 1.09, m)
    shift = rng.uniform(-1.5, 1.5, (m, 2))
    geoms = cur["geom"].to_numpy()
    centres = shapely.centroid(geoms)
    first["geom"] = np.array([
        shapely.affinity.translate(shapely.affinity.scale(g, f, f, origin=o), dx, dy)
        for g, f, o, (dx, dy) in zip(geoms, factor, centres, shift, strict=True)], dtype=object)
    first["legal_area"] = np.round(cur["area"].to_numpy() * factor**2 + rng.normal(0, 0.3, m), 1)
    first["legal_valid_from"] = _random_dates(rng, FIRST_CERTIFICATES, m)
    first["decision_no"] = _decisions(rng, m)

    second = cur.copy()
    second["commune_code"] = old_code
    second["old_commune_code"] = None
    second["legal_valid_from"] = _random_dates(rng, LATER_CHANGES, m)
    second["decision_no"] = _decisions(rng, m)
    second["note"] = np.where(conversion, NOTES["conversion"], NOTES["transfer"]).astype(object)
    second["parcel"] = pick
    second["step"] = 2

    # Version 3: the merger (the province's resolution, one number for all its communes).
    third = cur[in_merged].copy()
    (resolution,) = _decisions(rng, 1, "NQ-UBTVQH15")
    third["legal_valid_from"] = np.datetime64(REFORM_DATE.isoformat(), "D")
    third["decision_no"] = resolution
    third["note"] = NOTES["merger"]
    third["parcel"] = pick[in_merged]
    third["step"] = 3

    first.index = pick
    cols = [*COLUMNS, "geom"]
    later = pd.concat([second, third], ignore_index=True).sort_values(["step", "parcel"], kind="stable")
    later = later[["parcel", "step", "note", *cols]].reset_index(drop=True)
    return ParcelHistory(first=first[cols], later=later)
