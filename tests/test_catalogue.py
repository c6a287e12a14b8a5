"""The layer catalogue is the one source of truth: it must match the schema exactly."""

from __future__ import annotations

import re

import pytest

from gis.analysis.aggregates import PROJECTED_COLUMN
from layers import LAYERS, Access, get_layer
from layers.catalogue import SPATIAL_TABLES_NOT_LAYERS

PG_TYPES = {
    "int": {"integer", "bigint", "smallint"},
    "float": {"double precision", "numeric", "real"},
    "str": {"text", "character varying"},
    "date": {"date"},
    "datetime": {"timestamp with time zone"},
    "bool": {"boolean"},
    "str[]": {"ARRAY"},
}


def test_every_spatial_table_has_exactly_one_definition(conn) -> None:
    spatial = {r[0] for r in conn.execute(
        "SELECT DISTINCT f_table_name FROM geometry_columns g JOIN pg_class c ON c.relname = "
        "g.f_table_name AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
        " WHERE f_table_schema = 'public'")}  # a partitioned table (incidents), not its months
    # Read-only layers are views over other tables (the indicators' values with their units).
    defined = [layer.table for layer in LAYERS if not layer.read_only]
    history = {layer.history_table for layer in LAYERS if layer.history_table}
    assert sorted(defined) == sorted(spatial - history - set(SPATIAL_TABLES_NOT_LAYERS))
    assert set(SPATIAL_TABLES_NOT_LAYERS) <= spatial
    assert history <= spatial
    assert len(set(layer.id for layer in LAYERS)) == len(LAYERS)


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.id)
def test_definition_matches_table(conn, layer) -> None:
    # Generated columns are derived for the database's own use (parcels.land_user_folded, the
    # name folded once for searches): no field, nothing serves or imports them.
    cols = dict(conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = %s AND is_generated = 'NEVER'",
        (layer.table,)).fetchall())
    geoms = dict(conn.execute(
        "SELECT f_geometry_column, type FROM geometry_columns WHERE f_table_name = %s",
        (layer.table,)).fetchall())
    # Likewise the incidents' stored projection (migration 0027, generated, for the analytics).
    if layer.table == "incidents":
        geoms.pop(PROJECTED_COLUMN, None)
    assert geoms[layer.geometry_column].lower() == layer.geometry_type.lower()
    assert set(geoms) == {layer.geometry_column, *layer.extra_geometry_columns}
    expected = {layer.id_column, *geoms, *layer.field_names, *(layer.row_access or ())}
    assert set(cols) == expected, f"columns not in the catalogue: {set(cols) - expected}, " \
        f"fields without a column: {expected - set(cols)}"
    for f in layer.fields:
        assert cols[f.name] in PG_TYPES[f.type], (f.name, cols[f.name], f.type)
    for col in (layer.time_column, layer.time_end_column):
        if col:
            assert layer.field(col).type in ("date", "datetime")


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.id)
def test_export_names_fit_shapefiles(layer) -> None:
    names = [f.export_name for f in layer.fields]
    assert len(set(names)) == len(names), "export names must be unique within a layer"
    for n in names:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]{0,9}", n), n


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.id)
def test_definition_is_complete(layer) -> None:
    assert layer.title_vi and layer.title_en and layer.description_vi and layer.description_en
    assert 0 <= layer.min_zoom <= layer.max_zoom <= 22
    if layer.access is Access.RESTRICTED:
        assert layer.roles, "a restricted layer names the roles that may read it"
    for f in layer.fields:
        assert f.title_vi and f.title_en
        if f.access is Access.RESTRICTED:
            assert f.roles


def test_coded_values_match_check_constraints(conn) -> None:
    """Labels in the catalogue cover every value the schema allows (legends, filters)."""
    for layer in LAYERS:
        if layer.read_only:  # a view: its base tables hold the constraints
            continue
        for f in layer.fields:
            if not f.values:
                continue
            defs = " ".join(r[0] for r in conn.execute(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype = 'c'", (layer.table,)))
            for value in f.values:
                if f.type == "str":
                    assert f"'{value}'" in defs, (layer.id, f.name, value)


def test_get_layer_unknown() -> None:
    with pytest.raises(KeyError, match="unknown layer"):
        get_layer("nope")


@pytest.mark.parametrize("layer", [la for la in LAYERS if la.overview], ids=lambda la: la.id)
def test_overview_views_exist_for_layers_that_declare_them(conn, layer) -> None:
    from layers.overviews import overview_view

    cols = {r[0] for r in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0",
        (overview_view(layer.table),))}
    assert cols == {"id", "geom", *layer.overview.group_by}


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.id)
def test_per_layer_policy_names_real_fields(layer) -> None:
    """Natural key, search fields, identify filter and the style's field are fields of the
    layer; the panel knows the layer's domain; import roles are roles that exist."""
    from layers.catalogue import DOMAINS

    names = set(layer.field_names)
    assert set(layer.natural_key) <= names
    assert set(layer.search_fields) <= names
    assert all(layer.field(n).type in ("str", "int") for n in layer.search_fields)
    if layer.identify_filter:
        assert layer.identify and layer.identify_filter[0] in names
        assert layer.identify_filter[1] in layer.field(layer.identify_filter[0]).values
    if layer.style.by:
        assert layer.style.by in names
        assert set(layer.style.palette) <= set(layer.field(layer.style.by).values) or not \
            layer.field(layer.style.by).values
    assert layer.domain in DOMAINS
    from gis.auth.roles import ROLES

    assert set(layer.import_roles) <= set(ROLES)


def test_natural_keys_are_unique_in_the_database(conn) -> None:
    """A single-column natural key is UNIQUE in its table: the import matches on it."""
    for layer in LAYERS:
        if len(layer.natural_key) != 1:
            continue
        unique = conn.execute(
            "SELECT count(*) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
            " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisunique"
            " AND i.indnatts = 1 AND a.attname = %s", (layer.table, layer.natural_key[0])
        ).fetchone()[0]
        assert unique, (layer.id, layer.natural_key)


def test_one_gazetteer_and_a_label_for_every_layer() -> None:
    """The map's era switch and place labels need exactly one layer of units with eras; every
    layer names the field its features are called by."""
    from layers.catalogue import gazetteer, label_field

    units = gazetteer()
    assert units is not None and units.id == "admin_units"
    assert sum(1 for la in LAYERS if la.time_end_column and la.identify) == 1
    for layer in LAYERS:
        assert label_field(layer) in layer.field_names, layer.id


@pytest.mark.parametrize("layer", [layer for layer in LAYERS if layer.versions],
                         ids=lambda layer: layer.id)
def test_legal_versions_are_declared_completely(conn, layer) -> None:
    """A layer whose imports may carry dated versions keeps them in a history table with the same
    columns, dates them with a date field, and names a feature across versions by fields of its
    natural key (a history import matches on them)."""
    v = layer.versions
    assert layer.history_table and layer.natural_key
    assert layer.field(v.valid_from).type == "date" and layer.field(v.decision).type == "str"
    assert not layer.field(v.valid_from).server_managed
    members = {f for m in v.identity for f in (m if isinstance(m, tuple) else (m,))}
    assert members <= set(layer.natural_key)
    history = {r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public'"
        " AND table_name = %s", (layer.history_table,))}
    assert {v.valid_from, v.decision, v.history_id, *members} <= history
