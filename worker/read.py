"""Plate reading: PP-OCRv4 recogniser over plate bands, CTC candidates, US plate priors.

`Recognizer.recognize(frame)` is the entry point: a BGR frame in, `PlateRead`s out, best first.
Each plate is read several ways ("views") and the readings are fused: every view alone makes
different mistakes, and averaging their candidate probabilities cancels many of them.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from worker import plates
from worker.detect import (
    Band,
    PlateProposal,
    TextDetector,
    bundled_model,
    make_session,
    propose_plates,
    refine_plate,
    warp_band,
    whole_image_plate,
)
from worker.plates import ALPHABET

REC_HEIGHT = 48  # the PP-OCRv4 recogniser's fixed input height

Reading = list[tuple[str, float]]  # CTC candidates of one view: (text, probability), best first


@dataclass(frozen=True)
class View:
    """One way to look at a plate: which band, which colour, how much horizontal stretch.

    A middle band beats the whole plate (state name, slogan and frame confuse the reader).
    The red channel drops red emblems and separators (read as 0/D/L otherwise) and keeps dark
    characters dark. Stretching 1.5x suits the narrow plate fonts (W/M/H confusions drop).
    """

    band: Band
    red_only: bool = False
    stretch: float = 1.0


# Chosen by measuring fused variants side by side on the US end-to-end set (bench/accuracy.py);
# several neighbouring choices score within a plate or two, so this is a plateau, not a spike.
QUICK_VIEW = View(Band(0.10, 0.95, 0.20), red_only=True, stretch=1.5)
REFINED_VIEWS = (
    View(Band(0.15, 0.90, 0.10), red_only=True, stretch=1.5),
    View(Band(0.10, 0.95, 0.20)),
)
CROP_BAND = Band(-0.05, 1.05, 0.10)  # the whole plate plus a little margin, for people
MIN_PRIORITY = 0.002  # below this a quick read is junk (empty, a timestamp): not worth refining
LONG_READ_PRIOR = 0.3  # 9-10 characters: often a plate plus its frame text; refining trims it
REFINE_RATIO = 0.3  # refine a further proposal only if it is nearly as plate-like as the best


@dataclass
class PlateRead:
    """One plate in a frame: the best text, its confidence, the ranked alternatives."""

    box: tuple[int, int, int, int]  # x, y, w, h in frame pixels
    text: str
    confidence: float
    candidates: list[tuple[str, float]]
    crop: np.ndarray = field(repr=False)


class Recognizer:
    """Frame -> plate reads. Holds the two onnxruntime sessions; otherwise stateless.

    Cost control for one core: every proposal gets one quick read on the frame; only the
    `max_refined` most plate-like are re-detected at higher resolution and read again.
    """

    def __init__(
        self,
        threads: int = 1,
        limit_side: int = 1024,
        quick_view: View = QUICK_VIEW,
        refined_views: tuple[View, ...] = REFINED_VIEWS,
        max_proposals: int = 6,
        max_refined: int = 2,
    ):
        self.detector = TextDetector(threads)
        self.reader = LineReader(threads)
        self.limit_side = limit_side
        self.quick_view = quick_view
        self.refined_views = refined_views
        self.max_proposals = max_proposals
        self.max_refined = max_refined

    def recognize(self, frame: np.ndarray) -> list[PlateRead]:
        """Plate reads in a BGR frame, most plausible first."""
        return self.recognize_with_proposals(frame)[0]

    def recognize_with_proposals(self, frame: np.ndarray):
        """(reads, plate proposals); the proposals let `eval` measure detection on its own."""
        frame = as_bgr(frame)
        lines = self.detector.detect(frame, self.limit_side)
        proposals = propose_plates(lines, frame.shape)[: self.max_proposals]
        quick = [self.read_view(frame, p, self.quick_view) for p in proposals]
        refine = self.chosen_for_refinement([refine_priority(q) for q in quick])
        reads = []
        for i, plate in enumerate(proposals):
            readings = [quick[i]]
            if i in refine:
                plate, more = self.refined_readings(frame, plate)
                readings += more
            read = self.make_read(frame, plate, readings)
            if read is not None:
                reads.append(read)
        reads.sort(key=lambda r: r.confidence * plates.prior(r.text), reverse=True)
        return reads, proposals

    def chosen_for_refinement(self, priority: list[float]) -> set[int]:
        """The `max_refined` most plate-like proposals, leaving out junk and also-rans."""
        if not priority:
            return set()
        floor = max(MIN_PRIORITY, REFINE_RATIO * max(priority))
        order = sorted(range(len(priority)), key=priority.__getitem__, reverse=True)
        return {i for i in order[: self.max_refined] if priority[i] >= floor}

    def read_plate_image(self, crop: np.ndarray) -> PlateRead | None:
        """Read an image that is already a plate crop (no frame-wide detection)."""
        crop = as_bgr(crop)
        whole = whole_image_plate(crop)
        quick = self.read_view(crop, whole, self.quick_view)
        if self.max_refined == 0:
            return self.make_read(crop, whole, [quick])
        plate, readings = self.refined_readings(crop, whole)
        return self.make_read(crop, plate, [quick, *readings])

    def refined_readings(self, frame: np.ndarray, plate: PlateProposal):
        """Re-detect the plate precisely, then read it with every refined view.

        Returns the plate as placed (in frame pixels) and the readings.
        """
        refined = refine_plate(self.detector, frame, plate)
        if refined is None:  # no line at the higher resolution: read where the proposal says
            return plate, [self.read_view(frame, plate, v) for v in self.refined_views]
        window, in_window, in_frame = refined
        return in_frame, [self.read_view(window, in_window, v) for v in self.refined_views]

    def read_view(self, image: np.ndarray, plate: PlateProposal, view: View) -> Reading:
        band = warp_band(image, plate, view.band)
        if view.stretch != 1.0:
            band = cv2.resize(band, None, fx=view.stretch, fy=1.0, interpolation=cv2.INTER_CUBIC)
        if view.red_only:
            band = cv2.merge([band[..., 2]] * 3)
        return beam_search(self.reader.char_probs(band))

    def make_read(self, frame, plate: PlateProposal, readings: list[Reading]) -> PlateRead | None:
        candidates = plates.rank(fuse(readings))
        if not candidates or plates.prior(candidates[0][0]) <= plates.OUTSIDE_LENGTH_PRIOR:
            return None  # nothing plate-like: a sign, a timestamp, a grille
        text, confidence = candidates[0]
        crop = warp_band(frame, plate, CROP_BAND)
        return PlateRead(plate.bbox(), text, confidence, candidates, crop)


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Accept grey and BGRA frames too (some cameras and files deliver them)."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def refine_priority(reading: Reading) -> float:
    """How plate-like a quick read is: probability x prior, long reads given a chance."""
    def weight(text: str) -> float:
        return max(plates.prior(text), LONG_READ_PRIOR if len(text) in (9, 10) else 0.0)

    return max((p * weight(t) for t, p in reading), default=0.0)


class LineReader:
    """Runs the recogniser and folds its ~6600 classes onto blank + the plate alphabet."""

    def __init__(self, threads: int = 1, model: Path | None = None):
        self.session = make_session(model or bundled_model("ch_PP-OCRv4_rec_infer.onnx"), threads)
        self.input_name = self.session.get_inputs()[0].name
        meta = self.session.get_modelmeta().custom_metadata_map
        # Class 0 is the CTC blank, then the dictionary, then a trailing space class.
        self.groups = alphabet_groups(["<blank>", *meta["character"].splitlines(), " "])

    def char_probs(self, line: np.ndarray, min_width: int = 160) -> np.ndarray:
        """(T, 1 + len(ALPHABET)) per-step probabilities; column 0 is "no plate character"."""
        blob = rec_blob(line, min_width)
        raw = self.session.run(None, {self.input_name: blob})[0][0]
        folded = np.stack([raw[:, idx].sum(axis=1) for idx in self.groups], axis=1)
        # Junk glyphs (dashes, dots, state emblems, CJK look-alikes) act as separators,
        # exactly like the blank, so their mass joins column 0.
        blank = np.clip(1.0 - folded.sum(axis=1, keepdims=True), 0.0, 1.0)
        return np.concatenate([blank, folded], axis=1)


def alphabet_groups(classes: list[str]) -> list[np.ndarray]:
    """For each plate character, the model classes that mean it (case, width forms, O->0)."""
    groups: list[list[int]] = [[] for _ in ALPHABET]
    for index, glyph in enumerate(classes):
        key = unicodedata.normalize("NFKC", glyph).upper() if len(glyph) == 1 else ""
        key = "0" if key == "O" else key
        if len(key) == 1 and key in ALPHABET:
            groups[ALPHABET.index(key)].append(index)
    return [np.array(g, dtype=np.int64) for g in groups]


def rec_blob(line: np.ndarray, min_width: int = 0) -> np.ndarray:
    """Resize a BGR text line to the recogniser's height, normalise to [-1, 1], NCHW."""
    h, w = line.shape[:2]
    width = max(16, int(math.ceil(REC_HEIGHT * w / max(h, 1))))
    interp = cv2.INTER_AREA if h > REC_HEIGHT else cv2.INTER_CUBIC
    resized = cv2.resize(line, (width, REC_HEIGHT), interpolation=interp)
    blob = resized.astype(np.float32) * (2 / 255.0) - 1.0
    # Short lines read better padded with mid-grey (0.0), as rapidocr pads to 320 px; 160 px
    # gives most of that gain for half the cost (measured on the US end-to-end set).
    if width < min_width:
        blob = np.pad(blob, ((0, 0), (0, min_width - width), (0, 0)))
    return blob.transpose(2, 0, 1)[None]


def best_path(probs: np.ndarray) -> tuple[str, float]:
    """Greedy CTC decode; confidence is the mean probability of the emitted characters."""
    idx = probs.argmax(axis=1)
    chars, confs, prev = [], [], 0
    for t, k in enumerate(idx):
        if k != 0 and k != prev:
            chars.append(ALPHABET[k - 1])
            confs.append(probs[t, k])
        prev = k
    return "".join(chars), float(np.mean(confs)) if confs else 0.0


def beam_search(probs: np.ndarray, beam: int = 10, prune: float = 1e-3) -> Reading:
    """CTC prefix beam search; returns (text, P(text)) best first.

    P(text) sums over all alignments, so it is a real probability and candidates that differ by
    one uncertain character get sensible, comparable confidences.
    """
    beams: dict[str, tuple[float, float]] = {"": (1.0, 0.0)}  # prefix -> (P end blank, P end char)
    for step in probs:
        chars = np.flatnonzero(step[1:] > prune) + 1
        nxt: dict[str, list[float]] = {}
        for prefix, (p_b, p_c) in beams.items():
            total = p_b + p_c
            entry = nxt.setdefault(prefix, [0.0, 0.0])
            entry[0] += total * step[0]
            last = ALPHABET.index(prefix[-1]) + 1 if prefix else -1
            for k in chars:
                p = float(step[k])
                extended = nxt.setdefault(prefix + ALPHABET[k - 1], [0.0, 0.0])
                if k == last:  # a repeat only adds a character after a blank; else it collapses
                    entry[1] += p_c * p
                    extended[1] += p_b * p
                else:
                    extended[1] += total * p
        ranked = sorted(nxt.items(), key=lambda kv: kv[1][0] + kv[1][1], reverse=True)
        beams = {k: (v[0], v[1]) for k, v in ranked[:beam]}
    return [(text, float(pb + pc)) for text, (pb, pc) in beams.items()]


def fuse(readings: list[Reading]) -> dict[str, float]:
    """Average each text's probability over several readings (absent = 0)."""
    scores: dict[str, float] = {}
    for reading in readings:
        for text, p in reading:
            scores[text] = scores.get(text, 0.0) + p / len(readings)
    return scores
