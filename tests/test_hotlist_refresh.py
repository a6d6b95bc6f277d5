"""Replacing a big hot list while cameras post reads: no empty list by mistake (web), no SQL
statement that grows with the file, short write transactions, and matching that sees the old list
or the new one, never a mix."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from contextlib import closing

import pytest

from server.hotlists import import_list, parse_csv
from server.store.db import Database
from tests.conftest import Department, LiveServer, make_settings, run_cli
from tests.test_web_admin import add_user, db_rows, web_client

# The most hot-list rows one import transaction may add or delete (hotlists.BATCH_ROWS): at a
# few microseconds a row that keeps each transaction near 10 ms, so a camera's read never waits long.
MOST_ROWS_PER_TRANSACTION = 1000


def csv_of(plates, reason="stolen") -> str:
    return "plate,reason\n" + "".join(f"{p},{reason}\n" for p in plates)


def upload(client, list_id: int, text: str, **fields):
    return client.post(f"/hotlists/{list_id}/import", data=fields, files={"file": ("feed.csv", text, "text/csv")})


def test_web_import_refuses_to_empty_a_list_unless_forced(dept, tmp_path):
    add_user(dept, "sam", "supervisor")
    dept.hotlist(tmp_path, "state-feed", csv_of(f"P{n:04d}" for n in range(100)))
    [(list_id,)] = db_rows(dept, "SELECT id FROM hotlists")
    with closing(web_client(dept, "sam", "long enough pw")) as client:
        refused = upload(client, list_id, "plate,reason\n")
        assert refused.status_code == 422
        assert "would remove all 100 entries" in refused.text and "Tick “Replace even so”" in refused.text
        all_bad = upload(client, list_id, "plate;reason\nQ1;x\nQ2;y\n", skip_bad="yes")
        assert all_bad.status_code == 422 and "would remove all 100 entries" in all_bad.text
        assert db_rows(dept, "SELECT count(*) FROM hotlist_entries") == [(100,)]
        forced = upload(client, list_id, "plate,reason\n", force="yes")
        assert forced.status_code == 200 and "0 entries (0 new, 100 removed" in forced.text
    assert db_rows(dept, "SELECT count(*) FROM hotlist_entries") == [(0,)]
    [(actor, detail)] = db_rows(dept, "SELECT actor, detail FROM audit_log WHERE action = 'hotlist.import' "
                                      "ORDER BY id DESC LIMIT 1")
    assert actor == "sam" and '"forced":true' in detail.replace(" ", "")


def sqlite_variable_limit() -> int:
    with closing(sqlite3.connect(":memory:")) as conn:
        options = dict(o[0].partition("=")[::2] for o in conn.execute("PRAGMA compile_options"))
    return int(options.get("MAX_VARIABLE_NUMBER", 32766))


def test_importing_more_new_plates_than_sqlite_has_variables(settings, tmp_path, capsys):
    count = sqlite_variable_limit() + 1  # one variable per plate would be refused by SQLite itself
    path = tmp_path / "big.csv"
    path.write_text(csv_of(f"N{n:07d}" for n in range(count)))
    assert run_cli(settings, "hotlist", "import", str(path), "--list", "big") == 0
    assert f"{count} entries ({count} added, 0 removed" in capsys.readouterr().out
    with closing(sqlite3.connect(settings.db_path)) as conn:
        assert conn.execute("SELECT count(*) FROM hotlist_entries").fetchone() == (count,)


def test_import_transactions_are_short_and_matching_never_sees_a_half_replaced_list(settings, tmp_path):
    """Every transaction of the import is traced on the writer's connection; before each one
    begins, an independent connection counts what matching can see (the live list) and all rows
    stored for the list."""
    old = [f"A{n:05d}" for n in range(5000)]
    new = old[:2500] + [f"B{n:05d}" for n in range(4000)]
    statements: list[str] = []
    seen: list[tuple[int, int]] = []

    def observe() -> tuple[int, int]:
        with closing(sqlite3.connect(settings.db_path)) as conn:
            return conn.execute("SELECT (SELECT count(*) FROM live_entries), "
                                "(SELECT count(*) FROM hotlist_entries)").fetchone()

    def trace(sql: str) -> None:
        statements.append(sql)
        if sql.startswith("BEGIN"):
            seen.append(observe())

    async def replace() -> None:
        async with Database(settings.db_path) as db:
            await import_list(db, "state", parse_csv(csv_of(old).encode(), "t"), actor="t", settings=settings)
            await db._writer.set_trace_callback(trace)  # the one writer connection every write goes through
            await import_list(db, "state", parse_csv(csv_of(new).encode(), "t"), actor="t", settings=settings,
                              force=True)
    asyncio.run(replace())
    seen.append(observe())
    assert {live for live, _ in seen} == {len(old), len(new)}  # the old list, then the new one: nothing between
    assert [live for live, _ in seen] == sorted([live for live, _ in seen], key=lambda n: n == len(new))
    stored = [total for _, total in seen]
    assert max(stored) == len(old) + len(new) and stored[-1] == len(new)
    assert max(abs(b - a) for a, b in zip(stored, stored[1:])) <= MOST_ROWS_PER_TRANSACTION
    inserts_per_transaction, count = [], 0
    for sql in statements:
        if sql.startswith("INSERT INTO hotlist_entries"):
            count += 1
        elif sql == "COMMIT":
            inserts_per_transaction.append(count)
            count = 0
    assert sum(inserts_per_transaction) == len(new) and max(inserts_per_transaction) <= MOST_ROWS_PER_TRANSACTION


@pytest.fixture
def busy_dept(tmp_path, capsys):
    """A department whose alerts have no cooldown, so every read of a listed plate alerts."""
    live = LiveServer(make_settings(tmp_path / "data", alert_cooldown_s=0)).start()
    department = Department(live, capsys)
    yield department
    department.close()
    live.stop()


def test_reads_during_a_cli_reimport_succeed_and_match_the_old_or_the_new_list(busy_dept, tmp_path):
    """The CLI writes from its own connection while the server takes reads. Each read carries a
    plate only on the old list, one only on the new, and one on both, as candidates."""
    dept = busy_dept
    filler = [f"F{n:05d}" for n in range(30_000)]
    assert dept.hotlist(tmp_path, "feed", csv_of(filler + ["1OLD111", "3BOTH33"])) == 0
    finished = threading.Event()

    def reimport() -> None:
        try:
            dept.hotlist(tmp_path, "feed", csv_of(filler + ["2NEW222", "3BOTH33"], reason="refreshed"))
        finally:
            finished.set()

    def post() -> int:
        resp = dept.post_read("3BOTH33", candidates=[("1OLD111", 0.5), ("2NEW222", 0.4)])
        assert resp.status_code == 201, resp.text
        return resp.json()["id"]

    read_ids = [post()]
    importer = threading.Thread(target=reimport)
    importer.start()
    while not finished.is_set():
        read_ids.append(post())
    importer.join()
    read_ids.append(post())
    matched = []
    for read_id in read_ids:
        plates = db_rows(dept, "SELECT entry_plate_norm FROM alerts WHERE read_id = ? AND NOT retro ORDER BY 1", read_id)
        matched.append(tuple(p for (p,) in plates))
    old, new = ("1OLD111", "3BOTH33"), ("2NEW222", "3BOTH33")
    assert matched[0] == old and matched[-1] == new
    assert set(matched) == {old, new} and matched == sorted(matched, key=lambda m: m == new)
