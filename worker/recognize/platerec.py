"""Our own plate recognizer (issue 5): an ensemble of models trained on rendered plates, run
with onnxruntime.

Each model reads a plate crop, or the band of it that its file names (whatever is left of state
name, slogan and frame, the models were taught to ignore), and returns CTC candidates by the
same beam search as the PP-OCRv4 path, so the plate-format priors rank both alike. Members: two
small CRNNs trained alike from different seeds (a few milliseconds each;
`training/recognizer.py`) and our head on PP-OCRv4's recogniser features (`worker.recognize.platehead`,
`training/plate_head.py`). Candidates are averaged, the two CRNNs first into one vote, then
that with the head's: the kinds' mistakes on real plates differ more than their accuracy does,
and the head reads real plates better than either CRNN, so it weighs as much as both
(docs/benchmarks.md). `make train-recognizer` reproduces every committed file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from worker.recognize import platehead
from worker.recognize.ctc import Reading, beam_search, fuse
from worker.recognize.runtime import make_session
from worker.recognize.plates import ALPHABET

MODELS_DIR = Path(__file__).with_name("models")
SEEDS = (1, 2)  # the ensemble `make train-recognizer` trains


def model_path(seed: int) -> Path:
    return MODELS_DIR / f"plate_rec_seed{seed}.onnx"


HEAD_PATH = MODELS_DIR / "plate_head.onnx"
CRNN_PATHS = tuple(model_path(seed) for seed in SEEDS)
MODEL_PATHS = (*CRNN_PATHS, HEAD_PATH)
INPUT_WIDTH, INPUT_HEIGHT = 128, 48  # a 2:1 plate crop, stretched a little: 32 CTC steps
CLASSES = 1 + len(ALPHABET)  # CTC blank, then the plate alphabet


def preprocess(crop: np.ndarray) -> np.ndarray:
    """BGR or grey plate crop -> (1, H, W) float32, grey, zero mean, unit-ish contrast.

    Per-image standardisation makes night, infrared and washed-out plates look alike."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    h, w = grey.shape
    shrink = w > INPUT_WIDTH or h > INPUT_HEIGHT
    resized = cv2.resize(grey, (INPUT_WIDTH, INPUT_HEIGHT),
                         interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    x = resized.astype(np.float32)
    return ((x - x.mean()) / max(float(x.std()), 8.0))[None]


class CrnnModel:
    """One CRNN file: grey crops -> (N, T, CLASSES) probabilities."""

    cheap = True  # ~2 ms a crop on one core

    def __init__(self, session):
        self.session = session
        self.band = platehead.file_band(session)  # None for files taught on whole crops

    def probs(self, crops: list[np.ndarray]) -> np.ndarray:
        blob = np.stack([preprocess(platehead.band_of(c, self.band)) for c in crops])
        return self.session.run(None, {self.session.get_inputs()[0].name: blob})[0]


def load_model(path: Path, threads: int):
    """A CRNN or a head on PP-OCRv4 features (told apart by the file's input name)."""
    session = make_session(path, threads)
    if session.get_inputs()[0].name == platehead.HEAD_INPUT:
        return platehead.HeadModel(session, path, threads)
    return CrnnModel(session)


class PlateReader:
    """Per-step character probabilities for plate crops, from each model of the ensemble."""

    def __init__(self, threads: int = 1, models: Sequence[Path] = MODEL_PATHS):
        if not models:
            raise ValueError("PlateReader needs at least one model file")
        if missing := [str(path) for path in models if not path.is_file()]:
            raise FileNotFoundError(f"plate recognizer model missing: {', '.join(missing)} "
                                    "(`make train-recognizer` writes it)")
        self.models = [load_model(path, threads) for path in models]

    def chosen(self, cheap_only: bool) -> list:
        """The models that read: all, or with `cheap_only` only the CRNNs, where there are any."""
        cheap = [m for m in self.models if m.cheap] if cheap_only else []
        return cheap or self.models

    def char_probs(self, crops: list[np.ndarray], cheap_only: bool = False) -> list[np.ndarray]:
        """Per model, (N, T, CLASSES) probabilities for N crops (T differs between kinds of
        model); class 0 is the CTC blank."""
        return [model.probs(crops) for model in self.chosen(cheap_only)]

    def readings(self, crops: list[np.ndarray], cheap_only: bool = False) -> list[Reading]:
        """CTC candidates (text, probability), best first, for each crop: each model's beam
        search; each text's probability averaged over the CRNNs, then with the head's."""
        if not crops:
            return []
        models = self.chosen(cheap_only)
        per_model = [model.probs(crops) for model in models]
        readings = []
        for i in range(len(crops)):
            beams = [(model.cheap, beam_search(probs[i])) for model, probs in zip(models, per_model)]
            crnns = [beam for cheap, beam in beams if cheap]
            votes = [list(fuse(crnns).items())] if crnns else []
            scores = fuse(votes + [beam for cheap, beam in beams if not cheap])
            readings.append(sorted(scores.items(), key=lambda kv: kv[1], reverse=True))
        return readings
