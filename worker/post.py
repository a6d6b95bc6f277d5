"""Delivery to the server: a vehicle read made into the wire read, an on-disk spool, a sender thread,
and per-camera heartbeats.

Every read is on disk before the first try and leaves the spool only when the server has
acknowledged it (201, or 200 for a resend it already had), so neither a server restart nor a
worker killed mid-send loses or doubles a read: the read's UUID is chosen once, before it is
spooled, and the server stores a UUID once.

Spool layout, one read per stem `<ns timestamp>-<uuid>` (names sort oldest first):
    <stem>.json                the camera name and the read; written last, so it marks the entry complete
    <stem>.plate_image.jpg     optional crops
    <stem>.vehicle_image.jpg
    rejected/<stem>.*          reads the server refused as bad, with <stem>.reason.txt
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import httpx
import msgspec
import numpy as np

from contract.plates import IMAGE_FIELDS, PLATE_MAX
from contract.wire import Box, CameraHeartbeat, Candidate, ReadIn
from worker.capture.camera import Backoff, CameraStats
from worker.colour import vehicle_colour
from worker.track import VehicleRead

log = logging.getLogger("worker.post")

READS_PATH = "/api/v1/reads"
HEARTBEAT_PATH = "/api/v1/cameras/heartbeat"


class SpoolEntry(msgspec.Struct, kw_only=True):
    camera: str
    read: ReadIn
    images: list[str] = []


def atomic_write(path: Path, data: bytes) -> None:
    """Readers see the old file or the whole new one, also after a crash or power loss."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # makes the renames themselves durable
    finally:
        os.close(fd)


class SpoolBusy(RuntimeError):
    """Another worker process is using this spool folder."""


class Spool:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.rejected = self.root / "rejected"
        self.rejected.mkdir(parents=True, exist_ok=True)
        self.wake = threading.Event()  # set when a read is added
        self._lock = self._take_lock()
        self._clean_partial()

    def _take_lock(self) -> int:
        """Two workers on one spool would send reads twice over and delete each other's files.
        The kernel drops the lock when the process dies, even by SIGKILL."""
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpoolBusy(f"spool {self.root} is in use by another worker") from None
        return fd

    def close(self) -> None:
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1

    def _clean_partial(self) -> None:
        """Remove what a crash mid-write left: temp files, and crops whose JSON never landed."""
        complete = {p.name.removesuffix(".json") for p in self.root.glob("*.json")}
        for path in self.root.iterdir():
            stem = path.name.split(".", 1)[0]
            if path.suffix == ".tmp" or (path.suffix == ".jpg" and stem not in complete):
                log.warning("spool: removing incomplete %s", path.name)
                path.unlink(missing_ok=True)

    def put(self, camera: str, read: ReadIn, images: dict[str, bytes]) -> str:
        stem = f"{time.time_ns():020d}-{read.id}"
        for field, data in images.items():
            atomic_write(self.root / f"{stem}.{field}.jpg", data)
        entry = SpoolEntry(camera=camera, read=read, images=sorted(images))
        atomic_write(self.root / f"{stem}.json", msgspec.json.encode(entry))
        fsync_dir(self.root)
        self.wake.set()
        return stem

    def stems(self) -> list[str]:
        """Complete entries, oldest first."""
        return sorted(p.name.removesuffix(".json") for p in self.root.glob("*.json"))

    def __len__(self) -> int:
        return len(self.stems())

    def load(self, stem: str) -> tuple[SpoolEntry, dict[str, bytes]]:
        """Raises ValueError for an entry that can never be sent as it is."""
        try:
            entry = msgspec.json.decode((self.root / f"{stem}.json").read_bytes(), type=SpoolEntry)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ValueError(f"unreadable spool entry: {exc}") from None
        images = {}
        for field in entry.images:
            path = self.root / f"{stem}.{field}.jpg"
            if path.exists():
                images[field] = path.read_bytes()
        return entry, images

    def files(self, stem: str) -> list[Path]:
        # The JSON first: once it is gone the entry no longer exists, even if a crash stops us.
        return [self.root / f"{stem}.json", *sorted(self.root.glob(f"{stem}.*.jpg"))]

    def delete(self, stem: str) -> None:
        for path in self.files(stem):
            path.unlink(missing_ok=True)

    def reject(self, stem: str, reason: str) -> None:
        atomic_write(self.rejected / f"{stem}.reason.txt", reason.encode())
        for path in reversed(self.files(stem)):  # JSON last: a crash leaves it to retry
            if path.exists():
                os.replace(path, self.rejected / path.name)
        fsync_dir(self.root)


@dataclass
class Outcome:
    kind: str  # "sent" | "rejected" | "retry" | "blocked" (the camera's token is refused)
    detail: str = ""
    retry_after: float | None = None


def classify(resp: httpx.Response) -> Outcome:
    code = resp.status_code
    if code in (200, 201):
        return Outcome("sent", "resend, already stored" if code == 200 else "stored")
    message = resp.text[:500]
    if code in (401, 403):
        # The read is fine; the token is not. Keep it until an admin fixes the config.
        return Outcome("blocked", f"{code} {message}")
    if code in (408, 429) or code >= 500 or code < 400 or code == 404:
        return Outcome("retry", f"{code} {message}", retry_after=_retry_after(resp))
    return Outcome("rejected", f"{code} {message}")


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return float(resp.headers.get("retry-after", ""))
    except ValueError:
        return None


def post_read(client: httpx.Client, token: str, entry: SpoolEntry, images: dict[str, bytes]) -> httpx.Response:
    body = msgspec.json.encode(entry.read)
    headers = {"Authorization": f"Bearer {token}"}
    if not images:
        return client.post(READS_PATH, content=body, headers={**headers, "Content-Type": "application/json"})
    files = {field: (f"{field}.jpg", data, "image/jpeg") for field, data in images.items()}
    return client.post(READS_PATH, data={"read": body.decode()}, files=files, headers=headers)


class Sender(threading.Thread):
    """Posts spooled reads oldest first; waits with a capped backoff while the server is away."""

    def __init__(self, spool: Spool, server: str, tokens: Callable[[str], str | None], *,
                 timeout_s: float = 30.0, max_backoff_s: float = 30.0) -> None:
        super().__init__(name="sender", daemon=True)
        self.spool, self.server, self.tokens = spool, server.rstrip("/"), tokens
        self.timeout_s = timeout_s
        self.stop = threading.Event()
        self.backoff = Backoff(cap=max_backoff_s)
        self.camera_backoff: dict[str, Backoff] = {}
        self.blocked_until: dict[str, float] = {}
        self.sent = self.rejected = 0

    def run(self) -> None:
        timeout = httpx.Timeout(self.timeout_s, connect=min(5.0, self.timeout_s))
        with httpx.Client(base_url=self.server, timeout=timeout) as client:
            while not self.stop.is_set():
                self.spool.wake.clear()
                if not self.send_pending(client):
                    self.spool.wake.wait(1.0)

    def send_pending(self, client: httpx.Client) -> bool:
        """One pass over the spool, oldest first. False when there is nothing to do now (empty,
        or only reads of cameras whose token is refused): then wait for new reads."""
        progressed = False
        for stem in self.spool.stems():
            if self.stop.is_set():
                return True
            outcome = self.send_one(client, stem)
            if outcome.kind == "retry":  # the server is away: nothing newer will get through either
                delay = max(self.backoff.next(), outcome.retry_after or 0.0)
                log.warning("server unavailable (%s); %d read(s) spooled, retrying in %.1f s",
                            outcome.detail, len(self.spool), delay)
                self.stop.wait(delay)
                return True
            if outcome.kind in ("sent", "rejected"):
                self.backoff.reset()
                progressed = True
        return progressed

    def send_one(self, client: httpx.Client, stem: str) -> Outcome:
        try:
            entry, images = self.spool.load(stem)
        except (ValueError, OSError) as exc:
            self.spool.reject(stem, str(exc))
            log.error("spool: %s moved to rejected/: %s", stem, exc)
            return Outcome("rejected", str(exc))
        if self.blocked_until.get(entry.camera, 0.0) > time.monotonic():
            return Outcome("skipped")
        token = self.tokens(entry.camera)
        if token is None:
            return self._block(entry.camera, "the camera is no longer in the config")
        try:
            outcome = classify(post_read(client, token, entry, images))
        except httpx.HTTPError as exc:
            return Outcome("retry", repr(exc))
        return self._record(stem, entry, outcome)

    def _record(self, stem: str, entry: SpoolEntry, outcome: Outcome) -> Outcome:
        read = entry.read
        if outcome.kind == "sent":
            self.spool.delete(stem)
            self.sent += 1
            self.camera_backoff.pop(entry.camera, None)
            log.info("camera %s: sent %s (%s, %s)", entry.camera, read.plate, read.id, outcome.detail)
        elif outcome.kind == "rejected":
            self.spool.reject(stem, outcome.detail)
            self.rejected += 1
            log.error("camera %s: server refused read %s (%s): %s; moved to %s",
                      entry.camera, read.plate, read.id, outcome.detail, self.spool.rejected)
        elif outcome.kind == "blocked":
            return self._block(entry.camera, outcome.detail)
        return outcome

    def _block(self, camera: str, why: str) -> Outcome:
        delay = self.camera_backoff.setdefault(camera, Backoff(initial=5.0, cap=300.0)).next()
        self.blocked_until[camera] = time.monotonic() + delay
        log.error("camera %s: reads held in the spool (%s); next try in %.0f s", camera, why, delay)
        return Outcome("blocked", why)


class HeartbeatThread(threading.Thread):
    """Tells the server each camera is alive and how it is doing, every `interval_s`."""

    def __init__(self, server: str, cameras: dict[str, tuple[str, CameraStats]], *,
                 interval_s: float = 30.0, first_after_s: float = 2.0) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.server, self.cameras = server.rstrip("/"), cameras
        self.interval_s, self.first_after_s = interval_s, first_after_s
        self.stop = threading.Event()
        self.missing_endpoint = False

    def run(self) -> None:
        with httpx.Client(base_url=self.server, timeout=10.0) as client:
            wait = self.first_after_s
            while not self.stop.wait(wait):
                for name, (token, stats) in self.cameras.items():
                    self.beat(client, name, token, stats)
                wait = self.interval_s

    def beat(self, client: httpx.Client, name: str, token: str, stats: CameraStats) -> int | None:
        body = CameraHeartbeat(frames_per_s=round(stats.frames_per_s(), 2), last_frame_at=stats.last_frame_at,
                               last_read_at=stats.last_read_at, frames_gated=stats.gated,
                               vehicles_seen=stats.vehicles_seen, vehicles_read=stats.vehicles_read,
                               frames_dropped=stats.dropped, recognition_lag_s=round(stats.lag_s, 2),
                               overloaded=stats.overloaded)
        try:
            resp = client.post(HEARTBEAT_PATH, content=msgspec.json.encode(body),
                               headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            log.debug("camera %s: heartbeat failed: %r", name, exc)
            return None
        if resp.status_code in (404, 405):
            if not self.missing_endpoint:  # an older server: say so once, keep working
                log.info("the server has no heartbeat endpoint (%d); camera health is not reported", resp.status_code)
            self.missing_endpoint = True
        elif resp.status_code >= 400:
            log.warning("camera %s: heartbeat refused: %d %s", name, resp.status_code, resp.text[:200])
        return resp.status_code


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def to_read_in(read: VehicleRead) -> tuple[ReadIn, dict[str, bytes]]:
    """The wire read of a vehicle; its UUID was chosen once, with its track, before any send."""
    view = read.view
    colour = vehicle_colour(view.vehicle_crop, view.plate_in_vehicle)
    candidates = [Candidate(plate=t, confidence=round(min(1.0, c), 4)) for t, c in read.candidates if 1 <= len(t) <= PLATE_MAX]
    wire = ReadIn(
        id=read.id, revision=read.revision, plate=read.plate, confidence=round(read.confidence, 4), captured_at=view.captured_at,
        candidates=candidates[:20], color=colour[0] if colour else None, color_confidence=colour[1] if colour else None,
        box=Box(x=view.box[0], y=view.box[1], w=view.box[2], h=view.box[3]),
    )
    # Struct constructors do not check constraints; decoding does. A read the server would
    # refuse fails here, in the log, instead of later in spool/rejected.
    wire = msgspec.json.decode(msgspec.json.encode(wire), type=ReadIn)
    plate_field, vehicle_field = IMAGE_FIELDS
    images = {plate_field: encode_jpeg(view.plate_crop), vehicle_field: encode_jpeg(view.vehicle_crop)}
    return wire, images
