"""Changing one's own password on /account (`POST /account/password`).

As with the two-factor forms beside it (web/signin.py, mfa.py), the current password is asked
for again: a session on a phone left unlocked must not be enough. That is sign-in's own check, so
a wrong one is an `auth.failed` line (purpose "password.change") and counts towards the same
lock-out. The new password must pass the rule every password passes (auth.password_problem).
Whoever knew the old password may hold a session, an API token or a half-done sign-in: all of
them end, as when two-factor sign-in is turned off, and this browser stays signed in. It also
ends the "must change password" state an admin's reset (or adding the user on /users) begins.
"""

from __future__ import annotations

from litestar import Request, post
from litestar.di import NamedDependency
from litestar.response import Template

from server import audit, mfa
from server.auth import SESSION_COOKIE, SignInRefused, User, hash_password, password_problem, token_hash
from server.settings import Settings
from server.store import queries, queries_admin, queries_mfa
from server.store.db import Database
from server.web.base import page_role
from server.web.signin import account_view, refusal

PURPOSE = "password.change"  # names this form in the `auth.failed` lines it causes
MISSING = "Type your current password, then the new one twice."
MISMATCH = "The two new passwords don't match. Type the same new password twice."
SAME = "The new password is the same as your current one. Choose a different one."


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
        return await account_view(request, db, settings, 422, password_error=error)
    try:
        await mfa.password_again(db, request.user.username, current, PURPOSE)
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


PASSWORD_HANDLERS = [change_password]
