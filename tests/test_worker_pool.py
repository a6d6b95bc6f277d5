"""The worker under load, with the real model and the real server: recognition processes that die
are replaced, hits are posted while the vehicle is still in view, a flooding camera does not
starve a quiet one, and overload is reported in the heartbeat."""

from __future__ import annotations

import http.server
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from tests.conftest import Department, run_cli, wait_until
from tests.test_worker_helpers import (
    RECOGNIZER_SPEC, FakeCamera, camera_toml, recognizer, serve_loopback, stored_reads, write_config,
)
from tests.test_worker_live import drop_images, start
import synth
from worker.__main__ import Worker
from worker.config import load_config
from worker.recognize.pool import DEPTH, RecognitionPool


def test_a_dead_recognition_process_is_replaced_and_the_worker_carries_on(dept: Department, tmp_path: Path, caplog):
    folder = tmp_path / "in"
    folder.mkdir()
    camera = camera_toml("gate", dept.camera_token, "folder", str(folder), poll_s=0.2, min_frames=1)
    config = load_config(write_config(tmp_path / "worker.toml", dept.live.url, camera))
    pool = RecognitionPool(2, RECOGNIZER_SPEC)
    worker = Worker(config, pool)
    thread = start(worker)
    try:
        drop_images(folder, ["7ABC123"], 1, tmp_path)
        assert wait_until(lambda: len(stored_reads(dept.settings.db_path)) == 1, timeout=90)
        victim = pool.pids()[0]
        os.kill(victim, signal.SIGKILL)
        assert wait_until(lambda: victim not in pool.pids(), timeout=10)
        drop_images(folder, ["8XYZ442", "4GHJ907"], 2, tmp_path)
        assert wait_until(lambda: len(stored_reads(dept.settings.db_path)) == 3, timeout=90)
    finally:
        worker.stop.set()
        thread.join(timeout=30)
    assert sorted(p for _, p, _ in stored_reads(dept.settings.db_path)) == ["4GHJ907", "7ABC123", "8XYZ442"]
    assert caplog.text.count(f"recognition process {victim} died") == 1
    assert len(pool.pids()) == 2 and all(p != victim for p in pool.pids())


class PacedCamera:
    """An MJPEG camera on loopback that plays `frames` once at `fps`, then repeats the last one;
    `served` says how many it has sent, so a test knows what the camera was showing when."""

    def __init__(self, frames: list[bytes], fps: float) -> None:
        self.frames, self.fps, self.served = frames, fps, 0
        camera = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while not camera.closed.is_set():
                        jpg = camera.frames[min(camera.served, len(camera.frames) - 1)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                         % (len(jpg), jpg))
                        camera.served += 1
                        time.sleep(1 / camera.fps)
                except OSError:
                    return

            def log_message(self, *args) -> None:
                pass

        self.closed = threading.Event()
        self.server, base = serve_loopback(Handler)
        self.url = base + "/stream"

    def close(self) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()


def video_frames(path: Path) -> list[bytes]:
    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, image = capture.read()
        if not ok:
            return frames
        frames.append(cv2.imencode(".jpg", image)[1].tobytes())


def test_a_hit_is_posted_while_its_vehicle_is_still_in_view(dept: Department, tmp_path: Path):
    video = tmp_path / "street.avi"
    [vehicle] = synth.write_video(video, ["7ABC123"], fps=10, size=(960, 540), seconds_per_vehicle=10.0,
                                  gap_seconds=0.5)
    camera = PacedCamera(video_frames(video), fps=10)
    config = load_config(write_config(tmp_path / "worker.toml", dept.live.url,
                                      camera_toml("main-st", dept.camera_token, "stream", camera.url)))
    worker = Worker(config, recognizer())
    thread = start(worker)
    try:
        assert wait_until(lambda: stored_reads(dept.settings.db_path), timeout=60)
        showing = camera.served
    finally:
        worker.stop.set()
        thread.join(timeout=30)
        camera.close()
    # Posted while the camera was still showing the vehicle, not after it had gone.
    assert showing < vehicle.last_frame, (showing, vehicle.last_frame)
    assert [p for _, p, _ in stored_reads(dept.settings.db_path)] == ["7ABC123"]  # once, also after the flush


def test_a_flooding_camera_does_not_starve_a_quiet_one(dept: Department, tmp_path: Path, capsys):
    run_cli(dept.settings, "camera", "add", "gate")
    quiet_token = capsys.readouterr().out.strip().splitlines()[-1]
    video = tmp_path / "busy.avi"
    synth.write_video(video, ["8XYZ442", "4GHJ907", "5KLM234"], fps=10, size=(960, 540), seconds_per_vehicle=2.0,
                      gap_seconds=0.2)
    folder = tmp_path / "in"
    folder.mkdir()
    cameras = (camera_toml("main-st", dept.camera_token, "file", str(video), realtime=False, loop=True)
               + camera_toml("gate", quiet_token, "folder", str(folder), poll_s=0.2, min_frames=1))
    worker = Worker(load_config(write_config(tmp_path / "worker.toml", dept.live.url, cameras)), recognizer())
    thread = start(worker)
    try:
        assert wait_until(lambda: worker.captures["main-st"].stats.frames > 20, timeout=60)  # flooding now
        drop_images(folder, ["7ABC123"], 7, tmp_path)
        assert wait_until(lambda: "7ABC123" in [p for _, p, _ in stored_reads(dept.settings.db_path)], timeout=60)
        busy_still_running = worker.captures["main-st"].is_alive()
    finally:
        worker.stop.set()
        thread.join(timeout=30)
    assert busy_still_running
    with sqlite3.connect(dept.settings.db_path) as conn:
        cameras_with_reads = {name for (name,) in conn.execute(
            "SELECT DISTINCT c.name FROM reads r JOIN cameras c ON c.id = r.camera_id")}
    assert cameras_with_reads == {"main-st", "gate"}


def test_overload_is_reported_in_the_heartbeat_and_warned_once(dept: Department, tmp_path: Path, caplog):
    camera = FakeCamera(frames_per_connection=10_000)
    real = recognizer()

    def slow_box(image):  # the real recognizer on a box too slow: a vehicle waits seconds for a look
        time.sleep(2.5)
        return real(image)

    config = load_config(write_config(tmp_path / "worker.toml", dept.live.url,
                                      camera_toml("main-st", dept.camera_token, "stream", camera.url + "/stream")))
    worker = Worker(config, slow_box)
    thread = start(worker)

    def reported():
        with sqlite3.connect(dept.settings.db_path) as conn:
            return conn.execute("SELECT overloaded, frames_dropped, vehicles_seen, recognition_lag_s "
                                "FROM cameras").fetchone()
    try:
        assert wait_until(lambda: reported()[0] == 1, timeout=60)
        time.sleep(2.5)  # more heartbeats and load checks: still one warning
    finally:
        worker.stop.set()
        thread.join(timeout=30)
        camera.close()
    overloaded, dropped, seen, lag = reported()
    assert dropped > 0 and seen == 0 and lag is not None
    assert caplog.text.count("camera main-st is overloaded") == 1


def test_looks_turn_quick_only_when_cameras_wait_too_long_for_one(dept: Department, tmp_path: Path):
    """Looks are full ones while every camera with an unread vehicle gets one often enough; with
    more such cameras than the box can look at in turn, they become quick ones."""
    video = tmp_path / "street.avi"
    synth.write_video(video, ["8XYZ442"], fps=10, size=(640, 360), seconds_per_vehicle=3.0, gap_seconds=0.0)

    def looks_with(cameras: int) -> list[bool]:
        looks: list[bool] = []

        def finds_nothing(image, quick=False):  # a slow box that never finds a plate: all unread
            looks.append(quick)
            time.sleep(0.25)
            return []

        toml = "".join(camera_toml(f"cam{i}", dept.camera_token, "file", str(video), realtime=False, loop=True)
                       for i in range(cameras))
        worker = Worker(load_config(write_config(tmp_path / f"worker{cameras}.toml", dept.live.url, toml)),
                        finds_nothing)
        thread = start(worker)
        try:
            assert wait_until(lambda: len(looks) >= 12, timeout=60)
        finally:
            worker.stop.set()
            thread.join(timeout=30)
        return looks

    assert not any(looks_with(1))  # one camera: a look every 0.25 s
    assert sum(looks_with(4)[6:]) >= 5  # four cameras in turn: each waits ~1 s for a look


def test_handing_a_busy_process_its_next_frames_never_blocks_the_worker():
    """A process holds DEPTH frames at once; sending it megabytes of frames while it reads one
    happens beside the worker's loop, which stays free to take results (else both would wait on
    each other's pipe for ever)."""
    pool = RecognitionPool(1, RECOGNIZER_SPEC)
    try:
        assert wait_until(lambda: pool.idle() or pool.results(0.1), timeout=120)  # models loaded
        frames = [np.zeros((2160, 3840, 3), np.uint8) for _ in range(DEPTH)]  # 25 MB each
        started = time.monotonic()
        for job_id, frame in enumerate(frames):
            pool.submit(job_id, frame)
        assert time.monotonic() - started < 1.0 and pool.idle() == 0
        done: list = []
        assert wait_until(lambda: done.extend(pool.results(0.1)) or len(done) == DEPTH, timeout=120)
        assert sorted(job_id for job_id, _ in done) == list(range(DEPTH))
    finally:
        pool.close()
