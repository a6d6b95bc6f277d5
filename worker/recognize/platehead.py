"""Our plate head on PP-OCRv4's recogniser features (issue 5): real-world text features, plate
alphabet and conventions learnt from rendered plates.

Recognizers trained from scratch on rendered plates read them well and real plates less well:
the gap is synthetic -> real. PP-OCRv4's recogniser (shipped in rapidocr-onnxruntime's wheel,
already run by the `ppocr` path) learnt its features from real text. We keep those features
frozen, drop its 6,625-class classifier, and train only a small head (a bidirectional LSTM and
a plate-alphabet classifier) on rendered plates: it learns what a plate reader must output
(ignore state names, slogans and stacked letters; 0 for O) without forgetting what real
characters look like. `training/plate_head.py` trains it; `make train-recognizer` reproduces it.

The head file names the band of the plate it reads (the middle band: closer to the text lines
the recogniser learnt) and records the SHA-256 of the recogniser it was trained on: another
rapidocr model would give different features, so it is refused by name rather than read wrong.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnx.utils
import onnxruntime as ort

from worker.recognize.detect import Band, warp_band, whole_image_plate
from worker.recognize.runtime import bundled_model, make_session

BACKBONE_FILE = "ch_PP-OCRv4_rec_infer.onnx"
FEATURES = "transpose_51.tmp_0"  # (N, T, 120): the recogniser's sequence, before its classifier
HEAD_INPUT = "features"  # the head file's input name (the CRNN files take "image")
WIDTH, HEIGHT = 128, 48  # a plate crop stretched to 128 x 48: T = 16 feature steps


def backbone_model(path: Path, data: bytes | None = None) -> bytes:
    """The recogniser (the file at `path`, or its bytes `data`) with its classifier cut off:
    FEATURES as its only output. Cut out, not just made the output: onnxruntime runs every node
    of a graph, needed or not (the classifier costs ~0.5 ms a crop; docs/benchmarks.md)."""
    model = onnx.load_from_string(data) if data is not None else onnx.load(str(path))
    if FEATURES not in {out for node in model.graph.node for out in node.output}:
        raise ValueError(f"{path} has no tensor {FEATURES}: not the PP-OCRv4 recogniser the plate head was trained on")
    model = onnx.shape_inference.infer_shapes(model)  # the extractor finds tensors by their inferred shapes
    return onnx.utils.Extractor(model).extract_model([model.graph.input[0].name], [FEATURES]).SerializeToString()


def band_json(band: Band) -> str:
    """How a model file names the band it reads (its "band" metadata)."""
    return json.dumps([band.top, band.bottom, band.pad])


def file_band(session: ort.InferenceSession) -> Band | None:
    """The band a model file was taught to read; None: the whole crop."""
    meta = session.get_modelmeta().custom_metadata_map
    return Band(*json.loads(meta["band"])) if "band" in meta else None


def band_of(crop: np.ndarray, band: Band | None) -> np.ndarray:
    """The strip of a plate crop a model reads (`None`: all of it), as its file names it."""
    return crop if band is None else warp_band(crop, whole_image_plate(crop), band)


def blob(crop: np.ndarray) -> np.ndarray:
    """BGR (or grey) plate crop -> (3, HEIGHT, WIDTH) float32 in [-1, 1], as PP-OCRv4 wants."""
    if crop.ndim == 2:
        crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    shrink = crop.shape[1] > WIDTH or crop.shape[0] > HEIGHT
    resized = cv2.resize(crop, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return (resized.astype(np.float32) * (2 / 255.0) - 1.0).transpose(2, 0, 1)


class Backbone:
    """PP-OCRv4's recogniser up to its sequence features."""

    def __init__(self, threads: int = 1, path: Path | None = None):
        self.path = path or bundled_model(BACKBONE_FILE)
        data = self.path.read_bytes()
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.session = make_session(backbone_model(self.path, data), threads)

    def features(self, crops: list[np.ndarray]) -> np.ndarray:
        return self.session.run(None, {"x": np.stack([blob(c) for c in crops])})[0]


class HeadModel:
    """A committed head file plus the recogniser it was trained on: crops -> (N, T, classes)."""

    cheap = False  # ~8 ms a crop on one core, nearly all of it the recogniser

    def __init__(self, session: ort.InferenceSession, path: Path, threads: int):
        self.session = session
        meta = session.get_modelmeta().custom_metadata_map
        self.band = file_band(session)
        trained_on = json.loads(meta.get("backbone", "{}"))
        self.backbone = Backbone(threads)
        found = self.backbone.sha256
        if trained_on.get("sha256") != found:
            raise ValueError(f"{path.name} was trained on {trained_on.get('file', '?')} with SHA-256 "
                             f"{trained_on.get('sha256', '?')[:12]}…, but {self.backbone.path} has {found[:12]}…: "
                             "reinstall rapidocr-onnxruntime==1.4.4 or retrain (`make train-recognizer`)")

    def probs(self, crops: list[np.ndarray]) -> np.ndarray:
        features = self.backbone.features([band_of(c, self.band) for c in crops])
        return self.session.run(None, {HEAD_INPUT: features})[0]

