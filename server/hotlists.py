"""Hot-list CSV validation and atomic import, with retro alerts for newly listed plates.

The whole file is checked before anything is written, and every bad line is reported with its
line number, so a clerk fixes the feed once instead of line by line.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo

from server import audit, queries
from server.clock import EARLIEST_MS, LATEST_MS, SHOWABLE_DAYS, end_of_day, now_ms, to_ms
from server.db import Database
from server.ingest import alert_row
from server.matching import best_match, fold, normalize
from server.migrations import LIST_KINDS
from server.settings import Settings

COLUMNS = ("plate", "state", "reason", "expires")
MAX_PLATE = 10


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


async def import_list(
    db: Database, name: str, parsed: ParsedList, *, actor: str, settings: Settings, kind: str | None = None,
    source: str | None = None, skip_bad: bool = False,
) -> ImportResult:
    """Replace the list's entries in one transaction; nothing changes if any line is bad (unless skip_bad).
    Newly listed plates read within the retention period (`settings`) alert at once."""
    if parsed.errors and not skip_bad:
        raise InvalidHotlist(parsed.errors)
    if kind is not None and kind not in LIST_KINDS:
        raise ValueError(f"unknown list kind '{kind}' (known: {', '.join(LIST_KINDS)})")
    now = now_ms()
    async with db.transaction() as conn:
        hotlist_id = await queries.upsert_hotlist(conn, name, kind, source, now)
        before = await queries.entry_plates(conn, hotlist_id)
        await queries.replace_entries(conn, hotlist_id, parsed.entries, now)
        after = {e["plate_norm"] for e in parsed.entries}
        retro = await raise_retro_alerts(conn, hotlist_id, after - before, settings.retention_cutoff(now), now)
        await audit.record(
            conn, actor, "hotlist.import", hotlist=name, entries=len(after), added=len(after - before),
            removed=len(before - after), skipped=len(parsed.errors), retro_alerts=len(retro),
        )
    return ImportResult(hotlist_id, len(after), len(after - before), len(before - after), len(parsed.errors), retro)


async def raise_retro_alerts(conn, hotlist_id: int, new_plates: set[str], since: int, now: int) -> list[int]:
    """Newly listed plates already read in the retention window: the latest sighting per camera alerts."""
    if not new_plates:
        return []
    entries = await queries.active_entries_for_plates(conn, hotlist_id, new_plates, now)
    by_folded: dict[str, list] = {}
    for entry in entries:
        by_folded.setdefault(entry["plate_folded"], []).append(entry)
    latest: dict[tuple[int, int], tuple] = {}
    for chunk in _chunks(list(by_folded), 500):
        for read in await queries.reads_by_folded(conn, chunk, since):
            for entry in by_folded[read["plate_folded"]]:
                match = best_match([read["plate_norm"]], entry["plate_norm"])
                key = (entry["id"], read["camera_id"])
                if match and (key not in latest or latest[key][0]["captured_at"] < read["captured_at"]):
                    latest[key] = (read, entry, match)
    alert_ids = []
    for read, entry, match in latest.values():
        row = alert_row(entry, match, read["id"], read["camera_id"], read["captured_at"], now, retro=True)
        alert_ids.append(await queries.insert_alert(conn, row))
    return alert_ids


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]
