"""Group one vehicle's per-frame plate reads into a track, vote, and emit one read per vehicle.

Pure logic: frames in, `VehicleRead`s out; time comes from the caller (or an injected clock),
so a test can drive it frame by frame. A sighting joins an open track when its plate box is
near the track's last box and its text is close (edit distance after folding look-alike
characters), or when its text is the same wherever it is (snapshot cameras). A track unseen for
`timeout_s` is over: its reads are voted on and, if it is confident enough, emitted once.

Hits first: a track whose vote is settled (enough agreeing reads at high confidence) is emitted
at once by `settled()`, while the vehicle is still in view; when the track ends, a changed text
is emitted again with the same id and a higher revision (the server folds it into the first).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import cv2
import numpy as np

from contract.plates import fold as fold_plate
from contract.plates import levenshtein
from worker.recognize.plates import prior

log = logging.getLogger("worker.track")

BoxT = tuple[int, int, int, int]  # x, y, w, h in frame pixels

MAX_JUMP = 2.5  # plate widths a plate may move between sightings and still be the same vehicle
MAX_VIEWS = 8  # best views kept per track (one per distinct text)
MAX_VOTES = 200  # sightings kept per track for the vote
REVIVE_S = 10.0  # how long a posted vehicle's plate, seen again, is still that vehicle
SETTLED_CONFIDENCE = 0.8  # a vote this sure, from `min_frames` agreeing reads, is posted at once
SETTLED_AGREEING = 3  # or this many agreeing reads at `min_confidence`: frames agreeing are evidence too
# One read this sure is enough for a vehicle seen while looks were scarce (it may get no other).
# Quick looks at the approach frames of openalpr-us's 113 photos (2026-12-07, frames 5-19 of 20):
# right reads 76-84 at >= 0.5 against 70-75 at >= 0.6, wrong ones 5-6 against 3-4; the wrong
# ones that high are the same text in every frame (59321P1 for 59E21P1 at 0.99), which no later
# look would have changed. So the usual bar, min_confidence (0.5), serves.
SCARCE_CONFIDENCE = 0.5
# A track seen this often without settling (a sign, a far plate that never reads) stops claiming
# looks first: other cameras' unread vehicles go before it. Its later sightings still count.
UNSETTLED_LOOKS = 6
# A settled text less plausible than this as a registration (a sign's ONLY, EXIT, STOP; a 4-digit
# number: plate prior 0.2-0.8, registrations 1.0-1.5) does not make its camera's vehicle read.
PLATE_LIKE = 1.0


def fold(text: str) -> str:
    """OCR-confused characters folded together when deciding "same plate" (the vote keeps them apart)."""
    return fold_plate(text.upper())


@dataclass(frozen=True, slots=True)
class Sighting:
    """One plate read in one frame, as the recognizer reports it."""

    text: str
    confidence: float
    box: BoxT
    candidates: tuple[tuple[str, float], ...] = ()  # alternatives with their probabilities
    crop: np.ndarray | None = field(default=None, compare=False, repr=False)  # the recognizer's plate crop


@dataclass(slots=True)
class View:
    """The pixels kept from one sighting: the plate, and the rear of the vehicle around it."""

    plate_crop: np.ndarray
    vehicle_crop: np.ndarray
    plate_in_vehicle: BoxT  # the plate's box inside `vehicle_crop` (for the colour)
    box: BoxT
    captured_at: datetime
    sharpness: float


@dataclass
class VehicleRead:
    """The one read a track produces."""

    camera: str
    plate: str
    confidence: float
    candidates: list[tuple[str, float]]
    frames: int
    view: View
    id: uuid.UUID = field(default_factory=uuid.uuid4)  # the vehicle's; a refinement keeps it
    revision: int = 0


@dataclass
class Track:
    # A car parked in view is seen for as long as it stays: vote on its recent frames only.
    sightings: deque[Sighting] = field(default_factory=lambda: deque(maxlen=MAX_VOTES))
    frames: int = 0
    last_box: BoxT = (0, 0, 1, 1)
    last_text: str = ""
    last_t: float = 0.0
    views: dict[str, View] = field(default_factory=dict)
    posted: VehicleRead | None = None  # what was sent while the vehicle was in view
    scarce: bool = False  # seen while the box was overloaded: it may get no second look

    @property
    def settled(self) -> bool:
        return self.posted is not None

    def add(self, sighting: Sighting, t: float, view: View) -> None:
        self.sightings.append(replace(sighting, crop=None))  # pixels live in `views` only
        self.frames += 1
        self.last_box, self.last_text, self.last_t = sighting.box, sighting.text, t
        kept = self.views.get(sighting.text)
        if kept is None or view.sharpness > kept.sharpness:
            self.views[sighting.text] = view
        if len(self.views) > MAX_VIEWS:  # one-off misreads: forget the least sharp
            del self.views[min(self.views, key=lambda k: self.views[k].sharpness)]


class Tracker:
    """Open tracks of one camera."""

    def __init__(self, camera: str, *, timeout_s: float = 1.5, min_frames: int = 2, min_confidence: float = 0.5,
                 max_edit: int = 2, clock: Callable[[], float] = time.monotonic) -> None:
        self.camera, self.timeout_s, self.clock = camera, timeout_s, clock
        self.min_frames, self.min_confidence, self.max_edit = min_frames, min_confidence, max_edit
        self.tracks: list[Track] = []
        self.opened = 0  # vehicles whose plate was found (tracks started)
        self.last_t = -math.inf  # the latest frame observed
        self.recent: list[Track] = []  # posted tracks ended lately, revived by their plate

    def needs_reading(self) -> bool:
        """False while every vehicle in view has a settled read (or was seen UNSETTLED_LOOKS
        times without one), and one of them looks like a registration: no vehicle here is waiting
        for its first good look."""
        if not any(t.settled and prior(t.posted.plate) >= PLATE_LIKE for t in self.tracks):
            return True  # nothing read yet, or only text that is no registration (a sign in view)
        return any(not t.settled and t.frames < UNSETTLED_LOOKS for t in self.tracks)

    def settled(self) -> list[VehicleRead]:
        """The first read of each track whose vote has just settled: post it while the vehicle
        is still in view. Each track gives at most one such read."""
        reads = []
        for track in self.tracks:
            if track.settled:
                continue
            plate, confidence, candidates = vote(track.sightings)
            agreeing = sum(s.text == plate for s in track.sightings)
            if self._is_settled(track, confidence, agreeing):
                track.posted = VehicleRead(self.camera, plate, confidence, candidates, track.frames,
                                           track.views.get(plate) or best_view(track))
                reads.append(track.posted)
        return reads

    def _is_settled(self, track: Track, confidence: float, agreeing: int) -> bool:
        """Sure enough to post now: `min_frames` agreeing reads at high confidence, or more agreeing
        reads at the usual confidence, or (looks scarce) one read that is very sure."""
        if confidence < self.min_confidence:
            return False
        if agreeing >= self.min_frames and confidence >= SETTLED_CONFIDENCE:
            return True
        if agreeing >= max(self.min_frames, SETTLED_AGREEING):
            return True
        return track.scarce and confidence >= SCARCE_CONFIDENCE

    def observe(self, sightings: Iterable[Sighting], image: np.ndarray, t: float | None = None,
                captured_at: datetime | None = None, scarce: bool = False) -> list[VehicleRead]:
        """Add one frame's sightings; returns the reads of tracks that ended before this frame.
        `scarce`: the box is overloaded, the vehicles in this frame may get no other look."""
        t = self.clock() if t is None else t
        captured_at = captured_at or datetime.now(UTC)
        finished = self.expire(t)
        self.last_t = t
        for track, sighting in self._assign(distinct(sightings)):
            if track is None:
                track = self._revive(sighting) or Track()
                self.tracks.append(track)
                self.opened += track.frames == 0
            track.add(sighting, t, make_view(image, sighting.box, captured_at, sighting.crop))
            track.scarce |= scarce
        return finished

    def expire(self, now: float | None = None) -> list[VehicleRead]:
        """End the tracks unseen for `timeout_s`; returns the reads worth posting."""
        now = self.clock() if now is None else now
        return self._end([tr for tr in self.tracks if now - tr.last_t > self.timeout_s], now)

    def end_read_before(self, t: float) -> list[VehicleRead]:
        """End the settled tracks last seen before `t`, when the scene was at rest: their vehicles
        have gone (or stopped, and are revived by their plate if they move on). Until their timeout
        they would make a vehicle arriving meanwhile wait for its first look."""
        return self._end([tr for tr in self.tracks if tr.settled and tr.last_t < t], t)

    def _end(self, ended: list[Track], now: float) -> list[VehicleRead]:
        self.tracks = [tr for tr in self.tracks if tr not in ended]
        # A posted vehicle lost for a moment (frames skipped once it was read) and seen again
        # is the same vehicle, not a second read.
        self.recent = [tr for tr in self.recent if now - tr.last_t <= REVIVE_S] + [tr for tr in ended if tr.settled]
        return [read for read in map(self._finish, ended) if read is not None]

    def flush(self) -> list[VehicleRead]:
        """End every open track (shutdown, end of a video file)."""
        return self.expire(math.inf)

    def _revive(self, sighting: Sighting) -> Track | None:
        for track in self.recent:
            if fold(track.posted.plate) == fold(sighting.text):
                self.recent.remove(track)
                return track
        return None

    def _assign(self, sightings: list[Sighting]) -> list[tuple[Track | None, Sighting]]:
        """Greedy one-to-one matching, cheapest pairs first; the rest start new tracks."""
        pairs = []
        for i, sighting in enumerate(sightings):
            for j, track in enumerate(self.tracks):
                cost = self._cost(track, sighting)
                if cost is not None:
                    pairs.append((cost, i, j))
        used_s, used_t, out = set(), set(), []
        for _, i, j in sorted(pairs):
            if i not in used_s and j not in used_t:
                used_s.add(i)
                used_t.add(j)
                out.append((self.tracks[j], sightings[i]))
        out += [(None, s) for i, s in enumerate(sightings) if i not in used_s]
        return out

    def _cost(self, track: Track, sighting: Sighting) -> float | None:
        edit = min(levenshtein(fold(sighting.text), fold(text)) for text in (track.last_text, *track.views))
        if edit == 0:
            return 0.0  # the same plate again, wherever it is
        jump = box_distance(track.last_box, sighting.box)
        if jump <= MAX_JUMP and edit <= self.max_edit:
            return edit + jump
        return None

    def _finish(self, track: Track) -> VehicleRead | None:
        plate, confidence, candidates = vote(track.sightings)
        frames, posted = track.frames, track.posted
        if posted is not None:  # already sent: only a changed text is worth a refinement
            if plate == posted.plate:
                return None
            track.posted = VehicleRead(self.camera, plate, confidence, candidates, frames, track.views.get(plate)
                                       or best_view(track), id=posted.id, revision=posted.revision + 1)
            return track.posted
        sure_alone = track.scarce and confidence >= SCARCE_CONFIDENCE
        if (frames < self.min_frames and not sure_alone) or confidence < self.min_confidence:
            log.debug("camera %s: dropped %s (%d frames, confidence %.2f)", self.camera, plate, frames, confidence)
            return None
        return VehicleRead(self.camera, plate, confidence, candidates, frames, track.views.get(plate) or best_view(track))

    def follow_window(self, shape: tuple[int, ...]) -> BoxT | None:
        """Where to look next when one unsettled vehicle is being followed: a window around its
        plate (plates move smoothly between frames). None: search the whole motion region."""
        unsettled = [track for track in self.tracks if not track.settled]
        if len(unsettled) != 1 or len(self.tracks) != 1 or unsettled[0].last_t != self.last_t:
            return None  # several vehicles, or lost in the last frame: look everywhere
        x, y, w, h = unsettled[0].last_box
        cx, cy = x + w / 2, y + h / 2
        half_w, half_h = max(2.5 * w, 160), max(2.0 * w, 120)  # room for the plate to move and grow
        return clamp_box(cx - half_w, cy - half_h, cx + half_w, cy + half_h, shape)


def best_view(track: Track) -> View:
    return max(track.views.values(), key=lambda v: v.sharpness)


def distinct(sightings: Iterable[Sighting]) -> list[Sighting]:
    """One sighting per plate: of boxes that mostly overlap, keep the most confident."""
    kept: list[Sighting] = []
    for s in sorted(sightings, key=lambda s: -s.confidence):
        if all(overlap(s.box, k.box) < 0.5 for k in kept):
            kept.append(s)
    return kept


def overlap(a: BoxT, b: BoxT) -> float:
    """Intersection over the smaller box's area."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0, w) * max(0, h) / max(1, min(a[2] * a[3], b[2] * b[3]))


def box_distance(a: BoxT, b: BoxT) -> float:
    """Centre distance in plate widths; a big change of size counts as far."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    width = max(aw, bw, 1)
    dist = math.hypot(ax + aw / 2 - bx - bw / 2, ay + ah / 2 - by - bh / 2) / width
    ratio = max(aw, bw) / max(min(aw, bw), 1)
    return dist if ratio <= 2.0 else math.inf


def vote(sightings: Sequence[Sighting]) -> tuple[str, float, list[tuple[str, float]]]:
    """Best text, its confidence, and all candidates with their mean probability per frame.

    Whole texts are scored by their probability averaged over frames (a frame that did not
    propose a text gives it 0). With three or more reads of the most common length, each
    character is voted on separately, weighted by confidence: one blurred character in each
    of several frames then still adds up to the right plate.
    """
    n = len(sightings)
    scores: dict[str, float] = defaultdict(float)
    for s in sightings:
        proposals = dict(s.candidates)
        proposals[s.text] = max(proposals.get(s.text, 0.0), s.confidence)
        for text, p in proposals.items():
            scores[text] += p / n
    best = max(scores, key=scores.__getitem__)
    confidence = scores[best]
    per_char = character_vote(sightings)
    if per_char is not None and per_char[0] != best:
        best, confidence = per_char
        scores[best] = max(scores.get(best, 0.0), confidence)
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    ranked = [(best, confidence)] + [(t, min(1.0, c)) for t, c in ranked if t != best]
    return best, min(1.0, confidence), [(t, round(c, 4)) for t, c in ranked[:10]]


def character_vote(sightings: Sequence[Sighting]) -> tuple[str, float] | None:
    by_length: dict[int, float] = defaultdict(float)
    for s in sightings:
        by_length[len(s.text)] += s.confidence
    length = max(by_length, key=by_length.__getitem__)
    same = [s for s in sightings if len(s.text) == length]
    if len(same) < 3 or length == 0:
        return None
    chars, shares = [], []
    for i in range(length):
        weights: dict[str, float] = defaultdict(float)
        for s in same:
            weights[s.text[i]] += s.confidence
        char = max(weights, key=lambda c: (weights[c], c))
        chars.append(char)
        shares.append(weights[char] / max(sum(weights.values()), 1e-9))
    mean_conf = sum(s.confidence for s in same) / len(same)
    return "".join(chars), min(shares) * mean_conf


# ---------------------------------------------------------------- crops


def clamp_box(x0: float, y0: float, x1: float, y1: float, shape: tuple[int, ...]) -> BoxT:
    h, w = shape[:2]
    left, top = max(0, int(x0)), max(0, int(y0))
    right, bottom = min(w, int(math.ceil(x1))), min(h, int(math.ceil(y1)))
    return left, top, max(1, right - left), max(1, bottom - top)


def vehicle_box(plate: BoxT, shape: tuple[int, ...]) -> BoxT:
    """Roughly the rear of the vehicle: bumper, boot lid and lights, about five plate widths
    wide. It stops below the rear window so occupants and bystanders stay out of the picture."""
    x, y, w, h = plate
    cx, cy = x + w / 2, y + h / 2
    return clamp_box(cx - 2.4 * w, cy - 1.2 * w, cx + 2.4 * w, cy + 0.7 * w, shape)


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian at a fixed height, so near and far plates compare fairly."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    height = 48
    width = max(1, round(grey.shape[1] * height / max(grey.shape[0], 1)))
    interp = cv2.INTER_AREA if grey.shape[0] > height else cv2.INTER_LINEAR
    return float(cv2.Laplacian(cv2.resize(grey, (width, height), interpolation=interp), cv2.CV_64F).var())


def make_view(image: np.ndarray, box: BoxT, captured_at: datetime, plate_crop: np.ndarray | None = None) -> View:
    """Crops of one sighting; `plate_crop` (e.g. the recognizer's rectified plate) wins if given."""
    x, y, w, h = box
    if plate_crop is None or not plate_crop.size:
        # Recognizers often box only the registration line: grow towards the plate's 2:1
        # shape so the crop shows the state name too.
        half_h = max(0.65 * h, 0.28 * w)
        px, py, pw, ph = clamp_box(x - 0.08 * w, y + h / 2 - half_h, x + 1.08 * w, y + h / 2 + half_h, image.shape)
        plate_crop = image[py:py + ph, px:px + pw].copy()
    vx, vy, vw, vh = vehicle_box(box, image.shape)
    vehicle = image[vy:vy + vh, vx:vx + vw].copy()
    inside = clamp_box(x - vx, y - vy, x - vx + w, y - vy + h, vehicle.shape)
    frame_box = clamp_box(x, y, x + w, y + h, image.shape)
    return View(plate_crop, vehicle, inside, frame_box, captured_at, sharpness(plate_crop))
