"""Registration characters drawn with real outline fonts, for the training plates (issue 5).

Hershey stroke fonts alone teach a recognizer one family of letter shapes; real plates use
tall, condensed sans faces, thin or heavy (and a few monospace ones). These Debian font
packages come close and are installed by `make test` and `make train-recognizer`:

    fonts-dejavu-core fonts-liberation2 fonts-urw-base35 fonts-freefont-ttf
    fonts-roboto-unhinted fonts-open-sans fonts-b612

The generator uses whichever of FONT_FILES exist, so it also works (with fewer faces) where
they do not; training insists on all of them, so the same seed gives the same data.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from synth import plategothic

_SHARE = Path("/usr/share/fonts")
FONT_FILES = tuple(str(_SHARE / p) for p in (
    "truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
    "truetype/dejavu/DejaVuSansCondensed.ttf",
    "truetype/liberation/LiberationSansNarrow-Regular.ttf",
    "opentype/urw-base35/NimbusSansNarrow-Regular.otf",
    "truetype/roboto/unhinted/RobotoCondensed-Regular.ttf",
    "truetype/roboto/unhinted/RobotoCondensed-Light.ttf",
    "truetype/open-sans/OpenSans-CondLight.ttf",
    "truetype/dejavu/DejaVuSans-Bold.ttf",
    "truetype/dejavu/DejaVuSansMono-Bold.ttf",
    "truetype/liberation/LiberationSansNarrow-Bold.ttf",
    "truetype/liberation/LiberationSans-Bold.ttf",
    "truetype/liberation/LiberationMono-Bold.ttf",
    "opentype/urw-base35/NimbusSansNarrow-Bold.otf",
    "opentype/urw-base35/NimbusSans-Bold.otf",
    "truetype/freefont/FreeSansBold.ttf",
    "truetype/roboto/unhinted/RobotoCondensed-Bold.ttf",
    "truetype/roboto/unhinted/RobotoCondensed-Medium.ttf",
    "truetype/roboto/unhinted/RobotoTTF/Roboto-Black.ttf",
    "truetype/open-sans/OpenSans-CondBold.ttf",
    "truetype/open-sans/OpenSans-Bold.ttf",
    "opentype/b612/B612Mono-Bold.otf",
    "opentype/b612/B612-Bold.otf",
))
_REF_SIZE = 160  # font size (px) at which glyphs are cached


def available_fonts() -> tuple[str, ...]:
    return tuple(p for p in FONT_FILES if Path(p).is_file())


def missing_fonts() -> list[str]:
    return [p for p in FONT_FILES if not Path(p).is_file()]


@functools.lru_cache(maxsize=2048)
def glyph(char: str, path: str) -> tuple[np.ndarray, float, float]:
    """Coverage mask of one glyph cropped to its ink, with its top and bottom in cap heights
    (0 = top of 'H', 1 = baseline), like `synth.platedraw._glyph`."""
    font = ImageFont.truetype(path, _REF_SIZE)
    canvas = Image.new("L", (_REF_SIZE * 2, _REF_SIZE * 2), 0)
    draw = ImageDraw.Draw(canvas)
    origin = (_REF_SIZE // 2, _REF_SIZE // 2)
    cap_top, cap_bottom = draw.textbbox(origin, "H", font=font)[1::2]
    draw.text(origin, char, fill=255, font=font)
    ink = np.asarray(canvas)
    ys, xs = np.nonzero(ink > 20)
    if len(xs) == 0:  # space
        return np.zeros((1, 1), np.uint8), 0.0, 0.0
    cap = cap_bottom - cap_top
    crop = np.ascontiguousarray(ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
    return crop, (ys.min() - cap_top) / cap, (ys.max() + 1 - cap_top) / cap


def registration(text: str, font: str | plategothic.Style, size: tuple[int, int], *, char_height: float,
                 char_center: float, pitch: float, squeeze: float, bolder: float) -> np.ndarray:
    """Coverage mask (h, w) of the registration in `font` (an outline font file or a stroked
    plate-gothic style), centred in equal-width cells.

    Lengths are fractions of the height `h`; `pitch` is the cell width in character heights,
    `squeeze` scales glyph widths, `bolder` thickens strokes by that fraction of a character."""
    w, h = size
    char_h = char_height * h
    cell = min(pitch * char_h, 0.88 * w / max(1, len(text)))
    top = char_center * h - char_h / 2
    mask = np.zeros((h, w), np.uint8)
    x0 = (w - cell * len(text)) / 2
    for i, char in enumerate(text):
        ink, g_top, g_bottom = plategothic.glyph(char, font) if isinstance(font, plategothic.Style) \
            else glyph(char, font)
        if ink.size <= 1:
            continue
        gh = max(1, round((g_bottom - g_top) * char_h))
        gw = round(ink.shape[1] * gh / ink.shape[0] * squeeze)
        gw = max(1, min(gw, round(cell * 0.94)))
        scaled = cv2.resize(ink, (gw, gh), interpolation=cv2.INTER_AREA)
        x, y = round(x0 + i * cell + (cell - gw) / 2), round(top + g_top * char_h)
        region = mask[max(0, y):y + gh, x:x + gw]
        np.maximum(region, scaled[max(0, -y):max(0, -y) + region.shape[0], :region.shape[1]], out=region)
    pen = round(bolder * char_h)
    if pen >= 2:
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (pen, pen)))
    return mask
