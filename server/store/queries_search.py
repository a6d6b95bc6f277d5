"""SQL for search, plate history, recent reads per camera and the department's search reasons.

Every search is bounded by its time range and names the index it walks (INDEXED BY). The
database has no statistics (no ANALYZE), and without them SQLite's planner is lured by
`ORDER BY captured_at DESC LIMIT n` into walking the time index even for one plate, or a
camera's index for an exact plate; at 10 million reads that is the difference between a
millisecond and seconds. tests/test_search_queries.py holds each shape to its plan.

Results (of a search or of a plate's history) page newest first by (captured_at, id), and a
further page continues strictly after the last read shown (keyset, never OFFSET): its time is
the new upper bound of the range, so every shape keeps its index and its bounds, and the read id
(in every index, as the rowid) breaks the ties of reads captured in the same millisecond. A deep
page costs no more than the first.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any

import aiosqlite

from contract.plates import fold

Row = aiosqlite.Row

SEARCH_LIMIT = 200
HISTORY_LIMIT = 500
RECENT_LIMIT = 50
READ_COLUMNS = ("id, camera_id, captured_at, plate, plate_norm, plate_folded, confidence, color, color_confidence, "
                "plate_image, vehicle_image")
# The characters a folded plate can hold: one-character edits are made from these.
FOLDED_ALPHABET = "".join(sorted(set(fold(string.ascii_uppercase + string.digits))))
WILDCARDS = "*?"
# After the last read shown (captured_at, id): what is left at its own time comes after it by id.
# The time also caps the range's upper bound, so the index seeks straight to it.
KEYSET = "(captured_at < ? OR id < ?)"


@dataclass(frozen=True, slots=True)
class Criteria:
    pattern: str  # A–Z0–9 with * (any run) and ? (one character); "" when searching a camera only
    fuzzy: bool
    since: int
    until: int
    camera_id: int | None = None
    colour: str | None = None


def plate_pattern(text: str) -> str:
    """Upper-case A–Z0–9 and the wildcards; spaces, dashes and dots go, as in contract.plates.normalize."""
    kept = re.sub(r"[^A-Z0-9*?]", "", text.upper())
    return re.sub(r"\*+", "*", kept)


def has_wildcard(pattern: str) -> bool:
    return any(w in pattern for w in WILDCARDS)


def literal_prefix(pattern: str) -> str:
    return re.match(r"[A-Z0-9]*", pattern).group()


def one_edit_variants(folded: str) -> set[str]:
    """Every folded plate one substitution, insertion or deletion away (and the plate itself):
    a few hundred values, each one seek on reads_folded_time, instead of a scan with a distance
    function over every read in the range."""
    found = {folded}
    for i in range(len(folded) + 1):
        for ch in FOLDED_ALPHABET:
            found.add(folded[:i] + ch + folded[i:])
            if i < len(folded):
                found.add(folded[:i] + ch + folded[i + 1:])
        if i < len(folded):
            found.add(folded[:i] + folded[i + 1:])
    found.discard("")
    return found


def search_sql(c: Criteria, limit: int, after: tuple[int, int] | None = None) -> tuple[str, list[Any]]:
    """The statement for one search and its parameters, newest first; with `after` (the last
    read shown: captured_at, id), the page that follows it."""
    until = c.until if after is None else min(c.until, after[0])
    where, params = ["captured_at BETWEEN ? AND ?"], [c.since, until]
    if not c.pattern:
        index = "reads_camera_time"  # the form insists on a camera when no plate is given
    elif has_wildcard(c.pattern):
        # The folded GLOB is implied by the exact one; it is there to be checked inside an index.
        where.append("plate_folded GLOB ?")
        params.append(fold(c.pattern))
        if not c.fuzzy:
            where.append("plate_norm GLOB ?")
            params.append(c.pattern)
        if len(literal_prefix(c.pattern)) >= 2:  # GLOB 'AB*' becomes a range on the plate index
            index = "reads_folded_time" if c.fuzzy else "reads_plate_time"
        else:  # no usable prefix: walk the time range, testing the folded plate inside the index
            index = "reads_time_folded"
    elif c.fuzzy:
        variants = sorted(one_edit_variants(fold(c.pattern)))
        where.append(f"plate_folded IN ({','.join('?' * len(variants))})")
        params.extend(variants)
        index = "reads_folded_time"
    else:
        where.append("plate_norm = ?")
        params.append(c.pattern)
        index = "reads_plate_time"
    if c.camera_id is not None:
        where.append("camera_id = ?")
        params.append(c.camera_id)
    if c.colour:
        where.append("color = ?")
        params.append(c.colour)
    if after is not None:
        where.append(KEYSET)
        params.extend(after)
    sql = (f"SELECT {READ_COLUMNS} FROM reads INDEXED BY {index} WHERE {' AND '.join(where)} "
           "ORDER BY captured_at DESC, id DESC LIMIT ?")
    return sql, [*params, limit]


async def search_reads(conn, criteria: Criteria, limit: int = SEARCH_LIMIT,
                       after: tuple[int, int] | None = None) -> tuple[list[Row], bool]:
    """Up to `limit` matching reads, newest first (older than `after` when given), and whether
    more matched."""
    sql, params = search_sql(criteria, limit + 1, after)
    rows = list(await conn.execute_fetchall(sql, params))
    return rows[:limit], len(rows) > limit


HISTORY_SQL = (f"SELECT {READ_COLUMNS} FROM reads INDEXED BY reads_folded_time "
               "WHERE plate_folded = ? AND captured_at >= ? ORDER BY captured_at DESC, id DESC LIMIT ?")
HISTORY_AFTER_SQL = (f"SELECT {READ_COLUMNS} FROM reads INDEXED BY reads_folded_time "
                     f"WHERE plate_folded = ? AND captured_at BETWEEN ? AND ? AND {KEYSET} "
                     "ORDER BY captured_at DESC, id DESC LIMIT ?")


async def plate_history(conn, plate_norm: str, since: int, limit: int = HISTORY_LIMIT,
                        after: tuple[int, int] | None = None) -> tuple[list[Row], bool]:
    """Every read of the plate, and of plates that differ only by look-alike characters, newest
    first (older than `after`, the last one shown, when given), and whether more remain."""
    if after is None:
        sql, params = HISTORY_SQL, (fold(plate_norm), since, limit + 1)
    else:
        sql, params = HISTORY_AFTER_SQL, (fold(plate_norm), since, after[0], *after, limit + 1)
    rows = list(await conn.execute_fetchall(sql, params))
    return rows[:limit], len(rows) > limit


RECENT_SQL = (f"SELECT {READ_COLUMNS} FROM reads INDEXED BY reads_camera_time "
              "WHERE camera_id = ? ORDER BY captured_at DESC, id DESC LIMIT ?")


async def recent_reads(conn, camera_id: int, limit: int = RECENT_LIMIT) -> list[Row]:
    return list(await conn.execute_fetchall(RECENT_SQL, (camera_id, limit)))


async def audit_line(conn, line_id: int) -> Row | None:
    """One audit line, for a further page of results to show which search it continues."""
    rows = await conn.execute_fetchall("SELECT id, actor, action, detail FROM audit_log WHERE id = ?", (line_id,))
    return rows[0] if rows else None


async def cameras(conn) -> list[Row]:
    return list(await conn.execute_fetchall("SELECT id, name, location, disabled FROM cameras ORDER BY name"))


# --- search reasons --------------------------------------------------------------------------

async def search_reasons(conn, *, include_retired: bool = False) -> list[Row]:
    where = "" if include_retired else " WHERE retired_at IS NULL"
    return list(await conn.execute_fetchall(f"SELECT * FROM search_reasons{where} ORDER BY label"))


async def active_reason(conn, reason_id: int) -> Row | None:
    rows = await conn.execute_fetchall(
        "SELECT * FROM search_reasons WHERE id = ? AND retired_at IS NULL", (reason_id,))
    return rows[0] if rows else None


async def add_reason(conn, label: str, username: str, now: int) -> int:
    """Add a reason; adding a retired one's label again brings it back."""
    rows = await conn.execute_fetchall(
        "INSERT INTO search_reasons (label, created_at, created_by) VALUES (?, ?, ?) "
        "ON CONFLICT(label) DO UPDATE SET retired_at = NULL, retired_by = NULL RETURNING id",
        (label, now, username))
    return rows[0][0]


async def retire_reason(conn, reason_id: int, username: str, now: int) -> Row | None:
    """Retire an active reason; the retired row stays, so old audit lines keep their meaning."""
    rows = await conn.execute_fetchall(
        "UPDATE search_reasons SET retired_at = ?, retired_by = ? WHERE id = ? AND retired_at IS NULL "
        "RETURNING id, label", (now, username, reason_id))
    return rows[0] if rows else None
