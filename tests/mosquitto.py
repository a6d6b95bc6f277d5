"""The real Mosquitto broker (Debian's /usr/sbin/mosquitto, installed by `make system-deps`) on a free
loopback port, with its config, password file and log in a temporary folder.

    with Mosquitto(tmp_path / "broker") as broker:                       # anyone may connect
        settings = make_settings(data, mqtt_url=broker.url())
    with Mosquitto(tmp_path / "broker", users={"pw": "secret"}) as broker:  # a password file
        broker.url("pw", "secret")
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

from tests.conftest import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


class Mosquitto:
    def __init__(self, home: Path, users: dict[str, str] | None = None) -> None:
        self.home, self.port = home, free_port()
        home.mkdir(parents=True, exist_ok=True)
        self.log = home / "mosquitto.log"
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", f"log_dest file {self.log}",
                 "log_type error", "log_type warning", "log_type notice", "log_type information",
                 # Run as root (a container), Mosquitto would drop to a `mosquitto` user that cannot read here.
                 f"user {getpass.getuser()}"]
        if users:
            passwords = home / "passwords"
            for i, (user, password) in enumerate(users.items()):
                create = ["-c"] if i == 0 else []
                subprocess.run([MOSQUITTO_PASSWD, "-b", *create, str(passwords), user, password], check=True,
                               capture_output=True, timeout=30)
            passwords.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        self.config = home / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self._process: subprocess.Popen | None = None

    def url(self, user: str | None = None, password: str | None = None) -> str:
        userinfo = f"{quote(user, safe='')}:{quote(password or '', safe='')}@" if user else ""
        return f"mqtt://{userinfo}127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> "Mosquitto":
        self._process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"mosquitto exited {self._process.returncode}:\n{self.log_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.port} in {timeout} s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text()[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> "Mosquitto":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
