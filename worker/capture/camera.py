"""Frame capture: one thread per camera, a motion gate, and a bounded queue to recognition.

Recognition is far slower than capture, so a live camera never waits for it: its queue keeps
the newest frames and drops the oldest. Video files played "as fast as possible" and watched
folders wait instead: there every frame is wanted and nothing is lost by waiting. Frames
without motion are dropped before the queue, so a quiet street costs a decode and a difference
of two 160-pixel-wide copies per frame.
"""

from __future__ import annotations

import logging
import math
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import cv2
import numpy as np

from worker.config import Camera, Motion
from worker.capture.sources import Grab, Source, SourceError, open_source

log = logging.getLogger("worker.capture")


@dataclass(slots=True)
class Frame:
    """A frame that passed the motion gate. Its pixels are decoded when recognition takes it: a
    frame pushed out of a full queue, or skipped as its vehicle is read, never is."""

    camera: str
    grab: Grab
    t: float  # seconds on the camera's clock (monotonic, or position in a video file)
    captured_at: datetime
    origin: str = ""  # file name or frame number, for log lines
    region: tuple[int, int, int, int] | None = None  # where the frame changed (x, y, w, h); None: anywhere
    queued_at: float = field(default_factory=time.monotonic)  # for the recognition lag

    @property
    def image(self) -> np.ndarray | None:
        """The full frame; None if it cannot be decoded."""
        return self.grab.image()


class Backoff:
    """Exponential delays, capped: 0.5, 1, 2, 4 … cap. `reset()` after a success."""

    def __init__(self, initial: float = 0.5, cap: float = 30.0, factor: float = 2.0) -> None:
        self.initial, self.cap, self.factor = initial, cap, factor
        self.failures = 0

    def next(self) -> float:
        delay = min(self.cap, self.initial * self.factor ** min(self.failures, 64))
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


class FrameQueue:
    """A bounded queue that drops its oldest item rather than block the producer. `since`: when
    the longest-waiting item still in it, or dropped from it since the last take, was put."""

    def __init__(self, maxsize: int, wake: threading.Event | None = None) -> None:
        self.maxsize = maxsize
        self.dropped = 0
        self.since: float | None = None
        self._items: deque = deque()
        self._times: deque[float] = deque()  # when each item was put
        self._cond = threading.Condition()
        self._wake = wake  # shared with the recognition loop: "some queue has work"

    def put(self, item) -> bool:
        """Add `item`; returns False when the oldest item had to be dropped for it."""
        with self._cond:
            full = len(self._items) >= self.maxsize
            if full:
                self._items.popleft()
                self._times.popleft()
                self.dropped += 1
            self._append(item)
        self._notify()
        return not full

    def put_wait(self, item, stop: threading.Event) -> bool:
        """Add `item`, waiting for room (lossless playback); False if `stop` was set first."""
        with self._cond:
            while len(self._items) >= self.maxsize:
                if stop.is_set():
                    return False
                self._cond.wait(0.1)
            self._append(item)
        self._notify()
        return True

    def _append(self, item) -> None:
        now = time.monotonic()
        self._items.append(item)
        self._times.append(now)
        if self.since is None:
            self.since = now

    def get_nowait(self):
        """Take the oldest item (None when empty)."""
        with self._cond:
            item = self._items.popleft() if self._items else None
            if item is not None:
                self._times.popleft()
            self.since = self._times[0] if self._times else None
            self._cond.notify_all()
        return item

    def newest(self) -> tuple[object | None, int]:
        """Take the newest item and discard the rest: (item, how many were discarded)."""
        with self._cond:
            items, self._items, self.since = self._items, deque(), None
            self._times.clear()
            self._cond.notify_all()
        if not items:
            return None, 0
        return items[-1], len(items) - 1

    def oldest(self):
        """Peek at the oldest item (None when empty)."""
        with self._cond:
            return self._items[0] if self._items else None

    def __len__(self) -> int:
        return len(self._items)

    def _notify(self) -> None:
        if self._wake is not None:
            self._wake.set()


class MotionGate:
    """Passes a frame when enough of a small copy differs from the previous frame, and from the
    scene at rest (the last frame that did not change: the empty street).

    The second test drops the frame in which a vehicle has just left: it differs from the frame
    before (the vehicle) but shows only the street, and reading it would find nothing. Differences
    are taken per colour channel, not on grey: a red car on a grey road can have the road's
    brightness and still must count as motion."""

    def __init__(self, settings: Motion) -> None:
        self.settings = settings
        self._previous: np.ndarray | None = None
        self._at_rest: np.ndarray | None = None  # the scene when nothing moved: parked cars and all
        self.last_fraction = 1.0
        self.last_region: tuple[int, int, int, int] | None = None  # in frame pixels, with a margin

    def reset(self) -> None:
        self._previous = self._at_rest = None  # after a reconnect the old picture says nothing

    def passes(self, image: np.ndarray, frame_shape: tuple[int, ...] | None = None) -> bool:
        """`image`: the frame, or a smaller copy of it (`frame_shape` then says the frame's size,
        for the region)."""
        if not self.settings.enabled:
            return True
        small = self._small(image)
        previous, self._previous = self._previous, small
        self.last_region = None
        if previous is None or previous.shape != small.shape:
            self.last_fraction = 1.0
            return True  # nothing to compare with: look at it
        self.last_fraction, mask = self._changed(small, previous)
        if self.last_fraction < self.settings.min_changed:
            self._at_rest = small
            return False
        if self._at_rest is not None and self._changed(small, self._at_rest)[0] < self.settings.min_changed:
            return False  # back to the scene at rest: whatever moved has gone
        self.last_region = changed_region(mask, frame_shape or image.shape)
        return True

    def _changed(self, small: np.ndarray, other: np.ndarray) -> tuple[float, np.ndarray]:
        """The fraction of pixels that changed between two small copies, and their mask."""
        diff = cv2.absdiff(small, other)
        if diff.ndim == 3:  # the largest change of any channel (OpenCV's max: 15x numpy's along an axis)
            blue, green, red = cv2.split(diff)
            diff = cv2.max(cv2.max(blue, green), red)
        mask = cv2.threshold(diff, self.settings.threshold, 255, cv2.THRESH_BINARY)[1]
        return cv2.countNonZero(mask) / diff.size, mask

    def _small(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        width = min(self.settings.width, w)
        height = max(1, round(h * width / w))
        small = image if (w, h) == (width, height) else cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(small, (3, 3), 0)  # sensor noise and JPEG ringing are not motion


MARGIN = 0.12  # of the frame's width, around the changed pixels: a plate near a moving edge


def changed_region(mask: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """The bounding box of the changed pixels of a small copy, in frame pixels, with a margin;
    None when it is most of the frame anyway."""
    x, y, w, h = cv2.boundingRect(mask)
    height, width = shape[:2]
    scale, margin = width / mask.shape[1], MARGIN * width
    x0, y0 = max(0, int(x * scale - margin)), max(0, int(y * scale - margin))
    x1, y1 = min(width, int((x + w) * scale + margin)), min(height, int((y + h) * scale + margin))
    if (x1 - x0) * (y1 - y0) > 0.6 * width * height:
        return None
    return x0, y0, x1 - x0, y1 - y0


@dataclass
class CameraStats:
    """What the heartbeat reports and the log summarises; written by one thread, read by others."""

    frames: int = 0  # examined (after the fps cap)
    gated: int = 0  # examined but without motion
    dropped: int = 0  # passed the gate but pushed out of a full queue
    errors: int = 0  # failed opens, lost streams, corrupt images
    last_frame_at: datetime | None = None
    last_read_at: datetime | None = None
    # Written by the recognition loop: the load the heartbeat reports.
    vehicles_seen: int = 0
    vehicles_read: int = 0
    skipped: int = 0  # frames of vehicles already read, left unread on purpose (not "dropped")
    looked: int = 0  # frames recognition searched
    quick_looks: int = 0  # of those, quick ones (looks were scarce)
    lag_s: float = 0.0
    overloaded: bool = False
    window_s: float = 10.0
    _times: deque = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def frame_seen(self, now: float) -> None:
        with self._lock:
            self.frames += 1
            self.last_frame_at = datetime.now(UTC)
            self._times.append(now)
            while self._times and self._times[0] < now - self.window_s:
                self._times.popleft()

    def frames_per_s(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = [t for t in self._times if t >= now - self.window_s]
        return len(recent) / self.window_s


DWELLS_KEPT = 25  # motions whose median says how long a vehicle is usually in view of a camera

# While recognition is behind on a camera (an overloaded box), its frames are examined at most this
# often: each examined frame costs a small decode (~2.5 ms with the gate) and only replaces the one
# waiting, but the waiting frame is what the next look sees, so it must not grow old. bench.traffic,
# 24 cameras at 10 fps, 2026-12-07, interleaved; listed vehicles that alerted, and the first frame ->
# push p95 over all runs: 2.5 fps 74.4% and 2.6 s (8 runs), 5 fps 75.9% and 2.4 s (8), 10 fps
# 76.4% and 2.7 s (14; two runs over 3 s: the decoding takes looks away).
BEHIND_FPS = 5.0


class CaptureThread(threading.Thread):
    """Reads one camera: open, pump frames through the fps cap and motion gate, reconnect."""

    def __init__(self, camera: Camera, stop: threading.Event, wake: threading.Event | None = None,
                 max_backoff_s: float = 30.0) -> None:
        super().__init__(name=f"capture-{camera.name}", daemon=True)
        self.camera, self.stop = camera, stop
        self.queue = FrameQueue(camera.queue_size, wake)
        self.stats = CameraStats()
        self.gate = MotionGate(camera.motion)
        self.source: Source = open_source(camera, stop)
        self.backoff = Backoff(cap=max_backoff_s)
        self.finished = False  # a finite source (video file) has ended
        self.frame_waiting = False  # set by the worker: it holds a frame of this camera, not yet searched
        self.rest_t = -math.inf  # when the scene was last at rest (a frame the gate stopped)
        self.moving_since = -math.inf  # the first frame that moved after the scene was at rest
        self.dwells: deque[float] = deque(maxlen=DWELLS_KEPT)  # how long the recent motions lasted
        self.usual_dwell_s: float | None = None  # their median: how long a vehicle is usually in view
        self._last_t = 0.0
        self._last_kept_t = -math.inf

    def clock(self) -> float:
        """Now, on this camera's clock: tracks unseen for a while by this clock are over."""
        if self.finished:
            return math.inf
        return time.monotonic() if self.source.live else self._last_t

    def run(self) -> None:
        try:
            while not self.stop.is_set() and not self.finished:
                self._session()
        finally:
            self.source.close()

    def _session(self) -> None:
        """One connection to the source, from opening it to losing it (or its end)."""
        try:
            self.source.open()
            self.gate.reset()
            while not self.stop.is_set():
                grab = self.source.read()
                if grab is None:
                    if self.source.done:
                        self.finished = True
                        return
                    continue
                self.backoff.reset()
                self._handle(grab)
        except Exception as exc:  # noqa: BLE001 - a camera thread must never die
            self.stats.errors += 1
            delay = self.backoff.next()
            if isinstance(exc, SourceError):
                log.warning("camera %s: %s; retrying in %.1f s", self.camera.name, exc, delay)
            else:
                log.exception("camera %s: unexpected error; retrying in %.1f s", self.camera.name, delay)
            self.source.close()
            self.stop.wait(delay)

    def _handle(self, grab: Grab) -> None:
        t = time.monotonic() if self.source.live else grab.t
        if t - self._last_kept_t < self._interval() * 0.999:
            return  # over the cap: not even examined
        self._last_kept_t = t
        small = grab.small(self.gate.settings.width) if self.gate.settings.enabled else None
        if small is None and (self.gate.settings.enabled or grab.image() is None):
            self.stats.errors += 1
            return
        self.stats.frame_seen(time.monotonic())
        if small is not None and not self.gate.passes(small, grab.shape() or small.shape):
            self.stats.gated += 1
            if self.rest_t != self._last_t and self.moving_since > -math.inf:  # a motion has ended
                self.dwells.append(t - self.moving_since)
                self.usual_dwell_s = statistics.median(self.dwells)
            self.rest_t = self._last_t = t
            return
        frame = Frame(self.camera.name, grab, t, grab.captured_at or datetime.now(UTC), grab.origin,
                      self.gate.last_region)
        if self.rest_t == self._last_t:  # the scene was at rest until now: something arrived
            self.moving_since = t
        if self.source.lossless:
            self.queue.put_wait(frame, self.stop)
        elif not self.queue.put(frame):
            self.stats.dropped += 1
        self._last_t = t  # after the put: the clock never runs ahead of queued frames

    def _interval(self) -> float:
        """Seconds between examined frames: the fps cap, and slower while recognition is behind on
        this camera (its queue full, or a frame held for it): decoding more then only replaces one."""
        interval = 1.0 / self.camera.fps_cap if self.camera.fps_cap else 0.0
        if not self.source.lossless and (self.frame_waiting or len(self.queue) >= self.queue.maxsize):
            interval = max(interval, 1.0 / BEHIND_FPS)
        return interval
