"""Our own plate recognizer (worker/platerec.py, issue 5): the committed model loads, reads
rendered plates, and is selectable everywhere a reader is chosen (worker config, eval)."""

from __future__ import annotations

import json
import random

import cv2
import numpy as np
import pytest

from worker import plategen as pg
from worker import synth
from worker.config import ConfigError, load_config
from worker.eval import main as eval_main
from worker.ctc import beam_search
from worker.platerec import CLASSES, MODEL_PATHS, PlateReader, preprocess
from worker.config import READERS
from worker.read import Recognizer


@pytest.fixture(scope="module")
def reader() -> PlateReader:
    return PlateReader()


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer(reader="plate")


def test_the_committed_models_are_small_and_load(reader):
    assert len(MODEL_PATHS) == 2 and sum(p.stat().st_size for p in MODEL_PATHS) < 5_000_000
    crops = [np.full((60, 120, 3), 200, np.uint8), np.zeros((30, 70), np.uint8)]
    probs = reader.char_probs(crops)
    assert probs.shape[:2] == (2, 2) and probs.shape[3] == CLASSES and probs.shape[2] >= 16
    assert np.allclose(probs.sum(axis=3), 1.0, atol=1e-4)
    assert not np.allclose(probs[0], probs[1], atol=1e-3)  # two different models, not one twice


def test_a_batch_reads_the_same_as_one_at_a_time(reader):
    rng = random.Random(5)
    crops = [pg.render_training_plate(pg.sample_plate(rng), rng)[0] for _ in range(3)]
    together = reader.char_probs(crops)
    alone = np.concatenate([reader.char_probs([c]) for c in crops], axis=1)
    assert np.allclose(together, alone, atol=1e-4)


def test_the_ensemble_averages_each_models_candidates(reader):
    rng = random.Random(6)
    plate = pg.degrade(pg.render_training_plate(pg.sample_plate(rng), rng)[0], rng)
    alone = [dict(beam_search(PlateReader(models=[path]).char_probs([plate])[0, 0])) for path in MODEL_PATHS]
    together = reader.readings([plate])[0]
    assert [p for _, p in together] == sorted((p for _, p in together), reverse=True)
    for text, p in together:
        assert p == pytest.approx(sum(a.get(text, 0.0) for a in alone) / 2)
    assert {t for t, _ in together} == set(alone[0]) | set(alone[1])


def test_a_missing_model_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.onnx"):
        PlateReader(models=[MODEL_PATHS[0], tmp_path / "nowhere.onnx"])


def test_preprocess_evens_out_brightness_and_contrast():
    rng = random.Random(2)
    plate, _ = pg.render_training_plate(pg.sample_plate(rng), rng)
    dark = (plate.astype(np.float32) * 0.3 + 10).astype(np.uint8)
    a, b = preprocess(plate), preprocess(dark)
    assert abs(float(a.mean())) < 1e-3 and abs(float(b.mean())) < 1e-3
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.98


def test_reads_clean_rendered_plates(recognizer):
    rng = random.Random(21)
    wrong = []
    for _ in range(20):
        img, label = pg.render_training_plate(pg.sample_plate(rng), rng, height=70)
        read = recognizer.read_plate_image(img)
        if read is None or read.text != label:
            wrong.append((label, read and read.text))
    assert len(wrong) <= 1, wrong


def test_reads_most_camera_degraded_plates(recognizer):
    rng = random.Random(22)
    exact = 0
    for _ in range(30):
        img, label = pg.render_training_plate(pg.sample_plate(rng), rng)
        read = recognizer.read_plate_image(pg.degrade(img, rng))
        exact += read is not None and read.text == label
    assert exact >= 20  # degradations include ones no reader survives (heavy blur, 12% JPEG)


@pytest.mark.parametrize("text", ["7ABC123", "KDT4417", "XY12Z"])
def test_finds_and_reads_a_plate_in_a_street_scene(recognizer, text):
    plate = synth.render_plate(text, state="TEXAS", height=60)
    frame = synth.make_scene(plate, rng=random.Random(4))
    reads = recognizer.recognize(frame)
    assert reads and reads[0].text == text
    assert 0 < reads[0].confidence <= 1 and reads[0].candidates[0][0] == text


def test_unknown_reader_is_refused_by_name():
    with pytest.raises(ValueError, match="tesseract"):
        Recognizer(reader="tesseract")


def test_worker_config_chooses_the_reader_and_refuses_unknown_ones(tmp_path):
    base = 'server = "http://127.0.0.1:1"\n[[cameras]]\nname = "a"\ntoken = "pwc_12345678"\nkind = "file"\nlocation = "x.mp4"\n'
    for reader in READERS:
        path = tmp_path / f"{reader}.toml"
        path.write_text(base + f'[recognition]\nreader = "{reader}"\n')
        assert load_config(path).recognition.reader == reader
    bad = tmp_path / "bad.toml"
    bad.write_text(base + '[recognition]\nreader = "tesseract"\n')
    with pytest.raises(ConfigError, match="reader"):
        load_config(bad)


def test_eval_reports_our_reader_on_a_crops_folder(tmp_path, capsys):
    rng = random.Random(23)
    rows = []
    for i in range(4):
        img, label = pg.render_training_plate(pg.sample_plate(rng), rng, height=70)
        cv2.imwrite(str(tmp_path / f"p{i}.png"), img)
        rows.append(f"p{i}.png,xx,{label}")
    (tmp_path / "groundtruth.csv").write_text("\n".join(rows) + "\n")
    assert eval_main([str(tmp_path), "--json", "--reader", "plate"]) == 0
    totals = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert totals["images"] == 4 and totals["exact"] >= 3
