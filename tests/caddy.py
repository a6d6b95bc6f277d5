"""The real Caddy (Debian's /usr/bin/caddy, installed by `make system-deps`) running the repository's
Caddyfile on free ports, with its certificates and state in a temporary folder.

    with Caddy(tmp_path / "caddy", upstream="127.0.0.1:8080", https_port=8443) as caddy:
        httpx.get(f"{caddy.url}/healthz", verify=caddy.ssl_context())
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.conftest import free_port, stop_process

CADDY = shutil.which("caddy") or "/usr/bin/caddy"
CADDYFILE = Path(__file__).resolve().parents[1] / "Caddyfile"


class Caddy:
    def __init__(self, home: Path, upstream: str, https_port: int, site: str = "localhost") -> None:
        self.home, self.https_port, self.http_port = home, https_port, free_port()
        self.url = f"https://{site}:{https_port}"
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # Caddy keeps its CA, certificates and autosave here, never in the real home.
            "HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
            "PLATEWATCH_SITE": site, "PLATEWATCH_UPSTREAM": upstream, "PLATEWATCH_CADDY_ADMIN": "off",
            "PLATEWATCH_HTTP_PORT": str(self.http_port), "PLATEWATCH_HTTPS_PORT": str(https_port),
        }
        self.log = home / "caddy.log"
        self._process: subprocess.Popen | None = None

    @property
    def pki(self) -> Path:
        return self.home / "data" / "caddy" / "pki" / "authorities" / "local"

    def command(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([CADDY, *args, "--config", str(CADDYFILE), "--adapter", "caddyfile"],
                              env=self.env, capture_output=True, text=True, timeout=30)

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts Caddy's own root CA, as a phone does once the department installs it."""
        return ssl.create_default_context(cafile=str(self.pki / "root.crt"))

    def intermediate_spki_sha256(self) -> str:
        """For Chromium's --ignore-certificate-errors-spki-list: trust chains through Caddy's CA."""
        cert = x509.load_pem_x509_certificate((self.pki / "intermediate.crt").read_bytes())
        spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(hashlib.sha256(spki).digest()).decode()

    def start(self, timeout: float = 20) -> "Caddy":
        with self.log.open("wb") as log:
            self._process = subprocess.Popen([CADDY, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
                                             env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"caddy exited {self._process.returncode}:\n{self.log.read_text()[-3000:]}")
            if self._answers():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"caddy did not serve {self.url} in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def _answers(self) -> bool:
        if not (self.pki / "root.crt").exists():
            return False
        try:
            return httpx.get(f"{self.url}/healthz", verify=self.ssl_context(), timeout=2).status_code == 200
        except (httpx.HTTPError, ssl.SSLError):
            return False

    def stop(self) -> None:
        stop_process(self._process)

    def __enter__(self) -> "Caddy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
