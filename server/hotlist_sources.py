"""Hot lists that refresh themselves from a source: a local file, a folder the state's client
drops files into, or an HTTPS URL (server/hotlist_fetch.py; New Hampshire and Arkansas require a
daily load). The server looks on schedule, imports the newest file (or the feed, where it
changed) with the list's remembered format, exactly as an import by hand would
(the whole file checked, replaced atomically, retro alerts, audited), and never forces: a bad or
truncated file leaves the previous entries in place, says why on the list's page and in the
audit log, and the list turns stale once older than the source's maximum age.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx

from server import audit
from server.clock import HOUR_MS, now_ms
from server.hotlist_fetch import (Credentials, FetchFailed, NotChanged, UrlRefused, check_url, fetch, is_url,
                                  load_credentials, store_credentials)
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


KEEP = "keep"  # set_source's credentials: leave the stored ones as they are


def _where(location: str | Path) -> str:
    """The location as stored: a checked URL, or a file or folder's absolute path."""
    if isinstance(location, str) and is_url(location):
        try:
            return check_url(location)
        except UrlRefused as exc:
            raise SourceRefused(str(exc)) from None
    path = Path(location)
    if not path.exists():
        raise SourceRefused(f"{path} does not exist: give the file, or the folder files are dropped into")
    return str(path.resolve())


def _host(location: str) -> str | None:
    return httpx.URL(location).host if is_url(location) else None


async def set_source(db: Database, name: str, list_name: str, location: str | Path, *, actor: str,
                     every_hours: float = DEFAULT_EVERY_HOURS, max_age_hours: float = DEFAULT_MAX_AGE_HOURS,
                     list_format: ListFormat | None = None, default_priority: int | None = None,
                     kind: str | None = None, data_dir: Path | None = None,
                     credentials: Credentials | None | str = KEEP) -> None:
    """Point the list `list_name` (made if new) at `location` (a path, or an https URL); the server
    looks at it next round. `credentials` (URLs only; kept in `data_dir`): new ones, None to forget
    them, or KEEP. Stored ones are sent only to the host they were given for."""
    check_schedule(every_hours, max_age_hours)
    if not name.strip() or len(name) > 80:
        raise SourceRefused("give the source a name of 1 to 80 characters")
    where = _where(location)
    if isinstance(credentials, Credentials):
        if not is_url(where):
            raise SourceRefused("credentials are for a source at a URL, not a file or folder")
        try:
            credentials.check()
        except UrlRefused as exc:
            raise SourceRefused(str(exc)) from None
    now = now_ms()
    async with db.transaction() as conn:
        hotlist_id = await queries.upsert_hotlist(conn, list_name, kind, None, now)
        taken = await queries_sources.source_of_list(conn, hotlist_id)
        if taken and taken["name"] != name:
            raise SourceRefused(f"'{list_name}' already refreshes from the source '{taken['name']}'")
        before = await queries_sources.source_by_name(conn, name)
        if credentials == KEEP and (before is None or _host(before["location"]) != _host(where)):
            credentials = None  # never send a secret to a host (or a source: ids are reused) it was not given for
        await queries_admin.remember_import(conn, hotlist_id, list_format and list_format.to_json(), default_priority)
        source_id = await queries_sources.upsert_source(conn, name, hotlist_id, where, every_hours, max_age_hours,
                                                        now)
        auth = "kept" if credentials == KEEP else credentials.kind if credentials else "none"
        await audit.record(conn, actor, "hotlist.source_set", source=name, hotlist=list_name, location=where,
                           every_hours=every_hours, max_age_hours=max_age_hours,
                           format=list_format and list_format.format, credentials=auth)
        if credentials != KEEP:
            if data_dir is None:
                raise ValueError("set_source needs the data dir to store or forget credentials")
            await asyncio.to_thread(store_credentials, data_dir, source_id, credentials)


async def remove_source(db: Database, data_dir: Path, hotlist_id: int, *, actor: str) -> str | None:
    """The list stops refreshing (its entries stay); the source's name, None where it had none."""
    async with db.transaction() as conn:
        source = await queries_sources.source_for_list(conn, hotlist_id)
        if source is None:
            return None
        await queries_sources.delete_source(conn, source["id"])
        await audit.record(conn, actor, "hotlist.source_remove", source=source["name"],
                           hotlist=source["hotlist_name"], location=source["location"])
        await asyncio.to_thread(store_credentials, data_dir, source["id"], None)
    return source["name"]


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


async def _read_source(source, settings: Settings) -> tuple[str, bytes]:
    """(stamp of what was read, its bytes): the newest file's name and time, or the feed's validators."""
    if not is_url(source["location"]):
        return await asyncio.to_thread(_read_new, Path(source["location"]), source["last_file"])
    try:
        credentials = await asyncio.to_thread(load_credentials, settings.data_dir, source["id"])
    except (ValueError, KeyError):  # a file edited by hand: say so rather than call without them
        raise FetchFailed("the stored credentials cannot be read: set them again") from None
    try:
        return await fetch(source["location"], source["last_file"], credentials, settings)
    except NotChanged as exc:
        raise NothingNew(str(exc)) from None


def _why(exc: Exception) -> str:
    if isinstance(exc, InvalidHotlist):
        return f"{len(exc.errors)} bad line(s), e.g. {exc.errors[0]}; nothing imported"
    if isinstance(exc, OSError):
        return f"cannot read {exc.filename or 'the source'}: {exc.strerror or exc}"
    if isinstance(exc, httpx.HTTPError):  # names the failure, never a header (credentials)
        return f"cannot fetch the feed: {exc or type(exc).__name__}; nothing imported"
    return f"{exc}; nothing imported"


async def refresh(db: Database, settings: Settings, source) -> list[int]:
    """One look at one source (a row of queries_sources.due_sources); the retro alerts raised."""
    name, actor, now = source["name"], f"source:{source['name']}", now_ms()
    try:
        stamp, data = await _read_source(source, settings)
        parsed = await asyncio.to_thread(parse_list, data, ListFormat.from_json(source["import_format"]), actor,
                                         settings.zone)
        result = await import_list(db, source["hotlist_name"], parsed, actor=actor, settings=settings)
    except NothingNew:
        async with db.transaction() as conn:
            await queries_sources.record_look(conn, source["id"], now, ok=False)
        return []
    except (OSError, InvalidHotlist, ListWouldShrink, ImportSuperseded, FetchFailed, UrlRefused,
            httpx.HTTPError) as exc:
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


async def refresh_list_now(db: Database, settings: Settings, hotlist_id: int, *, actor: str) -> list[int] | None:
    """A supervisor's "refresh now": one look at the list's source whatever its schedule (audited);
    the retro alerts raised, None where the list has no source."""
    async with db.transaction() as conn:
        source = await queries_sources.source_for_list(conn, hotlist_id)
        if source is None:
            return None
        await audit.record(conn, actor, "hotlist.refresh_now", source=source["name"], hotlist=source["hotlist_name"])
    return await refresh(db, settings, source)


async def refresh_due(db: Database, settings: Settings, now: int | None = None) -> list[int]:
    """Every source due now, one after another; the retro alerts they raised."""
    alert_ids: list[int] = []
    for source in await queries_sources.due_sources(db.reader, now_ms() if now is None else now):
        alert_ids += await refresh(db, settings, source)
    return alert_ids


def is_stale(refreshed_at: int | None, max_age_hours: float, now: int) -> bool:
    return refreshed_at is None or now - refreshed_at > max_age_hours * HOUR_MS


async def stale_lists(conn, now: int) -> list[dict]:
    """Lists with a source that are older than its maximum age, for the feed's and dashboard's
    banner: name, when last refreshed (None: never) and since when stale."""
    return [{"name": row["hotlist_name"], "refreshed_at": row["refreshed_at"],
             "since": (row["refreshed_at"] or row["created_at"]) + int(row["max_age_hours"] * HOUR_MS)}
            for row in await queries_sources.stale_sources(conn, now)]


async def run_forever(db: Database, settings: Settings, notify) -> None:
    """The server's schedule: `notify` gets the retro alerts' ids (the notifier's enqueue)."""
    while True:
        try:
            notify(await refresh_due(db, settings))
        except Exception:
            log.exception("hot-list sources: refresh failed; trying again next round")
        await asyncio.sleep(CHECK_S)
