"""Platewatch settings: one msgspec Struct, loaded explicitly (never at import time).

Sources, later wins: defaults, `<data dir>/platewatch.toml`, environment `PLATEWATCH_*`,
then explicit overrides (CLI flags, tests).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import msgspec

ENV_PREFIX = "PLATEWATCH_"
CONFIG_NAME = "platewatch.toml"
AUDIT_KEY_FILE = "audit_signing_key.pem"  # in the data dir: signs the audit chain's daily checkpoints
LIST_FIELDS = {"mfa_required_roles"}  # comma-separated in the environment
# Who a user is, least to most trusted: each role may do what the ones before it may.
ROLES = ("officer", "supervisor", "admin")
SHIFT_HOURS = (1, 24)  # the bounds of shift_hours: an hour at least, a day at most
AUDIT_RETENTION_MIN_DAYS = 365  # the CJIS Security Policy keeps audit records at least a year
LOCKOUT_RELEASE_BY_ADMIN = "admin"  # lockout_release: a locked account waits for an admin (Users page)
# Bounds of the sign-in rules' settings (CJIS Security Policy 5.5.3, 5.5.5, 5.6.2.1.1, 5.6.3.2).
SIGNIN_BOUNDS = {"idle_lock_minutes": (1, 1440), "lockout_attempts": (1, 100),
                 "lockout_window_minutes": (1, 1440), "disable_unused_days": (1, 3650)}


@dataclass(frozen=True, slots=True)
class Lockout:
    """When failed sign-ins lock an account (settings lockout_*): `attempts` failures within
    `window_ms`; it stays locked `release_ms`, or until an admin unlocks it (None)."""
    attempts: int = 5
    window_ms: int = 15 * 60_000
    release_ms: int | None = None

    @property
    def message(self) -> str:
        """What a refused sign-in says, whether or not the username exists."""
        if self.release_ms is None:
            return "Too many failed sign-ins: sign-in is locked until an administrator unlocks it."
        return f"Too many failed sign-ins: sign-in is locked. Try again in {self.release_ms // 60_000:g} minutes."


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 8080
    # Origin officers reach the app at (behind Caddy: https://…); used in alert links.
    public_url: str = ""
    vapid_subject: str = "mailto:admin@localhost"
    retention_days: float = 30.0
    # How far ahead of the server's clock a read's captured_at may be (a camera box's clock runs a
    # little fast); a later one, or one older than retention_days, is refused with a 400.
    max_clock_skew_s: float = 300.0
    purge_interval_s: float = 3600.0
    # A parked car seen every frame alerts once per (plate, camera) in this window.
    alert_cooldown_s: float = 300.0
    push_ttl_s: int = 3600
    # Real push services are HTTPS; plain http endpoints only for loopback tests and demos.
    push_allow_http: bool = False
    push_timeout_s: float = 10.0
    # Webhooks (server/webhook_sender.py): a failed delivery is tried again after this many seconds,
    # then three times longer each time (at most an hour apart) for a day; each post's time limit.
    webhook_retry_s: float = 10.0
    webhook_timeout_s: float = 10.0
    max_request_bytes: int = 8 * 1024 * 1024
    max_image_bytes: int = 4 * 1024 * 1024
    # The most pixels an uploaded JPEG may have (4096×4096), read from its header before decoding:
    # more than any camera's crop or frame, far less than a "bomb" that claims 30000×30000.
    max_image_pixels: int = 4096 * 4096
    session_ttl_s: float = 12 * 3600.0
    api_token_ttl_s: float = 30 * 24 * 3600.0
    # The department's IANA time zone (e.g. "America/Chicago"): every time shown or typed in the
    # web app is local to it. The database keeps UTC epoch milliseconds whatever it is.
    time_zone: str = "UTC"
    # The department's name, as reports a records officer files and the access log name it.
    department_name: str = "Police department"
    # Roles that must sign in with an authenticator app code too (TOTP, RFC 6238), e.g.
    # ["supervisor", "admin"], or "supervisor,admin" in PLATEWATCH_MFA_REQUIRED_ROLES. Such a
    # user without one is sent to set it up right after the password and can do nothing else.
    # Anyone may set one up on their Account page whatever this says.
    mfa_required_roles: tuple[Literal[ROLES], ...] = ()
    # The name authenticator apps list the account under.
    mfa_issuer: str = "Platewatch"
    # The public transparency report (/transparency and /transparency.json): policy and counts for
    # anyone, signed in or not. False answers 404 there; supervisors keep the dashboard.
    transparency_public: bool = True
    # How long "Go on duty" lasts: web push pages an officer only while on duty, and a switch
    # forgotten at the end of a shift must not page them on their day off.
    shift_hours: float = 12.0
    # How long audit entries are kept, whatever retention_days says: a year at least. Older ones
    # go by a recorded purge (server/audit_chain.py) that the chain can still be verified after.
    audit_retention_days: float = 365.0
    # Hot-list sources at an HTTPS URL (server/hotlist_fetch.py): a PEM file of CA certificates
    # trusted besides the system's (a state's own CA), how long a download may take, and the
    # largest feed accepted (a state's extract of 100,000s of lines is a few tens of MB).
    hotlist_ca_file: str = ""
    hotlist_fetch_timeout_s: float = 60.0
    hotlist_max_download_bytes: int = 256 * 1024 * 1024
    # An MQTT broker that every alert and camera health is published to, with Home Assistant
    # discovery (server/mqtt.py): mqtt://[user:password@]host[:1883] or mqtts://… (TLS, port 8883).
    # Empty: off. mqtt_ca_file: a PEM file of the CA that signed a private broker's certificate.
    mqtt_url: str = ""
    mqtt_ca_file: str = ""
    # Sign-in rules of the CJIS Security Policy. A web session unused this long is locked: its user
    # signs in again (password and code) before anything else; the live feed stops and says so.
    idle_lock_minutes: float = 30.0
    # This many failed sign-ins (password or code) within the window lock the username; it stays
    # locked until an admin unlocks it on /users ("admin"), or for a number of minutes (e.g. 30).
    lockout_attempts: int = 5
    lockout_window_minutes: float = 15.0
    lockout_release: str | float = LOCKOUT_RELEASE_BY_ADMIN
    # Accounts nobody has signed in to for this many days are disabled (an admin enables them
    # again), except the last enabled admin, which is kept and warned about.
    disable_unused_days: float = 90.0

    def __post_init__(self) -> None:
        self._check_signin_rules()
        if not SHIFT_HOURS[0] <= self.shift_hours <= SHIFT_HOURS[1]:  # also refuses NaN
            raise ValueError(f"shift_hours: {self.shift_hours:g} is not between {SHIFT_HOURS[0]} and "
                             f"{SHIFT_HOURS[1]} hours")
        if not self.audit_retention_days >= AUDIT_RETENTION_MIN_DAYS:  # also refuses NaN
            raise ValueError(f"audit_retention_days: {self.audit_retention_days:g} is less than "
                             f"{AUDIT_RETENTION_MIN_DAYS} days (audit entries are kept a year at least)")
        if not 0 <= self.max_clock_skew_s <= 86_400:  # also refuses NaN
            raise ValueError(f"max_clock_skew_s: {self.max_clock_skew_s:g} is not between 0 and 86400 seconds")
        for name in ("webhook_retry_s", "webhook_timeout_s"):
            if not 0 < getattr(self, name) <= 3600:  # also refuses NaN
                raise ValueError(f"{name}: {getattr(self, name):g} is not more than 0 and at most 3600 seconds")
        if self.mqtt_url:
            MqttBroker.from_url(self.mqtt_url, self.mqtt_ca_file)  # refuses a bad URL at load time
        try:
            ZoneInfo(self.time_zone)
        except (KeyError, ValueError, OSError):  # not found, malformed, a folder such as 'America'
            raise ValueError(f"time_zone: unknown time zone {self.time_zone!r} "
                             "(an IANA name such as 'America/Chicago')") from None

    def _check_signin_rules(self) -> None:
        for name, (low, high) in SIGNIN_BOUNDS.items():
            value = getattr(self, name)
            if not low <= value <= high:  # also refuses NaN
                raise ValueError(f"{name}: {value:g} is not between {low} and {high}")
        release = self.lockout_release
        if isinstance(release, str) and release.strip().lower() != LOCKOUT_RELEASE_BY_ADMIN:
            try:
                release = float(release)  # "30" from the environment
            except ValueError:
                raise ValueError(f"lockout_release: {release!r} is neither 'admin' nor a number of minutes") from None
        if not isinstance(release, str) and not 1 <= release <= 1440:
            raise ValueError(f"lockout_release: {release:g} minutes is not between 1 and 1440 (or 'admin')")
        self.lockout_release = release if not isinstance(release, str) else LOCKOUT_RELEASE_BY_ADMIN

    @property
    def lockout(self) -> Lockout:
        release = None if self.lockout_release == LOCKOUT_RELEASE_BY_ADMIN else int(self.lockout_release * 60_000)
        return Lockout(self.lockout_attempts, int(self.lockout_window_minutes * 60_000), release)

    @property
    def idle_lock_ms(self) -> int:
        return int(self.idle_lock_minutes * 60_000)

    @property
    def mqtt_broker(self) -> MqttBroker | None:
        return MqttBroker.from_url(self.mqtt_url, self.mqtt_ca_file) if self.mqtt_url else None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)  # ZoneInfo keeps one instance per name

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def db_path(self) -> Path:
        return self.data_dir / "platewatch.db"

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    def retention_cutoff(self, now: int) -> int:
        """Epoch ms before which reads are past the retention period (and purged, unless held)."""
        return now - int(self.retention_days * 86_400_000)

    @property
    def held_images_dir(self) -> Path:
        """Images of reads under an evidence hold, in a folder per read (held/<read id>/). Not
        named like a day, so retention's sweep of expired day folders never takes them."""
        return self.images_dir / "held"


MQTT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class MqttBroker:
    """mqtt_url taken apart. `shown` is the URL without its user and password: the only form logged."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None = field(repr=False)  # never in a log line or a traceback's repr
    ca_file: str | None
    shown: str

    @classmethod
    def from_url(cls, url: str, ca_file: str = "") -> MqttBroker:
        parts = urlsplit(url)
        if parts.scheme not in MQTT_PORTS:
            raise ValueError("mqtt_url: must start mqtt:// or mqtts:// (TLS)")
        try:
            port = parts.port or MQTT_PORTS[parts.scheme]
        except ValueError:
            raise ValueError("mqtt_url: the port is not a number from 1 to 65535") from None
        if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("mqtt_url: give a broker as mqtt://[user:password@]host[:port], nothing after it")
        if ca_file and parts.scheme != "mqtts":
            raise ValueError("mqtt_ca_file: only used with an mqtts:// (TLS) mqtt_url")
        if ca_file and not Path(ca_file).is_file():
            raise ValueError(f"mqtt_ca_file: no such file {ca_file!r}")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        username = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        return cls(parts.hostname, port, parts.scheme == "mqtts", username, password, ca_file or None,
                   f"{parts.scheme}://{host}:{port}")


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get(ENV_PREFIX + "DATA", "data"))


def _env_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def load_settings(
    data_dir: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build Settings from the data dir's TOML, the environment and explicit overrides."""
    env = os.environ if env is None else env
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir(env)
    values: dict[str, Any] = {}
    config_file = data_dir / CONFIG_NAME
    if config_file.exists():
        values.update(msgspec.toml.decode(config_file.read_bytes()))
    fields = set(Settings.__struct_fields__)
    for key, value in env.items():
        name = key[len(ENV_PREFIX):].lower() if key.startswith(ENV_PREFIX) else None
        if name in fields and name != "data_dir":
            values[name] = _env_list(value) if name in LIST_FIELDS else value
    values.update({k: v for k, v in overrides.items() if v is not None})
    values.pop("data_dir", None)
    # strict=False lets "30" from the environment become 30.0; unknown TOML keys are errors.
    settings = msgspec.convert(values, Settings, strict=False)
    return msgspec.structs.replace(settings, data_dir=data_dir)
