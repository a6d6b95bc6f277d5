"""Hot-list CSV validation and import, with retro alerts for newly listed plates.

The whole file is checked before anything is written, and every bad line is reported with its
line number, so a clerk fixes the feed once instead of line by line. An import replaces the list
in short transactions (see import_list), never holding the one writer for long.
"""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo

from contract.plates import fold, normalize
from server import audit
from server.alerts import RETRO_PLATES, chunks, raise_retro_alerts
from server.clock import EARLIEST_MS, LATEST_MS, SHOWABLE_DAYS, end_of_day, now_ms, to_ms
from server.settings import Settings
from server.store import queries
from server.store.db import Database

# What a hot list is for; the dashboard and the transparency report list them in this order.
LIST_KINDS = ("stolen_vehicle", "stolen_plate", "wanted_person", "amber", "silver", "missing_person", "custom")
COLUMNS = ("plate", "state", "reason", "expires")
MAX_PLATE = 10
# Rows one import transaction writes or deletes: a few ms of work, so a camera's read waits at most that.
BATCH_ROWS = 1000
# Another process's writer (the server, when the CLI imports) waits for our lock in SQLite's busy
# handler, which polls at 1 … 50 ms intervals for its first 228 ms: a pause this long after each
# batch is sure to let it in. Inside the server the write lock is a fair queue: no pause needed.
OTHER_PROCESS_PAUSE_S = 0.05
SHRINK_GUARD_MIN = 10  # a list this long or longer may not lose more than half in one import unless forced


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(slots=True)
class ParsedList:
    entries: list[dict] = field(default_factory=list)
    errors: list[BadLine] = field(default_factory=list)


class InvalidHotlist(ValueError):
    def __init__(self, errors: list[BadLine]) -> None:
        super().__init__("; ".join(map(str, errors)))
        self.errors = errors


class ExpiryOutOfRange(ValueError):
    """An ISO date or time, but one the app cannot keep and show (9999-12-31 ends in year 10000)."""


def parse_expiry(text: str, zone: tzinfo = UTC) -> int | None:
    """A date expires at the end of that day in `zone` (the department's time zone); a datetime
    needs its offset, and keeps it. Either must lie where every page can show it."""
    text = text.strip()
    if not text:
        return None
    if len(text) == 10:
        day = date.fromisoformat(text)
        try:
            expires = end_of_day(day, zone)
        except OverflowError:  # the day after 9999-12-31
            expires = LATEST_MS + 1
    else:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise ValueError("a time needs a UTC offset, e.g. 2026-12-31T23:00:00Z")
        expires = to_ms(moment)
    if not EARLIEST_MS <= expires <= LATEST_MS:
        raise ExpiryOutOfRange(f"is out of range: give a date from {SHOWABLE_DAYS}, or none for no expiry")
    return expires


def _header_errors(header: list[str] | None) -> list[BadLine]:
    if not header:
        return [BadLine(1, "empty file: a header line with a 'plate' column is required")]
    names = [h.strip().lower() for h in header]
    errors = [BadLine(1, f"unknown column '{n}' (known: {', '.join(COLUMNS)})") for n in names if n not in COLUMNS]
    if "plate" not in names:
        errors.append(BadLine(1, "missing required column 'plate'"))
    if len(set(names)) != len(names):
        errors.append(BadLine(1, "a column name is repeated"))
    return errors


def _parse_row(values: dict[str, str], added_by: str, zone: tzinfo) -> dict:
    plate = normalize(values.get("plate", ""))
    if not plate:
        raise ValueError("plate is empty or has no letters or digits")
    if len(plate) > MAX_PLATE:
        raise ValueError(f"plate '{plate}' is longer than {MAX_PLATE} characters")
    try:
        expires = parse_expiry(values.get("expires", ""), zone)
    except ExpiryOutOfRange as exc:
        raise ValueError(f"expires '{values.get('expires')}' {exc}") from None
    except ValueError as exc:
        raise ValueError(f"expires '{values.get('expires')}' is not an ISO date or time: {exc}") from None
    return {
        "plate": values["plate"].strip(), "plate_norm": plate, "plate_folded": fold(plate),
        "state": values.get("state", "").strip().upper()[:2], "reason": values.get("reason", "").strip()[:500],
        "expires_at": expires, "added_by": added_by,
    }


def parse_csv(data: bytes, added_by: str, zone: tzinfo = UTC) -> ParsedList:
    """Every line checked; a bare `expires` date ends at the end of that day in `zone`."""
    result = ParsedList()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        result.errors.append(BadLine(text_line(data, exc.start), "not UTF-8 text"))
        return result
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    result.errors.extend(_header_errors(header))
    if result.errors:
        return result
    names = [h.strip().lower() for h in header]
    first_seen: dict[str, int] = {}
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank lines are harmless
        line = reader.line_num
        if len(row) != len(names):
            result.errors.append(BadLine(line, f"expected {len(names)} fields, got {len(row)}"))
            continue
        try:
            entry = _parse_row(dict(zip(names, row)), added_by, zone)
        except ValueError as exc:
            result.errors.append(BadLine(line, str(exc)))
            continue
        if entry["plate_norm"] in first_seen:
            result.errors.append(BadLine(line, f"plate {entry['plate_norm']} repeats line {first_seen[entry['plate_norm']]}"))
            continue
        first_seen[entry["plate_norm"]] = line
        result.entries.append(entry)
    return result


def text_line(data: bytes, offset: int) -> int:
    return data[:offset].count(b"\n") + 1


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
) -> ImportResult:
    """Replace the list's entries; nothing changes if any line is bad (unless skip_bad), or if the
    list would be emptied or mostly dropped (unless force). The new entries are written in short
    transactions under a version of their own, made live in one tiny transaction, and the old
    rows deleted in short transactions after: cameras' reads never wait long, and matching sees
    the old list or the new one; `pause_s` after each (OTHER_PROCESS_PAUSE_S outside the server).
    Newly listed plates read within retention alert at once."""
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
            await audit.record(conn, actor, "hotlist.import", hotlist=name, entries=total, added=len(added),
                               removed=len(removed), skipped=len(parsed.errors), forced=force)
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
