"""A read arrives: validate, store once, match against active hot-list entries, raise alerts
(server/alerts.py).

The whole write is one transaction; pushes go out afterwards through the Notifier so the
camera's request never waits on a phone.
"""

from __future__ import annotations

import asyncio
import io
import os
from dataclasses import dataclass, field
from datetime import UTC

import msgspec
from PIL import Image, UnidentifiedImageError

from contract.plates import InvalidPlate, fold, normalize
from contract.wire import ReadAccepted, ReadIn
from server import alerts
from server.auth import Camera
from server.clock import EARLIEST_MS, LATEST_MS, from_ms, now_ms, to_ms
from server.matching import read_texts
from server.notify import Notifier
from server.settings import Settings
from server.store import queries
from server.store.db import Database


class InvalidUpload(ValueError):
    """Bad input from a camera; the message names the field and what is wrong."""


class UploadTooLarge(InvalidUpload):
    pass


def check_jpeg(field: str, data: bytes, limit: int, max_pixels: int) -> None:
    """Refuse anything that is not a complete, decodable JPEG within the size limits. The pixel
    count comes from the header before anything is decoded: a few hundred bytes can claim
    30000×30000 pixels, gigabytes once decoded. Decoding takes a while: call it off the event loop."""
    if len(data) > limit:
        raise UploadTooLarge(f"{field}: {len(data)} bytes is over the {limit}-byte limit")
    if not data.startswith(b"\xff\xd8\xff"):
        raise InvalidUpload(f"{field}: not a JPEG image")
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
            width, height = image.size  # read from the header: nothing is decoded yet
            if width * height > max_pixels:
                raise UploadTooLarge(f"{field}: {width}×{height} pixels is over the {max_pixels}-pixel limit")
            image.load()  # decodes fully: truncated or corrupt data raises here
    except Image.DecompressionBombError as exc:  # so large that Pillow refuses even to open it
        raise UploadTooLarge(f"{field}: over the {max_pixels}-pixel limit "
                             f"(it claims more than {2 * Image.MAX_IMAGE_PIXELS} pixels)") from exc
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InvalidUpload(f"{field}: corrupt JPEG ({exc})") from exc


def checked_plate(field: str, text: str) -> str:
    """contract.plates.normalize, with the refusal naming the read's field (its message starts "plate …")."""
    try:
        norm = normalize(text)
    except InvalidPlate as exc:
        raise InvalidUpload(f"{field.removesuffix('plate')}{exc}") from None
    if not norm:
        raise InvalidUpload(f"{field}: no letters or digits")
    return norm


def check_capture_time(read: ReadIn, captured: int, now: int, settings: Settings) -> None:
    """A capture time no older than the retention period and at most max_clock_skew_s ahead of
    the server's clock. Anything else comes from a camera box whose clock is wrong (a dead RTC
    battery, a bad NTP answer): stored, it would sit where retention and pages cannot follow."""
    earliest = max(settings.retention_cutoff(now), EARLIEST_MS)
    latest = min(now + int(settings.max_clock_skew_s * 1000), LATEST_MS)
    if not earliest <= captured <= latest:
        window = " to ".join(from_ms(edge).isoformat(timespec="seconds") for edge in (earliest, latest))
        raise InvalidUpload(
            f"captured_at: {read.captured_at.isoformat()} is outside the accepted window {window} (no older "
            f"than the {settings.retention_days:g}-day retention period, at most {settings.max_clock_skew_s:g} s "
            "ahead of the server's clock): check the camera's clock")


def image_path(read: ReadIn, field: str) -> str:
    """Relative to the data dir; one folder per capture day keeps folders small."""
    day = read.captured_at.astimezone(UTC).strftime("%Y-%m-%d")
    return f"images/{day}/{read.id}-{field.removesuffix('_image')}.jpg"


@dataclass(slots=True)
class Ingest:
    db: Database
    settings: Settings
    notifier: Notifier
    _touched: dict[int, int] = field(default_factory=dict)  # camera id → when last_read_at was set

    async def store(self, camera: Camera, read: ReadIn, images: dict[str, bytes]) -> ReadAccepted:
        plate_norm = checked_plate("plate", read.plate)
        for i, candidate in enumerate(read.candidates):
            checked_plate(f"candidates[{i}].plate", candidate.plate)
        now, captured = now_ms(), to_ms(read.captured_at)
        check_capture_time(read, captured, now, self.settings)
        for name, data in images.items():
            await asyncio.to_thread(check_jpeg, name, data, self.settings.max_image_bytes,
                                    self.settings.max_image_pixels)
        paths = {name: image_path(read, name) for name in images}
        row = {
            "uuid": str(read.id), "camera_id": camera.id, "captured_at": captured, "received_at": now,
            "plate": read.plate, "plate_norm": plate_norm, "plate_folded": fold(plate_norm),
            "confidence": read.confidence,
            "candidates": msgspec.json.encode(read.candidates).decode(),
            "color": read.color, "color_confidence": read.color_confidence, "box": msgspec.json.encode(read.box).decode() if read.box else None,
            "plate_image": paths.get("plate_image"), "vehicle_image": paths.get("vehicle_image"),
            "revision": read.revision,
        }
        revised = False
        async with self.db.transaction() as conn:
            read_id = await queries.insert_read(conn, row)
            if read_id is None:
                stored = await queries.read_by_uuid(conn, str(read.id))
                if stored["camera_id"] != camera.id or read.revision <= stored["revision"]:
                    return ReadAccepted(id=stored["id"], uuid=read.id, duplicate=True, alerts=[])
                # A refinement of a vehicle already stored: one read, alerts for new entries only.
                read_id, captured, revised = stored["id"], stored["captured_at"], True
                await queries.revise_read(conn, read_id, row)
            self._write_images(images, paths)
            texts = read_texts(read.plate, [c.plate for c in read.candidates])
            alert_ids = await alerts.raise_alerts(conn, read_id, camera.id, captured, texts, now,
                                                  int(self.settings.alert_cooldown_s * 1000))
            if now - self._touched.get(camera.id, 0) > 1000:  # once a second is fresh enough
                await queries.touch_camera(conn, camera.id, now, read=True)
                self._touched[camera.id] = now
        self.notifier.enqueue(alert_ids)  # pushes go out after the commit, off the request
        return ReadAccepted(id=read_id, uuid=read.id, duplicate=False, alerts=alert_ids, revised=revised)

    def _write_images(self, images: dict[str, bytes], paths: dict[str, str]) -> None:
        for name, data in images.items():
            target = self.settings.data_dir / paths[name]
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")  # a refinement replaces a crop whole
            partial.write_bytes(data)
            os.replace(partial, target)
