"""The text detector on a part of the frame (worker.recognize.detect.detect_region and its helpers).

Frames are rendered street scenes (synth): no labelled data, no network.
"""

from __future__ import annotations

import random

import numpy as np
import onnx
import pytest

import synth
from worker.recognize import detect, regions
from worker.recognize.eval import iou

PLATE_AT = (900, 520)  # plate centre in a 1280x720 frame: off-centre, so offsets matter


@pytest.fixture(scope="module")
def detector() -> detect.TextDetector:
    return detect.TextDetector(threads=1)


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    plate = synth.render_plate("7ABC123", state="CALIFORNIA", height=50)
    frame = synth.make_scene(plate, plate_center=PLATE_AT, rng=random.Random(3))
    h, w = plate.shape[:2]
    return frame, (PLATE_AT[0] - w // 2, PLATE_AT[1] - h // 2, w, h)


def best_overlap(lines, frame, box) -> float:
    return max((iou(p.bbox(), box) for p in detect.propose_plates(lines, frame.shape)), default=0.0)


def test_a_region_returns_its_lines_in_frame_pixels(detector, scene):
    frame, plate_box = scene
    region = regions.grow_region(plate_box, detect.REGION_SIZE, frame.shape)
    assert region[0] > 0 and region[1] > 0  # a real offset, not the frame's corner
    assert best_overlap(detector.detect_region(frame, region), frame, plate_box) > 0.5
    assert best_overlap(detector.detect(frame), frame, plate_box) > 0.5


def test_a_region_past_the_frame_edge_is_cut_to_the_frame(detector, scene):
    frame, plate_box = scene
    region = (plate_box[0] - 100, plate_box[1] - 100, 2000, 2000)
    assert regions.clamp_region(region, frame.shape) == (plate_box[0] - 100, plate_box[1] - 100,
                                                        1280 - plate_box[0] + 100, 720 - plate_box[1] + 100)
    assert best_overlap(detector.detect_region(frame, region), frame, plate_box) > 0.5


def test_a_region_without_the_plate_finds_no_plate(detector, scene):
    frame, plate_box = scene
    lines = detector.detect_region(frame, (0, 0, 400, 300))
    assert best_overlap(lines, frame, plate_box) == 0.0


def test_grow_region_keeps_the_size_inside_the_frame_and_holds_the_box():
    shape = (720, 1280, 3)
    for box in [(0, 0, 50, 25), (1250, 700, 30, 20), (600, 300, 100, 50), (10, 10, 900, 500)]:
        x, y, w, h = regions.grow_region(box, (640, 360), shape)
        assert (w, h) == (max(640, box[2]), max(360, box[3]))
        assert 0 <= x and x + w <= 1280 and 0 <= y and y + h <= 720
        assert x <= box[0] and box[0] + box[2] <= x + w and y <= box[1] and box[1] + box[3] <= y + h
    assert regions.grow_region((10, 10, 50, 25), (640, 360), (300, 400, 3)) == (0, 0, 400, 300)


def test_a_degenerate_region_still_yields_a_pixel():
    assert regions.clamp_region((5000, -20, 0, 0), (720, 1280, 3)) == (1279, 0, 1, 1)


def test_a_quantised_detector_from_another_wheel_model_is_refused(tmp_path):
    from training.quantize_detector import quantized_detector, sha256_of

    wheel, other = tmp_path / "det.onnx", tmp_path / "other_det.onnx"
    wheel.write_bytes(b"the wheel's detector")
    other.write_bytes(b"another detector")
    quantised = tmp_path / "text_det_int8.onnx"
    model = onnx.helper.make_model(onnx.helper.make_graph([], "empty", [], []))
    onnx.helper.set_model_props(model, {"source_sha256": sha256_of(wheel)})
    onnx.save(model, str(quantised))
    assert quantized_detector(quantised, source=wheel) == quantised
    with pytest.raises(ValueError, match=r"text_det_int8\.onnx was quantised from a detector with SHA-256 "):
        quantized_detector(quantised, source=other)


def test_the_detector_runs_on_openvino_where_it_is_installed_else_on_the_cpu_kernels():
    assert detect.detector_providers(["CPUExecutionProvider"], 1) == ["CPUExecutionProvider"]
    with_openvino = detect.detector_providers(["OpenVINOExecutionProvider", "CPUExecutionProvider"], 2)
    assert with_openvino == [("OpenVINOExecutionProvider", {"device_type": "CPU", "num_of_threads": "2",
                                                            "load_config": detect.OPENVINO_CONFIG}),
                             "CPUExecutionProvider"]
    import onnxruntime as ort

    expected = "OpenVINOExecutionProvider" if "OpenVINOExecutionProvider" in ort.get_available_providers() \
        else "CPUExecutionProvider"
    assert detect.TextDetector(threads=1).session.get_providers()[0] == expected


def test_a_region_grows_to_few_sizes_so_the_detector_sees_few_input_shapes():
    shape = (720, 1280, 3)
    sizes = set()
    for box in [(100, 100, 333, 201), (700, 400, 129, 65), (0, 0, 640, 360), (1200, 650, 80, 70)]:
        x, y, w, h = regions.region_for_net(box, shape)
        sizes.add((w, h))
        assert w % regions.REGION_STEP == 0 and h % regions.REGION_STEP == 0
        assert x <= box[0] and box[0] + box[2] <= x + w and y <= box[1] and box[1] + box[3] <= y + h
        assert x >= 0 and y >= 0 and x + w <= 1280 and y + h <= 720
    assert sizes == {(384, 256), (256, 128), (640, 384), (128, 128)}
    assert regions.region_for_net((0, 600, 1280, 120), shape) == (0, 592, 1280, 128)
    assert regions.region_for_net((0, 0, 1000, 700), shape)[3] == 720  # no room: the frame's own height


def test_a_region_grows_only_inside_the_bounds_it_is_given():
    roi = (100, 200, 700, 300)  # a camera's lane
    x, y, w, h = regions.region_for_net((150, 250, 200, 100), (720, 1280, 3), within=roi)
    assert (w, h) == (256, 128) and x >= 100 and y >= 200 and x + w <= 800 and y + h <= 500
    assert regions.region_for_net((0, 0, 1280, 720), (720, 1280, 3), within=roi) == roi  # no room to grow


def test_the_detector_leaves_its_thread_free_to_run_on_any_core(detector, scene):
    """OpenVINO would pin the thread that runs the model to core 0, in every recognition process
    alike: they then took turns on one core while the others idled. The thread's allowed cores,
    sampled while it detects, stay those of the process."""
    import os
    import threading

    allowed = os.sched_getaffinity(0)
    thread_id = threading.get_native_id()
    seen: set[frozenset[int]] = set()
    detecting = threading.Event()

    def watch() -> None:
        detecting.wait()
        while detecting.is_set():
            seen.add(frozenset(os.sched_getaffinity(thread_id)))

    watcher = threading.Thread(target=watch)
    watcher.start()
    detecting.set()
    try:
        for _ in range(5):
            detector.detect(scene[0], 768)
    finally:
        detecting.clear()
        watcher.join()
    assert seen == {frozenset(allowed)}
