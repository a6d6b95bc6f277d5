"""Synthetic US plates as training data for our own CTC plate recognizer (issue 5).

`synth` draws clean, canonical plates for tests and demos; this module draws *varied*
ones: a registration format and colour scheme for every state and DC, dealer frames, bolts,
registration stickers, small stacked characters, embossed shading, and then the ways a camera
spoils them (`degrade`). Never train on the evaluation data in ../shared/data.

Labels are the registration as the reader should output it: A-Z and 0-9 only, separators
dropped (`worker.recognize.plates.normalise`). Small stacked characters are decoration, not label: the
recognizer must learn to ignore them, like frame text and slogans. All randomness comes from
one `random.Random`, so `make_batch(n, seed)` is the same on every run.

    python -m synth.plategen OUTDIR N --seed S      (N JPEGs and labels.csv, for looking at)
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import pathlib
import random
import re
import sys
import time
from collections.abc import Sequence

import cv2
import numpy as np

from synth import plateart, platefonts, plategothic, platestacked
from synth.platestates import BGR, STATES, bgr
from worker.recognize.plates import normalise
from synth.platedraw import SUPERSAMPLE, PlateStyle, blend, registration, rounded_rect, text_line


# Letters without O (US plates use 0); I and Q are rare. Digits uniform.
LETTERS = "ABCDEFGHIJKLMNPQRSTUVWXYZ"
VANITY_SHARE = 0.2  # plates in no state format: the recognizer must not learn formats by heart
# Registration typefaces: stroked plate gothics (synth.plategothic), outline fonts, Hershey strokes.
FONT_SHARES = {"gothic": 0.4, "outline": 0.45, "hershey": 0.15}
_LETTER_WEIGHTS = [0.25 if c in "IQ" else 1.0 for c in LETTERS]
_FONTS = (cv2.FONT_HERSHEY_SIMPLEX,) * 3 + (cv2.FONT_HERSHEY_DUPLEX,)
_TOP_FONTS = (cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_TRIPLEX,
              cv2.FONT_HERSHEY_SCRIPT_COMPLEX, cv2.FONT_HERSHEY_COMPLEX)
_PAINT = [(235, 235, 232), (190, 190, 188), (40, 40, 42), (35, 35, 170), (140, 75, 30),
          (110, 110, 105), (60, 90, 50), (150, 175, 200), (25, 25, 25), (70, 70, 70)]


def pattern_regex(fmt: str) -> re.Pattern[str]:
    """Regex matching texts generated from format `fmt` (L letter, D digit, rest literal)."""
    parts = {"L": f"[{LETTERS}]", "D": "[0-9]"}
    return re.compile("".join(parts.get(c, re.escape(c)) for c in fmt))


@dataclasses.dataclass(frozen=True)
class PlateSpec:
    """One plate to draw: what it says and how it looks (`style`), plus its accessories."""

    state: str
    text: str  # as printed, with separators
    format: str
    style: PlateStyle
    frame: BGR | None = None  # dealer frame colour
    bolts: bool = False
    sticker: tuple[str, BGR] | None = None  # corner ("tl"/"tr"/...), colour
    stacked: str = ""  # small stacked characters beside the registration (not in the label)
    stacked_face: bool = False  # drawn as real plates do (synth.platestacked), not small and apart
    stacked_right: bool = False  # (stacked_face) on its right, like a handicap "HH"
    embossed: bool = False
    ttf: str | None = None  # outline font file for the registration
    gothic: plategothic.Style | None = None  # or a stroked plate gothic; neither: the Hershey style.font
    squeeze: float = 1.0  # outline glyph width factor
    bolder: float = 0.0  # extra outline stroke, in character heights
    dots: bool = False  # outline fonts: separators printed as centre dots
    art: str = ""  # pictorial design (synth.plateart): scene, outline, fruit, emblem, panel-left, panel-right

    @property
    def label(self) -> str:
        return normalise(self.text)


def random_text(fmt: str, rng: random.Random) -> str:
    return "".join(rng.choices(LETTERS, _LETTER_WEIGHTS)[0] if c == "L"
                   else str(rng.randrange(10)) if c == "D" else c for c in fmt)


def vanity_format(rng: random.Random) -> str:
    """Any mix of 2-8 letters and digits, maybe split once: vanity and specialty plates."""
    fmt = "".join(rng.choice("LD") for _ in range(rng.choice([2, 3, 4, 5, 5, 6, 6, 7, 7, 8])))
    if len(fmt) > 3 and rng.random() < 0.3:
        cut = rng.randrange(1, len(fmt))
        fmt = fmt[:cut] + rng.choice(" -") + fmt[cut:]
    return fmt


def sample_plate(rng: random.Random, state: str | None = None, stacked_pairs: bool = False) -> PlateSpec:
    """A random plate: state (uniform), one of its formats (or a vanity one) and colour
    schemes, a Hershey or outline font, accessories. `stacked_pairs`: stacked characters as
    `synth.platestacked` draws them (False draws exactly the plates it always drew)."""
    state = state or rng.choice(sorted(STATES))
    formats, schemes, slogan = STATES[state]
    fmt = vanity_format(rng) if rng.random() < VANITY_SHARE else rng.choice(formats)
    fonts = platefonts.available_fonts()
    face = rng.choices(list(FONT_SHARES), list(FONT_SHARES.values()))[0]
    ttf = rng.choice(fonts) if fonts and face == "outline" else None
    gothic = plategothic.random_style(rng) if face == "gothic" else None
    bg, fg, top, bottom = (bgr(c) for c in rng.choice(schemes))
    style = PlateStyle(
        background=bg, text_color=fg, top_color=top, bottom_color=bottom, border_color=fg,
        font=rng.choice(_FONTS), top_font=rng.choice(_TOP_FONTS),
        top_text=state.title() if rng.random() < 0.3 else state,
        top_height=rng.uniform(0.11, 0.16), top_center=rng.uniform(0.1, 0.14),
        bottom_text=slogan if rng.random() < 0.7 else "",
        char_height=rng.uniform(0.4, 0.56), char_pitch=rng.uniform(0.5, 0.62),
        glyph_width=rng.uniform(0.65, 0.85), stroke=rng.uniform(0.11, 0.17),
        char_center=rng.uniform(0.5, 0.56))
    d = rng.random
    return PlateSpec(
        state=state, text=random_text(fmt, rng), format=fmt, style=style,
        frame=rng.choice([(20, 20, 20), (170, 170, 175), (40, 40, 40), (30, 30, 120)]) if d() < 0.35 else None,
        bolts=d() < 0.6,
        sticker=(rng.choice(["tl", "tr", "br", "bl"]), bgr(rng.choice(
            ["#e0392b", "#2a7ae0", "#2aa04a", "#f0c020", "#e07020", "#9a40c0", "#f4f4f0"]))) if d() < 0.5 else None,
        stacked=platestacked.stacked_text(rng, len(normalise(fmt)), LETTERS) if stacked_pairs
        else "".join(rng.choices(LETTERS, k=2)) if d() < 0.08 and len(normalise(fmt)) <= 7 else "",
        stacked_face=stacked_pairs, stacked_right=stacked_pairs and d() < 0.2,
        embossed=d() < 0.35, ttf=ttf, gothic=gothic, squeeze=rng.uniform(0.5, 1.05),
        bolder=rng.uniform(0.0, 0.06) if d() < 0.4 else 0.0, dots=d() < 0.2,
        art=rng.choices(["", "scene", "outline", "fruit", "emblem", "panel-left", "panel-right"],
                        [0.35, 0.2, 0.15, 0.1, 0.15, 0.1, 0.05])[0] if sum(bg) > 450
        else "emblem" if d() < 0.15 else "")


def render_training_plate(spec: PlateSpec, rng: random.Random,
                          height: int | None = None) -> tuple[np.ndarray, str]:
    """(BGR plate crop, label). A 2:1 plate filling the crop; `height` random 44-96 px if None."""
    height = height or rng.randint(44, 96)
    st = spec.style
    h, w = height * SUPERSAMPLE, 2 * height * SUPERSAMPLE
    plate = np.empty((height, 2 * height, 3), np.float32)
    plate[:] = st.background
    if spec.art == "scene":
        plateart.scenic_background(plate, rng)
    elif spec.art == "outline":
        plateart.state_outline(plate, rng)
    if rng.random() < 0.3:  # a faint graphic band behind the registration, like many designs
        y0, y1 = sorted(rng.sample(range(height // 4, height), 2))
        tint = np.array([rng.uniform(-25, 10) for _ in range(3)], np.float32)
        plate[y0:y1] = np.clip(plate[y0:y1] + tint, 0, 255)
    border = np.zeros((h, w), np.uint8)
    rounded_rect(border, 0.035 * h, rng.uniform(0.02, 0.05) * h, 0.08 * h)
    blend(plate, border, st.border_color)
    blend(plate, text_line(st.top_text or spec.state, st.top_font, (w, h), st.top_center,
                           st.top_height, 0.05), st.top_color)
    if st.bottom_text:
        blend(plate, text_line(st.bottom_text, cv2.FONT_HERSHEY_SIMPLEX, (w, h),
                               st.bottom_center, st.bottom_height, 0.12), st.bottom_color)
    small_stack = spec.stacked and not spec.stacked_face
    left = round(0.17 * w) if small_stack else 0
    panel = (plateart.side_panel(plate, rng, spec.art == "panel-left") * SUPERSAMPLE
             if spec.art.startswith("panel") else 0)
    gaps = [i for i, c in enumerate(spec.text) if c in " -"]
    gap_x = 0.5 + ((gaps[0] + 0.5) / len(spec.text) - 0.5) * 0.8 if gaps else 0.0
    if spec.art == "fruit" and gaps:  # in the gap between character groups, like Florida's orange
        plateart.fruit(plate, rng, gap_x)
    elif spec.art == "emblem" and gaps:  # a state shape, star or heart as the separator
        plateart.emblem(plate, rng, gap_x, st.char_center, st.text_color if rng.random() < 0.5 else None)
    reg = (platestacked.registration_and_stacked(spec, (w - panel, h), rng, _registration_mask)
           if spec.stacked and spec.stacked_face else _registration_mask(spec, (w - left - panel, h)))
    if panel:
        blank = np.zeros((h, panel), np.uint8)
        reg = np.hstack([blank, reg] if spec.art == "panel-left" else [reg, blank])
    if small_stack:
        small = np.zeros((h, left), np.uint8)
        for ch, cy in zip(spec.stacked, (0.43, 0.63)):
            np.maximum(small, text_line(ch, cv2.FONT_HERSHEY_DUPLEX, (left, h), cy, 0.15, 0.12), out=small)
        reg = np.hstack([small, reg])
    if spec.embossed:  # raised characters lit from the top left: highlight and cast shadow
        a = cv2.resize(reg, (2 * height, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        s = max(1, height // 45)
        shifted = np.zeros_like(a)
        shifted[s:, s:] = a[:-s, :-s]
        plate += (a - shifted)[..., None] * rng.uniform(35, 70)
    blend(plate, reg, st.text_color)
    img = np.clip(plate, 0, 255).astype(np.uint8)
    _accessories(img, spec, rng)
    return img, spec.label


def _registration_mask(spec: PlateSpec, size: tuple[int, int]) -> np.ndarray:
    st = spec.style
    font = spec.gothic or spec.ttf
    if not font:
        return registration(spec.text, st, size)
    text = spec.text.replace("-", "\u00b7").replace(" ", "\u00b7") if spec.dots else spec.text
    squeeze, bolder = (1.0, 0.0) if spec.gothic else (spec.squeeze, spec.bolder)  # the style has its own
    return platefonts.registration(text, font, size, char_height=st.char_height, char_center=st.char_center,
                                   pitch=st.char_pitch * 1.1, squeeze=squeeze, bolder=bolder)


def _accessories(img: np.ndarray, spec: PlateSpec, rng: random.Random) -> None:
    """Bolts, sticker and dealer frame, drawn at final size (they need no supersampling)."""
    h, w = img.shape[:2]
    if spec.sticker:
        corner, color = spec.sticker
        sw, sh = round(w * rng.uniform(0.1, 0.15)), round(h * rng.uniform(0.13, 0.18))
        x = round(w * 0.06) if corner[1] == "l" else w - round(w * 0.06) - sw
        y = round(h * 0.06) if corner[0] == "t" else h - round(h * 0.07) - sh
        cv2.rectangle(img, (x, y), (x + sw, y + sh), color, -1, cv2.LINE_AA)
        ink = (20, 20, 20) if sum(color) > 350 else (245, 245, 245)
        cv2.putText(img, str(rng.randint(20, 29)), (x + sw // 5, y + sh * 3 // 4),
                    cv2.FONT_HERSHEY_SIMPLEX, sh / 40, ink, max(1, sh // 10), cv2.LINE_AA)
    if spec.bolts:
        r = max(2, round(h * 0.035))
        for bx in (0.21, 0.79):
            for by in ((0.1,) if rng.random() < 0.6 else (0.1, 0.9)):
                c = (round(bx * w), round(by * h))
                cv2.circle(img, c, r, (150, 150, 155), -1, cv2.LINE_AA)
                cv2.circle(img, c, r, (70, 70, 70), 1, cv2.LINE_AA)
    if spec.frame is not None:
        t, b = round(h * rng.uniform(0.03, 0.07)), round(h * rng.uniform(0.05, 0.15))
        mask = np.full((h, w), 255, np.uint8)
        cv2.rectangle(mask, (t, t), (w - 1 - t, h - 1 - b), 0, -1)
        img[mask > 0] = spec.frame
        if b > h * 0.09 and rng.random() < 0.7:  # dealer name on the bottom bar
            name = rng.choice(["AUTO MALL", "MOTORS", "TOYOTA OF", "FORD", "CHEVROLET", "HONDA"])
            ink = (230, 230, 230) if sum(spec.frame) < 300 else (30, 30, 30)
            cv2.putText(img, name, (w // 4, h - b // 4), cv2.FONT_HERSHEY_SIMPLEX, b / 45, ink,
                        1, cv2.LINE_AA)


def degrade(image: np.ndarray, rng: random.Random, loose: float = 0.0) -> np.ndarray:
    """Camera degradations of a plate crop; same shape and dtype out. Each step is optional.
    `loose`: the share of crops framed as loosely as a detector's first guess (see _geometry)."""
    nrng = np.random.default_rng(rng.getrandbits(64))
    h, w = image.shape[:2]
    out = _geometry(image, rng, nrng, loose)
    f = out.astype(np.float32)
    if rng.random() < 0.15:  # glare: a bright soft blob
        yy, xx = np.ogrid[:h, :w]
        cx, cy, sx, sy = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.1, 0.4) * w, rng.uniform(0.1, 0.5) * h
        f += rng.uniform(80, 220) * np.exp(-((xx - cx) / sx) ** 2 - ((yy - cy) / sy) ** 2)[..., None]
    if rng.random() < 0.2:  # dirt: a few brownish smudges
        dirt = np.zeros((h, w), np.float32)
        for _ in range(rng.randint(1, 6)):
            cv2.ellipse(dirt, (rng.randrange(w), rng.randrange(h)), (rng.randint(2, w // 5), rng.randint(2, h // 4)),
                        rng.uniform(0, 180), 0, 360, rng.uniform(0.2, 0.6), -1)
        dirt = cv2.GaussianBlur(dirt, (0, 0), max(1.0, h / 25))[..., None]
        f = f * (1 - dirt) + dirt * np.array([40, 60, 75], np.float32)
    if rng.random() < 0.3:  # low light
        f = 255 * (f / 255) ** rng.uniform(1.0, 1.8) * rng.uniform(0.25, 0.7)
    elif rng.random() < 0.15:  # washed out
        f = f * rng.uniform(0.5, 0.8) + rng.uniform(50, 110)
    if rng.random() < 0.25:  # motion blur along a random direction
        k = rng.randint(3, max(3, h // 8))
        kernel = np.zeros((k, k), np.float32)
        a = math.radians(rng.uniform(-30, 30) if rng.random() < 0.7 else rng.uniform(0, 180))
        c = (k - 1) / 2
        cv2.line(kernel, (round(c - c * math.cos(a)), round(c - c * math.sin(a))),
                 (round(c + c * math.cos(a)), round(c + c * math.sin(a))), 1.0, 1)
        f = cv2.filter2D(f, -1, kernel / kernel.sum())
    if rng.random() < 0.25:  # defocus
        f = cv2.GaussianBlur(f, (0, 0), rng.uniform(0.5, 0.4 + h / 60))
    if rng.random() < 0.35:  # low resolution: down to ~16 px character height, back up
        char_h = 0.45 * h / 1.15
        target = rng.uniform(13, 24)
        if char_h > target:
            s = target / char_h
            small = cv2.resize(f, (max(8, round(w * s)), max(4, round(h * s))), interpolation=cv2.INTER_AREA)
            f = cv2.resize(small, (w, h), interpolation=rng.choice([cv2.INTER_LINEAR, cv2.INTER_CUBIC]))
    if rng.random() < 0.12:  # infrared camera: grey, retroreflective background
        g = cv2.cvtColor(np.clip(f, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)
        g = (g - g.mean()) * rng.uniform(1.0, 1.6) + rng.uniform(110, 170)
        f = np.repeat(g[..., None], 3, axis=2)
    if rng.random() < 0.45:  # sensor noise
        f += nrng.normal(0, rng.uniform(2, 12), f.shape).astype(np.float32)
    out = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < 0.45:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(12, 60)])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


def _geometry(image: np.ndarray, rng: random.Random, nrng: np.random.Generator, loose: float = 0.0) -> np.ndarray:
    """Perspective, rotation (within +-15 degrees) and a crop margin of -5% to +25% per side; with
    probability `loose`, +25% to +80% (no random draw at all when `loose` is 0, so the default
    draws exactly the crops it always drew)."""
    h, w = image.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    yaw, pitch = rng.uniform(-0.25, 0.25), rng.uniform(-0.15, 0.15)  # edge length ratios
    pts = src - (w / 2, h / 2)
    pts[:, 1] *= 1 + yaw * np.sign(pts[:, 0]) * 0.5  # near side taller
    pts[:, 0] *= 1 + pitch * np.sign(pts[:, 1]) * 0.5
    pts += nrng.normal(0, 0.015, pts.shape) * (w, h)
    a = math.radians(max(-15.0, min(15.0, rng.gauss(0, 5))))
    pts = pts @ np.float32([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    m = [rng.uniform(-0.05, 0.25) if rng.random() < 0.8 else rng.uniform(-0.05, 0.05) for _ in range(4)]
    if loose and rng.random() < loose:
        m = [rng.uniform(0.25, 0.8) for _ in range(4)]
    bx0, bx1 = x0 - m[0] * (x1 - x0), x1 + m[1] * (x1 - x0)
    by0, by1 = y0 - m[2] * (y1 - y0), y1 + m[3] * (y1 - y0)
    dst = (pts - (bx0, by0)) * (w / (bx1 - bx0), h / (by1 - by0))
    matrix = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    paint = np.array(rng.choice(_PAINT), np.float32) * rng.uniform(0.6, 1.1)
    ramp = np.linspace(rng.uniform(0.7, 1.2), rng.uniform(0.7, 1.2), h, dtype=np.float32)[:, None, None]
    canvas = np.ascontiguousarray(np.broadcast_to(np.clip(ramp * paint, 0, 255).astype(np.uint8), (h, w, 3)))
    cv2.warpPerspective(image, matrix, (w, h), dst=canvas, flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_TRANSPARENT)
    return canvas


def make_batch(n: int, seed: int, size: tuple[int, int] | None = None,
               clean: float = 0.05, views: int = 1, loose: float = 0.0,
               stacked_pairs: bool = False) -> list[tuple[np.ndarray, str]]:
    """`n` degraded (image, label) pairs, the same for the same seed. `size` (w, h) resizes the
    output; a fraction `clean` of the images are left undegraded. `views` > 1 degrades each
    rendered plate that many times (drawing a plate costs ~6x degrading one); views=1 gives
    exactly the batches it always gave. `loose`: see `degrade`; `stacked_pairs`: see
    `sample_plate` (0 and False give the same batches too)."""
    rng = random.Random(seed)
    batch: list[tuple[np.ndarray, str]] = []
    while len(batch) < n:
        plate, label = render_training_plate(sample_plate(rng, stacked_pairs=stacked_pairs), rng)
        for _ in range(min(views, n - len(batch))):
            img = degrade(plate, rng, loose) if rng.random() >= clean else plate
            if size is not None:
                img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            batch.append((img, label))
    return batch


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synth.plategen", description=__doc__.split("\n")[0])
    parser.add_argument("outdir", type=pathlib.Path)
    parser.add_argument("n", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, nargs=2, metavar=("W", "H"), help="resize outputs")
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    batch = make_batch(args.n, args.seed, tuple(args.size) if args.size else None)
    with open(args.outdir / "labels.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["file", "text"])
        for i, (img, label) in enumerate(batch):
            name = f"{i:06d}.jpg"
            cv2.imwrite(str(args.outdir / name), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            out.writerow([name, label])
    print(f"wrote {args.n} plates to {args.outdir} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
