"""Our own plate recognizer (issue 5): a small CRNN trained on rendered plates, run with onnxruntime.

It reads a whole plate crop (state name, slogan and frame included: it was taught to ignore
them) in one pass of a few milliseconds and returns CTC candidates by the same beam search as
the PP-OCRv4 path, so the plate-format priors rank both alike. `training/recognizer.py` trains
it; `make train-recognizer` reproduces the committed weights.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from worker.ctc import Reading, beam_search
from worker.detect import make_session
from worker.plates import ALPHABET

MODEL_PATH = Path(__file__).with_name("models") / "plate_rec.onnx"
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


class PlateReader:
    """Per-step character probabilities for plate crops."""

    def __init__(self, threads: int = 1, model: Path | None = None):
        self.session = make_session(model or MODEL_PATH, threads)
        self.input_name = self.session.get_inputs()[0].name

    def char_probs(self, crops: list[np.ndarray]) -> np.ndarray:
        """(N, T, CLASSES) probabilities for N crops; column 0 is the CTC blank."""
        blob = np.stack([preprocess(c) for c in crops])
        return self.session.run(None, {self.input_name: blob})[0]

    def readings(self, crops: list[np.ndarray]) -> list[Reading]:
        """CTC candidates (text, probability), best first, for each crop."""
        if not crops:
            return []
        return [beam_search(probs) for probs in self.char_probs(crops)]
