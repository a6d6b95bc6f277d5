"""Search SQL on a real SQLite: every shape walks an index and is bounded by its time range
(10 million reads), and exact, wildcard and fuzzy searches find what they should."""

from __future__ import annotations

import asyncio
import random
import sqlite3

import pytest

from contract.plates import fold
from server.store import queries_search as qs
from server.store.db import Database
from server.store.migrations import migrate

DAY = 86_400_000
NOW = 1_800_000_000_000

# (criteria, the index it must walk, whether the time range is an index constraint)
SHAPES = {
    "exact": (qs.Criteria("7ABC123", False, 1, 2), "reads_plate_time", True),
    "exact + camera + colour": (qs.Criteria("7ABC123", False, 1, 2, 3, "red"), "reads_plate_time", True),
    "fuzzy (folded, one edit)": (qs.Criteria("7ABC123", True, 1, 2), "reads_folded_time", True),
    "wildcard prefix": (qs.Criteria("7AB*", False, 1, 2), "reads_plate_time", False),
    "wildcard prefix, fuzzy": (qs.Criteria("7AB*", True, 1, 2), "reads_folded_time", False),
    "wildcard infix": (qs.Criteria("*BC12?", False, 1, 2, 4), "reads_time_folded", True),
    "wildcard one-letter prefix": (qs.Criteria("7?BC123", True, 1, 2), "reads_time_folded", True),
    "camera, no plate": (qs.Criteria("", False, 1, 2, 3, "red"), "reads_camera_time", True),
}


def plan(path, sql: str, params) -> str:
    with sqlite3.connect(path) as conn:
        return " | ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    path = tmp_path_factory.mktemp("plans") / "plan.db"
    migrate(path)
    return path


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_search_uses_an_index_bounded_by_time(schema, name):
    criteria, index, time_in_index = SHAPES[name]
    found = plan(schema, *qs.search_sql(criteria, 201))
    assert f"SEARCH reads USING INDEX {index} (" in found, found
    assert "SCAN" not in found, found
    if time_in_index:
        assert "captured_at>? AND captured_at<?" in found, found
    else:  # a prefix is a range on the plate; the time range is checked inside the same index
        assert "plate_norm>? AND plate_norm<?" in found or "plate_folded>? AND plate_folded<?" in found, found


@pytest.mark.parametrize("sql, params, index", [
    (qs.HISTORY_SQL, ("7A8C123", 1, 501), "reads_folded_time (plate_folded=? AND captured_at>?)"),
    (qs.HISTORY_AFTER_SQL, ("7A8C123", 1, 2, 2, 7, 501),  # a further page: the same seek, capped above
     "reads_folded_time (plate_folded=? AND captured_at>? AND captured_at<?)"),
    (qs.RECENT_SQL, (1, 50), "reads_camera_time (camera_id=?)"),
])
def test_history_and_recent_reads_use_indexes(schema, sql, params, index):
    found = plan(schema, sql, params)
    assert f"SEARCH reads USING INDEX {index}" in found and "TEMP B-TREE" not in found, found


def test_plate_pattern_normalises_like_plates():
    assert qs.plate_pattern(" 7ab-c 1*2?? ") == "7ABC1*2??"
    assert qs.plate_pattern("**A***B") == "*A*B"
    assert qs.plate_pattern("[A-Z]") == "AZ"  # GLOB's classes are not ours to offer


def test_one_edit_variants_cover_substitution_insertion_deletion():
    variants = qs.one_edit_variants(fold("7ABC12"))
    assert {fold("7ABC12"), fold("7XBC12"), fold("7ABC125"), fold("ABC12"), fold("7AC12")} <= variants
    assert fold("7XYC12") not in variants  # two edits away
    assert len(variants) < 500  # one seek each


READS = [  # plate, days ago, camera, colour
    ("7ABC123", 1, 1, "red"), ("7ABC123", 20, 2, "red"), ("7A8C123", 2, 1, "blue"), ("7ABC128", 3, 2, "red"),
    ("7XBC123", 1, 1, "white"), ("9ZZZ999", 1, 1, "red"), ("7ABC1234", 4, 2, None), ("ABC123", 5, 1, None),
]


def make_reads_db(path, reads) -> None:
    """A migrated database with two cameras and `reads` as (plate, captured_at, camera id, colour)."""
    migrate(path)
    with sqlite3.connect(path) as conn:
        conn.executemany("INSERT INTO cameras (id, name, token_hash, created_at) VALUES (?, ?, ?, 0)",
                         [(1, "main-st", "h1"), (2, "north-rd", "h2")])
        conn.executemany(
            "INSERT INTO reads (uuid, camera_id, captured_at, received_at, plate, plate_norm, plate_folded, "
            "confidence, color) VALUES (?, ?, ?, ?, ?, ?, ?, 0.9, ?)",
            [(f"u{i}", cam, at, NOW, plate, plate, fold(plate), colour)
             for i, (plate, at, cam, colour) in enumerate(reads)])


@pytest.fixture(scope="module")
def reads_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("search") / "search.db"
    make_reads_db(path, [(plate, NOW - days * DAY, cam, colour) for plate, days, cam, colour in READS])
    return path


def found(path, pattern, fuzzy=False, days=7, **extra) -> list[str]:
    async def go():
        async with Database(path) as db:
            rows, _ = await qs.search_reads(db.reader, qs.Criteria(pattern, fuzzy, NOW - days * DAY, NOW, **extra))
            return [row["plate_norm"] for row in rows]
    return asyncio.run(go())


def test_exact_search_within_time_range(reads_db):
    assert found(reads_db, "7ABC123") == ["7ABC123"]
    assert found(reads_db, "7ABC123", days=30) == ["7ABC123", "7ABC123"]


def test_wildcards(reads_db):
    assert found(reads_db, "7ABC12?") == ["7ABC123", "7ABC128"]  # newest first
    assert sorted(found(reads_db, "*BC12*")) == ["7ABC123", "7ABC1234", "7ABC128", "7XBC123", "ABC123"]
    assert found(reads_db, "7A?C123") == ["7ABC123", "7A8C123"]
    assert found(reads_db, "7AB*") == ["7ABC123", "7ABC128", "7ABC1234"]


def test_fuzzy_finds_lookalikes_and_one_edit(reads_db):
    assert sorted(found(reads_db, "7ABC123", fuzzy=True)) == ["7A8C123", "7ABC123", "7ABC1234", "7ABC128",
                                                                 "7XBC123", "ABC123"]
    assert sorted(found(reads_db, "7AB*", fuzzy=True)) == ["7A8C123", "7ABC123", "7ABC1234", "7ABC128"]


def test_camera_and_colour_narrow(reads_db):
    assert found(reads_db, "7ABC123", fuzzy=True, camera_id=1, colour="red") == ["7ABC123"]
    assert found(reads_db, "", camera_id=2, days=30) == ["7ABC128", "7ABC1234", "7ABC123"]


def test_limit_says_when_truncated(reads_db):
    async def go():
        async with Database(reads_db) as db:
            return await qs.search_reads(db.reader, qs.Criteria("", False, 0, NOW, 1), limit=2)
    rows, truncated = asyncio.run(go())
    assert len(rows) == 2 and truncated


# --- paging: a further page continues after the last read shown (keyset on captured_at, id) ------

@pytest.mark.parametrize("name", sorted(SHAPES))
def test_a_further_page_walks_the_same_index_within_the_same_bounds(schema, name):
    criteria, _, _ = SHAPES[name]
    assert plan(schema, *qs.search_sql(criteria, 201, after=(2, 7))) == plan(schema, *qs.search_sql(criteria, 201))


PAGED = {  # every kind of search, over reads where several share a millisecond
    "exact": qs.Criteria("7ABC123", False, 0, NOW),
    "exact + camera + colour": qs.Criteria("7ABC123", False, 0, NOW, 1, "red"),
    "fuzzy": qs.Criteria("7ABC123", True, 0, NOW),
    "wildcard prefix": qs.Criteria("7AB*", False, 0, NOW),
    "wildcard prefix, fuzzy": qs.Criteria("7AB*", True, 0, NOW),
    "wildcard infix": qs.Criteria("*BC12?", False, 0, NOW),
    "wildcard one-letter prefix, fuzzy": qs.Criteria("7?BC123", True, 0, NOW),
    "camera + colour, no plate": qs.Criteria("", False, 0, NOW, 2, "red"),
    "time range": qs.Criteria("7ABC123", False, NOW - 10 * DAY, NOW - 2 * DAY),
}


@pytest.fixture(scope="module")
def paging_db(tmp_path_factory):
    """600 reads, 24 to a millisecond (four of each plate), inserted in shuffled order so that ids
    do not follow time."""
    plates = ["7ABC123", "7A8C123", "7ABC128", "7XBC123", "ABC123", "9ZZZ999"]
    reads = [(plates[i % 6], NOW - (i // 24) * DAY // 2, 1 + (i // 6) % 2, ("red", "blue", "red")[(i // 24) % 3])
             for i in range(600)]
    random.Random(5).shuffle(reads)
    path = tmp_path_factory.mktemp("paging") / "paging.db"
    make_reads_db(path, reads)
    return path


@pytest.mark.parametrize("name", sorted(PAGED))
def test_pages_hold_every_match_once_newest_first(paging_db, name):
    criteria, size = PAGED[name], 7

    async def go():
        async with Database(paging_db) as db:
            everything, more = await qs.search_reads(db.reader, criteria, limit=10_000)
            assert not more
            pages, after = [], None
            while True:
                rows, more = await qs.search_reads(db.reader, criteria, limit=size, after=after)
                pages.append([(row["captured_at"], row["id"]) for row in rows])
                if not more:
                    return [(row["captured_at"], row["id"]) for row in everything], pages
                after = pages[-1][-1]
    everything, pages = asyncio.run(go())
    assert len(everything) > 3 * size  # several pages
    assert everything == sorted(everything, reverse=True) and len(set(everything)) == len(everything)
    assert [key for page in pages for key in page] == everything  # each once, in order, nothing skipped
    assert all(len(page) == size for page in pages[:-1]) and pages[-1]
    assert any(page[-1][0] == later[0][0] for page, later in zip(pages, pages[1:]))  # a tie split by a page


@pytest.mark.parametrize("since", [0, NOW - 5 * DAY])
def test_history_pages_hold_every_sighting_once_newest_first(paging_db, since):
    size = 7

    async def go():
        async with Database(paging_db) as db:
            everything, more = await qs.plate_history(db.reader, "7ABC123", since, limit=10_000)
            assert not more
            pages, after = [], None
            while True:
                rows, more = await qs.plate_history(db.reader, "7ABC123", since, limit=size, after=after)
                pages.append([(row["captured_at"], row["id"], row["plate_norm"]) for row in rows])
                if not more:
                    return [(row["captured_at"], row["id"], row["plate_norm"]) for row in everything], pages
                after = pages[-1][-1][:2]
    everything, pages = asyncio.run(go())
    assert len(everything) > 3 * size and {plate for _, _, plate in everything} == {"7ABC123", "7A8C123"}
    assert min(at for at, _, _ in everything) >= since  # the window holds on every page
    assert everything == sorted(everything, reverse=True) and len({key[:2] for key in everything}) == len(everything)
    assert [key for page in pages for key in page] == everything  # each once, in order, nothing skipped
    assert all(len(page) == size for page in pages[:-1]) and pages[-1]
    assert any(page[-1][0] == later[0][0] for page, later in zip(pages, pages[1:]))  # a tie split by a page
