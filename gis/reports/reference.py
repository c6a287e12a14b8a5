"""Service categories and agencies: reference data kept as files in sample_data/ and loaded into
their tables (service_categories, agencies) by the sample loader.

An agency entry with "per_commune": true is a template ({commune} and {name} filled in) giving
one agency per current commune that serves only it: each commune's People's Committee.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from gis.reports import queries as q
from gis.settings import PROJECT_ROOT

SERVICES_FILE = PROJECT_ROOT / "sample_data" / "service_categories.json"
AGENCIES_FILE = PROJECT_ROOT / "sample_data" / "agencies.json"
ATTRIBUTE_TYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")


def read_json(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path.name}: expected a list of entries")
    return data


def _check(services: list[dict[str, Any]], agencies: list[dict[str, Any]]) -> None:
    codes = {s["code"] for s in services}
    for s in services:
        for a in s.get("attributes", ()):
            if a["datatype"] not in ATTRIBUTE_TYPES:
                raise ValueError(f"service {s['code']}: attribute {a['code']}: datatype "
                                 f"{a['datatype']!r} is not one of {ATTRIBUTE_TYPES}")
    for a in agencies:
        unknown = set(a["categories"]) - codes
        if unknown:
            raise ValueError(f"agency {a['code']}: unknown service code(s) {sorted(unknown)}")


def load(conn: psycopg.Connection, services_file: Path = SERVICES_FILE,
         agencies_file: Path = AGENCIES_FILE) -> tuple[int, int]:
    """Insert the reference data into empty tables (the caller truncates); returns (services,
    agencies) inserted."""
    services, agencies = read_json(services_file), read_json(agencies_file)
    _check(services, agencies)
    communes = conn.execute(q.CURRENT_COMMUNES).fetchall()
    n_agencies = 0
    with conn.cursor() as cur:
        for a in agencies:
            rows: list[tuple[Any, ...]]
            if a.get("per_commune"):
                rows = [(a["code"].format(commune=code), a["name_vi"].format(name=name),
                         a["name_en"].format(name=name), a.get("email"), a.get("phone"),
                         a["categories"], [code], a.get("webhook_url")) for code, name in communes]
            else:
                rows = [(a["code"], a["name_vi"], a["name_en"], a.get("email"), a.get("phone"),
                         a["categories"], a.get("communes"), a.get("webhook_url"))]
            cur.executemany(q.INSERT_AGENCY, rows)
            n_agencies += len(rows)
        cur.executemany(q.INSERT_SERVICE, [
            {**{k: s.get(k, "") for k in ("description_vi", "description_en")}, **s,
             "keywords": s.get("keywords", []), "attributes": Jsonb(s.get("attributes", []))}
            for s in services])
    return len(services), n_agencies


def services(conn: psycopg.Connection, code: str | None = None) -> list[dict[str, Any]]:
    """The active service categories (one when CODE), with their lead agency's names."""
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(q.SERVICES, {"code": code}).fetchall())
