"""Admins manage people on /users: add, change role, disable or enable, reset two-factor sign-in,
and set a temporary password for someone who forgot theirs.

Each change answers with the users list (or its `_users.html` fragment for htmx), or the list
again with status 422 and an error. An admin can't act on themself here where it could lock them
out or skip a check: their own password is changed on /account, which asks for the current one.
Every change is audited in the transaction that makes it.
"""

from __future__ import annotations

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template

from server import audit, auth, dormant, mfa
from server.auth import new_password_problem, reset_password
from server.clock import now_ms
from server.settings import ROLES, Settings
from server.store import queries_admin
from server.store.db import Database
from server.users import UserRefused, add_user
from server.web.base import form_field, page_role, render

ADMIN = [page_role("admin")]


async def _users_page(request: Request, db: Database, status: int = 200, **extra) -> Template:
    users = await queries_admin.users_overview(db.reader)
    lockout, now = request.app.state.settings.lockout, now_ms()
    context = {"users": users, "form": {}, "now": now, "roles": ROLES,
               "locked": await auth.locked_usernames(db.reader, now, lockout),
               "min_password": auth.MIN_PASSWORD, **extra}  # the rule password_problem applies
    return render(request, "users.html", "_users.html", context, status)


@get("/users", include_in_schema=False, guards=ADMIN)
async def users_page(request: Request, db: NamedDependency[Database]) -> Template:
    return await _users_page(request, db)


@post("/users", include_in_schema=False, guards=ADMIN, status_code=200)
async def user_add(request: Request, db: NamedDependency[Database]) -> Template:
    form = await request.form()
    values = {"username": form_field(form, "username", 200), "role": form_field(form, "role")}
    password = str(form.get("password", ""))
    await new_password_problem(db, password, request.user.username, values["username"], "web")  # audits a refusal
    try:
        async with db.transaction() as conn:  # add_user says what is wrong; the admin's password is temporary
            await add_user(conn, request.user.username, values["username"], values["role"], password,
                           must_change=True)
    except UserRefused as refused:
        return await _users_page(request, db, status=422, error=str(refused), form=values)
    return await _users_page(request, db, notice=f"Added {values['username']} as {values['role']}. "
                                                 "They choose their own password when they first sign in.")


async def _target_or_404(conn, user_id: int):
    target = await queries_admin.user_by_id(conn, user_id)
    if target is None:
        raise NotFoundException(f"no user {user_id}")
    return target


async def _change_user(request: Request, db: Database, user_id: int, *, role: str | None = None,
                       disabled: bool | None = None) -> Template:
    """Role or enabled/disabled; an admin can't lock themself out (so an admin always remains)."""
    me = request.user
    if user_id == me.id and (disabled or (role and role != "admin")):
        what = "disable your own account" if disabled else "change your own role"
        return await _users_page(request, db, status=422, error=f"You can't {what}: ask another admin.")
    if role is not None and role not in ROLES:
        return await _users_page(request, db, status=422, error="Choose a role.")
    async with db.transaction() as conn:
        target = await _target_or_404(conn, user_id)
        name = target["username"]
        if role is not None and await queries_admin.set_user_role(conn, user_id, role):
            await audit.record(conn, me.username, "user.role", user=name, old=target["role"], new=role)
            notice = f"{name} is now {role}."
        elif disabled and await queries_admin.set_user_disabled(conn, user_id, True):
            ended = await queries_admin.delete_user_sessions(conn, user_id)  # signed out everywhere, now
            await audit.record(conn, me.username, "user.disable", user=name, sessions_ended=ended)
            notice = f"{name} is disabled and signed out everywhere."
        elif disabled is False and await queries_admin.set_user_disabled(conn, user_id, False):
            await dormant.enabled(conn, user_id, name, me.username, now_ms())
            notice = f"{name} is enabled."
        else:
            notice = f"Nothing to change for {name}."
    return await _users_page(request, db, notice=notice)


@post("/users/{user_id:int}/role", include_in_schema=False, guards=ADMIN, status_code=200)
async def user_role(request: Request, user_id: FromPath[int], db: NamedDependency[Database]) -> Template:
    form = await request.form()
    return await _change_user(request, db, user_id, role=form_field(form, "role"))


@post("/users/{user_id:int}/disable", include_in_schema=False, guards=ADMIN, status_code=200)
async def user_disable(request: Request, user_id: FromPath[int], db: NamedDependency[Database]) -> Template:
    return await _change_user(request, db, user_id, disabled=True)


@post("/users/{user_id:int}/enable", include_in_schema=False, guards=ADMIN, status_code=200)
async def user_enable(request: Request, user_id: FromPath[int], db: NamedDependency[Database]) -> Template:
    return await _change_user(request, db, user_id, disabled=False)


@post("/users/{user_id:int}/unlock", include_in_schema=False, guards=ADMIN, status_code=200)
async def user_unlock(request: Request, user_id: FromPath[int], db: NamedDependency[Database],
                      settings: NamedDependency[Settings]) -> Template:
    """Failed sign-ins locked the account (settings lockout_*): the admin, having checked with the
    user, lets them try again."""
    async with db.transaction() as conn:
        name = (await _target_or_404(conn, user_id))["username"]
        unlocked = await auth.unlock(conn, name, request.user.username, now_ms(), settings.lockout)
    return await _users_page(request, db, notice=f"{name} is unlocked: they can sign in again." if unlocked
                             else f"{name} is not locked.")


@post("/users/{user_id:int}/mfa-reset", include_in_schema=False, guards=ADMIN, status_code=200)
async def user_mfa_reset(request: Request, user_id: FromPath[int], db: NamedDependency[Database]) -> Template:
    """Lost phone: the user's authenticator and recovery codes are forgotten, they are signed out
    everywhere, and they set up a new one (`platewatch user mfa-reset` does it for the last admin)."""
    if user_id == request.user.id:
        error = "You can't reset your own two-factor sign-in: ask another admin."
        return await _users_page(request, db, status=422, error=error)
    async with db.transaction() as conn:
        target = await _target_or_404(conn, user_id)
        ended = await mfa.reset(conn, user_id, target["username"], request.user.username)
    if ended is None:
        return await _users_page(request, db, notice=f"{target['username']} has no two-factor sign-in to reset.")
    return await _users_page(request, db, notice=f"Two-factor sign-in reset for {target['username']}: signed out "
                                                 "everywhere. They set up their new phone on their Account page.")


@post("/users/{user_id:int}/password", include_in_schema=False, guards=ADMIN, status_code=200)
async def user_password(request: Request, user_id: FromPath[int], db: NamedDependency[Database]) -> Template:
    """Forgotten password: the admin sets a temporary one and hands it over in person; the user is
    signed out everywhere (`platewatch user password` does it for the last admin)."""
    if user_id == request.user.id:  # /account asks for the current password: a left-open session must not do
        error = "You can't reset your own password here: change it on your Account page (/account)."
        return await _users_page(request, db, status=422, error=error)
    target = await _target_or_404(db.reader, user_id)
    password = str((await request.form()).get("password", ""))
    if problem := await new_password_problem(db, password, request.user.username, target["username"], "web"):
        error = f"The temporary password for {target['username']} {problem}. Nothing was changed."
        return await _users_page(request, db, status=422, error=error)
    async with db.transaction() as conn:
        await reset_password(conn, user_id, target["username"], password, request.user.username)
    return await _users_page(request, db, notice=(
        f"Temporary password set for {target['username']}: signed out everywhere. Give it to them in person, "
        "not by email or text, and have them change it on their Account page straight away."))


USER_HANDLERS = [users_page, user_add, user_role, user_disable, user_enable, user_unlock, user_mfa_reset,
                 user_password]
