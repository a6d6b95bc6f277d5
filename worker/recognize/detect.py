"""Plate proposals: PP-OCRv4 text lines (DB detector via onnxruntime) + plate-shape rules.

Pure functions over numpy images; the only state is the onnxruntime session held by
`TextDetector`. Boxes are (x, y, w, h) in the pixels of the image that was passed in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from worker.recognize.regions import Box, region_for_net
from worker.recognize.runtime import bundled_model, make_session


# OpenVINO pins the thread that runs a model to a core, and every process picks the same one
# (core 0): two recognition processes then shared one core while the other idled (seen at 24
# cameras: each process on a core 55% of the time, waiting to run 37%). The kernel places them.
OPENVINO_CONFIG = json.dumps({"CPU": {"ENABLE_CPU_PINNING": "NO"}})


def detector_providers(available: list[str], threads: int) -> list:
    """OpenVINO where the installed onnxruntime offers it (onnxruntime-openvino, installed on Linux
    x86_64: the detector at ~55-60% of the CPU time, same detections and reads; docs/benchmarks.md),
    else onnxruntime's own CPU kernels."""
    if "OpenVINOExecutionProvider" in available:
        openvino = ("OpenVINOExecutionProvider", {"device_type": "CPU", "num_of_threads": str(threads),
                                                  "load_config": OPENVINO_CONFIG})
        return [openvino, "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


DETECTOR_FILE = "ch_PP-OCRv4_det_infer.onnx"  # in rapidocr-onnxruntime's wheel


@dataclass(frozen=True)
class TextLine:
    """A detected text line: rotated rectangle in image pixels plus the DB score."""

    center: tuple[float, float]
    size: tuple[float, float]  # (along the text, across it)
    angle: float  # degrees in (-45, 45]
    score: float

    @property
    def height(self) -> float:
        return self.size[1]

    @property
    def width(self) -> float:
        return self.size[0]

    def corners(self) -> np.ndarray:
        """Four corners ordered top-left, top-right, bottom-right, bottom-left."""
        pts = cv2.boxPoints((self.center, self.size, self.angle))
        return order_corners(pts)

    def bbox(self) -> tuple[int, int, int, int]:
        pts = self.corners()
        x0, y0 = np.floor(pts.min(axis=0))
        x1, y1 = np.ceil(pts.max(axis=0))
        return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def order_corners(pts: np.ndarray) -> np.ndarray:
    """Order four points tl, tr, br, bl (sum/diff trick, fine for near-horizontal text)."""
    pts = np.asarray(pts, dtype=np.float32)
    s = pts.sum(axis=1)
    d = pts[:, 1] - pts[:, 0]
    return np.array([pts[s.argmin()], pts[d.argmin()], pts[s.argmax()], pts[d.argmax()]])


class TextDetector:
    """PP-OCRv4 DB text detector. `limit_side` caps the longer image side fed to the net.

    `model`: a model file (default: the wheel's detector). `optimization`: onnxruntime's graph
    optimisation level. `providers`: onnxruntime execution providers (default: OpenVINO where
    installed). All measured side by side in bench/detector.py and docs/benchmarks.md.
    """

    def __init__(
        self,
        threads: int = 1,
        model: Path | None = None,
        optimization: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        providers: list | None = None,
    ):
        providers = providers or detector_providers(ort.get_available_providers(), threads)
        self.session = make_session(model or bundled_model(DETECTOR_FILE), threads, optimization, providers)
        self.input_name = self.session.get_inputs()[0].name

    def probability_map(
        self, image: np.ndarray, limit_side: int, sharpen: bool = True
    ) -> tuple[np.ndarray, tuple[float, float]]:
        """Run the net; return the text probability map and its (x, y) scale versus `image`."""
        blob, scale = net_input(image, limit_side, sharpen)
        prob = self.session.run(None, {self.input_name: blob})[0][0, 0]
        return prob, scale

    def detect(self, image: np.ndarray, limit_side: int = 1024, sharpen: bool = True) -> list[TextLine]:
        prob, scale = self.probability_map(image, limit_side, sharpen)
        return lines_from_map(prob, scale)

    def detect_region(
        self, frame: np.ndarray, region: Box, limit_side: int | None = None, sharpen: bool = True
    ) -> list[TextLine]:
        """Text lines inside `region` (x, y, w, h) of `frame`, in frame pixels.

        `limit_side` caps the region's longer side fed to the net; by default a region is
        searched at the frame's own resolution, up to `REGION_LIMIT` (plates stay as sharp as
        in the frame and the cost follows the region's area). The region is grown to a
        multiple of REGION_STEP first, so lines a little outside it may be returned."""
        x, y, w, h = region_for_net(region, frame.shape)
        lines = self.detect(frame[y : y + h, x : x + w], limit_side or REGION_LIMIT, sharpen)
        return [shifted(line, x, y) for line in lines]


REGION_LIMIT = 1024  # a region's longer side fed to the net at most (the whole frame's limit)
REGION_SIZE = (640, 360)  # a motion region around one vehicle in a 1280x720 frame (bench/detector.py)


def shifted(line: TextLine, dx: float, dy: float) -> TextLine:
    return TextLine((line.center[0] + dx, line.center[1] + dy), line.size, line.angle, line.score)


def net_input(image: np.ndarray, limit_side: int, sharpen: bool = True):
    """The detector's input blob for `image`, and its (x, y) scale versus `image`."""
    h, w = image.shape[:2]
    scale = min(1.0, limit_side / max(h, w))  # upscaling small frames found nothing more
    # Multiples of 32 are required by the network; never round down to zero.
    net_w = max(32, int(round(w * scale / 32)) * 32)
    net_h = max(32, int(round(h * scale / 32)) * 32)
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC  # area to shrink, cubic to grow
    resized = cv2.resize(image, (net_w, net_h), interpolation=interp)
    if sharpen:
        resized = unsharp(resized)
    blob = (resized.astype(np.float32) * (2 / 255.0) - 1.0).transpose(2, 0, 1)[None]
    return blob, (net_w / w, net_h / h)


def unsharp(image: np.ndarray, sigma: float = 3.0, amount: float = 0.8) -> np.ndarray:
    """Crisper edges: the detector finds small, soft plates far more often.

    Measured on the US end-to-end set at limit 960 (plates with a detected line inside):
    none 109, sigma 2 -> 112, sigma 3 -> 114 of 115. It helps small frames that are not
    downscaled too (plate proposals 109 -> 111), but not the upscaled refinement window.
    """
    blurred = cv2.GaussianBlur(image, (0, 0), sigma)
    return cv2.addWeighted(image, 1 + amount, blurred, -amount, 0)


def lines_from_map(
    prob: np.ndarray,
    scale: tuple[float, float],
    thresh: float = 0.2,
    box_thresh: float = 0.3,
    unclip_ratio: float = 1.6,
) -> list[TextLine]:
    """DB post-processing: threshold, contours, score, expand ("unclip") each box.

    For a rectangle, pyclipper's round offset followed by minAreaRect equals growing each side
    by the offset distance, so no polygon library is needed. Thresholds are below rapidocr's
    (0.3 / 0.5) because small, low-contrast plates score weakly; the shape rules and the
    reader reject the extra lines.
    """
    mask = cv2.dilate((prob > thresh).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    lines = []
    for contour in contours[:1000]:
        (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
        if min(rw, rh) < 3:
            continue
        score = box_score(prob, cv2.boxPoints(((cx, cy), (rw, rh), angle)))
        if score < box_thresh:
            continue
        grow = (rw * rh * unclip_ratio) / (rw + rh)  # 2 x offset distance (area * r / perimeter)
        corners = cv2.boxPoints(((cx, cy), (rw + grow, rh + grow), angle))
        line = line_from_points(corners / np.float32(scale), score)
        if line.height >= 5 / min(scale):
            lines.append(line)
    return lines


def line_from_points(points: np.ndarray, score: float) -> TextLine:
    """Minimum-area rectangle around points, with the near-horizontal side as width.

    OpenCV's angle convention has changed between versions; folding it into (-45, 45]
    (each 90-degree step swaps the sides) makes `size[0]` the side along the text.
    """
    (cx, cy), (rw, rh), angle = cv2.minAreaRect(np.asarray(points, dtype=np.float32))
    while angle > 45:
        rw, rh, angle = rh, rw, angle - 90
    while angle <= -45:
        rw, rh, angle = rh, rw, angle + 90
    return TextLine((cx, cy), (rw, rh), angle, float(score))


def box_score(prob: np.ndarray, pts: np.ndarray) -> float:
    """Mean probability inside the box (the "fast" DB score)."""
    h, w = prob.shape
    x0, y0 = np.clip(np.floor(pts.min(axis=0)).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(pts.max(axis=0)).astype(int), 0, [w - 1, h - 1])
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    cv2.fillPoly(mask, [(pts - [x0, y0]).astype(np.int32)], 1)
    return cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0]


# --- plate proposals -------------------------------------------------------------------------

# Plate-shape rules for the registration line (measured on the US end-to-end set: the line
# around a plate's characters is 1.75-3.2 times as wide as tall for 90% of plates).
MIN_ASPECT, MAX_ASPECT = 1.2, 8.0
MIN_LINE_HEIGHT = 10  # frame pixels; smaller characters are not readable by the recogniser
MAX_TILT = 30.0  # degrees

# A US plate is 2:1 (12 x 6 in). The registration spans about its full width and sits a
# little below its middle (median offsets measured on the same set).
PLATE_ASPECT = 2.0
PLATE_WIDTH_PER_LINE = 1.0
PLATE_CENTER_ABOVE_LINE = 0.08  # in plate heights


@dataclass(frozen=True)
class PlateProposal:
    """A likely plate: a rotated rectangle in the pixels of the image it was found in."""

    center: tuple[float, float]
    size: tuple[float, float]  # (width, height)
    angle: float
    line: TextLine | None = None  # the registration line it was estimated from

    def bbox(self) -> tuple[int, int, int, int]:
        """Axis-aligned (x, y, w, h) around the rotated plate rectangle."""
        return TextLine(self.center, self.size, self.angle, 0.0).bbox()

    def corners(self) -> np.ndarray:
        return TextLine(self.center, self.size, self.angle, 0.0).corners()


def whole_image_plate(image: np.ndarray) -> PlateProposal:
    h, w = image.shape[:2]
    return PlateProposal((w / 2, h / 2), (float(w), float(h)), 0.0)


def propose_plates(lines: list[TextLine], frame_shape: tuple[int, ...]) -> list[PlateProposal]:
    """Registration-line candidates -> plate rectangles, tallest line first, one per plate."""
    frame_h = frame_shape[0]
    shaped = [
        line
        for line in merge_fragments(lines)
        if MIN_ASPECT <= line.width / line.height <= MAX_ASPECT
        and MIN_LINE_HEIGHT <= line.height <= frame_h / 3
        and abs(line.angle) <= MAX_TILT
    ]
    proposals: list[PlateProposal] = []
    # The registration has the tallest characters; a shorter line inside an already proposed
    # plate is its state name or slogan, not another plate.
    for line in sorted(shaped, key=lambda ln: ln.height, reverse=True):
        if not any(contains(p, line.center) for p in proposals):
            proposals.append(plate_from_line(line))
    return proposals


def plate_from_line(line: TextLine, min_height: float = 0.0) -> PlateProposal:
    """The 2:1 plate around a registration line, at least `min_height` tall."""
    height = max(line.width * PLATE_WIDTH_PER_LINE / PLATE_ASPECT, min_height)
    width = max(line.width * PLATE_WIDTH_PER_LINE, height * PLATE_ASPECT)
    shift = PLATE_CENTER_ABOVE_LINE * height
    theta = np.deg2rad(line.angle)
    # "Up" in the plate's own frame is (sin, -cos) of its tilt in image coordinates.
    center = (line.center[0] + shift * np.sin(theta), line.center[1] - shift * np.cos(theta))
    return PlateProposal((float(center[0]), float(center[1])), (width, height), line.angle, line)


def contains(proposal: PlateProposal, point: tuple[float, float]) -> bool:
    box = proposal.corners().reshape(-1, 1, 2)
    return cv2.pointPolygonTest(box, (float(point[0]), float(point[1])), False) >= 0


def merge_fragments(lines: list[TextLine]) -> list[TextLine]:
    """Join pieces of one registration that the detector split at a gap or an emblem."""
    merged = list(lines)
    pair = next_pair(merged)
    while pair:
        a, b = merged.pop(pair[1]), merged.pop(pair[0])
        points = np.concatenate([a.corners(), b.corners()])
        merged.append(line_from_points(points, max(a.score, b.score)))
        pair = next_pair(merged)
    return merged


def next_pair(lines: list[TextLine]) -> tuple[int, int] | None:
    for i, a in enumerate(lines):
        for j in range(i + 1, len(lines)):
            if same_row(a, lines[j]):
                return i, j
    return None


def same_row(a: TextLine, b: TextLine) -> bool:
    """Similar height, same baseline, small horizontal gap, similar tilt."""
    tall, short = max(a.height, b.height), min(a.height, b.height)
    if tall > 1.5 * short or abs(a.angle - b.angle) > 10:
        return False
    if abs(a.center[1] - b.center[1]) > 0.4 * tall:
        return False
    gap = abs(a.center[0] - b.center[0]) - (a.width + b.width) / 2
    return gap <= 0.3 * tall  # unclipped boxes of one split registration touch or overlap


# --- plate crops and refinement ----------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """A strip of a plate: top/bottom as fractions of the plate height (may go past 0..1),
    widened by `pad` (a fraction of the plate width, split over both sides)."""

    top: float
    bottom: float
    pad: float = 0.0


def band_transform(plate: PlateProposal, band: Band, scale: float = 1.0):
    """Perspective matrix mapping `band` of the plate onto an upright (w, h) image."""
    width, height = plate.size
    theta = np.deg2rad(plate.angle)
    offset = ((band.top + band.bottom) / 2 - 0.5) * height  # along the plate's "down" axis
    center = (plate.center[0] - offset * np.sin(theta), plate.center[1] + offset * np.cos(theta))
    out_w = max(4, int(round(width * (1 + band.pad) * scale)))
    out_h = max(4, int(round(height * (band.bottom - band.top) * scale)))
    corners = order_corners(cv2.boxPoints((center, (out_w / scale, out_h / scale), plate.angle)))
    target = np.float32([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]])
    return cv2.getPerspectiveTransform(corners, target), (out_w, out_h)


def warp_band(image: np.ndarray, plate: PlateProposal, band: Band, scale: float = 1.0):
    """Cut `band` out of the rotated plate, deskewed, resampled by `scale`."""
    matrix, size = band_transform(plate, band, scale)
    interp = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_LINEAR
    return cv2.warpPerspective(image, matrix, size, flags=interp, borderMode=cv2.BORDER_REPLICATE)


# Re-detection window around a proposal, and the plate width it is resampled to. The frame-wide
# pass runs downscaled and only roughly places the plate; a second pass on this small upscaled
# window (about 200 x 120 px, ~6 ms on one core) finds the registration line precisely.
REFINE_WINDOW = Band(-0.25, 1.25, 0.3)
REFINE_PLATE_WIDTH = 160


def refine_plate(detector: TextDetector, frame: np.ndarray, plate: PlateProposal):
    """(window image, plate in window pixels, plate in frame pixels), or None if no line."""
    scale = REFINE_PLATE_WIDTH / plate.size[0]  # also shrinks big plates: keeps this cheap
    matrix, size = band_transform(plate, REFINE_WINDOW, scale)
    flags = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_LINEAR
    window = cv2.warpPerspective(frame, matrix, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    lines = merge_fragments(detector.detect(window, max(size), sharpen=False))
    lines = [ln for ln in lines if ln.width >= MIN_ASPECT * ln.height]
    if not lines:
        return None
    h, w = window.shape[:2]
    # The registration: tall characters near the window's middle (where the proposal put it).
    line = max(
        lines,
        key=lambda ln: ln.height - 0.5 * abs(ln.center[1] - h / 2) - 0.2 * abs(ln.center[0] - w / 2),
    )
    in_window = plate_from_line(line)
    corners = cv2.perspectiveTransform(in_window.corners()[None], np.linalg.inv(matrix))[0]
    back = line_from_points(corners, line.score)
    in_frame = PlateProposal(back.center, back.size, back.angle, plate.line)
    return window, in_window, in_frame
