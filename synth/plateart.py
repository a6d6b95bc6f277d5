"""Pictorial plate designs for the training plates (issue 5): what real US plates put around
and behind the registration, which a recognizer must learn is not text.

Scenic backgrounds (sky gradients, mountains, cacti, lighthouses), a fruit in the gap between
character groups (Florida's orange) or a small emblem there (a star, heart or state shape), a
flag or county panel at one side (Alaska, Iowa), and a faint state outline. All drawn on the float BGR plate before the registration goes on top.
"""

from __future__ import annotations

import math
import random

import cv2
import numpy as np

BGR = tuple[int, int, int]


def _colour(rng: random.Random, light: bool) -> BGR:
    lo, hi = (150, 255) if light else (20, 200)
    return rng.randint(lo, hi), rng.randint(lo, hi), rng.randint(lo, hi)


def scenic_background(plate: np.ndarray, rng: random.Random) -> None:
    """Sky gradient top to bottom with a silhouette (hills, cacti, a tower) low on the plate."""
    h, w = plate.shape[:2]
    top, bottom = np.array(_colour(rng, True), np.float32), np.array(_colour(rng, True), np.float32)
    ramp = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    plate[:] = top * (1 - ramp) + bottom * ramp
    shade = _colour(rng, light=rng.random() < 0.6)
    if rng.random() < 0.6:  # hills
        xs = np.linspace(0, w, rng.randint(4, 9))
        ridge = [(int(x), int(h * rng.uniform(0.55, 0.85))) for x in xs]
        cv2.fillPoly(plate, [np.array([(0, h), *ridge, (w, h)], np.int32)], shade, cv2.LINE_AA)
    for _ in range(rng.randint(0, 3)):  # cacti, towers, trees: thin upright shapes
        x, top_y = rng.randrange(w), int(h * rng.uniform(0.25, 0.6))
        stem = max(2, int(w * rng.uniform(0.01, 0.03)))
        cv2.rectangle(plate, (x, top_y), (x + stem, h), shade, -1, cv2.LINE_AA)
        if rng.random() < 0.5:
            arm_y = int(top_y + (h - top_y) * 0.3)
            cv2.rectangle(plate, (x - 2 * stem, arm_y), (x, arm_y + stem), shade, -1)


def fruit(plate: np.ndarray, rng: random.Random, centre_x: float) -> None:
    """One to three round fruit with a leaf, about as tall as the characters."""
    h, w = plate.shape[:2]
    r = int(h * rng.uniform(0.12, 0.22))
    colour = rng.choice([(30, 140, 240), (40, 60, 200), (60, 170, 250), (50, 50, 160)])
    cx, cy = int(centre_x * w), int(h * rng.uniform(0.45, 0.6))
    for dx, dy in [(0, 0), (r, r // 2), (-r, r // 3)][: rng.randint(1, 3)]:
        cv2.circle(plate, (cx + dx, cy + dy), r, colour, -1, cv2.LINE_AA)
    cv2.ellipse(plate, (cx - r // 2, cy - r), (r, r // 2), rng.uniform(-40, 40), 0, 360, (40, 120, 40), -1, cv2.LINE_AA)


def side_panel(plate: np.ndarray, rng: random.Random, left: bool) -> int:
    """A flag or county panel at one side; returns its width in pixels (the registration moves over)."""
    h, w = plate.shape[:2]
    pw = int(w * rng.uniform(0.1, 0.18))
    x0 = int(w * 0.04) if left else w - int(w * 0.04) - pw
    y0, y1 = int(h * rng.uniform(0.18, 0.3)), int(h * rng.uniform(0.75, 0.9))
    colour = _colour(rng, light=False)
    cv2.rectangle(plate, (x0, y0), (x0 + pw, y1), colour, -1)
    ink = (240, 240, 240) if sum(colour) < 380 else (30, 30, 30)
    for _ in range(rng.randint(0, 6)):  # stars, or the small text of a county name and year
        c = (rng.randint(x0, x0 + pw), rng.randint(y0, y1))
        cv2.circle(plate, c, max(1, h // 40), ink, -1, cv2.LINE_AA)
    if rng.random() < 0.5:
        cv2.putText(plate, str(rng.randint(10, 99)), (x0 + 2, y1 - 3), cv2.FONT_HERSHEY_SIMPLEX,
                    pw / 60, ink, max(1, pw // 25), cv2.LINE_AA)
    return pw + int(w * 0.05)


def state_outline(plate: np.ndarray, rng: random.Random) -> None:
    """A faint irregular polygon (a state's shape, a seal) behind the registration."""
    h, w = plate.shape[:2]
    cx, cy = w * rng.uniform(0.25, 0.75), h * rng.uniform(0.4, 0.6)
    n = rng.randint(5, 10)
    pts = [(cx + math.cos(a) * w * rng.uniform(0.1, 0.25), cy + math.sin(a) * h * rng.uniform(0.2, 0.4))
           for a in sorted(rng.uniform(0, 2 * math.pi) for _ in range(n))]
    tint = np.array(plate[int(cy), int(cx)], np.float32) + rng.uniform(-45, -15)
    cv2.fillPoly(plate, [np.array(pts, np.int32)], tuple(float(v) for v in np.clip(tint, 0, 255)), cv2.LINE_AA)



def emblem(plate: np.ndarray, rng: random.Random, centre_x: float, centre_y: float, colour: BGR | None) -> None:
    """A small filled symbol in the gap between character groups, often in the characters'
    own colour: a star, heart, ring, diamond, keystone or state-like shape (Texas, Indiana)."""
    h, w = plate.shape[:2]
    r = h * rng.uniform(0.08, 0.16)
    cx, cy = centre_x * w, centre_y * h + rng.uniform(-0.05, 0.05) * h
    colour = colour or _colour(rng, light=False)
    kind = rng.choice(["star", "heart", "ring", "diamond", "keystone", "shape"])
    if kind == "ring":
        cv2.circle(plate, (round(cx), round(cy)), round(r), colour, max(1, round(r / 3)), cv2.LINE_AA)
        return
    if kind == "heart":
        for dx in (-0.5, 0.5):
            cv2.circle(plate, (round(cx + dx * r), round(cy - 0.3 * r)), round(0.55 * r), colour, -1, cv2.LINE_AA)
        unit = [(-1.05, -0.2), (1.05, -0.2), (0, 1.1)]
    elif kind == "star":
        unit = [((1.0 if i % 2 == 0 else 0.42) * math.sin(i * math.pi / 5),
                 -(1.0 if i % 2 == 0 else 0.42) * math.cos(i * math.pi / 5)) for i in range(10)]
    elif kind == "diamond":
        unit = [(0, -1), (0.7, 0), (0, 1), (-0.7, 0)]
    elif kind == "keystone":
        unit = [(-0.8, -1), (0.8, -1), (0.55, 1), (-0.55, 1)]
    else:
        unit = [(math.cos(a) * rng.uniform(0.6, 1), math.sin(a) * rng.uniform(0.6, 1))
                for a in sorted(rng.uniform(0, 2 * math.pi) for _ in range(rng.randint(5, 9)))]
    pts = np.array([(cx + x * r, cy + y * r) for x, y in unit], np.int32)
    cv2.fillPoly(plate, [pts], colour, cv2.LINE_AA)
