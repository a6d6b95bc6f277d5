"""SQL for what the department answers for in public and to auditors: the purge records retention
is proved by, hits by list kind and outcome, the prohibited purposes list, and the audit lines of
every search and look-up (the access log)."""

from __future__ import annotations

from server.store.queries import Row, all_rows, marks

# Every way an officer sees stored reads (a search, a plate's history, a further page of either,
# a camera's latest reads) and every search refused for its purpose: the access log's lines.
ACCESS_ACTIONS = ("search", "search.more", "plate.history", "plate.history.more", "reads.view", "search.refused")


async def purge_records(conn, since: int, until: int) -> list[Row]:
    """The retention purges' audit lines written in [since, until), oldest first (by index)."""
    return await all_rows(conn, "SELECT at, detail FROM audit_log WHERE action = 'retention.purge' "
                                "AND at >= ? AND at < ? ORDER BY at, id", (since, until))


async def hits_by_kind_and_status(conn, since: int, until: int) -> list[Row]:
    """Hits raised in [since, until) (quarter hours, as local midnights are) by list kind and
    their status now: the officer's outcome, or still open."""
    return await all_rows(conn, "SELECT kind, status, sum(alerts) AS n FROM alert_counts "
                                "WHERE bucket >= ? AND bucket < ? GROUP BY kind, status HAVING n > 0",
                          (since, until))


async def access_lines(conn, since: int, until: int, after_id: int, limit: int) -> list[Row]:
    """Audit lines of searches and look-ups in [since, until), oldest first, after `after_id`."""
    return await all_rows(
        conn, f"SELECT id, at, actor, action, detail FROM audit_log WHERE action IN ({marks(ACCESS_ACTIONS)}) "
              "AND at >= ? AND at < ? AND id > ? ORDER BY id LIMIT ?", (*ACCESS_ACTIONS, since, until, after_id, limit))


# --- prohibited purposes ---------------------------------------------------------------------

async def prohibited_purposes(conn) -> list[Row]:
    return await all_rows(conn, "SELECT id, phrase, created_at, created_by FROM prohibited_purposes ORDER BY phrase")


async def add_prohibited_purpose(conn, phrase: str, username: str, now: int) -> int | None:
    """The new phrase's id; None when the list has it already (in any case)."""
    cur = await conn.execute("INSERT INTO prohibited_purposes (phrase, created_at, created_by) VALUES (?, ?, ?) "
                             "ON CONFLICT (phrase) DO NOTHING", (phrase, now, username))
    return cur.lastrowid if cur.rowcount else None


async def remove_prohibited_purpose(conn, purpose_id: int) -> str | None:
    """The removed phrase; None when there was no such entry."""
    rows = await all_rows(conn, "DELETE FROM prohibited_purposes WHERE id = ? RETURNING phrase", (purpose_id,))
    return rows[0]["phrase"] if rows else None
