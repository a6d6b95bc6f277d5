"""Street footage made from labelled photos: each photo is a vehicle approaching the camera.

A vehicle is 2 s of a slow zoom from a wide view of its photo toward its labelled plate (the
plate grows over the frames), then 1 s of empty street; 1280×720 at 10 fps. Frames are JPEG-
encoded once, ahead of the run, and shared by every camera that shows the photo: encoding 24
live cameras on the fly would take the CPU the worker is being measured on.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SIZE = (1280, 720)  # width, height of every frame
FPS = 10
APPROACH_FRAMES = 20  # 2 s of the vehicle coming closer
EMPTY_FRAMES = 10  # then 1 s of empty street
SLOT_FRAMES = APPROACH_FRAMES + EMPTY_FRAMES  # one vehicle every 3 s
ZOOM = 2.0  # the plate is this much larger in the last approach frame than in the first
JPEG_QUALITY = 80  # about what IP cameras send

Box = tuple[int, int, int, int]  # x, y, w, h


@dataclass(frozen=True)
class Photo:
    path: Path
    plate: str
    box: Box


def load_photos(folder: Path) -> list[Photo]:
    """Every labelled photo (`<image> TAB x y w h plate` beside each image), one per plate: a
    plate shown twice on one camera would be alerted once (the server's cool-down)."""
    photos: dict[str, Photo] = {}
    for label in sorted(folder.glob("*.txt")):
        fields = label.read_text().strip().split("\t")
        if len(fields) != 6:
            continue
        plate = "".join(ch for ch in fields[5].upper() if ch.isalnum())
        x, y, w, h = (int(v) for v in fields[1:5])
        if plate and w > 0 and h > 0 and (label.parent / fields[0]).is_file():
            photos.setdefault(plate, Photo(label.parent / fields[0], plate, (x, y, w, h)))
    return list(photos.values())


def _window(image_size: tuple[int, int], width: float, center: tuple[float, float]) -> tuple[float, float, float]:
    """A 16:9 window of `width` around `center`, moved inside the image: (x, y, width)."""
    img_w, img_h = image_size
    height = width * SIZE[1] / SIZE[0]
    x = min(max(center[0] - width / 2, 0.0), img_w - width)
    y = min(max(center[1] - height / 2, 0.0), img_h - height)
    return x, y, width


def approach(image: np.ndarray, box: Box, frames: int = APPROACH_FRAMES) -> tuple[list[np.ndarray], list[Box]]:
    """The frames of a vehicle coming closer: the largest 16:9 view of the photo, then views
    ever tighter (geometrically, up to ZOOM) and ever nearer the plate. Also the plate's box
    in each frame."""
    img_h, img_w = image.shape[:2]
    bx, by, bw, bh = box
    plate_center = (bx + bw / 2, by + bh / 2)
    wide = min(img_w, img_h * SIZE[0] / SIZE[1])
    tight = max(wide / ZOOM, min(wide, 3.0 * bw))  # the plate never fills more than a third
    start = _window((img_w, img_h), wide, plate_center)
    start_center = (start[0] + wide / 2, start[1] + wide * SIZE[1] / SIZE[0] / 2)
    images, boxes = [], []
    for i in range(frames):
        t = i / max(frames - 1, 1)
        width = wide * (tight / wide) ** t
        center = tuple(s + (p - s) * t for s, p in zip(start_center, plate_center))
        x, y, width = _window((img_w, img_h), width, center)
        scale = SIZE[0] / width
        matrix = np.float32([[scale, 0, -x * scale], [0, scale, -y * scale]])
        images.append(cv2.warpAffine(image, matrix, SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        boxes.append((round((bx - x) * scale), round((by - y) * scale), round(bw * scale), round(bh * scale)))
    return images, boxes


def empty_street(seed: int = 0) -> np.ndarray:
    """A still street without vehicles: asphalt and lane marks. The same picture frame after
    frame, so the worker's motion gate passes none but the first."""
    rng = np.random.default_rng(seed)
    width, height = SIZE
    shade = np.linspace(150, 95, height, dtype=np.float32)[:, None, None]
    frame = np.broadcast_to(shade, (height, width, 3)).copy()
    frame += rng.normal(0, 4, (height, width, 1)).astype(np.float32)  # asphalt grain
    frame = np.clip(frame, 0, 255).astype(np.uint8)
    for x in (width // 3, 2 * width // 3):
        for y in range(0, height, 90):
            cv2.line(frame, (x, y), (x + 8, y + 45), (225, 225, 225), 6)
    cv2.rectangle(frame, (0, 0), (width, height // 5), (160, 150, 140), -1)  # buildings across the road
    return frame


def encode(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def encode_clip(image: np.ndarray, box: Box) -> list[bytes]:
    return [encode(frame) for frame in approach(image, box)[0]]


class ClipLibrary:
    """Each photo's approach, encoded once, kept in memory for every camera and run."""

    def __init__(self, photos: Sequence[Photo]) -> None:
        self.photos = list(photos)
        self.clips: dict[int, list[bytes]] = {}
        self.empty = encode(empty_street())

    def prepare(self, indexes: set[int], threads: int = 2) -> None:
        """Encode the clips of these photos (OpenCV releases the GIL: threads use the cores)."""
        missing = sorted(set(indexes) - set(self.clips))

        def make(index: int) -> list[bytes]:
            photo = self.photos[index]
            image = cv2.imread(str(photo.path), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"cannot read {photo.path}")
            return encode_clip(image, photo.box)

        with ThreadPoolExecutor(threads) as pool:
            for index, clip in zip(missing, pool.map(make, missing)):
                self.clips[index] = clip


class Feed:
    """One camera's timeline: vehicle v shows photo order[v % len(order)] from frame
    phase + SLOT_FRAMES·v. Before the start and after the last vehicle the street is empty.
    Records when each vehicle's first frame was sent (time.monotonic())."""

    def __init__(self, name: str, order: Sequence[int], library: ClipLibrary, vehicles: int, phase: int = 0) -> None:
        self.name, self.order, self.library, self.vehicles = name, list(order), library, vehicles
        self.phase = phase  # frames of empty street before this camera's first vehicle
        self.first_sent: dict[int, float] = {}  # vehicle → when its first frame went out
        self.frames_sent = 0
        self.frames_skipped = 0  # the client read too slowly: frames it never got
        self._last_k: int | None = None

    def photo_of(self, vehicle: int) -> int:
        return self.order[vehicle % len(self.order)]

    def frame(self, k: int) -> tuple[bytes, int | None]:
        """Frame k of the traffic (negative: before it) and the vehicle it shows, if any."""
        vehicle, offset = divmod(k - self.phase, SLOT_FRAMES)
        if k < self.phase or vehicle >= self.vehicles or offset >= APPROACH_FRAMES:
            return self.library.empty, None
        return self.library.clips[self.photo_of(vehicle)][offset], vehicle

    def sent(self, k: int, vehicle: int | None, now: float) -> None:
        self.frames_sent += 1
        if self._last_k is not None and k >= 0:
            self.frames_skipped += max(0, k - self._last_k - 1)
        self._last_k = k
        if vehicle is not None:
            self.first_sent.setdefault(vehicle, now)


def camera_orders(cameras: int, photos: int, seed: int) -> list[list[int]]:
    """A different seeded order of the photos per camera. A camera repeats its order, so a
    photo comes back only after all others (beyond the server's 5-minute alert cool-down)."""
    orders = []
    for camera in range(cameras):
        order = list(range(photos))
        random.Random(f"{seed}-{camera}").shuffle(order)
        orders.append(order)
    return orders
