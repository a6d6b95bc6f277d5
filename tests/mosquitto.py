"""The real Mosquitto broker (Debian's /usr/sbin/mosquitto, installed by `make system-deps`) on a free
loopback port, with its config, password file and log in a temporary folder.

    with Mosquitto(tmp_path / "broker") as broker:                       # anyone may connect
        settings = make_settings(data, mqtt_url=broker.url())
    with Mosquitto(tmp_path / "broker", users={"pw": "secret"}) as broker:  # a password file
        broker.url("pw", "secret")
    with Mosquitto(tmp_path / "broker", tls=True) as broker:  # mqtts, a certificate from its own CA
        broker.url(), broker.ca_file
"""

from __future__ import annotations

import getpass
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

from tests.certificates import throwaway_ca
from tests.conftest import free_port, stop_process

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


class Mosquitto:
    def __init__(self, home: Path, users: dict[str, str] | None = None, *, tls: bool = False,
                 persistent: bool = False) -> None:
        """`persistent`: the broker keeps retained messages and clients' sessions across a restart."""
        self.home, self.port, self.tls = home, free_port(), tls
        home.mkdir(parents=True, exist_ok=True)
        self.log = home / "mosquitto.log"
        persistence = ["persistence true", f"persistence_location {home}/"] if persistent else ["persistence false"]
        lines = [f"listener {self.port} 127.0.0.1", *persistence, f"log_dest file {self.log}",
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
        self.ca_file: Path | None = None
        if tls:
            self.ca_file, cert, key = throwaway_ca(home)
            lines += [f"cafile {self.ca_file}", f"certfile {cert}", f"keyfile {key}"]
        self.config = home / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self._process: subprocess.Popen | None = None

    def url(self, user: str | None = None, password: str | None = None) -> str:
        userinfo = f"{quote(user, safe='')}:{quote(password or '', safe='')}@" if user else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{userinfo}127.0.0.1:{self.port}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """What a subscriber trusts: the broker's own CA."""
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.tls else None

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
        stop_process(self._process)

    def __enter__(self) -> "Mosquitto":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
