"""Hot-list import, with retro alerts for newly listed plates.

The whole file is checked before anything is written (hotlist_formats.py reads every layout and
reports every bad line with its number, so a clerk fixes the feed once instead of line by line).
An import replaces the list in short transactions (see import_list), never holding the one writer
for long, and remembers the list's format and default priority for its next import.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from contract.plates import fold
from server import audit
from server.alerts import RETRO_PLATES, chunks, raise_retro_alerts
from server.clock import now_ms
# The parser's names too, so the CLI and the web app call one service.
from server.hotlist_formats import (MAX_PLATE, BadLine, ExpiryOutOfRange, FormatError, ListFormat,  # noqa: F401
                                    ParsedList, list_format, parse_csv, parse_expiry, parse_list, parse_priority)
from server.settings import Settings
from server.store import queries, queries_admin
from server.store.db import Database

# What a hot list is for; the dashboard and the transparency report list them in this order.
LIST_KINDS = ("stolen_vehicle", "stolen_plate", "wanted_person", "amber", "silver", "missing_person", "custom")
# Rows one import transaction writes or deletes: a few ms of work, so a camera's read waits at most that.
BATCH_ROWS = 1000
# Another process's writer (the server, when the CLI imports) waits for our lock in SQLite's busy
# handler, which polls at 1 … 50 ms intervals for its first 228 ms: a pause this long after each
# batch is sure to let it in. Inside the server the write lock is a fair queue: no pause needed.
OTHER_PROCESS_PAUSE_S = 0.05
SHRINK_GUARD_MIN = 10  # a list this long or longer may not lose more than half in one import unless forced


# The import options (the CLI's flags of the same names), as the web's upload and source forms
# send them; a list remembers them for its next import and its scheduled source.
IMPORT_OPTIONS = ("format", "delimiter", "columns", "fixed", "encoding", "priority")


def options_format(typed: dict[str, str]) -> tuple[ListFormat, int | None]:
    """(format, default priority) from a form's import options, or ValueError naming the bad
    one. A form sends every field: those the chosen format does not use are ignored."""
    fmt = list_format(*(typed[name] for name in IMPORT_OPTIONS[:5]), ignore_others=True)
    return fmt, parse_priority(typed["priority"])


def remembered_options(hotlist) -> dict[str, str]:
    """The list's remembered import options, as a form shows them."""
    return {**ListFormat.from_json(hotlist["import_format"]).options(), "priority": str(hotlist["default_priority"])}


class InvalidHotlist(ValueError):
    def __init__(self, errors: list[BadLine]) -> None:
        super().__init__("; ".join(map(str, errors)))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class ImportResult:
    hotlist_id: int
    total: int
    added: int
    removed: int
    skipped: int
    retro_alerts: list[int]
    forced: bool = False


class ListWouldShrink(ValueError):
    """The import would empty the list or drop most of it: a wrong file, not a daily refresh."""


class ImportSuperseded(RuntimeError):
    """Another import of the same list, started later, finished first; this one was dropped."""


def check_shrink(listed: int, removed: int, remaining: int) -> None:
    """The one rule for an import that would empty a list, or remove more than half of one with
    at least SHRINK_GUARD_MIN entries: refused unless forced (the CLI's --force, the web's box)."""
    if remaining == 0:
        raise ListWouldShrink(f"importing it would remove all {listed} entries" if listed else
                              "it has no entries to import")
    if listed >= SHRINK_GUARD_MIN and removed * 2 > listed:
        raise ListWouldShrink(f"importing it would remove {removed} of its {listed} entries, leaving {remaining}")


async def import_list(
    db: Database, name: str, parsed: ParsedList, *, actor: str, settings: Settings, kind: str | None = None,
    source: str | None = None, skip_bad: bool = False, force: bool = False, pause_s: float = 0.0,
    list_format: ListFormat | None = None, default_priority: int | None = None,
) -> ImportResult:
    """Replace the list's entries; nothing changes if any line is bad (unless skip_bad), or if the
    list would be emptied or mostly dropped (unless force). The new entries are written in short
    transactions under a version of their own, made live in one tiny transaction, and the old
    rows deleted in short transactions after: cameras' reads never wait long, and matching sees
    the old list or the new one; `pause_s` after each (OTHER_PROCESS_PAUSE_S outside the server).
    Newly listed plates read within retention alert at once. The list keeps `list_format` (the
    web form offers it next time) and `default_priority` (for entries without their own) when given."""
    if parsed.errors and not skip_bad:
        raise InvalidHotlist(parsed.errors)
    if kind is not None and kind not in LIST_KINDS:
        raise ValueError(f"unknown list kind '{kind}' (known: {', '.join(LIST_KINDS)})")
    listed, added, removed = await asyncio.to_thread(_diff, await queries.live_plates(db.reader, name), parsed.entries)
    total = len(parsed.entries)
    if not force:
        check_shrink(listed, len(removed), total)
    now = now_ms()
    async with db.transaction() as conn:
        hotlist_id = await queries.upsert_hotlist(conn, name, kind, source, now)
        version = await queries.next_version(conn, hotlist_id)
    for batch in chunks(parsed.entries, BATCH_ROWS):
        async with db.transaction() as conn:
            await queries.insert_entries(conn, hotlist_id, version, batch, now)
        await asyncio.sleep(pause_s)
    async with db.transaction() as conn:
        if live := await queries.switch_version(conn, hotlist_id, version, now):
            read_before = await queries.last_read_id(conn)  # reads after this were matched against the new list
            await queries_admin.remember_import(conn, hotlist_id, list_format and list_format.to_json(),
                                                default_priority)
            await audit.record(conn, actor, "hotlist.import", hotlist=name, entries=total, added=len(added),
                               removed=len(removed), skipped=len(parsed.errors), forced=force,
                               format=list_format and list_format.format, default_priority=default_priority)
    if not live:
        await _delete_versions(db, hotlist_id, version, version, pause_s)
        raise ImportSuperseded(f"another import of '{name}' finished first; this one was dropped")
    retro = await _retro_alerts_in_batches(db, hotlist_id, added, settings.retention_cutoff(now), now,
                                           read_before, pause_s)
    await _delete_versions(db, hotlist_id, 0, version - 1, pause_s)  # the old list, and any import that died half-way
    return ImportResult(hotlist_id, total, len(added), len(removed), len(parsed.errors), retro, force)


def _diff(listed: list[str], entries: list[dict]) -> tuple[int, list[str], set[str]]:
    """(plates listed now, plates added in order, plates removed). Off the event loop: lists run
    to 100,000s."""
    before, after = set(listed), {e["plate_norm"] for e in entries}
    return len(before), sorted(after - before), before - after


async def _retro_alerts_in_batches(db: Database, hotlist_id: int, plates: list[str], since: int, now: int,
                                   read_before: int, pause_s: float) -> list[int]:
    alert_ids: list[int] = []
    for chunk in chunks(plates, RETRO_PLATES):
        # Looked up on a reader first: most new plates were never read, and a chunk without a read
        # needs no write lock (nor the pause that lets the server's writer in after one).
        if not await queries.reads_by_folded(db.reader, {fold(p) for p in chunk}, since, read_before):
            continue
        async with db.transaction() as conn:
            alert_ids += await raise_retro_alerts(conn, hotlist_id, set(chunk), since, now, read_before)
        await asyncio.sleep(pause_s)
    return alert_ids


async def _delete_versions(db: Database, hotlist_id: int, lowest: int, highest: int, pause_s: float) -> None:
    while True:
        async with db.transaction() as conn:
            deleted = await queries.delete_versions(conn, hotlist_id, lowest, highest, BATCH_ROWS)
        if deleted < BATCH_ROWS:
            return
        await asyncio.sleep(pause_s)
