"""The worker under load, with the real model and the real server: recognition processes that die
are replaced, hits are posted while the vehicle is still in view, a flooding camera does not
starve a quiet one, a vehicle about to leave is looked at before one just arrived, and overload
is reported in the heartbeat."""

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
import pytest

from tests.conftest import Department, run_cli, wait_until
from tests.test_worker_helpers import (
    RECOGNIZER_SPEC, FakeCamera, camera_toml, recognizer, serve_loopback, stored_reads, write_config,
)
from tests.test_worker_live import drop_images, start
from tests.test_worker_units import street
import synth
from worker.__main__ import Worker
from worker.capture.sources import Grab
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


def scarce_test_worker(tmp_path: Path, names: list[str]) -> Worker:
    """A worker whose capture threads are not started: the test hands them frames itself."""
    cameras = "".join(camera_toml(name, "camera-token", "file", str(tmp_path / f"{name}.avi"), realtime=True)
                      for name in names)
    config = load_config(write_config(tmp_path / "worker.toml", "http://127.0.0.1:9", cameras))
    return Worker(config, lambda image, quick=False: [])


def show(worker: Worker, camera: str, timeline: list[tuple[float, np.ndarray]]) -> None:
    """What the camera's capture thread would have seen, the worker keeping up: the last frame waits."""
    capture = worker.captures[camera]
    for t, image in timeline:
        capture.queue.newest()
        capture._handle(Grab(t, lambda image=image: image))


def vehicle(start: float, seconds: float) -> list[tuple[float, np.ndarray]]:
    return [(start + i / 10, street(100 + 40 * (i % 15))) for i in range(round(seconds * 10))]


def still(start: float, seconds: float) -> list[tuple[float, np.ndarray]]:
    return [(start + i / 10, street()) for i in range(round(seconds * 10))]


def test_when_looks_are_scarce_a_vehicle_about_to_leave_goes_before_one_just_arrived(tmp_path: Path):
    """Two cameras, in turn order south then north: north's vehicle has been in view for a second,
    south's has just come. With looks to spare the turn decides; when they are scarce north's
    vehicle gets the look first (a far plate reads worst, and north's may be gone by the next
    look), and south's the look after it: nobody is skipped."""
    def first_two_looks(scarce: bool) -> list[str]:
        worker = scarce_test_worker(tmp_path, ["north", "south"])
        try:
            show(worker, "north", still(0.0, 0.5) + vehicle(0.5, 1.1))
            show(worker, "south", still(0.0, 1.5) + vehicle(1.5, 0.1))
            worker.looks.turn = 1  # south's turn next
            return [worker.looks.next_frame(scarce).camera for _ in range(2)]
        finally:
            worker.spool.close()

    assert first_two_looks(scarce=False) == ["south", "north"]
    assert first_two_looks(scarce=True) == ["north", "south"]


def test_how_long_a_vehicle_waits_for_its_first_look_follows_how_long_its_camera_sees_vehicles(tmp_path: Path):
    """A camera whose vehicles stay 3 s in view: one there for 1 s has only just arrived (it waits
    for its first look behind older ones while looks are scarce); after 1.6 s it is due."""
    worker = scarce_test_worker(tmp_path, ["north"])
    try:
        show(worker, "north", still(0.0, 0.5) + vehicle(0.5, 3.0) + still(3.5, 0.5) + vehicle(4.0, 3.0)
             + still(7.0, 0.5))
        assert worker.captures["north"].usual_dwell_s == pytest.approx(3.0)
        show(worker, "north", vehicle(7.5, 1.1))
        assert worker.looks.just_arrived("north")
        show(worker, "north", vehicle(8.6, 0.6))
        assert not worker.looks.just_arrived("north")
    finally:
        worker.spool.close()
