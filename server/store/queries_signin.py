"""SQL of the CJIS sign-in rules: usernames locked by failed sign-ins, sessions' last use, users'
last sign-in and the accounts unused for too long (server/auth.py, server/dormant.py)."""

from __future__ import annotations

from aiosqlite import Row

from server.store.queries import all_rows, one


# --- lock-out ----------------------------------------------------------------------------------

async def signin_lock(conn, username: str) -> Row | None:
    """The username's lock (any case), released or not: locked_at, failures, released_at."""
    return await one(conn, "SELECT * FROM signin_locks WHERE username = ?", (username,))


async def lock_username(conn, username: str, now: int, failures: int) -> None:
    await conn.execute(
        "INSERT INTO signin_locks (username, locked_at, failures) VALUES (?, ?, ?) "
        "ON CONFLICT (username) DO UPDATE SET locked_at = excluded.locked_at, failures = excluded.failures, "
        "released_at = NULL, released_by = NULL", (username, now, failures))


async def release_lock(conn, username: str, now: int, by: str, locked_after: int) -> bool:
    """Unlocks the username if a lock taken after `locked_after` still holds it."""
    cur = await conn.execute(
        "UPDATE signin_locks SET released_at = ?, released_by = ? "
        "WHERE username = ? AND released_at IS NULL AND locked_at > ?", (now, by, username, locked_after))
    return cur.rowcount == 1


async def locked_usernames(conn, locked_after: int) -> set[str]:
    """Usernames (lower-case) whose lock, taken after `locked_after`, nobody released."""
    rows = await all_rows(conn, "SELECT lower(username) FROM signin_locks "
                                "WHERE released_at IS NULL AND locked_at > ?", (locked_after,))
    return {row[0] for row in rows}


# --- sessions ----------------------------------------------------------------------------------

async def touch_session(conn, session_id: int, now: int) -> None:
    await conn.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?", (now, session_id))


async def session_last_seen(conn, session_id: int) -> int | None:
    """When the session was last used (None: it has ended)."""
    row = await one(conn, "SELECT coalesce(last_seen_at, created_at) FROM sessions WHERE id = ?", (session_id,))
    return row[0] if row else None


async def end_session(conn, session_id: int) -> bool:
    cur = await conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
    return cur.rowcount == 1


# --- accounts unused -----------------------------------------------------------------------------

async def record_signin(conn, user_id: int, now: int) -> None:
    await conn.execute("UPDATE users SET last_signin_at = ? WHERE id = ?", (now, user_id))


async def mark_enabled(conn, user_id: int, now: int) -> None:
    """An admin enabled the user: their unused days count from now."""
    await conn.execute("UPDATE users SET enabled_at = ? WHERE id = ?", (now, user_id))


# The latest of creation, last sign-in and last enabling: when the account was last in use.
LAST_USE = "max(created_at, coalesce(last_signin_at, 0), coalesce(enabled_at, 0))"


async def unused_users(conn, before: int) -> list[Row]:
    """Enabled users not in use since `before`, oldest first: id, username, role, last_use."""
    return await all_rows(conn, f"SELECT id, username, role, {LAST_USE} AS last_use FROM users "
                                f"WHERE NOT disabled AND {LAST_USE} < ? ORDER BY last_use, id", (before,))


async def enabled_admins(conn) -> int:
    row = await one(conn, "SELECT count(*) FROM users WHERE role = 'admin' AND NOT disabled")
    return row[0]
