"""One uploaded image, from request to answer: who calls, the upload, recognition, the reads.

A caller is a camera, known by its token (`Authorization: Token <token>`, or the path prefix
`/cameras/<token>` for clients that cannot set a header), or anonymous where the config allows
it. A camera's plates become its reads, spooled and posted like every other read of this
worker; an anonymous caller's are only answered.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
import anyio.to_thread
import numpy as np
from litestar import Request
from litestar.datastructures import FormMultiDict, UploadFile

from worker.config import SnapshotApi
from worker.post import Spool, to_read_in
from worker.recognize.pool import RecognitionFailed
from worker.snapshot_api.answers import Found, found_in
from worker.snapshot_api.images import BadImage, TooLarge, decode_upload
from worker.snapshot_api.jobs import Busy, SharedRecognition, sightings_of

log = logging.getLogger("worker.snapshot_api")

ANSWER_WITHIN_S = 60.0  # recognition that takes longer than this is reported as unavailable
DECODING_AT_ONCE = 2  # uploads decoded at the same time: each full picture is held in memory


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


@dataclass
class Recognised:
    found: list[Found]
    form: FormMultiDict  # the request's fields
    filename: str | None
    captured_at: datetime
    inference_ms: float
    started: float  # time.perf_counter() when the request came in


class SnapshotService:
    def __init__(self, settings: SnapshotApi, tokens: dict[str, str], recognition: SharedRecognition, spool: Spool,
                 min_confidence: float) -> None:
        self.settings, self.recognition, self.spool = settings, recognition, spool
        self.cameras: dict[str, str] = {}  # token -> name; the server knows a camera by its token alone
        for name, token in tokens.items():
            self.cameras.setdefault(token, name)
        self.min_confidence = min_confidence
        self.max_bytes = round(settings.max_upload_mb * 1_000_000)
        self.decoding = anyio.CapacityLimiter(DECODING_AT_ONCE)

    def caller(self, request: Request, path_token: str | None) -> str | None:
        """The calling camera's name; None for an anonymous caller the config lets in."""
        scheme, _, header_token = request.headers.get("authorization", "").partition(" ")
        token = path_token or (header_token.strip() if scheme.lower() in ("token", "bearer") else "")
        if not token:
            if self.settings.anonymous:
                return None
            raise ApiError(401, "a camera token is required: send `Authorization: Token <token>` or call "
                                "/cameras/<token>/v1/...", {"WWW-Authenticate": "Token"})
        for known, name in self.cameras.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return name
        raise ApiError(401, "unknown camera token: it must be the token of a camera in this worker's config",
                       {"WWW-Authenticate": "Token"})

    async def recognise(self, request: Request, path_token: str | None) -> Recognised:
        started = time.perf_counter()
        camera = self.caller(request, path_token)
        form = await request.form()  # the body is size-limited by the app
        data, filename = await upload_bytes(form.get("upload"))
        captured_at = parse_timestamp(form.get("timestamp"))
        engine_config(form.get("config"))  # checked for the caller's sake; our engine has no such settings
        try:
            image = await anyio.to_thread.run_sync(decode_upload, data, self.max_bytes, limiter=self.decoding)
        except TooLarge as exc:
            raise ApiError(413, str(exc)) from None
        except BadImage as exc:
            raise ApiError(400, str(exc)) from None
        asked = time.perf_counter()
        sightings = await self.sightings(image)
        inference_ms = 1000 * (time.perf_counter() - asked)
        found = await anyio.to_thread.run_sync(self.keep, sightings, image, camera, captured_at)
        return Recognised(found, form, filename, captured_at, inference_ms, started)

    async def sightings(self, image: np.ndarray) -> list:
        try:
            future = self.recognition.ask(image)
        except Busy as exc:
            raise ApiError(503, f"recognition is busy: {exc}", {"Retry-After": "1"}) from None
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(future), ANSWER_WITHIN_S)
            return sightings_of(result)
        except TimeoutError:
            raise ApiError(503, f"recognition did not answer within {ANSWER_WITHIN_S:g} s") from None
        except RecognitionFailed as exc:
            raise ApiError(503, f"recognition failed: {exc}") from None

    def keep(self, sightings: list, image: np.ndarray, camera: str | None, captured_at: datetime) -> list[Found]:
        """The plates found; a camera's sure ones spooled as its reads (off the event loop: disk)."""
        found = found_in(sightings, image, camera or "", captured_at)
        for f in found:
            if camera is not None and f.read.confidence >= self.min_confidence:
                self.spool_read(f)
        return found

    def spool_read(self, found: Found) -> None:
        read = found.read
        try:
            wire, images = to_read_in(read)
            self.spool.put(read.camera, wire, images)
        except Exception:  # a full disk, a read the server would refuse: the caller still gets its answer
            log.exception("camera %s: could not spool read %s", read.camera, read.plate)
            return
        log.info("camera %s: snapshot api read %s (confidence %.2f) spooled as %s", read.camera, wire.plate,
                 wire.confidence, wire.id)


async def upload_bytes(upload: object) -> tuple[bytes, str | None]:
    """The `upload` field: a file, or (as Plate Recognizer also takes it) a base64 string."""
    if isinstance(upload, UploadFile):
        return await upload.read(), upload.filename
    if isinstance(upload, str) and upload:
        try:
            return base64.b64decode(upload, validate=True), None
        except (binascii.Error, ValueError):
            raise ApiError(400, "upload: a text upload must be a base64-encoded image") from None
    raise ApiError(400, "upload: the image is missing (send it as the multipart file field `upload`)")


def parse_timestamp(value: object) -> datetime:
    """The caller's capture time (ISO 8601; Plate Recognizer's are UTC without a zone), else now."""
    if value in (None, ""):
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise ApiError(400, f"timestamp: expected an ISO 8601 time such as 2026-01-31T13:45:00Z, "
                            f"got {value!r}") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def engine_config(value: object) -> dict:
    """Plate Recognizer's `config` field: a JSON object (its settings tune their engine, not ours)."""
    if value in (None, ""):
        return {}
    try:
        parsed = json.loads(str(value))
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ApiError(400, "config: expected a JSON object")
    return parsed
