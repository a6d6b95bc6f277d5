"""A real Web Push service for tests and benchmarks.

It checks what a push service checks, with its own code (stdlib + `cryptography` only,
independent of server.push, py_vapid and http_ece, so it cannot share their bugs):
  RFC 8292  `Authorization: vapid t=JWT, k=KEY`: ES256 signature against k, k equal to the
            expected server key, aud = this origin (port included), exp in (now, now + 24 h],
            sub a mailto: or https: URL;
  RFC 8030  TTL (integer >= 0), Urgency (recorded);
  RFC 8291/8188  aes128gcm body, single record, decrypted with each fake browser's own
            P-256 key and auth secret.
201 when all of it holds; 400 and the reason otherwise. Every request is recorded.

    with PushService(expected_key=keys.public_key) as svc:
        sub = svc.subscription("alice")       # the browser's PushSubscription JSON
        ...push to sub...
        [msg] = svc.wait_for(1, timeout=5)    # msg.payload is the decrypted bytes
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAX_BODY = 4096  # what push services accept (RFC 8030 §7.2 requires at least this much)
MAX_EXP_AHEAD = 24 * 3600  # RFC 8292 §2: exp no more than 24 hours from now
URGENCIES = ("very-low", "low", "normal", "high")
POINT = (serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


class Rejected(Exception):
    """A check failed; the text is the reason given with the 400."""


@dataclass(frozen=True)
class Message:
    name: str  # the subscription it was sent to
    payload: bytes | None  # decrypted; None when refused
    headers: dict[str, str]  # lower-case names
    verified: bool
    error: str | None
    received_at: float  # time.monotonic() when the body had been read
    status: int  # what the service answered
    claims: dict | None = None  # the verified JWT claims
    sender_key: bytes | None = None  # the message's ephemeral public key (keyid)

    @property
    def ttl(self) -> int | None:
        value = self.headers.get("ttl")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def urgency(self) -> str | None:
        return self.headers.get("urgency")


@dataclass
class Browser:
    private_key: ec.EllipticCurvePrivateKey
    public_key: bytes  # 65-byte uncompressed point
    auth: bytes  # 16-byte secret
    status: int | None = None  # answer this instead of checking (404, 410, 500...)
    delay: float = 0.0  # seconds to wait before answering

    @classmethod
    def new(cls) -> Browser:
        key = ec.generate_private_key(ec.SECP256R1())
        return cls(key, key.public_key().public_bytes(*POINT), os.urandom(16))


def b64url_decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", text):
        raise Rejected(f"not base64url: {text[:20]!r}")
    text = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:  # binascii.Error: a length no encoder produces
        raise Rejected(f"not base64url: {text[:20]!r}") from None


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _p256_point(data: bytes, what: str) -> ec.EllipticCurvePublicKey:
    if len(data) != 65 or data[0] != 4:
        raise Rejected(f"{what} is not a 65-byte uncompressed P-256 point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data)
    except ValueError:
        raise Rejected(f"{what} is not a point on P-256") from None


def verify_vapid(authorization: str, origin: str, expected_key: str | None) -> dict:
    """Check an RFC 8292 Authorization header; return the JWT claims."""
    match = re.fullmatch(r"vapid\s+(.+)", authorization.strip(), re.IGNORECASE)
    if not match:
        raise Rejected("Authorization is not 'vapid t=..., k=...'")
    params = dict(p.strip().split("=", 1) for p in match[1].split(",") if "=" in p)
    token, k = params.get("t", ""), params.get("k", "")
    key_bytes = b64url_decode(k)
    if expected_key is not None and key_bytes != b64url_decode(expected_key):
        raise Rejected("k is not the expected server key")
    public_key = _p256_point(key_bytes, "k")
    parts = token.split(".")
    if len(parts) != 3:
        raise Rejected("t is not a JWS compact token")
    try:
        header, claims = (json.loads(b64url_decode(p)) for p in parts[:2])
    except ValueError:
        raise Rejected("JWT header or claims are not JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise Rejected("JWT header and claims must be JSON objects")
    if header.get("alg") != "ES256":
        raise Rejected("JWT alg must be ES256")
    signature = b64url_decode(parts[2])
    if len(signature) != 64:  # JWS ES256 is raw r || s, not DER
        raise Rejected("JWT signature is not 64 bytes r||s")
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    try:
        public_key.verify(
            encode_dss_signature(r, s),
            f"{parts[0]}.{parts[1]}".encode(),
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature:
        raise Rejected("JWT signature does not verify against k") from None
    _check_claims(claims, origin)
    return claims


def _check_claims(claims: dict, origin: str) -> None:
    if claims.get("aud") != origin:
        raise Rejected(f"JWT aud {claims.get('aud')!r} is not this origin {origin!r}")
    exp, now = claims.get("exp"), time.time()
    if not isinstance(exp, int) or not now < exp <= now + MAX_EXP_AHEAD:
        raise Rejected(f"JWT exp {exp!r} is not within the next 24 hours")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
        raise Rejected(f"JWT sub {sub!r} is not a mailto: or https: URL")


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def decrypt(body: bytes, browser: Browser) -> tuple[bytes, bytes]:
    """RFC 8291 + RFC 8188 aes128gcm; return (plaintext, sender's ephemeral key)."""
    if len(body) > MAX_BODY:
        raise Rejected(f"body of {len(body)} bytes is over {MAX_BODY}")
    if len(body) < 86 + 17:
        raise Rejected("body is too short for an aes128gcm header and record")
    salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    if idlen != 65:  # RFC 8291 §4: keyid is the sender's uncompressed public key
        raise Rejected(f"aes128gcm keyid is {idlen} bytes, not 65")
    sender_key, record = body[21:86], body[86:]
    if len(record) >= rs:  # RFC 8291 §4: one record, shorter than rs
        raise Rejected(f"record of {len(record)} bytes does not fit rs={rs} (single record)")
    shared = browser.private_key.exchange(ec.ECDH(), _p256_point(sender_key, "keyid"))
    info = b"WebPush: info\x00" + browser.public_key + sender_key
    ikm = _hkdf(browser.auth, shared, info, 32)
    cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)  # record 0: nonce ^ 0
    try:
        padded = AESGCM(cek).decrypt(nonce, record, None)
    except InvalidTag:
        raise Rejected("body does not decrypt (AES-GCM tag mismatch)") from None
    unpadded = padded.rstrip(b"\x00")
    if not unpadded or unpadded[-1] != 2:  # RFC 8188 §2: the last record ends in 0x02
        raise Rejected("record lacks the last-record delimiter 0x02")
    return unpadded[:-1], sender_key


def check_headers(headers: dict[str, str]) -> None:
    ttl = headers.get("ttl")
    if ttl is None or not ttl.isdigit():
        raise Rejected(f"TTL header missing or not an integer >= 0: {ttl!r}")
    if headers.get("content-encoding") != "aes128gcm":
        raise Rejected("Content-Encoding must be aes128gcm")
    if headers.get("urgency", "normal") not in URGENCIES:
        raise Rejected(f"Urgency {headers['urgency']!r} is not one of {URGENCIES}")


class PushService:
    def __init__(self, expected_key: str | None = None, host: str = "127.0.0.1"):
        self.expected_key = expected_key
        self.host = host
        self._browsers: dict[str, Browser] = {}
        self._messages: list[Message] = []
        self._changed = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> PushService:
        self._server = _Server((self.host, 0), _Handler)
        self._server.service = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> PushService:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self._server.server_address[1]}"

    # -- fake browsers ---------------------------------------------------------
    def subscription(self, name: str) -> dict:
        """The PushSubscription JSON a browser would hand over (created on first call)."""
        if not re.fullmatch(r"[\w-]+", name):
            raise ValueError("subscription names are letters, digits, _ and -")
        with self._changed:
            browser = self._browsers.setdefault(name, Browser.new())
        return {
            "endpoint": f"{self.origin}/push/{name}",
            "keys": {
                "p256dh": b64url_encode(browser.public_key),
                "auth": b64url_encode(browser.auth),
            },
        }

    def configure(self, name: str, *, status: int | None = None, delay: float = 0.0) -> None:
        """Make `name` answer `status` (e.g. 410 gone) without checking, and/or answer late."""
        self.subscription(name)
        with self._changed:
            self._browsers[name].status, self._browsers[name].delay = status, delay

    # -- what arrived ----------------------------------------------------------
    @property
    def messages(self) -> list[Message]:
        with self._changed:
            return list(self._messages)

    @property
    def failures(self) -> list[Message]:
        return [m for m in self.messages if not m.verified]

    def reset(self) -> None:
        with self._changed:
            self._messages.clear()

    def wait_for(self, count: int, timeout: float = 5.0, name: str | None = None) -> list[Message]:
        """Block until `count` verified messages (to `name`, if given) have arrived; return
        them all. TimeoutError, listing the refusals, if they do not come in time."""

        def verified() -> list[Message]:
            return [m for m in self._messages if m.verified and name in (None, m.name)]

        with self._changed:
            if not self._changed.wait_for(lambda: len(verified()) >= count, timeout):
                errors = [f"{m.name}: {m.error}" for m in self._messages if not m.verified]
                raise TimeoutError(
                    f"{len(verified())} of {count} verified messages after {timeout} s; "
                    f"refused: {errors}"
                )
            return verified()

    # -- the checks, called from the HTTP handler threads -----------------------
    def _receive(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        received_at = time.monotonic()
        match = re.fullmatch(r"/push/([\w-]+)", path)
        with self._changed:
            browser = self._browsers.get(match[1]) if match else None
        if browser is None:
            return 404, "no such subscription"
        if browser.delay:
            time.sleep(browser.delay)
        status, payload, claims, sender_key, error = 201, None, None, None, None
        if browser.status is not None:
            status, error = browser.status, f"configured to answer {browser.status}"
        else:
            try:
                check_headers(headers)
                authorization = headers.get("authorization", "")
                claims = verify_vapid(authorization, self.origin, self.expected_key)
                payload, sender_key = decrypt(body, browser)
            except Rejected as exc:
                status, error = 400, str(exc)
            except Exception as exc:  # malformed input the checks did not foresee
                status, error = 400, f"unexpected {type(exc).__name__}: {exc}"
        verified = error is None
        message = Message(
            match[1], payload, headers, verified, error, received_at, status, claims, sender_key
        )
        with self._changed:
            self._messages.append(message)
            self._changed.notify_all()
        return status, error or ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a push to many subscriptions opens many connections at once
    service: PushService

    def handle_error(self, request, client_address) -> None:
        pass  # a client that timed out and hung up is expected here, not a test failure


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the sender's connection pool expects
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls
    timeout = 30  # close idle keep-alive connections eventually

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            return self._answer(411, "Content-Length required")
        body = self.rfile.read(int(length))
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, reason = self.server.service._receive(self.path, headers, body)
        self._answer(status, reason)

    def _answer(self, status: int, reason: str) -> None:
        data = reason.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if status == 201:
            self.send_header("Location", f"/message/{os.urandom(8).hex()}")  # RFC 8030 §5
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args) -> None:
        pass  # keep test output clean
