"""The account page (`/account`): the user's own sign-in. An enrolled user gets new recovery codes
(`POST /account/mfa/codes`) or turns two-factor sign-in off (`POST /account/mfa/off`), and anyone
changes their password (`POST /account/password`), each after proving again who they are.

As with the two-factor forms, the current password is asked for again: a session on a phone left
unlocked must not be enough. That is sign-in's own check, so a wrong one is an `auth.failed` line
(purpose "password.change") and counts towards the same lock-out. The new password must pass the
rule every password passes (auth.password_problem). Whoever knew the old password may hold a
session, an API token or a half-done sign-in: all of them end, as when two-factor sign-in is
turned off, and this browser stays signed in. It also ends the "must change password" state an
admin's reset (or adding the user on /users) begins.
"""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from server import audit, mfa
from server.auth import (MIN_PASSWORD, SESSION_COOKIE, SignInRefused, User, hash_password, new_password_problem,
                         password_problem, token_hash)
from server.settings import Settings
from server.store import queries, queries_admin, queries_mfa
from server.store.db import Database
from server.web.base import current_duty, no_store, page_role, refusal

REAUTH_MISSING = "Type the current code from your app, or your password."
OFF_REQUIRED = ("Your role ({role}) must use two-factor sign-in, so it can't be turned off. "
                "Lost or replaced your phone? Ask an admin to reset it.")
PURPOSE = "password.change"  # names this form in the `auth.failed` lines it causes
MISSING = "Type your current password, then the new one twice."
MISMATCH = "The two new passwords don't match. Type the same new password twice."
SAME = "The new password is the same as your current one. Choose a different one."


async def account_view(request: Request, db: Database, settings: Settings, status: int = 200, **messages) -> Template:
    """The account page; `messages` are notice, codes_error, off_error, password_notice or
    password_error, or must_change=False once the password an admin chose is replaced
    (request.user still says it as this request began)."""
    row = await queries_mfa.user_mfa(db.reader, request.user.id)
    context = {"user": request.user, "active": "account", "enrolled_at": row["totp_enrolled_at"],
               "must_change": request.user.must_change_password,
               "codes_left": await queries_mfa.recovery_codes_left(db.reader, request.user.id),
               "required": request.user.role in settings.mfa_required_roles, "min_password": MIN_PASSWORD,
               **await current_duty(db, request.user, settings, "/account"), **messages}
    return Template("account.html", status_code=status, context=context)


@get("/account", include_in_schema=False, guards=[page_role("officer", enforce_password=False)])
async def account_page(request: Request, db: NamedDependency[Database], settings: NamedDependency[Settings]) -> Template:
    return await account_view(request, db, settings)


@post("/account/mfa/codes", include_in_schema=False, status_code=200, guards=[page_role("officer")])
async def renew_codes(request: Request, db: NamedDependency[Database], settings: NamedDependency[Settings]) -> Response:
    """Ten new recovery codes, shown once; the old ones stop working. A current code from the app
    or the password first: a session on a phone left unlocked is not enough."""
    if not request.user.mfa:
        return Redirect("/account", status_code=303)
    form = await request.form()
    otp, password = str(form.get("otp", "")).strip()[:32], str(form.get("password", ""))
    if not otp and not password:
        return await account_view(request, db, settings, 422, codes_error=REAUTH_MISSING)
    try:
        codes = await mfa.renew_recovery_codes(db, request.user.id, request.user.username, settings.lockout,
                                                 otp=otp, password=password)
    except SignInRefused as refused:
        status, error = refusal(refused)
        return await account_view(request, db, settings, status, codes_error=error)
    if codes is None:
        return Redirect("/account", status_code=303)
    context = {"user": request.user, "codes": codes, "next": "/account", "renewed": True}
    return no_store(Template("mfa_codes.html", context=context))


@post("/account/mfa/off", include_in_schema=False, status_code=200, guards=[page_role("officer")])
async def turn_off(request: Request, db: NamedDependency[Database], settings: NamedDependency[Settings]) -> Response:
    """The user turns their own two-factor sign-in off with the password and a code, unless their
    role must use it; their other sessions and API tokens end, as after an admin's reset."""
    user = request.user
    if not user.mfa:
        return Redirect("/account", status_code=303)
    if user.role in settings.mfa_required_roles:
        return await account_view(request, db, settings, 403, off_error=OFF_REQUIRED.format(role=user.role))
    form = await request.form()
    try:
        ended = await mfa.turn_off(db, user.id, user.username, settings.lockout, password=str(form.get("password", "")),
                                   code=str(form.get("otp", "")).strip()[:32],
                                   keep_session=request.cookies.get(SESSION_COOKIE, ""))
    except SignInRefused as refused:
        status, error = refusal(refused)
        return await account_view(request, db, settings, status, off_error=error)
    notice = "Two-factor sign-in is off: your password alone now signs you in."
    if ended:  # API tokens count as sessions here, as in the admin's reset
        notice += f" {ended} other session{'' if ended == 1 else 's'} signed out."
    return await account_view(request, db, settings, notice=notice)


def form_problem(current: str, new: str, confirm: str) -> str | None:
    """What is wrong with the form before the current password is checked. None of it says
    anything about the current password, so none of it counts towards the lock-out."""
    if not (current and new and confirm):
        return MISSING
    if new != confirm:
        return MISMATCH
    if problem := password_problem(new):
        return f"The new password {problem}."
    return None


async def store_new_password(db: Database, user: User, password: str, keep_session: str) -> int:
    """The new hash, and every other session, API token and sign-in challenge of the user ended
    in the same commit. The number of sessions and tokens ended."""
    async with db.transaction() as conn:
        await queries.set_password_hash(conn, user.id, hash_password(password), must_change=False)
        ended = await queries_admin.delete_other_sessions(conn, user.id, token_hash(keep_session))
        await queries_mfa.delete_user_challenges(conn, user.id)
        await audit.record(conn, user.username, "password.changed", via="web", sessions_ended=ended)
    return ended


# The one form a user whose password an admin chose may post (pages.PasswordChangeRequired).
@post("/account/password", include_in_schema=False, status_code=200,
      guards=[page_role("officer", enforce_password=False)])
async def change_password(request: Request, db: NamedDependency[Database],
                          settings: NamedDependency[Settings]) -> Template:
    form = await request.form()
    current, new, confirm = (str(form.get(name, "")) for name in ("current_password", "new_password",
                                                                   "confirm_password"))
    if error := form_problem(current, new, confirm):
        if error not in (MISSING, MISMATCH):  # the password rules refused it: audited
            await new_password_problem(db, new, request.user.username, request.user.username, "web")
        return await account_view(request, db, settings, 422, password_error=error)
    try:
        await mfa.password_again(db, request.user.username, current, settings.lockout, PURPOSE)
    except SignInRefused as refused:
        status, error = refusal(refused)
        return await account_view(request, db, settings, status, password_error=error)
    if new == current:  # only said once the current password is proven: it would give it away
        return await account_view(request, db, settings, 422, password_error=SAME)
    ended = await store_new_password(db, request.user, new, request.cookies.get(SESSION_COOKIE, ""))
    notice = "Your password is changed: use the new one from now on."
    if ended:  # API tokens count as sessions here, as when two-factor sign-in is turned off
        notice += f" {ended} other session{'' if ended == 1 else 's'} signed out."
    return await account_view(request, db, settings, password_notice=notice, must_change=False)


ACCOUNT_HANDLERS = [account_page, renew_codes, turn_off, change_password]
