"""The core queries: small async functions that take a connection (cameras, reads, hot lists,
alerts, users and sessions, audit). No business rules. The other queries_*.py modules beside it
hold each area's own; push subscriptions are queries_push.py's."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import aiosqlite

from server.store.chain import GENESIS, entry_hash

Row = aiosqlite.Row


def marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


# execute_fetchall is one trip to the connection's thread; execute + fetch + close would be three.
async def one(conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> Row | None:
    rows = await conn.execute_fetchall(sql, params)
    return rows[0] if rows else None


async def all_rows(conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    return list(await conn.execute_fetchall(sql, params))


async def ping(conn: aiosqlite.Connection) -> None:
    """The database answers (the health check)."""
    await one(conn, "SELECT 1")


# --- cameras ---------------------------------------------------------------------------------

async def insert_camera(conn, name: str, location: str, token_hash: str, now: int) -> int:
    cur = await conn.execute(
        "INSERT INTO cameras (name, location, token_hash, created_at) VALUES (?, ?, ?, ?)",
        (name, location, token_hash, now),
    )
    return cur.lastrowid


async def camera_by_token_hash(conn, token_hash: str) -> Row | None:
    return await one(conn, "SELECT id, name FROM cameras WHERE token_hash = ? AND NOT disabled", (token_hash,))


async def touch_camera(conn, camera_id: int, now: int, *, read: bool) -> None:
    sql = "UPDATE cameras SET last_seen_at = ?" + (", last_read_at = ?" if read else "") + " WHERE id = ?"
    await conn.execute(sql, (now, now, camera_id) if read else (now, camera_id))


HEARTBEAT_COLUMNS = ("frames_per_s", "last_frame_at", "frames_gated", "vehicles_seen", "vehicles_read",
                     "frames_dropped", "recognition_lag_s", "overloaded")


async def record_heartbeat(conn, camera_id: int, now: int, health: dict[str, Any]) -> None:
    """`health` holds HEARTBEAT_COLUMNS; a column an older worker does not report becomes NULL."""
    values = [health.get(column) for column in HEARTBEAT_COLUMNS]
    values[-1] = int(bool(values[-1]))
    sets = ", ".join(f"{column} = ?" for column in HEARTBEAT_COLUMNS)
    await conn.execute(f"UPDATE cameras SET last_seen_at = ?, {sets} WHERE id = ?", (now, *values, camera_id))


# --- reads -----------------------------------------------------------------------------------

async def insert_read(conn, read: dict[str, Any]) -> int | None:
    """Store a read; None when its uuid is already stored (a resend)."""
    columns = list(read)
    sql = (
        f"INSERT INTO reads ({', '.join(columns)}) VALUES ({marks(columns)}) "
        "ON CONFLICT(uuid) DO NOTHING RETURNING id"
    )
    row = await one(conn, sql, list(read.values()))
    return row[0] if row else None


async def read_id_by_uuid(conn, uuid: str) -> int | None:
    row = await one(conn, "SELECT id FROM reads WHERE uuid = ?", (uuid,))
    return row[0] if row else None


async def read_by_uuid(conn, uuid: str) -> Row | None:
    return await one(conn, "SELECT id, camera_id, captured_at, revision FROM reads WHERE uuid = ?", (uuid,))


# What a refinement of a read may change: never its id, camera or capture time.
REVISABLE = ("plate", "plate_norm", "plate_folded", "confidence", "candidates", "color", "color_confidence", "box",
             "revision")


async def revise_read(conn, read_id: int, read: dict[str, Any]) -> None:
    """Fold a higher revision into a stored read; images it does not bring are kept."""
    sets = ", ".join(f"{column} = ?" for column in REVISABLE)
    images = ", ".join(f"{column} = coalesce(?, {column})" for column in ("plate_image", "vehicle_image"))
    await conn.execute(f"UPDATE reads SET {sets}, {images} WHERE id = ?",
                       (*(read[c] for c in REVISABLE), read["plate_image"], read["vehicle_image"], read_id))


async def set_read_images(conn, read_id: int, plate_image: str | None, vehicle_image: str | None) -> None:
    await conn.execute(
        "UPDATE reads SET plate_image = ?, vehicle_image = ? WHERE id = ?", (plate_image, vehicle_image, read_id)
    )


READS_BY_FOLDED_SQL = (
    "SELECT id, camera_id, plate_norm, plate_folded, captured_at FROM reads "
    "WHERE plate_folded IN ({marks}) AND captured_at >= ? AND id <= ?"
)
LAST_ID = 2**63 - 1


async def reads_by_folded(conn, folded: Iterable[str], since: int, up_to_id: int = LAST_ID) -> list[Row]:
    """Reads in the window, stored by read `up_to_id`, whose folded plate is one of these (for retro alerts)."""
    folded = list(folded)
    return await all_rows(conn, READS_BY_FOLDED_SQL.format(marks=marks(folded)), [*folded, since, up_to_id])


async def last_read_id(conn) -> int:
    row = await one(conn, "SELECT max(id) FROM reads")
    return row[0] or 0


async def delete_reads(conn, ids: Sequence[int]) -> None:
    if ids:
        await conn.execute(f"DELETE FROM reads WHERE id IN ({marks(ids)})", list(ids))


# --- hot lists -------------------------------------------------------------------------------

# An entry without a priority of its own has its list's default.
ENTRY_COLUMNS = ("e.id, e.plate, e.plate_norm, e.state, e.reason, coalesce(e.priority, h.default_priority) AS priority, "
                 "h.id AS hotlist_id, h.name AS hotlist_name, h.kind")


ACTIVE_ENTRIES_SQL = (
    f"SELECT {ENTRY_COLUMNS} FROM hotlist_entries e JOIN hotlists h ON h.id = e.hotlist_id AND e.version = h.version "
    "WHERE e.plate_folded IN ({marks}) AND (e.expires_at IS NULL OR e.expires_at > ?)"
)


async def active_entries_by_folded(conn, folded: Iterable[str], now: int) -> list[Row]:
    folded = list(folded)
    return await all_rows(conn, ACTIVE_ENTRIES_SQL.format(marks=marks(folded)), [*folded, now])


async def hotlist_by_name(conn, name: str) -> Row | None:
    return await one(conn, "SELECT * FROM hotlists WHERE name = ?", (name,))


async def upsert_hotlist(conn, name: str, kind: str | None, source: str | None, now: int) -> int:
    """Create the list, or update kind/source when given; returns its id."""
    await conn.execute(
        "INSERT INTO hotlists (name, kind, source, created_at) VALUES (?, coalesce(?, 'custom'), coalesce(?, ''), ?) "
        "ON CONFLICT(name) DO UPDATE SET kind = coalesce(?, kind), source = coalesce(?, source)",
        (name, kind, source, now, kind, source),
    )
    row = await hotlist_by_name(conn, name)
    return row["id"]


async def live_plates(conn, name: str) -> list[str]:
    """The plates on the list's live version (none for a list not made yet)."""
    rows = await all_rows(
        conn, "SELECT e.plate_norm FROM live_entries e JOIN hotlists h ON h.id = e.hotlist_id WHERE h.name = ?", (name,))
    return [r[0] for r in rows]


async def next_version(conn, hotlist_id: int) -> int:
    """A version number of the list's own for one import to write its entries under."""
    row = await one(conn, "UPDATE hotlists SET last_version = last_version + 1 WHERE id = ? RETURNING last_version",
                    (hotlist_id,))
    return row[0]


async def insert_entries(conn, hotlist_id: int, version: int, entries: Sequence[dict[str, Any]], now: int) -> None:
    await conn.executemany(
        "INSERT INTO hotlist_entries (hotlist_id, version, plate, plate_norm, plate_folded, state, reason, expires_at, "
        "plate_type, priority, record, note, added_by, added_at) VALUES (:hotlist_id, :version, :plate, :plate_norm, "
        ":plate_folded, :state, :reason, :expires_at, :plate_type, :priority, :record, :note, :added_by, :added_at)",
        [{**e, "hotlist_id": hotlist_id, "version": version, "added_at": now} for e in entries],
    )


async def switch_version(conn, hotlist_id: int, version: int, now: int) -> bool:
    """Make `version` the list's live one; False if a later import's version already is."""
    cur = await conn.execute("UPDATE hotlists SET version = ?, refreshed_at = ? WHERE id = ? AND version < ?",
                             (version, now, hotlist_id, version))
    return cur.rowcount == 1


VERSION_ROWS_SQL = "SELECT id FROM hotlist_entries WHERE hotlist_id = ? AND version BETWEEN ? AND ? LIMIT ?"


async def delete_versions(conn, hotlist_id: int, lowest: int, highest: int, limit: int) -> int:
    """Delete up to `limit` of the list's rows whose version is in [lowest, highest]; how many went."""
    cur = await conn.execute(f"DELETE FROM hotlist_entries WHERE id IN ({VERSION_ROWS_SQL})",
                             (hotlist_id, lowest, highest, limit))
    return cur.rowcount


async def active_entries_for_plates(conn, hotlist_id: int, plates: Iterable[str], now: int) -> list[Row]:
    """The list's live, unexpired entries for these plates (callers pass a bounded number)."""
    plates = list(plates)
    return await all_rows(
        conn,
        f"SELECT {ENTRY_COLUMNS}, e.plate_folded FROM hotlist_entries e "
        "JOIN hotlists h ON h.id = e.hotlist_id AND e.version = h.version "
        f"WHERE h.id = ? AND e.plate_norm IN ({marks(plates)}) AND (e.expires_at IS NULL OR e.expires_at > ?)",
        [hotlist_id, *plates, now],
    )


# --- alerts ----------------------------------------------------------------------------------

COOLDOWN_SQL = (
    "SELECT 1 FROM alerts WHERE entry_plate_norm = ? AND camera_id = ? AND hotlist_id = ? "
    "AND seen_at BETWEEN ? AND ? LIMIT 1"
)


async def recent_alert_exists(conn, entry_plate_norm: str, camera_id: int, hotlist_id: int, start: int, end: int) -> bool:
    row = await one(conn, COOLDOWN_SQL, (entry_plate_norm, camera_id, hotlist_id, start, end))
    return row is not None


async def alert_exists_for_read(conn, read_id: int, entry_plate_norm: str, hotlist_id: int) -> bool:
    row = await one(
        conn,
        "SELECT 1 FROM alerts WHERE read_id = ? AND entry_plate_norm = ? AND hotlist_id = ? LIMIT 1",
        (read_id, entry_plate_norm, hotlist_id),
    )
    return row is not None


async def insert_alert(conn, alert: dict[str, Any]) -> int:
    columns = list(alert)
    cur = await conn.execute(
        f"INSERT INTO alerts ({', '.join(columns)}) VALUES ({marks(columns)})", list(alert.values())
    )
    return cur.lastrowid


ALERT_VIEW = (
    "SELECT a.*, r.plate AS read_plate, r.uuid AS read_uuid, r.confidence, r.plate_image, r.vehicle_image, "
    "c.name AS camera_name, c.location AS camera_location "
    "FROM alerts a JOIN reads r ON r.id = a.read_id JOIN cameras c ON c.id = a.camera_id"
)


async def alert_by_id(conn, alert_id: int) -> Row | None:
    return await one(conn, f"{ALERT_VIEW} WHERE a.id = ?", (alert_id,))


async def list_alerts(conn, *, status: str | None, before_id: int | None, limit: int) -> list[Row]:
    where, params = [], []
    if status:
        where.append("a.status = ?")
        params.append(status)
    if before_id:
        where.append("a.id < ?")
        params.append(before_id)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return await all_rows(conn, f"{ALERT_VIEW}{clause} ORDER BY a.id DESC LIMIT ?", [*params, limit])


async def feed_alerts(conn, limit: int, default_priority: int) -> list[Row]:
    """The officers' feed: unhandled (new) alerts first, highest priority first, then the newest;
    alerts someone has taken on or closed after them, newest first."""
    return await all_rows(conn, f"""{ALERT_VIEW}
        ORDER BY a.status = 'new' DESC,
                 CASE WHEN a.status = 'new' THEN coalesce(a.priority, ?) END DESC, a.id DESC
        LIMIT ?""", (default_priority, limit))


async def update_alert_status(conn, alert_id: int, status: str, username: str, note: str, now: int) -> bool:
    if status == "acknowledged":
        sql = ("UPDATE alerts SET status = ?, acknowledged_at = ?, acknowledged_by = ?, note = ? "
               "WHERE id = ? AND status = 'new'")
    else:
        sql = "UPDATE alerts SET status = ?, resolved_at = ?, resolved_by = ?, note = ? WHERE id = ?"
    cur = await conn.execute(sql, (status, now, username, note, alert_id))
    return cur.rowcount == 1


async def claim_alert_notification(conn, alert_id: int, now: int) -> bool:
    """Mark an alert notified; False if another sender already did (exactly one push per alert)."""
    cur = await conn.execute(
        "UPDATE alerts SET notified_at = ? WHERE id = ? AND notified_at IS NULL", (now, alert_id)
    )
    return cur.rowcount == 1


UNNOTIFIED_SQL = "SELECT id FROM alerts WHERE notified_at IS NULL ORDER BY id"


async def unnotified_alert_ids(conn) -> list[int]:
    rows = await all_rows(conn, UNNOTIFIED_SQL)
    return [r[0] for r in rows]


# --- users, sessions, tokens -----------------------------------------------------------------

async def insert_user(conn, username: str, password_hash: str, role: str, now: int, *,
                      must_change: bool = False) -> int:
    cur = await conn.execute(
        "INSERT INTO users (username, password_hash, role, created_at, must_change_password) VALUES (?, ?, ?, ?, ?)",
        (username, password_hash, role, now, int(must_change)),
    )
    return cur.lastrowid


async def user_by_name(conn, username: str) -> Row | None:
    return await one(conn, "SELECT * FROM users WHERE username = ?", (username,))


async def set_on_duty_until(conn, user_id: int, until: int | None) -> None:
    await conn.execute("UPDATE users SET on_duty_until = ? WHERE id = ?", (until, user_id))


async def on_duty_until(conn, user_id: int) -> int | None:
    row = await one(conn, "SELECT on_duty_until FROM users WHERE id = ?", (user_id,))
    return row[0] if row else None


async def set_password_hash(conn, user_id: int, password_hash: str, *, must_change: bool) -> None:
    """must_change: an admin chose this password, so the user must replace it (see pages.page_role)."""
    await conn.execute("UPDATE users SET password_hash = ?, must_change_password = ? WHERE id = ?",
                       (password_hash, int(must_change), user_id))


async def insert_session(conn, token_hash: str, user_id: int, kind: str, now: int, expires_at: int) -> None:
    await conn.execute(
        "INSERT INTO sessions (token_hash, user_id, kind, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        (token_hash, user_id, kind, now, expires_at),
    )


async def user_by_token_hash(conn, token_hash: str, now: int) -> Row | None:
    return await one(
        conn,
        "SELECT u.id, u.username, u.role, u.totp_secret IS NOT NULL AS mfa, u.must_change_password, s.kind, "
        "s.id AS session_id, coalesce(s.last_seen_at, s.created_at) AS last_seen_at "
        "FROM sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.token_hash = ? AND s.expires_at > ? AND NOT u.disabled",
        (token_hash, now),
    )


async def delete_expired_sessions(conn, now: int) -> int:
    cur = await conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
    return cur.rowcount


# --- audit -----------------------------------------------------------------------------------

async def insert_audit(conn, at: int, actor: str, action: str, detail: str) -> int:
    """Appends one entry to the audit chain (store/chain.py): it follows the newest chained
    entry. Inside the writer's transaction (BEGIN IMMEDIATE), so no other process's entry can
    come between reading that head and writing after it."""
    head = await one(conn, "SELECT hash FROM audit_log WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1")
    prev_hash = head[0] if head else GENESIS
    cur = await conn.execute(
        "INSERT INTO audit_log (at, actor, action, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)",
        (at, actor, action, detail, prev_hash, entry_hash(prev_hash, at, actor, action, detail)))
    return cur.lastrowid


async def count_actions_since(conn, action: str, actor: str, since: int) -> int:
    row = await one(conn, "SELECT count(*) FROM audit_log WHERE action = ? AND at >= ? AND actor = ?", (action, since, actor))
    return row[0]



async def start_signin_attempt(conn, username: str, now: int, stale_before: int) -> int:
    """A password check about to run (auth.check_sign_in); rows older than `stale_before` (left
    by a crash) go first."""
    await conn.execute("DELETE FROM signin_attempts WHERE started_at < ?", (stale_before,))
    cur = await conn.execute("INSERT INTO signin_attempts (username, started_at) VALUES (?, ?)", (username, now))
    return cur.lastrowid


async def count_signin_attempts(conn, username: str, since: int) -> int:
    row = await one(conn, "SELECT count(*) FROM signin_attempts WHERE username = ? AND started_at >= ?", (username, since))
    return row[0]


async def end_signin_attempt(conn, attempt_id: int) -> None:
    await conn.execute("DELETE FROM signin_attempts WHERE id = ?", (attempt_id,))

async def audit_entries(conn, *, action: str | None = None, limit: int = 100) -> list[Row]:
    if action:
        return await all_rows(conn, "SELECT * FROM audit_log WHERE action = ? ORDER BY id DESC LIMIT ?", (action, limit))
    return await all_rows(conn, "SELECT * FROM audit_log ORDER BY id DESC LIMIT ?", (limit,))
