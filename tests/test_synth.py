"""The synthetic plate/video fixtures: shapes, determinism, frame bookkeeping, and that a real OCR
reads the plates back (so the fixture is usable by the worker's tests and `make demo`)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

import synth

PLATES = ["7ABC123", "8XYZ442", "4GHJ907"]
FPS, SECONDS, GAP = 10, 3.0, 1.0


@pytest.mark.parametrize("height", [40, 120, 201])
def test_plate_is_bgr_uint8_with_a_2_to_1_aspect(height):
    plate = synth.render_plate("7ABC123", height=height)
    assert plate.dtype == np.uint8
    assert plate.shape == (height, 2 * height, 3)


@pytest.mark.parametrize("state", [*synth.STYLES, "OREGON"])
def test_every_style_draws_dark_characters_on_a_light_plate(state):
    gray = cv2.cvtColor(synth.render_plate("8XYZ442", state=state), cv2.COLOR_BGR2GRAY)
    registration = gray[45:95, 30:210]  # the band the big characters occupy at height 120
    assert np.median(gray) > 180
    assert (registration < 100).mean() > 0.2


def test_plate_rendering_is_deterministic():
    def render(seed):
        return synth.render_plate("7ABC123", rng=random.Random(seed))

    assert np.array_equal(synth.render_plate("7ABC123"), synth.render_plate("7ABC123"))
    assert np.array_equal(render(3), render(3))
    assert not np.array_equal(render(3), render(4))


def test_plate_text_is_normalised_and_validated():
    assert np.array_equal(synth.render_plate(" 7abc123 "), synth.render_plate("7ABC123"))
    synth.render_plate("AB-12 3")  # separators are allowed
    for bad in ["", "   ", "ÄB123", "AB_123"]:
        with pytest.raises(ValueError):
            synth.render_plate(bad)


def test_scene_puts_the_plate_unscaled_at_the_requested_centre():
    plate = synth.render_plate("4GHJ907", height=80)
    frame = synth.make_scene(plate, size=(640, 360), plate_center=(300, 200), rng=random.Random(1))
    assert frame.shape == (360, 640, 3) and frame.dtype == np.uint8
    assert np.array_equal(frame[160:240, 220:380], plate)
    synth.make_scene(plate, size=(640, 360), plate_center=(0, 0))  # clipped, not an error


def read_video(path: Path, keep: set[int]):
    """Frame count, size, the frames asked for, and each frame's mean difference from frame 0."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    kept, diffs, first = {}, [], None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        first = frame if first is None else first
        diffs.append(float(cv2.absdiff(frame, first).mean()))
        if len(diffs) - 1 in keep:
            kept[len(diffs) - 1] = frame
    cap.release()
    return len(diffs), size, kept, diffs


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "street.avi"
    passes = synth.write_video(path, PLATES, fps=FPS, seconds_per_vehicle=SECONDS,
                               gap_seconds=GAP, seed=7)
    count, size, frames, diffs = read_video(path, {p.middle_frame for p in passes})
    return path, passes, count, size, frames, diffs


def test_video_reads_back_with_the_expected_frames(video):
    path, passes, count, size, _, _ = video
    assert count == round(FPS * (GAP * (len(PLATES) + 1) + SECONDS * len(PLATES)))
    assert size == (1280, 720)
    assert path.stat().st_size < 6_000_000


def test_passes_cover_the_frames_where_a_vehicle_is(video):
    _, passes, count, _, _, diffs = video
    assert [p.plate for p in passes] == PLATES
    in_pass = set()
    for p in passes:
        assert p.last_frame - p.first_frame + 1 == FPS * SECONDS == len(p.boxes)
        in_pass.update(range(p.first_frame, p.last_frame + 1))
        for x, y, w, h in p.boxes:  # the plate is always wholly in view
            assert 0 <= x and x + w <= 1280 and 0 <= y and y + h <= 720 and w == 2 * h
    assert passes[0].first_frame == FPS * GAP
    assert all(a.last_frame < b.first_frame for a, b in zip(passes, passes[1:]))
    assert all((diffs[i] > 5) == (i in in_pass) for i in range(count))  # empty street between


def test_video_is_deterministic(tmp_path):
    def write(name):
        path = tmp_path / name
        passes = synth.write_video(path, ["7ABC123"], size=(320, 180), seconds_per_vehicle=1, seed=3)
        return passes, path.read_bytes()

    assert write("a.avi") == write("b.avi")


def test_a_real_ocr_reads_the_plate_in_the_middle_of_each_pass(video):
    """On the whole frame, and on the crop at the pass's plate box (which proves the box)."""
    rapidocr = pytest.importorskip("rapidocr_onnxruntime")
    ocr = rapidocr.RapidOCR()
    _, passes, _, _, frames, _ = video
    for p in passes:
        frame = frames[p.middle_frame]
        x, y, w, h = p.boxes[p.middle_frame - p.first_frame]
        for image in (frame, frame[y:y + h, x:x + w]):
            results, _ = ocr(image)
            texts = [re.sub(r"[^A-Z0-9]", "", text.upper()) for _, text, _ in results or []]
            assert p.plate in texts, (p.plate, texts)


def test_snapshot_folder_has_one_jpeg_per_plate(tmp_path):
    paths = synth.write_images(tmp_path / "snaps", PLATES, size=(640, 360))
    assert [p.name for p in paths] == ["000_7ABC123.jpg", "001_8XYZ442.jpg", "002_4GHJ907.jpg"]
    assert all(cv2.imread(str(p)).shape == (360, 640, 3) for p in paths)


def test_cli_writes_a_video_and_rejects_bad_plates(tmp_path, capsys):
    out = tmp_path / "demo.avi"
    assert synth.main(["video", str(out), "7ABC123", "--seconds", "1", "--gap", "0.5"]) == 0
    assert "7ABC123: frames 5-14" in capsys.readouterr().out
    assert cv2.VideoCapture(str(out)).isOpened()
    assert synth.main(["video", str(tmp_path / "bad.avi"), "NOT_OK"]) == 2
    assert not (tmp_path / "bad.avi").exists()
