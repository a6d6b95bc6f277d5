"""A camera's region of interest: plates are searched only there, and boxes stay in frame pixels."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.__main__ import recognize_in_roi
from worker.config import ConfigError, load_config
from worker.recognize.loader import load_recognizer
from synth import make_scene, render_plate


@pytest.fixture(scope="module")
def recognize():
    return load_recognizer()


@pytest.fixture(scope="module")
def scene():
    return make_scene(render_plate("7RKT123", height=110), plate_center=(400, 430))


def test_plate_inside_roi_is_read_with_frame_coordinates(recognize, scene):
    whole = recognize_in_roi(recognize, scene, None)
    inside = recognize_in_roi(recognize, scene, [100, 250, 700, 400])
    assert [s.text for s in whole][:1] == ["7RKT123"] and [s.text for s in inside][:1] == ["7RKT123"]
    (wx, wy, ww, wh), (ix, iy, iw, ih) = whole[0].box, inside[0].box
    assert abs(wx - ix) <= 6 and abs(wy - iy) <= 6 and abs(ww - iw) <= 12 and abs(wh - ih) <= 12


def test_plate_outside_roi_is_not_read(recognize, scene):
    assert recognize_in_roi(recognize, scene, [800, 0, 480, 720]) == []


def test_roi_outside_the_frame_is_an_error(recognize, scene):
    with pytest.raises(ValueError, match="outside"):
        recognize_in_roi(recognize, scene, [2000, 0, 100, 100])


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
