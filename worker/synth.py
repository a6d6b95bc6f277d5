"""Synthetic US-style plates, street scenes and camera footage with known plates.

Fixtures for tests and `make demo`; later the seed of training data for our own recognizer, so a
plate's look is data (`PlateStyle`) and randomness comes only from an explicit `random.Random`.

Characters are OpenCV Hershey stroke fonts (built into OpenCV, so identical on every install;
TrueType fonts need a Debian fonts package that slim images lack). Each glyph is drawn as a thin
skeleton, squeezed into a narrow cell and then stroked with a round pen, which gives the thick,
condensed, evenly spaced characters of real plates. Everything is drawn at 4x and area-downsampled
for clean anti-aliased edges.

    python -m worker.synth video OUT.avi 7ABC123 8XYZ442     (or: images DIR PLATE ...)
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import pathlib
import random
import re
import sys
import time
from collections.abc import Sequence

import cv2
import numpy as np

BGR = tuple[int, int, int]
Box = tuple[int, int, int, int]  # x, y, w, h in pixels

_SS = 4  # supersampling factor for all plate drawing
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


@dataclasses.dataclass(frozen=True)
class VehiclePass:
    """One vehicle in a synthetic video: its plate and where the plate is, frame by frame."""

    plate: str
    first_frame: int
    last_frame: int  # inclusive
    boxes: tuple[Box, ...]  # plate box in each frame first_frame..last_frame

    @property
    def middle_frame(self) -> int:
        return (self.first_frame + self.last_frame) // 2


@dataclasses.dataclass(frozen=True)
class Vehicle:
    """Look of a vehicle rear; sizes scale with the plate width."""

    body: BGR
    trim: BGR  # panel lines and plate recess: the body colour, darker
    bumper: BGR
    half_width: float  # in plate widths
    roof: float  # rear window height, in plate widths


# ---------------------------------------------------------------- plates


def render_plate(text: str, *, state: str = "CALIFORNIA", style: PlateStyle | None = None,
                 height: int = 120, rng: random.Random | None = None) -> np.ndarray:
    """A 12x6 inch US plate as BGR uint8, `height` x 2*`height` pixels.

    Without `rng` the plate is clean and canonical; with one, colours and positions vary slightly.
    """
    text = _normalise(text)
    style = style or STYLES.get(state.upper(), PlateStyle())
    if rng is not None:
        style = _jitter_style(style, rng)
    h, w = height * _SS, 2 * height * _SS
    plate = np.empty((height, 2 * height, 3), np.float32)
    plate[:] = style.background
    border = np.zeros((h, w), np.uint8)
    _rounded_rect(border, 0.035 * h, 0.045 * h, 0.08 * h)
    _blend(plate, border, style.border_color)
    top = style.top_text if style.top_text is not None else state.upper()
    top_line = _text_line(top, style.top_font, (w, h), style.top_center, style.top_height, 0.05)
    _blend(plate, top_line, style.top_color)
    if style.bottom_text:
        _blend(plate, _text_line(style.bottom_text, cv2.FONT_HERSHEY_SIMPLEX, (w, h),
                                 style.bottom_center, style.bottom_height, 0.12), style.bottom_color)
    _blend(plate, _registration(text, style, (w, h)), style.text_color)
    return np.clip(plate, 0, 255).astype(np.uint8)


def _normalise(text: str) -> str:
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


def _registration(text: str, style: PlateStyle, size: tuple[int, int]) -> np.ndarray:
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


def _text_line(text: str, font: int, size: tuple[int, int], center_y: float,
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


def _rounded_rect(mask: np.ndarray, inset: float, thickness: float, radius: float) -> None:
    """Draw the outline of a rounded rectangle `inset` from the mask's edges."""
    h, w = mask.shape
    x0, y0, x1, y1, r = (round(v) for v in (inset, inset, w - inset, h - inset, radius))
    corners = (((x1 - r, y0 + r), 270), ((x1 - r, y1 - r), 0),
               ((x0 + r, y1 - r), 90), ((x0 + r, y0 + r), 180))
    outline = np.vstack([cv2.ellipse2Poly(c, (r, r), 0, a, a + 90, 10) for c, a in corners])
    cv2.polylines(mask, [outline], True, 255, max(1, round(thickness)), cv2.LINE_AA)


def _blend(plate: np.ndarray, mask: np.ndarray, color: BGR) -> None:
    """Paint `color` into the float plate through a supersampled coverage mask."""
    alpha = cv2.resize(mask, (plate.shape[1], plate.shape[0]), interpolation=cv2.INTER_AREA)
    alpha = (alpha.astype(np.float32) / 255.0)[..., None]
    plate *= 1.0 - alpha
    plate += alpha * np.array(color, np.float32)


# ---------------------------------------------------------------- scenes


def make_scene(plate_img: np.ndarray, *, size: tuple[int, int] = (1280, 720),
               plate_center: tuple[int, int] | None = None,
               rng: random.Random | None = None) -> np.ndarray:
    """A street with a vehicle rear around `plate_img`, which lands unscaled at `plate_center`."""
    rng = rng or random.Random(0)
    frame = _street(size, rng)
    center = plate_center or (size[0] // 2, size[1] // 2)
    _draw_vehicle(frame, plate_img, center, _random_vehicle(rng))
    return frame


def _street(size: tuple[int, int], rng: random.Random) -> np.ndarray:
    """Empty road seen from a pole-mounted camera: pavement, kerbs, lane marks, a wall at the top.

    Flat colours and smooth gradients only: sensor-like noise would triple the MJPG size."""
    w, h = size
    frame = np.empty((h, w, 3), np.uint8)
    shade = rng.randint(-12, 12)
    rows = np.linspace(95 + shade, 75 + shade, h, dtype=np.float32)[:, None, None]
    frame[:] = np.clip(rows + np.array([4, 0, -3], np.float32), 0, 255).astype(np.uint8)
    horizon = round(0.08 * h)
    frame[:horizon] = (150 + shade, 160 + shade, 170 + shade)  # building wall
    for i in range(0, w, w // 9):
        cv2.rectangle(frame, (i + 20, horizon // 4), (i + w // 18, horizon - 10), (90, 80, 70), -1)
    cx = w / 2
    for side in (-1, 1):  # kerbs and sidewalks converge towards the horizon
        near, far = cx + side * 0.62 * w, cx + side * 0.3 * w
        outer = cx + side * w
        edge = np.array([[far, horizon], [near, h], [outer, h], [outer, horizon]], np.int32)
        cv2.fillPoly(frame, [edge], (150 + shade, 152 + shade, 150 + shade))
        cv2.line(frame, (round(far), horizon), (round(near), h), (210, 210, 210), 6, cv2.LINE_AA)
    for y in range(horizon, h, h // 6):  # dashed centre line, widening with distance
        y1 = min(h, y + h // 12)
        half0, half1 = 2 + 6 * y / h, 2 + 6 * y1 / h
        dash = np.array([[cx - half0, y], [cx + half0, y], [cx + half1, y1], [cx - half1, y1]], np.int32)
        cv2.fillPoly(frame, [dash], (70, 200, 230), cv2.LINE_AA)
    return frame


def _random_vehicle(rng: random.Random) -> Vehicle:
    paints = [(235, 235, 232), (190, 190, 188), (40, 40, 42), (35, 35, 170), (140, 75, 30),
              (110, 110, 105), (60, 90, 50), (150, 175, 200)]
    body = rng.choice(paints)
    trim: BGR = tuple(int(c * 0.7) for c in body)  # type: ignore[assignment]
    return Vehicle(body=body, trim=trim, bumper=rng.choice([(35, 35, 35), trim]),
                   half_width=rng.uniform(2.4, 2.8), roof=rng.uniform(0.75, 1.0))


def _draw_vehicle(frame: np.ndarray, plate: np.ndarray, center: tuple[int, int], car: Vehicle) -> None:
    """Draw a vehicle rear around the plate; lengths are in plate widths, so it scales with it."""
    pw = plate.shape[1]
    cx, cy = center

    def pt(x: float, y: float) -> tuple[int, int]:
        return round(cx + x * pw), round(cy + y * pw)

    def box(x0: float, y0: float, x1: float, y1: float, color: BGR) -> None:
        cv2.rectangle(frame, pt(x0, y0), pt(x1, y1), color, -1)

    def trapezoid(half_bottom: float, half_top: float, bottom: float, top: float, color: BGR) -> None:
        corners = [(-half_bottom, bottom), (-half_top, top), (half_top, top), (half_bottom, bottom)]
        cv2.fillPoly(frame, [np.array([pt(x, y) for x, y in corners])], color, cv2.LINE_AA)

    hw, roof = car.half_width, -1.05 - car.roof
    shadow = (round(1.05 * hw * pw), round(0.12 * pw))
    cv2.ellipse(frame, pt(0, 0.75), shadow, 0, 0, 360, (30, 30, 30), -1)
    for side in (-1, 1):  # tyres below the bumper
        box(side * (hw - 0.15), 0.4, side * (hw - 0.75), 0.78, (20, 20, 20))
    trapezoid(hw - 0.45, hw - 0.9, -1.05, roof, car.body)  # cabin
    trapezoid(hw - 0.62, hw - 1.0, -1.1, roof + 0.1, (55, 55, 55))  # rear window
    box(-hw, -1.1, hw, 0.3, car.body)
    cv2.line(frame, pt(-hw + 0.2, -0.75), pt(hw - 0.2, -0.75), car.trim, 2, cv2.LINE_AA)
    for side in (-1, 1):  # tail lights with an amber indicator
        box(side * (hw - 0.08), -1.0, side * (hw - 0.75), -0.55, (30, 30, 200))
        box(side * (hw - 0.08), -0.55, side * (hw - 0.4), -0.42, (40, 150, 240))
    box(-hw - 0.04, 0.22, hw + 0.04, 0.52, car.bumper)
    box(-0.56, -0.3, 0.56, 0.3, car.trim)  # plate recess
    _paste(frame, plate, cx - pw // 2, cy - plate.shape[0] // 2)


def _paste(frame: np.ndarray, img: np.ndarray, x: int, y: int) -> None:
    """Copy `img` into `frame` with its top-left at (x, y), clipped to the frame."""
    fh, fw = frame.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + img.shape[1], fw), min(y + img.shape[0], fh)
    if x0 < x1 and y0 < y1:
        frame[y0:y1, x0:x1] = img[y0 - y:y1 - y, x0 - x:x1 - x]


# ---------------------------------------------------------------- footage


def write_video(path: pathlib.Path, plates: Sequence[str], *, fps: int = 10,
                size: tuple[int, int] = (1280, 720), seconds_per_vehicle: float = 3.0,
                gap_seconds: float = 1.0, seed: int = 0) -> list[VehiclePass]:
    """Write an MJPG .avi of a fixed camera watching vehicles approach, one after another.

    The street is empty for `gap_seconds` before, between and after vehicles (so a motion gate
    sees each arrival); the plate stays fully in view for the whole pass. MJPG is intra-only, so
    every frame is exact to seek to, and OpenCV reads it back without any codec packages.
    """
    texts = [_normalise(t) for t in plates]  # fail before writing anything
    rng = random.Random(seed)
    street = _street(size, rng)
    gap, span = round(gap_seconds * fps), max(2, round(seconds_per_vehicle * fps))
    writer = _open_writer(pathlib.Path(path), fps, size)
    passes: list[VehiclePass] = []
    try:
        for text in texts:
            for _ in range(gap):
                writer.write(street)
            first = gap + len(passes) * (span + gap)
            boxes = _drive_past(writer, street, text, span, rng)
            passes.append(VehiclePass(text, first, first + span - 1, boxes))
        for _ in range(gap):
            writer.write(street)
    finally:
        writer.release()
    return passes


def _open_writer(path: pathlib.Path, fps: int, size: tuple[int, int]) -> cv2.VideoWriter:
    """MJPG through FFmpeg (in every OpenCV wheel; 4:2:0, so half the size of OpenCV's own
    4:4:4 encoder), falling back to OpenCV's built-in MJPG writer."""
    fourcc = cv2.VideoWriter_fourcc(*"MJPG")
    for api in (cv2.CAP_FFMPEG, cv2.CAP_OPENCV_MJPEG):
        writer = cv2.VideoWriter(str(path), api, fourcc, fps, size)
        if writer.isOpened():
            return writer
    raise OSError(f"cannot write MJPG video {path}")


def _drive_past(writer: cv2.VideoWriter, street: np.ndarray, text: str, frames: int,
                rng: random.Random) -> tuple[Box, ...]:
    """Write one vehicle's frames: it enters at the top and grows as it nears the camera."""
    h, w = street.shape[:2]
    base = 0.15 * w  # plate width at mid-pass; ~190 px at 720p
    state = rng.choice(sorted(STYLES))
    plate = render_plate(text, state=state, height=math.ceil(base * 1.3 / 2), rng=rng)
    car = _random_vehicle(rng)
    lane_x = w / 2 + rng.uniform(-0.08, 0.08) * w
    drift = rng.uniform(-0.05, 0.05) * w
    boxes = []
    for k in range(frames):
        t = k / (frames - 1)
        ph = round(base * (0.7 + 0.55 * t) / 2)  # plate height; width stays exactly 2x
        scaled = cv2.resize(plate, (2 * ph, ph), interpolation=cv2.INTER_AREA)
        center = (round(lane_x + drift * t), round(h * (0.12 + 0.68 * t)))
        frame = street.copy()
        _draw_vehicle(frame, scaled, center, car)
        writer.write(frame)
        boxes.append((center[0] - ph, center[1] - ph // 2, 2 * ph, ph))
    return tuple(boxes)


def write_images(folder: pathlib.Path, plates: Sequence[str], *,
                 size: tuple[int, int] = (1280, 720), seed: int = 0,
                 quality: int = 90) -> list[pathlib.Path]:
    """One JPEG snapshot per plate (for the watched-folder camera), named NNN_PLATE.jpg."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    texts = [_normalise(t) for t in plates]
    rng = random.Random(seed)
    w, h = size
    paths = []
    for i, text in enumerate(texts):
        pw = round(0.15 * w * rng.uniform(0.8, 1.2))
        plate = render_plate(text, state=rng.choice(sorted(STYLES)), height=pw // 2, rng=rng)
        center = (round(w * rng.uniform(0.4, 0.6)), round(h * rng.uniform(0.45, 0.7)))
        path = folder / f"{i:03d}_{text.replace(' ', '_')}.jpg"
        cv2.imwrite(str(path), make_scene(plate, size=size, plate_center=center, rng=rng),
                    [cv2.IMWRITE_JPEG_QUALITY, quality])
        paths.append(path)
    return paths


# ---------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.synth", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    video = sub.add_parser("video", help="camera footage of vehicles with these plates (MJPG .avi)")
    images = sub.add_parser("images", help="a folder with one JPEG snapshot per plate")
    for cmd in (video, images):
        cmd.add_argument("out", type=pathlib.Path)
        cmd.add_argument("plates", nargs="+", metavar="PLATE")
        cmd.add_argument("--seed", type=int, default=0)
    video.add_argument("--fps", type=int, default=10)
    video.add_argument("--seconds", type=float, default=3.0, help="per vehicle (default 3)")
    video.add_argument("--gap", type=float, default=1.0, help="empty street between, seconds")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        if args.command == "images":
            print("\n".join(map(str, write_images(args.out, args.plates, seed=args.seed))))
            return 0
        for p in write_video(args.out, args.plates, fps=args.fps, seconds_per_vehicle=args.seconds,
                             gap_seconds=args.gap, seed=args.seed):
            print(f"{p.plate}: frames {p.first_frame}-{p.last_frame}")
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    size_mb = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({size_mb:.1f} MB) in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
