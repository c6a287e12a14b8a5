"""Canonical text of the sample tables: PostgreSQL COPY text format, built column-wise.

The same text is hashed (data_hash) and streamed to COPY, so what is loaded is exactly what was
hashed. Geometries are hex EWKB with SRID 4326; floats have a fixed number of decimals, so the
text is identical across platforms for the same seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd
import shapely

from gis.sample.common import STORAGE_SRID
from layers import LAYERS
from layers.model import Field, Layer

NULL = r"\N"

# How a catalogue field type is written; floats are "dec<decimals>" (see _field_kind).
_KINDS = {"int": "int", "str": "text", "str[]": "text", "date": "date", "datetime": "timestamp"}


def _field_kind(layer: Layer, f: Field) -> str:
    """The COPY kind of a catalogue field: the catalogue's decimals fix a float's text, so the
    hash is the same on every platform (a float without decimals would not be)."""
    if f.type == "float":
        if f.decimals is None:
            raise ValueError(f"layer {layer.id!r}: float field {f.name!r} needs decimals= to be sampled")
        return f"dec{f.decimals}"
    if f.type not in _KINDS:
        raise ValueError(f"layer {layer.id!r}: field {f.name!r} of type {f.type} cannot be sampled")
    return _KINDS[f.type]


def layer_columns(layer: Layer) -> tuple[tuple[str, str], ...]:
    """The sample columns of a layer's table, from the catalogue: its fields in catalogue order
    except those the database maintains (server_managed), then the extra geometries, then the
    geometry. A new layer gets its sample columns from its definition, nowhere else."""
    fields = tuple((f.name, _field_kind(layer, f)) for f in layer.fields if not f.server_managed)
    geometries = tuple((g, "geom") for g in (*layer.extra_geometry_columns, layer.geometry_column))
    return fields + geometries


# table: (column, kind); kinds say how a value is written. Layers' tables follow the catalogue;
# tables that are not layers list their columns here.
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    **{layer.table: layer_columns(layer) for layer in LAYERS},
    # sensor_id: the sensor's code when hashed, its database id when loaded (table_text).
    "observations": (("sensor_id", "int"), ("observed_at", "timestamp"), ("value", "dec2")),
}
# Later versions of the parcels with a legal history (gis.sample.history): which parcel (its
# row in the parcels table), in which order, why, and the parcel's own columns.
COLUMNS["parcel_versions"] = (("parcel", "int"), ("step", "int"), ("note", "text"),
                              *COLUMNS["parcels"])
# Indicator values (gis.sample.indicators): the unit by code and start of validity (its id is
# the database's), the value already written with its indicator's decimals.
COLUMNS["indicator_values"] = (("indicator_code", "text"), ("unit_code", "text"),
                               ("unit_valid_from", "date"), ("period", "text"), ("value", "text"))


def _column(values: pd.Series, kind: str) -> pd.Series:
    """One column as COPY text, vectorised."""
    if kind == "geom":
        g = shapely.set_srid(np.asarray(values, dtype=object), STORAGE_SRID)
        return pd.Series(shapely.to_wkb(g, hex=True, include_srid=True), dtype=object)
    if kind in ("date", "timestamp"):
        unit: Literal["D", "s"] = "D" if kind == "date" else "s"
        arr = pd.to_datetime(values).to_numpy().astype(f"datetime64[{unit}]")
        out = np.datetime_as_string(arr, unit=unit).astype(object)
        if kind == "timestamp":
            out = out + "+00"
        out[np.isnat(arr)] = NULL
        return pd.Series(out, dtype=object)
    if kind == "int":
        null = pd.isna(values).to_numpy()
        if not null.any():
            return pd.Series(values.to_numpy().astype(np.int64).astype(str), dtype=object)
        ints = np.where(null, 0, values.to_numpy(dtype=float, na_value=0.0)).astype(np.int64)
        out = ints.astype(str).astype(object)
        out[null] = NULL
        return pd.Series(out, dtype=object)
    if kind.startswith("dec"):
        fmt = f"%.{int(kind[3:])}f"
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
    """The columns COPY fills, in the order of table_text's fields."""
    return [c for c, _ in COLUMNS[name]]


def table_text(
    tables: Mapping[str, pd.DataFrame], name: str, for_hash: bool = False,
    sensor_ids: dict[str, int] | None = None,
) -> str:
    """COPY text of one table of a sample's `tables`. Observations carry sensor codes when hashed
    and database ids (from `sensor_ids`) when loaded.

    It takes the tables, not the Sample, so that serialize does not import assemble (which
    imports serialize to hash)."""
    df = tables[name]
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
