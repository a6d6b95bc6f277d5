"""Which plate recognizer runs: ours (worker.recognize.read) with the configured reader, or
`module:factory` (another model, a test's stand-in). Either way `recognize(frame)` returns the
tracker's `Sighting`s: one read type from detection to posting, no adapter between them."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

import numpy as np

from worker.config import DEFAULT_READER
from worker.track import Sighting

RecognizeFn = Callable[..., Sequence[Sighting]]  # (image[, quick]): see recognize.pool.with_effort


def load_recognizer(spec: str | None = None, reader: str | None = None, second_look: bool = True) -> RecognizeFn:
    """The recognizer's `recognize`. Imported late: building one loads the ONNX models."""
    if spec is None:
        from worker.recognize.read import Recognizer

        extra = {} if second_look else {"retry_side": 0}
        return Recognizer(reader=reader or DEFAULT_READER, **extra).recognize
    module_name, _, attr = spec.partition(":")
    factory = getattr(importlib.import_module(module_name), attr or "Recognizer")
    return factory().recognize
