"""SQL for hot-list sources: where a list refreshes itself from, and how its last look went."""

from __future__ import annotations

from server.store.queries import Row, all_rows, one

HOUR_MS = 3_600_000
RETRY_MS = HOUR_MS  # after a failed look (or no new file) look again within the hour

SOURCE_COLUMNS = ("s.*, h.name AS hotlist_name, h.import_format, h.refreshed_at")


async def upsert_source(conn, name: str, hotlist_id: int, location: str, every_hours: float, max_age_hours: float,
                        now: int) -> int:
    """The source `name` (one per list), its id; changing where or how often it looks makes it look
    at once, and a new location forgets what was imported from the old one."""
    await conn.execute(
        "INSERT INTO hotlist_sources (name, hotlist_id, location, every_hours, max_age_hours, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET hotlist_id = excluded.hotlist_id, "
        "last_file = CASE WHEN location = excluded.location THEN last_file ELSE '' END, "
        "location = excluded.location, every_hours = excluded.every_hours, "
        "max_age_hours = excluded.max_age_hours, last_attempt_at = NULL",
        (name, hotlist_id, location, every_hours, max_age_hours, now))
    return (await source_by_name(conn, name))["id"]


async def source_by_name(conn, name: str) -> Row | None:
    return await one(conn, "SELECT * FROM hotlist_sources WHERE name = ?", (name,))


async def source_for_list(conn, hotlist_id: int) -> Row | None:
    """The list's source as due_sources gives it (None: the list has none)."""
    return await one(conn, f"SELECT {SOURCE_COLUMNS} FROM hotlist_sources s JOIN hotlists h ON h.id = s.hotlist_id "
                           "WHERE s.hotlist_id = ?", (hotlist_id,))


async def delete_source(conn, source_id: int) -> None:
    await conn.execute("DELETE FROM hotlist_sources WHERE id = ?", (source_id,))


async def stale_sources(conn, now: int) -> list[Row]:
    """Sources whose list was never refreshed, or not within the source's maximum age."""
    return await all_rows(conn, f"""
        SELECT {SOURCE_COLUMNS} FROM hotlist_sources s JOIN hotlists h ON h.id = s.hotlist_id
        WHERE h.refreshed_at IS NULL OR ? - h.refreshed_at > s.max_age_hours * {HOUR_MS}
        ORDER BY h.name""", (now,))


async def source_of_list(conn, hotlist_id: int) -> Row | None:
    return await one(conn, "SELECT name FROM hotlist_sources WHERE hotlist_id = ?", (hotlist_id,))


async def due_sources(conn, now: int) -> list[Row]:
    """Sources never looked at, or whose next look is due: every `every_hours` after a good one,
    within RETRY_MS after a failed one or one that found no new file."""
    return await all_rows(conn, f"""
        SELECT {SOURCE_COLUMNS} FROM hotlist_sources s JOIN hotlists h ON h.id = s.hotlist_id
        WHERE s.last_attempt_at IS NULL OR s.last_attempt_at + CASE
            WHEN s.last_ok_at IS s.last_attempt_at THEN CAST(s.every_hours * {HOUR_MS} AS INTEGER)
            ELSE min(CAST(s.every_hours * {HOUR_MS} AS INTEGER), {RETRY_MS}) END <= ?
        ORDER BY s.id""", (now,))


async def record_look(conn, source_id: int, now: int, *, ok: bool, error: str = "", file: str | None = None) -> None:
    """A look at the source: imported (ok), found nothing new, or failed (`error` says why)."""
    await conn.execute(
        "UPDATE hotlist_sources SET last_attempt_at = ?, last_ok_at = CASE WHEN ? THEN ? ELSE last_ok_at END, "
        "last_error = ?, last_file = coalesce(?, last_file) WHERE id = ?",
        (now, ok, now, error, file, source_id))
