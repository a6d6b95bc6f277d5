"""Frame sources: RTSP/HTTP/MJPEG streams and video files (OpenCV + FFmpeg), a watched folder
of snapshot images, and an HTTP snapshot URL. A source opens, hands out frames one at a time
(`read`), and raises SourceError when it fails, so the capture thread can reconnect."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import httpx
import numpy as np

from worker.config import Camera

log = logging.getLogger("worker.capture")


class SourceError(Exception):
    """The source failed (cannot open, stream lost, HTTP error): reconnect after a backoff."""


@dataclass(slots=True)
class Grab:
    """A frame taken from a source but not decoded yet (frames over the fps cap never are).

    A JPEG frame (MJPEG cameras, snapshots) can also be looked at small without a full decode:
    libjpeg scales by 1/2, 1/4 or 1/8 while decoding, which the motion gate's 160-px copy needs;
    the full frame is then decoded only if recognition takes it."""

    t: float  # position in a video file, in seconds; live sources use the monotonic clock
    decode: Callable[[], np.ndarray | None]
    captured_at: datetime | None = None
    origin: str = ""
    jpeg: np.ndarray | None = None  # the encoded frame, where the source delivers one
    _image: np.ndarray | None = None
    _decoded: bool = False
    _header: tuple[int, int] | None | bool = False  # the JPEG header's size, read once (False: not yet)

    def image(self) -> np.ndarray | None:
        """The full frame, decoded once."""
        if not self._decoded:
            self._image, self._decoded = self.decode(), True
        return self._image

    def small(self, width: int) -> np.ndarray | None:
        """A copy at least `width` pixels wide (or the frame, if narrower), decoded at reduced
        scale where possible."""
        size = self.jpeg_size()
        for factor, flag in REDUCED_DECODES:
            if size is not None and size[1] // factor >= width:
                return cv2.imdecode(self.jpeg, flag)
        return self.image()

    def shape(self) -> tuple[int, ...] | None:
        """The full frame's size, without decoding it where the JPEG header says it."""
        if not self._decoded and (size := self.jpeg_size()) is not None:
            return size
        image = self.image()
        return None if image is None else image.shape

    def jpeg_size(self) -> tuple[int, int] | None:
        """(height, width) from the JPEG's frame header; None if not a JPEG still to decode."""
        if self.jpeg is None or self._decoded:
            return None
        if self._header is False:  # the gate's copy and the frame's shape both ask: parse once
            self._header = jpeg_size(self.jpeg)
        return self._header


# Reduced-scale JPEG decodes, coarsest first (a 720p frame at 1/8: ~45% cheaper than in full).
REDUCED_DECODES = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_size(data: np.ndarray) -> tuple[int, int] | None:
    """(height, width) from a JPEG's frame header; None if it has none (not a JPEG, cut short)."""
    raw, i = data[:65536].tobytes(), 2
    while i + 9 <= len(raw) and raw[i] == 0xFF:
        marker, length = raw[i + 1], int.from_bytes(raw[i + 2:i + 4], "big")
        if marker in _SOF_MARKERS:
            height, width = int.from_bytes(raw[i + 5:i + 7], "big"), int.from_bytes(raw[i + 7:i + 9], "big")
            return (height, width) if height and width else None
        i += 2 + length
    return None


def decode_jpeg(data: np.ndarray) -> np.ndarray | None:
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return image if image is not None and image.size else None


class Source:
    live = True  # frames arrive in real time (monotonic clock); False for video files
    lossless = False  # every frame matters: wait for room in the queue instead of dropping
    done = False  # a finite source has ended

    def open(self) -> None: ...
    def read(self) -> Grab | None: ...  # None: nothing yet (or `done`)
    def close(self) -> None: ...


class VideoSource(Source):
    """RTSP / HTTP / MJPEG streams and video files, through OpenCV's FFmpeg backend."""

    def __init__(self, camera: Camera, stop: threading.Event) -> None:
        self.camera, self.stop = camera, stop
        self.live = camera.kind == "stream"
        self.realtime = self.live or camera.realtime
        self.lossless = not self.realtime  # footage read as fast as recognition goes
        self.cap: cv2.VideoCapture | None = None
        self.raw = False  # frames come as JPEG packets (MJPEG), decoded by us
        self.fps, self.index, self.offset, self.started = 25.0, 0, 0.0, 0.0

    def open(self) -> None:
        self.close()
        if not self.live and not Path(self.camera.location).is_file():
            raise SourceError(f"no video file {self.camera.location}")
        # RTSP over TCP: UDP packet loss smears frames, and smeared plates do not read.
        os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
        # Without timeouts a dead RTSP server blocks the thread for minutes.
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 10000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 10000]
        cap = cv2.VideoCapture(self.camera.location, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self.camera.location}")
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.cap, self.fps = cap, fps if 0 < fps <= 240 else 25.0
        # MJPEG (most HTTP cameras): take each frame as its JPEG and decode it ourselves, only when
        # it is looked at. FFmpeg would decode every frame in full, even those the fps cap skips.
        self.raw = fourcc(cap) == "MJPG" and cap.set(cv2.CAP_PROP_FORMAT, -1)
        self.index, self.started = 0, time.monotonic()

    def read(self) -> Grab | None:
        assert self.cap is not None
        if not self.cap.grab():
            if self.live:
                raise SourceError("the stream stopped delivering frames")
            if self.camera.loop and self.index > 0:
                self.offset += self.index / self.fps
                self.open()  # back to the start; video time keeps counting up
                return None
            self.done = True
            return None
        t = self.offset + self.index / self.fps
        self.index += 1
        if not self.live and self.realtime:
            self.stop.wait(max(0.0, self.started + t - self.offset - time.monotonic()))
        cap, origin = self.cap, f"frame {self.index}"
        if self.raw:  # the packet is the JPEG; copied now, as the next grab reuses its buffer
            ok, packet = cap.retrieve()
            if not ok or packet is None or not packet.size:
                return Grab(t, lambda: None, datetime.now(UTC), origin)  # counted as a bad frame
            packet = packet.reshape(-1).copy()
            return Grab(t, lambda: decode_jpeg(packet), datetime.now(UTC), origin, jpeg=packet)
        return Grab(t, lambda: retrieve(cap), datetime.now(UTC), origin)

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


def fourcc(cap: cv2.VideoCapture) -> str:
    code = int(cap.get(cv2.CAP_PROP_FOURCC))
    return "".join(chr((code >> 8 * i) & 0xFF) for i in range(4))


def retrieve(cap: cv2.VideoCapture) -> np.ndarray | None:
    ok, image = cap.retrieve()
    return image if ok and image is not None and image.size else None


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
SETTLE_S = 0.25  # a file this fresh may still be being written
INCOMPLETE_GRACE_S = 10.0  # a truncated JPEG younger than this may still be arriving


class FolderSource(Source):
    """Snapshot images dropped into a folder. Each file is handled once: moved to `done/`
    when decoded, or to `rejected/` (with a log line) when it cannot be read. A backlog waits
    for recognition rather than being dropped."""

    lossless = True

    def __init__(self, camera: Camera, stop: threading.Event) -> None:
        self.camera, self.stop = camera, stop
        self.folder = Path(camera.location)
        self.pending: deque[Path] = deque()
        self.unmovable: set[Path] = set()  # could not be moved away: remember, never retry
        self.not_before: dict[Path, float] = {}  # incomplete files: look again after this time

    def open(self) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"no folder {self.folder}")
        (self.folder / "done").mkdir(exist_ok=True)
        (self.folder / "rejected").mkdir(exist_ok=True)

    def read(self) -> Grab | None:
        if not self.pending:
            self.pending.extend(self._scan())
            if not self.pending:
                self.stop.wait(self.camera.poll_s)
                return None
        return self._load(self.pending.popleft())

    def _scan(self) -> list[Path]:
        now, found = time.time(), []
        try:
            entries = list(os.scandir(self.folder))
        except OSError as exc:
            raise SourceError(f"cannot list {self.folder}: {exc}") from None
        for entry in entries:
            path = Path(entry.path)
            if path.suffix.lower() not in IMAGE_SUFFIXES or path in self.unmovable or not entry.is_file():
                continue
            try:
                mtime = entry.stat().st_mtime
            except OSError:  # gone since the listing
                continue
            if now - mtime >= SETTLE_S and self.not_before.get(path, 0.0) <= now:
                found.append((mtime, path.name, path))
        return [path for _, _, path in sorted(found)]

    def _load(self, path: Path) -> Grab | None:
        try:
            data, mtime = path.read_bytes(), path.stat().st_mtime
        except OSError as exc:
            return self._reject(path, f"cannot read it ({exc.strerror or exc})")
        if path.suffix.lower() != ".png" and b"\xff\xd9" not in data[-64:]:
            if time.time() - mtime < INCOMPLETE_GRACE_S:
                self.not_before[path] = time.time() + 1.0  # probably still arriving
                return None
            return self._reject(path, "truncated JPEG (no end marker)")
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            return self._reject(path, "not a decodable image")
        self.not_before.pop(path, None)
        self._move(path, "done")
        return Grab(time.monotonic(), lambda: image, datetime.fromtimestamp(mtime, UTC), path.name)

    def _reject(self, path: Path, why: str) -> None:
        self.not_before.pop(path, None)
        log.warning("camera %s: skipping %s: %s", self.camera.name, path.name, why)
        self._move(path, "rejected")
        return None

    def _move(self, path: Path, sub: str) -> None:
        try:
            os.replace(path, self.folder / sub / path.name)
        except OSError as exc:
            log.warning("camera %s: cannot move %s to %s/: %s", self.camera.name, path.name, sub, exc)
            self.unmovable.add(path)


class SnapshotSource(Source):
    """An HTTP snapshot URL (most IP cameras have one), polled every `poll_s` seconds."""

    def __init__(self, camera: Camera, stop: threading.Event) -> None:
        self.camera, self.stop = camera, stop
        self.client: httpx.Client | None = None
        self.next_at = 0.0

    def open(self) -> None:
        self.client = httpx.Client(timeout=10.0, follow_redirects=True)

    def read(self) -> Grab | None:
        assert self.client is not None
        if self.stop.wait(max(0.0, self.next_at - time.monotonic())):
            return None
        self.next_at = time.monotonic() + self.camera.poll_s
        try:
            resp = self.client.get(self.camera.location)
        except httpx.HTTPError as exc:
            raise SourceError(f"snapshot request failed: {exc!r}") from None
        if resp.status_code != 200:
            raise SourceError(f"snapshot URL answered {resp.status_code}")
        data = np.frombuffer(resp.content, np.uint8)
        return Grab(time.monotonic(), lambda: self._decode(data), datetime.now(UTC), "snapshot")

    def _decode(self, data: np.ndarray) -> np.ndarray | None:
        image = decode_jpeg(data) if data.size else None
        if image is None:
            log.warning("camera %s: the snapshot is not a decodable image (%d bytes)", self.camera.name, len(data))
        return image

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


def open_source(camera: Camera, stop: threading.Event) -> Source:
    kinds = {"stream": VideoSource, "file": VideoSource, "folder": FolderSource, "snapshot": SnapshotSource}
    return kinds[camera.kind](camera, stop)
