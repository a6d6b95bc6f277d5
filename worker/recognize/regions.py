"""Rectangles in frame pixels (x, y, w, h): where the worker searches a frame, and the sizes it
feeds the text detector. Plain geometry, so the worker's supervisor uses it without loading
onnxruntime."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Box = tuple[int, int, int, int]  # x, y, w, h in pixels


# Regions grow to multiples of this (inside the frame): the detector then sees few input shapes.
# OpenVINO keeps compiled kernels for every input shape it has seen (~2.7 MB each, measured):
# motion regions of any size would make a long-running worker grow by hundreds of MB.
REGION_STEP = 128


def region_for_net(region: Box, frame_shape: tuple[int, ...], within: Box | None = None) -> Box:
    """`region` cut to the frame (and to `within`, e.g. a camera's roi), then grown about its
    centre, inside those bounds, to a multiple of REGION_STEP on each side where there is room."""
    bx, by, bw, bh = clamp_region(within or (0, 0, frame_shape[1], frame_shape[0]), frame_shape)
    x, y, w, h = clamp_region((region[0] - bx, region[1] - by, region[2], region[3]), (bh, bw))
    size = (-(-w // REGION_STEP) * REGION_STEP, -(-h // REGION_STEP) * REGION_STEP)
    x, y, w, h = grow_region((x, y, w, h), size, (bh, bw))
    return x + bx, y + by, w, h


def clamp_region(region: Box, frame_shape: tuple[int, ...]) -> Box:
    """`region` cut to the frame; at least one pixel."""
    fh, fw = frame_shape[:2]
    x0 = min(max(0, int(region[0])), fw - 1)
    y0 = min(max(0, int(region[1])), fh - 1)
    x1 = max(x0 + 1, min(fw, int(region[0] + region[2])))
    y1 = max(y0 + 1, min(fh, int(region[1] + region[3])))
    return x0, y0, x1 - x0, y1 - y0


def grow_region(box: Box, size: tuple[int, int], frame_shape: tuple[int, ...]) -> Box:
    """A `size` (w, h) region centred on `box`, at least as big as it, shifted (not cut) to lie
    inside the frame where the frame is big enough."""
    fh, fw = frame_shape[:2]
    w, h = min(fw, max(size[0], box[2])), min(fh, max(size[1], box[3]))
    x = min(max(0, box[0] + box[2] // 2 - w // 2), fw - w)
    y = min(max(0, box[1] + box[3] // 2 - h // 2), fh - h)
    return x, y, w, h


def crop(frame: np.ndarray, region: Box) -> np.ndarray:
    x, y, w, h = clamp_region(region, frame.shape)
    return frame[y : y + h, x : x + w]


def intersect(a: Sequence[int], b: Sequence[int]) -> tuple[int, int, int, int] | None:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    return (x0, y0, x1 - x0, y1 - y0) if x1 > x0 and y1 > y0 else None
