"""Vehicle colour from the body around the plate, named from a small palette.

Each pixel of two body regions (the boot lid above the plate, the panels beside it) is named
on its own from HSV rules, and the colour is the majority; its share of the pixels is the
confidence. Voting pixels rather than averaging them keeps a chrome strip, a reflection or a
tail light from turning a red car brown.
"""

from __future__ import annotations

import cv2
import numpy as np

from contract.plates import PALETTE

# Regions in plate widths from the plate's centre: (x0, y0, x1, y1), y downwards.
REGIONS = ((-1.4, -1.0, 1.4, -0.45),  # above the plate: boot lid or tailgate
           (-1.4, -0.25, -0.65, 0.2), (0.65, -0.25, 1.4, 0.2))  # beside the plate recess


def body_pixels(image: np.ndarray, plate: tuple[int, int, int, int]) -> np.ndarray:
    """The BGR pixels (N x 3) of the body regions that fall inside `image`."""
    x, y, w, _ = plate
    cx, cy = x + w / 2, y + plate[3] / 2
    h_img, w_img = image.shape[:2]
    parts = []
    for x0, y0, x1, y1 in REGIONS:
        left, right = max(0, round(cx + x0 * w)), min(w_img, round(cx + x1 * w))
        top, bottom = max(0, round(cy + y0 * w)), min(h_img, round(cy + y1 * w))
        if right > left and bottom > top:
            parts.append(image[top:bottom, left:right].reshape(-1, 3))
    return np.concatenate(parts) if parts else np.empty((0, 3), np.uint8)


def name_pixels(bgr: np.ndarray) -> np.ndarray:
    """Palette index for each BGR pixel (N x 3 uint8)."""
    hsv = cv2.cvtColor(bgr.reshape(-1, 1, 3).astype(np.uint8), cv2.COLOR_BGR2HSV).reshape(-1, 3)
    hue, sat, val = (hsv[:, i].astype(np.int32) for i in range(3))
    names = np.full(len(hsv), PALETTE.index("grey"))
    grey_level = np.select([val >= 200, val >= 140], [PALETTE.index("white"), PALETTE.index("silver")],
                           PALETTE.index("grey"))
    by_hue = np.select(
        [(hue < 9) | (hue >= 170), hue < 22, hue < 34, hue < 85, hue < 130],
        [PALETTE.index(n) for n in ("red", "orange", "yellow", "green", "blue")], PALETTE.index("purple"))
    warm = (hue >= 5) & (hue < 30)  # orange-ish hues: dull or dark ones are beige or brown
    by_hue = np.where(warm & (sat < 110) & (val >= 150), PALETTE.index("beige"), by_hue)
    by_hue = np.where(warm & (val < 150) & (hue < 22), PALETTE.index("brown"), by_hue)
    chromatic = sat >= 45 + np.maximum(0, 90 - val)  # dark pixels need more saturation to count
    names = np.where(chromatic, by_hue, grey_level)
    return np.where(val < 55, PALETTE.index("black"), names)


def vehicle_colour(image: np.ndarray, plate: tuple[int, int, int, int],
                   min_pixels: int = 50) -> tuple[str, float] | None:
    """(colour name, share of body pixels that have it), or None when too little body shows."""
    pixels = body_pixels(image, plate)
    if len(pixels) < min_pixels:
        return None
    if len(pixels) > 20000:  # a big close-up: a regular sample names the colour just as well
        pixels = pixels[:: len(pixels) // 20000 + 1]
    counts = np.bincount(name_pixels(pixels), minlength=len(PALETTE))
    best = int(counts.argmax())
    return PALETTE[best], round(float(counts[best] / counts.sum()), 3)
