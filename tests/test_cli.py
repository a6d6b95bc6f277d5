"""The installed `platewatch` command keeps the contracts outside checks rely on."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.conftest import free_port

PLATEWATCH = Path(sys.executable).with_name("platewatch")


def pw(*args, cwd, stdin=None, env=None):
    return subprocess.run([str(PLATEWATCH), *args], cwd=cwd, input=stdin, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_commands_share_the_default_data_dir_and_serve_answers(tmp_path):
    clean = {k: v for k, v in os.environ.items() if k != "PLATEWATCH_DATA"}
    added = subprocess.run([str(PLATEWATCH), "camera", "add", "gate"], cwd=tmp_path, capture_output=True,
                           text=True, env=clean, timeout=60)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    assert token.startswith("pwc_") and (tmp_path / "data" / "platewatch.db").exists()
    user = subprocess.run([str(PLATEWATCH), "user", "add", "sgt", "--role", "supervisor", "--password-stdin"],
                          cwd=tmp_path, input="a long password\n", capture_output=True, text=True, env=clean)
    assert user.returncode == 0, user.stderr
    port = free_port()
    server = subprocess.Popen([str(PLATEWATCH), "serve", "--port", str(port)], cwd=tmp_path, env=clean,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        read = {"id": "0b7c6d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e", "plate": "7ABC123", "confidence": 0.9,
                "captured_at": datetime.now(UTC).isoformat()}  # a fixed date would age past retention
        resp = httpx.post(f"{url}/api/v1/reads", json=read, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 201  # the server found the camera the CLI made: same data dir
        login = httpx.post(f"{url}/api/v1/auth/token", json={"username": "sgt", "password": "a long password"})
        assert login.status_code == 200 and login.json()["role"] == "supervisor"
        with httpx.Client(base_url=url) as phone:  # a phone showing the live feed keeps /events open
            csrf = re.search(r'name="_csrf_token" value="([^"]+)"', phone.get("/login").text).group(1)
            signed_in = phone.post("/login", data={"username": "sgt", "password": "a long password",
                                                   "_csrf_token": csrf})
            assert signed_in.status_code == 303
            with phone.stream("GET", "/events", timeout=30) as feed:
                assert feed.status_code == 200
                stopping = time.monotonic()
                server.terminate()  # as systemd stops it for an upgrade: must not wait on the feed
                # uvicorn shuts down gracefully, then re-raises the signal so the exit status says so
                assert server.wait(timeout=20) == -signal.SIGTERM and time.monotonic() - stopping < 15
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_cli_adds_users_and_cameras_by_the_web_apps_rules(tmp_path):
    """One rule for names whoever adds them: the CLI, as the web app's forms, refuses a user or
    camera whose name differs from an existing one only by case, and a username with a space."""
    data = str(tmp_path / "data")
    def add_user(name: str):
        return pw("user", "add", name, "--role", "officer", "--password-stdin", "--data", data, cwd=tmp_path,
                  stdin="long enough pw\n")
    assert add_user("alice").returncode == 0
    again = add_user("Alice")
    assert again.returncode != 0 and "already exists" in again.stderr
    spaced = add_user("bob smith")
    assert spaced.returncode != 0 and "username" in spaced.stderr
    assert pw("camera", "add", "Gate", "--data", data, cwd=tmp_path).returncode == 0
    twin = pw("camera", "add", "gate", "--data", data, cwd=tmp_path)
    assert twin.returncode != 0 and "already exists" in twin.stderr


def test_data_flag_and_errors(tmp_path):
    data = str(tmp_path / "elsewhere")
    assert pw("camera", "add", "gate", "--data", data, cwd=tmp_path).returncode == 0
    again = pw("camera", "add", "gate", "--data", data, cwd=tmp_path)
    assert again.returncode != 0 and "already exists" in again.stderr
    short = pw("user", "add", "bob", "--role", "officer", "--password-stdin", "--data", data, cwd=tmp_path, stdin="short\n")
    assert short.returncode != 0 and "at least 8" in short.stderr
    missing = pw("hotlist", "import", "nope.csv", "--list", "x", "--data", data, cwd=tmp_path)
    assert missing.returncode != 0 and "cannot read nope.csv" in missing.stderr
    assert not (tmp_path / "data").exists()
