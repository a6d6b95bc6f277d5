"""Capture threads against real sources: an MJPEG stream that drops, a failing snapshot URL,
a missing camera, and video files played at their own speed or flat out."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import free_port, wait_until
from tests.test_worker_helpers import FakeCamera
from tests.test_worker_units import street
import synth
from worker.capture.camera import BEHIND_FPS, CaptureThread
from worker.config import Camera
from worker.capture.sources import Grab, jpeg_size


def capture(camera: Camera, max_backoff_s: float = 30.0) -> tuple[CaptureThread, threading.Event]:
    stop = threading.Event()
    thread = CaptureThread(camera, stop, max_backoff_s=max_backoff_s)
    thread.start()
    return thread, stop


def drain(thread: CaptureThread) -> int:
    count = 0
    while thread.queue.get_nowait() is not None:
        count += 1
    return count


def watch_stream(cam: FakeCamera, connections: int, queue_size: int = 64) -> CaptureThread:
    """Capture `cam`'s MJPEG stream until it has hung up and been reopened `connections` times."""
    thread, stop = capture(Camera(name="s", token="cam_12345678", kind="stream", location=cam.url + "/stream",
                                  queue_size=queue_size))
    try:
        assert wait_until(lambda: cam.connections >= connections, timeout=20)
    finally:
        stop.set()
        thread.join(timeout=15)
        cam.close()
    return thread


def test_a_dropped_stream_is_reopened_and_frames_keep_coming():
    thread = watch_stream(FakeCamera(frames_per_connection=4), connections=3)
    assert thread.stats.errors >= 2 and thread.stats.frames >= 8  # reconnected, frames from each connection
    assert drain(thread) == thread.stats.frames - thread.stats.gated


def test_mjpeg_frames_are_decoded_only_when_taken_and_a_corrupt_one_is_skipped():
    """MJPEG frames arrive as JPEG packets: the gate looks at a reduced decode, the full frame is
    decoded when recognition takes it, and a corrupt frame counts as an error without ending the
    stream."""
    thread = watch_stream(FakeCamera(frames_per_connection=8, corrupt={3}), connections=2)
    assert thread.source.raw  # FFmpeg handed over the packets undecoded
    assert thread.stats.errors >= 2  # the corrupt frame, and the hang-up
    frames = []
    while (frame := thread.queue.get_nowait()) is not None:
        frames.append(frame)
    assert len(frames) >= 6
    assert not any(frame.grab._decoded for frame in frames)  # queued, not yet decoded
    image = frames[-1].image
    assert image.shape == (240, 320, 3) and image.max() > 200  # the bright block, full size


def test_a_camera_recognition_is_behind_on_is_examined_at_most_behind_fps(tmp_path: Path):
    """With its queue full (recognition is not taking its frames), a 20-fps camera's frames are
    examined BEHIND_FPS (5) times a second, not each one: every examined frame costs a decode, and
    more would only replace the waiting frame sooner. Fewer would leave that frame old."""
    def examined(queue_size: int) -> int:
        camera = Camera(name="s", token="cam_12345678", kind="file", location=str(tmp_path / "s.avi"),
                        realtime=True, queue_size=queue_size)  # played in real time: frames may drop
        thread = CaptureThread(camera, threading.Event())
        for i in range(40):  # 2 s at 20 frames/s, a vehicle moving across
            thread._handle(Grab(i / 20, lambda i=i: street(100 + 25 * i)))
        return thread.stats.frames

    assert examined(64) == 40  # keeping up: every frame is looked at
    assert examined(2) == pytest.approx(2 + 2 * BEHIND_FPS, abs=2)  # behind: the first two, then 5 a second


def test_a_jpeg_grab_gives_a_small_copy_without_a_full_decode():
    frame = np.zeros((720, 1280, 3), np.uint8)
    frame[300:420, 600:760] = 255
    jpeg = np.frombuffer(cv2.imencode(".jpg", frame)[1].tobytes(), np.uint8)
    decodes = []
    grab = Grab(0.0, lambda: decodes.append(1) or cv2.imdecode(jpeg, cv2.IMREAD_COLOR), jpeg=jpeg)
    small = grab.small(160)
    assert small.shape == (90, 160, 3) and grab.shape() == (720, 1280) and not decodes
    assert small[45, 85].min() > 200  # the white block, where it is in the frame
    assert grab.image().shape == (720, 1280, 3) and grab.image() is grab.image() and len(decodes) == 1
    assert grab.small(160).shape == (720, 1280, 3)  # decoded anyway: no second, smaller decode
    assert jpeg_size(jpeg[:2]) is None and jpeg_size(np.frombuffer(b"not a jpeg", np.uint8)) is None


def test_a_camera_that_is_not_there_is_retried_with_growing_delays():
    url = f"rtsp://127.0.0.1:{free_port()}/stream1"
    thread, stop = capture(Camera(name="s", token="cam_12345678", kind="stream", location=url), max_backoff_s=1.0)
    try:
        assert wait_until(lambda: thread.stats.errors >= 3, timeout=20)
    finally:
        stop.set()
        thread.join(timeout=15)
    assert thread.backoff.next() == 1.0  # 0.5, then 1.0: capped
    assert thread.stats.frames == 0 and not thread.finished


def test_snapshot_url_is_polled_and_failures_back_off():
    cam = FakeCamera(fail_first=2)
    thread, stop = capture(Camera(name="s", token="cam_12345678", kind="snapshot", location=cam.url + "/snap.jpg",
                                  poll_s=0.1, queue_size=64))
    try:
        assert wait_until(lambda: len(thread.queue) >= 3, timeout=20)
    finally:
        stop.set()
        thread.join(timeout=15)
        cam.close()
    assert thread.stats.errors == 2 and thread.stats.frames >= 3


def test_video_file_plays_at_its_own_speed_or_as_fast_as_it_is_read(tmp_path: Path):
    video = tmp_path / "v.avi"
    synth.write_video(video, ["7ABC123"], fps=10, size=(320, 180), seconds_per_vehicle=1.0, gap_seconds=0.5)
    frames = 20  # 5 empty, 10 with the car, 5 empty
    for realtime, within in ((True, (1.7, 6.0)), (False, (0.0, 1.5))):
        camera = Camera(name="f", token="cam_12345678", kind="file", location=str(video), realtime=realtime,
                        queue_size=64)
        started = time.monotonic()
        thread, _ = capture(camera)
        thread.join(timeout=20)
        took = time.monotonic() - started
        assert thread.finished and thread.stats.frames == frames
        assert within[0] <= took <= within[1], (realtime, took)
        assert thread.clock() == float("inf")  # ended: every open track may be closed
        queued = drain(thread)
        assert 10 <= queued <= 12 and thread.stats.gated == frames - queued


def test_fps_cap_skips_frames_before_they_are_examined(tmp_path: Path):
    video = tmp_path / "v.avi"
    synth.write_video(video, ["7ABC123"], fps=10, size=(320, 180), seconds_per_vehicle=2.0, gap_seconds=0.0)
    camera = Camera(name="f", token="cam_12345678", kind="file", location=str(video), realtime=False, fps_cap=2.5,
                    queue_size=64)
    thread, _ = capture(camera)
    thread.join(timeout=20)
    assert thread.stats.frames == 5 and drain(thread) == 5  # 20 frames at 10 fps, 2.5 kept per second
