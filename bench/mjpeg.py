"""Live MJPEG cameras on loopback, as IP cameras serve them: `GET /cam/<n>` (n from 1) answers
multipart/x-mixed-replace JPEG frames in real time at the footage's frame rate.

All cameras share one clock: frame k of the traffic goes out at start + k / fps whoever is
watching, and a client that reads too slowly misses frames (counted), as with a real camera.
Before `start` and after the traffic every camera shows its empty street.
"""

from __future__ import annotations

import math
import re
import socket
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.footage import FPS, Feed

BOUNDARY = "frame"


class MjpegCameras:
    def __init__(self, feeds: Sequence[Feed], fps: float = FPS) -> None:
        self.feeds, self.fps = list(feeds), fps
        self.started_at: float | None = None  # time.monotonic() of traffic frame 0
        self.stopped = threading.Event()
        self.clients = [0] * len(self.feeds)
        self._changed = threading.Condition()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.cameras = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self) -> MjpegCameras:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/cam/{index + 1}"

    def wait_connected(self, timeout: float) -> bool:
        """True once every camera has a client (the worker has opened them all)."""
        with self._changed:
            return self._changed.wait_for(lambda: all(self.clients), timeout)

    def start(self, delay: float = 0.5) -> float:
        """The traffic begins `delay` seconds from now on every camera; returns that moment."""
        self.started_at = time.monotonic() + delay
        return self.started_at

    def frame_index(self, now: float) -> int:
        """The traffic frame due at `now` (-1 before the start)."""
        if self.started_at is None or now < self.started_at:
            return -1
        return math.floor((now - self.started_at) * self.fps)

    def next_due(self, k: int, now: float) -> float:
        """When to send the frame after frame k: the next tick, or the start if sooner."""
        if k < 0:
            start = self.started_at if self.started_at is not None and self.started_at > now else math.inf
            return min(start, (math.floor(now * self.fps) + 1) / self.fps)
        return self.started_at + (k + 1) / self.fps

    def stream(self, index: int, write) -> None:
        """Send camera `index`'s frames with `write` until the client leaves or we stop."""
        feed = self.feeds[index]
        with self._changed:
            self.clients[index] += 1
            self._changed.notify_all()
        try:
            while not self.stopped.is_set():
                now = time.monotonic()
                k = self.frame_index(now)
                data, vehicle = feed.frame(k)
                write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                      + data + b"\r\n")
                feed.sent(k, vehicle, now)
                self.stopped.wait(max(0.0, self.next_due(k, now) - time.monotonic()))
        finally:
            with self._changed:
                self.clients[index] -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    cameras: MjpegCameras

    def handle_error(self, request, client_address) -> None:
        pass  # a client hanging up mid-frame is how a stream ends


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the stream ends when the connection closes

    def do_GET(self) -> None:
        cameras = self.server.cameras
        match = re.fullmatch(r"/cam/(\d+)", self.path)
        index = int(match[1]) - 1 if match else -1
        if not 0 <= index < len(cameras.feeds):
            self.send_error(404, "no such camera")
            return
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        # A small send buffer: a slow reader makes the camera skip frames instead of hiding
        # seconds of them in the socket.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
        try:
            cameras.stream(index, self.wfile.write)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format, *args) -> None:
        pass
