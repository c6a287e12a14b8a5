"""Search at 800,000 parcels: the land user's name folded once and stored, indexed by whole
word and exact name; parcel numbers without a commune; the map search box's fields.

* `parcels.land_user_folded`, a stored generated column = geoioc_fold(land_user). A search
  compares names folded (accents and case: migration 0006), and geoioc_fold() is an SQL
  function that PostgreSQL cannot inline (its body calls unaccent, which is only STABLE): each
  call costs microseconds, up to 15 times a LIKE on stored text. An index on the expression
  avoids it for the index lookup only; every row the search then filters, rechecks or ranks
  called it again, 2 or 3 times (the 18,000 company names of "cong ty" took 1.5 s on the
  shared test machine). Stored, the fold is paid once per write. Not a catalogue field: nothing
  serves it (the catalogue's fields are what the API, tiles and exports read), and it is as
  personal as the name itself.
* `geoioc_words(folded)`: the words of a folded text, split at anything not a letter or digit
  (Python's re.findall(r"\\w+") on the typed text), an inlinable IMMUTABLE SQL function over
  built-ins. A GIN index over the land user's words answers "names holding these whole words"
  from the posting lists of the words themselves: "nguyen van an" intersects the list of the
  rare "an" with those of "nguyen" and "van", exactly (no recheck), where trigrams have nothing
  for a two-letter word.
* B-tree (land_user_folded, key): exact names, already in key order.
* The key index (migration 0006) again with the rest of the order (old commune code, id) and
  the folded name carried along (INCLUDE): a search that walks parcels in key order testing
  names reads the index only, never the table.
* Trigram index over land_user_folded (replacing the one over geoioc_fold(land_user)): names
  holding the typed text inside longer words.
* Trigram index over land_user_folded with every character doubled
  (`regexp_replace(land_user_folded, '(.)', '\\1\\1', 'g')`): its trigrams are the pairs of
  letters of the name, so a two-letter word typed inside longer ones ("do", "an" of "do duc
  an") has an index to look up; the plain trigram index has nothing for it, and the names
  holding the other words were rechecked row by row (43,000 heap rows for "do duc an" at
  800,000 parcels, 150-500 ms; 23 ms with this index). Added after this migration had landed,
  hence IF NOT EXISTS: a database already at 0014 gets it with the same statement by hand
  (the search gives the same rows without it, only slower).
* (sheet_no, parcel_no): the map's search box finds "12/345" in every commune; the key indexes
  lead with the commune, so without this one it read a whole key index (PostgreSQL 15 has no
  skip scan).
* Trigram indexes over geoioc_fold(field) for the map's search fields (Layer.search_fields)
  that had none: the search box compares folded text with LIKE '%...%' in every layer at each
  keystroke; roads alone took ~16 ms per search without one (a scan calling geoioc_fold per row).

Adding the column rewrites the parcels table once (about a minute at 800,000 parcels, under an
exclusive lock); nothing is dropped that a downgrade does not restore.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from alembic import op

revision = "0014"
down_revision = "0013"
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
    -- STRICT over a body that is not (array_remove) keeps PostgreSQL from inlining it, so that
    -- its COST counts: splitting takes ~10 us a row, and the planner must rather use the GIN
    -- index below than split every name of a scan.
    CREATE FUNCTION geoioc_words(folded text) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE COST 1000 AS
    $$ SELECT array_remove(regexp_split_to_array(folded, '\W+'), '') $$;

    -- Replaced, so dropped before the rewrite that adding the column does (it would rebuild
    -- them for nothing).
    DROP INDEX parcels_land_user_trgm_idx;
    DROP INDEX parcels_key_idx;
    ALTER TABLE parcels ADD COLUMN land_user_folded text
        GENERATED ALWAYS AS (geoioc_fold(land_user)) STORED;
    CREATE INDEX parcels_land_user_trgm_idx ON parcels USING gin (land_user_folded gin_trgm_ops);
    CREATE INDEX parcels_land_user_words_idx ON parcels USING gin (geoioc_words(land_user_folded));
    CREATE INDEX parcels_land_user_fold_idx ON parcels
        (land_user_folded, commune_code, sheet_no, parcel_no);
    CREATE INDEX parcels_sheet_parcel_idx ON parcels (sheet_no, parcel_no);
    CREATE INDEX parcels_key_idx ON parcels
        (commune_code, sheet_no, parcel_no, old_commune_code NULLS FIRST, id)
        INCLUDE (land_user_folded);
    CREATE INDEX IF NOT EXISTS parcels_land_user_pairs_idx ON parcels
        USING gin (regexp_replace(land_user_folded, '(.)', '\1\1', 'g') gin_trgm_ops);
    """)
    for table, column in TRIGRAM:
        op.execute(f"CREATE INDEX {table}_{column}_trgm_idx ON {table}"
                   f" USING gin (geoioc_fold({column}) gin_trgm_ops)")


def downgrade() -> None:
    for table, column in TRIGRAM:
        op.execute(f"DROP INDEX IF EXISTS {table}_{column}_trgm_idx")
    op.execute("""
    DROP INDEX IF EXISTS parcels_sheet_parcel_idx;
    DROP INDEX IF EXISTS parcels_key_idx;
    CREATE INDEX parcels_key_idx ON parcels (commune_code, sheet_no, parcel_no);
    DROP INDEX IF EXISTS parcels_land_user_pairs_idx;
    DROP INDEX IF EXISTS parcels_land_user_fold_idx;
    DROP INDEX IF EXISTS parcels_land_user_words_idx;
    DROP INDEX IF EXISTS parcels_land_user_trgm_idx;
    ALTER TABLE parcels DROP COLUMN IF EXISTS land_user_folded;
    DROP FUNCTION IF EXISTS geoioc_words(text);
    CREATE INDEX IF NOT EXISTS parcels_land_user_trgm_idx ON parcels
        USING gin (geoioc_fold(land_user) gin_trgm_ops);
    """)
