"""Shared fixtures: a real temporary SQLite, the real app served by uvicorn on loopback,
the real CLI, and a real push service that verifies and decrypts what the server sends."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn

from platewatch.cli import main as cli
from server.app import create_app
from server.settings import Settings, load_settings

pytest_plugins = ["tests.browser"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen | None, timeout: float = 10) -> None:
    """End a fixture's child process (Caddy, Mosquitto): terminate, and kill it if it lingers."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class LiveServer:
    """The real app under uvicorn in a background thread, on a free loopback port."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = f"http://127.0.0.1:{settings.port}"
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.port, log_level="warning",
                                server_header=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> "LiveServer":
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=20)


def make_settings(data_dir: Path, **overrides) -> Settings:
    port = overrides.pop("port", None) or free_port()
    overrides.setdefault("push_allow_http", True)  # the test push service is plain http on loopback
    return load_settings(data_dir, env={}, port=port, **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def live(settings: Settings) -> Iterator[LiveServer]:
    server = LiveServer(settings).start()
    yield server
    server.stop()


def run_cli(settings: Settings, *args: str, stdin: str | None = None, capsys=None) -> int:
    """Run the real `platewatch` command in-process against the test data dir."""
    import io
    import sys

    old_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        # A thread of its own: the CLI calls asyncio.run, which refuses to nest in a running loop.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(cli, [*args, "--data", str(settings.data_dir)]).result() or 0
    finally:
        sys.stdin = old_stdin


def backdate(settings: Settings, read_id: int, captured_at: datetime) -> None:
    """Age a stored read to `captured_at`, as time passing would. Ingest refuses a capture time
    older than the retention period, so a test that needs a read the purge has not reached yet
    posts it fresh and moves it back here: its time, its alerts' seen_at, and its images into that
    UTC day's folder, as ingest names them (an old database holds exactly this)."""
    at, day = int(captured_at.timestamp() * 1000), captured_at.astimezone(UTC).strftime("%Y-%m-%d")
    with closing(sqlite3.connect(settings.db_path)) as conn, conn:
        images = conn.execute("SELECT plate_image, vehicle_image FROM reads WHERE id = ?", (read_id,)).fetchone()
        moved = []
        for rel in images:
            if rel:
                old, new = settings.data_dir / rel, f"images/{day}/{Path(rel).name}"
                (settings.data_dir / new).parent.mkdir(parents=True, exist_ok=True)
                old.replace(settings.data_dir / new)
                moved.append(new)
                if not any(old.parent.iterdir()):
                    old.parent.rmdir()
            else:
                moved.append(None)
        conn.execute("UPDATE reads SET captured_at = ?, plate_image = ?, vehicle_image = ? WHERE id = ?",
                     (at, *moved, read_id))
        conn.execute("UPDATE alerts SET seen_at = ? WHERE read_id = ?", (at, read_id))


class Department:
    """A set-up department: an officer, a camera, and an API client for each."""

    def __init__(self, live: LiveServer, capsys) -> None:
        self.live, self.settings = live, live.settings
        run_cli(self.settings, "user", "add", "alice", "--role", "officer", "--password-stdin", stdin="correct horse\n")
        capsys.readouterr()
        run_cli(self.settings, "camera", "add", "main-st")
        self.camera_token = capsys.readouterr().out.strip().splitlines()[-1]
        self.http = httpx.Client(base_url=live.url, timeout=10)
        token = self.http.post("/api/v1/auth/token", json={"username": "alice", "password": "correct horse"})
        token.raise_for_status()
        self.user_headers = {"Authorization": f"Bearer {token.json()['token']}"}
        self.camera_headers = {"Authorization": f"Bearer {self.camera_token}"}

    def hotlist(self, tmp_path: Path, name: str, csv_text: str, *extra: str) -> int:
        path = tmp_path / f"{name}.csv"
        path.write_text(csv_text)
        return run_cli(self.settings, "hotlist", "import", str(path), "--list", name, *extra)

    def post_read(self, plate: str, *, candidates=(), read_id: str | None = None, **fields) -> httpx.Response:
        body = {
            "id": read_id or str(uuid.uuid4()), "plate": plate, "confidence": 0.9,
            "candidates": [{"plate": p, "confidence": c} for p, c in candidates],
            "captured_at": fields.pop("captured_at", datetime.now(UTC).isoformat()), **fields,
        }
        return self.http.post("/api/v1/reads", json=body, headers=self.camera_headers)

    def post_aged_read(self, plate: str, captured_at: datetime, **fields) -> int:
        """A read stored fresh and aged to `captured_at` (see `backdate`); its id."""
        resp = self.post_read(plate, **fields)
        assert resp.status_code == 201, resp.text
        backdate(self.settings, resp.json()["id"], captured_at)
        return resp.json()["id"]

    def subscribe(self, subscription: dict) -> None:
        resp = self.http.post("/api/v1/push/subscriptions", json=subscription, headers=self.user_headers)
        assert resp.status_code == 201, resp.text

    def go_on_duty(self, headers: dict | None = None) -> int:
        """Put an officer (alice by default) on duty as an API client does; web push pages only
        officers on duty. When the shift ends, epoch ms."""
        resp = self.http.post("/api/v1/duty", json={"on": True}, headers=headers or self.user_headers)
        assert resp.status_code == 200, resp.text
        return int(datetime.fromisoformat(resp.json()["on_duty_until"]).timestamp() * 1000)

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def dept(live: LiveServer, capsys) -> Iterator[Department]:
    department = Department(live, capsys)
    yield department
    department.close()


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def run(coro):
    return asyncio.run(coro)
