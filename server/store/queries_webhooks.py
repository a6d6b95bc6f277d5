"""Webhook targets, their deliveries (one alert offered to one target) and each attempt at one."""

from __future__ import annotations

from collections.abc import Sequence

from server.store.queries import Row, all_rows, marks, one

TARGET_COLUMNS = "id, url, kinds, created_by, created_at, enabled"  # never the secret: only the sender reads it


async def insert_webhook(conn, url: str, kinds: str, secret: str, created_by: str, now: int) -> int:
    cur = await conn.execute(
        "INSERT INTO webhooks (url, kinds, secret, created_by, created_at) VALUES (?, ?, ?, ?, ?)",
        (url, kinds, secret, created_by, now),
    )
    return cur.lastrowid


async def webhook_by_id(conn, webhook_id: int) -> Row | None:
    return await one(conn, f"SELECT {TARGET_COLUMNS} FROM webhooks WHERE id = ?", (webhook_id,))


async def delete_webhook(conn, webhook_id: int) -> bool:
    """Its deliveries and their attempts go with it (ON DELETE CASCADE)."""
    cur = await conn.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))
    return cur.rowcount == 1


async def list_webhooks(conn) -> list[Row]:
    """Every target, with how many of its deliveries wait for a (re)try."""
    return await all_rows(
        conn,
        f"SELECT {', '.join('w.' + c for c in TARGET_COLUMNS.split(', '))}, "
        "(SELECT count(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.state = 'pending') AS pending "
        "FROM webhooks w ORDER BY w.id",
    )


async def queue_for_alert(conn, alert_id: int, now: int) -> int:
    """Offer an alert to every enabled target whose kinds include its list's kind, due now; how many.
    UNIQUE (webhook_id, alert_id) keeps an alert offered once whatever calls this twice."""
    cur = await conn.execute(
        "INSERT OR IGNORE INTO webhook_deliveries (webhook_id, alert_id, created_at, next_at) "
        "SELECT w.id, a.id, ?, ? FROM webhooks w JOIN alerts a ON a.id = ? WHERE w.enabled "
        "AND (w.kinds = '' OR instr(',' || w.kinds || ',', ',' || a.hotlist_kind || ',') > 0)",
        (now, now, alert_id),
    )
    return cur.rowcount


def _waiting_sql(columns: str, busy: Sequence[int]) -> str:
    """Deliveries waiting for a try, to enabled targets other than the `busy` ones (bind: busy)."""
    return (f"SELECT {columns} FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id "
            f"WHERE d.next_at IS NOT NULL AND w.enabled AND d.webhook_id NOT IN ({marks(busy)})")


async def next_due_at(conn, busy: Sequence[int]) -> int | None:
    """When the next delivery to a target other than the `busy` ones is due (None: none waits).
    Asked on a reader first, so an idle round takes no write lock."""
    row = await one(conn, _waiting_sql("min(d.next_at)", busy), busy)
    return row[0]


async def claim_due(conn, now: int, lease_until: int, limit: int, per_target: int, busy: Sequence[int]) -> list[Row]:
    """Up to `limit` deliveries due by `now`, at most `per_target` to each target not `busy`, taken in
    turn across targets (so one dead target's backlog never holds the others up), oldest first. Each
    is put off to `lease_until`, so the next round does not pick it while it is in flight (and a
    crash mid-flight retries it then)."""
    columns = ("d.id, d.webhook_id, d.alert_id, d.attempts, d.created_at, w.url, w.secret, "
               "row_number() OVER (PARTITION BY d.webhook_id ORDER BY d.next_at, d.id) AS turn")
    rows = await all_rows(conn, f"SELECT * FROM ({_waiting_sql(columns, busy)} AND d.next_at <= ?) "
                                "WHERE turn <= ? ORDER BY turn, id LIMIT ?", (*busy, now, per_target, limit))
    await conn.executemany("UPDATE webhook_deliveries SET next_at = ? WHERE id = ?",
                           [(lease_until, row["id"]) for row in rows])
    return rows


async def release(conn, delivery_ids: Sequence[int], now: int) -> None:
    """Deliveries claimed but not tried (a shutdown cut the post short): due again now."""
    await conn.execute(f"UPDATE webhook_deliveries SET next_at = ? WHERE id IN ({marks(delivery_ids)}) "
                       "AND state = 'pending'", (now, *delivery_ids))


async def record_attempt(conn, delivery_id: int, attempt: int, at: int, status: int | None, error: str, ms: float,
                         next_at: int | None, state: str) -> None:
    await conn.execute(
        "INSERT INTO webhook_attempts (delivery_id, attempt, at, status, error, ms, next_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (delivery_id, attempt, at, status, error, ms, next_at),
    )
    await conn.execute("UPDATE webhook_deliveries SET attempts = ?, next_at = ?, state = ? WHERE id = ?",
                       (attempt, next_at, state, delivery_id))


async def recent_attempts(conn, per_target: int) -> list[Row]:
    """Each target's latest `per_target` attempts, newest first."""
    return await all_rows(
        conn,
        "SELECT * FROM (SELECT d.webhook_id, d.alert_id, d.state, t.attempt, t.at, t.status, t.error, t.ms, "
        "t.next_at, row_number() OVER (PARTITION BY d.webhook_id ORDER BY t.id DESC) AS n "
        "FROM webhook_attempts t JOIN webhook_deliveries d ON d.id = t.delivery_id) WHERE n <= ? "
        "ORDER BY webhook_id, n",
        (per_target,),
    )
