"""The traffic benchmark's cameras: footage made from a photo, served as live MJPEG streams.
No labelled photos needed: the photo here is a drawn plate on a drawn street."""

from __future__ import annotations

import cv2
import numpy as np

from bench.footage import APPROACH_FRAMES, EMPTY_FRAMES, SIZE, SLOT_FRAMES, ClipLibrary, Feed, Photo, approach
from bench.mjpeg import MjpegCameras


def drawn_photo(width: int = 1280, height: int = 720) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A grey street with a white plate reading 7ABC123 at a known box."""
    image = np.full((height, width, 3), 110, np.uint8)
    cv2.rectangle(image, (0, 0), (width, height // 4), (150, 140, 130), -1)
    box = (700, 420, 120, 60)
    x, y, w, h = box
    cv2.rectangle(image, (x, y), (x + w, y + h), (245, 245, 245), -1)
    cv2.putText(image, "7ABC123", (x + 6, y + 40), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (20, 20, 20), 2)
    return image, box


def test_a_vehicle_approaches_its_plate_grows_and_stays_in_view():
    image, box = drawn_photo(1600, 1000)  # not 16:9: the views are cut from it
    frames, boxes = approach(image, box)
    assert len(frames) == APPROACH_FRAMES
    assert all(f.shape == (SIZE[1], SIZE[0], 3) for f in frames)
    widths = [b[2] for b in boxes]
    assert widths == sorted(widths) and widths[-1] >= 1.9 * widths[0]
    for (x, y, w, h), frame in zip(boxes, frames):
        assert 0 <= x and x + w <= SIZE[0] and 0 <= y and y + h <= SIZE[1]
        assert frame[y + h // 2, x + 3].mean() > 200  # the plate's white edge is where the box says


def frame_number(image: np.ndarray, clip: list[np.ndarray], empty: np.ndarray) -> int:
    """Which clip frame (or -1: the empty street) a received frame is, by nearest picture."""
    candidates = [empty, *clip]
    errors = [np.abs(image.astype(np.int16) - c.astype(np.int16)).mean() for c in candidates]
    return int(np.argmin(errors)) - 1


def one_photo_library(tmp_path) -> ClipLibrary:
    image, box = drawn_photo()
    path = tmp_path / "car.jpg"
    cv2.imwrite(str(path), image)
    library = ClipLibrary([Photo(path, "7ABC123", box)])
    library.prepare({0})
    return library


def test_a_client_reads_the_mjpeg_stream_frame_by_frame_in_order(tmp_path):
    library = one_photo_library(tmp_path)
    decode = lambda data: cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # noqa: E731
    clip, empty = [decode(d) for d in library.clips[0]], decode(library.empty)
    feed = Feed("cam01", [0], library, vehicles=1)
    with MjpegCameras([feed]) as cameras:
        capture = cv2.VideoCapture(cameras.url(0), cv2.CAP_FFMPEG)
        assert capture.isOpened()
        assert cameras.wait_connected(5)
        cameras.start(delay=0.3)
        seen = []
        for _ in range(12 + APPROACH_FRAMES + EMPTY_FRAMES // 2):
            ok, received = capture.read()
            assert ok and received.shape == (SIZE[1], SIZE[0], 3)
            seen.append(frame_number(received, clip, empty))
        capture.release()
    shown = [n for n in seen if n >= 0]
    assert shown == sorted(shown) and len(set(shown)) >= APPROACH_FRAMES - 2  # in order, few if any missed
    assert seen[-1] == -1  # the vehicle has passed: empty street again
    assert 0 in feed.first_sent


def test_a_push_counts_for_the_vehicle_shown_on_its_camera_before_it_and_no_other():
    from bench.traffic import Vehicle, match_alerts

    vehicles = [Vehicle("cam01", 0, "AAA111", True, 10.0), Vehicle("cam02", 0, "BBB222", False, 11.0),
                Vehicle("cam01", 1, "CCC333", True, 12.0)]
    alerts = {
        1: {"camera": "cam01", "plate": "AAA111", "arrived": 12.5},  # its vehicle, 2.5 s after it came into view
        2: {"camera": "cam02", "plate": "AAA111", "arrived": 13.0},  # never shown on cam02: false
        3: {"camera": "cam01", "plate": "CCC333", "arrived": 11.0},  # before the vehicle came: false
        4: {"camera": "cam01", "plate": "CCC333", "arrived": 30.0},  # after the worker was stopped
    }
    assert match_alerts(vehicles, alerts, stopped_at=20.0) == (2, 1)
    assert [v.push_s for v in vehicles] == [2.5, None, None]


def test_frames_dropped_come_from_the_last_summary_of_each_camera():
    from bench.traffic import frames_dropped

    log = ("camera cam01: 10.0 frames/s, 100 frames, 50 without motion, 7 dropped, 0 errors\n"
           "camera cam01: read ABC123 (confidence 0.90, 3 frames, colour red) spooled as x\n"
           "camera cam02: 10.0 frames/s, 100 frames, 50 without motion, 3 dropped, 0 errors\n"
           "camera cam01: 10.0 frames/s, 200 frames, 90 without motion, 15 dropped, 0 errors\n")
    assert frames_dropped(log) == 18
    assert frames_dropped("worker stopped") is None


def test_a_staggered_camera_shows_its_vehicles_later_by_its_phase(tmp_path):
    library = one_photo_library(tmp_path)
    aligned, staggered = Feed("cam01", [0], library, vehicles=2), Feed("cam02", [0], library, vehicles=2, phase=15)
    assert aligned.frame(0) == (library.clips[0][0], 0) and staggered.frame(0) == (library.empty, None)
    assert staggered.frame(15) == (library.clips[0][0], 0) and staggered.frame(15 + SLOT_FRAMES) == (library.clips[0][0], 1)
    assert staggered.frame(15 + 2 * SLOT_FRAMES) == (library.empty, None)  # both vehicles shown, then the street
