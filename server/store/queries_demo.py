"""What `platewatch demo` asks of the database beyond the services: its camera under a fresh token,
and the reads and alerts it narrates (synchronous, from a read-only connection of its own)."""

from __future__ import annotations

import sqlite3

from server.store.queries import insert_camera, one


async def give_camera_token(conn, name: str, location: str, token_hash: str, now: int) -> None:
    """The camera `name` with this token from now on: created, or kept with its reads."""
    await conn.execute("DELETE FROM cameras WHERE name = ? AND id NOT IN (SELECT camera_id FROM reads)", (name,))
    await conn.execute("UPDATE cameras SET token_hash = ? WHERE name = ?", (token_hash, name))
    if await one(conn, "SELECT 1 FROM cameras WHERE name = ?", (name,)) is None:
        await insert_camera(conn, name, location, token_hash, now)


def last_ids(conn: sqlite3.Connection) -> tuple[int, int]:
    """The newest read's and alert's ids (0 where none)."""
    return conn.execute("SELECT (SELECT coalesce(max(id), 0) FROM reads), "
                        "(SELECT coalesce(max(id), 0) FROM alerts)").fetchone()


def reads_after(conn: sqlite3.Connection, last_id: int) -> list[tuple]:
    return conn.execute("SELECT id, plate, confidence, color, captured_at FROM reads WHERE id > ? ORDER BY id",
                        (last_id,)).fetchall()


def alerts_after(conn: sqlite3.Connection, last_id: int) -> list[tuple]:
    return conn.execute("SELECT id, entry_plate, hotlist_name, entry_reason, rule FROM alerts WHERE id > ? "
                        "ORDER BY id", (last_id,)).fetchall()
