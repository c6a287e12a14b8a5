"""Socio-economic indicator values of the sample province (sample_data/indicators.csv defines
the indicators): every commune, district and the province, over six years.

Why built this way: the values must add up the way a statistics office's do, so a dashboard that
compares a province with its communes, or a commune before and after the 2025 merger, never
shows a figure that contradicts another. Each indicator is a ratio of two additive quantities
per pre-2025 commune and year (a count over nothing, a rate's numerator over its weight, a
density's people over its area), drawn with magnitudes and trends of a Red River delta province
near Hanoi (about 1.5 million people, industry-led GRDP of roughly 150 million VND per person,
under 1 % forest cover, a poverty rate that jumps in 2022 when the multidimensional poverty
standard of Decree 07/2021 took effect). Any larger unit - a district, the province, a commune
made by the 2025 merger - gets the ratio of its parts' sums, so every aggregate is exact.

Years: 2020-2024 on the units before the reform (they ended on 2025-07-01), 2020-2025 on the
units since (the years before 2025 recomputed on the new boundaries, as statistics offices
publish them for comparison). A commune's population in 2024 is its admin_units.population,
its area the area of its boundary in the province's VN-2000 TM-3 CRS.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from gis.sample.common import stream
from gis.sample.province import (
    NEW_PROVINCE_CODE,
    OLD_PROVINCE_CODE,
    OLD_VALID_FROM,
    REFORM_DATE,
    Province,
)
from gis.settings import PROJECT_ROOT

DEFINITIONS = PROJECT_ROOT / "sample_data" / "indicators.csv"
# Latent years (the first only to give 2020 a growth rate) and the years published.
LATENT_YEARS = tuple(range(2019, 2026))
OLD_YEARS = tuple(range(2020, 2025))
NEW_YEARS = tuple(range(2020, 2026))
# Province-wide real GRDP growth (%) by year, 2019-2025, and the GRDP deflator's rise (%).
REAL_GROWTH = (9.0, 4.0, 6.9, 13.2, -4.4, 6.0, 8.5)
DEFLATOR = (0.0, 1.5, 2.5, 3.5, 2.5, 3.0, 3.0)
# Unemployment's rise in the pandemic years.
COVID = {2020: 0.5, 2021: 0.9}


def definitions() -> list[dict[str, str]]:
    """The indicators' definitions, as the migration loads them."""
    with DEFINITIONS.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


@dataclass
class Ratio:
    """An indicator as (scale * num / den + offset) of two additive quantities per commune and
    latent year (den None: the sum itself). `lag`: den is num one year earlier (a growth)."""

    num: NDArray[np.float64]
    den: NDArray[np.float64] | None = None
    scale: float = 1.0
    offset: float = 0.0
    lag: bool = False


def _quantities(p: Province, seed: int) -> dict[str, Ratio]:
    """Every indicator's additive parts for each pre-2025 commune (rows) and latent year."""
    rng = stream(seed, "indicators")
    c = p.communes
    n, ny = len(c), len(LATENT_YEARS)
    t = np.arange(ny) - LATENT_YEARS.index(2024)  # years from 2024
    ward = c["is_ward"].to_numpy()
    urb = np.where(ward, 1.0, 0.0)
    area = np.round(shapely.area(c["geom"].to_numpy()) / 1e6, 2)  # km², as published
    area_y = np.repeat(area[:, None], ny, axis=1)

    def noise(sd: float) -> NDArray[np.float64]:
        return rng.normal(0.0, sd, (n, ny))

    growth = rng.normal(0.011, 0.003, n) + 0.004 * urb
    pop = np.round(c["population"].to_numpy()[:, None] * (1 + growth[:, None]) ** t[None, :])
    hh_size = (np.where(ward, 3.3, 3.7) + rng.normal(0, 0.1, n))[:, None] - 0.02 * t[None, :]
    households = np.round(pop / hh_size)
    labour = np.round(pop * (rng.uniform(0.57, 0.63, n)[:, None] + 0.002 * t[None, :]))

    # Industry: communes near industrial parks produce far more per person.
    ind = rng.lognormal(0.0, 0.55, n) * (1 + 0.4 * urb)
    real_pc = 95.0 * ind / ind.mean()  # million VND per person at 2019 prices, 2019
    real_growth = np.array(REAL_GROWTH) / 100
    path = np.cumprod(1 + real_growth[None, 1:] + rng.normal(0, 0.02, (n, ny - 1)), axis=1)
    real = pop * real_pc[:, None] * np.concatenate([np.ones((n, 1)), path], axis=1) / 1000
    deflator = np.cumprod(1 + np.array(DEFLATOR) / 100)
    grdp = np.round(real * deflator[None, :], 1)  # billion VND, current prices
    real = np.round(real, 3)
    industry = np.clip(45 + 25 * np.log(ind)[:, None] + 10 * urb[:, None] + noise(1.5)
                       + 0.4 * t[None, :], 15, 92)

    retail_pc = rng.normal(42, 6, n) * (1 + 0.25 * urb)  # million VND per person, 2024
    retail_path = np.array([0.80, 0.74, 0.72, 0.84, 0.92, 1.0, 1.09])
    retail = np.round(pop * retail_pc[:, None] * retail_path[None, :] * (1 + noise(0.02)) / 1000, 1)
    revenue = np.round(grdp * np.clip(rng.normal(0.125, 0.03, n), 0.05, 0.25)[:, None]
                       * (1 + noise(0.05)), 1)
    spending = np.round(pop * rng.normal(11.0, 1.5, n)[:, None]
                        * (1.06 ** t)[None, :] * (1 + noise(0.04)) / 1000, 1)

    ent_rate = 11.0 * (0.5 + 0.8 * urb + 0.5 * ind / ind.mean())  # per 1,000 people, 2024
    ent_mean = pop * ent_rate[:, None] / 1000 * (1.055 ** t)[None, :]
    enterprises = rng.poisson(ent_mean).astype(float)
    new_ent = rng.poisson(enterprises * 0.12).astype(float)
    fdi_2019 = rng.poisson(np.clip(ind, 0, None) ** 2 * 6)
    fdi = np.cumsum(np.concatenate([fdi_2019[:, None], rng.poisson(
        fdi_2019[:, None] * 0.07 + 0.1, (n, ny - 1))], axis=1), axis=1).astype(float)

    # Poverty: the 2022-2025 multidimensional standard counts more households as poor.
    standard = np.where(np.array(LATENT_YEARS) >= 2022, 1.7, 1.0)
    poor_base = np.where(ward, 0.5, 2.6) * rng.lognormal(0, 0.3, n)
    poverty = np.clip(poor_base[:, None] * standard[None, :] * (0.82 ** (t + 5))[None, :] * 2.2
                      * (1 + noise(0.08)), 0.05, 15)
    near_poor = np.clip(poverty * rng.uniform(1.2, 1.8, n)[:, None], 0.05, 20)

    insurance = np.clip(np.where(ward, 93.5, 91.0)[:, None] + 0.8 * (t + 5)[None, :]
                        + noise(0.6), 80, 99.8)
    # Hospitals: a district hospital in each district's most populous commune, the provincial
    # general hospital in the city's; a health station of ~5 beds everywhere.
    beds0 = rng.integers(4, 8, n).astype(float)
    for d in c["district_code"].unique():
        members = np.flatnonzero(c["district_code"].to_numpy() == d)
        top = members[np.argmax(c["population"].to_numpy()[members])]
        beds0[top] += rng.integers(150, 260)
        if d == c["district_code"].iat[0]:
            second = members[np.argsort(c["population"].to_numpy()[members])[-2]]
            beds0[second] += 900
    beds = np.round(beds0[:, None] * (1.025 ** t)[None, :])
    doctors = np.round(1 + beds * 0.28 + pop / 20000 + np.abs(noise(0.5)))

    big = (c["population"].to_numpy() > 15000).astype(int)
    schools0 = 3 + 2 * big + (rng.random(n) < 0.3).astype(int)
    schools = np.repeat(schools0[:, None], ny, axis=1).astype(float)
    schools[:, -2:] += (rng.random(n) < 0.1)[:, None]  # a few open a school in 2024
    standard_share = np.clip(rng.uniform(0.55, 0.8, n)[:, None] + 0.05 * (t + 5)[None, :], 0, 1)
    standard_schools = np.minimum(np.floor(schools * standard_share + 0.5), schools)
    pupils = np.round(pop * (0.17 + 0.002 * (t + 5))[None, :] * (1 + noise(0.02)))
    teachers = np.round(pupils / rng.normal(20, 1.5, n)[:, None])

    # Forest: plantation on the hills of two districts; elsewhere none.
    hilly = np.isin(c["district_code"].to_numpy(), ("259", "260")) & (rng.random(n) < 0.3) & ~ward
    forest_ha = np.where(hilly, area * 100 * rng.uniform(0.03, 0.12, n), 0.0)
    forest = np.round(forest_ha[:, None] * (1 + 0.01 * (t + 5))[None, :] * (1 + np.abs(noise(0.005))), 1)
    forest = np.minimum(forest, area_y * 100)
    waste = np.clip(np.where(ward, 98.5, 88.0)[:, None] + np.where(ward, 0.2, 2.0)[:, None]
                    * (t + 5)[None, :] + noise(0.5), 50, 100)
    water = np.clip(np.where(ward, 99.0, 90.0)[:, None] + np.where(ward, 0.15, 1.6)[:, None]
                    * (t + 5)[None, :] + noise(0.4), 50, 100)
    rice = np.round(area[:, None] * np.where(ward, 8.0, 85.0)[:, None] * rng.uniform(0.7, 1.2, n)[:, None]
                    * (0.985 ** t)[None, :], 1)
    rice_yield = np.clip(rng.normal(61.5, 1.5, n)[:, None] + 0.3 * (t + 5)[None, :] + noise(1.2),
                         45, 75)
    accidents = rng.poisson(pop / 10000 * 0.9).astype(float)
    crimes = rng.poisson(pop / 10000 * (1.6 + 2.0 * urb[:, None])).astype(float)

    unemployment = np.clip(np.where(ward, 2.4, 1.8)[:, None] + noise(0.3) + np.array(
        [COVID.get(y, 0.0) for y in LATENT_YEARS])[None, :], 0.3, 10)
    trained = np.clip(np.where(ward, 80, 70)[:, None] + 1.5 * (t + 5)[None, :] + noise(1.0), 30, 98)
    sex_ratio = np.clip(rng.normal(97.5, 2.0, n)[:, None] + noise(0.3), 85, 115)
    birth = np.clip(rng.normal(16.5, 1.5, n)[:, None] - 0.35 * (t + 5)[None, :] + noise(0.5), 5, 30)
    urban_share = np.repeat(np.where(ward, 100.0, 0.0)[:, None], ny, axis=1)

    def mean(values: NDArray[np.float64], weight: NDArray[np.float64]) -> Ratio:
        return Ratio(values * weight, weight)

    return {
        "POP": Ratio(pop),
        "AREA": Ratio(area_y),
        "POP_DENSITY": Ratio(pop, area_y),
        "HOUSEHOLDS": Ratio(households),
        "SEX_RATIO": mean(sex_ratio, pop),
        "BIRTH_RATE": mean(birth, pop),
        "URBAN_SHARE": mean(urban_share, pop),
        "LABOUR_FORCE": Ratio(labour),
        "UNEMPLOYMENT": mean(unemployment, labour),
        "TRAINED_LABOUR": mean(trained, labour),
        "GRDP": Ratio(grdp),
        "GRDP_GROWTH": Ratio(real, real, scale=100.0, offset=-100.0, lag=True),
        "GRDP_PER_CAPITA": Ratio(grdp, pop, scale=1000.0),
        "INDUSTRY_SHARE": mean(industry, grdp),
        "RETAIL_SALES": Ratio(retail),
        "BUDGET_REVENUE": Ratio(revenue),
        "BUDGET_SPENDING": Ratio(spending),
        "ENTERPRISES": Ratio(enterprises),
        "NEW_ENTERPRISES": Ratio(new_ent),
        "FDI_PROJECTS": Ratio(fdi),
        "POVERTY_RATE": mean(poverty, households),
        "NEAR_POVERTY_RATE": mean(near_poor, households),
        "HEALTH_INSURANCE": mean(insurance, pop),
        "HOSPITAL_BEDS": Ratio(beds),
        "BEDS_PER_10K": Ratio(beds, pop, scale=1e4),
        "DOCTORS": Ratio(doctors),
        "SCHOOLS": Ratio(schools),
        "PUPILS": Ratio(pupils),
        "TEACHERS": Ratio(teachers),
        "SCHOOLS_STANDARD": Ratio(standard_schools, schools, scale=100.0),
        "FOREST_COVER": Ratio(forest, area_y * 100, scale=100.0),
        "WASTE_COLLECTED": mean(waste, pop),
        "CLEAN_WATER": mean(water, pop),
        "RICE_AREA": Ratio(rice),
        "RICE_YIELD": mean(rice_yield, rice),
        "TRAFFIC_ACCIDENTS": Ratio(accidents),
        "CRIMINAL_CASES": Ratio(crimes),
    }


def _units(p: Province) -> tuple[list[tuple[str, date, tuple[int, ...]]], NDArray[np.float64]]:
    """(code, valid_from, years) of every unit with values, and its membership matrix over the
    pre-2025 communes (unit x commune, 1 where the commune is part of the unit)."""
    c = p.communes
    n = len(c)
    units: list[tuple[str, date, tuple[int, ...]]] = []
    rows: list[NDArray[np.float64]] = []

    def add(code: str, since: date, years: tuple[int, ...], members: NDArray[np.bool_]) -> None:
        units.append((code, since, years))
        rows.append(members.astype(float))

    add(OLD_PROVINCE_CODE, OLD_VALID_FROM, OLD_YEARS, np.ones(n, dtype=bool))
    district = c["district_code"].to_numpy()
    for d in p.districts["code"]:
        add(str(d), OLD_VALID_FROM, OLD_YEARS, district == d)
    for i, code in enumerate(c["code"]):
        add(str(code), OLD_VALID_FROM, OLD_YEARS, np.arange(n) == i)
    add(NEW_PROVINCE_CODE, REFORM_DATE, NEW_YEARS, np.ones(n, dtype=bool))
    for nc in p.new_communes.itertuples():
        add(str(nc.code), REFORM_DATE, NEW_YEARS, np.isin(np.arange(n), nc.members))
    return units, np.vstack(rows)


def build_indicator_values(p: Province, seed: int) -> pd.DataFrame:
    """One row per indicator, unit (code and start of validity) and year: the value as text
    with the indicator's decimals (what is hashed and loaded)."""
    q = _quantities(p, seed)
    defs = definitions()
    assert {d["code"] for d in defs} == set(q), "sample_data/indicators.csv and the sample differ"
    units, m = _units(p)
    frames = []
    for d in defs:
        r = q[d["code"]]
        num = m @ r.num
        if r.den is None:
            val = num
        else:
            den = m @ r.den
            if r.lag:  # a growth: this year's sum over last year's
                num, den = num[:, 1:], den[:, :-1]
                num = np.concatenate([np.full((len(units), 1), np.nan), num], axis=1)
                den = np.concatenate([np.full((len(units), 1), np.nan), den], axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                val = r.scale * num / den + r.offset
        decimals = int(d["decimals"])
        lo = float(d["min_value"]) if d["min_value"] else -np.inf
        hi = float(d["max_value"]) if d["max_value"] else np.inf
        for k, (code, since, years) in enumerate(units):
            cols = [LATENT_YEARS.index(y) for y in years]
            v = np.clip(np.round(val[k, cols], decimals), lo, hi)
            if not np.isfinite(v).all():
                raise AssertionError(f"indicator {d['code']}: no value for unit {code}")
            frames.append(pd.DataFrame({
                "indicator_code": d["code"], "unit_code": code, "unit_valid_from": since,
                "period": [str(y) for y in years],
                "value": np.char.mod(f"%.{decimals}f", v + 0.0)}))
    return pd.concat(frames, ignore_index=True)
