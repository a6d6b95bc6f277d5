"""Recognition for other systems (issue 20): the worker answers the Plate Recognizer Snapshot API
and CodeProject.AI's ALPR API on `[snapshot_api] listen`, so NVRs, Blue Iris and home-automation
tools that already call one of them can call us.

The worker's hook is `attach(worker)`: it shares the worker's recognition with the API (API
images go first) and spools the callers' reads in the worker's spool, posted by its sender.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worker.__main__ import Worker
    from worker.snapshot_api.app import SnapshotApiServer


def attach(worker: Worker) -> SnapshotApiServer | None:
    """Bind the API's address and route its images through the worker's recognition; None when
    the config has no [snapshot_api]. The server starts serving with `.start()`."""
    config = worker.config
    if config.snapshot_api is None:
        return None
    # Imported only here: a worker without the API does not load the web framework.
    from worker.snapshot_api.app import SnapshotApiServer
    from worker.snapshot_api.jobs import SharedRecognition
    from worker.snapshot_api.service import SnapshotService

    worker.recognition = SharedRecognition(worker.recognition, worker.wake)
    service = SnapshotService(config.snapshot_api, config.camera_tokens(), worker.recognition, worker.spool,
                              config.recognition.min_confidence)
    return SnapshotApiServer(service, worker.stop)
