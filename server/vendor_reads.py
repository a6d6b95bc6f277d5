"""Reads from other ALPR systems, each mapped to one read of ours (a ReadIn) for the same ingest:
- Plate Recognizer Stream's webhook: `{hook: {target, id, event, filename}, data: {camera_id,
  timestamp, results: [{plate, score, candidates, box, region, vehicle, …}]}}`;
- the OpenALPR agent's `alpr_group`: one vehicle's plate reads grouped (`best_plate_number`,
  `best_confidence` 0–100, `candidates`, `epoch_start` in ms, `best_plate.coordinates`, `uuids`).

The top level of each is fixed by its vendor: an unknown key there is refused by name. Inside,
vendors add fields over versions; what we use is typed and checked, the rest is ignored. A repeat
post of the same vehicle (same hook id and timestamp; same group's first plate uuid) gets the
same read id, so ingest stores it once.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec

from contract.wire import AwareTime, Box, Candidate, Plate, ReadIn
from server.clock import from_ms

# Read ids are UUIDv5 under this namespace, from what names the vehicle in the vendor's format.
VENDOR_NAMESPACE = uuid.UUID("6c1b1a52-4f0d-4c55-9d36-1f4b7c9e2a10")
MAX_CANDIDATES = 20  # as ReadIn takes
Score = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Percent = Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
Pixel = Annotated[int, msgspec.Meta(ge=0)]


class VendorReadRefused(ValueError):
    """A vendor's post we cannot take; the message names the field (as `$.data.results[0].box`)."""


# --- Plate Recognizer Stream -----------------------------------------------------------------

class PRBox(msgspec.Struct):
    xmin: Pixel
    ymin: Pixel
    xmax: Pixel
    ymax: Pixel


class PRCandidate(msgspec.Struct):
    plate: Plate
    score: Score | None = None  # Stream's candidates may carry only the plate


class PRColor(msgspec.Struct):
    color: Annotated[str, msgspec.Meta(max_length=32)]
    score: Score


class PRResult(msgspec.Struct):
    plate: Plate
    score: Score
    candidates: list[PRCandidate] = []
    box: PRBox | None = None
    color: list[PRColor] = []


class PRData(msgspec.Struct):
    timestamp: AwareTime
    results: Annotated[list[PRResult], msgspec.Meta(min_length=1)]
    camera_id: str | None = None


class PRHook(msgspec.Struct):
    id: str = ""  # the camera's id in Stream's config
    event: Literal["recognition"] = "recognition"


class PlateRecognizerWebhook(msgspec.Struct, forbid_unknown_fields=True):
    hook: PRHook
    data: PRData


# --- OpenALPR agent ---------------------------------------------------------------------------

class AlprPoint(msgspec.Struct):
    x: int
    y: int


class AlprCandidate(msgspec.Struct):
    plate: Plate
    confidence: Percent


class AlprPlate(msgspec.Struct):
    coordinates: list[AlprPoint] = []
    candidates: list[AlprCandidate] = []


class AlprNamed(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(max_length=32)]
    confidence: Percent


class AlprVehicle(msgspec.Struct):
    color: list[AlprNamed] = []


class OpenAlprGroup(msgspec.Struct, forbid_unknown_fields=True):
    data_type: Literal["alpr_group"]
    epoch_start: Annotated[int, msgspec.Meta(ge=0)]
    best_plate_number: Plate
    best_confidence: Percent
    uuids: Annotated[list[str], msgspec.Meta(min_length=1)]
    best_plate: AlprPlate | None = None
    candidates: list[AlprCandidate] = []
    vehicle: AlprVehicle | None = None
    is_preview: bool = False
    # The rest of the documented group, taken and not used.
    version: Any = None
    epoch_end: Any = None
    frame_start: Any = None
    frame_end: Any = None
    company_id: Any = None
    site_id: Any = None
    agent_uid: Any = None
    agent_version: Any = None
    agent_type: Any = None
    camera_id: Any = None
    gps_latitude: Any = None
    gps_longitude: Any = None
    country: Any = None
    vehicle_path: Any = None
    plate_indexes: Any = None
    best_region: Any = None
    best_region_confidence: Any = None
    matches_template: Any = None
    plate_path: Any = None
    vehicle_crop_jpeg: Any = None
    overview_jpeg: Any = None
    best_uuid: Any = None
    best_uuid_epoch_ms: Any = None
    best_image_width: Any = None
    best_image_height: Any = None
    travel_direction: Any = None
    is_parked: Any = None
    vehicle_signature: Any = None
    web_server_config: Any = None
    direction_of_travel_id: Any = None
    custom_data: Any = None


# --- mapping ----------------------------------------------------------------------------------

def decode(raw: bytes | str, kind: type[msgspec.Struct], what: str) -> Any:
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise VendorReadRefused(f"invalid {what}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise VendorReadRefused(f"invalid {what}: malformed JSON ({exc})") from None


def box_of(xs: list[int], ys: list[int]) -> Box | None:
    """The bounding box of the corners; None when it has no area."""
    x, y = max(0, min(xs)), max(0, min(ys))
    w, h = max(xs) - x, max(ys) - y
    return Box(x=x, y=y, w=w, h=h) if w > 0 and h > 0 else None


def candidates_of(plate: str, found: list[tuple[str, float]]) -> list[Candidate]:
    seen, out = {plate}, []
    for text, confidence in found:
        text = text.upper()
        if text not in seen and len(out) < MAX_CANDIDATES:
            seen.add(text)
            out.append(Candidate(plate=text, confidence=min(confidence, 1.0)))
    return out


def plate_recognizer_read(raw: bytes | str, camera_id: int) -> ReadIn:
    """One Stream webhook → one read: its best-scored result (Stream posts one vehicle per hook)."""
    hook = decode(raw, PlateRecognizerWebhook, "Plate Recognizer webhook")
    result = max(hook.data.results, key=lambda r: r.score)
    plate = result.plate.upper()  # Plate Recognizer writes plates in lower case
    box = None
    if result.box is not None:
        box = box_of([result.box.xmin, result.box.xmax], [result.box.ymin, result.box.ymax])
        if box is None:
            raise VendorReadRefused("invalid Plate Recognizer webhook: data.results[].box has no area")
    color = max(result.color, key=lambda c: c.score) if result.color else None
    at = hook.data.timestamp
    return ReadIn(
        id=vendor_read_id("platerecognizer", camera_id, hook.hook.id, at.isoformat()),
        plate=plate, confidence=result.score, captured_at=at, box=box,
        candidates=candidates_of(plate, [(c.plate, result.score if c.score is None else c.score)
                                         for c in result.candidates]),
        color=color.color if color else None, color_confidence=color.score if color else None,
    )


def openalpr_read(raw: bytes | str, camera_id: int) -> ReadIn:
    """One alpr_group → one read. A preview group is revision 0 and the final group revision 1,
    so the final one refines the preview's read rather than adding a second."""
    group = decode(raw, OpenAlprGroup, "OpenALPR alpr_group")
    plate = group.best_plate_number.upper()
    best = group.best_plate or AlprPlate()
    found = group.candidates or best.candidates
    corners = best.coordinates
    colors = group.vehicle.color if group.vehicle else []
    color = max(colors, key=lambda c: c.confidence) if colors else None
    return ReadIn(
        id=vendor_read_id("openalpr", camera_id, group.uuids[0]),
        plate=plate, confidence=group.best_confidence / 100,
        captured_at=from_ms(group.epoch_start),
        candidates=candidates_of(plate, [(c.plate, c.confidence / 100) for c in found]),
        box=box_of([p.x for p in corners], [p.y for p in corners]) if corners else None,
        color=color.name if color else None, color_confidence=color.confidence / 100 if color else None,
        revision=0 if group.is_preview else 1,
    )


def vendor_read_id(vendor: str, camera_id: int, *names: str) -> uuid.UUID:
    return uuid.uuid5(VENDOR_NAMESPACE, "/".join((vendor, str(camera_id), *names)))
