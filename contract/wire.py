"""Wire types shared by the server and the worker. Imports only msgspec, the stdlib and the rest of contract/."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from contract.alerts import ALERT_STATUSES, DEFAULT_PRIORITY, VERIFIED_WITH
from contract.plates import PLATE_MAX

Plate = Annotated[str, msgspec.Meta(min_length=1, max_length=PLATE_MAX)]
Confidence = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]
ShortText = Annotated[str, msgspec.Meta(max_length=200)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]  # SQLite's INTEGER holds no more


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Unknown fields are errors that name the field, never silently dropped."""


class Candidate(Strict):
    plate: Plate
    confidence: Confidence


class Box(Strict):
    x: Annotated[int, msgspec.Meta(ge=0)]
    y: Annotated[int, msgspec.Meta(ge=0)]
    w: Annotated[int, msgspec.Meta(gt=0)]
    h: Annotated[int, msgspec.Meta(gt=0)]


class ReadIn(Strict, omit_defaults=True):
    """One plate read, as a camera worker posts it to POST /api/v1/reads. Fields left at their
    defaults are not encoded: a first read (revision 0) is what servers before revisions accept."""

    id: uuid.UUID  # chosen by the sender before its first try; resends are stored once
    plate: Plate
    confidence: Confidence
    captured_at: AwareTime
    candidates: Annotated[list[Candidate], msgspec.Meta(max_length=20)] = []
    color: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    color_confidence: Confidence | None = None
    box: Box | None = None
    # A worker posts a vehicle's read as soon as it is settled (revision 0) and may refine it
    # while the vehicle stays in view: the same id with a higher revision replaces the stored
    # read's text, candidates and images; an equal or lower revision is a resend (stored once).
    revision: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 0


class CameraHeartbeat(Strict):
    """A worker's periodic health report for one camera."""

    frames_per_s: Annotated[float, msgspec.Meta(ge=0)]
    last_frame_at: AwareTime | None = None
    last_read_at: AwareTime | None = None
    frames_gated: Count = 0
    # Load, since the worker started (absent from older workers): vehicles whose plate was
    # found, vehicles posted, frames lost because recognition could not keep up, how far
    # recognition runs behind capture, and whether the worker judges the camera overloaded.
    vehicles_seen: Count | None = None
    vehicles_read: Count | None = None
    frames_dropped: Count | None = None
    recognition_lag_s: Annotated[float, msgspec.Meta(ge=0, le=86_400)] | None = None
    overloaded: bool | None = None


class ReadAccepted(msgspec.Struct):
    id: int
    uuid: uuid.UUID
    duplicate: bool
    alerts: list[int]
    revised: bool = False  # a higher revision of a stored read was folded into it


class Alert(msgspec.Struct):
    """An alert as the API, the live feed and push payloads show it."""

    id: int
    plate: str
    read_plate: str
    hotlist: str
    kind: str
    reason: str
    state: str
    rule: str
    detail: str
    camera: str
    seen_at: datetime
    status: str
    retro: bool
    url: str
    priority: int = DEFAULT_PRIORITY  # 0–100: the entry's own, else its list's default


class AlertUpdate(Strict):
    status: Literal[ALERT_STATUSES[1:]]  # every status but "new"
    note: ShortText = ""
    # Where a hit was checked: required to confirm one, as on the alert page.
    verified_with: Literal[VERIFIED_WITH] | None = None


class TokenRequest(Strict):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    otp: Annotated[str, msgspec.Meta(max_length=16)] | None = None


class TokenResponse(msgspec.Struct):
    token: str
    expires_at: datetime
    role: str


class PushKey(msgspec.Struct):
    public_key: str


class SubscriptionKeys(Strict):
    p256dh: Annotated[str, msgspec.Meta(min_length=40, max_length=200)]
    auth: Annotated[str, msgspec.Meta(min_length=16, max_length=64)]


class PushSubscriptionIn(Strict):
    """The browser's PushSubscription.toJSON()."""

    endpoint: Annotated[str, msgspec.Meta(pattern=r"^https?://", max_length=2048)]
    keys: SubscriptionKeys
    expirationTime: float | None = None  # noqa: N815 - the browser's spelling


class DutyIn(Strict):
    """POST /api/v1/duty: true starts a shift (settings.shift_hours) from now, false ends it."""

    on: bool


class DutyState(msgspec.Struct):
    on_duty_until: datetime | None  # when the shift ends; null when off duty
