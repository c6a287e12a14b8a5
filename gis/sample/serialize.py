"""Canonical text of the sample tables: PostgreSQL COPY text format, built column-wise.

The same text is hashed (data_hash) and streamed to COPY, so what is loaded is exactly what was
hashed. Geometries are hex EWKB with SRID 4326; floats have a fixed number of decimals, so the
text is identical across platforms for the same seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from gis.sample.assemble import Sample
from gis.sample.common import STORAGE_SRID

NULL = r"\N"

# table: (column, kind); kinds say how a value is written.
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "admin_units": (
        ("code", "text"), ("name", "text"), ("level", "text"), ("parent_code", "text"),
        ("population", "int"), ("valid_from", "date"), ("valid_to", "date"), ("geom", "geom"),
    ),
    "land_use_zones": (
        ("land_use_code", "text"), ("plan_name", "text"), ("approved_on", "date"),
        ("commune_code", "text"), ("geom", "geom"),
    ),
    "roads": (
        ("name", "text"), ("road_class", "text"), ("lanes", "int"), ("max_speed", "int"),
        ("traffic_state", "text"), ("traffic_at", "timestamp"), ("geom", "geom"),
    ),
    "parcels": (
        ("commune_code", "text"), ("old_commune_code", "text"), ("sheet_no", "int"),
        ("parcel_no", "int"), ("land_use_codes", "text"), ("legal_area", "dec1"),
        ("land_user", "text"), ("land_user_id", "text"), ("certificate_no", "text"),
        ("use_until", "date"), ("origin", "text"), ("geom", "geom"),
    ),
    "tourism_places": (
        ("name", "text"), ("name_en", "text"), ("category", "text"), ("address", "text"),
        ("rating", "dec1"), ("visitors_per_year", "int"), ("geom", "geom"),
    ),
    "cameras": (
        ("code", "text"), ("name", "text"), ("heading", "int"), ("fov_deg", "int"),
        ("range_m", "int"), ("status", "text"), ("stream_url", "text"), ("fov", "geom"),
        ("geom", "geom"),
    ),
    "sensors": (
        ("code", "text"), ("name", "text"), ("kind", "text"), ("parameter", "text"),
        ("unit", "text"), ("threshold", "dec2"), ("status", "text"), ("geom", "geom"),
    ),
    "observations": (("sensor_id", "int"), ("observed_at", "timestamp"), ("value", "dec2")),
    "incidents": (
        ("category", "text"), ("severity", "int"), ("status", "text"), ("source", "text"),
        ("title", "text"), ("description", "text"), ("commune_code", "text"),
        ("reported_at", "timestamp"), ("resolved_at", "timestamp"), ("geom", "geom"),
    ),
    "public_facilities": (
        ("code", "text"), ("name", "text"), ("type", "text"), ("address", "text"),
        ("capacity", "int"), ("phone", "text"), ("commune_code", "text"), ("geom", "geom"),
    ),
}  # fmt: skip


def _column(values: pd.Series, kind: str) -> pd.Series:
    """One column as COPY text, vectorised."""
    if kind == "geom":
        g = shapely.set_srid(np.asarray(values, dtype=object), STORAGE_SRID)
        return pd.Series(shapely.to_wkb(g, hex=True, include_srid=True), dtype=object)
    if kind in ("date", "timestamp"):
        unit = "D" if kind == "date" else "s"
        arr = pd.to_datetime(values).to_numpy().astype(f"datetime64[{unit}]")
        out = np.datetime_as_string(arr, unit=unit).astype(object)
        if kind == "timestamp":
            out = out + "+00"
        out[np.isnat(arr)] = NULL
        return pd.Series(out, dtype=object)
    if kind == "int":
        return pd.Series(values.to_numpy().astype(np.int64).astype(str), dtype=object)
    if kind in ("dec1", "dec2"):
        fmt = "%.1f" if kind == "dec1" else "%.2f"
        return pd.Series(np.char.mod(fmt, values.to_numpy(dtype=float)), dtype=object)
    s = pd.Series(values.to_numpy(dtype=object), dtype=object)
    null = s.isna().to_numpy()
    s = s.where(~null, NULL)
    if not null.all() and s[~null].str.contains(r"[\\\t\n\r]", regex=True).any():
        s[~null] = (
            s[~null].str.replace("\\", "\\\\").str.replace("\t", "\\t")
            .str.replace("\n", "\\n").str.replace("\r", "\\r")
        )  # fmt: skip
    return s


def columns(name: str) -> list[str]:
    return [c for c, _ in COLUMNS[name]]


def table_text(
    sample: Sample, name: str, for_hash: bool = False, sensor_ids: dict[str, int] | None = None
) -> str:
    """COPY text of one table. Observations carry sensor codes when hashed and database ids
    (from `sensor_ids`) when loaded."""
    df = sample.tables[name]
    if not len(df):
        return ""
    parts = []
    for col, kind in COLUMNS[name]:
        if name == "observations" and col == "sensor_id":
            codes = df["sensor_code"]
            if for_hash:
                parts.append(pd.Series(codes.to_numpy(), dtype=object))
            else:
                assert sensor_ids is not None
                parts.append(_column(codes.map(sensor_ids), "int"))
            continue
        parts.append(_column(df[col], kind))
    line = parts[0].str.cat(parts[1:], sep="\t") if len(parts) > 1 else parts[0]
    return "\n".join(line.tolist()) + "\n"
