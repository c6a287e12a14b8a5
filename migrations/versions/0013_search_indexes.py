"""Search indexes: owner names by whole word and exact name, parcel numbers without a commune,
and the map search box's fields of every searchable layer.

* `geoioc_words(t)`: the accent- and case-folded words of a text (`geoioc_fold`, split at
  anything that is not a letter or digit), IMMUTABLE like geoioc_fold so that it can be
  indexed. A GIN index over the land user's words answers "names containing these whole
  words" from the posting lists of the words themselves: "nguyen van an" intersects the list of
  the rare "an" with those of the common "nguyen" and "van", where the trigram index (migration
  0006) has no trigram for "an" and must recheck every name holding "nguyen" and "van", a
  third of the province, each recheck calling unaccent through geoioc_fold.
* A B-tree over (geoioc_fold(land_user), key): exact names, already in key order.
* (sheet_no, parcel_no): the map's search box finds "12/345" in every commune; the key indexes
  lead with the commune, so without this one it read a whole key index (PostgreSQL 15 has no
  skip scan).
* Trigram indexes over geoioc_fold(field) for the search fields (Layer.search_fields) that had
  none: the search box compares folded text with LIKE '%...%' in every layer at each keystroke;
  roads alone took ~16 ms per search without one (a seq scan calling geoioc_fold per row).

Additive only: indexes and a function, no table is rewritten.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# (table, column) of search fields without a trigram index yet (public_facilities.name has one
# from migration 0012). tests/test_search.py checks that every Layer.search_fields has one.
TRIGRAM = [
    ("roads", "name"),
    ("tourism_places", "name"), ("tourism_places", "name_en"), ("tourism_places", "address"),
    ("public_facilities", "address"), ("public_facilities", "code"),
    ("cameras", "code"), ("cameras", "name"),
    ("sensors", "code"), ("sensors", "name"),
    ("admin_units", "name"),
]  # fmt: skip


def upgrade() -> None:
    op.execute(r"""
    -- Split at non-word characters as Python's re.findall(r"\w+") does on the typed text;
    -- empty strings (a leading or trailing separator) removed. Not STRICT (array_remove is not):
    -- a strict SQL function whose body is not strict is not inlined, and an inlined one costs a
    -- tenth of a call through the SQL function executor (NULL in still gives NULL out).
    CREATE FUNCTION geoioc_words(t text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
    $$ SELECT array_remove(regexp_split_to_array(geoioc_fold(t), '\W+'), '') $$;

    CREATE INDEX parcels_land_user_words_idx ON parcels USING gin (geoioc_words(land_user));
    CREATE INDEX parcels_land_user_fold_idx ON parcels
        (geoioc_fold(land_user), commune_code, sheet_no, parcel_no);
    CREATE INDEX parcels_sheet_parcel_idx ON parcels (sheet_no, parcel_no);
    """)
    for table, column in TRIGRAM:
        op.execute(f"CREATE INDEX {table}_{column}_trgm_idx ON {table}"
                   f" USING gin (geoioc_fold({column}) gin_trgm_ops)")


def downgrade() -> None:
    for table, column in TRIGRAM:
        op.execute(f"DROP INDEX IF EXISTS {table}_{column}_trgm_idx")
    op.execute("""
    DROP INDEX IF EXISTS parcels_sheet_parcel_idx;
    DROP INDEX IF EXISTS parcels_land_user_fold_idx;
    DROP INDEX IF EXISTS parcels_land_user_words_idx;
    DROP FUNCTION IF EXISTS geoioc_words(text);
    """)
