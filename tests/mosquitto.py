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

import datetime
import getpass
import ipaddress
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def certificate_authority(home: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate it signed for localhost / 127.0.0.1: (CA, certificate, key) PEM files."""
    now = datetime.datetime.now(datetime.UTC)

    def issue(subject: str, key, issuer: x509.Name, signer, ca: bool) -> x509.Certificate:
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(issuer).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = issue("Platewatch test CA", ca_key, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Platewatch test CA")]),
               ca_key, ca=True)
    cert = issue("localhost", key, ca.subject, ca_key, ca=False)
    paths = home / "ca.pem", home / "broker.pem", home / "broker-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


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
            self.ca_file, cert, key = certificate_authority(home)
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
