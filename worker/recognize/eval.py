"""`platewatch eval DIR [--json]`: run the real recognition pipeline over a labelled folder.

Two OpenALPR layouts are understood:
- end-to-end photos, each with a `.txt` label beside it: `<image>\\t<x>\\t<y>\\t<w>\\t<h>\\t<plate>`;
  the read whose box best overlaps the labelled box is scored (one plate is labelled per photo).
- plate crops listed in `groundtruth.csv` (`<file>,<state>,<plate>`, no header); each crop is
  read as a plate, without detection.

A bad item (unreadable image, malformed label) is reported, counted and skipped.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from contract.plates import levenshtein
from worker.config import DEFAULT_READER, READERS
from worker.recognize.plates import normalise

DETECTION_IOU = 0.3
FRAME_720P = (720, 1280)  # (height, width): issue 3's cost target is per 720p frame


@dataclass(frozen=True)
class Item:
    image: Path
    plate: str
    box: tuple[int, int, int, int] | None  # None for crops


@dataclass
class Outcome:
    text: str  # what the pipeline read for the labelled plate ("" if nothing)
    detected: bool | None  # a proposal overlaps the labelled box (None for crops)
    top_is_labelled: bool | None  # the top-ranked read is the labelled plate
    ms: float  # wall clock
    cpu_ms: float  # this process's CPU time: the cost on one core even on a shared machine


@dataclass
class Summary:
    images: int = 0
    exact: int = 0
    within1: int = 0
    detected: int | None = None
    top_is_labelled: int | None = None
    errors: int = 0
    times_ms: list[float] = field(default_factory=list)
    cpu_times_ms: list[float] = field(default_factory=list)
    cpu_times_720p_ms: list[float] = field(default_factory=list)  # photos of exactly 1280x720

    def as_dict(self) -> dict:
        ms, cpu_ms = np.array(self.times_ms or [0.0]), np.array(self.cpu_times_ms or [0.0])
        hd = self.cpu_times_720p_ms
        return {
            "images": self.images,
            "exact": self.exact,
            "within1": self.within1,
            "detected": self.detected,
            "ms_median": round(float(np.median(ms)), 1),
            "ms_p90": round(float(np.percentile(ms, 90)), 1),
            "cpu_ms_median": round(float(np.median(cpu_ms)), 1),
            "cpu_ms_p90": round(float(np.percentile(cpu_ms, 90)), 1),
            "frames_720p": len(hd),
            "cpu_ms_720p_median": round(float(np.median(hd)), 1) if hd else None,
            "cpu_ms_720p_p90": round(float(np.percentile(hd, 90)), 1) if hd else None,
            "top_is_labelled": self.top_is_labelled,
            "errors": self.errors,
        }


class LabelError(ValueError):
    pass


def iou(a: tuple, b: tuple) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    union = aw * ah + bw * bh - ix * iy
    return ix * iy / union if union > 0 else 0.0


def load_items(folder: Path, report: Callable[[str], None]) -> tuple[list[Item], int]:
    """Items of a labelled folder, and how many labels were unusable (each one reported)."""
    if (folder / "groundtruth.csv").is_file():
        return crop_items(folder, report)
    items, errors = [], 0
    for label in sorted(folder.glob("*.txt")):
        try:
            items.append(parse_photo_label(label))
        except LabelError as exc:
            report(f"{label.name}: {exc}; skipped")
            errors += 1
    return items, errors


def parse_photo_label(label: Path) -> Item:
    lines = [ln for ln in label.read_text(errors="replace").splitlines() if ln.strip()]
    if len(lines) != 1:
        raise LabelError(f"expected one label line, found {len(lines)}")
    fields = lines[0].split("\t")
    if len(fields) != 6:
        raise LabelError(f"expected 6 TAB-separated fields (image x y w h plate), got {len(fields)}")
    try:
        box = tuple(int(v) for v in fields[1:5])
    except ValueError:
        raise LabelError(f"box is not four integers: {fields[1:5]}") from None
    plate = normalise(fields[5])
    if not plate or box[2] <= 0 or box[3] <= 0:
        raise LabelError("empty plate text or empty box")
    return Item(label.parent / fields[0].strip(), plate, box)


def crop_items(folder: Path, report: Callable[[str], None]) -> tuple[list[Item], int]:
    items, errors = [], 0
    with open(folder / "groundtruth.csv", newline="", errors="replace") as handle:
        for number, row in enumerate(csv.reader(handle), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 3 or not normalise(row[2]) or not row[0].strip():
                report(f"groundtruth.csv line {number}: expected <file>,<state>,<plate>; skipped")
                errors += 1
                continue
            items.append(Item(folder / row[0].strip(), normalise(row[2]), None))
    return items, errors


def timed(function, *args):
    """(result, wall ms, CPU ms of this process)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    result = function(*args)
    return result, (time.perf_counter() - start) * 1000, (time.process_time() - cpu_start) * 1000


def evaluate_item(recognizer, item: Item, image: np.ndarray) -> Outcome:
    if item.box is None:
        read, ms, cpu_ms = timed(recognizer.read_plate_image, image)
        return Outcome(read.text if read else "", None, None, ms, cpu_ms)
    (reads, proposals), ms, cpu_ms = timed(recognizer.recognize_with_proposals, image)
    # Proposals as first placed, or as re-detected (a read's box): either may find the plate.
    boxes = [p.bbox() for p in proposals] + [r.box for r in reads]
    detected = any(iou(box, item.box) > DETECTION_IOU for box in boxes)
    overlaps = [iou(r.box, item.box) for r in reads]
    best = int(np.argmax(overlaps)) if overlaps else -1
    text = reads[best].text if best >= 0 and overlaps[best] > 0 else ""
    top = bool(overlaps) and overlaps[0] > DETECTION_IOU
    return Outcome(text, detected, top, ms, cpu_ms)


def evaluate(
    items: Iterable[Item], recognizer, report: Callable[[str], None], verbose: bool = False
) -> Summary:
    summary = Summary()
    for item in items:
        image = cv2.imread(str(item.image), cv2.IMREAD_COLOR)
        if image is None:
            report(f"{item.image.name}: unreadable or missing image; skipped")
            summary.errors += 1
            continue
        outcome = evaluate_item(recognizer, item, image)
        add(summary, item, outcome, image.shape[:2] == FRAME_720P and item.box is not None)
        if verbose and outcome.text != item.plate:
            report(f"{item.image.name}: read {outcome.text or '-'!r}, label {item.plate!r}")
    return summary


def add(summary: Summary, item: Item, outcome: Outcome, frame_720p: bool = False) -> None:
    summary.images += 1
    summary.exact += outcome.text == item.plate
    summary.within1 += levenshtein(outcome.text, item.plate) <= 1
    summary.times_ms.append(outcome.ms)
    summary.cpu_times_ms.append(outcome.cpu_ms)
    if frame_720p:
        summary.cpu_times_720p_ms.append(outcome.cpu_ms)
    if outcome.detected is not None:
        summary.detected = (summary.detected or 0) + outcome.detected
        summary.top_is_labelled = (summary.top_is_labelled or 0) + outcome.top_is_labelled


def format_summary(summary: Summary, folder: Path) -> str:
    d = summary.as_dict()
    n = max(d["images"], 1)
    lines = [
        f"folder        {folder}",
        f"images        {d['images']}" + (f"  ({d['errors']} skipped)" if d["errors"] else ""),
        f"exact         {d['exact']}  ({100 * d['exact'] / n:.1f}%)",
        f"within one    {d['within1']}  ({100 * d['within1'] / n:.1f}%)",
    ]
    if d["detected"] is not None:
        lines.append(f"detected      {d['detected']}  ({100 * d['detected'] / n:.1f}%, IoU > 0.3)")
        lines.append(f"top read is the labelled plate  {d['top_is_labelled']}")
    lines.append(f"ms per image  median {d['ms_median']}, p90 {d['ms_p90']} (wall clock)")
    lines.append(f"CPU ms        median {d['cpu_ms_median']}, p90 {d['cpu_ms_p90']} (this process)")
    if d["frames_720p"]:
        lines.append(f"CPU ms, 720p  median {d['cpu_ms_720p_median']}, p90 {d['cpu_ms_720p_p90']} "
                     f"({d['frames_720p']} photos of 1280x720)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="platewatch eval", description=__doc__.split("\n")[0])
    parser.add_argument("dir", type=Path, help="OpenALPR-format labelled folder")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of totals")
    parser.add_argument("--verbose", action="store_true", help="list every wrong read")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--reader", choices=READERS, default=DEFAULT_READER,
                        help="plate: our recognizer trained on rendered plates; ppocr: PP-OCRv4 views; "
                             "ppocr+plate: both, fused; ppocr+plate+head (the default): both, with our "
                             "head on PP-OCRv4 features")
    args = parser.parse_args(argv)

    def report(message: str) -> None:
        print(f"eval: {message}", file=sys.stderr)

    if not args.dir.is_dir():
        report(f"{args.dir}: not a folder")
        return 2
    items, label_errors = load_items(args.dir, report)
    if not items and not label_errors:
        report(f"{args.dir}: no labelled images (.txt labels or groundtruth.csv) found")
        return 2
    from worker.recognize.read import Recognizer  # loads the ONNX models: only once there is work

    summary = evaluate(items, Recognizer(threads=args.threads, reader=args.reader), report, args.verbose)
    summary.errors += label_errors
    print(format_summary(summary, args.dir))
    if args.json:
        print(json.dumps(summary.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
