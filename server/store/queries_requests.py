"""Public records requests: stored, counted per asking address, queued, answered, and counted for
the transparency report."""

from __future__ import annotations

from aiosqlite import Row

QUEUE_LIMIT = 200


async def count_from_client(conn, client_key: str, since: int) -> int:
    """Requests from one address (its keyed hash) since `since`: the rate limit counts these."""
    rows = await conn.execute_fetchall(
        "SELECT count(*) FROM records_requests WHERE client_key = ? AND received_at >= ?", (client_key, since))
    return rows[0][0]


async def insert_request(conn, received_at: int, plate: str, name: str, email: str, postal_address: str,
                         message: str, client_key: str) -> int:
    rows = await conn.execute_fetchall(
        "INSERT INTO records_requests (received_at, plate, name, email, postal_address, message, client_key) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (received_at, plate, name, email, postal_address, message, client_key))
    return rows[0][0]


async def queue(conn, answered: bool, limit: int = QUEUE_LIMIT) -> list[Row]:
    """Open requests oldest first (the longest waiting on top), or answered ones newest first."""
    sql = ("SELECT id, received_at, plate, name, answered_at, answered_by FROM records_requests "
           + ("WHERE answered_at IS NOT NULL ORDER BY answered_at DESC, id DESC" if answered
              else "WHERE answered_at IS NULL ORDER BY received_at, id") + " LIMIT ?")
    return list(await conn.execute_fetchall(sql, (limit,)))


async def request_by_id(conn, request_id: int) -> Row | None:
    rows = await conn.execute_fetchall(
        "SELECT id, received_at, plate, name, email, postal_address, message, answer, answered_at, answered_by "
        "FROM records_requests WHERE id = ?", (request_id,))
    return rows[0] if rows else None


async def record_answer(conn, request_id: int, answer: str, answered_at: int, answered_by: str) -> bool:
    """The answer, once: False when the request is unknown or already answered."""
    rows = await conn.execute_fetchall(
        "UPDATE records_requests SET answer = ?, answered_at = ?, answered_by = ? "
        "WHERE id = ? AND answered_at IS NULL RETURNING id", (answer, answered_at, answered_by, request_id))
    return bool(rows)


async def received_between(conn, since: int, until: int) -> int:
    rows = await conn.execute_fetchall(
        "SELECT count(*) FROM records_requests WHERE received_at >= ? AND received_at < ?", (since, until))
    return rows[0][0]


async def answer_times_between(conn, since: int, until: int) -> list[int]:
    """How long each request answered in the period waited for its answer (ms)."""
    rows = await conn.execute_fetchall(
        "SELECT answered_at - received_at FROM records_requests WHERE answered_at >= ? AND answered_at < ?",
        (since, until))
    return [row[0] for row in rows]
