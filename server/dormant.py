"""Accounts nobody uses are disabled (CJIS Security Policy 5.5.1: inactive accounts): a user who
has not signed in (web or API) for settings.disable_unused_days, counted from the latest of their
creation, last sign-in and the last time an admin enabled them, is disabled and signed out by
the server's hourly job, audited `user.disabled` with reason "inactivity". An admin enables them
again on the Users page (`user.enable`), which starts the count afresh.

The last enabled admin is never disabled this way: with no admin left, nobody could enable
anyone again from the web app, and a department locked out of its own box is a worse risk than
one dormant admin account (the policy allows such exceptions when documented). A warning is
logged instead, each run, until another admin exists or the account is used.
"""

from __future__ import annotations

import asyncio
import logging

from server import audit
from server.clock import DAY_MS, now_ms
from server.settings import Settings
from server.store import queries_admin, queries_signin
from server.store.db import Database

log = logging.getLogger(__name__)
CHECK_EVERY_S = 3600.0


async def disable_unused(db: Database, settings: Settings, now: int | None = None) -> list[str]:
    """Disables the accounts unused for disable_unused_days (but the last enabled admin); the
    usernames disabled."""
    now = now_ms() if now is None else now
    disabled = []
    async with db.transaction() as conn:
        for user in await queries_signin.unused_users(conn, now - int(settings.disable_unused_days * DAY_MS)):
            if user["role"] == "admin" and await queries_signin.enabled_admins(conn) <= 1:
                log.warning("user %s, the last enabled admin, has not signed in for %d days: kept enabled "
                            "(add a second admin, or sign in)", user["username"], (now - user["last_use"]) // DAY_MS)
                continue
            if await queries_admin.set_user_disabled(conn, user["id"], True):
                ended = await queries_admin.delete_user_sessions(conn, user["id"])
                await audit.record(conn, "system", "user.disabled", user=user["username"], reason="inactivity",
                                   unused_days=(now - user["last_use"]) // DAY_MS, sessions_ended=ended)
                disabled.append(user["username"])
    return disabled


async def enabled(conn, user_id: int, username: str, actor: str, now: int) -> None:
    """An admin enabled the user (already set in this transaction): audited, and their unused
    days count from now, or the next run would disable them again."""
    await queries_signin.mark_enabled(conn, user_id, now)
    await audit.record(conn, actor, "user.enable", user=username)


async def run_forever(db: Database, settings: Settings) -> None:
    while True:
        try:
            if names := await disable_unused(db, settings):
                log.info("disabled %d unused account(s): %s", len(names), ", ".join(names))
        except Exception:
            log.exception("disabling unused accounts failed; retrying next hour")
        await asyncio.sleep(CHECK_EVERY_S)
