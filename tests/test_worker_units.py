"""Worker pieces on their own: tracking and voting, the motion gate, the dropping queue, backoff,
config errors, colour naming, and the spool's crash safety."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from contract.wire import ReadIn
from worker.capture.camera import Backoff, FrameQueue, MotionGate
from worker.colour import vehicle_colour
from worker.config import Camera, ConfigError, Motion, demo_config, load_config
from worker.post import Spool, SpoolBusy
from worker.track import Sighting, Tracker, box_distance, levenshtein, vote

FRAME = np.full((360, 640, 3), 90, np.uint8)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sighting(text: str, conf: float = 0.9, x: int = 100, y: int = 100, w: int = 120, cands=()) -> Sighting:
    return Sighting(text, conf, (x, y, w, w // 2), tuple(cands))


# ---------------------------------------------------------------- tracker


def test_one_vehicle_over_several_frames_gives_one_read_after_the_timeout():
    clock = FakeClock()
    tracker = Tracker("cam", timeout_s=1.0, min_frames=2, clock=clock)
    texts = ["7ABC123", "7ABC123", "7A8C123", "7ABC123"]
    for i, text in enumerate(texts):
        clock.now = i * 0.1
        assert tracker.observe([sighting(text, x=100 + 15 * i, y=100 + 20 * i)], FRAME) == []
    clock.now = 1.0
    assert tracker.expire() == []  # 0.7 s unseen: still the same vehicle
    clock.now = 1.5
    (read,) = tracker.expire()
    assert (read.plate, read.frames, read.camera) == ("7ABC123", 4, "cam")
    assert dict(read.candidates)["7A8C123"] < read.confidence
    assert tracker.tracks == [] and tracker.expire() == []


def test_two_vehicles_in_one_frame_are_two_tracks():
    clock = FakeClock()
    tracker = Tracker("cam", timeout_s=0.5, min_frames=2, clock=clock)
    for i in range(3):
        clock.now = i * 0.1
        tracker.observe([sighting("7ABC123", x=50 + 5 * i), sighting("8XYZ442", x=400 - 5 * i)], FRAME)
    clock.now = 2
    assert sorted(r.plate for r in tracker.expire()) == ["7ABC123", "8XYZ442"]


def test_overlapping_sightings_of_one_plate_count_once():
    tracker = Tracker("cam", timeout_s=1, min_frames=1)
    tracker.observe([sighting("7ABC123", 0.9), sighting("7A8C123", 0.6, x=105)], FRAME, t=0.0)
    assert len(tracker.tracks) == 1 and tracker.tracks[0].sightings[0].text == "7ABC123"


def test_far_away_box_with_a_different_text_starts_a_new_track():
    tracker = Tracker("cam", timeout_s=5, min_frames=1)
    tracker.observe([sighting("7ABC123", x=10)], FRAME, t=0.0)
    tracker.observe([sighting("7ABC128", x=500)], FRAME, t=0.1)  # close text, but far away
    tracker.observe([sighting("7ABC128", x=20)], FRAME, t=0.2)  # near the first, same plate after a misread
    assert len(tracker.tracks) == 2


def test_same_text_anywhere_joins_the_track_like_consecutive_snapshots():
    tracker = Tracker("cam", timeout_s=5, min_frames=2)
    tracker.observe([sighting("7ABC123", x=10)], FRAME, t=0.0)
    tracker.observe([sighting("7ABC123", x=500, w=60)], FRAME, t=1.0)
    (read,) = tracker.flush()
    assert read.frames == 2


def test_short_or_unsure_tracks_are_dropped():
    tracker = Tracker("cam", timeout_s=0.5, min_frames=2, min_confidence=0.6)
    tracker.observe([sighting("7ABC123")], FRAME, t=0.0)  # seen once
    tracker.observe([sighting("QQQ111", 0.3, x=400), ], FRAME, t=0.0)
    tracker.observe([sighting("QQQ111", 0.3, x=405)], FRAME, t=0.1)  # twice but unsure
    assert tracker.flush() == []


def test_a_parked_car_keeps_one_track_with_bounded_memory():
    tracker = Tracker("cam", timeout_s=1, min_frames=2)
    crop = np.zeros((60, 120, 3), np.uint8)
    for i in range(500):
        tracker.observe([Sighting("7ABC123", 0.9, (100, 100, 120, 60), (), crop)], FRAME, t=i * 0.1)
    (track,) = tracker.tracks
    assert track.frames == 500 and len(track.sightings) == 200 and track.sightings[0].crop is None
    (read,) = tracker.flush()
    assert read.frames == 500 and read.view.plate_crop is crop


def test_per_character_vote_fixes_a_different_character_in_each_frame():
    reads = [sighting("7A8C123", 0.8), sighting("7ABC128", 0.7), sighting("7ABC123", 0.6), sighting("1ABC123", 0.6)]
    plate, confidence, candidates = vote(reads)
    assert plate == "7ABC123"
    assert candidates[0][0] == "7ABC123" and 0 < confidence <= 1
    assert {"7A8C123", "7ABC128"} <= {t for t, _ in candidates}


def test_whole_text_vote_is_confidence_weighted_and_uses_candidates():
    reads = [sighting("8XYZ442", 0.95, cands=[("8XYZ442", 0.95), ("BXYZ442", 0.04)]),
             sighting("BXYZ442", 0.40, cands=[("BXYZ442", 0.40), ("8XYZ442", 0.38)])]
    plate, confidence, _ = vote(reads)
    assert plate == "8XYZ442" and confidence == pytest.approx((0.95 + 0.38) / 2)


def test_the_read_keeps_the_sharpest_plate_crop_and_a_vehicle_crop_around_it():
    image = np.full((720, 1280, 3), 120, np.uint8)
    blurry = image.copy()
    for img in (image, blurry):
        cv2.rectangle(img, (600, 400), (720, 460), (240, 240, 240), -1)
        cv2.putText(img, "7ABC123", (606, 442), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (20, 20, 20), 2)
    blurry = cv2.GaussianBlur(blurry, (15, 15), 5)
    tracker = Tracker("cam", timeout_s=1, min_frames=2)
    when = [datetime(2024, 5, 1, 12, 0, s, tzinfo=UTC) for s in range(3)]
    for i, img in enumerate([blurry, image, blurry]):
        tracker.observe([sighting("7ABC123", x=600, y=400, w=120)], img, t=i * 0.1, captured_at=when[i])
    (read,) = tracker.flush()
    assert read.view.captured_at == when[1]  # the sharp frame
    vh, vw = read.view.vehicle_crop.shape[:2]
    assert 4 * 120 <= vw <= 5 * 120 and vh < 720 and vw < 1280  # the rear of the car, not the scene
    px, py, pw, ph = read.view.plate_in_vehicle
    assert (pw, ph) == (120, 60) and read.view.box == (600, 400, 120, 60)


def test_text_and_box_distances():
    assert levenshtein("7ABC123", "7ABC123") == 0
    assert levenshtein("7ABC123", "7ABC12") == 1
    assert levenshtein("7ABC123", "1ABC128") == 2
    assert box_distance((0, 0, 100, 50), (100, 0, 100, 50)) == pytest.approx(1.0)
    assert box_distance((0, 0, 100, 50), (0, 0, 300, 150)) == float("inf")


# ---------------------------------------------------------------- capture


def street(car_x: int | None = None) -> np.ndarray:
    frame = np.full((720, 1280, 3), 80, np.uint8)
    cv2.line(frame, (640, 0), (640, 720), (200, 200, 200), 8)
    if car_x is not None:
        cv2.rectangle(frame, (car_x, 300), (car_x + 200, 450), (30, 30, 170), -1)  # as bright as the road
    return frame


def test_motion_gate_passes_moving_frames_and_gates_static_ones():
    gate = MotionGate(Motion())
    rng = np.random.default_rng(0)
    noisy = [np.clip(street().astype(np.int16) + rng.integers(-4, 5, (720, 1280, 3)), 0, 255).astype(np.uint8)
             for _ in range(5)]
    assert gate.passes(noisy[0])  # the first frame has nothing to compare with
    assert not any(gate.passes(f) for f in noisy[1:])  # sensor noise is not motion
    assert all(gate.passes(street(x)) for x in range(100, 600, 100))  # a car moving
    assert not gate.passes(street(500))  # ... and stopped


def test_motion_gate_drops_the_frame_a_vehicle_has_just_left():
    gate = MotionGate(Motion())
    gate.passes(street()), gate.passes(street())  # the empty street, at rest
    assert gate.passes(street(300)) and gate.passes(street(400))  # a car drives through
    assert not gate.passes(street())  # gone: it differs from the frame before, but it is the street
    assert gate.passes(street(100))  # the next car


def test_motion_gate_passes_a_parked_car_driving_off():
    gate = MotionGate(Motion())
    gate.passes(street()), gate.passes(street())
    assert gate.passes(street(300))  # a car arrives and parks ...
    assert not gate.passes(street(300))  # ... and is now part of the scene at rest
    assert gate.passes(street(400))  # it drives off: motion against the street it stood in


def test_motion_gate_can_be_switched_off():
    gate = MotionGate(Motion(enabled=False))
    assert gate.passes(street()) and gate.passes(street())


def test_queue_drops_the_oldest_frame_when_full():
    wake = threading.Event()
    queue = FrameQueue(3, wake)
    results = [queue.put(i) for i in range(5)]
    assert results == [True, True, True, False, False] and queue.dropped == 2 and wake.is_set()
    assert [queue.get_nowait() for _ in range(4)] == [2, 3, 4, None]


def test_queue_remembers_how_long_its_camera_has_waited_through_drops_until_a_take():
    """The recognition lag a camera reports counts from its first frame not yet searched, also
    when that frame was pushed out by newer ones."""
    queue = FrameQueue(2)
    assert queue.since is None
    before = time.monotonic()
    queue.put("a")
    first = queue.since
    assert first >= before
    time.sleep(0.01)
    queue.put("b"), queue.put("c")  # "a" dropped: the camera has still waited since it came
    assert queue.since == first
    assert queue.newest() == ("c", 1) and queue.since is None
    queue.put("d"), queue.put("e")
    waiting = queue.since
    assert queue.get_nowait() == "d" and queue.since > waiting  # now "e" is the longest waiting


def test_lossless_put_waits_for_room_and_gives_up_on_stop():
    queue, stop = FrameQueue(1), threading.Event()
    queue.put("a")
    threading.Timer(0.1, queue.get_nowait).start()
    assert queue.put_wait("b", stop) and queue.get_nowait() == "b"
    queue.put("c")
    stop.set()
    assert not queue.put_wait("d", stop)


def test_backoff_doubles_up_to_the_cap_and_resets():
    backoff = Backoff(initial=0.5, cap=4.0)
    assert [backoff.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next() == 0.5


# ---------------------------------------------------------------- config


def test_config_with_an_unknown_key_names_the_key_and_the_file(tmp_path: Path):
    path = tmp_path / "worker.toml"
    path.write_text('server = "http://127.0.0.1:8080"\n[[cameras]]\nname = "a"\ntoken = "cam_12345678"\n'
                    'kind = "file"\nlocation = "x.avi"\nfps_caps = 5\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "fps_caps" in str(err.value) and str(path) in str(err.value) and "cameras[0]" in str(err.value)


def test_config_checks_sources_and_resolves_paths(tmp_path: Path):
    path = tmp_path / "worker.toml"
    path.write_text('server = "http://127.0.0.1:8080"\n[[cameras]]\nname = "a"\ntoken = "cam_12345678"\n'
                    'kind = "stream"\nlocation = "/dev/video0"\n')
    with pytest.raises(ConfigError, match="rtsp"):
        load_config(path)
    path.write_text('server = "http://127.0.0.1:8080"\n[[cameras]]\nname = "a"\ntoken = "cam_12345678"\n'
                    'kind = "folder"\nlocation = "in"\n[cameras.motion]\nmin_changed = 0.01\n')
    config = load_config(path)
    assert config.spool == tmp_path / "spool" and config.cameras[0].location == str(tmp_path / "in")
    assert config.cameras[0].motion.min_changed == 0.01 and config.min_frames(config.cameras[0]) == 2


def test_the_example_in_the_config_docs_loads(tmp_path: Path):
    import worker.config

    example = "\n".join(line[4:] for line in worker.config.__doc__.splitlines() if line.startswith("    "))
    (tmp_path / "worker.toml").write_text(example)
    config = load_config(tmp_path / "worker.toml")
    assert [c.kind for c in config.cameras] == ["stream", "snapshot"] and config.cameras[0].fps_cap == 8


def test_demo_config_is_built_in_code(tmp_path: Path):
    config = demo_config("http://127.0.0.1:8080", "cam_12345678", tmp_path / "demo.avi", tmp_path / "spool")
    assert isinstance(config.cameras[0], Camera) and config.cameras[0].loop


# ---------------------------------------------------------------- colour


@pytest.mark.parametrize("name,bgr", [
    ("white", (235, 235, 232)), ("silver", (185, 185, 183)), ("grey", (110, 110, 105)), ("black", (40, 40, 42)),
    ("red", (35, 35, 170)), ("blue", (140, 75, 30)), ("green", (60, 90, 50)), ("yellow", (30, 200, 230)),
    ("beige", (150, 175, 200)), ("brown", (40, 70, 110)),
])
def test_vehicle_colour_is_named_from_the_body_around_the_plate(name, bgr):
    frame = np.full((720, 1280, 3), 90, np.uint8)
    cv2.rectangle(frame, (220, 220), (1060, 450), bgr, -1)  # the car's rear
    cv2.rectangle(frame, (560, 360), (720, 440), (240, 240, 240), -1)  # a white plate
    cv2.line(frame, (300, 280), (980, 280), (0, 0, 0), 3)  # a panel line
    colour, confidence = vehicle_colour(frame, (560, 360, 160, 80))
    assert colour == name and confidence > 0.8


def test_no_colour_when_the_body_is_out_of_the_picture():
    assert vehicle_colour(np.zeros((40, 80, 3), np.uint8), (0, 0, 80, 40)) is None


# ---------------------------------------------------------------- spool


def a_read(plate: str = "7ABC123") -> ReadIn:
    return ReadIn(id=uuid.uuid4(), plate=plate, confidence=0.9, captured_at=datetime.now(UTC))


def test_spool_keeps_reads_oldest_first_and_cleans_up_after_a_crash(tmp_path: Path):
    spool = Spool(tmp_path)
    first, second = a_read("AAA111"), a_read("BBB222")
    stem1 = spool.put("cam", first, {"plate_image": b"\xff\xd8\xffjpeg"})
    stem2 = spool.put("cam", second, {})
    (tmp_path / "00000000000000000001-dead.plate_image.jpg").write_bytes(b"orphan")  # its JSON never landed
    (tmp_path / f"{stem2}.json.tmp").write_bytes(b"{half")
    with pytest.raises(SpoolBusy):
        Spool(tmp_path)  # a second worker on the same spool
    spool.close()
    reopened = Spool(tmp_path)
    assert reopened.stems() == [stem1, stem2]
    entry, images = reopened.load(stem1)
    assert entry.read == first and entry.camera == "cam" and images == {"plate_image": b"\xff\xd8\xffjpeg"}
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted(
        [f"{stem1}.json", f"{stem1}.plate_image.jpg", f"{stem2}.json", "lock"])
    reopened.reject(stem1, "400 bad plate")
    reopened.delete(stem2)
    assert len(reopened) == 0
    assert (tmp_path / "rejected" / f"{stem1}.reason.txt").read_text() == "400 bad plate"


def test_a_settled_read_comes_out_at_once_and_a_changed_text_later_under_the_same_id():
    tracker = Tracker("cam", timeout_s=1.0, min_frames=2)
    tracker.observe([sighting("7ABC128", 0.95)], FRAME, t=0.0)
    assert tracker.settled() == [] and tracker.needs_reading()  # one read is not settled
    tracker.observe([sighting("7ABC128", 0.95, x=110)], FRAME, t=0.1)
    (first,) = tracker.settled()
    assert (first.plate, first.revision) == ("7ABC128", 0) and not tracker.needs_reading()
    assert tracker.settled() == []  # once per vehicle
    for i in range(2, 8):  # nearer, sharper: the last character was a B
        tracker.observe([sighting("7ABC12B", 0.99, x=100 + 10 * i)], FRAME, t=i * 0.1)
    (refined,) = tracker.flush()
    assert (refined.plate, refined.id, refined.revision) == ("7ABC12B", first.id, 1)


def test_a_posted_vehicle_seen_again_after_a_gap_is_not_read_twice():
    tracker = Tracker("cam", timeout_s=0.5, min_frames=2)
    for i in range(2):
        tracker.observe([sighting("7ABC123", x=100 + 10 * i)], FRAME, t=i * 0.1)
    assert len(tracker.settled()) == 1
    assert tracker.expire(1.0) == []  # lost for a moment; its read is out already
    tracker.observe([sighting("7ABC123", x=160)], FRAME, t=1.2)
    assert tracker.opened == 1 and tracker.flush() == []


def test_three_agreeing_reads_settle_a_vehicle_at_the_usual_confidence():
    tracker = Tracker("cam", timeout_s=1.0, min_frames=2)
    for i in range(2):
        tracker.observe([sighting("6WAW786", 0.65, x=100 + 10 * i)], FRAME, t=i * 0.1)
    assert tracker.settled() == []  # two reads at 0.65: not yet
    tracker.observe([sighting("6WAW786", 0.65, x=120)], FRAME, t=0.2)
    (read,) = tracker.settled()
    assert read.plate == "6WAW786"


def test_one_sure_read_settles_a_vehicle_only_when_looks_are_scarce():
    calm, scarce = Tracker("cam", min_frames=2), Tracker("cam", min_frames=2)
    calm.observe([sighting("7ABC123", 0.95)], FRAME, t=0.0)
    scarce.observe([sighting("7ABC123", 0.95)], FRAME, t=0.0, scarce=True)
    assert calm.settled() == [] and [r.plate for r in scarce.settled()] == ["7ABC123"]
    unsure = Tracker("cam", min_frames=2)
    unsure.observe([sighting("8XYZ442", 0.45)], FRAME, t=0.0, scarce=True)
    assert unsure.settled() == [] and unsure.flush() == []  # one read, not sure enough: dropped
    late = Tracker("cam", min_frames=2)  # settled only at the end of the track: posted then
    late.observe([sighting("4GHJ907", 0.97)], FRAME, t=0.0, scarce=True)
    late.observe([], FRAME, t=0.1)
    assert [r.plate for r in late.expire(5.0)] == ["4GHJ907"]
    assert calm.flush() == []  # one read of a vehicle that had its looks: not enough


def test_a_read_vehicle_ends_when_the_scene_comes_to_rest_and_the_next_one_is_waited_for():
    tracker = Tracker("cam", timeout_s=1.5, min_frames=2)
    for i in range(2):
        tracker.observe([sighting("7ABC123", 0.95, x=100 + 10 * i)], FRAME, t=i * 0.1)
    tracker.observe([sighting("8XYZ442", 0.4, x=500)], FRAME, t=0.2)  # another, not read yet
    assert [r.plate for r in tracker.settled()] == ["7ABC123"]
    assert tracker.end_read_before(0.15) == []  # seen since: still in view
    assert tracker.end_read_before(0.5) == [] and len(tracker.tracks) == 1  # posted already: nothing more
    assert tracker.tracks[0].last_text == "8XYZ442"  # the unread one keeps its timeout
    tracker.observe([sighting("7ABC123", 0.95, x=300)], FRAME, t=1.0)  # it had only stopped
    assert tracker.expire(9.0) == [] and tracker.opened == 2  # revived: one vehicle, one read


def test_queue_gives_the_newest_frame_and_drops_the_rest():
    queue = FrameQueue(4)
    for item in "abc":
        queue.put(item)
    assert queue.newest() == ("c", 2) and len(queue) == 0
    queue.put("d")
    assert queue.newest() == ("d", 0)
    assert queue.newest() == (None, 0)

def test_a_sign_read_in_view_does_not_make_the_vehicle_read():
    tracker = Tracker("cam", min_frames=2)
    for i in range(2):
        tracker.observe([sighting("EXIT", 0.95, x=600 + 10 * i)], FRAME, t=i * 0.1)
    assert [r.plate for r in tracker.settled()] == ["EXIT"]
    assert tracker.needs_reading()  # a settled sign: the vehicle's plate is still to be found
    for i in range(2, 4):
        tracker.observe([sighting("7ABC123", 0.95, x=100 + 10 * i)], FRAME, t=i * 0.1)
    assert [r.plate for r in tracker.settled()] == ["7ABC123"] and not tracker.needs_reading()
