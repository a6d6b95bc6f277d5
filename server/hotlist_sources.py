"""Hot lists that refresh themselves from a source: a local file, or a folder the state's client
drops files into (New Hampshire and Arkansas require a daily load). The server looks on schedule,
imports the newest file with the list's remembered format, exactly as an import by hand would
(the whole file checked, replaced atomically, retro alerts, audited), and never forces: a bad or
truncated file leaves the previous entries in place, says why on the list's page and in the
audit log, and the list turns stale once older than the source's maximum age.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from server import audit
from server.clock import HOUR_MS, now_ms
from server.hotlists import (ImportSuperseded, InvalidHotlist, ListFormat, ListWouldShrink, import_list,
                             parse_list)
from server.settings import Settings
from server.store import queries, queries_admin, queries_sources
from server.store.db import Database

log = logging.getLogger(__name__)
DEFAULT_EVERY_HOURS = 24.0
DEFAULT_MAX_AGE_HOURS = 26.0  # a daily feed, and two hours' grace for a late drop
CHECK_S = 60.0  # how often the server asks which sources are due
PARTIAL_SUFFIXES = (".part", ".tmp", ".crdownload")  # a file still being written into the folder


class SourceRefused(ValueError):
    """A source that cannot be set up as asked (no such path, an interval out of range)."""


class NothingNew(Exception):
    """The newest file is the one imported last time: the list is not refreshed (it grows older)."""


def check_schedule(every_hours: float, max_age_hours: float) -> None:
    if not 0.05 <= every_hours <= 24 * 7:
        raise SourceRefused(f"every {every_hours:g} hours: give 0.05 to 168")
    if not every_hours <= max_age_hours <= 24 * 30:
        raise SourceRefused(f"a maximum age of {max_age_hours:g} hours: give {every_hours:g} (the interval) to 720")


async def set_source(db: Database, name: str, list_name: str, location: Path, *, actor: str,
                     every_hours: float = DEFAULT_EVERY_HOURS, max_age_hours: float = DEFAULT_MAX_AGE_HOURS,
                     list_format: ListFormat | None = None, default_priority: int | None = None,
                     kind: str | None = None) -> None:
    """Point the list `list_name` (made if new) at `location`; the server looks at it next round."""
    check_schedule(every_hours, max_age_hours)
    if not name.strip() or len(name) > 80:
        raise SourceRefused("give the source a name of 1 to 80 characters")
    if not location.exists():
        raise SourceRefused(f"{location} does not exist: give the file, or the folder files are dropped into")
    where = str(location.resolve())
    now = now_ms()
    async with db.transaction() as conn:
        hotlist_id = await queries.upsert_hotlist(conn, list_name, kind, None, now)
        taken = await queries_sources.source_of_list(conn, hotlist_id)
        if taken and taken["name"] != name:
            raise SourceRefused(f"'{list_name}' already refreshes from the source '{taken['name']}'")
        await queries_admin.remember_import(conn, hotlist_id, list_format and list_format.to_json(), default_priority)
        await queries_sources.upsert_source(conn, name, hotlist_id, where, every_hours, max_age_hours, now)
        await audit.record(conn, actor, "hotlist.source_set", source=name, hotlist=list_name, location=where,
                           every_hours=every_hours, max_age_hours=max_age_hours,
                           format=list_format and list_format.format)


def newest_file(location: Path) -> Path:
    """The location itself, or the newest finished file in the folder (OSError where none)."""
    if not location.is_dir():
        return location
    files = [p for p in location.iterdir()
             if p.is_file() and not p.name.startswith(".") and not p.name.endswith(PARTIAL_SUFFIXES)]
    if not files:
        raise FileNotFoundError(f"no file in {location} yet")
    return max(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


def _read_new(location: Path, last_file: str) -> tuple[str, bytes]:
    path = newest_file(location)
    stamp = f"{path.name}@{path.stat().st_mtime_ns}"
    if stamp == last_file:
        raise NothingNew(f"no new file since {path.name}")
    return stamp, path.read_bytes()


def _why(exc: Exception) -> str:
    if isinstance(exc, InvalidHotlist):
        return f"{len(exc.errors)} bad line(s), e.g. {exc.errors[0]}; nothing imported"
    if isinstance(exc, OSError):
        return f"cannot read {exc.filename or 'the source'}: {exc.strerror or exc}"
    return f"{exc}; nothing imported"


async def refresh(db: Database, settings: Settings, source) -> list[int]:
    """One look at one source (a row of queries_sources.due_sources); the retro alerts raised."""
    name, actor, now = source["name"], f"source:{source['name']}", now_ms()
    try:
        stamp, data = await asyncio.to_thread(_read_new, Path(source["location"]), source["last_file"])
        parsed = await asyncio.to_thread(parse_list, data, ListFormat.from_json(source["import_format"]), actor,
                                         settings.zone)
        result = await import_list(db, source["hotlist_name"], parsed, actor=actor, settings=settings)
    except NothingNew:
        async with db.transaction() as conn:
            await queries_sources.record_look(conn, source["id"], now, ok=False)
        return []
    except (OSError, InvalidHotlist, ListWouldShrink, ImportSuperseded) as exc:
        reason = _why(exc)
        log.warning("hot-list source %s: %s", name, reason)
        async with db.transaction() as conn:
            await queries_sources.record_look(conn, source["id"], now, ok=False, error=reason)
            await audit.record(conn, actor, "hotlist.refresh_failed", source=name, hotlist=source["hotlist_name"],
                               reason=reason)
        return []
    async with db.transaction() as conn:
        await queries_sources.record_look(conn, source["id"], now, ok=True, file=stamp)
    return result.retro_alerts


async def refresh_due(db: Database, settings: Settings, now: int | None = None) -> list[int]:
    """Every source due now, one after another; the retro alerts they raised."""
    alert_ids: list[int] = []
    for source in await queries_sources.due_sources(db.reader, now_ms() if now is None else now):
        alert_ids += await refresh(db, settings, source)
    return alert_ids


def is_stale(refreshed_at: int | None, max_age_hours: float, now: int) -> bool:
    return refreshed_at is None or now - refreshed_at > max_age_hours * HOUR_MS


async def run_forever(db: Database, settings: Settings, notify) -> None:
    """The server's schedule: `notify` gets the retro alerts' ids (the notifier's enqueue)."""
    while True:
        try:
            notify(await refresh_due(db, settings))
        except Exception:
            log.exception("hot-list sources: refresh failed; trying again next round")
        await asyncio.sleep(CHECK_S)
