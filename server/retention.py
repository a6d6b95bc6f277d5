"""Retention: reads (and their images and alerts) older than the retention period are deleted,
and so are expired sign-in leftovers: sessions and API tokens past their expiry, and two-factor
sign-in challenges (which name a user whose password was right) past theirs.

Reads go in small batches so the single writer is never held for long; the sign-in tables are
small, one statement each. Every purge is written to the audit log with how much went (reads,
images, sessions, challenges) and the oldest read that remains.

Image folders are named by UTC capture day. Once a whole day is past the cutoff, its folder is
removed with anything left in it: an image whose read never committed (the upload failed after
the file was written) or one put there by hand must not outlive the retention period either.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from server import audit, queries, queries_mfa
from server.clock import now_ms
from server.db import Database
from server.settings import Settings

log = logging.getLogger("platewatch.retention")
BATCH = 5000
DAY_FOLDER = re.compile(r"\d{4}-\d{2}-\d{2}")  # images/YYYY-MM-DD, as server/ingest.py names them


@dataclass(frozen=True, slots=True)
class PurgeResult:
    reads: int
    images: int
    oldest_remaining: int | None
    sessions: int
    challenges: int
    stray_images: int = 0  # files in day folders past the cutoff that no read named


async def purge(db: Database, settings: Settings, now: int | None = None) -> PurgeResult:
    now = now_ms() if now is None else now
    cutoff = now - int(settings.retention_days * 86_400_000)
    reads, images = await _purge_reads(db, settings, cutoff)
    strays = await asyncio.to_thread(_remove_expired_day_folders, settings, cutoff)
    async with db.transaction() as conn:
        # Nothing else sweeps expired sessions, and challenges only go when someone signs in.
        sessions = await queries.delete_expired_sessions(conn, now)
        challenges = await queries_mfa.delete_expired_challenges(conn, now)
        oldest = await queries.oldest_read_time(conn)
        await audit.record(
            conn, "system", "retention.purge", reads=reads, images=images,
            cutoff=cutoff, oldest_remaining=oldest, retention_days=settings.retention_days,
            sessions=sessions, challenges=challenges, stray_images=strays,
        )
    return PurgeResult(reads, images, oldest, sessions, challenges, strays)


async def _purge_reads(db: Database, settings: Settings, cutoff: int) -> tuple[int, int]:
    """Reads captured before `cutoff`, batch by batch, then their image files: (reads, images)."""
    total_reads = total_images = 0
    while True:
        async with db.transaction() as conn:
            batch = await queries.reads_before(conn, cutoff, BATCH)
            await queries.delete_reads(conn, [row["id"] for row in batch])
        # Files go after the rows commit: a crash in between leaves a file, never a dangling row.
        total_images += await asyncio.to_thread(_unlink, settings, batch)
        total_reads += len(batch)
        if len(batch) < BATCH:
            return total_reads, total_images


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


def _remove_expired_day_folders(settings: Settings, cutoff: int) -> int:
    """Removes image day folders whose whole day is before `cutoff`; the files that were left."""
    if not settings.images_dir.is_dir():
        return 0
    cutoff_at, strays = datetime.fromtimestamp(cutoff / 1000, UTC), 0
    for folder in settings.images_dir.iterdir():
        if not (folder.is_dir() and DAY_FOLDER.fullmatch(folder.name)):
            continue
        try:
            day_end = datetime.strptime(folder.name, "%Y-%m-%d").replace(tzinfo=UTC) + timedelta(days=1)
        except ValueError:  # the shape of a date, not a date: not one of ours
            continue
        if day_end <= cutoff_at:
            strays += sum(1 for f in folder.rglob("*") if f.is_file())
            shutil.rmtree(folder)
    return strays


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
