"""Our own plate recognizer (worker/recognize/platerec.py and platehead.py, issue 5): the
committed models load, read rendered plates, and are selectable everywhere a reader is chosen
(worker config, eval); the head refuses features from a recogniser it was not trained on."""

from __future__ import annotations

import json
import random
import shutil

import cv2
import numpy as np
import pytest

import onnx

import synth
from synth import plategen as pg
from worker.recognize import platehead
from worker.config import READERS, ConfigError, load_config
from worker.recognize.ctc import beam_search
from worker.recognize.detect import Band, warp_band
from worker.recognize.eval import main as eval_main
from worker.recognize.platerec import CLASSES, CRNN_PATHS, HEAD_PATH, MODEL_PATHS, PlateReader, preprocess
from worker.recognize.read import PLATE_VIEW, REFINED_VIEWS, Recognizer, as_trained
from worker.recognize.runtime import bundled_model, make_session


@pytest.fixture(scope="module")
def reader() -> PlateReader:
    return PlateReader()


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer(reader="plate")


def test_the_committed_models_are_small_and_load(reader):
    assert MODEL_PATHS == (*CRNN_PATHS, HEAD_PATH) and len(CRNN_PATHS) == 2
    assert sum(p.stat().st_size for p in MODEL_PATHS) < 5_000_000
    crops = [np.full((60, 120, 3), 200, np.uint8), np.zeros((30, 70), np.uint8)]
    per_model = reader.char_probs(crops)
    assert len(per_model) == 3
    for probs in per_model:
        assert probs.shape[0] == 2 and probs.shape[2] == CLASSES and probs.shape[1] >= 16
        assert np.allclose(probs.sum(axis=2), 1.0, atol=1e-4)
    assert not np.allclose(per_model[0], per_model[1], atol=1e-3)  # two different CRNNs, not one twice


def test_a_batch_reads_the_same_as_one_at_a_time(reader):
    rng = random.Random(5)
    crops = [pg.render_training_plate(pg.sample_plate(rng), rng)[0] for _ in range(3)]
    together = reader.char_probs(crops)
    alone = [reader.char_probs([c]) for c in crops]
    for m, probs in enumerate(together):
        assert np.allclose(probs, np.concatenate([a[m] for a in alone]), atol=1e-4)


def test_the_ensemble_averages_the_crnns_into_one_vote_beside_the_heads(reader):
    rng = random.Random(6)
    plate = pg.degrade(pg.render_training_plate(pg.sample_plate(rng), rng)[0], rng)
    alone = [dict(beam_search(PlateReader(models=[path]).char_probs([plate])[0][0])) for path in MODEL_PATHS]
    crnn1, crnn2, head = alone
    together = reader.readings([plate])[0]
    assert [p for _, p in together] == sorted((p for _, p in together), reverse=True)
    for text, p in together:
        crnns = (crnn1.get(text, 0.0) + crnn2.get(text, 0.0)) / 2
        assert p == pytest.approx((crnns + head.get(text, 0.0)) / 2)
    assert {t for t, _ in together} == set().union(*alone)
    pair = PlateReader(models=CRNN_PATHS).readings([plate])[0]  # the CRNNs alone: a plain average
    for text, p in pair:
        assert p == pytest.approx((crnn1.get(text, 0.0) + crnn2.get(text, 0.0)) / 2)


def test_quick_reads_use_only_the_cheap_crnns(reader):
    rng = random.Random(7)
    plate = pg.render_training_plate(pg.sample_plate(rng), rng)[0]
    crnns = PlateReader(models=CRNN_PATHS)
    assert len(reader.char_probs([plate], cheap_only=True)) == 2
    assert reader.readings([plate], cheap_only=True) == crnns.readings([plate])
    assert reader.readings([plate]) != crnns.readings([plate])  # the head is in the full reading


def test_beside_ppocr_only_the_crnns_are_fused_in_unless_the_head_is_asked_for():
    """The head costs ~8 ms a plate: `ppocr+plate` fuses the CRNNs, `plate` and
    `ppocr+plate+head` (the default, which makes its quick reads with the CRNNs) all three."""
    default = Recognizer()
    assert len(default.plate_reader.models) == 3 and default.cheap_quick and default.line_reader
    assert len(Recognizer(reader="ppocr+plate").plate_reader.models) == 2
    assert len(Recognizer(reader="plate").plate_reader.models) == 3
    assert len(Recognizer(reader="ppocr+plate+head").plate_reader.models) == 3


def test_with_the_head_quick_reads_come_from_the_crnns_and_ppocr_reads_refined_plates():
    """`ppocr+plate+head` pays for the head with CRNN quick reads (~2 ms a plate, not ~12)."""
    frame = synth.make_scene(synth.render_plate("KX47TR", height=60), rng=random.Random(8))
    recognizer = Recognizer(reader="ppocr+plate+head")
    reads, proposals = recognizer.recognize_with_proposals(frame)
    assert proposals and reads[0].text == "KX47TR"
    crops = [warp_band(frame, as_trained(p), PLATE_VIEW) for p in proposals]
    assert recognizer.quick_readings(frame, proposals) == recognizer.plate_reader.readings(crops, cheap_only=True)
    plain = Recognizer(reader="ppocr+plate")
    assert plain.quick_readings(frame, proposals) != recognizer.quick_readings(frame, proposals)
    _, refined = recognizer.refined_readings(frame, proposals[0])
    assert len(refined) == len(REFINED_VIEWS) + 1  # PP-OCRv4's views, then our three models fused


def test_the_head_alone_reads_rendered_plates():
    head = PlateReader(models=[HEAD_PATH])
    rng = random.Random(24)
    plates = [pg.render_training_plate(pg.sample_plate(rng), rng, height=70) for _ in range(10)]
    best = [head.readings([img])[0][0][0] for img, _ in plates]
    assert sum(text == label for text, (_, label) in zip(best, plates)) >= 8


def with_band(path, out, band: Band | None):
    """A copy of a model file that names `band` (None: names none, reads whole crops)."""
    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props if p.key != "band"}
    if band is not None:
        props["band"] = platehead.band_json(band)
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    onnx.save(model, str(out))
    return out


def test_the_committed_head_reads_the_middle_band():
    assert PlateReader(models=[HEAD_PATH]).models[0].band == Band(0.15, 0.90, 0.10)


@pytest.mark.parametrize("path", [CRNN_PATHS[0], HEAD_PATH], ids=["crnn", "head"])
def test_a_model_reads_the_band_its_file_names(tmp_path, path):
    """A model taught on the middle band of each plate names it in its file and the reader cuts
    it; a file that names no band reads the whole crop."""
    band = Band(0.15, 0.90, 0.10)
    banded = PlateReader(models=[with_band(path, tmp_path / "banded.onnx", band)]).models[0]
    whole = PlateReader(models=[with_band(path, tmp_path / "whole.onnx", None)]).models[0]
    assert (banded.band, whole.band) == (band, None)
    plate = pg.render_training_plate(pg.sample_plate(random.Random(25)), random.Random(26), height=70)[0]
    assert np.allclose(banded.probs([plate]), whole.probs([platehead.band_of(plate, band)]), atol=1e-5)
    assert not np.allclose(banded.probs([plate]), whole.probs([plate]), atol=1e-3)


def test_the_head_refuses_another_recogniser_by_name(tmp_path):
    model = onnx.load(str(HEAD_PATH))
    props = {p.key: p.value for p in model.metadata_props}
    trained_on = json.loads(props["backbone"])
    props["backbone"] = json.dumps({**trained_on, "sha256": "0" * 64})
    onnx.helper.set_model_props(model, props)
    other = tmp_path / "plate_head_other.onnx"
    onnx.save(model, str(other))
    with pytest.raises(ValueError, match=r"plate_head_other\.onnx was trained on ch_PP-OCRv4_rec_infer\.onnx"):
        PlateReader(models=[other])


def test_cutting_a_model_without_the_feature_tensor_is_refused(tmp_path):
    shutil.copy(CRNN_PATHS[0], tmp_path / "not_ppocr.onnx")
    with pytest.raises(ValueError, match=f"not_ppocr.onnx has no tensor {platehead.FEATURES}"):
        platehead.backbone_model(tmp_path / "not_ppocr.onnx")


def test_the_heads_recogniser_runs_only_what_its_features_need():
    """onnxruntime runs every node of a graph, so the classifier must be cut out, not bypassed;
    the features are those of the whole recogniser."""
    full_path = bundled_model(platehead.BACKBONE_FILE)
    cut = onnx.load_from_string(platehead.backbone_model(full_path))
    assert [o.name for o in cut.graph.output] == [platehead.FEATURES]
    consumed = {name for node in cut.graph.node for name in node.input}
    assert all(out in consumed or out == platehead.FEATURES for node in cut.graph.node for out in node.output)
    full = onnx.load(str(full_path))
    assert len(cut.graph.node) < len(full.graph.node)
    full.graph.output.append(onnx.helper.make_tensor_value_info(platehead.FEATURES, onnx.TensorProto.FLOAT, None))
    image = np.random.default_rng(3).uniform(-1, 1, (2, 3, platehead.HEIGHT, platehead.WIDTH)).astype(np.float32)
    name = full.graph.input[0].name
    want = make_session(full.SerializeToString(), 1).run([platehead.FEATURES], {name: image})[0]
    got = make_session(cut.SerializeToString(), 1).run(None, {name: image})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


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
