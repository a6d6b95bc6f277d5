"""The worker against the real server on loopback: synthetic footage in, reads stored once.

Recognition is the real model (worker.recognize.read's recognizer, or the stand-in built from the same
PP-OCRv4 detector and reader until it lands); the server is the real app under uvicorn.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path


from contract.wire import ReadIn
from tests.conftest import Department, LiveServer, wait_until
from tests.test_worker_helpers import (
    RECOGNIZER_SPEC, HoldingProxy, camera_toml, recognizer, stored_reads, write_config,
)
import synth
from worker.__main__ import Worker
from worker.config import load_config
from worker.post import HeartbeatThread, Sender, Spool

ROOT = Path(__file__).resolve().parents[1]


def drop_images(folder: Path, plates: list[str], seed: int, tmp_path: Path) -> None:
    """Snapshots arrive whole, like a camera's upload finished with a rename."""
    staging = tmp_path / f"staging-{seed}"
    for path in synth.write_images(staging, plates, seed=seed, size=(960, 540)):
        os.replace(path, folder / f"{seed:03d}-{path.name}")


def start(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return thread


def test_synthetic_video_gives_one_read_per_vehicle(dept: Department, tmp_path: Path):
    video = tmp_path / "street.avi"
    passes = synth.write_video(video, ["7ABC123", "8XYZ442"], fps=5, seconds_per_vehicle=2.0, gap_seconds=1.0)
    config = load_config(write_config(tmp_path / "worker.toml", dept.live.url,
                                      camera_toml("main-st", dept.camera_token, "file", str(video), realtime=False)))
    worker = Worker(config, recognizer(), exit_when_done=True, drain_s=15)
    started = time.monotonic()
    assert worker.run() == 0
    reads = stored_reads(dept.settings.db_path)
    assert sorted(plate for _, plate, _ in reads) == sorted(p.plate for p in passes)
    assert all(colour for _, _, colour in reads)
    assert len(worker.spool) == 0 and worker.sender.sent == 2
    stats = worker.captures["main-st"].stats
    assert stats.frames == passes[-1].last_frame + 6 and stats.gated >= 8  # the empty street between cars
    images = list((dept.settings.data_dir / "images").rglob("*.jpg"))
    assert len(images) == 4  # a plate crop and a vehicle crop per read
    print(f"video: {stats.frames} frames, {stats.gated} gated, {time.monotonic() - started:.1f} s")


def test_reads_wait_in_the_spool_while_the_server_is_down(settings, tmp_path: Path, capsys):
    live = LiveServer(settings).start()
    dept = Department(live, capsys)
    folder = tmp_path / "in"
    folder.mkdir()
    camera = camera_toml("gate", dept.camera_token, "folder", str(folder), poll_s=0.2, min_frames=1)
    worker = Worker(load_config(write_config(tmp_path / "worker.toml", live.url, camera)), recognizer())
    thread = start(worker)
    try:
        drop_images(folder, ["7ABC123"], 1, tmp_path)
        assert wait_until(lambda: len(stored_reads(settings.db_path)) == 1, timeout=30)
        live.stop()
        drop_images(folder, ["8XYZ442", "4GHJ907"], 2, tmp_path)
        assert wait_until(lambda: len(worker.spool) == 2, timeout=30)
        time.sleep(1.5)  # the sender keeps failing against the stopped server
        assert len(worker.spool) == 2 and len(stored_reads(settings.db_path)) == 1
        live = LiveServer(settings).start()  # same data dir, same port
        assert wait_until(lambda: len(worker.spool) == 0, timeout=30)
    finally:
        worker.stop.set()
        thread.join(timeout=30)
        live.stop()
        dept.close()
    reads = stored_reads(settings.db_path)
    assert sorted(p for _, p, _ in reads) == ["4GHJ907", "7ABC123", "8XYZ442"]
    assert len({u for u, _, _ in reads}) == 3


def test_unreadable_files_in_a_watched_folder_are_set_aside(dept: Department, tmp_path: Path, caplog):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "000-garbage.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not an image \xff\xd9")
    good = synth.write_images(tmp_path / "staging", ["5KLM234"], seed=3, size=(960, 540))[0]
    truncated = folder / "001-truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:5000])
    os.utime(truncated, (time.time() - 60, time.time() - 60))  # an upload that never finished
    (folder / "notes.txt").write_text("not a picture")
    camera = camera_toml("gate", dept.camera_token, "folder", str(folder), poll_s=0.2, min_frames=1)
    worker = Worker(load_config(write_config(tmp_path / "worker.toml", dept.live.url, camera)), recognizer())
    thread = start(worker)
    try:
        assert wait_until(lambda: len(list((folder / "rejected").glob("*"))) == 2, timeout=20)
        os.replace(good, folder / "002-good.jpg")
        assert wait_until(lambda: len(stored_reads(dept.settings.db_path)) == 1, timeout=30)
    finally:
        worker.stop.set()
        thread.join(timeout=30)
    assert [p for _, p, _ in stored_reads(dept.settings.db_path)] == ["5KLM234"]
    assert sorted(p.name for p in (folder / "rejected").iterdir()) == ["000-garbage.jpg", "001-truncated.jpg"]
    assert [p.name for p in (folder / "done").iterdir()] == ["002-good.jpg"]
    assert (folder / "notes.txt").exists()
    logged = caplog.text
    assert "000-garbage.jpg: not a decodable image" in logged and "001-truncated.jpg: truncated JPEG" in logged


def test_an_exception_in_recognition_skips_only_that_frame(dept: Department, tmp_path: Path, caplog):
    real, calls = recognizer(), []

    def flaky(image):
        calls.append(image.shape)
        if len(calls) == 1:
            raise RuntimeError("the model choked")
        return real(image)

    folder = tmp_path / "in"
    folder.mkdir()
    drop_images(folder, ["7ABC123", "8XYZ442"], 5, tmp_path)  # handled in name order
    camera = camera_toml("gate", dept.camera_token, "folder", str(folder), poll_s=0.2, min_frames=1)
    worker = Worker(load_config(write_config(tmp_path / "worker.toml", dept.live.url, camera)), flaky)
    thread = start(worker)
    try:
        assert wait_until(lambda: len(stored_reads(dept.settings.db_path)) == 1, timeout=30)
    finally:
        worker.stop.set()
        thread.join(timeout=30)
    assert [p for _, p, _ in stored_reads(dept.settings.db_path)] == ["8XYZ442"]
    assert "recognition failed on 005-000_7ABC123.jpg" in caplog.text and "the model choked" in caplog.text


def run_worker(config: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "worker", "--config", str(config), "--recognizer", RECOGNIZER_SPEC],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log.open("ab"),
    )


def test_worker_killed_mid_send_delivers_every_read_once_after_a_restart(dept: Department, tmp_path: Path):
    proxy = HoldingProxy(dept.live.url)
    proxy.hold.set()  # the server stores the first read; the worker never hears back
    folder = tmp_path / "in"
    folder.mkdir()
    drop_images(folder, ["7ABC123", "8XYZ442", "4GHJ907"], 4, tmp_path)
    camera = camera_toml("gate", dept.camera_token, "folder", str(folder), poll_s=0.2, min_frames=1)
    config = write_config(tmp_path / "worker.toml", proxy.url, camera)
    spool = tmp_path / "spool"
    log = tmp_path / "worker.log"
    proc = run_worker(config, log)
    try:
        assert wait_until(lambda: proxy.held.is_set() and len(list(spool.glob("*.json"))) == 3, timeout=60), \
            log.read_text()
        assert len(stored_reads(dept.settings.db_path)) == 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proxy.hold.clear()
        proxy.release.set()
        proc = run_worker(config, log)
        assert wait_until(lambda: not list(spool.glob("*.json")), timeout=60), log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proxy.close()
    reads = stored_reads(dept.settings.db_path)
    assert sorted(p for _, p, _ in reads) == ["4GHJ907", "7ABC123", "8XYZ442"]
    assert len({u for u, _, _ in reads}) == 3
    assert "resend, already stored" in log.read_text()


def test_cli_refuses_a_config_with_an_unknown_key(tmp_path: Path):
    config = write_config(tmp_path / "worker.toml", "http://127.0.0.1:9",
                          camera_toml("a", "cam_12345678", "file", "x.avi", fps_caps=5))
    done = subprocess.run([sys.executable, "-m", "worker", "--config", str(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown key `fps_caps`" in done.stderr and str(config) in done.stderr


def a_read(plate: str) -> ReadIn:
    return ReadIn(id=uuid.uuid4(), plate=plate, confidence=0.9, captured_at=datetime.now(UTC))


def test_sender_sets_bad_reads_aside_and_holds_reads_whose_token_is_refused(dept: Department, tmp_path: Path):
    spool = Spool(tmp_path / "spool")
    bad, good, unauthorised = a_read("---"), a_read("7ABC123"), a_read("8XYZ442")
    spool.put("main-st", bad, {})
    spool.put("revoked", unauthorised, {})
    spool.put("main-st", good, {"plate_image": b"\xff\xd8\xff not really a jpeg"})
    tokens = {"main-st": dept.camera_token, "revoked": "cam_revokedtoken"}
    sender = Sender(spool, dept.live.url, tokens.get, max_backoff_s=0.5)
    sender.start()
    try:
        assert wait_until(lambda: len(spool) == 1, timeout=20)
    finally:
        sender.stop.set()
        sender.join(timeout=10)
        spool.close()
    rejected = sorted(p.name for p in spool.rejected.iterdir())
    assert len(rejected) == 5  # two reads, each with its JSON and reason, and the one JPEG
    reasons = " ".join(p.read_text() for p in spool.rejected.glob("*.reason.txt"))
    assert "no letters or digits" in reasons and "plate_image: corrupt JPEG" in reasons
    (held,) = spool.stems()
    assert spool.load(held)[0].read.id == unauthorised.id  # kept for when the token is fixed


def test_heartbeat_reaches_the_server(dept: Department):
    import sqlite3

    import httpx

    from worker.capture.camera import CameraStats

    stats = CameraStats()
    stats.frame_seen(time.monotonic())
    stats.gated = 7
    beat = HeartbeatThread(dept.live.url, {"main-st": (dept.camera_token, stats)})
    with httpx.Client(base_url=dept.live.url) as client:
        assert beat.beat(client, "main-st", dept.camera_token, stats) == 200
    with sqlite3.connect(dept.settings.db_path) as conn:
        gated, last_frame = conn.execute("SELECT frames_gated, last_frame_at FROM cameras").fetchone()
    assert gated == 7 and last_frame is not None