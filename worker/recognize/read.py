"""Plate reading: PP-OCRv4 recogniser over plate bands, CTC candidates, US plate priors.

`Recognizer.recognize(frame)` is the entry point: a BGR frame in, the tracker's `Sighting`s out
(worker.track: one read type from detection to posting), best first.
Each plate is read several ways ("views") and the readings are fused: every view alone makes
different mistakes, and averaging their candidate probabilities cancels many of them.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from worker.recognize import plates
from worker.config import DEFAULT_READER, READERS
from worker.recognize.ctc import Reading, beam_search, fuse
from worker.recognize.detect import (
    Band,
    PlateProposal,
    TextDetector,
    plate_from_line,
    propose_plates,
    refine_plate,
    warp_band,
    whole_image_plate,
)
from worker.recognize.plates import ALPHABET
from worker.recognize.platerec import CRNN_PATHS, MODEL_PATHS, PlateReader
from worker.recognize.runtime import bundled_model, make_session
from worker.track import Sighting

REC_HEIGHT = 48  # the PP-OCRv4 recogniser's fixed input height
# A quick look (an overloaded worker) searches at most this many pixels on the longer side, without
# the second look: a 720p frame's detector pass at ~55% of the cost. Reading and refining still use
# the full-resolution pixels; what it misses are the smallest plates, which grow as a car comes closer.
QUICK_SIDE = 768
QUICK_REFINED = 1  # and refines only the most plate-like proposal,
QUICK_VIEWS = 1  # with the first refined view only
# ... and not even that one when our CRNNs' quick read of it is this sure. Quick looks at frames 5,
# 10 and 15 of the approaches of openalpr-us's 113 photos (2026-12-07): 184 of 339 skipped the
# refinement (~55 of ~140 ms a look), with 242 right reads at >= 0.5 against 238 and 14 wrong
# against 17 (at 0.9: 160 skipped, 241 and 14; at 0.98: 114, 239 and 16).
QUICK_SURE = 0.8


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
PLATE_VIEW = Band(-0.05, 1.05, 0.10)  # what our reader was trained on: the plate, a small margin
# A registration's text line (the detector's box) is about 2/3 of its plate's height (median
# 0.67, 80% within 0.59-0.77, measured on rendered plates in synthetic scenes), so the plate our
# reader sees is at least this many line heights tall: short registrations make narrow lines.
PLATE_PER_LINE_HEIGHT = 1.45
MIN_PRIORITY = 0.002  # below this a quick read is junk (empty, a timestamp): not worth refining
LONG_READ_PRIOR = 0.3  # 9-10 characters: often a plate plus its frame text; refining trims it
REFINE_RATIO = 0.3  # refine a further proposal only if it is nearly as plate-like as the best


class Recognizer:
    """Frame -> plate reads. Holds the onnxruntime sessions; otherwise stateless.

    Cost control for one core: every proposal gets one quick read on the frame; only the
    `max_refined` most plate-like are re-detected at higher resolution and read again.
    """

    def __init__(
        self,
        threads: int = 1,
        limit_side: int = 1024,
        retry_side: int = 1920,
        quick_view: View = QUICK_VIEW,
        refined_views: tuple[View, ...] = REFINED_VIEWS,
        max_proposals: int = 6,
        max_refined: int = 2,
        reader: str = DEFAULT_READER,
        plate_models: Sequence[Path] | None = None,
    ):
        if reader not in READERS:
            raise ValueError(f"unknown plate reader {reader!r}: choose one of {', '.join(READERS)}")
        self.detector = TextDetector(threads)
        parts = reader.split("+")
        self.line_reader = LineReader(threads) if "ppocr" in parts else None
        # Beside PP-OCRv4 our cheap CRNNs only, unless the head is asked for (~8 ms a plate). With
        # the head, our CRNNs make the quick reads, which only rank the proposals for refinement
        # and read the rest: ~2 ms a plate instead of a PP-OCRv4 view's ~12.
        self.cheap_quick = self.line_reader is None or "head" in parts
        plate_models = plate_models or (MODEL_PATHS if self.cheap_quick else CRNN_PATHS)
        self.plate_reader = PlateReader(threads, plate_models) if "plate" in parts else None
        self.limit_side = limit_side
        self.retry_side = retry_side
        self.quick_view = quick_view
        self.refined_views = refined_views
        self.max_proposals = max_proposals
        self.max_refined = max_refined

    def recognize(self, frame: np.ndarray, quick: bool = False) -> list[Sighting]:
        """Plate reads in a BGR frame, most plausible first. `quick`: a coarser search (QUICK_SIDE)."""
        if quick:
            return self.reads_at(as_bgr(frame), min(self.limit_side, QUICK_SIDE), quick=True)[0]
        return self.recognize_with_proposals(frame)[0]

    def recognize_with_proposals(self, frame: np.ndarray):
        """(reads, plate proposals); the proposals let `eval` measure detection on its own.

        A frame in which the downscaled pass read nothing gets a second look at up to
        `retry_side`: plates under ~90 px wide can vanish when 1280 px shrinks to 1024."""
        frame = as_bgr(frame)
        reads, proposals = self.reads_at(frame, self.limit_side)
        if not reads and self.retry_side > self.limit_side and max(frame.shape[:2]) > self.limit_side:
            reads, proposals = self.reads_at(frame, self.retry_side)
        return reads, proposals

    def reads_at(self, frame: np.ndarray, limit_side: int, quick: bool = False):
        """One detection pass with the longer side fed to the detector capped at `limit_side`;
        `quick`: fewer refinements, each with fewer views."""
        lines = self.detector.detect(frame, limit_side)
        proposals = propose_plates(lines, frame.shape)[: self.max_proposals]
        first = self.quick_readings(frame, proposals)
        refined, views = (min(self.max_refined, QUICK_REFINED), self.refined_views[:QUICK_VIEWS]) if quick else (
            self.max_refined, self.refined_views)
        refine = self.chosen_for_refinement([refine_priority(q) for q in first], refined)
        if quick:
            refine = {i for i in refine if not first[i] or first[i][0][1] < QUICK_SURE}
        reads = []
        for i, plate in enumerate(proposals):
            readings = [first[i]]
            if i in refine:
                plate, more = self.refined_readings(frame, plate, views)
                readings += more
            read = self.make_read(frame, plate, readings)
            if read is not None:
                reads.append(read)
        reads.sort(key=lambda r: r.confidence * plates.prior(r.text), reverse=True)
        return reads, proposals

    def chosen_for_refinement(self, priority: list[float], max_refined: int) -> set[int]:
        """The `max_refined` most plate-like proposals, leaving out junk and also-rans."""
        if not priority:
            return set()
        floor = max(MIN_PRIORITY, REFINE_RATIO * max(priority))
        order = sorted(range(len(priority)), key=priority.__getitem__, reverse=True)
        return {i for i in order[:max_refined] if priority[i] >= floor}

    def quick_readings(self, image: np.ndarray, proposals: list[PlateProposal]) -> list[Reading]:
        """One reading per proposal, as placed: where the head is in use, our reader on the
        whole plate (one batch; only its cheap CRNNs where refined reads follow), else
        PP-OCRv4's quick view."""
        if self.cheap_quick:
            crops = [warp_band(image, as_trained(p), PLATE_VIEW) for p in proposals]
            return self.plate_reader.readings(crops, cheap_only=self.max_refined > 0)
        return [self.read_view(image, p, self.quick_view) for p in proposals]

    def read_plate_image(self, crop: np.ndarray) -> Sighting | None:
        """Read an image that is already a plate crop (no frame-wide detection)."""
        crop = as_bgr(crop)
        whole = whole_image_plate(crop)
        if self.cheap_quick:
            quick = self.plate_reader.readings([crop], cheap_only=self.max_refined > 0)[0]
        else:
            quick = self.read_view(crop, whole, self.quick_view)
        if self.max_refined == 0:
            return self.make_read(crop, whole, [quick])
        plate, readings = self.refined_readings(crop, whole)
        return self.make_read(crop, plate, [quick, *readings])

    def refined_readings(self, frame: np.ndarray, plate: PlateProposal, views: tuple[View, ...] | None = None):
        """Re-detect the plate precisely, then read it with each of `views` (default: every refined view).

        Returns the plate as placed (in frame pixels) and the readings.
        """
        refined = refine_plate(self.detector, frame, plate)
        # No line at the higher resolution: read where the proposal says.
        image, placed, in_frame = (frame, plate, plate) if refined is None else refined
        readings = []
        if self.line_reader is not None:
            readings += [self.read_view(image, placed, v) for v in views or self.refined_views]
        if self.plate_reader is not None:
            readings += self.plate_reader.readings([warp_band(image, as_trained(placed), PLATE_VIEW)])
        return in_frame, readings

    def read_view(self, image: np.ndarray, plate: PlateProposal, view: View) -> Reading:
        band = warp_band(image, plate, view.band)
        if view.stretch != 1.0:
            band = cv2.resize(band, None, fx=view.stretch, fy=1.0, interpolation=cv2.INTER_CUBIC)
        if view.red_only:
            band = cv2.merge([band[..., 2]] * 3)
        return beam_search(self.line_reader.char_probs(band))

    def make_read(self, frame, plate: PlateProposal, readings: list[Reading]) -> Sighting | None:
        candidates = plates.rank(fuse(readings))
        if not candidates or plates.prior(candidates[0][0]) <= plates.OUTSIDE_LENGTH_PRIOR:
            return None  # nothing plate-like: a sign, a timestamp, a grille
        text, confidence = candidates[0]
        crop = warp_band(frame, plate, CROP_BAND)
        return Sighting(text, confidence, plate.bbox(), tuple(candidates), crop)


def as_trained(plate: PlateProposal) -> PlateProposal:
    """The plate as our reader was trained to see it: sized from its line's height too."""
    if plate.line is None:
        return plate
    return plate_from_line(plate.line, PLATE_PER_LINE_HEIGHT * plate.line.height)


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
