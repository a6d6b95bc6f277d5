"""Plate drawing primitives: `PlateStyle`, `render_plate` and the masks it is built from.

Shared by the synthetic camera (`synth`, clean canonical plates for tests and demos) and the
training-plate generator (`synth.plategen`, varied plates for the recognizer), so both draw
characters, text lines, borders and colour the same way; kept apart from synth's scenes and video.
Outputs must stay byte-identical: recognizer training data is drawn with these.

Characters are OpenCV Hershey stroke fonts (built into OpenCV, so identical on every install;
TrueType fonts need a Debian fonts package that slim images lack). Each glyph is drawn as a thin
skeleton, squeezed into a narrow cell and then stroked with a round pen, which gives the thick,
condensed, evenly spaced characters of real plates. Everything is drawn at `SUPERSAMPLE`x and
area-downsampled for clean anti-aliased edges.
"""
from __future__ import annotations

import dataclasses
import functools
import random
import re

import cv2
import numpy as np

BGR = tuple[int, int, int]

SUPERSAMPLE = 4  # supersampling factor for all plate drawing
_ALLOWED = re.compile(r"[A-Z0-9 \-]+")
_FONT_REF_SCALE = 6.0  # Hershey scale at which glyph skeletons are cached (cap height ~130 px)


@dataclasses.dataclass(frozen=True)
class PlateStyle:
    """How one kind of plate looks. Lengths are fractions of the plate height."""

    background: BGR = (240, 240, 236)
    text_color: BGR = (95, 35, 25)  # registration: dark navy, like most US plates
    font: int = cv2.FONT_HERSHEY_SIMPLEX
    char_height: float = 0.46  # 2.75" characters on a 6" plate
    char_pitch: float = 0.56  # cell width per character, in character heights
    glyph_width: float = 0.78  # horizontal squeeze of the Hershey glyphs (condensed look)
    stroke: float = 0.15  # pen width, in character heights
    char_center: float = 0.55  # vertical centre of the registration
    top_text: str | None = None  # None: the state name
    top_color: BGR = (35, 35, 180)
    top_font: int = cv2.FONT_HERSHEY_DUPLEX
    top_height: float = 0.13
    top_center: float = 0.12
    bottom_text: str = ""
    bottom_color: BGR = (95, 35, 25)
    bottom_height: float = 0.075
    bottom_center: float = 0.9
    border_color: BGR = (60, 60, 60)


STYLES: dict[str, PlateStyle] = {
    "CALIFORNIA": PlateStyle(top_text="California", top_font=cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
                             top_height=0.17, bottom_text="DMV.CA.GOV"),
    "TEXAS": PlateStyle(text_color=(25, 25, 25), top_color=(30, 30, 30),
                        bottom_text="THE LONE STAR STATE", bottom_color=(30, 30, 30)),
    "NEW YORK": PlateStyle(background=(235, 240, 243), text_color=(110, 45, 20),
                           top_color=(110, 45, 20), bottom_text="EXCELSIOR",
                           bottom_color=(30, 120, 220), border_color=(30, 120, 220)),
    "FLORIDA": PlateStyle(text_color=(40, 90, 20), top_color=(40, 90, 20),
                          bottom_text="SUNSHINE STATE", bottom_color=(20, 110, 230)),
    "ARIZONA": PlateStyle(background=(215, 235, 245), text_color=(30, 30, 30),
                          top_color=(90, 45, 140), bottom_text="GRAND CANYON STATE"),
}


def render_plate(text: str, *, state: str = "CALIFORNIA", style: PlateStyle | None = None,
                 height: int = 120, rng: random.Random | None = None) -> np.ndarray:
    """A 12x6 inch US plate as BGR uint8, `height` x 2*`height` pixels.

    Without `rng` the plate is clean and canonical; with one, colours and positions vary slightly.
    """
    text = normalise_text(text)
    style = style or STYLES.get(state.upper(), PlateStyle())
    if rng is not None:
        style = _jitter_style(style, rng)
    h, w = height * SUPERSAMPLE, 2 * height * SUPERSAMPLE
    plate = np.empty((height, 2 * height, 3), np.float32)
    plate[:] = style.background
    border = np.zeros((h, w), np.uint8)
    rounded_rect(border, 0.035 * h, 0.045 * h, 0.08 * h)
    blend(plate, border, style.border_color)
    top = style.top_text if style.top_text is not None else state.upper()
    top_line = text_line(top, style.top_font, (w, h), style.top_center, style.top_height, 0.05)
    blend(plate, top_line, style.top_color)
    if style.bottom_text:
        blend(plate, text_line(style.bottom_text, cv2.FONT_HERSHEY_SIMPLEX, (w, h),
                               style.bottom_center, style.bottom_height, 0.12), style.bottom_color)
    blend(plate, registration(text, style, (w, h)), style.text_color)
    return np.clip(plate, 0, 255).astype(np.uint8)


def normalise_text(text: str) -> str:
    """`text` stripped and upper-cased; ValueError unless it is A-Z, 0-9, space or '-'.
    Separators are kept (unlike `worker.recognize.plates.normalise`, which makes the read label)."""
    text = text.strip().upper()
    if not _ALLOWED.fullmatch(text):
        raise ValueError(f"plate text must be A-Z, 0-9, space or '-': {text!r}")
    return text


def _jitter_style(style: PlateStyle, rng: random.Random) -> PlateStyle:
    """Small, plausible variation: faded or dirty paint, characters a little off centre."""
    def shade(c: BGR, spread: int) -> BGR:  # mostly brightness, a little hue
        d = rng.randint(-spread, spread)
        out = (min(255, max(0, v + d + rng.randint(-3, 3))) for v in c)
        return tuple(out)  # type: ignore[return-value]

    return dataclasses.replace(
        style, background=shade(style.background, 18), text_color=shade(style.text_color, 20),
        char_center=style.char_center + rng.uniform(-0.02, 0.02),
        stroke=style.stroke * rng.uniform(0.9, 1.1))


@functools.lru_cache(maxsize=256)
def _glyph(char: str, font: int) -> tuple[np.ndarray, float, float]:
    """Thin skeleton of one glyph cropped to its ink, with its top and bottom in cap heights
    (0 = top of 'H', 1 = baseline), so '-' stays at mid-height and 'Q' may dip below."""
    cap = cv2.getTextSize("H", font, _FONT_REF_SCALE, 1)[0][1]
    canvas = np.zeros((cap * 3, cap * 3), np.uint8)
    cv2.putText(canvas, char, (cap // 2, cap * 2), font, _FONT_REF_SCALE, 255, 2, cv2.LINE_AA)
    ys, xs = np.nonzero(canvas)
    if len(xs) == 0:  # space
        return np.zeros((1, 1), np.uint8), 0.0, 0.0
    crop = canvas[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    return crop, (ys.min() - cap) / cap, (ys.max() + 1 - cap) / cap


def registration(text: str, style: PlateStyle, size: tuple[int, int]) -> np.ndarray:
    """Coverage mask of the big characters, centred on the plate in equal-width cells."""
    w, h = size
    char_h = style.char_height * h
    stroke = max(3, round(style.stroke * char_h))
    pitch = min(style.char_pitch * char_h, 0.86 * w / len(text))  # long plates get squeezed
    skeleton_h = char_h - stroke  # the pen adds half a stroke above and below
    top = style.char_center * h - char_h / 2 + stroke / 2
    mask = np.zeros((h, w), np.uint8)
    x0 = (w - pitch * len(text)) / 2
    for i, char in enumerate(text):
        glyph, g_top, g_bottom = _glyph(char, style.font)
        if glyph.size <= 1:
            continue
        gh = max(1, round((g_bottom - g_top) * skeleton_h))
        gw = round(glyph.shape[1] * gh / glyph.shape[0] * style.glyph_width)
        gw = max(1, min(gw, round(pitch - 1.4 * stroke)))  # keep a clear gap between neighbours
        scaled = cv2.resize(glyph, (gw, gh), interpolation=cv2.INTER_AREA)
        x = round(x0 + i * pitch + (pitch - gw) / 2)
        y = round(top + g_top * skeleton_h)
        region = mask[y:y + gh, x:x + gw]
        np.maximum(region, (scaled > 40).astype(np.uint8) * 255, out=region)
    pen = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (stroke, stroke))
    return cv2.dilate(mask, pen)


def text_line(text: str, font: int, size: tuple[int, int], center_y: float,
              height: float, thickness: float) -> np.ndarray:
    """Coverage mask of a small text line (state name, slogan) centred at `center_y`."""
    w, h = size
    unit_cap = cv2.getTextSize("H", font, 1.0, 1)[0][1]
    unit_width = max(1, cv2.getTextSize(text, font, 1.0, 1)[0][0])
    scale = min(height * h / unit_cap, 0.85 * w / unit_width)  # long lines shrink to fit
    pen = max(1, round(thickness * scale * unit_cap))
    width = cv2.getTextSize(text, font, scale, pen)[0][0]
    mask = np.zeros((h, w), np.uint8)
    origin = (round((w - width) / 2), round(center_y * h + scale * unit_cap / 2))
    cv2.putText(mask, text, origin, font, scale, 255, pen, cv2.LINE_AA)
    return mask


def rounded_rect(mask: np.ndarray, inset: float, thickness: float, radius: float) -> None:
    """Draw the outline of a rounded rectangle `inset` from the mask's edges."""
    h, w = mask.shape
    x0, y0, x1, y1, r = (round(v) for v in (inset, inset, w - inset, h - inset, radius))
    corners = (((x1 - r, y0 + r), 270), ((x1 - r, y1 - r), 0),
               ((x0 + r, y1 - r), 90), ((x0 + r, y0 + r), 180))
    outline = np.vstack([cv2.ellipse2Poly(c, (r, r), 0, a, a + 90, 10) for c, a in corners])
    cv2.polylines(mask, [outline], True, 255, max(1, round(thickness)), cv2.LINE_AA)


def blend(plate: np.ndarray, mask: np.ndarray, color: BGR) -> None:
    """Paint `color` into the float plate through a supersampled coverage mask."""
    alpha = cv2.resize(mask, (plate.shape[1], plate.shape[0]), interpolation=cv2.INTER_AREA)
    alpha = (alpha.astype(np.float32) / 255.0)[..., None]
    plate *= 1.0 - alpha
    plate += alpha * np.array(color, np.float32)
