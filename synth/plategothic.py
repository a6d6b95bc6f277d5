"""A family of license-plate typefaces drawn as pen strokes, for the training plates (issue 5).

Most US states print registrations in a condensed monoline "plate gothic": every character in
the same narrow cell, a 1 that is a bare stem with a small flag (often no foot), an I that is
a bare bar, a W squeezed to the width of an H, stadium-shaped 0s. No Debian or PyPI font is
quite like it, and those shapes are exactly where a recognizer trained on ordinary sans faces
goes wrong (1 read as I, W as H, 4 as L, 8 as B). So the skeletons are drawn here, and a
`Style` varies what differs between states: width, stroke, roundness, the 1's flag and foot,
an open or closed 4, the W's and M's middle vertex, serifs on I.

Skeleton coordinates are in a unit box: x 0..1 across the glyph, y 0..1 from cap top to
baseline. `glyph` returns the same (mask, top, bottom) as `synth.platefonts.glyph`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random

import cv2
import numpy as np

Path = list[tuple[float, float]]
_REF_HEIGHT = 160  # px of cap height at which glyphs are drawn and cached


@dataclasses.dataclass(frozen=True)
class Style:
    width: float = 0.5  # glyph width / cap height
    stroke: float = 0.12  # pen width / cap height
    round: float = 0.3  # vertical radius of round shapes (0, D, U), in cap heights
    one_flag: float = 0.3  # length of the 1's flag, in glyph widths (0: a bare stem)
    one_foot: bool = False
    four_open: bool = False
    w_middle: float = 0.2  # how far down the W's middle vertex stops (0: full height)
    m_middle: float = 0.6  # how far down the M's V reaches
    i_serifs: bool = False
    flat_a: bool = False  # A with a flat top, like some plate faces


def random_style(rng: random.Random) -> Style:
    q = lambda lo, hi: round(rng.uniform(lo, hi), 2)  # noqa: E731 - quantised: glyphs get cached
    return Style(width=q(0.4, 0.62), stroke=q(0.08, 0.17), round=q(0.12, 0.5),
                 one_flag=q(0.15, 0.45) if rng.random() < 0.85 else 0.0, one_foot=rng.random() < 0.25,
                 four_open=rng.random() < 0.3, w_middle=q(0.0, 0.5), m_middle=q(0.35, 0.8),
                 i_serifs=rng.random() < 0.35, flat_a=rng.random() < 0.3)


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float) -> Path:
    """Points along an elliptical arc; angles in degrees, 0 = +x, 90 = down (+y)."""
    n = max(3, round(abs(a1 - a0) / 12))
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(a0, a1, n)]


def _stadium(x0: float, y0: float, x1: float, y1: float, ry: float) -> Path:
    """Closed rounded rectangle whose top and bottom are half-ellipses of height `ry`."""
    cx, rx = (x0 + x1) / 2, (x1 - x0) / 2
    ry = min(ry, (y1 - y0) / 2)
    top = _arc(cx, y0 + ry, rx, ry, 180, 360)
    return top + _arc(cx, y1 - ry, rx, ry, 0, 180) + [top[0]]


def _round_glyphs(r: float, b: float) -> dict[str, list[Path]]:
    """Characters built from curves; `r` full-height radius, `b` half-height bowl radius."""
    return {
        "0": [_stadium(0, 0, 1, 1, r)],
        "8": [_stadium(0.06, 0, 0.94, 0.47, b), _stadium(0, 0.47, 1, 1, b)],
        "D": [[(0, 0)] + _arc(0.5, r, 0.5, r, 270, 360) + _arc(0.5, 1 - r, 0.5, r, 0, 90) + [(0, 1), (0, 0)]],
        "C": [_arc(0.5, r, 0.5, r, 340, 180) + _arc(0.5, 1 - r, 0.5, r, 180, 20)],
        "G": [_arc(0.5, r, 0.5, r, 340, 180) + _arc(0.5, 1 - r, 0.5, r, 180, 0) + [(1, 0.55), (0.55, 0.55)]],
        "Q": [_stadium(0, 0, 1, 1, r), [(0.6, 0.72), (1.0, 1.04)]],
        "U": [[(0, 0)] + _arc(0.5, 1 - r, 0.5, r, 180, 0) + [(1, 0)]],
        "J": [[(1, 0)] + _arc(0.5, 1 - r, 0.5, r, 0, 180) + [(0, 1 - r - 0.08)]],
        "S": [_arc(0.5, b, 0.5, b, 345, 180) + _arc(0.5, 0.5 - b, 0.5, b, 180, 90)
              + _arc(0.5, 0.5 + b, 0.5, b, 270, 360) + _arc(0.5, 1 - b, 0.5, b, 0, 165)],
        "2": [_arc(0.5, b, 0.5, b, 195, 360) + [(1, b + 0.04), (0, 1), (1, 1)]],
        "3": [_arc(0.5, 0.25, 0.5, 0.25, 200, 450) + _arc(0.5, 0.75, 0.5, 0.25, 270, 520)],
        "5": [[(1, 0), (0.08, 0), (0.04, 0.44)] + _arc(0.48, 0.68, 0.52, 0.32, 235, 520)],
        "6": [_stadium(0, 0.42, 1, 1, b), [(0, 0.42 + b), (0, r)] + _arc(0.5, r, 0.5, r, 180, 340)],
        "9": [_stadium(0, 0, 1, 0.58, b), [(1, 0.58 - b), (1, 1 - r)] + _arc(0.5, 1 - r, 0.5, r, 0, 160)],
        "B": [[(0, 0), (0, 1)], [(0, 0)] + _arc(0.55, 0.24, 0.42, 0.24, 270, 450) + [(0, 0.48)],
              [(0, 0.48)] + _arc(0.52, 0.74, 0.48, 0.26, 270, 450) + [(0, 1)]],
        "P": [[(0, 1), (0, 0)] + _arc(0.5, 0.27, 0.5, 0.27, 270, 450) + [(0, 0.54)]],
        "R": [[(0, 1), (0, 0)] + _arc(0.5, 0.27, 0.5, 0.27, 270, 450) + [(0, 0.54)], [(0.45, 0.54), (1, 1)]],
    }


def _straight_glyphs(s: Style) -> dict[str, list[Path]]:
    flag = [(0.6 - s.one_flag, 0.22 * s.one_flag / 0.3), (0.6, 0)] if s.one_flag else [(0.6, 0)]
    four = ([[(0.1, 0), (0, 0.66), (1, 0.66)], [(0.75, 0.3), (0.75, 1)]] if s.four_open
            else [[(0.75, 1), (0.75, 0), (0, 0.66), (1, 0.66)]])
    apex = [(0.35, 0), (0.65, 0)] if s.flat_a else [(0.5, 0)]
    return {
        "1": [flag + [(0.6, 1)]] + ([[(0.15, 1), (1.05, 1)]] if s.one_foot else []),
        "4": four,
        "7": [[(0, 0), (1, 0), (0.35, 1)]],
        "A": [[(0, 1), *apex, (1, 1)], [(0.2, 0.66), (0.8, 0.66)]],
        "E": [[(1, 0), (0, 0), (0, 1), (1, 1)], [(0, 0.5), (0.8, 0.5)]],
        "F": [[(1, 0), (0, 0), (0, 1)], [(0, 0.5), (0.8, 0.5)]],
        "H": [[(0, 0), (0, 1)], [(1, 0), (1, 1)], [(0, 0.5), (1, 0.5)]],
        "I": [[(0.5, 0), (0.5, 1)]] + ([[(0.2, 0), (0.8, 0)], [(0.2, 1), (0.8, 1)]] if s.i_serifs else []),
        "K": [[(0, 0), (0, 1)], [(1, 0), (0, 0.62)], [(0.3, 0.44), (1, 1)]],
        "L": [[(0, 0), (0, 1), (1, 1)]],
        "M": [[(0, 1), (0, 0), (0.5, s.m_middle), (1, 0), (1, 1)]],
        "N": [[(0, 1), (0, 0), (1, 1), (1, 0)]],
        "T": [[(0, 0), (1, 0)], [(0.5, 0), (0.5, 1)]],
        "V": [[(0, 0), (0.5, 1), (1, 0)]],
        "W": [[(0, 0), (0.22, 1), (0.5, s.w_middle), (0.78, 1), (1, 0)]],
        "X": [[(0, 0), (1, 1)], [(1, 0), (0, 1)]],
        "Y": [[(0, 0), (0.5, 0.5), (1, 0)], [(0.5, 0.5), (0.5, 1)]],
        "Z": [[(0, 0), (1, 0), (0, 1), (1, 1)]],
        "-": [[(0.15, 0.5), (0.85, 0.5)]],
        "\u00b7": [[(0.5, 0.5), (0.5, 0.5)]],
        " ": [],
    }


def strokes(char: str, s: Style) -> list[Path]:
    """The pen paths of `char` in style `s` (unit box); KeyError for characters not drawn."""
    r, b = s.round, min(s.round, 0.25)
    return {**_straight_glyphs(s), **_round_glyphs(r, b)}[char]


@functools.lru_cache(maxsize=4096)
def glyph(char: str, style: Style) -> tuple[np.ndarray, float, float]:
    """Coverage mask of one glyph cropped to its ink, with its top and bottom in cap heights
    (0 = top of the ink of 'H', 1 = its bottom), like `synth.platefonts.glyph`."""
    h = _REF_HEIGHT
    w, pen = round(style.width * h), max(2, round(style.stroke * h))
    canvas = np.zeros((h + 2 * pen, w + 2 * pen), np.uint8)
    paths = [np.array([(pen + x * w, pen + y * h) for x, y in p], np.float32) for p in strokes(char, style)]
    if not paths:
        return np.zeros((1, 1), np.uint8), 0.0, 0.0
    shift = 4  # sub-pixel precision for cv2's fixed-point coordinates
    cv2.polylines(canvas, [np.round(p * (1 << shift)).astype(np.int32) for p in paths], False, 255, pen,
                  cv2.LINE_AA, shift)
    ys, xs = np.nonzero(canvas > 20)
    cap_top, cap = pen - pen / 2, h + pen  # where the ink of 'H' starts, and its height
    crop = np.ascontiguousarray(canvas[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
    return crop, (ys.min() - cap_top) / cap, (ys.max() + 1 - cap_top) / cap
