"""SQL for evidence holds: placing and releasing them, what retention may purge around them, and
the counts the transparency report shows. A read has at most one active (unreleased) hold; the
partial unique index holds_active_read enforces it and answers "is this read held?" alone."""

from __future__ import annotations

from collections.abc import Sequence

from server.store.queries import Row, all_rows, one

ACTIVE = "released_at IS NULL"
NOT_HELD = f"NOT EXISTS (SELECT 1 FROM holds h WHERE h.read_id = reads.id AND h.{ACTIVE})"
# Retention's batches: the oldest reads before the cutoff that no active hold keeps.
PURGEABLE_SQL = (f"SELECT id, plate_image, vehicle_image FROM reads WHERE captured_at < ? AND {NOT_HELD} "
                 "ORDER BY captured_at LIMIT ?")
HOLD_VIEW = ("SELECT h.*, r.plate, r.plate_norm, r.captured_at, c.name AS camera FROM holds h "
             "JOIN reads r ON r.id = h.read_id JOIN cameras c ON c.id = r.camera_id")


async def purgeable_reads(conn, cutoff: int, limit: int) -> list[Row]:
    return await all_rows(conn, PURGEABLE_SQL, (cutoff, limit))


async def future_reads(conn, horizon: int, limit: int) -> list[Row]:
    """Reads dated after `horizon` that no active hold keeps (stored before ingest refused them)."""
    return await all_rows(conn, f"SELECT id, plate_image, vehicle_image FROM reads WHERE captured_at > ? "
                                f"AND {NOT_HELD} ORDER BY captured_at DESC LIMIT ?", (horizon, limit))


async def held_past(conn, cutoff: int) -> int:
    """Reads captured before `cutoff` that an active hold keeps."""
    row = await one(conn, f"SELECT count(*) FROM holds h JOIN reads r ON r.id = h.read_id "
                          f"WHERE h.{ACTIVE} AND r.captured_at < ?", (cutoff,))
    return row[0]


async def oldest_unheld_read_time(conn) -> int | None:
    """The capture time of the oldest read no hold keeps: what retention's promise is measured by."""
    row = await one(conn, f"SELECT captured_at FROM reads WHERE {NOT_HELD} ORDER BY captured_at LIMIT 1")
    return row[0] if row else None


async def oldest_active_hold(conn) -> int | None:
    row = await one(conn, f"SELECT min(placed_at) FROM holds WHERE {ACTIVE}")
    return row[0] if row else None


async def read_for_hold(conn, read_id: int) -> Row | None:
    return await one(conn, "SELECT id, plate, plate_norm, captured_at, plate_image, vehicle_image FROM reads "
                           "WHERE id = ?", (read_id,))


async def read_by_uuid(conn, uuid: str) -> Row | None:
    return await one(conn, "SELECT id, captured_at, plate_image, vehicle_image FROM reads WHERE uuid = ?", (uuid,))


async def read_images(conn, read_ids: Sequence[int]) -> list[Row]:
    marks = ",".join("?" * len(read_ids))
    return await all_rows(conn, f"SELECT id, plate_image, vehicle_image FROM reads WHERE id IN ({marks})",
                          list(read_ids))


async def active_hold_for_read(conn, read_id: int) -> Row | None:
    return await one(conn, f"SELECT * FROM holds WHERE read_id = ? AND {ACTIVE}", (read_id,))


async def active_holds_for_reads(conn, read_ids: Sequence[int]) -> dict[int, Row]:
    if not read_ids:
        return {}
    marks = ",".join("?" * len(read_ids))
    rows = await all_rows(conn, f"SELECT * FROM holds WHERE read_id IN ({marks}) AND {ACTIVE}", list(read_ids))
    return {row["read_id"]: row for row in rows}


async def insert_hold(conn, read_id: int, case: str, note: str, username: str, now: int) -> int:
    cur = await conn.execute(
        "INSERT INTO holds (read_id, case_number, note, placed_by, placed_at) VALUES (?, ?, ?, ?, ?)",
        (read_id, case, note, username, now))
    return cur.lastrowid


async def hold_by_id(conn, hold_id: int) -> Row | None:
    return await one(conn, f"{HOLD_VIEW} WHERE h.id = ?", (hold_id,))


async def release_hold(conn, hold_id: int, username: str, now: int) -> bool:
    """Release an active hold; False when there is none by that id (unknown or released already)."""
    cur = await conn.execute(f"UPDATE holds SET released_by = ?, released_at = ? WHERE id = ? AND {ACTIVE}",
                             (username, now, hold_id))
    return cur.rowcount == 1


async def active_holds(conn) -> list[Row]:
    """Every active hold, oldest first: the longest-kept evidence is the first to review."""
    return await all_rows(conn, f"{HOLD_VIEW} WHERE h.{ACTIVE} ORDER BY h.placed_at, h.id")


async def released_holds(conn, limit: int) -> list[Row]:
    """The latest released holds whose reads are still stored (a purged read takes its holds)."""
    return await all_rows(conn, f"{HOLD_VIEW} WHERE h.released_at IS NOT NULL ORDER BY h.released_at DESC, h.id DESC "
                                "LIMIT ?", (limit,))
