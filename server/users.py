"""Adding a user, one set of rules for the web app's Users page and `platewatch user add`: a
username of 1 to 64 letters, digits or . _ @ -, unique whatever its case (no `Alice` beside
`alice`), a known role and a password that passes the password rule."""

from __future__ import annotations

import re

from server import audit
from server.auth import hash_password, password_problem
from server.clock import now_ms
from server.settings import ROLES
from server.store import queries, queries_admin

USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")


class UserRefused(ValueError):
    """A user that may not be added; the message says why, as a form shows it."""


def user_problem(username: str, role: str, password: str) -> str | None:
    """What is wrong with a new user before the database is asked, or None."""
    if not USERNAME.fullmatch(username):
        return "A username is 1 to 64 letters, digits or . _ @ -"
    if role not in ROLES:
        return "Choose a role."
    if problem := password_problem(password):
        return f"The initial password {problem}."
    return None


async def add_user(conn, actor: str, username: str, role: str, password: str, *, must_change: bool) -> int:
    """Add a user (UserRefused says why not). `must_change`: the password is one someone else
    chose (an admin on the Users page), so the user replaces it on first sign-in."""
    if problem := user_problem(username, role, password):
        raise UserRefused(problem)
    if await queries_admin.username_taken(conn, username):
        raise UserRefused(f"User '{username}' already exists.")
    user_id = await queries.insert_user(conn, username, hash_password(password), role, now_ms(),
                                        must_change=must_change)
    await audit.record(conn, actor, "user.add", user=username, role=role,
                       **({"must_change": True} if must_change else {}))
    return user_id
