"""Passwords, tokens, principals and role guards.

Secrets (session cookies, API and camera tokens) are random and only their SHA-256 is stored,
so a stolen database does not hand out working tokens. Passwords use argon2id.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from server import audit
from server.clock import now_ms
from server.settings import ROLES
from server.store import queries, queries_admin, queries_mfa

_hasher = PasswordHasher()
# A hash of a random password, checked when the user is unknown so timing doesn't reveal names.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(8))
SESSION_COOKIE = "pw_session"
# Password guessing: this many failures for one username within the window locks it for the window.
MAX_FAILED_SIGNINS = 5
FAILED_SIGNIN_WINDOW_MS = 5 * 60 * 1000
CAMERA_TOKEN_PREFIX = "pwc_"
USER_TOKEN_PREFIX = "pwu_"
# Longer sign-in fields are refused before any check: no real username or password is this long,
# and neither reaches the audit log whole (audit.MAX_TEXT).
MAX_USERNAME, MAX_PASSWORD = 200, 1024
MIN_PASSWORD = 8  # the one password rule, wherever a password is set (web, CLI, the user's own change)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_problem(password: str) -> str | None:
    """Why a new password is refused ("needs at least 8 characters"), or None when it will do."""
    if len(password) > MAX_PASSWORD:
        return f"has more than {MAX_PASSWORD} characters"
    return f"needs at least {MIN_PASSWORD} characters" if len(password) < MIN_PASSWORD else None


async def reset_password(conn, user_id: int, username: str, password: str, actor: str) -> int:
    """An admin's reset (web or CLI) for a user who forgot their password: the new hash, and every
    session, API token and half-done sign-in of the user ended, since whoever may know the old
    password must not stay in. Runs in the caller's transaction; the caller has checked the
    password with password_problem. The admin knows the new password, so until the user chooses
    their own on /account they can do nothing else (User.must_change_password). The number of
    sessions and tokens ended."""
    await queries.set_password_hash(conn, user_id, hash_password(password), must_change=True)
    ended = await queries_admin.delete_user_sessions(conn, user_id)
    await queries_mfa.delete_user_challenges(conn, user_id)
    await audit.record(conn, actor, "password.reset", user=username, sessions_ended=ended, must_change=True)
    return ended


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def new_token(prefix: str) -> tuple[str, str]:
    """A fresh secret and the hash to store. The prefix tells cameras' and users' tokens apart."""
    token = prefix + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: str
    mfa: bool = False  # signs in with an authenticator code too (TOTP enrolled)
    must_change_password: bool = False  # an admin chose the password: only /account until they change it

    def has_role(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def mfa_missing(user: User, required_roles: tuple[str, ...]) -> bool:
    """The department requires two-factor sign-in for this user's role and they have not set it
    up: a session or token from before the rule (or a role change) may do nothing until they do."""
    return user.role in required_roles and not user.mfa


@dataclass(frozen=True, slots=True)
class Camera:
    id: int
    name: str


def requires_role(role: str):
    """Guard: a signed-in user of at least this role (officer < supervisor < admin)."""

    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        user = connection.scope.get("user")
        if not isinstance(user, User):
            raise NotAuthorizedException("sign in first")
        if not user.has_role(role):
            raise PermissionDeniedException(f"needs the {role} role")
        if mfa_missing(user, connection.app.state.settings.mfa_required_roles):
            raise PermissionDeniedException(f"the {user.role} role must use two-factor sign-in: "
                                            "set it up on the Account page of the web app first")

    return guard


# Guards are async: Litestar would run a sync guard in a worker thread on every request.
async def requires_camera(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    if not isinstance(connection.scope.get("user"), Camera):
        raise NotAuthorizedException("a valid camera token is required")


class CameraCache:
    """Camera tokens seen recently: a camera posts many reads a second, and each would otherwise
    cost a database round trip. A disabled camera is refused within `ttl_s`."""

    def __init__(self, ttl_s: float = 30.0) -> None:
        self.ttl_s = ttl_s
        self._known: dict[str, tuple[Camera, float]] = {}

    async def lookup(self, reader, token: str) -> Camera | None:
        hashed, now = token_hash(token), time.monotonic()
        hit = self._known.get(hashed)
        if hit and hit[1] > now:
            return hit[0]
        row = await queries.camera_by_token_hash(reader, hashed)
        if row is None:
            self._known.pop(hashed, None)
            return None
        if len(self._known) > 10_000:
            self._known.clear()  # bounded: random bad tokens can't grow it without limit
        camera = Camera(row["id"], row["name"])
        self._known[hashed] = (camera, now + self.ttl_s)
        return camera


async def resolve_principal(
    reader, bearer: str | None, session: str | None, now: int, cameras: CameraCache
) -> User | Camera | None:
    """Who is calling: a camera or user bearer token, or a browser session cookie."""
    if bearer and bearer.startswith(CAMERA_TOKEN_PREFIX):
        return await cameras.lookup(reader, bearer)
    secret = bearer or session
    if not secret:
        return None
    row = await queries.user_by_token_hash(reader, token_hash(secret), now)
    if row is None or (bearer is None) != (row["kind"] == "session"):
        return None  # a session cookie is not an API token, nor the reverse
    return User(row["id"], row["username"], row["role"], bool(row["mfa"]), bool(row["must_change_password"]))


async def issue_token(conn, user_id: int, kind: str, ttl_s: float, now: int) -> tuple[str, int]:
    token, hashed = new_token(USER_TOKEN_PREFIX)
    expires_at = now + int(ttl_s * 1000)
    await queries.insert_session(conn, hashed, user_id, kind, now, expires_at)
    return token, expires_at


async def signin_locked(conn, username: str, now: int) -> bool:
    """Run it inside the write transaction that then starts a check (or writes a failure), so a
    count and the act it allows are one step: the failures in the window, and the password
    checks still running, reach the limit."""
    since = now - FAILED_SIGNIN_WINDOW_MS
    failures = await queries.count_actions_since(conn, "auth.failed", username, since)
    running = await queries.count_signin_attempts(conn, username, since)
    return failures + running >= MAX_FAILED_SIGNINS


class SignInRefused(Exception):
    def __init__(self, locked: bool, reason: str = "wrong username or password") -> None:
        super().__init__("too many failed sign-ins" if locked else reason)
        self.locked = locked


async def _start_attempt(db, username: str) -> int:
    """Reserves one of the user's attempts before the password is checked (SignInRefused when
    none is left), so guesses sent at once are checked no more often than the limit."""
    now = now_ms()
    async with db.transaction() as conn:
        if await signin_locked(conn, username, now):
            raise SignInRefused(locked=True)
        return await queries.start_signin_attempt(conn, username, now, now - FAILED_SIGNIN_WINDOW_MS)


async def check_sign_in(db, username: str, password: str, via: str, **detail):
    """The user's row when the password is right and the account enabled; otherwise SignInRefused,
    with the failure committed to the audit log (which is also what the throttle counts), `detail`
    added. A user with an authenticator (row["totp_secret"]) still owes mfa.second_factor before
    any session. The account page uses it too, to ask a signed-in user for the password again.
    A username or password longer than any real one is refused unchecked and unlogged."""
    if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
        raise SignInRefused(locked=False)
    attempt = await _start_attempt(db, username)
    user, right = None, False
    try:
        user = await queries.user_by_name(db.reader, username) if username else None
        # argon2 takes tens of milliseconds: off the event loop, which cameras and phones share.
        right = await asyncio.to_thread(verify_password, user["password_hash"] if user else None, password)
    finally:  # a check that did not finish counts as a failure
        async with db.transaction() as conn:
            await queries.end_signin_attempt(conn, attempt)
            if not right or user["disabled"]:
                await audit.record(conn, username or "?", "auth.failed", via=via, **detail)
    if not right or user["disabled"]:
        raise SignInRefused(locked=False)
    return user
