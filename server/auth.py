"""Passwords, tokens, principals and role guards.

Secrets (session cookies, API and camera tokens) are random and only their SHA-256 is stored,
so a stolen database does not hand out working tokens. Passwords use argon2id.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from server import audit
from server.clock import now_ms
from server.settings import ROLES, Lockout
from server.store import queries, queries_admin, queries_mfa, queries_signin

_hasher = PasswordHasher()
# A hash of a random password, checked when the user is unknown so timing doesn't reveal names.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(8))
SESSION_COOKIE = "pw_session"
# Password guessing: the default of settings.lockout_attempts (failures for one username within
# lockout_window_minutes lock it, see signin_locked).
MAX_FAILED_SIGNINS = Lockout().attempts
CAMERA_TOKEN_PREFIX = "pwc_"
USER_TOKEN_PREFIX = "pwu_"
# Longer sign-in fields are refused before any check: no real username or password is this long,
# and neither reaches the audit log whole (audit.MAX_TEXT).
MAX_USERNAME, MAX_PASSWORD = 200, 1024
MIN_PASSWORD = 8  # the password rules apply wherever a password is set (web, CLI, the user's own change)
# Passwords attackers try first (CJIS Security Policy 5.6.2.1.1: refused as new passwords): one a line,
# lower-case, built from well-known public lists of the most used passwords.
COMMON_PASSWORDS = Path(__file__).with_name("common_passwords.txt")
COMMON_RULE = "is on the list of the most common passwords, which attackers try first: choose another"
# A session's last use is written at most this often: one small write a minute, not one a request.
TOUCH_EVERY_MS = 60_000


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@functools.cache
def common_passwords() -> frozenset[str]:
    """The common-password list, read once."""
    lines = (line.strip() for line in COMMON_PASSWORDS.read_text().splitlines())
    return frozenset(line for line in lines if line and not line.startswith("#"))


def password_problem(password: str) -> str | None:
    """Why a new password is refused ("needs at least 8 characters"), or None when it will do."""
    if len(password) > MAX_PASSWORD:
        return f"has more than {MAX_PASSWORD} characters"
    if len(password) < MIN_PASSWORD:
        return f"needs at least {MIN_PASSWORD} characters"
    return COMMON_RULE if password.lower() in common_passwords() else None


async def new_password_problem(db, password: str, actor: str, user: str, via: str) -> str | None:
    """password_problem for a password someone is setting (`actor` for `user`: an admin's new user
    or reset, a user's own change, the CLI), the refusal audited (`password.refused`, naming the
    rule, never the password)."""
    if problem := password_problem(password):
        async with db.transaction() as conn:
            await audit.record(conn, actor, "password.refused", user=user, via=via, rule=problem)
    return problem


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
    session_id: int | None = None  # signed in with a browser session (not an API token): its row

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


class SessionLocked:
    """resolve_principal's answer for a browser session left unused past idle_lock_minutes: it
    has just been ended (audited `session.locked`), and its user signs in again."""


SESSION_LOCKED = SessionLocked()


async def resolve_principal(db, bearer: str | None, session: str | None, now: int, cameras: CameraCache, *,
                            idle_ms: int, active: bool = True) -> User | Camera | SessionLocked | None:
    """Who is calling: a camera or user bearer token, or a browser session cookie. A session's use
    is written (at most once a minute) when `active`: a person's request, not the feed's own
    refresh, which must not keep an unattended screen signed in."""
    if bearer and bearer.startswith(CAMERA_TOKEN_PREFIX):
        return await cameras.lookup(db.reader, bearer)
    secret = bearer or session
    if not secret:
        return None
    row = await queries.user_by_token_hash(db.reader, token_hash(secret), now)
    if row is None or (bearer is None) != (row["kind"] == "session"):
        return None  # a session cookie is not an API token, nor the reverse
    session_id = None
    if row["kind"] == "session":
        session_id, idle = row["session_id"], now - row["last_seen_at"]
        if idle >= idle_ms:
            await lock_idle_session(db, session_id, row["username"], idle, idle_ms)
            return SESSION_LOCKED
        if active and idle >= TOUCH_EVERY_MS:
            async with db.transaction() as conn:
                await queries_signin.touch_session(conn, session_id, now)
    return User(row["id"], row["username"], row["role"], bool(row["mfa"]), bool(row["must_change_password"]),
                session_id)


async def lock_idle_session(db, session_id: int, username: str, idle_ms: int, limit_ms: int) -> None:
    """Ends a session left unused past the limit (CJIS 5.5.5 session lock); audited once, by
    whichever request or feed found it first."""
    async with db.transaction() as conn:
        if await queries_signin.end_session(conn, session_id):
            await audit.record(conn, username, "session.locked", idle_minutes=idle_ms // 60_000,
                               limit_minutes=limit_ms // 60_000)


async def session_still_open(db, session_id: int, username: str, now: int,
                             idle_ms: int) -> int | SessionLocked | None:
    """For a screen that updates itself (the live feed), which is no use of the session: when the
    session locks unless used before (epoch ms); SESSION_LOCKED when it was idle and is locked now;
    None when it had ended (signed out, locked by another request)."""
    last_seen = await queries_signin.session_last_seen(db.reader, session_id)
    if last_seen is None:
        return None
    if now - last_seen >= idle_ms:
        await lock_idle_session(db, session_id, username, now - last_seen, idle_ms)
        return SESSION_LOCKED
    return last_seen + idle_ms


async def issue_token(conn, user_id: int, kind: str, ttl_s: float, now: int) -> tuple[str, int]:
    """A new browser session or API token: a sign-in, which keeps the account in use."""
    token, hashed = new_token(USER_TOKEN_PREFIX)
    expires_at = now + int(ttl_s * 1000)
    await queries.insert_session(conn, hashed, user_id, kind, now, expires_at)
    await queries_signin.record_signin(conn, user_id, now)
    return token, expires_at


# --- lock-out after failed sign-ins (CJIS 5.5.3, NIST AC-7) --------------------------------------

def _locked_after(now: int, lockout: Lockout) -> int:
    """Locks taken after this time still hold unless released (all of them: release by an admin)."""
    return -1 if lockout.release_ms is None else now - lockout.release_ms


def _lock_holds(lock, now: int, lockout: Lockout) -> bool:
    return lock is not None and lock["released_at"] is None and lock["locked_at"] > _locked_after(now, lockout)


async def _failures(conn, username: str, now: int, lockout: Lockout, lock) -> tuple[int, int]:
    """Failures written, and password checks running, within the window; none from before the
    username's last lock (a released lock does not come back from the failures that made it)."""
    since = now - lockout.window_ms
    if lock is not None:
        since = max(since, lock["locked_at"] + 1)
    failures = await queries.count_actions_since(conn, "auth.failed", username, since)
    return failures, await queries.count_signin_attempts(conn, username, since)


async def signin_locked(conn, username: str, now: int, lockout: Lockout) -> bool:
    """Run it inside the write transaction that then starts a check (or writes a failure), so a
    count and the act it allows are one step: the username is locked, or the failures in the
    window and the password checks still running reach the limit. The same for a username that
    exists and one that doesn't: the answer must not tell them apart."""
    lock = await queries_signin.signin_lock(conn, username)
    if _lock_holds(lock, now, lockout):
        return True
    failures, running = await _failures(conn, username, now, lockout, lock)
    return failures + running >= lockout.attempts


async def record_failure(conn, username: str, now: int, lockout: Lockout, via: str, **detail) -> None:
    """A wrong password or code: an `auth.failed` line, and when it is the one that reaches the
    limit, the username locked (`user.locked`) until the release the settings name."""
    await audit.record(conn, username or "?", "auth.failed", via=via, **detail)
    lock = await queries_signin.signin_lock(conn, username)
    if not username or _lock_holds(lock, now, lockout):
        return
    failures, _ = await _failures(conn, username, now, lockout, lock)
    if failures >= lockout.attempts:
        await queries_signin.lock_username(conn, username, now, failures)
        release = "admin" if lockout.release_ms is None else f"{lockout.release_ms // 60_000} minutes"
        await audit.record(conn, "system", "user.locked", user=username, failures=failures,
                           window_minutes=lockout.window_ms // 60_000, release=release)


async def locked_usernames(reader, now: int, lockout: Lockout) -> set[str]:
    """Usernames, lower-case, that failed sign-ins keep locked now (the Users page shows them)."""
    return await queries_signin.locked_usernames(reader, _locked_after(now, lockout))


async def unlock(conn, username: str, actor: str, now: int, lockout: Lockout) -> bool:
    """An admin releases a locked username (`user.unlocked`); False when it was not locked."""
    if not await queries_signin.release_lock(conn, username, now, actor, _locked_after(now, lockout)):
        return False
    await audit.record(conn, actor, "user.unlocked", user=username)
    return True


class SignInRefused(Exception):
    """A refused sign-in; `locked`: refused unchecked, for too many failures (the message says
    until when: Lockout.message)."""

    def __init__(self, locked: bool, reason: str | None = None) -> None:
        super().__init__(reason or ("too many failed sign-ins" if locked else "wrong username or password"))
        self.locked = locked


async def _start_attempt(db, username: str, lockout: Lockout) -> int:
    """Reserves one of the user's attempts before the password is checked (SignInRefused when
    none is left), so guesses sent at once are checked no more often than the limit."""
    now = now_ms()
    async with db.transaction() as conn:
        if await signin_locked(conn, username, now, lockout):
            raise SignInRefused(locked=True, reason=lockout.message)
        return await queries.start_signin_attempt(conn, username, now, now - lockout.window_ms)


async def check_sign_in(db, username: str, password: str, lockout: Lockout, via: str, **detail):
    """The user's row when the password is right and the account enabled; otherwise SignInRefused,
    with the failure committed to the audit log (which is also what the lock-out counts), `detail`
    added. A user with an authenticator (row["totp_secret"]) still owes mfa.second_factor before
    any session. The account page uses it too, to ask a signed-in user for the password again.
    A username or password longer than any real one is refused unchecked and unlogged."""
    if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
        raise SignInRefused(locked=False)
    attempt = await _start_attempt(db, username, lockout)
    user, right = None, False
    try:
        user = await queries.user_by_name(db.reader, username) if username else None
        # argon2 takes tens of milliseconds: off the event loop, which cameras and phones share.
        right = await asyncio.to_thread(verify_password, user["password_hash"] if user else None, password)
    finally:  # a check that did not finish counts as a failure
        async with db.transaction() as conn:
            await queries.end_signin_attempt(conn, attempt)
            if not right or user["disabled"]:
                await record_failure(conn, username, now_ms(), lockout, via, **detail)
    if not right or user["disabled"]:
        raise SignInRefused(locked=False)
    return user
