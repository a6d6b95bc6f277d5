"""Two-factor sign-in with authenticator apps: TOTP (RFC 6238, 6 digits, 30 s steps, via pyotp)
and one-time recovery codes, as the FBI CJIS Security Policy asks of access to criminal-justice data.

- Enrolment: the server makes a secret, kept as pending until the user types a current code from
  it; then it becomes the user's and ten recovery codes are shown once (only their hashes kept).
- Sign-in: a right password for an enrolled user opens a *challenge*, a random token in its own
  cookie (only its SHA-256 stored, in its own table), never a session: nothing but the code step
  accepts it. A code from the previous, current or next step is accepted (pyotp valid_window=1),
  once: its step must be later than the last one accepted for that user. Wrong codes are
  `auth.failed` audit lines, so they count towards the same lock-out as wrong passwords.
- Self-service on the account page, re-authenticated because a session on a phone left unlocked
  must not be enough: new recovery codes take a current app code or the password; turning
  two-factor off takes the password and a code. Failures there are `auth.failed` lines too.
- Never logged: secrets, codes, recovery codes.

The TOTP secret is stored as is (the server must compute codes from it). A slow hash of the
recovery codes would add nothing: whoever reads the database reads the secret beside them.
"""

from __future__ import annotations

import hashlib
import re
import secrets

import pyotp
import segno
from pyotp.exceptions import OTPVerificationError

from server import audit
from server.auth import SignInRefused, check_sign_in, new_token, record_failure, signin_locked, token_hash
from server.clock import now_ms
from server.settings import Lockout
from server.store import queries_admin, queries_mfa

VALID_WINDOW = 1  # steps either side of now: phones' clocks drift, people type slowly
CHALLENGE_COOKIE = "pw_mfa"
CHALLENGE_PREFIX = "pwm_"
CHALLENGE_TTL_MS = 10 * 60 * 1000  # time to find the phone, or to install an app and enrol
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/i/l to misread
RECOVERY_LENGTH = 12  # about 59 bits; shown as xxxx-xxxx-xxxx (fits the API's 16-character otp)
CODE_REFUSED = "That code is wrong or was already used. Enter the current one from your app."
PASSWORD_REFUSED = "That password is wrong."


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits, as RFC 4226 recommends


def spaced(secret: str) -> str:
    """The secret in groups of four, easier to type into an app by hand."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def qr_svg(secret: str, username: str, issuer: str) -> str:
    """The otpauth:// URI as an inline SVG QR code: made here, no script, nothing fetched."""
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)
    title = f"QR code to add {username} at {issuer} to an authenticator app"
    return segno.make(uri, error="m").svg_inline(scale=1, border=4, omitsize=True, dark="#000", light="#fff",
                                                 svgclass="qr", title=title)


def six_digits(code: str) -> str | None:
    """An app's code as typed ("123 456" too), or None when it is not one."""
    digits = re.sub(r"[\s-]", "", code)
    return digits if re.fullmatch(r"\d{6}", digits) else None


def matching_step(secret: str, code: str, now: int) -> int | None:
    """The 30 s step whose code this is, within VALID_WINDOW steps of now (ms); None if none."""
    digits = six_digits(code)
    if digits is None:
        return None
    try:
        return pyotp.TOTP(secret).verify_and_get_timecode(digits, for_time=now / 1000, valid_window=VALID_WINDOW)
    except OTPVerificationError:
        return None


def new_recovery_codes() -> list[str]:
    codes = ("".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH)) for _ in range(RECOVERY_CODES))
    return ["-".join(code[i:i + 4] for i in range(0, RECOVERY_LENGTH, 4)) for code in codes]


def recovery_hash(user_id: int, code: str) -> str:
    """Bound to the user; dashes, spaces and case as typed don't matter."""
    plain = re.sub(r"[^a-z0-9]", "", code.lower())
    return hashlib.sha256(f"{user_id}:{plain}".encode()).hexdigest()


async def _accept(conn, user, code: str, now: int, recovery: bool) -> tuple[str | None, str]:
    """('totp' | 'recovery', '') when the code is good (and now spent); (None, why) otherwise.
    With recovery=False only an app's code will do."""
    if user["totp_secret"] is None:
        return None, "not_enrolled"
    if six_digits(code) or not recovery:  # an app's code; anything else may be a recovery code
        step = matching_step(user["totp_secret"], code, now)
        if step is None:
            return None, "wrong"
        return ("totp", "") if await queries_mfa.claim_step(conn, user["id"], step) else (None, "reused")
    if await queries_mfa.use_recovery_code(conn, user["id"], recovery_hash(user["id"], code), now):
        return "recovery", ""
    return None, "wrong"


async def second_factor(db, user, code: str | None, lockout: Lockout, via: str, *, recovery: bool = True,
                        **detail) -> str:
    """Checks the user's code (or a recovery code) and spends it: 'totp' or 'recovery'.
    SignInRefused when locked out, or when the code is wrong or reused (an `auth.failed` line
    with factor=otp and `detail`, counted by the lock-out like a wrong password)."""
    now = now_ms()
    async with db.transaction() as conn:  # the lock-out's count and this check are one step
        if await signin_locked(conn, user["username"], now, lockout):
            raise SignInRefused(locked=True, reason=lockout.message)
        method, why = await _accept(conn, user, code or "", now, recovery)
        if method is None:
            await record_failure(conn, user["username"], now, lockout, via, factor="otp", reason=why, **detail)
        elif method == "recovery":
            left = await queries_mfa.recovery_codes_left(conn, user["id"])
            await audit.record(conn, user["username"], "mfa.recovery_used", via=via, left=left)
    if method is None:
        raise SignInRefused(locked=False, reason=CODE_REFUSED)
    return method


# --- challenges: between the password and the code, or the password and a forced enrolment ----

async def open_challenge(conn, user_id: int, purpose: str, target: str) -> str:
    """A fresh challenge token for the cookie; `purpose` is 'verify' (owes a code) or 'enrol'."""
    token, hashed = new_token(CHALLENGE_PREFIX)
    now = now_ms()
    await queries_mfa.insert_challenge(conn, hashed, user_id, purpose, target, now, now + CHALLENGE_TTL_MS)
    return token


async def challenge(db, token: str | None):
    """The open challenge's user row (with c_purpose and c_next), or None."""
    if not token or not token.startswith(CHALLENGE_PREFIX):
        return None
    return await queries_mfa.challenge_by_hash(db.reader, token_hash(token), now_ms())


async def close_challenge(conn, token: str) -> None:
    await queries_mfa.delete_challenge(conn, token_hash(token))


# --- enrolment and reset -------------------------------------------------------------------------

async def pending_secret(db, user_id: int) -> str:
    """The secret being set up: kept until confirmed, so a reload shows the same QR code."""
    async with db.transaction() as conn:
        row = await queries_mfa.user_mfa(conn, user_id)
        if row["totp_pending"]:
            return row["totp_pending"]
        secret = new_secret()
        await queries_mfa.set_pending_secret(conn, user_id, secret)
    return secret


async def confirm_enrolment(db, user_id: int, username: str, code: str, via: str) -> list[str] | None:
    """With a current code from the pending secret: enrolled, and the recovery codes (shown once)
    are returned. None, and an `mfa.enrol_failed` line, when the code does not match."""
    now = now_ms()
    async with db.transaction() as conn:
        row = await queries_mfa.user_mfa(conn, user_id)
        step = matching_step(row["totp_pending"], code, now) if row["totp_pending"] else None
        if step is None or not await queries_mfa.confirm_enrolment(conn, user_id, step, now):
            await audit.record(conn, username, "mfa.enrol_failed", via=via)
            return None
        codes = new_recovery_codes()
        await queries_mfa.replace_recovery_codes(conn, user_id, [recovery_hash(user_id, c) for c in codes], now)
        await audit.record(conn, username, "mfa.enrol", via=via, recovery_codes=len(codes))
    return codes


async def reset(conn, user_id: int, username: str, actor: str) -> int | None:
    """Lost phone: forgets the user's authenticator and recovery codes and signs them out
    everywhere (the phone may hold a session). The number of sessions ended, or None when the
    user had nothing to reset. Runs in the caller's transaction."""
    if not await queries_mfa.clear_totp(conn, user_id):
        return None
    ended = await queries_admin.delete_user_sessions(conn, user_id)
    await audit.record(conn, actor, "mfa.reset", user=username, sessions_ended=ended)
    return ended


# --- self-service on the account page -----------------------------------------------------------

async def password_again(db, username: str, password: str, lockout: Lockout, purpose: str):
    """The user's row when the password is right: sign-in's own check, so a wrong one counts
    towards the same lock-out (its `auth.failed` line names the purpose). The account page's
    password change (web/account.py) asks with it too."""
    try:
        return await check_sign_in(db, username, password, lockout, via="web", purpose=purpose)
    except SignInRefused as refused:
        if refused.locked:
            raise
        raise SignInRefused(locked=False, reason=PASSWORD_REFUSED) from None


async def renew_recovery_codes(db, user_id: int, username: str, lockout: Lockout, *, otp: str = "",
                               password: str = "") -> list[str] | None:
    """A fresh set of recovery codes, shown once; the old ones stop working in the same commit.
    Confirmed by a current app code (not a recovery code) or else the password; SignInRefused
    otherwise. None when the user has no authenticator (reset meanwhile)."""
    if otp:
        row = await queries_mfa.user_mfa(db.reader, user_id)
        reauth = await second_factor(db, row, otp, lockout, via="web", recovery=False, purpose="mfa.codes")
    else:
        await password_again(db, username, password, lockout, "mfa.codes")
        reauth = "password"
    codes = new_recovery_codes()
    async with db.transaction() as conn:
        if (await queries_mfa.user_mfa(conn, user_id))["totp_secret"] is None:
            return None
        await queries_mfa.replace_recovery_codes(conn, user_id, [recovery_hash(user_id, c) for c in codes], now_ms())
        await audit.record(conn, username, "mfa.codes.renewed", via="web", reauth=reauth, recovery_codes=len(codes))
    return codes


async def turn_off(db, user_id: int, username: str, lockout: Lockout, *, password: str, code: str,
                   keep_session: str) -> int | None:
    """The user turns their own two-factor sign-in off with the password and a current (or
    recovery) code, checked in that order so a wrong password spends no code. The authenticator
    and recovery codes are forgotten and every other session and API token ends, as after an
    admin's reset. The number of sessions ended; None when there was nothing to turn off.
    Whether the role may go without it is the caller's to decide."""
    user = await password_again(db, username, password, lockout, "mfa.off")
    method = await second_factor(db, user, code, lockout, via="web", purpose="mfa.off")
    async with db.transaction() as conn:
        if not await queries_mfa.clear_totp(conn, user_id):
            return None
        ended = await queries_admin.delete_other_sessions(conn, user_id, token_hash(keep_session))
        await audit.record(conn, username, "mfa.disabled", user=username, via="web", reauth=f"password+{method}",
                           sessions_ended=ended)
    return ended
