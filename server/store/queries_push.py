"""Web push subscriptions and their deliveries: small async functions that take a connection."""

from __future__ import annotations

from collections.abc import Sequence

from server.store.queries import Row, all_rows, marks, one


async def upsert_subscription(conn, user_id: int, endpoint: str, p256dh: str, auth: str, now: int) -> int:
    row = await one(
        conn,
        "INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, created_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(endpoint) DO UPDATE SET user_id = excluded.user_id, p256dh = excluded.p256dh, "
        "auth = excluded.auth RETURNING id",
        (user_id, endpoint, p256dh, auth, now),
    )
    return row[0]


async def active_subscriptions(conn, now: int) -> list[Row]:
    """The subscriptions of enabled users on duty at `now`: only they are paged. Those of officers
    off duty stay stored for their next shift."""
    return await all_rows(
        conn,
        "SELECT p.id, p.endpoint, p.p256dh, p.auth FROM push_subscriptions p "
        "JOIN users u ON u.id = p.user_id WHERE NOT u.disabled AND u.on_duty_until > ?",
        (now,),
    )


async def delete_subscriptions(conn, ids: Sequence[int]) -> None:
    await conn.execute(f"DELETE FROM push_subscriptions WHERE id IN ({marks(ids)})", list(ids))


async def delete_user_subscription(conn, user_id: int, endpoint: str) -> bool:
    cur = await conn.execute(
        "DELETE FROM push_subscriptions WHERE user_id = ? AND endpoint = ?", (user_id, endpoint)
    )
    return cur.rowcount == 1


async def record_deliveries(conn, rows: Sequence[tuple[int, str, int | None, str | None, float, int]]) -> None:
    await conn.executemany(
        "INSERT INTO push_deliveries (alert_id, endpoint, status, error, ms, sent_at) VALUES (?, ?, ?, ?, ?, ?)", rows
    )


async def mark_subscriptions_ok(conn, ids: Sequence[int], now: int) -> None:
    await conn.execute(f"UPDATE push_subscriptions SET last_ok_at = ? WHERE id IN ({marks(ids)})", [now, *ids])
