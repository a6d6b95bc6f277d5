"""Retention is enforced by code: old reads, their images and alerts go; newer ones stay."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

from server.retention import purge
from server.store.db import Database
from tests.conftest import backdate
from tests.test_ingest import jpeg, multipart_read


def post_with_image(dept, plate, captured_at):
    """A read with a plate image, stored now and aged to `captured_at` (ingest refuses one past
    retention: this is such a read stored while it was recent)."""
    data, files = multipart_read(plate, plate_image=jpeg())
    resp = dept.http.post("/api/v1/reads", data=data, files=files, headers=dept.camera_headers)
    assert resp.status_code == 201, resp.text
    backdate(dept.settings, resp.json()["id"], captured_at)
    return resp.json()["id"]


def test_purge_removes_rows_and_files_past_retention_only(dept, tmp_path):
    now = datetime.now(UTC)
    days = dept.settings.retention_days
    dept.hotlist(tmp_path, "l", "plate\nOLD1\n")
    old = post_with_image(dept, "OLD1", now - timedelta(days=days + 1))
    edge = post_with_image(dept, "EDGE1", now - timedelta(days=days - 0.01))
    new = post_with_image(dept, "NEW1", now - timedelta(minutes=5))
    with sqlite3.connect(dept.settings.db_path) as conn:
        images = dict(conn.execute("SELECT id, plate_image FROM reads").fetchall())
        assert conn.execute("SELECT count(*) FROM alerts").fetchone() == (1,)

    async def run_purge():
        async with Database(dept.settings.db_path) as db:
            return await purge(db, dept.settings)

    result = asyncio.run(run_purge())
    assert (result.reads, result.images) == (1, 1)
    assert (result.sessions, result.challenges) == (0, 0)  # alice's token is still valid
    with sqlite3.connect(dept.settings.db_path) as conn:
        assert sorted(r for (r,) in conn.execute("SELECT id FROM reads")) == [edge, new]
        assert conn.execute("SELECT count(*) FROM alerts").fetchone() == (0,)  # followed its read
        # the last purge is ours (the server also purges once at start-up)
        [(detail,)] = conn.execute(
            "SELECT detail FROM audit_log WHERE action = 'retention.purge' ORDER BY id DESC LIMIT 1").fetchall()
    assert not (dept.settings.data_dir / images[old]).exists()
    assert (dept.settings.data_dir / images[edge]).exists() and (dept.settings.data_dir / images[new]).exists()
    detail = json.loads(detail)
    assert detail["reads"] == 1 and detail["oldest_remaining"] == result.oldest_remaining
    assert abs(result.oldest_remaining / 1000 - (now - timedelta(days=days - 0.01)).timestamp()) < 1


def test_purge_in_batches(dept, monkeypatch):
    import server.retention as retention

    monkeypatch.setattr(retention, "BATCH", 3)
    old = datetime.now(UTC) - timedelta(days=dept.settings.retention_days + 2)
    for i in range(7):
        dept.post_aged_read(f"B{i}", old + timedelta(seconds=i), read_id=str(uuid.uuid4()))
    dept.post_read("KEEP1")

    async def run_purge():
        async with Database(dept.settings.db_path) as db:
            return await purge(db, dept.settings)

    assert asyncio.run(run_purge()).reads == 7
    with sqlite3.connect(dept.settings.db_path) as conn:
        assert conn.execute("SELECT plate FROM reads").fetchall() == [("KEEP1",)]


def test_purge_batches_bounded_by_time_take_every_old_read_and_its_images(dept, monkeypatch):
    """However little time a batch may have, each deletes at least one read and the purge ends."""
    import server.retention as retention

    monkeypatch.setattr(retention, "HOLD_S", 0)  # one read per transaction
    old = datetime.now(UTC) - timedelta(days=dept.settings.retention_days + 2)
    ids = [post_with_image(dept, f"T{i}", old + timedelta(seconds=i)) for i in range(5)]
    dept.post_read("KEEP2")
    with sqlite3.connect(dept.settings.db_path) as conn:
        images = [path for (path,) in conn.execute("SELECT plate_image FROM reads WHERE id IN (?, ?, ?, ?, ?)", ids)]

    async def run_purge():
        async with Database(dept.settings.db_path) as db:
            return await purge(db, dept.settings)

    assert (asyncio.run(run_purge()).reads, len(images)) == (5, 5)
    assert not any((dept.settings.data_dir / path).exists() for path in images)
    with sqlite3.connect(dept.settings.db_path) as conn:
        assert conn.execute("SELECT plate FROM reads").fetchall() == [("KEEP2",)]


def test_audit_log_is_append_only(dept):
    with sqlite3.connect(dept.settings.db_path) as conn:
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] > 0
        for sql in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
            try:
                conn.execute(sql)
            except sqlite3.IntegrityError as exc:
                assert "append-only" in str(exc)
            else:
                raise AssertionError(f"{sql} was allowed")


def test_running_server_purges_on_its_own(tmp_path, capsys):
    from tests.conftest import Department, LiveServer, make_settings, wait_until

    live = LiveServer(make_settings(tmp_path / "data", purge_interval_s=0.2)).start()
    try:
        dept = Department(live, capsys)
        old = datetime.now(UTC) - timedelta(days=live.settings.retention_days + 1)
        dept.post_aged_read("OLD1", old)
        dept.post_read("NEW1")

        def plates():
            with sqlite3.connect(live.settings.db_path) as conn:
                return [p for (p,) in conn.execute("SELECT plate FROM reads")]

        assert wait_until(lambda: plates() == ["NEW1"], timeout=5)
        dept.close()
    finally:
        live.stop()


def test_purge_removes_stray_images_once_their_day_is_past(dept):
    """An image with no read (its upload failed after the file was written, or one put there by
    hand) goes with its capture day's folder once that whole day is past retention."""
    now = datetime.now(UTC)
    days = dept.settings.retention_days
    images = dept.settings.images_dir

    def stray(day: datetime, name: str = "stray-plate.jpg"):
        path = images / day.strftime("%Y-%m-%d") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not a read's image")
        return path

    old = stray(now - timedelta(days=days + 2))
    old_too = stray(now - timedelta(days=days + 2), "another.jpg")
    recent = stray(now - timedelta(days=days - 1))  # its day is not past yet: it stays for now
    kept = images / "not-a-day" / "notes.txt"  # not a folder this server makes: left alone
    kept.parent.mkdir(parents=True)
    kept.write_text("keep")
    newer_read = post_with_image(dept, "NEW1", now - timedelta(minutes=5))

    async def run_purge():
        async with Database(dept.settings.db_path) as db:
            return await purge(db, dept.settings)

    result = asyncio.run(run_purge())
    assert result.stray_images == 2 and result.reads == 0
    assert not old.parent.exists() and not old_too.exists()
    assert recent.exists() and kept.exists()
    with sqlite3.connect(dept.settings.db_path) as conn:
        [(path,)] = conn.execute("SELECT plate_image FROM reads WHERE id = ?", (newer_read,)).fetchall()
        [(detail,)] = conn.execute(
            "SELECT detail FROM audit_log WHERE action = 'retention.purge' ORDER BY id DESC LIMIT 1").fetchall()
    assert (dept.settings.data_dir / path).exists()
    assert json.loads(detail)["stray_images"] == 2


def test_the_writer_leaves_checkpoints_to_a_connection_of_their_own(tmp_path):
    """A commit that copied the WAL into the database would hold every other write (a purge
    batch's, a camera's read) while it synced; the writer never does, yet the WAL is copied."""
    from tests.conftest import wait_until

    path = tmp_path / "wal.db"

    async def write_then_wait_for_checkpoint():
        async with Database(path) as db:
            async with db.transaction() as conn:
                assert (await (await conn.execute("PRAGMA wal_autocheckpoint")).fetchone())[0] == 0
                await conn.execute("CREATE TABLE filler (data BLOB)")
                await conn.executemany("INSERT INTO filler VALUES (randomblob(4000))", [()] * 1500)
            # 6 MB went into the WAL; the database file grows only when a checkpoint copies it in.
            return await asyncio.to_thread(wait_until, lambda: path.stat().st_size > 6_000_000, 10)

    assert asyncio.run(write_then_wait_for_checkpoint())
