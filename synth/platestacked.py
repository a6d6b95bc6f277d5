"""Stacked characters drawn as real plates draw them (run 8's renderer; `plategen`'s
`stacked_pairs` option): a specialty series like RT, DV or TRK in the registration's own face,
one above the other, together as tall as a big character and close beside the big ones.

On real plates readers most often fail by taking such a pair for one more big character
(docs/benchmarks.md). `plategen` keeps its older small, distant pairs as the default so the
CRNNs' training batches, and so their committed weights, stay as they are.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

import numpy as np


def stacked_text(rng: random.Random, length: int, letters: str) -> str:
    """2-3 stacked characters (mostly from `letters`) for a registration of `length`, or none:
    most often on short plates, whose empty side real designs fill."""
    if rng.random() >= (0.25 if length <= 5 else 0.12 if length <= 7 else 0.0):
        return ""
    return "".join(rng.choice(letters) if rng.random() < 0.8 else rng.choice("0123456789")
                   for _ in range(rng.choice([2, 2, 3])))


def registration_and_stacked(spec, size: tuple[int, int], rng: random.Random,
                             mask: Callable[..., np.ndarray]) -> np.ndarray:
    """Coverage mask of the registration with spec.stacked beside it (on its left unless
    spec.stacked_right), the group centred on the plate. `mask(spec, size)` draws a registration."""
    w, h = size
    st, n = spec.style, len(spec.stacked)
    big = st.char_height * h
    gap = rng.uniform(0.1, 0.3)  # between stacked rows, in small-character heights
    small = big * rng.uniform(0.85, 1.05) / (n + (n - 1) * gap)
    column, space = round(small * rng.uniform(0.8, 1.0)) + 2, round(big * rng.uniform(0.06, 0.3))
    main = mask(spec, (w - column - space, h))
    ink = np.flatnonzero(main.max(axis=0))
    if ink.size == 0:
        return mask(spec, size)
    stack = np.zeros((h, column), np.uint8)
    rows = st.char_center + (np.arange(n) - (n - 1) / 2) * small * (1 + gap) / h
    for ch, cy in zip(spec.stacked, rows):
        one = dataclasses.replace(spec, text=ch, dots=False, style=dataclasses.replace(
            st, char_height=small / h, char_center=float(cy), char_pitch=column / small))
        np.maximum(stack, mask(one, (column, h)), out=stack)
    parts = [main[:, ink[0]:ink[-1] + 1], np.zeros((h, space), np.uint8), stack]
    group = np.hstack(parts[::-1] if not spec.stacked_right else parts)[:, :w]
    out = np.zeros((h, w), np.uint8)
    x = (w - group.shape[1]) // 2
    out[:, x:x + group.shape[1]] = group
    return out
