"""Sign-in, sign-out and two-factor enrolment (authenticator apps, see mfa.py).

`POST /login` takes `username` and `password`, plus `otp` for a user with an authenticator: in
the same form, or on the code page that a right password alone leads to (that form posts `otp`
to `/login` again; a challenge cookie, not a session, says whose password was right). A user
whose role must use two-factor sign-in and has none is sent from the password to the enrolment
page, holding only such a challenge, and gets a session once a code from the new app matches.

The account page, where a user manages their own sign-in, is web/account.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from server import audit, mfa
from server.auth import SESSION_COOKIE, SignInRefused, User, check_sign_in, issue_token, token_hash
from server.clock import now_ms
from server.settings import Settings
from server.store import queries_admin
from server.store.db import Database
from server.web.base import no_store, page_role, refusal, safe_next

TIMED_OUT = "That sign-in has timed out. Sign in again."
ENROL_REFUSED = "That code doesn't match. Check the app shows the account you just added, then type its current code."


def _cookie_options(settings: Settings) -> dict:
    return {"httponly": True, "samesite": "lax", "secure": settings.base_url.startswith("https://"), "path": "/"}


def _with_session(response: Response, token: str, settings: Settings) -> Response:
    response.set_cookie(SESSION_COOKIE, token, max_age=int(settings.session_ttl_s), **_cookie_options(settings))
    response.delete_cookie(mfa.CHALLENGE_COOKIE, path="/")
    return response


def _with_challenge(response: Response, token: str, settings: Settings) -> Response:
    response.set_cookie(mfa.CHALLENGE_COOKIE, token, max_age=mfa.CHALLENGE_TTL_MS // 1000, **_cookie_options(settings))
    return response


async def _new_session(db: Database, user_id: int, username: str, settings: Settings,
                       challenge: str | None = None, **detail) -> str:
    async with db.transaction() as conn:
        if challenge:
            await mfa.close_challenge(conn, challenge)
        token, _ = await issue_token(conn, user_id, "session", settings.session_ttl_s, now_ms())
        await audit.record(conn, username, "auth.login", via="web", **detail)
    return token


def _signin_page(target: str, error: str | None, status: int) -> Template:
    return Template("login.html", status_code=status, context={"next": target, "error": error})


def _code_page(username: str, error: str | None, status: int) -> Response:
    return no_store(Template("login_code.html", status_code=status, context={"username": username, "error": error}))


@get("/login", include_in_schema=False)
async def login_page(next: FromQuery[str | None] = None, error: FromQuery[str | None] = None) -> Template:
    return Template("login.html", context={"next": safe_next(next), "error": error})


# A sign-in form is a few hundred bytes: a bigger body is refused (413) before it is read.
SIGNIN_FORM_BYTES = 16 * 1024


@post("/login", include_in_schema=False, status_code=303, request_max_body_size=SIGNIN_FORM_BYTES)
async def login(request: Request, db: NamedDependency[Database], settings: NamedDependency[Settings]) -> Response:
    form = await request.form()
    username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
    target, otp = safe_next(form.get("next")), str(form.get("otp", "")).strip()[:32]
    if not username and not password and otp:  # the code page: the challenge cookie says who
        return await _code_step(request, db, settings, otp)
    try:
        user = await check_sign_in(db, username, password, settings.lockout, via="web")
    except SignInRefused as refused:
        status, _ = refusal(refused)
        return _signin_page(target, str(refused) if refused.locked else "Wrong username or password.", status)
    if user["totp_secret"] is not None:
        return await _owe_code(db, settings, user, target, otp)
    if user["role"] in settings.mfa_required_roles:  # no session until an authenticator is set up
        async with db.transaction() as conn:
            challenge = await mfa.open_challenge(conn, user["id"], "enrol", target)
        return _with_challenge(Redirect("/account/mfa", status_code=303), challenge, settings)
    token = await _new_session(db, user["id"], username, settings)
    return _with_session(Redirect(target, status_code=303), token, settings)


async def _owe_code(db: Database, settings: Settings, user, target: str, otp: str) -> Response:
    """The password was right; the code came with it (checked now) or is asked for next."""
    error, status = None, 200
    if otp:
        try:
            method = await mfa.second_factor(db, user, otp, settings.lockout, via="web")
        except SignInRefused as refused:
            if refused.locked:
                return _signin_page(target, str(refused), 429)
            error, status = str(refused), 401
        else:
            token = await _new_session(db, user["id"], user["username"], settings, mfa=method)
            return _with_session(Redirect(target, status_code=303), token, settings)
    async with db.transaction() as conn:
        challenge = await mfa.open_challenge(conn, user["id"], "verify", target)
    return _with_challenge(_code_page(user["username"], error, status), challenge, settings)


async def _code_step(request: Request, db: Database, settings: Settings, otp: str) -> Response:
    challenge = request.cookies.get(mfa.CHALLENGE_COOKIE)
    user = await mfa.challenge(db, challenge)
    if user is None or user["c_purpose"] != "verify":
        response = _signin_page("/", TIMED_OUT, 401)
        response.delete_cookie(mfa.CHALLENGE_COOKIE, path="/")
        return response
    try:
        method = await mfa.second_factor(db, user, otp, settings.lockout, via="web")
    except SignInRefused as refused:
        if not refused.locked:
            return _code_page(user["username"], str(refused), 401)
        async with db.transaction() as conn:
            await mfa.close_challenge(conn, challenge)
        response = _signin_page(user["c_next"], str(refused), 429)
        response.delete_cookie(mfa.CHALLENGE_COOKIE, path="/")
        return response
    token = await _new_session(db, user["id"], user["username"], settings, challenge, mfa=method)
    return _with_session(Redirect(user["c_next"], status_code=303), token, settings)


@post("/logout", include_in_schema=False, status_code=303,
      guards=[page_role("officer", enforce_mfa=False, enforce_password=False)])
async def logout(request: Request, db: NamedDependency[Database]) -> Response:
    async with db.transaction() as conn:
        await queries_admin.delete_session(conn, token_hash(request.cookies.get(SESSION_COOKIE, "")))
        await audit.record(conn, request.user.username, "auth.logout")
    response = Redirect("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- two-factor enrolment -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Enrolling:
    """Who is setting up an authenticator: the signed-in user (`user`), or one sent here after
    the password because their role requires it (`challenge`, no session yet)."""
    id: int
    username: str
    enrolled: bool
    user: User | None = None
    challenge: str | None = None
    next: str = "/account"


async def _enrolling(request: Request, db: Database) -> Enrolling | None:
    user = request.scope.get("user")
    if isinstance(user, User):
        return Enrolling(user.id, user.username, user.mfa, user=user)
    token = request.cookies.get(mfa.CHALLENGE_COOKIE)
    row = await mfa.challenge(db, token)
    if row is None or row["c_purpose"] != "enrol":
        return None
    return Enrolling(row["id"], row["username"], row["totp_secret"] is not None, challenge=token, next=row["c_next"])


async def _enrol_page(who: Enrolling, db: Database, settings: Settings, error: str | None = None,
                      status: int = 200) -> Response:
    secret = await mfa.pending_secret(db, who.id)
    context = {"user": who.user, "username": who.username, "secret": mfa.spaced(secret), "error": error,
               "qr": mfa.qr_svg(secret, who.username, settings.mfa_issuer), "forced": who.challenge is not None,
               "issuer": settings.mfa_issuer}
    return no_store(Template("mfa_enrol.html", status_code=status, context=context))


@get("/account/mfa", include_in_schema=False)
async def enrol_page(request: Request, db: NamedDependency[Database], settings: NamedDependency[Settings]) -> Response:
    """Shows the secret being set up (made on the first visit) as a QR code and as text."""
    who = await _enrolling(request, db)
    if who is None:
        return Redirect("/login?next=/account", status_code=303)
    if who.enrolled:
        return Redirect("/account", status_code=303)
    return await _enrol_page(who, db, settings)


@post("/account/mfa", include_in_schema=False, status_code=200)
async def enrol_confirm(request: Request, db: NamedDependency[Database], settings: NamedDependency[Settings]) -> Response:
    """A current code from the app completes enrolment; the recovery codes are shown this once."""
    who = await _enrolling(request, db)
    if who is None or who.enrolled:
        return Redirect("/account" if who else "/login?next=/account", status_code=303)
    otp = str((await request.form()).get("otp", "")).strip()[:32]
    codes = await mfa.confirm_enrolment(db, who.id, who.username, otp, via="web")
    if codes is None:
        return await _enrol_page(who, db, settings, error=ENROL_REFUSED, status=422)
    response = no_store(Template("mfa_codes.html", context={"user": who.user, "codes": codes, "next": who.next}))
    if who.challenge:  # sent here after the password: the code just typed completes the sign-in
        token = await _new_session(db, who.id, who.username, settings, who.challenge, mfa="enrol")
        _with_session(response, token, settings)
    return response


SIGNIN_HANDLERS = [login_page, login, logout, enrol_page, enrol_confirm]
