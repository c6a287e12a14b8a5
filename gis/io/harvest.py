"""Harvest: pull a collection from another OGC API - Features server (a district, a pilot
center) into a layer of ours, and keep it up to date on re-runs.

* Pages are followed through their rel="next" links (relative or absolute), whatever the
  server's paging scheme (offset, cursor, token), with a guard against loops.
* Every harvested feature gets a provenance row (migration 0007: source server, collection,
  the source's feature id, a SHA-256 of the content we took, when). A re-run hashes each feature
  again: same hash and the local feature still there - unchanged, not touched; another hash -
  the local feature is updated in place; unknown - added (matched first on the layer's natural
  key, so a harvest into a layer that already holds the feature updates it instead of
  duplicating it). Features that vanished from the source are counted ("missing at source") but
  not deleted: a server that is down or filtered must not wipe a layer.
* The features go through the same checks and writes as a file import (gis.io.imports): the
  catalogue's types and coded values, geometry type and validity, the caller's rights, one
  transaction (all or nothing), one audit row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import numpy as np
import orjson
import psycopg
import pyarrow as pa
import shapely
from psycopg import sql

from gis.io import sourcecrs
from gis.io.imports import write
from gis.io.imports.errors import ImportFileError
from gis.io.imports.geometry import check_geometries
from gis.io.imports.report import ImportReport, Rejection
from gis.io.imports.table import Target, load_target
from gis.io.imports.validate import Column, check_rights, check_rows, map_columns
from gis.rows import scalar
from layers.access import Principal, readable_fields
from layers.model import Layer

PAGE_SIZE = 1000
MAX_PAGES = 100_000
TIMEOUT = httpx.Timeout(60.0, connect=10.0)

Progress = Callable[[int, int | None], None]


class HarvestError(RuntimeError):
    """The source cannot be harvested (unreachable, not OGC API - Features, bad pages)."""


@dataclass
class HarvestReport:
    source: str
    collection: str
    layer: str
    pages: int = 0
    features: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    missing_at_source: int = 0
    rejected_count: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    committed: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.rejected_count == 0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def items_url(url: str, collection: str) -> str:
    """The items URL of COLLECTION on a server given by its landing page (…/ogc), its
    collection, or its items URL."""
    u = url.rstrip("/")
    if u.endswith("/items"):
        return u
    if u.endswith(f"/collections/{collection}"):
        return f"{u}/items"
    return f"{u}/collections/{collection}/items"


def _source_key(url: str) -> str:
    """The server part of provenance: scheme, host and path up to /collections."""
    parts = urlsplit(url)
    path = parts.path.split("/collections/")[0].rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path}"


def fetch(client: httpx.Client, start: str, page_size: int, progress: Progress | None = None
          ) -> tuple[list[dict[str, Any]], int]:
    """Every feature of the collection, following rel=next; (features, pages)."""
    url: str | None = f"{start}{'&' if '?' in start else '?'}limit={page_size}"
    seen: set[str] = set()
    features: list[dict[str, Any]] = []
    pages = 0
    total: int | None = None
    while url:
        if url in seen or pages >= MAX_PAGES:
            raise HarvestError(f"the source's next links loop back to {url}")
        seen.add(url)
        try:
            r = client.get(url, headers={"Accept": "application/geo+json, application/json"})
        except httpx.HTTPError as e:
            raise HarvestError(f"cannot reach {url}: {e}") from None
        if r.status_code != 200:
            detail = r.text[:200].replace("\n", " ")
            raise HarvestError(f"{url} answered HTTP {r.status_code}: {detail}")
        try:
            page = orjson.loads(r.content)
        except orjson.JSONDecodeError:
            raise HarvestError(f"{url} did not answer GeoJSON") from None
        if not isinstance(page, dict) or page.get("type") != "FeatureCollection":
            raise HarvestError(f"{url} is not an OGC API - Features items page (no FeatureCollection)")
        batch = page.get("features") or []
        features += batch
        pages += 1
        if total is None and isinstance(page.get("numberMatched"), int):
            total = page["numberMatched"]
        if progress:
            progress(len(features), total)
        nxt = next((link.get("href") for link in page.get("links") or []
                    if link.get("rel") == "next" and link.get("href")), None)
        url = urljoin(url, nxt) if nxt and batch else None
    return features, pages


def content_hash(feature: dict[str, Any], fields: list[str]) -> str:
    """SHA-256 of what we take from a feature: its geometry and the properties we import."""
    props = feature.get("properties") or {}
    doc = {"g": feature.get("geometry"), "p": {k: props.get(k) for k in fields}}
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _column(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: let the field's converter judge
        return pa.array([None if v is None else v if isinstance(v, str) else orjson.dumps(v).decode()
                         if isinstance(v, dict | list) else str(v) for v in values], pa.string())


def harvest(conn: psycopg.Connection, url: str, collection: str, layer_id: str, who: Principal, *,
            client: httpx.Client | None = None, page_size: int = PAGE_SIZE,
            progress: Progress | None = None, credential: str | None = None,
            headers: dict[str, str] | None = None) -> HarvestReport:
    """Harvest COLLECTION from the OGC API - Features server at URL into LAYER_ID.

    CONN must be in autocommit mode (the harvest is one explicit transaction)."""
    from gis import audit

    layer = check_rights(layer_id, who)
    start = items_url(url, collection)
    source = _source_key(start)
    report = HarvestReport(source, collection, layer.id)
    own = client is None
    client = client or httpx.Client(timeout=TIMEOUT, follow_redirects=True, headers=headers)
    try:
        try:
            features, report.pages = fetch(client, start, page_size, progress)
        except HarvestError as e:
            report.error = str(e)
            return report
    finally:
        if own:
            client.close()
    report.features = len(features)
    try:
        _apply(conn, layer, who, features, source, collection, report)
    except write.Rollback:
        pass
    except (ImportFileError, HarvestError) as e:
        report.error = str(e)
    audit.record(conn, who, "harvest", layer=layer.id, credential=credential,
                 status=200 if report.ok else 422,
                 target={k: v for k, v in report.to_json().items() if k not in ("rejected", "warnings")})
    return report


def _apply(conn: psycopg.Connection, layer: Layer, who: Principal, features: list[dict[str, Any]],
           source: str, collection: str, report: HarvestReport) -> None:
    dummy = ImportReport(layer.id, source)
    writable = {f.name for f in readable_fields(layer, who)}
    keys = sorted({k for f in features for k in (f.get("properties") or {})})
    mapping = map_columns(layer, keys, writable, dummy)
    report.warnings += dummy.warnings
    names = sorted(mapping.values(), key=layer.field_names.index)
    target = load_target(conn, layer)
    missing = [c for c in target.key if c not in names]
    if missing and features:
        raise HarvestError(f"the source's features lack key field(s) {', '.join(missing)}")
    ids: list[str] = []
    for i, f in enumerate(features):
        fid = f.get("id", (f.get("properties") or {}).get("id"))
        if fid is None:
            raise HarvestError(f"feature {i + 1} of the source has no id: cannot track it")
        ids.append(str(fid))
    if len(set(ids)) != len(ids):
        raise HarvestError("the source repeats feature ids: cannot track its features")
    src_cols = list(mapping)
    hashes = [content_hash(f, src_cols) for f in features]
    known = {r[0]: (r[1], r[2]) for r in conn.execute(
        sql.SQL("SELECT p.source_id, p.content_hash, p.local_id FROM harvest_provenance p "
                "JOIN {} t ON t.{} = p.local_id WHERE p.source_url = %s AND p.source_collection = %s "
                "AND p.layer = %s").format(sql.Identifier(layer.table), sql.Identifier(layer.id_column)),
        (source, collection, layer.id))}
    report.missing_at_source = len(set(known) - set(ids))
    todo = [i for i, (fid, h) in enumerate(zip(ids, hashes, strict=True))
            if fid not in known or known[fid][0] != h]
    report.unchanged = len(features) - len(todo)
    if not todo:
        return
    sub = [features[i] for i in todo]
    errors: dict[int, list[str]] = {}
    columns: dict[str, pa.Array] = {}
    for col, fname in mapping.items():
        raw = _column([(f.get("properties") or {}).get(col) for f in sub])
        columns[fname] = Column(layer.field(fname), errors, col).convert(raw)
    geoms = shapely.from_geojson([orjson.dumps(f.get("geometry")).decode() if f.get("geometry")
                                  else '{"type":"Point","coordinates":[]}' for f in sub],
                                 on_invalid="ignore")
    wkb = np.array(shapely.to_wkb(geoms), dtype=object)
    wkb[shapely.is_missing(geoms)] = None
    crs = sourcecrs.resolve("OGC:CRS84", None, "OGC API")
    checked_wkb, repair, invalid = check_geometries(layer, wkb, crs, False, errors)
    for i, reason in invalid.items():
        errors.setdefault(i, []).append(reason)
    check_rows(layer, who, target, names, columns, errors)
    for i in sorted(errors):
        report.rejected_count += 1
        report.rejected.append(Rejection(i + 1, f"{ids[todo[i]]}: {'; '.join(errors[i])}"))
    if errors:
        return
    rownums = np.arange(len(sub))
    with conn.transaction():
        conn.execute("SET LOCAL statement_timeout = 0")
        conn.execute("SELECT set_config('geoioc.user', %s, true), set_config('geoioc.note', %s, true)",
                     (who.user or "harvest", f"harvest {source} {collection}"[:200]))
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(sql.Identifier(layer.table)))
        write.stage(conn, [layer.field(n) for n in names], columns, rownums, checked_wkb, repair,
                    [None] * len(sub))
        conn.execute("ALTER TABLE _geoioc_stage ADD COLUMN source_id text, ADD COLUMN content_hash text, "
                     "ADD COLUMN new_id bigint")
        with conn.cursor() as cur:
            cur.executemany("UPDATE _geoioc_stage SET source_id = %s, content_hash = %s WHERE rownum = %s",
                            [(ids[i], hashes[i], n) for n, i in enumerate(todo)])
        _match(conn, layer, target, names, source, collection)
        conn.execute(sql.SQL(
            "UPDATE _geoioc_stage s SET new_id = nextval(pg_get_serial_sequence(%s, %s)) WHERE NOT EXISTS "
            "(SELECT 1 FROM _geoioc_match m WHERE m.rownum = s.rownum)"), (layer.table, layer.id_column))
        try:
            with conn.transaction():
                added, updated = write.write_rows(conn, target, names, update=True, new_ids=True)
        except psycopg.Error as e:
            if isinstance(e, psycopg.OperationalError):
                raise
            found: dict[int, str] = {}
            write.diagnose(conn, target, names, list(range(len(sub))), found, update=True, new_ids=True)
            if not found:
                raise HarvestError(f"the database refused the harvest: {write.explain(conn, e)}") from None
            for r, reason in sorted(found.items()):
                report.rejected_count += 1
                report.rejected.append(Rejection(r + 1, f"{ids[todo[r]]}: {reason}"))
            raise write.Rollback from None
        matched = scalar(conn.execute("SELECT count(*) FROM _geoioc_match"))
        report.added, report.updated = added, updated
        report.unchanged += matched - updated  # known ids whose change was below a millimetre
        conn.execute(
            "INSERT INTO harvest_provenance AS p (layer, local_id, source_url, source_collection, "
            "source_id, content_hash, harvested_at) SELECT %s, coalesce(m.id, s.new_id), %s, %s, "
            "s.source_id, s.content_hash, %s FROM _geoioc_stage s LEFT JOIN _geoioc_match m USING (rownum) "
            "ON CONFLICT (source_url, source_collection, source_id) DO UPDATE SET layer = EXCLUDED.layer, "
            "local_id = EXCLUDED.local_id, content_hash = EXCLUDED.content_hash, "
            "harvested_at = EXCLUDED.harvested_at",
            (layer.id, source, collection, dt.datetime.now(dt.UTC)))
        report.committed = True


def _match(conn: psycopg.Connection, layer: Layer, target: Target, names: list[str],
           source: str, collection: str) -> None:
    """Staged features -> local ids: by provenance first, then by natural key."""
    conn.execute(sql.SQL(
        "CREATE TEMP TABLE _geoioc_match ON COMMIT DROP AS SELECT s.rownum, p.local_id AS id "
        "FROM _geoioc_stage s JOIN harvest_provenance p ON p.source_url = %s AND "
        "p.source_collection = %s AND p.source_id = s.source_id AND p.layer = %s "
        "JOIN {table} t ON t.{id} = p.local_id").format(
        table=sql.Identifier(layer.table), id=sql.Identifier(layer.id_column)),
        (source, collection, layer.id))
    if target.key:
        conds = [sql.SQL("t.{c} IS NOT DISTINCT FROM {v}" if c not in target.required else "t.{c} = {v}"
                         ).format(c=sql.Identifier(c), v=write.value(target, c)) for c in target.key]
        conn.execute(sql.SQL(
            "INSERT INTO _geoioc_match SELECT DISTINCT ON (s.rownum) s.rownum, t.{id} FROM _geoioc_stage s "
            "JOIN {table} t ON {cond} WHERE NOT EXISTS (SELECT 1 FROM _geoioc_match m "
            "WHERE m.rownum = s.rownum) ORDER BY s.rownum, t.{id}").format(
            id=sql.Identifier(layer.id_column), table=sql.Identifier(layer.table),
            cond=sql.SQL(" AND ").join(conds)))
