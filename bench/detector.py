"""The text detector's cost and accuracy, variants side by side, on the OpenALPR US photos.

    python -m bench.detector [--runs N] [--engines a,b] [--inputs a,b] [--e2e a/b,c/d] [--data DIR]

An engine is how the detector runs (model file, graph optimisation, execution provider); an
input is what it is fed: the whole frame with its longer side capped at 1024 (today), 960, 736
or 640 px, or a motion-region-sized crop around the vehicle (the labelled plate box grown to
640x360 inside the frame, as a motion gate would give) at its own resolution or capped lower.

- cost: CPU ms of the detector call alone (preprocessing, the net, post-processing), one
  onnxruntime thread, warmed up, every variant run on each photo in turn (so a busy machine
  weighs on all alike), median and p90 over the 1280x720 photos and N runs;
- detected: labelled plates with a plate proposal from the detected lines at IoU > 0.3;
- end-to-end (the variants named by --e2e, engine/input): the worker's reader
  (`worker.recognize.read.Recognizer`) with this detector and input, scored by `worker.recognize.eval` on every
  photo: exact, within one character, detected (as `platewatch eval` counts them), and the
  CPU ms of the whole recognition call (median over the 1280x720 photos).

The OpenVINO engines need onnxruntime-openvino in place of onnxruntime (a separate venv; see
docs/benchmarks.md); where it is missing they are skipped. The data folder is evaluation data
the repository does not ship: without it this exits with a message.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from bench.accuracy import DEFAULT_DATA
from bench.common import machine
from training.quantize_detector import QUANTIZED_DETECTOR, quantized_detector
from worker.recognize import detect
from worker.recognize.eval import DETECTION_IOU, FRAME_720P, Item, Summary, add, evaluate_item, iou, load_items

LEVELS = ort.GraphOptimizationLevel
ENGINES = {  # name: (model, graph optimisation, execution provider)
    "today": ("wheel", LEVELS.ORT_ENABLE_ALL, "cpu"),  # issue 18's start: onnxruntime's default, ALL
    "extended": ("wheel", LEVELS.ORT_ENABLE_EXTENDED, "cpu"),
    "basic": ("wheel", LEVELS.ORT_ENABLE_BASIC, "cpu"),
    "int8": ("int8", LEVELS.ORT_ENABLE_ALL, "cpu"),
    "openvino": ("wheel", LEVELS.ORT_ENABLE_ALL, "openvino"),
    "openvino-int8": ("int8", LEVELS.ORT_ENABLE_ALL, "openvino"),
}
INPUTS = {  # name: (region?, longer side fed to the net at most)
    "frame-1024": (False, 1024), "frame-960": (False, 960), "frame-736": (False, 736),
    "frame-640": (False, 640), "region-640": (True, 640), "region-480": (True, 480),
}
DEFAULT_E2E = "today/frame-1024,today/frame-960,today/frame-736,today/frame-640,today/region-640,"
DEFAULT_E2E += "today/region-480,extended/frame-1024,int8/frame-1024,int8/region-640"


def make_detector(engine: str) -> detect.TextDetector:
    model, level, provider = ENGINES[engine]
    path = quantized_detector() if model == "int8" else None
    available = ["OpenVINOExecutionProvider"] if provider == "openvino" else []
    return detect.TextDetector(1, path, level, detect.detector_providers(available, 1))


def region_of(item: Item, frame: np.ndarray) -> detect.Box:
    return detect.grow_region(item.box, detect.REGION_SIZE, frame.shape)


def lines_for(detector: detect.TextDetector, input_name: str, item: Item, frame: np.ndarray):
    is_region, limit = INPUTS[input_name]
    if is_region:
        return detector.detect_region(frame, region_of(item, frame), limit)
    return detector.detect(frame, limit)


def found(lines, item: Item, frame: np.ndarray) -> bool:
    return any(iou(p.bbox(), item.box) > DETECTION_IOU for p in detect.propose_plates(lines, frame.shape))


def measure(detectors: dict, inputs: list[str], photos: list, runs: int) -> dict:
    """{(engine, input): (cpu ms of each 720p call, plates detected)}, all run photo by photo."""
    pairs = [(e, i) for e in detectors for i in inputs]
    for engine, input_name in pairs:  # warm up: first calls allocate and tune
        for item, frame in photos[:3]:
            lines_for(detectors[engine], input_name, item, frame)
    times: dict = {p: [] for p in pairs}
    hits: dict = {p: 0 for p in pairs}
    for run in range(runs):
        for item, frame in photos:
            for engine, input_name in pairs:
                start = time.process_time()
                lines = lines_for(detectors[engine], input_name, item, frame)
                ms = (time.process_time() - start) * 1000
                if frame.shape[:2] == FRAME_720P:
                    times[(engine, input_name)].append(ms)
                if run == 0:
                    hits[(engine, input_name)] += found(lines, item, frame)
    return {p: (times[p], hits[p]) for p in pairs}


def end_to_end(detector: detect.TextDetector, input_name: str, photos: list) -> Summary:
    """The worker's reader with this detector on every photo (the region: its crop, the label
    moved into the crop), scored by worker.recognize.eval."""
    from worker.recognize.read import Recognizer

    is_region, limit = INPUTS[input_name]
    recognizer = Recognizer(threads=1, limit_side=limit)
    recognizer.detector = detector
    summary = Summary()
    for item, frame in photos:
        frame_720p = frame.shape[:2] == FRAME_720P  # the photo's; the region's cost counts there
        if is_region:
            x, y, w, h = region_of(item, frame)
            bx, by, bw, bh = item.box
            item, frame = dataclasses.replace(item, box=(bx - x, by - y, bw, bh)), frame[y : y + h, x : x + w]
        add(summary, item, evaluate_item(recognizer, item, frame), frame_720p)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.detector", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2, help="timed passes over the photos")
    parser.add_argument("--engines", default="today,extended,int8,openvino,openvino-int8")
    parser.add_argument("--inputs", default=",".join(INPUTS))
    parser.add_argument("--e2e", default=DEFAULT_E2E, help="engine/input pairs read end to end ('' for none)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding openalpr-us")
    args = parser.parse_args(argv)
    folder = args.data / "openalpr-us"
    if not folder.is_dir():
        print(f"bench.detector: skipped: no data folder at {folder} (set --data)")
        return 0
    engines = [e for e in args.engines.split(",") if available(e)]
    inputs = args.inputs.split(",")
    items = load_items(folder, lambda message: print(f"  {message}", file=sys.stderr))[0]
    photos = [(item, cv2.imread(str(item.image), cv2.IMREAD_COLOR)) for item in items]
    detectors = {}
    for engine in engines:
        start = time.perf_counter()
        detectors[engine] = make_detector(engine)
        print(f"{engine}: session ready in {(time.perf_counter() - start) * 1000:.0f} ms", flush=True)
    print(f"machine: {machine()}, onnxruntime {ort.__version__}; {len(photos)} photos, "
          f"{sum(f.shape[:2] == FRAME_720P for _, f in photos)} of 1280x720 timed x {args.runs} runs")
    results = measure(detectors, inputs, photos, args.runs)
    e2e = [pair.split("/") for pair in args.e2e.split(",") if pair]
    print("| engine | input | CPU ms median | CPU ms p90 | detected | exact | within one | e2e detected "
          "| e2e CPU ms median, 720p |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (engine, input_name), (ms, hits) in results.items():
        reads = "| - | - | - | -"
        if [engine, input_name] in e2e:
            d = end_to_end(detectors[engine], input_name, photos).as_dict()
            reads = f"| {d['exact']} | {d['within1']} | {d['detected']} | {d['cpu_ms_720p_median']}"
        print(f"| {engine} | {input_name} | {np.median(ms):.1f} | {np.percentile(ms, 90):.1f} "
              f"| {hits}/{len(photos)} {reads} |", flush=True)
    return 0


def available(engine: str) -> bool:
    model, _, provider = ENGINES[engine]
    if provider == "openvino" and "OpenVINOExecutionProvider" not in ort.get_available_providers():
        print(f"{engine}: skipped: onnxruntime-openvino is not installed here")
        return False
    if model == "int8" and not QUANTIZED_DETECTOR.is_file():
        print(f"{engine}: skipped: no {QUANTIZED_DETECTOR} (python -m training.quantize_detector)")
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
