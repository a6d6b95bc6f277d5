"""Which frame gets the next look: the worker's recognition processes are few, frames are many.

Cameras with a vehicle not yet read come first, camera by camera in turn, each camera's newest
frame; cameras whose vehicles are all read keep only their newest frame and are looked at now and
then (a new vehicle may have arrived). When the cameras waiting for a look, taken in turn, would
each wait too long, looks are scarce: they become quick ones, and a vehicle that has only just come
into view waits while an older one, about to leave, gets the look.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

from worker.capture.camera import CaptureThread, Frame
from worker.track import Tracker

SETTLED_LOOK_S = 0.5  # a camera whose vehicles are all read is looked at this often (new arrivals)
# An unread vehicle should get a look at least this often (it is in view for a couple of seconds).
# When the cameras with unread vehicles, taken in turn, would wait longer, looks are quick ones.
LOOK_CYCLE_S = 0.6
# While looks are scarce, a vehicle that came into view less than this share of its camera's usual
# time in view ago waits for its first look while an older one needs reading: a far plate reads
# worst, and a look spent there is one the older vehicle, about to leave, does not get. Quick looks
# at the 2-s approaches of openalpr-us's photos (2026-12-07): frames 2-4 read 62-71% right and
# 4-8% confidently wrong, frames 14-18 74-78% and 4%. bench.traffic, 24 cameras, listed vehicles
# that alerted: 73.0% without the wait (7 runs), 72.4% waiting 0.6 s (2), 75.1% waiting 1.0 s (4),
# 75.2% waiting half the time in view (7), 72.8% two thirds of it (2). Half the time in view, not
# a fixed wait: at a camera whose vehicles pass in a second, a 1-s wait would hold back every
# first look.
FIRST_LOOK_SHARE = 0.5
FIRST_LOOK_DEFAULT_S = 0.6  # until the camera has seen a few vehicles come and go
FIRST_LOOK_MAX_S = 1.5  # a camera whose scenes move for long (a queue at a light) waits no longer


class LookScheduler:
    def __init__(self, captures: Mapping[str, CaptureThread], trackers: Mapping[str, Tracker],
                 budgeted: Collection[str]) -> None:
        # Budgeted cameras (streams, video files) show each vehicle for many frames: once it is
        # read, most of them are skipped. Snapshots and folders: every frame is read.
        self.captures, self.trackers, self.budgeted = captures, trackers, budgeted
        self.held: dict[str, Frame] = {}  # the newest frame of a camera whose vehicles are all read
        self.last_look: dict[str, float] = {}
        self.turn = 0  # round-robin start: every camera gets its share

    def scarce(self, look_s: float, processes: int) -> bool:
        """Would the cameras with unread vehicles, looked at in turn, each wait over LOOK_CYCLE_S?"""
        unread = sum(1 for name, capture in self.captures.items()
                     if (len(capture.queue) or name in self.held) and self.trackers[name].needs_reading())
        return unread * look_s / processes > LOOK_CYCLE_S

    def hold_newest(self) -> None:
        """Cameras whose vehicles are all read: keep only their newest frame, and only until the
        scene comes to rest after it (what moved in it has gone); the rest are skipped."""
        for name in self.budgeted:
            capture = self.captures[name]
            if not self.trackers[name].needs_reading():
                frame, skipped = capture.queue.newest()
                if frame is not None:
                    skipped += name in self.held
                    self.held[name] = frame
                capture.stats.skipped += skipped
            held = self.held.get(name)
            if held is not None and held.t < capture.rest_t:
                del self.held[name]
                capture.stats.skipped += 1
            capture.frame_waiting = name in self.held

    def next_frame(self, scarce: bool = False, in_flight: Collection[str] = ()) -> Frame | None:
        """Vehicles not yet read come first, camera by camera in turn (when looks are scarce,
        those in view for a while before those just arrived); then a look at cameras whose
        vehicles are all read and none of whose frames is being read (`in_flight`)."""
        names = list(self.captures)
        names = names[self.turn:] + names[:self.turn]
        unread = [name for name in names if name not in self.budgeted or self.trackers[name].needs_reading()]
        if scarce:
            unread.sort(key=self.just_arrived)  # stable: in turn within each group
        for name in unread:
            held = self.held.pop(name, None)  # older than any frame queued since
            frame = self.take(name) or held
            self.captures[name].stats.skipped += held is not None and frame is not held
            self.captures[name].frame_waiting = False
            if frame is not None:
                self.turn = (names.index(name) + self.turn + 1) % len(names)
                return frame
        for name in names:
            frame = self.held.get(name)
            due = frame is not None and (frame.t - self.last_look.get(name, -math.inf) >= SETTLED_LOOK_S
                                         or self.captures[name].finished)  # nothing newer will come
            if due and name not in in_flight:
                del self.held[name]
                self.captures[name].frame_waiting = False
                self.last_look[name] = frame.t
                return frame
        return None

    def just_arrived(self, name: str) -> bool:
        """Did this camera's scene start moving less than FIRST_LOOK_SHARE of its usual time in
        view ago?"""
        capture = self.captures[name]
        dwell = capture.usual_dwell_s
        wait = FIRST_LOOK_DEFAULT_S if dwell is None else min(FIRST_LOOK_SHARE * dwell, FIRST_LOOK_MAX_S)
        return name in self.budgeted and capture.clock() - capture.moving_since < wait

    def take(self, name: str) -> Frame | None:
        """A live camera's newest frame (its vehicles nearer, its plates bigger; the older ones are
        skipped). The oldest frame of footage or snapshots, where every frame is wanted in turn."""
        capture = self.captures[name]
        if name not in self.budgeted or capture.source.lossless:
            return capture.queue.get_nowait()
        since = capture.queue.since
        frame, skipped = capture.queue.newest()
        capture.stats.skipped += skipped
        if frame is not None and since is not None:  # it stands for every frame skipped for it
            frame.queued_at = min(frame.queued_at, since)
        return frame
