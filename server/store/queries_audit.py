"""SQL for the audit chain (store/chain.py): walking it in id order, finding an entry by its
hash, the head and the latest entry of an action, and the purge of the oldest entries. The
entries themselves are written only by queries.insert_audit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from server.store.queries import Row, all_rows, one


@asynccontextmanager
async def read_snapshot(conn) -> AsyncIterator[None]:
    """One read transaction: every query inside sees the log as it was when the first ran, so a
    walk in chunks is not confused by entries the server appends meanwhile."""
    await conn.execute("BEGIN")
    try:
        yield
    finally:
        await conn.execute("COMMIT")


async def chain_rows(conn, after_id: int, limit: int) -> list[Row]:
    """Oldest first, from the entry after `after_id` (keyset over the rowid)."""
    return await all_rows(conn, "SELECT id, at, actor, action, detail, prev_hash, hash FROM audit_log "
                                "WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit))


async def entry_with_hash(conn, line_hash: str) -> int | None:
    """The id of the entry whose hash this is (a full scan: called only once a link is broken)."""
    row = await one(conn, "SELECT id FROM audit_log WHERE hash = ? ORDER BY id LIMIT 1", (line_hash,))
    return row[0] if row else None


async def chain_head(conn) -> tuple[int, str | None]:
    """(entries in the log, the newest chained entry's hash; None for an empty log)."""
    count = await one(conn, "SELECT count(*) FROM audit_log")
    head = await one(conn, "SELECT hash FROM audit_log WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1")
    return count[0], head[0] if head else None


async def latest_entry(conn, action: str) -> Row | None:
    """The newest entry of one action (audit_action_time finds it without a scan)."""
    return await one(conn, "SELECT id, at, actor, action, detail, prev_hash, hash FROM audit_log "
                           "WHERE action = ? ORDER BY at DESC, id DESC LIMIT 1", (action,))


async def oldest_entries(conn, limit: int) -> list[Row]:
    """The log's first entries, oldest first: what an audit purge would take next."""
    return await all_rows(conn, "SELECT id, at, hash FROM audit_log ORDER BY id LIMIT ?", (limit,))


async def delete_entries_through(conn, through_id: int) -> int:
    """Deletes the entries up to `through_id`; the trigger lets only a recorded purge do it."""
    cur = await conn.execute("DELETE FROM audit_log WHERE id <= ?", (through_id,))
    return cur.rowcount
