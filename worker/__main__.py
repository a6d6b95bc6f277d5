"""The worker process: `python -m worker --config FILE` (also `platewatch worker --config FILE`).

One capture thread per camera, a pool of recognition processes (one per core), one sender thread
that delivers the spool, one heartbeat thread. This process hands the processes the frames
worker.schedule picks, applies their results in frame order per camera, and posts each vehicle's
read. A bad frame or a recognizer exception is logged and skipped.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from worker.capture.camera import CaptureThread, Frame
from worker.config import Config, ConfigError, load_config
from worker.capture.load import LoadWatch
from worker.recognize.regions import intersect, region_for_net
from worker.recognize.loader import RecognizeFn, load_recognizer
from worker.recognize.pool import InlineRecognition, RecognitionFailed, RecognitionPool, default_processes
from worker.post import HeartbeatThread, Sender, Spool, SpoolBusy, to_read_in
from worker.schedule import LookScheduler
from worker import snapshot_api
from worker.track import Tracker, VehicleRead

log = logging.getLogger("worker")


def raise_roi_outside(roi: Sequence[int], image: np.ndarray) -> None:
    raise ValueError(f"roi {list(roi)} lies outside the {image.shape[1]}x{image.shape[0]} frame")


@dataclass
class Job:
    frame: Frame
    seq: int  # per camera: results are applied in this order
    offset: tuple[int, int]  # of the searched region in the frame
    quick: bool = False  # looks were scarce: a coarser search, and one sure read may settle a vehicle
    submitted_at: float = dataclasses.field(default_factory=time.monotonic)


class Worker:
    def __init__(self, config: Config, recognize: RecognizeFn | RecognitionPool, *, exit_when_done: bool = False,
                 drain_s: float = 5.0) -> None:
        self.config = config
        self.recognition = recognize if isinstance(recognize, RecognitionPool) else InlineRecognition(recognize)
        self.exit_when_done, self.drain_s = exit_when_done, drain_s
        self.stop = threading.Event()  # set by signals (or a test) to shut down
        self.wake = threading.Event()  # set by the capture threads when a frame is queued
        self.captures = {c.name: CaptureThread(c, self.stop, self.wake, config.max_backoff_s) for c in config.cameras}
        self.rois = {c.name: c.roi for c in config.cameras if c.roi is not None}
        rec = config.recognition
        self.trackers = {
            c.name: Tracker(c.name, timeout_s=rec.track_timeout_s, min_frames=config.min_frames(c),
                            min_confidence=rec.min_confidence, max_edit=rec.max_edit)
            for c in config.cameras
        }
        self.loads = {name: LoadWatch(name, capture.stats) for name, capture in self.captures.items()}
        self.jobs: dict[int, Job] = {}
        self.job_ids = itertools.count()
        self.seqs = {name: itertools.count() for name in self.captures}
        self.next_seq = dict.fromkeys(self.captures, 0)
        self.done: dict[str, dict[int, tuple[Job, Any]]] = {name: {} for name in self.captures}
        budgeted = {c.name for c in config.cameras if c.kind in ("stream", "file")}
        self.looks = LookScheduler(self.captures, self.trackers, budgeted)
        self.spool = Spool(config.spool)
        self.sender = Sender(self.spool, config.server, config.camera_tokens().get, timeout_s=config.send_timeout_s,
                             max_backoff_s=config.max_backoff_s)
        self.heartbeat = HeartbeatThread(
            config.server, {c.name: (c.token, self.captures[c.name].stats) for c in config.cameras},
            interval_s=config.heartbeat_s)
        # The snapshot APIs ([snapshot_api], issue 20): wraps self.recognition so that callers'
        # images are read first, by the same processes; their reads go into self.spool.
        self.snapshot_api = snapshot_api.attach(self)

    def run(self) -> int:
        pending = len(self.spool)
        log.info("worker starting: %d camera(s), server %s, %d read(s) in the spool",
                 len(self.captures), self.config.server, pending)
        for thread in (self.sender, self.heartbeat, *self.captures.values()):
            thread.start()
        if self.snapshot_api is not None:
            self.snapshot_api.start()
        next_summary = next_load = time.monotonic()
        try:
            while not self.stop.is_set():
                self.wake.clear()  # before looking: a frame queued after this wakes the wait
                busy = self.step()
                if self.exit_when_done and self.all_done():
                    log.info("all sources have ended")
                    break
                if time.monotonic() >= next_load:
                    self.watch_load()
                    next_load = time.monotonic() + 1.0
                if time.monotonic() >= next_summary:
                    self.log_summary()
                    next_summary = time.monotonic() + 60
                if not busy:
                    self.wake.wait(0.1)
        finally:
            self.shutdown()
        return 0

    def step(self) -> bool:
        """Fill idle recognizers, apply what they finished, end tracks. False if nothing was to do."""
        self.dispatch()
        busy = bool(self.jobs)
        for job_id, result in self.recognition.results(0.05 if busy else 0.0):  # also: processes ready, dead
            self.finish(self.jobs.pop(job_id), result)
        self.expire_tracks()
        return busy

    def dispatch(self) -> None:
        self.looks.hold_newest()
        quick = self.looks.scarce(self.recognition.look_s, self.recognition.size)
        while self.recognition.idle():
            frame = self.looks.next_frame(quick, {job.frame.camera for job in self.jobs.values()})
            if frame is None:
                return
            self.submit(frame, quick)

    def submit(self, frame: Frame, quick: bool = False) -> None:
        if frame.image is None:  # decoded only now: a corrupt JPEG from the camera
            self.captures[frame.camera].stats.errors += 1
            return
        try:
            region = self.search_region(frame)
        except ValueError as exc:  # an roi outside this frame: the config is wrong, say so, keep going
            log.warning("camera %s: %s; frame %s skipped", frame.camera, exc, frame.origin)
            return
        if region is None:
            self.captures[frame.camera].stats.skipped += 1
            return
        # Grown to a few sizes: the detector (OpenVINO above all) keeps work per input shape.
        x, y, w, h = region_for_net(region, frame.image.shape, within=self.rois.get(frame.camera))
        job_id = next(self.job_ids)
        self.jobs[job_id] = Job(frame, next(self.seqs[frame.camera]), (x, y), quick)
        stats = self.captures[frame.camera].stats
        stats.looked += 1
        stats.quick_looks += quick
        self.recognition.submit(job_id, np.ascontiguousarray(frame.image[y:y + h, x:x + w]), quick)

    def search_region(self, frame: Frame) -> tuple[int, int, int, int] | None:
        """Where to look: around the plate being followed, else where the frame changed; inside
        the camera's roi. None: nothing to look at."""
        height, width = frame.image.shape[:2]
        region = (0, 0, width, height)
        roi = self.rois.get(frame.camera)
        if roi is not None:
            region = intersect(region, tuple(roi))
            if region is None:
                raise_roi_outside(roi, frame.image)
        if frame.camera in self.looks.budgeted:
            focus = self.trackers[frame.camera].follow_window(frame.image.shape) or frame.region
            if focus is not None:
                return intersect(region, focus)
        return region

    def finish(self, job: Job, result: Any) -> None:
        """Apply results camera by camera in frame order (processes finish out of order)."""
        name = job.frame.camera
        self.done[name][job.seq] = (job, result)
        while self.next_seq[name] in self.done[name]:
            self.apply(*self.done[name].pop(self.next_seq[name]))
            self.next_seq[name] += 1

    def apply(self, job: Job, result: Any) -> None:
        frame, stats = job.frame, self.captures[job.frame.camera].stats
        stats.lag_s = time.monotonic() - frame.queued_at
        if isinstance(result, RecognitionFailed):
            log.warning("camera %s: recognition failed on %s (%s); skipped", frame.camera, frame.origin, result)
            return
        ox, oy = job.offset
        sightings = [dataclasses.replace(s, box=(s.box[0] + ox, s.box[1] + oy, s.box[2], s.box[3])) for s in result]
        tracker = self.trackers[frame.camera]
        log.debug("camera %s: %s look at %s (captured %.3f) took %.0f ms: %s", frame.camera,
                  "quick" if job.quick else "full", frame.origin, frame.captured_at.timestamp(),
                  1000 * (time.monotonic() - job.submitted_at),
                  ", ".join(f"{s.text} {s.confidence:.2f}" for s in sightings) or "nothing")
        self.emit(tracker.observe(sightings, frame.image, frame.t, frame.captured_at, scarce=job.quick))
        self.emit(tracker.settled())  # hits first: post while the vehicle is still in view
        stats.vehicles_seen = tracker.opened

    def expire_tracks(self) -> None:
        """End tracks unseen for a while, on each camera's clock, but never ahead of a frame
        still waiting for recognition (its vehicle may be one of them)."""
        waiting: dict[str, float] = {}
        for frame in [job.frame for job in self.jobs.values()] + list(self.looks.held.values()):
            waiting[frame.camera] = min(waiting.get(frame.camera, math.inf), frame.t)
        for name, capture in self.captures.items():
            now = capture.clock()  # read before the queue: frames queued later are newer
            oldest = capture.queue.oldest()
            now = min(now, waiting.get(name, math.inf), oldest.t if oldest is not None else math.inf)
            self.emit(self.trackers[name].expire(now))
            if capture.rest_t <= now:  # no frame from before the scene came to rest is still waiting
                self.emit(self.trackers[name].end_read_before(capture.rest_t))

    def watch_load(self) -> None:
        if not (self.recognition.idle() or self.recognition.busy()):
            return  # the recognition processes are still loading their models
        now = time.monotonic()
        for name, watch in self.loads.items():
            waiting_since = self.captures[name].queue.since
            watch.update(now, waiting_since if name not in self.looks.held else None)

    def emit(self, reads: list[VehicleRead]) -> None:
        for read in reads:
            try:
                wire, images = to_read_in(read)
                self.spool.put(read.camera, wire, images)
            except Exception:  # a full disk, an odd crop: log it, keep reading plates
                log.exception("camera %s: could not spool read %s", read.camera, read.plate)
                continue
            stats = self.captures[read.camera].stats
            stats.last_read_at = datetime.now(UTC)
            stats.vehicles_read += read.revision == 0
            log.info("camera %s: read %s (confidence %.2f, %d frames, colour %s) spooled as %s%s",
                     read.camera, wire.plate, wire.confidence, read.frames, wire.color, wire.id,
                     f", revision {read.revision}" if read.revision else "")
            # The server matches the hot list on these too: what a surprising alert matched.
            log.debug("camera %s: %s's candidates: %s", read.camera, wire.id,
                      ", ".join(f"{c.plate} {c.confidence:.2f}" for c in wire.candidates) or "none")

    def all_done(self) -> bool:
        return all(c.finished and not len(c.queue) for c in self.captures.values()) and not any(
            t.tracks for t in self.trackers.values()) and not self.jobs and not self.looks.held

    def shutdown(self) -> None:
        """Stop capture, post what the open tracks saw, give the sender a moment, stop."""
        self.stop.set()
        for capture in self.captures.values():
            capture.join(timeout=5)
        deadline = time.monotonic() + self.drain_s
        while self.jobs and time.monotonic() < deadline:  # frames being read: finish them
            for job_id, result in self.recognition.results(0.1):
                self.finish(self.jobs.pop(job_id), result)
        self.recognition.close()
        for tracker in self.trackers.values():
            self.emit(tracker.flush())
        deadline = time.monotonic() + self.drain_s
        while len(self.spool) and time.monotonic() < deadline and self.sender.is_alive():
            time.sleep(0.05)
        left = len(self.spool)
        self.sender.stop.set()
        self.spool.wake.set()  # the sender may be waiting for new reads
        self.heartbeat.stop.set()
        self.sender.join(timeout=self.config.send_timeout_s)
        self.spool.close()
        self.log_summary()
        log.info("worker stopped; %d read(s) left in the spool for the next start", left)

    def log_summary(self) -> None:
        for name, capture in self.captures.items():
            s, dwell = capture.stats, capture.usual_dwell_s
            log.info("camera %s: %.1f frames/s, %d frames, %d without motion, %d dropped, %d skipped (vehicle "
                     "already read), %d errors, %d searched (%d quickly); %d of %d vehicles read; motion lasts %s",
                     name, s.frames_per_s(), s.frames, s.gated, s.dropped, s.skipped, s.errors, s.looked,
                     s.quick_looks, s.vehicles_read, s.vehicles_seen, "?" if dwell is None else f"{dwell:.1f} s")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m worker", description="Platewatch camera worker")
    parser.add_argument("--config", type=Path, default=Path("worker.toml"), help="worker TOML config")
    parser.add_argument("--exit-when-done", action="store_true",
                        help="stop when every source has ended (video files), after delivering what it can")
    parser.add_argument("--drain-s", type=float, default=5.0, help="at shutdown, wait this long for the spool to empty")
    parser.add_argument("--recognizer", default=None, metavar="MODULE:FACTORY",
                        help="plate recognizer to use (default worker.recognize.read:Recognizer); its "
                             "recognize(frame) returns worker.track.Sighting objects")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def install_signal_handlers(worker: Worker) -> None:
    def handle(signum, _frame) -> None:
        if worker.stop.is_set():
            raise SystemExit(1)  # a second signal: stop waiting
        log.info("%s: shutting down", signal.Signals(signum).name)
        worker.stop.set()
        worker.wake.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def main(argv: Sequence[str] | None = None, recognize: RecognizeFn | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the rest
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return 2
    if not config.cameras and config.snapshot_api is None:
        print(f"worker: {args.config}: no [[cameras]] (or [snapshot_api]) configured", file=sys.stderr)
        return 2
    rec = config.recognition
    processes = rec.processes or default_processes()
    try:
        if recognize is None and processes > 1:
            recognize = RecognitionPool(processes, args.recognizer, rec.reader, rec.second_look)
        recognize = recognize or load_recognizer(args.recognizer, rec.reader, rec.second_look)
        worker = Worker(config, recognize, exit_when_done=args.exit_when_done, drain_s=args.drain_s)
    except (SpoolBusy, OSError) as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return 2
    if threading.current_thread() is threading.main_thread():
        install_signal_handlers(worker)
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
