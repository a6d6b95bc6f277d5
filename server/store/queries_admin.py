"""SQL for hot-list, camera and user administration, the audit view and its export, and the dashboard.
Small async functions taking a connection, like queries.py; no business rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiosqlite

from server.store.queries import all_rows, one

Row = aiosqlite.Row
# Camera health: the worker heartbeats every 30 s. Nothing heard for 5 minutes is "silent";
# heard from, but no frame (or read, without heartbeats) for 2 minutes is "stale".
SILENT_AFTER_MS = 5 * 60_000
STALE_AFTER_MS = 2 * 60_000


# --- hot lists -------------------------------------------------------------------------------

async def hotlists_overview(conn, now: int, hotlist_id: int | None = None) -> list[Row]:
    """Every list (or one) with its entry count and unexpired count, and its source if it has one."""
    return await all_rows(conn, """
        SELECT h.*,
          (SELECT count(*) FROM live_entries e WHERE e.hotlist_id = h.id) AS entries,
          (SELECT count(*) FROM live_entries e WHERE e.hotlist_id = h.id
             AND (e.expires_at IS NULL OR e.expires_at > :now)) AS active,
          s.name AS source_name, s.location AS source_location, s.every_hours, s.max_age_hours,
          s.last_attempt_at AS source_looked_at, s.last_error AS source_error
        FROM hotlists h LEFT JOIN hotlist_sources s ON s.hotlist_id = h.id
        WHERE :id IS NULL OR h.id = :id ORDER BY h.name""", {"now": now, "id": hotlist_id})


async def hotlist_by_id(conn, hotlist_id: int) -> Row | None:
    return await one(conn, "SELECT * FROM hotlists WHERE id = ?", (hotlist_id,))


async def hotlist_name_taken(conn, name: str) -> bool:
    return await one(conn, "SELECT 1 FROM hotlists WHERE name = ? COLLATE NOCASE", (name,)) is not None


async def insert_hotlist(conn, name: str, kind: str, source: str, now: int) -> int:
    cur = await conn.execute(
        "INSERT INTO hotlists (name, kind, source, created_at) VALUES (?, ?, ?, ?)", (name, kind, source, now))
    return cur.lastrowid


# instr() rather than LIKE: plates are A–Z0–9 only, and no wildcard escaping is needed.
async def remember_import(conn, hotlist_id: int, list_format: str | None, default_priority: int | None) -> None:
    """The list's import format (JSON) and default priority, each where given."""
    await conn.execute("UPDATE hotlists SET import_format = coalesce(?, import_format), "
                       "default_priority = coalesce(?, default_priority) WHERE id = ?",
                       (list_format, default_priority, hotlist_id))


ENTRIES_WHERE = "WHERE hotlist_id = ? AND instr(plate_norm, ?) > 0"
ENTRIES_PAGE_SQL = (
    "SELECT id, plate, plate_norm, state, reason, expires_at, plate_type, priority, record, note, added_by, added_at "
    "FROM live_entries "
    f"{ENTRIES_WHERE} ORDER BY plate_norm, expires_at, id LIMIT ? OFFSET ?"  # the index order
)


async def entries_page(conn, hotlist_id: int, contains: str, limit: int, offset: int) -> list[Row]:
    return await all_rows(conn, ENTRIES_PAGE_SQL, (hotlist_id, contains, limit, offset))


async def count_entries(conn, hotlist_id: int, contains: str) -> int:
    row = await one(conn, f"SELECT count(*) FROM live_entries {ENTRIES_WHERE}", (hotlist_id, contains))
    return row[0]


async def entry_by_id(conn, hotlist_id: int, entry_id: int) -> Row | None:
    return await one(conn, "SELECT * FROM live_entries WHERE id = ? AND hotlist_id = ?", (entry_id, hotlist_id))


async def entry_by_plate(conn, hotlist_id: int, plate_norm: str) -> Row | None:
    return await one(
        conn, "SELECT * FROM live_entries WHERE hotlist_id = ? AND plate_norm = ?", (hotlist_id, plate_norm))


async def insert_entry(conn, hotlist_id: int, entry: dict[str, Any], now: int) -> int:
    """Onto the list's live version."""
    cur = await conn.execute(
        "INSERT INTO hotlist_entries (hotlist_id, version, plate, plate_norm, plate_folded, state, reason, expires_at, "
        "added_by, added_at) VALUES (?, (SELECT version FROM hotlists WHERE id = ?), ?, ?, ?, ?, ?, ?, ?, ?)",
        (hotlist_id, hotlist_id, entry["plate"], entry["plate_norm"], entry["plate_folded"], entry["state"], entry["reason"],
         entry["expires_at"], entry["added_by"], now),
    )
    return cur.lastrowid


async def delete_entry(conn, entry_id: int) -> bool:
    cur = await conn.execute("DELETE FROM hotlist_entries WHERE id = ?", (entry_id,))
    return cur.rowcount == 1


# --- cameras ---------------------------------------------------------------------------------

CAMERA_HEALTH_SQL = """
    SELECT c.id, c.name, c.location, c.disabled, c.created_at, c.last_seen_at, c.last_read_at,
      c.last_frame_at, c.frames_per_s, c.frames_gated, c.vehicles_seen, c.vehicles_read, c.frames_dropped,
      c.recognition_lag_s, c.overloaded,
      (SELECT count(*) FROM reads r WHERE r.camera_id = c.id AND r.captured_at >= :hour_ago) AS reads_last_hour,
      CASE WHEN c.disabled THEN 'disabled'
           WHEN c.last_seen_at IS NULL OR c.last_seen_at < :silent_before THEN 'silent'
           WHEN c.overloaded THEN 'overloaded'
           WHEN coalesce(c.last_frame_at, c.last_read_at, c.last_seen_at) < :stale_before THEN 'stale'
           ELSE 'ok' END AS status
    FROM cameras c ORDER BY c.disabled, c.name"""


async def camera_health(conn, now: int) -> list[Row]:
    return await all_rows(conn, CAMERA_HEALTH_SQL, {
        "hour_ago": now - 3_600_000, "silent_before": now - SILENT_AFTER_MS, "stale_before": now - STALE_AFTER_MS})


async def camera_by_id(conn, camera_id: int) -> Row | None:
    return await one(conn, "SELECT id, name, disabled FROM cameras WHERE id = ?", (camera_id,))


async def camera_name_taken(conn, name: str) -> bool:
    return await one(conn, "SELECT 1 FROM cameras WHERE name = ? COLLATE NOCASE", (name,)) is not None


async def set_camera_disabled(conn, camera_id: int, disabled: bool) -> bool:
    cur = await conn.execute(
        "UPDATE cameras SET disabled = ? WHERE id = ? AND disabled != ?", (int(disabled), camera_id, int(disabled)))
    return cur.rowcount == 1


# --- users -----------------------------------------------------------------------------------

async def users_overview(conn) -> list[Row]:
    return await all_rows(conn, """
        SELECT u.id, u.username, u.role, u.disabled, u.created_at, u.totp_secret IS NOT NULL AS mfa,
          u.must_change_password, u.last_signin_at AS last_login
        FROM users u ORDER BY u.disabled, u.username""")


async def count_on_duty(conn, now: int) -> int:
    """Enabled users on duty at `now` (a shift that has run out is off duty)."""
    row = await one(conn, "SELECT count(*) FROM users WHERE NOT disabled AND on_duty_until > ?", (now,))
    return row[0]


async def user_by_id(conn, user_id: int) -> Row | None:
    return await one(conn, "SELECT id, username, role, disabled FROM users WHERE id = ?", (user_id,))


async def username_taken(conn, username: str) -> bool:
    return await one(conn, "SELECT 1 FROM users WHERE username = ? COLLATE NOCASE", (username,)) is not None


async def set_user_role(conn, user_id: int, role: str) -> bool:
    cur = await conn.execute("UPDATE users SET role = ? WHERE id = ? AND role != ?", (role, user_id, role))
    return cur.rowcount == 1


async def set_user_disabled(conn, user_id: int, disabled: bool) -> bool:
    cur = await conn.execute(
        "UPDATE users SET disabled = ? WHERE id = ? AND disabled != ?", (int(disabled), user_id, int(disabled)))
    return cur.rowcount == 1


async def delete_user_sessions(conn, user_id: int) -> int:
    """Signs the user out everywhere: browser sessions and API tokens."""
    cur = await conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
    return cur.rowcount


async def delete_session(conn, token_hash: str) -> None:
    """Signs one browser out (its own sign-out button)."""
    await conn.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))


async def delete_other_sessions(conn, user_id: int, keep_hash: str) -> int:
    """Signs the user out everywhere but the browser they are using: its session stays."""
    cur = await conn.execute("DELETE FROM sessions WHERE user_id = ? AND token_hash != ?", (user_id, keep_hash))
    return cur.rowcount


# --- audit log -------------------------------------------------------------------------------

def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit lines: an action prefix and an actor ("" for any), and times (epoch ms, inclusive)."""
    action_prefix: str = ""
    actor: str = ""
    since: int | None = None
    until: int | None = None


def _audit_where(which: AuditFilter) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if which.action_prefix:
        where.append("action LIKE ? ESCAPE '\\'")
        params.append(_like_prefix(which.action_prefix))
    if which.actor:
        where.append("actor = ?")
        params.append(which.actor)
    if which.since is not None:
        where.append("at >= ?")
        params.append(which.since)
    if which.until is not None:
        where.append("at <= ?")
        params.append(which.until)
    return where, params


async def audit_page(conn, *, action_prefix: str, actor: str, before_id: int | None, limit: int) -> list[Row]:
    """Newest first; `before_id` pages back (keyset, so deep pages cost no more than the first)."""
    where, params = _audit_where(AuditFilter(action_prefix, actor))
    if before_id:
        where.append("id < ?")
        params.append(before_id)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return await all_rows(conn, f"SELECT * FROM audit_log {clause} ORDER BY id DESC LIMIT ?", [*params, limit])


async def last_audit_id(conn) -> int:
    row = await one(conn, "SELECT coalesce(max(id), 0) FROM audit_log")
    return row[0]


async def count_audit(conn, which: AuditFilter, through_id: int) -> int:
    where, params = _audit_where(which)
    row = await one(conn, f"SELECT count(*) FROM audit_log WHERE {' AND '.join([*where, 'id <= ?'])}",
                    [*params, through_id])
    return row[0]


async def audit_chunk(conn, which: AuditFilter, *, after_id: int, through_id: int, limit: int) -> list[Row]:
    """Oldest first: the matching lines with after_id < id <= through_id (keyset over the rowid,
    so each chunk seeks straight to where the last one ended)."""
    where, params = _audit_where(which)
    return await all_rows(conn, "SELECT id, at, actor, action, detail, prev_hash, hash FROM audit_log "
                                f"WHERE {' AND '.join([*where, 'id > ?', 'id <= ?'])} ORDER BY id LIMIT ?",
                          [*params, after_id, through_id, limit])


# --- dashboard: counts per day, summed from the running counts migration m011 keeps (read_counts,
# alert_counts: per quarter hour, which every local day is a whole number of). `bounds` are the
# days' starts then the last day's end (epoch ms): local days are not all 86,400,000 ms long, so
# day i is [bounds[i], bounds[i + 1]). ---------------------------------------------------------

def _days(bounds: list[int]) -> tuple[str, list[int]]:
    """A `days(day, start, stop)` table for a WITH clause, and its parameters."""
    rows = ", ".join(["(?, ?, ?)"] * (len(bounds) - 1))
    params = [value for i in range(len(bounds) - 1) for value in (i, bounds[i], bounds[i + 1])]
    return f"days(day, start, stop) AS (VALUES {rows})", params


async def reads_per_day(conn, bounds: list[int]) -> list[Row]:
    days, params = _days(bounds)
    return await all_rows(conn, f"WITH {days} SELECT day, sum(reads) AS n FROM days JOIN read_counts "
                                "ON bucket >= start AND bucket < stop GROUP BY day HAVING n > 0", params)


async def hits_per_day_by_kind(conn, bounds: list[int]) -> list[Row]:
    days, params = _days(bounds)
    return await all_rows(conn, f"WITH {days} SELECT day, kind, sum(alerts) AS n FROM days JOIN alert_counts "
                                "ON bucket >= start AND bucket < stop GROUP BY day, kind HAVING n > 0", params)


async def hit_outcomes(conn, since: int, until: int) -> list[Row]:
    """`since` and `until` on quarter hours (local midnights are)."""
    return await all_rows(conn, "SELECT status, sum(alerts) AS n FROM alert_counts WHERE bucket >= ? AND bucket < ? "
                            "GROUP BY status HAVING n > 0", (since, until))


async def searches_by_reason(conn, since: int, until: int) -> list[Row]:
    """The reason each search gave: searches of reads and plate-history lookups both state one,
    kept in their audit lines' detail."""
    return await all_rows(conn, "SELECT coalesce(json_extract(detail, '$.reason'), '') AS reason, count(*) AS n "
                            "FROM audit_log WHERE action IN ('search', 'plate.history') AND at >= ? AND at < ? "
                            "GROUP BY reason ORDER BY n DESC, reason", (since, until))


# --- the public transparency report: counts only, never names -------------------------------

async def cameras_in_service(conn) -> int:
    row = await one(conn, "SELECT count(*) FROM cameras WHERE NOT disabled")
    return row[0]


async def people_by_role(conn) -> list[Row]:
    """Enabled accounts per role: who can sign in today."""
    return await all_rows(conn, "SELECT role, count(*) AS n FROM users WHERE NOT disabled GROUP BY role")


LAST_ACTION_SQL = "SELECT max(at) FROM audit_log WHERE action = ?"  # audit_action_time answers it alone


async def last_action_time(conn, action: str) -> int | None:
    row = await one(conn, LAST_ACTION_SQL, (action,))
    return row[0] if row else None
