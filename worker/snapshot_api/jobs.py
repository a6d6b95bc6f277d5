"""The worker's recognition, shared with the snapshot API.

The HTTP server's threads never recognise: they hand an image to `SharedRecognition.ask` and
wait on the future it returns. The worker's own loop, which alone drives the recognition pool,
submits those images before any camera frame (a caller is waiting on the answer) whenever it
asks how many processes are idle, and resolves the futures when their results come back. Their
job ids are negative, apart from the worker's own, which count up from 0.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from concurrent.futures import Future
from typing import Any

import numpy as np

from worker.recognize.pool import InlineRecognition, RecognitionFailed, RecognitionPool, Result

MAX_WAITING = 8  # images queued for recognition; more callers are told to come back (503)
POLL_S = 0.05  # how long the loop waits on the pool while only API images are being read


class Busy(RuntimeError):
    """Too many images are waiting, or the worker is shutting down."""


class SharedRecognition:
    """The pool's interface (what `worker.__main__.Worker` calls), plus `ask` for other threads."""

    def __init__(self, inner: RecognitionPool | InlineRecognition, wake: threading.Event) -> None:
        self.inner, self.wake = inner, wake
        self.size = inner.size
        self.lock = threading.Lock()
        self.waiting: deque[tuple[int, np.ndarray, Future]] = deque()
        self.running: dict[int, Future] = {}
        self.ids = itertools.count(-1, -1)
        self.closed = False

    def ask(self, image: np.ndarray) -> Future:
        """Called from any thread: the future gets the image's sightings, or a RecognitionFailed."""
        future: Future = Future()
        with self.lock:
            if self.closed:
                raise Busy("the worker is shutting down")
            if len(self.waiting) >= MAX_WAITING:
                raise Busy(f"{MAX_WAITING} images are already waiting for recognition")
            self.waiting.append((next(self.ids), image, future))
        self.wake.set()  # the worker's loop may be idle, waiting for frames
        return future

    def idle(self) -> int:
        """Hand waiting API images to idle processes first, then say how many are left idle."""
        while self.inner.idle():
            with self.lock:
                if not self.waiting:
                    break
                job_id, image, future = self.waiting.popleft()
            if future.set_running_or_notify_cancel():  # False: the caller gave up waiting
                self.running[job_id] = future
                self.inner.submit(job_id, image)
        return self.inner.idle()

    def busy(self) -> int:
        return self.inner.busy()

    @property
    def look_s(self) -> float:
        """The pool's running mean of one look (the worker's scheduler reads it)."""
        return self.inner.look_s

    def submit(self, job_id: int, image: np.ndarray, quick: bool = False) -> None:
        self.inner.submit(job_id, image, quick)

    def results(self, timeout: float) -> list[Result]:
        """The worker's results; API results go to their futures instead."""
        if self.running:
            timeout = max(timeout, POLL_S)  # a caller is waiting: do not leave it to the loop's idle wait
        out = []
        for job_id, result in self.inner.results(timeout):
            future = self.running.pop(job_id, None)
            if future is None:
                out.append((job_id, result))
            else:
                future.set_result(result)
        return out

    def close(self) -> None:
        """Refuse new images and fail the waiting ones, then close the pool."""
        with self.lock:
            self.closed = True
            left = [future for _, _, future in self.waiting if future.set_running_or_notify_cancel()]
            left += self.running.values()
            self.waiting.clear()
            self.running.clear()
        for future in left:
            future.set_result(RecognitionFailed("the worker is shutting down"))
        self.inner.close()


def sightings_of(result: Any) -> list[Any]:
    """A result as sightings; a failed one raises its RecognitionFailed."""
    if isinstance(result, RecognitionFailed):
        raise result
    return list(result)
