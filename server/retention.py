"""Retention: reads (and their images and alerts) older than the retention period are deleted,
and so are expired sign-in leftovers: sessions and API tokens past their expiry, and two-factor
sign-in challenges (which name a user whose password was right) past theirs.

Reads go in batches bounded by time, not rows: each holds the single writer for about HOLD_S
(a read arriving meanwhile waits no longer than that), then lets waiting writers in before the
next. A row's cost varies tenfold with the cache, so each batch deletes a few reads per
statement, sized from what the last statements cost. (Committing stays cheap because the writer
never checkpoints the WAL: see db.py.) The sign-in tables are small, one
statement each. Every purge is written to the audit log with how much went (reads,
images, sessions, challenges) and the oldest read that remains.

Image folders are named by UTC capture day. Once a whole day is past the cutoff, its folder is
removed with anything left in it: an image whose read never committed (the upload failed after
the file was written) or one put there by hand must not outlive the retention period either.

A read dated after the server's clock (plus settings.max_clock_skew_s) came from a camera whose
clock was wrong, stored before ingest refused such times: it goes too, with its images and any day
folder named after the horizon, and the audit line counts it (`future`); else it would outlive
every retention promise.

A read under an evidence hold (holds.py) is never purged, whatever its age, and its alerts stay
with it; its images live in images/held/<read id>/, which the day sweep never matches. Files
there that their read does not name (a hold whose transaction never committed) are swept once
they are an hour old. The audit line counts the reads kept past the cutoff by holds (`held`);
`oldest_remaining` is the oldest read no hold keeps, the one retention answers for, and
`oldest_unheld_age_days` its age when the purge ran: server/deletions.py proves retention day by
day from these lines alone.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from server import audit
from server.clock import DAY_MS, from_ms, now_ms
from server.settings import Settings
from server.store import queries, queries_mfa
from server.store import queries_holds as qh
from server.store.db import Database

log = logging.getLogger("platewatch.retention")
HOLD_S = 0.04  # the longest one batch keeps the writer (and so a camera's read) waiting, roughly
BATCH = 100  # the most reads one DELETE statement takes: 100 uncached ones cost ~80 ms
DAY_FOLDER = re.compile(r"\d{4}-\d{2}-\d{2}")  # images/YYYY-MM-DD, as server/ingest.py names them
READ_FOLDER = re.compile(r"[0-9]{1,18}")  # images/held/<read id>, as server/holds.py names them
HELD_GRACE_S = 3600  # a hold being placed names its copies within milliseconds of writing them
CHUNK = 500  # held folders looked up per query


@dataclass(frozen=True, slots=True)
class PurgeResult:
    reads: int
    images: int
    oldest_remaining: int | None
    sessions: int
    challenges: int
    stray_images: int = 0  # files in day folders past the cutoff (or held folders) that no read named
    held: int = 0  # reads kept past the cutoff by an evidence hold
    future: int = 0  # reads dated past now + max_clock_skew_s


async def purge(db: Database, settings: Settings, now: int | None = None) -> PurgeResult:
    now = now_ms() if now is None else now
    cutoff = settings.retention_cutoff(now)
    horizon = now + int(settings.max_clock_skew_s * 1000)
    reads, images = await _purge_reads(db, settings, lambda conn, limit: qh.purgeable_reads(conn, cutoff, limit))
    # A camera whose clock jumped: reads dated past the horizon, in the same time-bounded batches.
    future, future_images = await _purge_reads(db, settings, lambda conn, limit: qh.future_reads(conn, horizon, limit))
    images += future_images
    strays = await asyncio.to_thread(_remove_expired_day_folders, settings, cutoff, horizon)
    strays += await _sweep_held_folders(db, settings)
    async with db.transaction() as conn:
        # Nothing else sweeps expired sessions, and challenges only go when someone signs in.
        sessions = await queries.delete_expired_sessions(conn, now)
        challenges = await queries_mfa.delete_expired_challenges(conn, now)
        oldest = await qh.oldest_unheld_read_time(conn)
        held = await qh.held_past(conn, cutoff)
        age = round((now - oldest) / DAY_MS, 3) if oldest is not None else None
        await audit.record(
            conn, "system", "retention.purge", reads=reads, images=images,
            cutoff=cutoff, oldest_remaining=oldest, oldest_unheld_age_days=age, retention_days=settings.retention_days,
            sessions=sessions, challenges=challenges, stray_images=strays, held=held, future=future,
        )
    return PurgeResult(reads, images, oldest, sessions, challenges, strays, held, future)


async def _purge_reads(db: Database, settings: Settings, select) -> tuple[int, int]:
    """The reads `select(conn, limit)` names (those past the cutoff, or dated in the future; never
    held ones), batch by batch, then their image files: (reads, images)."""
    total_reads = total_images = 0
    pace = _Pace()
    while True:
        batch, done = await _purge_batch(db, select, pace)
        # Files go after the rows commit: a crash in between leaves a file, never a dangling row.
        # The await also lets writers queued on the lock in before the next batch (asyncio.Lock is FIFO).
        total_images += await asyncio.to_thread(_unlink, settings, batch)
        total_reads += len(batch)
        if done:
            return total_reads, total_images


@dataclass(slots=True)
class _Pace:
    """What one read's deletion may cost, to size the next statement to half the time left: it
    rises at once to a slower statement's cost and eases back by a fifth per faster one, since a
    read whose index pages are not cached costs ten times one whose pages are."""
    per_read_s: float = 0.001

    def rows_for(self, seconds_left: float) -> int:
        return max(1, min(BATCH, int(seconds_left / 2 / self.per_read_s)))

    def took(self, seconds: float, rows: int) -> None:
        if rows:
            self.per_read_s = max(seconds / rows, self.per_read_s * 0.8, 1e-6)


async def _purge_batch(db: Database, select, pace: _Pace) -> tuple[list, bool]:
    """Deletes purgeable reads for about HOLD_S in one transaction: (the rows deleted, whether
    none are left)."""
    rows: list = []
    async with db.transaction() as conn:
        started = time.perf_counter()
        while True:  # at least one statement per batch, however little of HOLD_S is left
            step_started = time.perf_counter()
            limit = pace.rows_for(HOLD_S - (step_started - started))
            step = await select(conn, limit)
            await queries.delete_reads(conn, [row["id"] for row in step])
            pace.took(time.perf_counter() - step_started, len(step))
            rows += step
            if len(step) < limit:
                return rows, True
            if time.perf_counter() - started >= HOLD_S:
                return rows, False


def _unlink(settings: Settings, rows) -> int:
    count = 0
    for row in rows:
        for rel in (row["plate_image"], row["vehicle_image"]):
            if rel:
                path = settings.data_dir / rel
                if path.exists():
                    path.unlink()
                    count += 1
                _remove_if_empty(path.parent)
    return count


def _remove_expired_day_folders(settings: Settings, cutoff: int, horizon: int) -> int:
    """Removes image day folders whose whole day is before `cutoff`, or after `horizon` (no read
    may be dated there); the files that were left."""
    if not settings.images_dir.is_dir():
        return 0
    cutoff_at, horizon_at, strays = from_ms(cutoff), from_ms(horizon), 0
    for folder in settings.images_dir.iterdir():
        if not (folder.is_dir() and DAY_FOLDER.fullmatch(folder.name)):
            continue
        try:
            day = datetime.strptime(folder.name, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:  # the shape of a date, not a date: not one of ours
            continue
        if day <= cutoff_at - timedelta(days=1) or day > horizon_at:  # (no day + 1 day: 9999-12-31 has none)
            strays += sum(1 for f in folder.rglob("*") if f.is_file())
            shutil.rmtree(folder)
    return strays


async def _sweep_held_folders(db: Database, settings: Settings) -> int:
    """Removes files in held/<read id>/ that the read does not name, once older than HELD_GRACE_S,
    and the folders left empty; how many files went. Other names there are not ours: left alone."""
    folders = await asyncio.to_thread(_held_folders, settings)
    named: set[str] = set()
    ids = sorted(folders)
    for start in range(0, len(ids), CHUNK):
        for row in await qh.read_images(db.reader, ids[start:start + CHUNK]):
            named.update(path for path in (row["plate_image"], row["vehicle_image"]) if path)
    return await asyncio.to_thread(_remove_unnamed, settings, folders, named)


def _held_folders(settings: Settings) -> dict[int, object]:
    root = settings.held_images_dir
    if not root.is_dir():
        return {}
    return {int(folder.name): folder for folder in root.iterdir()
            if folder.is_dir() and READ_FOLDER.fullmatch(folder.name)}


def _remove_unnamed(settings: Settings, folders: dict, named: set[str]) -> int:
    removed, settled = 0, time.time() - HELD_GRACE_S  # younger: a hold may be being placed
    for folder in folders.values():
        for path in folder.iterdir():
            rel = path.relative_to(settings.data_dir).as_posix()
            if path.is_file() and rel not in named and path.stat().st_mtime < settled:
                path.unlink()
                removed += 1
        if folder.stat().st_mtime < settled:
            _remove_if_empty(folder)
    return removed


def _remove_if_empty(folder) -> None:
    try:
        folder.rmdir()  # only succeeds when empty
    except OSError:
        pass


async def run_forever(db: Database, settings: Settings) -> None:
    while True:
        try:
            result = await purge(db, settings)
            log.info("retention purge: %d reads, %d images (%d stray), %d sessions, %d challenges",
                     result.reads, result.images, result.stray_images, result.sessions, result.challenges)
        except Exception:
            log.exception("retention purge failed; retrying next interval")
        await asyncio.sleep(settings.purge_interval_s)
