"""Search (issue 14): every kind of thing a person types is found, without diacritics, grouped
by kind with the kind's name in Vietnamese and English; the owner search's tiers and paging; the
indexes each search relies on.

The map's search box is /api/search (gis/analysis/search.py), the owner search
/api/parcels/search?owner= (gis/parcels/search.py). Timings are not tested here: bench/search.py.
"""

from __future__ import annotations

import re

import pytest

from gis.analysis.search import fold
from layers.catalogue import LAYERS


def _search(client, q: str, headers: dict[str, str] | None = None) -> dict:
    r = client.get("/api/search", params={"q": q}, headers=headers or {})
    assert r.status_code == 200, r.text
    return r.json()


def _group(body: dict, key: str) -> dict:
    found = [g for g in body["groups"] if g["key"] == key]
    assert found, (key, [g["key"] for g in body["groups"]])
    return found[0]


# --- the map's search box: every kind -----------------------------------------------------------


def test_commune_and_its_pre_2025_name(client, conn) -> None:
    """A merged commune's old name is found as a former unit, with the commune it is now part
    of; a current commune is found among current units; an unchanged commune once (its pre-2025
    row, same code and name, is not shown twice)."""
    old_code, old_name, new_code, new_name = conn.execute(
        "SELECT o.code, o.name, n.code, n.name FROM admin_units o JOIN admin_units n"
        " ON n.level = 'commune' AND n.valid_to IS NULL"
        " AND ST_Covers(n.geom, ST_PointOnSurface(o.geom))"
        " WHERE o.level = 'commune' AND o.valid_to IS NOT NULL"
        " AND NOT EXISTS (SELECT FROM admin_units c WHERE c.valid_to IS NULL AND c.name = o.name)"
        " ORDER BY o.code LIMIT 1").fetchone()
    body = _search(client, fold(old_name))
    former = _group(body, "admin_units:former")
    hit = next(h for h in former["results"] if h["title"]["vi"] == old_name)
    assert hit["properties"]["code"] == old_code and hit["properties"]["current"] is False
    assert hit["properties"]["now_part_of"] == f"{new_name} ({new_code})"
    assert f"nay thuộc {new_name}" in hit["subtitle"]["vi"]
    assert f"now part of {new_name}" in hit["subtitle"]["en"]
    assert former["title"] == {"vi": "Đơn vị hành chính cũ (trước 01/07/2025)",
                               "en": "Former administrative units (before 1 Jul 2025)"}
    assert body["groups"][0]["key"] == "admin_units:former"  # the exact name is the best hit
    # the current commune, typed without its unit type
    body = _search(client, re.sub(r"^(xa|phuong) ", "", fold(new_name)))
    current = _group(body, "admin_units")
    assert current["title"] == {"vi": "Đơn vị hành chính", "en": "Administrative units"}
    assert current["results"][0]["title"]["vi"] == new_name
    # an unchanged commune: one hit, the current one
    same = conn.execute(
        "SELECT n.name FROM admin_units n JOIN admin_units o ON o.code = n.code AND o.name = n.name"
        " AND o.valid_to IS NOT NULL WHERE n.level = 'commune' AND n.valid_to IS NULL"
        " ORDER BY n.code LIMIT 1").fetchone()[0]
    hits = [h for g in _search(client, fold(same))["groups"] for h in g["results"]
            if h["title"]["vi"] == same and h["layer"] == "admin_units"]
    assert len(hits) == 1 and hits[0]["properties"]["current"] is True


def test_tourism_place_facility_and_sensor(client, conn) -> None:
    for table, layer in (("tourism_places", "tourism_places"), ("public_facilities", "public_facilities"),
                         ("sensors", "sensors")):
        fid, name, lon, lat = conn.execute(
            f"SELECT id, name, ST_X(geom), ST_Y(geom) FROM {table}"  # noqa: S608 (constant)
            " WHERE name ~ '[^ -~]' ORDER BY id LIMIT 1").fetchone()
        typed = fold(name)
        assert typed != name.lower()
        group = _group(_search(client, typed), layer)
        title = next(lr.title_vi for lr in LAYERS if lr.id == layer)
        assert group["title"]["vi"] == title and group["layer"] == layer
        hit = group["results"][0]
        assert (hit["id"], hit["title"]["vi"]) == (fid, name)
        assert hit["center"] == pytest.approx([lon, lat], abs=1e-9)
    # a sensor by its code, in lower case
    sid, code = conn.execute("SELECT id, code FROM sensors ORDER BY id DESC LIMIT 1").fetchone()
    assert _group(_search(client, code.lower()), "sensors")["results"][0]["id"] == sid


def test_cameras_for_staff_only(client, conn, keys) -> None:
    cid, name, code = conn.execute("SELECT id, name, code FROM cameras ORDER BY id LIMIT 1").fetchone()
    assert "cameras" not in {g["key"] for g in _search(client, code)["groups"]}
    group = _group(_search(client, code, keys["operator"]), "cameras")
    assert group["results"][0]["id"] == cid and group["title"]["en"] == "Surveillance cameras"
    assert name in {h["title"]["vi"] for h in
                    _search(client, fold(name), keys["operator"])["groups"][0]["results"]}


def test_road_by_name_one_hit_per_street(client, conn) -> None:
    """A road stored in pieces is one hit per commune it is a street of (or per stretch of a
    road through several), spanning all its pieces there: not one hit per piece."""
    name = conn.execute("SELECT name FROM roads WHERE name LIKE 'Đường %%' GROUP BY name"
                        " ORDER BY count(*) DESC, name LIMIT 1").fetchone()[0]
    pieces = {r[0]: r[1] for r in conn.execute(
        "SELECT id, ST_AsText(geom) FROM roads WHERE name = %s", (name,))}
    group = _group(_search(client, fold(name), {}), "roads")
    hits = [h for h in group["results"] if h["title"]["vi"] == name]
    assert hits and len(hits) < len(pieces)
    covered = [i for h in hits for i in h["properties"]["ids"]]
    assert len(covered) == len(set(covered)) and set(covered) <= set(pieces)
    communes = [h["subtitle"]["vi"].split(" · ")[0] for h in hits]
    assert len(communes) == len(set(communes)), communes  # one hit per commune
    for h in hits:
        # the bbox spans the hit's pieces, the centre lies on one of them
        x1, y1, x2, y2 = conn.execute(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM"
            " (SELECT ST_Extent(geom) e FROM roads WHERE id = ANY(%s)) s",
            (h["properties"]["ids"],)).fetchone()
        assert h["bbox"] == pytest.approx([x1, y1, x2, y2], abs=1e-9)
        near = conn.execute(
            "SELECT min(ST_Distance(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))) FROM roads"
            " WHERE id = ANY(%s)", (*h["center"], h["properties"]["ids"])).fetchone()[0]
        assert near < 1e-9
        assert h["properties"]["length_m"] > 0 and h["subtitle"]["vi"].endswith(" km")
    # a national road through several communes: one hit
    through = conn.execute("SELECT name FROM roads WHERE name LIKE 'Quốc lộ %%' ORDER BY name"
                           " LIMIT 1").fetchone()[0]
    hits = [h for h in _group(_search(client, fold(through)), "roads")["results"]
            if h["title"]["vi"] == through]
    assert len(hits) == 1
    n = conn.execute("SELECT count(*) FROM roads WHERE name = %s", (through,)).fetchone()[0]
    assert len(hits[0]["properties"]["ids"]) == n


def test_parcel_numbers_and_coordinates_are_kinds_too(client, conn) -> None:
    sheet, parcel = conn.execute("SELECT sheet_no, parcel_no FROM parcels ORDER BY id LIMIT 1").fetchone()
    body = _search(client, f"{sheet}/{parcel}")
    assert [g["key"] for g in body["groups"]] == ["parcels"]
    assert body["groups"][0]["title"] == {"vi": "Thửa đất địa chính", "en": "Cadastral parcels"}
    body = _search(client, "21.18, 106.07")
    assert [g["key"] for g in body["groups"]] == ["coordinate"]
    assert body["groups"][0]["title"] == {"vi": "Tọa độ", "en": "Coordinates"}


def test_groups_ordered_by_their_best_hit(client, conn) -> None:
    """"chua" names pagodas ("Chùa ...") and streets ("... Công Chúa"): the pagodas first, and
    within a group the names starting with the text before those holding it further in."""
    body = _search(client, "chua")
    keys = [g["key"] for g in body["groups"]]
    assert keys.index("tourism_places") < keys.index("roads")
    places = _group(body, "tourism_places")["results"]
    starts = [fold(h["title"]["vi"]).startswith("chua") for h in places]
    assert starts == sorted(starts, reverse=True) and starts[0]
    # the flat list follows the groups
    assert body["results"][0] == body["groups"][0]["results"][0]


def test_every_search_field_has_a_trigram_index(conn) -> None:
    """The search box compares geoioc_fold(field) LIKE '%...%' in every searchable layer at each
    keystroke: each field needs its trigram index, or the search scans the table."""
    indexes = [r[0] for r in conn.execute(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND indexdef LIKE '%%gin_trgm_ops%%'")]
    missing = [(layer.table, name) for layer in LAYERS for name in layer.search_fields
               if not any(f" ON public.{layer.table} " in d and f"geoioc_fold({name})" in d
                          for d in indexes)]
    assert not missing, missing


# --- owner search: tiers and paging -------------------------------------------------------------


def _pages(client, query: str, headers: dict[str, str], limit: int) -> list[dict]:
    out: list[dict] = []
    offset = 0
    while True:
        r = client.get("/api/parcels/search", params={"owner": query, "limit": limit,
                                                      "offset": offset}, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        out.extend(body["results"])
        if not body["more"]:
            return out
        offset += limit


def _tier(name: str, typed: str) -> int:
    f, words = fold(name), fold(typed).split()
    if f == fold(typed):
        return 0
    have = re.findall(r"\w+", f)
    if all(w in have for w in words):
        in_order = re.search(r"\b" + r"\b.*\b".join(map(re.escape, words)) + r"\b", f)
        return 1 if in_order else 2
    return 3


def _answer(conn, typed: str) -> dict[int, str]:
    """What the owner search must find: the names holding every typed word (LIKE, as before)."""
    return {r[0]: r[1] for r in conn.execute(
        "SELECT id, land_user FROM parcels WHERE geoioc_fold(land_user) LIKE ALL(%s)",
        ([f"%{w}%" for w in fold(typed).split()],))}


def _typed(conn, kind: str) -> str:
    """A query of KIND whose answer spans several tiers (and holds the exact name for a full
    name), in at most 2,000 names: the test must be able to see the order."""
    names = [r[0] for r in conn.execute(
        "SELECT land_user FROM parcels WHERE land_user ~ '^[^ ]+ [^ ]+ [^ ]{3,}$'"
        " AND land_user !~ '^Công ty' GROUP BY land_user ORDER BY count(*) DESC, land_user"
        " LIMIT 300")]
    if kind == "one word":  # a word that is also inside other words: "hai" in "Thái"
        candidates = sorted({w for n in names for w in fold(n).split() if len(w) >= 3})
    elif kind == "two-letter word":  # "ha" of "Nguyễn Thị Hà" inside "Hằng": the pair index's case
        candidates = [r[0] for r in conn.execute(
            "SELECT land_user FROM parcels WHERE land_user_folded ~ '(^| )\\w\\w( |$)'"
            " AND land_user !~ '^Công ty' GROUP BY land_user ORDER BY count(*) DESC, land_user"
            " LIMIT 300")]
    else:
        candidates = [name if kind == "full name" else
                      f"{fold(name).split()[2]} {fold(name).split()[0]}" for name in names]
    for typed in candidates:
        answer = _answer(conn, typed)
        tiers = {_tier(n, typed) for n in answer.values()}
        if len(answer) <= 3000 and len(tiers) >= 2 and (kind != "full name" or 0 in tiers) and (
                kind != "two-letter word" or 3 in tiers):
            return typed
    raise AssertionError(f"no {kind} query in the sample with an answer in several tiers")


@pytest.mark.parametrize("kind", ["full name", "two words reversed", "one word", "two-letter word"])
def test_owner_search_tiers_and_paging(client, conn, keys, kind) -> None:
    """Pages walk the whole answer once: exactly the names holding every typed word (as
    before), the exact name first, then the words whole and in order, whole in any order, then
    inside other words; by parcel key within a tier."""
    typed = _typed(conn, kind)
    expected = _answer(conn, typed)
    got = _pages(client, typed, keys["land_officer"], limit=200)
    ids = [r["id"] for r in got]
    assert len(ids) == len(set(ids)) and set(ids) == set(expected)
    tiers = [_tier(r["land_user"], typed) for r in got]
    assert tiers == sorted(tiers), tiers
    assert len(set(tiers)) >= 2
    if kind in ("full name", "two-letter word"):
        assert tiers[0] == 0
    for t in set(tiers):
        in_tier = [(r["commune_code"], r["sheet_no"], r["parcel_no"], r["old_commune_code"] or "")
                   for r, tt in zip(got, tiers, strict=True) if tt == t]
        assert in_tier == sorted(in_tier)


def test_owner_search_needs_three_letters(client, keys) -> None:
    for typed in ("...", "a-b", "  ab "):
        r = client.get("/api/parcels/search", params={"owner": typed}, headers=keys["land_officer"])
        assert r.status_code == 400 and "owner" in r.text, typed


def test_search_indexes_are_used(conn) -> None:
    """The plans the speed depends on (bench/search.py has the timings): an exact name by its
    B-tree, whole words by the GIN over the words, a walk in key order by the key index alone
    (it carries the folded name), sheet/parcel numbers without a commune by their own index."""
    def plan(q: str, *params: object) -> str:
        conn.execute("SET enable_seqscan = off")  # the sample is small: make the choice visible
        try:
            return "\n".join(r[0] for r in conn.execute("EXPLAIN " + q, params))
        finally:
            conn.execute("RESET enable_seqscan")

    assert "parcels_land_user_fold_idx" in plan(
        "SELECT id FROM parcels t WHERE t.land_user_folded = %s", "nguyen van an")
    assert "parcels_land_user_words_idx" in plan(
        "SELECT id FROM parcels t WHERE geoioc_words(t.land_user_folded) @> %s::text[]", ["van", "an"])
    assert "Index Only Scan using parcels_key_idx" in plan(
        "SELECT t.id, t.land_user_folded FROM parcels t ORDER BY t.commune_code, t.sheet_no,"
        " t.parcel_no, t.old_commune_code NULLS FIRST, t.id LIMIT 10000")
    # A two-letter word inside longer ones ("do" in "doan"): pairs of letters of the doubled name.
    assert "parcels_land_user_pairs_idx" in plan(
        "SELECT id FROM parcels t WHERE regexp_replace(t.land_user_folded, '(.)', '\\1\\1', 'g')"
        " LIKE %s", "%ddoo%")
    assert "parcels_sheet_parcel_idx" in plan(
        "SELECT id FROM parcels t WHERE t.sheet_no = %s AND t.parcel_no = %s", 12, 345)


def test_folded_name_is_stored_as_geoioc_fold_computes_it(conn) -> None:
    """land_user_folded is what the owner search reads: it must be geoioc_fold(land_user) on
    every row, after an edit too."""
    assert conn.execute("SELECT count(*) FROM parcels WHERE land_user_folded IS DISTINCT FROM"
                        " geoioc_fold(land_user)").fetchone()[0] == 0
    with conn.transaction(force_rollback=True):
        pid = conn.execute("UPDATE parcels SET land_user = 'Đặng Thị Ánh' WHERE id ="
                           " (SELECT min(id) FROM parcels) RETURNING id").fetchone()[0]
        assert conn.execute("SELECT land_user_folded FROM parcels WHERE id = %s", (pid,)
                            ).fetchone()[0] == "dang thi anh" == fold("Đặng Thị Ánh")
