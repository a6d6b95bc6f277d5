"""Plate recognition (worker.recognize: detect, read, plates) and `platewatch eval`.

Fixtures are rendered here with OpenCV (white plate, dark border, Hershey characters in a grey
1280x720 scene), so these tests need neither the labelled data nor any network.
"""

from __future__ import annotations

import json
import random

import cv2
import numpy as np
import pytest

import synth
from worker.recognize import plates
from worker.recognize.ctc import beam_search, best_path
from worker.recognize.eval import iou, levenshtein
from worker.recognize.eval import main as eval_main
from worker.recognize.read import ALPHABET, Recognizer
from worker.track import Sighting


def render_plate(text: str, width: int = 240) -> np.ndarray:
    """A 2:1 US-style plate: off-white, dark border, large dark characters."""
    height = width // 2
    plate = np.full((height, width, 3), 245, np.uint8)
    cv2.rectangle(plate, (3, 3), (width - 4, height - 4), (40, 40, 40), max(2, width // 60))
    font, thickness = cv2.FONT_HERSHEY_DUPLEX, max(2, width // 40)
    scale = cv2.getFontScaleFromHeight(font, int(height * 0.45), thickness)
    (text_w, text_h), _ = cv2.getTextSize(text, font, scale, thickness)
    if text_w > width * 0.88:
        scale *= width * 0.88 / text_w
        (text_w, text_h), _ = cv2.getTextSize(text, font, scale, thickness)
    origin = ((width - text_w) // 2, (height + text_h) // 2)
    cv2.putText(plate, text, origin, font, scale, (30, 30, 30), thickness, cv2.LINE_AA)
    return plate


def render_scene(text: str, at: tuple[int, int] = (600, 420), width: int = 200) -> np.ndarray:
    """A grey 1280x720 frame with a dark "car" and the plate pasted on it at `at`."""
    frame = np.full((720, 1280, 3), 110, np.uint8)
    x, y = at
    cv2.rectangle(frame, (x - 150, y - 150), (x + width + 150, y + width // 2 + 80), (70, 60, 50), -1)
    plate = render_plate(text, width)
    frame[y : y + plate.shape[0], x : x + plate.shape[1]] = plate
    return frame


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer(threads=1)


# --- plates.py -------------------------------------------------------------------------------


def test_normalise_keeps_a_to_z_and_digits_and_folds_o_into_zero():
    assert plates.normalise(" abc-123 ") == "ABC123"
    assert plates.normalise("O0o·Q") == "000Q"
    assert plates.normalise("ÄB C\t9") == "BC9"
    assert set(plates.ALPHABET) == set("0123456789ABCDEFGHIJKLMNPQRSTUVWXYZ")


def test_prior_prefers_plate_lengths_and_common_layouts():
    assert plates.prior("ABC1234") > plates.prior("ABC12345") > plates.prior("A")
    assert plates.prior("20140513074121") == plates.OUTSIDE_LENGTH_PRIOR  # a timestamp overlay
    assert plates.prior("ABC1234") > plates.prior("A1B2C34")  # same length, common layout wins
    assert plates.prior("CJ1P5G") > plates.prior("CJIP5G")  # I is rare on US plates


def test_rank_moves_mass_between_rivals_but_keeps_the_total():
    ranked = plates.rank({"CJIP5G": 0.5, "CJ1P5G": 0.4, "": 0.05})
    assert ranked[0][0] == "CJ1P5G"
    assert sum(p for _, p in ranked) == pytest.approx(0.9)
    assert plates.rank({"ABC123": 0.9}) == [("ABC123", pytest.approx(0.9))]
    assert plates.rank({"": 1.0}) == []


# --- CTC decoding ------------------------------------------------------------------------------


def ctc_steps(path: str, confidence: float = 0.9) -> np.ndarray:
    """Per-step probabilities for a CTC path ('-' = blank)."""
    probs = np.full((len(path), 1 + len(ALPHABET)), (1 - confidence) / len(ALPHABET), np.float32)
    for t, ch in enumerate(path):
        probs[t, 0 if ch == "-" else ALPHABET.index(ch) + 1] = confidence
    return probs / probs.sum(axis=1, keepdims=True)


def test_ctc_collapses_repeats_only_without_a_blank_between():
    assert best_path(ctc_steps("-AA-A-11-"))[0] == "AA1"
    assert beam_search(ctc_steps("-AA-A-11-"))[0][0] == "AA1"


def test_beam_search_offers_the_runner_up_for_an_unsure_character():
    probs = ctc_steps("-A-B-C-1-")
    probs[7] = 0.0  # the "1" step
    probs[7, ALPHABET.index("1") + 1], probs[7, ALPHABET.index("I") + 1] = 0.55, 0.45
    candidates = dict(beam_search(probs))
    assert candidates["ABC1"] / candidates["ABCI"] == pytest.approx(0.55 / 0.45, rel=0.01)


# --- the pipeline ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, width", [("ABC1234", 200), ("7XYZ482", 140), ("HELL0", 110)])
def test_recognize_finds_and_reads_a_synthetic_plate(recognizer, text, width):
    at = (600, 420)
    reads = recognizer.recognize(render_scene(text, at, width))
    assert reads, "no plate found"
    top = reads[0]
    assert isinstance(top, Sighting)  # the tracker's own type: no adapter between them
    assert top.text == text
    assert iou(top.box, (*at, width, width // 2)) > 0.5
    assert 0.5 < top.confidence <= 1.0
    assert top.candidates[0] == (top.text, top.confidence)
    assert all(0 <= p <= 1 for _, p in top.candidates) and len(top.candidates) <= 5
    assert top.crop.ndim == 3 and top.crop.shape[1] >= width * 0.9


@pytest.mark.parametrize("text, width", [("ABC1234", 200), ("7XYZ482", 140)])
def test_a_quick_look_reads_a_plate_as_a_full_one_does(recognizer, text, width):
    """A quick look (coarser search, a sure CRNN read taken without refinement) finds the same
    plate in the same place as a full look."""
    at = (600, 420)
    quick = recognizer.recognize(render_scene(text, at, width), quick=True)
    assert quick and quick[0].text == text and 0.5 < quick[0].confidence <= 1.0
    assert iou(quick[0].box, (*at, width, width // 2)) > 0.5


def test_recognize_accepts_a_grey_frame(recognizer):
    grey = cv2.cvtColor(render_scene("KLM4821"), cv2.COLOR_BGR2GRAY)
    assert [r.text for r in recognizer.recognize(grey)][:1] == ["KLM4821"]


def test_recognize_on_an_empty_frame_reads_nothing(recognizer):
    assert recognizer.recognize(np.full((720, 1280, 3), 110, np.uint8)) == []


@pytest.mark.parametrize("size, height", [((1920, 1080), 16), ((2560, 1440), 20)])
def test_a_frame_with_nothing_read_gets_a_second_look_at_full_resolution(recognizer, size, height):
    """A distant plate shrinks past legibility when a big frame is cut down to 1024 px for the
    detector; when that pass reads nothing, the frame is looked at again at up to 1920 px."""
    plate = synth.render_plate("7ABC123", state="TEXAS", height=height)
    frame = synth.make_scene(plate, size=size, rng=random.Random(0))
    assert Recognizer(retry_side=0).recognize(frame) == []  # the downscaled pass alone misses it
    assert [r.text for r in recognizer.recognize(frame)][:1] == ["7ABC123"]


def test_worker_config_can_turn_the_second_look_off(tmp_path):
    from worker.recognize.loader import load_recognizer
    from worker.config import load_config

    base = 'server = "http://127.0.0.1:1"\n[[cameras]]\nname = "a"\ntoken = "pwc_12345678"\nkind = "file"\nlocation = "x.mp4"\n'
    path = tmp_path / "worker.toml"
    path.write_text(base)
    assert load_config(path).recognition.second_look is True
    path.write_text(base + "[recognition]\nsecond_look = false\n")
    assert load_config(path).recognition.second_look is False
    frame = synth.make_scene(synth.render_plate("7ABC123", state="TEXAS", height=16), size=(1920, 1080),
                             rng=random.Random(0))
    assert load_recognizer(second_look=False)(frame) == []
    assert [s.text for s in load_recognizer()(frame)][:1] == ["7ABC123"]


def test_read_plate_image_reads_a_crop(recognizer):
    read = recognizer.read_plate_image(render_plate("8DEF527", 320))
    assert read is not None and read.text == "8DEF527"


# --- eval --------------------------------------------------------------------------------------


def last_json_line(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_eval_end_to_end_folder_with_bad_items(tmp_path, capsys):
    for name, text in (("car1.jpg", "ABC1234"), ("car2.jpg", "5KLM902")):
        cv2.imwrite(str(tmp_path / name), render_scene(text, (500, 300), 180))
        (tmp_path / name.replace(".jpg", ".txt")).write_text(f"{name}\t500\t300\t180\t90\t{text}\n")
    (tmp_path / "bad.txt").write_text("bad.jpg\t1\t2\tABC\n")  # malformed: 4 fields
    (tmp_path / "gone.txt").write_text("gone.jpg\t1\t2\t30\t15\tXYZ123\n")  # image missing

    assert eval_main([str(tmp_path), "--json"]) == 0
    captured = capsys.readouterr()
    totals = last_json_line(captured.out)
    assert {"images", "exact", "within1", "detected", "ms_median", "ms_p90"} <= set(totals)
    assert (totals["images"], totals["exact"], totals["within1"], totals["detected"]) == (2, 2, 2, 2)
    assert totals["errors"] == 2 and totals["ms_p90"] >= totals["ms_median"] > 0
    assert totals["frames_720p"] == 2 and totals["cpu_ms_720p_p90"] >= totals["cpu_ms_720p_median"] > 0
    assert "bad.txt" in captured.err and "6 TAB-separated fields" in captured.err
    assert "gone.jpg" in captured.err


def test_eval_crops_folder(tmp_path, capsys):
    rows = []
    for i, text in enumerate(("ABC1234", "9XK204")):
        cv2.imwrite(str(tmp_path / f"c{i}.png"), render_plate(text, 320))
        rows.append(f"c{i}.png,tx,{text}")
    rows.append("only-two,fields")
    (tmp_path / "groundtruth.csv").write_text("\n".join(rows) + "\n")

    assert eval_main([str(tmp_path), "--json"]) == 0
    captured = capsys.readouterr()
    totals = last_json_line(captured.out)
    assert (totals["images"], totals["exact"], totals["within1"]) == (2, 2, 2)
    assert totals["detected"] is None and totals["errors"] == 1
    assert totals["frames_720p"] == 0 and totals["cpu_ms_720p_median"] is None  # crops are no frames
    assert "groundtruth.csv line 3" in captured.err


def test_eval_without_json_prints_a_summary(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "c0.png"), render_plate("ABC123", 320))
    (tmp_path / "groundtruth.csv").write_text("c0.png,tx,ABC123\n")
    assert eval_main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "exact" in out and "within one" in out and not out.strip().endswith("}")


def test_eval_on_a_folder_without_labels_fails_clearly(tmp_path, capsys):
    assert eval_main([str(tmp_path)]) == 2
    assert "no labelled images" in capsys.readouterr().err


def test_levenshtein():
    assert levenshtein("ABC123", "ABC123") == 0
    assert levenshtein("ABC123", "ABC12") == 1
    assert levenshtein("ABC123", "A8C124") == 2
    assert levenshtein("", "AB") == 2
