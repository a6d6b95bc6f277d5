"""Recognition off the main process: one process per core, each with its own onnxruntime sessions
(one intra-op thread each), so every core reads plates.

Each process has its own pipe and up to DEPTH jobs at a time (the image region to search). Results come
back tagged with the job's id; the worker merges them per camera in frame order. A process that
dies (killed, out of memory) is replaced; its job comes back as a `RecognitionFailed`. Processes
are started with "spawn": onnxruntime's threads do not survive a fork.

`InlineRecognition` is the same interface run in the calling thread (`processes = 1`, and tests
that hand the worker a recognizer function).
"""

from __future__ import annotations

import inspect
import logging
import multiprocessing as mp
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np

from worker.recognize.loader import load_recognizer

log = logging.getLogger("worker.pool")

READY = "ready"
MAX_FAILED_STARTS = 3  # processes in a row that die before their models load: give up, say why


class RecognitionFailed(Exception):
    """A job's frame could not be recognized (the recognizer raised, or its process died)."""


Result = tuple[int, Any]  # (job id, the sightings, or a RecognitionFailed)


def serve(conn: Connection, spec: str | None, reader: str | None, second_look: bool) -> None:
    """A recognition process: load the models, then answer jobs until the pipe closes."""
    import cv2

    cv2.setNumThreads(1)  # one core per process: OpenCV's own threads would fight the other processes
    recognize = with_effort(load_recognizer(spec, reader, second_look))
    conn.send(READY)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        job_id, image, quick = job
        started = time.monotonic()
        try:
            result: Any = recognize(image, quick)
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the process
            result = RecognitionFailed(f"{type(exc).__name__}: {exc}")
        conn.send((job_id, result, time.monotonic() - started))


FIRST_LOOK_S = 0.3  # a look's time before any was measured (a 720p frame on one core)
LOOK_WEIGHT = 0.1  # of each new look in the running mean

# Jobs handed to a process at once. Two (the next frame waiting in the pipe while one is read)
# measured no more looks a second at 24 cameras and staler frames (bench.traffic, 2026-12-07: 45%
# of listed vehicles alerted against 62% with one), so each process holds one.
DEPTH = 1


@dataclass
class Slot:
    process: Any
    conn: Connection
    ready: bool = False
    jobs: deque[int] = field(default_factory=deque)  # sent, not answered yet: answered in this order
    outbox: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)  # jobs for its feeder thread


def feed(conn: Connection, outbox: queue.SimpleQueue) -> None:
    """Send a process its jobs from a thread of their own: a job (megabytes of image) waits in the
    pipe until the process reads it, and the worker's loop must stay free to take results meanwhile
    (a process blocked sending its result to a loop blocked sending it a job would never return)."""
    while True:
        job = outbox.get()
        try:
            conn.send(job)
        except (OSError, ValueError):  # the process died, or its pipe was closed: `results` reports it
            return
        if job is None:
            return


class RecognitionPool:
    def __init__(self, size: int, spec: str | None = None, reader: str | None = None,
                 second_look: bool = True) -> None:
        self.size, self.args = size, (spec, reader, second_look)
        self.look_s = FIRST_LOOK_S  # running mean of one look's time in a process
        self.context = mp.get_context("spawn")
        self.failed_starts = 0
        self.slots: list[Slot] = [self._start() for _ in range(size)]

    def _start(self) -> Slot:
        parent, child = self.context.Pipe()
        process = self.context.Process(target=serve, args=(child, *self.args), name="recognition", daemon=True)
        process.start()
        child.close()
        slot = Slot(process, parent)
        threading.Thread(target=feed, args=(parent, slot.outbox), name="recognition-feed", daemon=True).start()
        return slot

    def pids(self) -> list[int]:
        return [slot.process.pid for slot in self.slots]

    def idle(self) -> int:
        """Jobs the pool can take now."""
        return sum(DEPTH - len(slot.jobs) for slot in self.slots if slot.ready)

    def busy(self) -> int:
        return sum(bool(slot.jobs) for slot in self.slots)

    def submit(self, job_id: int, image: np.ndarray, quick: bool = False) -> None:
        slot = min((s for s in self.slots if s.ready and len(s.jobs) < DEPTH), key=lambda s: len(s.jobs))
        slot.jobs.append(job_id)
        slot.outbox.put((job_id, image, quick))

    def results(self, timeout: float) -> list[Result]:
        """Finished jobs (waiting up to `timeout` for the first); replaces dead processes."""
        waiting = [s.conn for s in self.slots] + [s.process.sentinel for s in self.slots]
        wait(waiting, timeout)
        out: list[Result] = []
        for i, slot in enumerate(self.slots):
            try:
                while slot.conn.poll():
                    message = slot.conn.recv()
                    if message == READY:
                        slot.ready, self.failed_starts = True, 0
                    else:
                        slot.jobs.popleft()
                        job_id, result, seconds = message
                        self.look_s += LOOK_WEIGHT * (seconds - self.look_s)
                        out.append((job_id, result))
            except (EOFError, OSError):
                pass  # a half-written answer from a process that died: handled below
            if not slot.process.is_alive():
                out += self._replace(i)
        return out

    def _replace(self, index: int) -> list[Result]:
        slot = self.slots[index]
        slot.process.join(timeout=1)
        lost = [(job, RecognitionFailed("the recognition process died")) for job in slot.jobs]
        if not slot.ready:
            self.failed_starts += 1
            if self.failed_starts >= MAX_FAILED_STARTS:
                raise RuntimeError(f"recognition processes die before their models load (exit code "
                                   f"{slot.process.exitcode}); see the lines above")
        log.warning("recognition process %d died (exit code %s)%s; starting a new one", slot.process.pid,
                    slot.process.exitcode, " while reading a frame, which is skipped" if lost else "")
        slot.outbox.put(None)
        slot.conn.close()
        self.slots[index] = self._start()
        return lost

    def close(self) -> None:
        for slot in self.slots:
            slot.outbox.put(None)  # after the jobs already queued: the process ends once it has read them
        deadline = time.monotonic() + 5
        for slot in self.slots:
            slot.process.join(timeout=max(0.1, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
            slot.conn.close()


class InlineRecognition:
    """The pool's interface, run in the caller's thread: one job at a time."""

    size = 1

    def __init__(self, recognize: Callable[..., Sequence[Any]]) -> None:
        self.recognize = with_effort(recognize)
        self.look_s = FIRST_LOOK_S
        self.pending: deque[tuple[int, np.ndarray, bool]] = deque()

    def idle(self) -> int:
        return 0 if self.pending else 1

    def busy(self) -> int:
        return len(self.pending)

    def submit(self, job_id: int, image: np.ndarray, quick: bool = False) -> None:
        self.pending.append((job_id, image, quick))

    def results(self, timeout: float) -> list[Result]:
        if not self.pending:
            time.sleep(min(timeout, 0.01))
            return []
        job_id, image, quick = self.pending.popleft()
        started = time.monotonic()
        try:
            result = self.recognize(image, quick)
            self.look_s += LOOK_WEIGHT * (time.monotonic() - started - self.look_s)
            return [(job_id, result)]
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the camera
            log.debug("recognition failed", exc_info=True)
            return [(job_id, RecognitionFailed(f"{type(exc).__name__}: {exc}"))]

    def close(self) -> None:
        pass


def with_effort(recognize: Callable[..., Sequence[Any]]) -> Callable[[np.ndarray, bool], Sequence[Any]]:
    """`recognize(image, quick)`: recognizers that offer a quick look (a coarser search, for an
    overloaded box) take `quick`; others (stand-ins in tests) always look their one way."""
    try:
        takes_quick = "quick" in inspect.signature(recognize).parameters
    except (TypeError, ValueError):  # a builtin or C callable: no signature to read
        takes_quick = False
    if takes_quick:
        return lambda image, quick: recognize(image, quick=quick)
    return lambda image, quick: recognize(image)


def default_processes() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
