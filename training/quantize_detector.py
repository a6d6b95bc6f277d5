"""Static int8 quantisation of PP-OCRv4's text detector, calibrated on rendered scenes only.

    python -m training.quantize_detector [--frames N] [--seed S] [--format qdq|qoperator] [--out PATH]

Renders N street scenes with a vehicle and a plate (`synth`, plate sizes and places
drawn from seed S), feeds the detector the inputs it gets in the worker (whole frames at the
worker's input limits, motion-region crops, the upscaled refinement windows around a plate),
collects activation ranges (MinMax; the histogram methods fail on the detector's varying input
sizes) and writes the quantised model with the SHA-256 of the wheel's detector it was made
from in its metadata: `quantized_detector` refuses it beside another wheel model. Measured in
`python -m bench.detector` (engine int8) and not adopted: it loses plates on real photos
(docs/benchmarks.md). Never calibrate on ../shared/data: it is the yardstick.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import version_converter
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

import synth
from synth.plategen import sample_plate
from worker.recognize import detect, regions, runtime

CALIBRATION_LIMITS = (1024, 736, 640)  # whole-frame input limits the worker may use
# Not adopted (it loses plates: docs/benchmarks.md), so built where the benchmark finds it and
# not shipped; it records the SHA-256 of the wheel's detector it was made from.
QUANTIZED_DETECTOR = Path(__file__).resolve().parents[1] / "bench" / "out" / "text_det_int8.onnx"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def quantized_detector(path: Path = QUANTIZED_DETECTOR, source: Path | None = None) -> Path:
    """`path`, if it was made from the detector at `source` (default: the wheel's); a model
    made from another detector is refused by name rather than run with the wrong weights."""
    source = source or runtime.bundled_model(detect.DETECTOR_FILE)
    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    made_from, found = meta.get("source_sha256", "?"), sha256_of(source)
    if made_from != found:
        raise ValueError(f"{path.name} was quantised from a detector with SHA-256 {made_from[:12]}…, but "
                         f"{source} has {found[:12]}…: reinstall rapidocr-onnxruntime==1.4.4 or rebuild it "
                         "(`python -m training.quantize_detector`)")
    return path


def scene(rng: random.Random) -> tuple[np.ndarray, detect.PlateProposal]:
    """A 1280x720 street with a vehicle; its plate 50-260 px wide, anywhere a camera sees it."""
    plate_h = rng.randint(25, 130)
    state = rng.choice(sorted(synth.STYLES))
    plate = synth.render_plate(sample_plate(rng, state).text, state=state, height=plate_h, rng=rng)
    center = (rng.randint(200, 1080), rng.randint(150, 620))
    frame = clutter(synth.make_scene(plate, plate_center=center, rng=rng), rng, keep=center)
    proposal = detect.PlateProposal((float(center[0]), float(center[1])), (2.0 * plate_h, float(plate_h)), 0.0)
    return frame, proposal


def clutter(frame: np.ndarray, rng: random.Random, keep: tuple[int, int]) -> np.ndarray:
    """What real streets add to the flat rendered one: busy shapes, signs, sensor noise, JPEG.
    Without them the activation ranges are too narrow and real photos clip (plates lost)."""
    h, w = frame.shape[:2]
    for _ in range(rng.randint(5, 25)):
        x, y = rng.randrange(w), rng.randrange(h)
        if abs(x - keep[0]) < 150 and abs(y - keep[1]) < 100:
            continue  # leave the plate readable
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            cv2.rectangle(frame, (x, y), (x + rng.randint(10, 200), y + rng.randint(10, 120)), colour, -1)
        else:
            text = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789 ") for _ in range(rng.randint(3, 12)))
            cv2.putText(frame, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, rng.uniform(0.4, 2.0), colour, rng.randint(1, 4))
    noisy = frame.astype(np.float32) + np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(1, 8), frame.shape)
    frame = np.clip(noisy * rng.uniform(0.6, 1.3), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(40, 90)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def calibration_inputs(frames: int, seed: int) -> list[np.ndarray]:
    """Detector input blobs: per scene one whole frame, one region crop, one refinement window."""
    rng = random.Random(seed)
    blobs = []
    for k in range(frames):
        frame, plate = scene(rng)
        blobs.append(detect.net_input(frame, CALIBRATION_LIMITS[k % len(CALIBRATION_LIMITS)])[0])
        region = detect.grow_region(plate.bbox(), detect.REGION_SIZE, frame.shape)
        blobs.append(detect.net_input(regions.crop(frame, region), max(detect.REGION_SIZE))[0])
        scale = detect.REFINE_PLATE_WIDTH / plate.size[0]
        window = detect.warp_band(frame, plate, detect.REFINE_WINDOW, scale)
        blobs.append(detect.net_input(window, max(window.shape[:2]), sharpen=False)[0])
    return blobs


class Blobs(CalibrationDataReader):
    def __init__(self, name: str, blobs: list[np.ndarray]):
        self.items = iter([{name: b} for b in blobs])

    def get_next(self):
        return next(self.items, None)


def head_nodes(model: onnx.ModelProto) -> list[str]:
    """The nodes after the last Concat: DB's head, which draws the probability map itself."""
    nodes = list(model.graph.node)
    last_concat = max(i for i, n in enumerate(nodes) if n.op_type == "Concat")
    return [n.name for n in nodes[last_concat + 1 :]]


def quantize(source: Path, out: Path, frames: int, seed: int, quant_format: QuantFormat,
             float_head: bool = False, conv_only: bool = False) -> str:
    """Write the quantised detector to `out`; return the source model's SHA-256."""
    source_sha = sha256_of(source)
    with tempfile.TemporaryDirectory() as tmp:
        # Opset 12 has no per-channel DequantizeLinear (its `axis` came in opset 13).
        upgraded, prepared = Path(tmp) / "opset13.onnx", Path(tmp) / "prepared.onnx"
        onnx.save(version_converter.convert_version(onnx.load(str(source)), 13), str(upgraded))
        quant_pre_process(str(upgraded), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(str(prepared))
        name = graph.graph.input[0].name
        quantize_static(
            str(prepared), str(out), Blobs(name, calibration_inputs(frames, seed)),
            quant_format=quant_format, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            nodes_to_exclude=head_nodes(graph) if float_head else [],
            op_types_to_quantize=["Conv", "ConvTranspose"] if conv_only else None,
        )
    model = onnx.load(str(out))
    onnx.helper.set_model_props(model, {"source_file": source.name, "source_sha256": source_sha,
                                        "calibration": f"{frames} rendered scenes, seed {seed}"})
    onnx.save(model, str(out))
    return source_sha


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.quantize_detector", description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=32, help="rendered scenes (3 inputs each)")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--format", choices=("qdq", "qoperator"), default="qoperator")
    parser.add_argument("--out", type=Path, default=QUANTIZED_DETECTOR)
    parser.add_argument("--float-head", action="store_true", help="keep DB's head in float")
    parser.add_argument("--conv-only", action="store_true",
                        help="quantise only the convolutions (the cost), not the adds and multiplies")
    args = parser.parse_args(argv)
    quant_format = QuantFormat.QDQ if args.format == "qdq" else QuantFormat.QOperator
    source = runtime.bundled_model(detect.DETECTOR_FILE)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    source_sha = quantize(source, args.out, args.frames, args.seed, quant_format, args.float_head, args.conv_only)
    out_sha = sha256_of(args.out)
    print(f"{args.out}: SHA-256 {out_sha}\n  from {source} (SHA-256 {source_sha})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
