"""The audit log's hash chain, with real SQLite and the real `platewatch` command: every entry
the writer appends is chained; `platewatch audit verify` says the chain is intact or names the
first entry that does not fit and how (edited, deleted, reordered, inserted), after the triggers
are dropped and the log is changed with raw SQL; a database from before the chain gets one built
over its log, recorded; the server signs the head daily and publishes it on the transparency
report, and the signature verifies with the published key; entries past audit_retention_days
go only by a recorded purge, and the chain verifies from where it leaves it."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import httpx
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from server.audit_chain import CHECKPOINT, purge_old_entries
from server.clock import DAY_MS
from server.settings import AUDIT_KEY_FILE, load_settings
from server.store.chain import GENESIS, entry_hash
from server.store.db import Database
from server.store.migrations import connect, migrate, migrations
from tests.conftest import LiveServer, make_settings, run_cli, wait_until
from tests.test_cli import pw


def sql(db_path: Path, statement: str, *params) -> list[tuple]:
    with closing(sqlite3.connect(db_path)) as conn, conn:
        return conn.execute(statement, params).fetchall()


def untriggered(db_path: Path, *statements: tuple) -> None:
    """Changes the log as someone holding the data dir could: drop the triggers, then raw SQL."""
    with closing(sqlite3.connect(db_path)) as conn, conn:
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("DROP TRIGGER audit_no_delete")
        for statement, *params in statements:
            conn.execute(statement, params)


def verify(data: Path, *args: str) -> tuple[int, str]:
    done = pw("audit", "verify", "--data", str(data), *args, cwd=data.parent)
    assert not done.stderr, done.stderr
    return done.returncode, done.stdout.strip()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data dir whose log holds six entries (#1–#6), each written by the CLI's writer."""
    settings = make_settings(tmp_path / "data")
    for name in ("ann", "bob", "cy"):
        assert run_cli(settings, "user", "add", name, "--role", "officer", "--password-stdin",
                       stdin="long enough pw\n") == 0
    for name in ("north", "south", "east"):
        assert run_cli(settings, "camera", "add", name) == 0
    return settings.data_dir


def test_every_entry_follows_the_one_before_and_verify_says_intact(data):
    lines = sql(data / "platewatch.db", "SELECT id, at, actor, action, detail, prev_hash, hash FROM audit_log ORDER BY id")
    assert [line[0] for line in lines] == [1, 2, 3, 4, 5, 6]
    prev = GENESIS
    for _, at, actor, action, detail, prev_hash, line_hash in lines:
        assert prev_hash == prev and line_hash == entry_hash(prev, at, actor, action, detail)
        prev = line_hash
    assert verify(data) == (0, f"audit chain intact: 6 entries, head {prev}")
    code, out = verify(data, "--head", lines[2][-1])
    assert code == 0 and out.splitlines()[-1] == f"saved head {lines[2][-1]} is entry #3: nothing up to it has changed"


def rehash(db_path: Path, line_id: int) -> tuple:
    """Entry `line_id` given an actor of its choosing and its hash recomputed: a careful forger."""
    [(at, action, detail, prev_hash)] = sql(db_path, "SELECT at, action, detail, prev_hash FROM audit_log WHERE id = ?",
                                            line_id)
    return ("UPDATE audit_log SET actor = 'nobody', hash = ? WHERE id = ?",
            entry_hash(prev_hash, at, "nobody", action, detail), line_id)


TAMPERING = {  # what is done with raw SQL, and what verify says of it
    "edited": ([("UPDATE audit_log SET detail = '{\"user\":\"someone else\"}' WHERE id = 3",)],
               "entry #3: edited: its content no longer matches its hash"),
    "edited-and-rehashed": (None, "entry #3: edited: its hash was recomputed, but entry #4 was written after "
                                  "a different entry"),
    "deleted": ([("DELETE FROM audit_log WHERE id = 3",)],
                "entry #4: deleted: the entry it was written after is missing (#3)"),
    "deleted-two": ([("DELETE FROM audit_log WHERE id IN (3, 4)",)],
                    "entry #5: deleted: the entry it was written after is missing (#3 to #4)"),
    "deleted-first": ([("DELETE FROM audit_log WHERE id = 1",)],
                      "entry #2: deleted: the entries before it are missing"),
    "reordered": ([("UPDATE audit_log SET id = -1 WHERE id = 2",), ("UPDATE audit_log SET id = 2 WHERE id = 3",),
                   ("UPDATE audit_log SET id = 3 WHERE id = -1",)],
                  "entry #2: reordered: it was written right after entry #3, which now stands after it"),
    "inserted": ([("INSERT INTO audit_log (at, actor, action, detail) VALUES (1, 'cli', 'user.add', '{}')",)],
                 "entry #7: inserted: it has no hash"),
}


@pytest.mark.parametrize("case", TAMPERING)
def test_verify_names_the_first_entry_that_does_not_fit(data, case):
    db_path = data / "platewatch.db"
    statements, said = TAMPERING[case]
    untriggered(db_path, *(statements or [rehash(db_path, 3)]))
    code, out = verify(data)
    assert code == 1 and out.startswith(f"audit chain broken at {said}"), out


def test_a_saved_head_proves_the_entries_before_it(data):
    """Removing the newest entries leaves a chain that fits; the head saved before says otherwise."""
    code, out = verify(data)
    saved = out.rsplit(" ", 1)[-1]
    untriggered(data / "platewatch.db", ("DELETE FROM audit_log WHERE id = 6",))
    assert verify(data)[0] == 0
    code, out = verify(data, "--head", saved)
    assert code == 1 and out.splitlines()[-1] == (f"saved head {saved} is not in the chain: entries up to it "
                                                  "were changed or removed")


def test_an_old_database_gets_its_log_chained_and_recorded(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    db_path = data / "platewatch.db"
    with closing(connect(db_path)) as old:  # a database as the release before the chain left it
        migrations.apply(old, stop_before="m014_audit_chain")
    old_lines = [(1_700_000_000_000 + n, "cli", "user.add", json.dumps({"user": f"u{n}"})) for n in range(3)]
    with closing(sqlite3.connect(db_path)) as conn, conn:
        conn.executemany("INSERT INTO audit_log (at, actor, action, detail) VALUES (?, ?, ?, ?)", old_lines)
    migrate(db_path)
    code, out = verify(data)
    assert code == 0 and out.startswith("audit chain intact: 4 entries"), out
    [(detail, prev_hash, line_hash)] = sql(db_path, "SELECT detail, prev_hash, hash FROM audit_log "
                                                    "WHERE action = 'audit.chain_built' AND actor = 'system'")
    assert json.loads(detail) == {"entries": 3, "head": prev_hash} and out.endswith(line_hash)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        sql(db_path, "UPDATE audit_log SET actor = 'x' WHERE id = 1")  # the trigger is back


def test_the_server_signs_the_head_and_publishes_it(tmp_path):
    settings = make_settings(tmp_path / "data")
    run_cli(settings, "user", "add", "ann", "--role", "admin", "--password-stdin", stdin="long enough pw\n")
    live = LiveServer(settings).start()
    try:
        report = wait_until(lambda: httpx.get(f"{live.url}/transparency.json").json()["audit_chain"])
        page = httpx.get(f"{live.url}/transparency").text
    finally:
        live.stop()
    # Anyone can check the signature with the published key alone.
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(report["public_key"]))
    key.verify(base64.b64decode(report["signature"]), report["signed_text"].encode())
    assert report["signed_text"].endswith(f" entries={report['entries']} head={report['head']}")
    assert report["algorithm"] == "Ed25519"
    for shown in (report["head"], report["public_key"], report["signature"]):
        assert shown in page
    assert "no entry written before it has been changed" in page
    # The head is the entry before the checkpoint; the count, the entries before it.
    [(line_id, detail, prev_hash)] = sql(settings.db_path, "SELECT id, detail, prev_hash FROM audit_log "
                                                           "WHERE action = ?", CHECKPOINT)
    assert prev_hash == report["head"] and json.loads(detail)["signature"] == report["signature"]
    assert sql(settings.db_path, "SELECT count(*) FROM audit_log WHERE id < ?", line_id) == [(report["entries"],)]
    [(total,)] = sql(settings.db_path, "SELECT count(*) FROM audit_log")
    code, out = verify(settings.data_dir, "--head", report["head"])
    assert code == 0 and out.startswith(f"audit chain intact: {total} entries"), out
    assert stat.S_IMODE((settings.data_dir / AUDIT_KEY_FILE).stat().st_mode) == 0o600
    # A restart within the day signs no second checkpoint, and keeps the key.
    again = LiveServer(settings).start()
    try:
        assert httpx.get(f"{again.url}/transparency.json").json()["audit_chain"] == report
    finally:
        again.stop()
    assert sql(settings.db_path, "SELECT count(*) FROM audit_log WHERE action = ?", CHECKPOINT) == [(1,)]


def test_audit_retention_is_a_year_at_least(tmp_path):
    assert load_settings(tmp_path, env={}).audit_retention_days == 365
    with pytest.raises(msgspec.ValidationError, match="audit_retention_days: 364 is less than 365 days"):
        load_settings(tmp_path, env={"PLATEWATCH_AUDIT_RETENTION_DAYS": "364"})


def test_old_entries_go_only_by_a_recorded_purge_that_the_chain_verifies_after(data):
    db_path = data / "platewatch.db"
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        sql(db_path, "DELETE FROM audit_log WHERE id = 1")
    lines = sql(db_path, "SELECT id, at, hash FROM audit_log ORDER BY id")
    assert lines[2][1] < lines[3][1]
    a_year_after_the_fourth = lines[3][1] + 365 * DAY_MS  # #1–#3 are past the year, #4 is not

    async def purge() -> int:
        async with Database(db_path) as db:
            return await purge_old_entries(db, load_settings(data, env={}), a_year_after_the_fourth)

    assert asyncio.run(purge()) == 3
    [(line_id, detail)] = sql(db_path, "SELECT id, detail FROM audit_log WHERE action = 'audit.purge'")
    assert line_id == 7 and json.loads(detail) | {"cutoff": 0} == {
        "through": 3, "follows": lines[2][2], "entries": 3, "cutoff": 0, "audit_retention_days": 365.0}
    assert [line_id for (line_id,) in sql(db_path, "SELECT id FROM audit_log ORDER BY id")] == [4, 5, 6, 7]
    code, out = verify(data)
    assert code == 0 and out.startswith("audit chain intact: 4 entries"), out
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):  # the purge took #3 and before, no more
        sql(db_path, "DELETE FROM audit_log WHERE id = 4")
    untriggered(db_path, ("DELETE FROM audit_log WHERE id = 4",))
    code, out = verify(data)
    assert code == 1 and out.startswith("audit chain broken at entry #5: deleted: the entries before it are missing")
