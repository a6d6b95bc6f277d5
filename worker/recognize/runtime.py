"""onnxruntime helpers every model of ours shares: where rapidocr's wheel keeps the PP-OCRv4
models, and a session tuned for one core per recognition process."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import onnxruntime as ort


def bundled_model(name: str) -> Path:
    """Path of a model file shipped inside the rapidocr-onnxruntime wheel."""
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("rapidocr-onnxruntime is not installed; it ships the OCR models")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise FileNotFoundError(f"model file missing: {path}")
    return path


def make_session(
    model: Path | bytes,
    threads: int,
    optimization: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    providers: list | None = None,
) -> ort.InferenceSession:
    """One-core-friendly onnxruntime session for a model file (or a model's serialized bytes).

    ENABLE_ALL (onnxruntime's default) measured faster than EXTENDED (docs/benchmarks.md)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = optimization
    opts.log_severity_level = 3
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), opts,
                                providers=providers or ["CPUExecutionProvider"])
