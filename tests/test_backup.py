"""`platewatch backup DEST`: a consistent snapshot while the server writes, only the images its
reads name, a restore that serves them again, retention of old backups, and clear errors."""

from __future__ import annotations

import io
import json
import os
import random
import re
import resource
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from PIL import Image

from tests.conftest import LiveServer, make_settings, run_cli
from tests.test_ingest import jpeg, multipart_read
from tests.test_web_admin import web_client

PLATEWATCH = Path(sys.executable).with_name("platewatch")
BACKUP_NAME = re.compile(r"platewatch-\d{8}-\d{6}")


def post_read(http: httpx.Client, headers: dict, plate: str, shade: int = 100, vehicle: bytes | None = None) -> str:
    """A multipart read with a plate crop (and vehicle crop) of its own bytes; its UUID."""
    data, files = multipart_read(plate, plate_image=jpeg(color=(shade, 90, 40)),
                                 vehicle_image=vehicle or jpeg((160, 120), color=(40, shade, 90)))
    resp = http.post("/api/v1/reads", data=data, files=files, headers=headers)
    assert resp.status_code == 201, resp.text
    return json.loads(data["read"])["id"]


def run_backup(settings, dest: Path, *args: str, capsys) -> Path:
    assert run_cli(settings, "backup", str(dest), *args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) >= 2 and out[-2].startswith("removed "), out
    return Path(out[-1])


def rows(db_path: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(db_path)) as conn:
        return conn.execute(sql).fetchall()


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def writing_meanwhile(dept, stop: threading.Event) -> threading.Thread:
    """A camera that keeps posting reads with images while the backup runs; returns once it posts."""
    posting = threading.Event()

    def post_until_stopped():
        with httpx.Client(base_url=dept.live.url, timeout=10) as http:
            n = 0
            while not stop.is_set():
                post_read(http, dept.camera_headers, f"LIVE{n:03d}", shade=n % 250)
                posting.set()
                n += 1

    thread = threading.Thread(target=post_until_stopped)
    thread.start()
    assert posting.wait(10)
    return thread


def test_backup_while_serving_is_a_consistent_snapshot_with_only_its_images(dept, capsys, tmp_path):
    data = dept.settings.data_dir
    before = {post_read(dept.http, dept.camera_headers, f"BK{i}AB", shade=20 * i) for i in range(4)}
    dest = tmp_path / "backups"
    dest.mkdir()
    stop = threading.Event()
    writer = writing_meanwhile(dept, stop)
    try:
        folder = run_backup(dept.settings, dest, capsys=capsys)
    finally:
        stop.set()
        writer.join(timeout=30)

    assert folder.parent == dest and BACKUP_NAME.fullmatch(folder.name)
    assert [p.name for p in dest.iterdir()] == [folder.name]  # no temporary folder left
    snapshot = folder / "platewatch.db"
    assert rows(snapshot, "PRAGMA integrity_check") == [("ok",)]
    uuids = {u for (u,) in rows(snapshot, "SELECT uuid FROM reads")}
    assert before <= uuids
    live_uuids = {u for (u,) in rows(dept.settings.db_path, "SELECT uuid FROM reads")}
    assert live_uuids - uuids  # the camera wrote on after the snapshot, while the backup ran
    named = {p for row in rows(snapshot, "SELECT plate_image, vehicle_image FROM reads") for p in row if p}
    assert len(named) == 2 * len(uuids)
    images = {f for f in files_under(folder) if f.startswith("images/")}
    assert images == named  # every read's images, and no image without its row
    for rel in named:
        assert (folder / rel).read_bytes() == (data / rel).read_bytes(), rel

    key = folder / "vapid_private.pem"
    assert key.read_bytes() == (data / "vapid_private.pem").read_bytes()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (folder / "app_secret").read_bytes() == (data / "app_secret").read_bytes()
    [(detail,)] = rows(dept.settings.db_path, "SELECT detail FROM audit_log WHERE action = 'backup.made'")
    detail = json.loads(detail)
    assert detail["folder"] == folder.name and detail["reads"] == len(uuids)
    assert detail["images"] == len(named) and detail["pruned"] == 0


def test_restoring_a_backup_serves_its_reads_images_and_users(dept, capsys, tmp_path):
    plate_crop = jpeg(color=(10, 200, 30))
    data, files = multipart_read("RST123", plate_image=plate_crop)
    assert dept.http.post("/api/v1/reads", data=data, files=files, headers=dept.camera_headers).status_code == 201
    key = dept.http.get("/api/v1/push/key").json()["public_key"]
    (tmp_path / "backups").mkdir()
    folder = run_backup(dept.settings, tmp_path / "backups", capsys=capsys)

    restored_dir = tmp_path / "restored"  # the README's restore: copy the folder's contents into an empty data dir
    shutil.copytree(folder, restored_dir)
    restored = LiveServer(make_settings(restored_dir)).start()
    try:
        with closing(web_client(SimpleNamespace(live=restored), "alice", "correct horse")) as officer:
            page = officer.get("/reads")
            assert page.status_code == 200 and "RST123" in page.text
            [src] = re.findall(r'class="thumb-plate" src="([^"]+)"', page.text)
            assert officer.get(src).content == plate_crop
            assert officer.get("/api/v1/push/key").json()["public_key"] == key  # phones stay subscribed
    finally:
        restored.stop()


def make_folder(dest: Path, name: str) -> Path:
    (dest / name).mkdir()
    (dest / name / "platewatch.db").write_bytes(b"old")
    return dest / name


def test_backups_older_than_keep_days_go_and_nothing_else_in_dest(settings, capsys, tmp_path):
    run_cli(settings, "camera", "add", "gate")  # a data dir with a database
    (settings.data_dir / "platewatch.toml").write_text("retention_days = 2\n")
    dest = tmp_path / "backups"
    dest.mkdir()
    days_ago = lambda days: (datetime.now(UTC) - timedelta(days=days)).strftime("%Y%m%d-%H%M%S")  # noqa: E731
    make_folder(dest, f"platewatch-{days_ago(3)}")
    make_folder(dest, ".platewatch-20200101-000000.partial")  # a crashed run's leftover
    day_old = make_folder(dest, f"platewatch-{days_ago(1)}")
    kept = [make_folder(dest, "platewatch-20200101-000000-manual"), make_folder(dest, "platewatch-20201399-000000"),
            dest / "platewatch-20200101-000001", dest / "notes.txt"]
    kept[2].write_text("a file, not a backup")
    kept[3].write_text("admin's notes")

    first = run_backup(settings, dest, capsys=capsys)  # keep-days defaults to retention_days (2)
    assert (first / "platewatch.toml").read_text() == "retention_days = 2\n"
    assert sorted(p.name for p in dest.iterdir()) == sorted([first.name, day_old.name, *(p.name for p in kept)])
    threading.Event().wait(1.05)  # the next backup's name is the next second's
    assert run_cli(settings, "backup", str(dest), "--keep-days", "0.5") == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-2] == f"removed 1 backup(s) older than 0.5 days from {dest}"
    second = Path(out[-1])
    assert sorted(p.name for p in dest.iterdir()) == sorted([first.name, second.name, *(p.name for p in kept)])
    pruned = [json.loads(d)["pruned"] for (d,) in rows(
        settings.db_path, "SELECT detail FROM audit_log WHERE action = 'backup.made' ORDER BY id")]
    assert pruned == [2, 1]


def backup_error(settings, dest: Path) -> str:
    with pytest.raises(SystemExit) as failure:
        run_cli(settings, "backup", str(dest))
    return str(failure.value)


def test_errors_name_what_is_wrong_and_leave_nothing(settings, tmp_path):
    dest = tmp_path / "backups"
    assert "no database in the data dir" in backup_error(settings, tmp_path)
    assert not settings.db_path.exists()  # the check made no database either
    run_cli(settings, "camera", "add", "gate")
    assert backup_error(settings, dest) == f"error: backup destination {dest} does not exist (mount or create it first)"
    dest.mkdir()
    with unwritable(dest):
        assert backup_error(settings, dest).startswith(f"error: cannot write to {dest}: ")
    assert list(dest.iterdir()) == []


class unwritable:
    """Makes a folder unwritable even for root (the immutable flag), where chmod would not."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.root = folder, os.geteuid() == 0

    def __enter__(self):
        if not self.root:
            self.folder.chmod(0o555)
        elif subprocess.run(["chattr", "+i", str(self.folder)], capture_output=True).returncode != 0:
            pytest.skip("running as root without chattr +i: no way to make a folder unwritable")

    def __exit__(self, *exc) -> None:
        if self.root:
            subprocess.run(["chattr", "-i", str(self.folder)], check=True)
        else:
            self.folder.chmod(0o755)


def noise_jpeg(side: int) -> bytes:
    """Random pixels: a JPEG that does not compress, so its size is known to be large."""
    image = Image.frombytes("RGB", (side, side), random.Random(7).randbytes(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def test_no_room_for_an_image_removes_the_partial_backup(dept, tmp_path):
    big = noise_jpeg(1000)  # ~1.2 MB: twice the database with room for the schema to grow
    post_read(dept.http, dept.camera_headers, "BIG123", vehicle=big)
    [(pages, page_size)] = rows(dept.settings.db_path, "SELECT * FROM pragma_page_count, pragma_page_size")
    limit = len(big) // 2  # the database fits, the vehicle crop does not: the copy fails midway
    assert pages * page_size < limit
    dest = tmp_path / "backups"
    dest.mkdir()

    def small_disk():  # a file-size limit: writes past it fail (EFBIG) as on a full or FAT32 drive
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run([str(PLATEWATCH), "backup", str(dest), "--data", str(dept.settings.data_dir)],
                          capture_output=True, text=True, preexec_fn=small_disk, timeout=120)
    assert done.returncode != 0
    assert "error: backup failed and was removed: writing " in done.stderr
    assert "File too large" in done.stderr, done.stderr
    assert list(dest.iterdir()) == []
    assert rows(dept.settings.db_path, "SELECT count(*) FROM audit_log WHERE action = 'backup.made'") == [(0,)]
