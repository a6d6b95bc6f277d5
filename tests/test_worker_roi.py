"""A camera's region of interest: the worker searches for plates only there, and the boxes it
posts stay in frame pixels. Driven through the real worker on a synthetic video file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synth import write_video
from worker.__main__ import Worker
from worker.config import Camera, Config, ConfigError, finish, load_config
from worker.recognize.loader import load_recognizer


@pytest.fixture(scope="module")
def recognize():
    return load_recognizer()


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> tuple[Path, tuple[int, int, int, int]]:
    """One vehicle passing; and the box around its plate in every frame (x, y, w, h)."""
    path = tmp_path_factory.mktemp("roi") / "street.avi"
    (vehicle,) = write_video(path, ["7RKT123"], fps=10, seconds_per_vehicle=1.5, gap_seconds=0.5, seed=3)
    x0 = min(b[0] for b in vehicle.boxes)
    y0 = min(b[1] for b in vehicle.boxes)
    x1 = max(b[0] + b[2] for b in vehicle.boxes)
    y1 = max(b[1] + b[3] for b in vehicle.boxes)
    return path, (x0, y0, x1 - x0, y1 - y0)


def reads_with_roi(tmp: Path, video: Path, recognize, roi: list[int] | None) -> list[dict]:
    camera = Camera(name="cam", token="pwc_12345678", kind="file", location=str(video), realtime=False, roi=roi)
    config = finish(Config(server="http://127.0.0.1:9", spool=tmp / "spool", cameras=[camera]), tmp, "test")
    Worker(config, recognize, exit_when_done=True, drain_s=0).run()
    return [json.loads(p.read_text())["read"] for p in (tmp / "spool").glob("*.json")]


def test_a_plate_inside_the_roi_is_read_with_frame_coordinates(tmp_path, video, recognize):
    path, (x, y, w, h) = video
    roi = [max(0, x - 80), max(0, y - 60), w + 160, h + 120]
    (read,) = reads_with_roi(tmp_path, path, recognize, roi)
    box = read["box"]
    assert read["plate"] == "7RKT123"
    assert x - 8 <= box["x"] and box["x"] + box["w"] <= x + w + 8  # the frame's pixels, not the roi's
    assert y - 8 <= box["y"] and box["y"] + box["h"] <= y + h + 8


def test_a_plate_outside_the_roi_is_not_read(tmp_path, video, recognize):
    path, (x, y, w, h) = video
    beside = [x + w + 40, 0, 1280 - (x + w + 40), 720] if x + w + 40 <= 1280 - 64 else [0, 0, max(64, x - 40), 720]
    assert reads_with_roi(tmp_path, path, recognize, beside) == []


def test_an_roi_outside_the_frame_is_logged_and_nothing_is_read(tmp_path, video, recognize, caplog):
    path, _ = video
    assert reads_with_roi(tmp_path, path, recognize, [2000, 0, 100, 100]) == []
    assert "roi [2000, 0, 100, 100] lies outside the 1280x720 frame" in caplog.text


def test_roi_in_config_is_checked(tmp_path: Path):
    path = tmp_path / "worker.toml"
    base = 'server = "http://127.0.0.1:8080"\n[[cameras]]\nname = "a"\ntoken = "pwc_12345678"\nkind = "file"\nlocation = "v.avi"\n'
    path.write_text(base + "roi = [0, 200, 1280, 400]\n")
    assert load_config(path).cameras[0].roi == [0, 200, 1280, 400]
    path.write_text(base + "roi = [0, 200, 10, 400]\n")
    with pytest.raises(ConfigError, match="at least 32"):
        load_config(path)
    path.write_text(base + "roi = [0, 200]\n")
    with pytest.raises(ConfigError, match="roi"):
        load_config(path)
