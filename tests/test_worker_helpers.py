"""Shared pieces of the worker tests (no tests here): the recognizer, configs, DB look-ups, a
loopback HTTP proxy that can hold the server's answer back (a worker killed mid-send), and a
loopback IP camera (MJPEG stream and snapshot URL)."""

from __future__ import annotations

import functools
import http.server
import sqlite3
import threading
import time
from pathlib import Path

import cv2
import httpx
import numpy as np

RECOGNIZER_SPEC = "worker.recognize.read:Recognizer"  # the real model; tests use no stand-in


@functools.lru_cache(maxsize=1)
def recognizer():
    """One loaded recognizer for the in-process tests (loading the models takes a while)."""
    from worker.recognize.loader import load_recognizer

    return load_recognizer(RECOGNIZER_SPEC)


def camera_toml(name: str, token: str, kind: str, location: str, **extra) -> str:
    lines = ["[[cameras]]", f'name = "{name}"', f'token = "{token}"', f'kind = "{kind}"', f'location = "{location}"']
    for key, value in extra.items():
        lines.append(f"{key} = {str(value).lower() if isinstance(value, bool) else repr(value)}")
    return "\n".join(lines) + "\n"


def write_config(path: Path, server: str, cameras: str, **top) -> Path:
    head = [f'server = "{server}"', 'spool = "spool"', "heartbeat_s = 1.0", "max_backoff_s = 1.0",
            "send_timeout_s = 10.0", *(f"{k} = {v!r}" for k, v in top.items()),
            "[recognition]", "min_confidence = 0.5", "min_frames = 2", "track_timeout_s = 0.8"]
    path.write_text("\n".join(head) + "\n" + cameras)
    return path


def stored_reads(db_path: Path) -> list[tuple[str, str, str | None]]:
    """(uuid, plate, colour) of every read the server stored."""
    with sqlite3.connect(db_path) as db:
        return db.execute("SELECT uuid, plate, color FROM reads ORDER BY id").fetchall()


def serve_loopback(handler: type[http.server.BaseHTTPRequestHandler]) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A threaded HTTP server on a free loopback port, serving in the background; (server, base URL)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class HoldingProxy:
    """Forwards requests to the real server; while `hold` is set it forwards the read (so the
    server stores it) but never answers, like a connection that dies mid-send."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.hold = threading.Event()
        self.held = threading.Event()  # a request was stored by the server and not answered
        self.release = threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                resp = httpx.post(proxy.target + self.path, content=body, headers=headers, timeout=30)
                if proxy.hold.is_set() and self.path.startswith("/api/v1/reads"):
                    proxy.held.set()
                    proxy.release.wait(60)
                    return
                self.send_response(resp.status_code)
                self.send_header("Content-Type", resp.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class FakeCamera:
    """An IP camera on loopback: an MJPEG stream at /stream that hangs up after
    `frames_per_connection` frames, and a snapshot URL at /snap.jpg that fails `fail_first` times."""

    def __init__(self, frames_per_connection: int = 5, fail_first: int = 0, corrupt: set[int] = frozenset()) -> None:
        self.connections = self.snapshots = 0
        self.frames_per_connection, self.fail_first = frames_per_connection, fail_first
        self.corrupt = corrupt  # these frames (counted from 1) are sent as garbage after a JPEG start
        camera = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/stream":
                    camera.connections += 1
                    self.send_response(200)
                    self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                    self.end_headers()
                    for _ in range(camera.frames_per_connection):
                        jpg = camera.jpeg()
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                         % (len(jpg), jpg))
                        time.sleep(0.05)
                    return  # hang up: the stream "drops"
                camera.snapshots += 1
                body = camera.jpeg() if camera.snapshots > camera.fail_first else b"busy"
                self.send_response(200 if camera.snapshots > camera.fail_first else 503)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.counter = 0
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def jpeg(self) -> bytes:
        """A frame with a bright block that moves, so the motion gate lets it through."""
        self.counter += 1
        if self.counter in self.corrupt:
            return b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8
        frame = np.full((240, 320, 3), 90, np.uint8)
        x = (self.counter * 40) % 280
        frame[80:160, x:x + 40] = 230
        return cv2.imencode(".jpg", frame)[1].tobytes()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
