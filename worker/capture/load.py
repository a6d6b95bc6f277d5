"""Is a camera overloaded? Frames it loses before recognition, and how far recognition runs behind.

One clear warning when a camera becomes overloaded and one when it recovers, never one per frame.
"""

from __future__ import annotations

import logging
from collections import deque

from worker.capture.camera import CameraStats

log = logging.getLogger("worker")

WINDOW_S = 10.0  # judged over this much recent time
MAX_DROPPED = 3  # frames lost in the window before a camera counts as overloaded
MAX_LAG_S = 2.0  # a vehicle waiting this long for a look: its hit would reach the phones late


class LoadWatch:
    def __init__(self, camera: str, stats: CameraStats) -> None:
        self.camera, self.stats = camera, stats
        self._dropped: deque[tuple[float, int]] = deque()  # (time, stats.dropped then)

    def update(self, now: float, waiting_since: float | None) -> bool:
        """`waiting_since`: when the oldest frame still waiting for recognition was queued."""
        stats = self.stats
        self._dropped.append((now, stats.dropped))
        while self._dropped and self._dropped[0][0] < now - WINDOW_S:
            self._dropped.popleft()
        dropped = stats.dropped - self._dropped[0][1]
        lag = max(stats.lag_s, now - waiting_since) if waiting_since is not None else stats.lag_s
        overloaded = dropped >= MAX_DROPPED or lag > MAX_LAG_S
        if overloaded and not stats.overloaded:
            log.warning("camera %s is overloaded: %d frames dropped in the last %.0f s, recognition %.1f s behind; "
                        "vehicles may pass unread (more [recognition] processes, a lower fps_cap or an roi help)",
                        self.camera, dropped, WINDOW_S, lag)
        elif stats.overloaded and not overloaded:
            log.warning("camera %s has recovered: recognition keeps up again", self.camera)
        stats.overloaded = overloaded
        return overloaded
