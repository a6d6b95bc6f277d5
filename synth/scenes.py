"""Synthetic US-style plates, street scenes and camera footage with known plates.

Fixtures for tests and `make demo`; later the seed of training data for our own recognizer, so a
plate's look is data (`PlateStyle`) and randomness comes only from an explicit `random.Random`.

Plates are drawn by `synth.platedraw` (shared with the training-plate generator); `render_plate`,
`PlateStyle` and `STYLES` are re-exported here for callers of this module.

    python -m synth video OUT.avi 7ABC123 8XYZ442     (or: images DIR PLATE ...)
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import pathlib
import random
import sys
import time
from collections.abc import Sequence

import cv2
import numpy as np

from synth.platedraw import BGR, STYLES, PlateStyle, normalise_text, render_plate

__all__ = ["STYLES", "PlateStyle", "Vehicle", "VehiclePass", "main", "make_scene", "render_plate",
           "write_images", "write_video"]

Box = tuple[int, int, int, int]  # x, y, w, h in pixels


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
    texts = [normalise_text(t) for t in plates]  # fail before writing anything
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
    texts = [normalise_text(t) for t in plates]
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
    parser = argparse.ArgumentParser(prog="python -m synth", description=__doc__.split("\n")[0])
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

