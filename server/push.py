"""Web push: VAPID keys (RFC 8292) and aes128gcm messages (RFC 8291) sent with httpx.

Pure networking and crypto, no database: the caller owns the subscriptions and deletes
those whose Delivery is `gone`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import pathlib
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import http_ece
import httpx
import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid.jwt import sign as sign_jwt

log = logging.getLogger(__name__)

KEY_FILE = "vapid_private.pem"
JWT_LIFETIME = 12 * 3600  # RFC 8292 allows up to 24 h; 12 h leaves a margin for clock skew
JWT_MAX_AGE = 3600  # re-sign hourly: one signature per push service per hour, never near exp
MAX_PAYLOAD = 3993  # push services cap the body at 4096: minus 86 header, 1 delimiter, 16 tag
URGENCIES = ("very-low", "low", "normal", "high")
DEFAULT_PORTS = {"http": 80, "https": 443}
POINT = (serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    # Browsers give unpadded base64url; accept padding and the standard alphabet too.
    text = text.strip().rstrip("=").replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def audience(endpoint: str) -> str:
    """The push service's origin, the JWT `aud`. A non-default port must stay: the push
    service compares `aud` with its own origin and refuses the token otherwise."""
    url = urlsplit(endpoint)
    if url.scheme not in DEFAULT_PORTS or not url.hostname:
        raise ValueError(f"push endpoint is not an http(s) URL: {endpoint!r}")
    host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
    port = url.port  # raises ValueError on a malformed port
    keep = port is not None and port != DEFAULT_PORTS[url.scheme]
    return f"{url.scheme}://{host}" + (f":{port}" if keep else "")


class VapidKeys:
    """The server's P-256 signing key. Browsers bind each subscription to its public half,
    so losing or replacing the key silently unsubscribes every officer."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey):
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
            private_key.curve, ec.SECP256R1
        ):
            raise ValueError("a VAPID key must be an EC P-256 private key")
        self.private_key = private_key
        self.public_key = b64url_encode(private_key.public_key().public_bytes(*POINT))

    @classmethod
    def load_or_create(cls, data_dir: pathlib.Path) -> VapidKeys:
        path = pathlib.Path(data_dir) / KEY_FILE
        if not path.exists():
            create_key_file(path, ec.generate_private_key(ec.SECP256R1()))
        return cls(serialization.load_pem_private_key(path.read_bytes(), password=None))


def create_key_file(path: pathlib.Path, key) -> None:
    """Writes a private key (PEM, readable by its owner only) unless `path` exists by then."""
    # Write a private temp file, then hard-link it into place: the link fails if another
    # process (serve and a CLI command) created the key first, so one key always wins.
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the mode given to os.open is filtered by the umask
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


class Subscription(msgspec.Struct, frozen=True):
    endpoint: str
    p256dh: str
    auth: str
    id: int | None = None

    @classmethod
    def from_json(cls, data: dict, id: int | None = None) -> Subscription:
        """From the browser's PushSubscription JSON: {endpoint, keys: {p256dh, auth}}."""
        return cls(data["endpoint"], data["keys"]["p256dh"], data["keys"]["auth"], id=id)

    def decode_keys(self) -> tuple[bytes, bytes]:
        """(p256dh point, auth secret); ValueError if unusable. Call it at subscribe time
        too, to refuse a bad subscription before it is stored."""
        audience(self.endpoint)
        bad = ValueError("p256dh must be a 65-byte P-256 point and auth 16 bytes, base64url")
        try:
            p256dh, auth = b64url_decode(self.p256dh), b64url_decode(self.auth)
        except ValueError:
            raise bad from None
        if len(p256dh) != 65 or p256dh[0] != 4 or len(auth) != 16:
            raise bad
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)  # on the curve?
        return p256dh, auth


def check_subscription(sub: Subscription, *, allow_http: bool) -> None:
    """Refuse, before storing, keys a browser could not have made and (outside tests and demos)
    plain-http endpoints: real push services are HTTPS, and this is an officer-supplied URL."""
    if not allow_http and not sub.endpoint.startswith("https://"):
        raise ValueError("endpoint: push services are reached over https")
    try:
        sub.decode_keys()
    except ValueError as exc:
        raise ValueError(f"keys: {exc}") from None


class Delivery(msgspec.Struct):
    subscription: Subscription
    status: int | None
    error: str | None
    ms: float

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        """The push service says the subscription no longer exists: delete it."""
        return self.status in (404, 410)


class PushSender:
    def __init__(
        self,
        keys: VapidKeys,
        subject: str,
        *,
        ttl: int = 3600,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ):
        if not subject.startswith(("mailto:", "https:")):
            raise ValueError("the VAPID subject must be a mailto: or https: URL")
        self.keys, self.subject, self.ttl, self.timeout = keys, subject, _ttl(ttl), timeout
        self._own_client = client is None
        # Keep as many connections alive as a push may open (httpx keeps 20): a fresh TLS
        # handshake to the push service per officer per alert is the slowest part of a push.
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        self._client = client or httpx.AsyncClient(timeout=timeout, limits=limits)
        self._jwts: dict[str, tuple[str, float]] = {}  # aud -> (Authorization, signed at)

    async def send(
        self,
        subscriptions: Sequence[Subscription],
        payload: bytes,
        *,
        urgency: str = "high",
        ttl: int | None = None,
    ) -> list[Delivery]:
        """Push to every subscription at once; never raises for one subscription's fault."""
        if not 0 < len(payload) <= MAX_PAYLOAD:
            raise ValueError(f"payload must be 1 to {MAX_PAYLOAD} bytes, not {len(payload)}")
        if urgency not in URGENCIES:
            raise ValueError(f"urgency must be one of {URGENCIES}")
        ttl = self.ttl if ttl is None else _ttl(ttl)
        sends = (self._send_one(sub, payload, urgency, ttl) for sub in subscriptions)
        return list(await asyncio.gather(*sends))

    async def _send_one(self, sub: Subscription, payload: bytes, urgency: str, ttl: int):
        start = time.perf_counter()
        status = error = None
        try:
            # asyncio.timeout bounds the whole exchange; httpx's timeout is per phase only.
            async with asyncio.timeout(self.timeout):
                headers = {
                    "Authorization": self._authorization(sub.endpoint),
                    "Content-Encoding": "aes128gcm",
                    "Content-Type": "application/octet-stream",
                    "TTL": str(ttl),
                    "Urgency": urgency,
                }
                response = await self._client.post(
                    sub.endpoint, content=_encrypt(sub, payload), headers=headers
                )
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}: {response.text[:200]}"
        except TimeoutError:
            error = f"timed out after {self.timeout:g} s"
        except Exception as exc:  # one bad subscription must never sink the others
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        ms = (time.perf_counter() - start) * 1000
        if error:
            log.info("push to %s failed: %s", sub.endpoint[:80], error)
        return Delivery(sub, status, error, ms)

    def _authorization(self, endpoint: str) -> str:
        aud, now = audience(endpoint), time.time()
        cached = self._jwts.get(aud)
        # Re-sign hourly, and at once if the clock went backwards (exp could then be > 24 h).
        if cached is None or not 0 <= now - cached[1] < JWT_MAX_AGE:
            claims = {"aud": aud, "exp": int(now) + JWT_LIFETIME, "sub": self.subject}
            token = sign_jwt(claims, self.keys.private_key)
            cached = (f"vapid t={token}, k={self.keys.public_key}", now)
            self._jwts[aud] = cached
        return cached[0]

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def __aenter__(self) -> PushSender:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


def _ttl(ttl: int) -> int:
    if not isinstance(ttl, int) or ttl < 0:
        raise ValueError("ttl must be an integer number of seconds >= 0")
    return ttl


def _encrypt(sub: Subscription, payload: bytes) -> bytes:
    p256dh, auth = sub.decode_keys()
    # RFC 8291: a fresh ephemeral key per message (http_ece adds a random salt); rs=4096
    # keeps the whole payload in the single record that push services require.
    return http_ece.encrypt(
        payload,
        private_key=ec.generate_private_key(ec.SECP256R1()),
        dh=p256dh,
        auth_secret=auth,
        version="aes128gcm",
        rs=4096,
    )
