"""`platewatch backup DEST`: a consistent copy of the data dir that retention also applies to.

The database is copied with SQLite's online backup API (one step: one read transaction, so the
copy is a single moment even while the server writes), then only the images that copy's reads
name: an image written later has no row in it, and a purged read's image must not come back.
Everything goes into a hidden temporary folder renamed into place when complete, so a folder
with the final name is always a whole backup. Backups older than the keep period are deleted.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import shutil
import sqlite3
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

from server import audit
from server.push import KEY_FILE
from server.settings import AUDIT_KEY_FILE, CONFIG_NAME, Settings
from server.store.db import Database
from server.store.snapshot import images_named, snapshot_database

PREFIX = "platewatch-"
STAMP = "%Y%m%d-%H%M%S"  # UTC: names sort in time order
FINISHED = re.compile(r"platewatch-(\d{8}-\d{6})")
# A run that crashed leaves its temporary folder; it holds reads too, so it is pruned as well.
UNFINISHED = re.compile(r"\.platewatch-(\d{8}-\d{6})\.partial")
UNFINISHED_GRACE = timedelta(days=1)  # younger ones may belong to a backup still being written
# Beside the database: the push key (losing it unsubscribes every phone), the CSRF secret
# (server/app.py app_secret), the settings file and the key that signs the audit chain's heads
# (a new one could not vouch for heads published before).
DATA_FILES = (KEY_FILE, "app_secret", CONFIG_NAME, AUDIT_KEY_FILE)
ROOM_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
SQLITE_FULL = 13


class BackupError(Exception):
    """What went wrong, worded for the admin; nothing of the failed backup is left in DEST."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    folder: Path
    reads: int
    images: int
    missing_images: int  # named by the copy but gone meanwhile (purged, or deleted by hand)
    pruned: int = 0


def backup(settings: Settings, dest: Path, now: datetime | None = None) -> BackupResult:
    """Write DEST/platewatch-YYYYMMDD-HHMMSS; raises BackupError, leaving nothing behind."""
    now = datetime.now(UTC) if now is None else now
    _check_paths(settings, dest)
    name = PREFIX + now.strftime(STAMP)
    final, partial = dest / name, dest / f".{name}.partial"
    if final.exists():
        raise BackupError(f"{final} already exists; run the backup again in a second")
    try:
        partial.mkdir(mode=0o700)  # it holds the password hashes and the push key
    except FileExistsError:
        raise BackupError(f"{partial} exists: another backup is being written to {dest}") from None
    except OSError as exc:
        raise BackupError(f"cannot write to {dest}: {exc.strerror}") from None
    try:
        result = _fill(settings, partial, final)
        os.sync()  # the data must be on disk before the name says the backup is complete
        partial.rename(final)
    except (OSError, sqlite3.Error) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise BackupError(f"backup failed and was removed: {_reason(exc)}") from None
    except BaseException:  # Ctrl-C too: no half-made backup left behind
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return result


def _check_paths(settings: Settings, dest: Path) -> None:
    if not settings.db_path.is_file():
        raise BackupError(f"no database in the data dir {settings.data_dir} "
                          f"(expected {settings.db_path}); is --data right?")
    if not dest.exists():
        raise BackupError(f"backup destination {dest} does not exist (mount or create it first)")
    if not dest.is_dir():
        raise BackupError(f"backup destination {dest} is not a folder")


def _fill(settings: Settings, partial: Path, final: Path) -> BackupResult:
    snapshot = partial / settings.db_path.name
    snapshot_database(settings.db_path, snapshot)
    reads, images = images_named(snapshot)
    copied, missing = copy_images(settings.data_dir, partial, images)
    for name in DATA_FILES:
        if (settings.data_dir / name).is_file():
            shutil.copy2(settings.data_dir / name, partial / name)  # keeps the key's 0600
    return BackupResult(final, reads, copied, missing)


def copy_images(data_dir: Path, target: Path, images: set[str]) -> tuple[int, int]:
    """Copy the images named (paths relative to the data dir, under images/) to the same paths
    under `target`: (copied, missing). `platewatch export` copies its images with it too."""
    copied = missing = 0
    for rel in sorted(images):
        parts = PurePosixPath(rel).parts
        if parts[:1] != ("images",) or ".." in parts:  # only ever what ingest writes
            missing += 1
            continue
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(data_dir / rel, target / rel)
        except FileNotFoundError:  # purged between the copy of the database and now
            missing += 1
            continue
        copied += 1
    return copied, missing


def _reason(exc: OSError | sqlite3.Error) -> str:
    full = getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL or getattr(exc, "errno", None) in ROOM_ERRORS
    where = f"writing {exc.filename}: " if getattr(exc, "filename", None) else ""
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"{where}{detail}" + (" (no room for it in the destination)" if full else "")


def prune(dest: Path, keep_days: float, now: datetime, keep: Path) -> tuple[int, list[str]]:
    """Delete this command's backups in DEST made more than keep_days ago (never `keep`, the one
    just made, nor anything not named as this command names them): (removed, failures)."""
    removed, failures = 0, []
    for entry in sorted(dest.iterdir()):
        made = _made_at(entry)
        if made is None or entry.name == keep.name or entry.is_symlink() or not entry.is_dir():
            continue
        grace = UNFINISHED_GRACE if entry.name.startswith(".") else timedelta(0)
        if now - made > max(timedelta(days=keep_days), grace):
            try:
                shutil.rmtree(entry)
                removed += 1
            except OSError as exc:
                failures.append(f"{entry}: {exc.strerror}")
    return removed, failures


def _made_at(entry: Path) -> datetime | None:
    match = FINISHED.fullmatch(entry.name) or UNFINISHED.fullmatch(entry.name)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1), STAMP).replace(tzinfo=UTC)
    except ValueError:  # digits, but no real date: not ours
        return None


def backup_and_prune(settings: Settings, dest: Path, keep_days: float) -> tuple[BackupResult, list[str]]:
    """The whole command: back up, prune, audit. (result, old backups that could not be removed)."""
    now = datetime.now(UTC)
    result = backup(settings, dest, now)
    pruned, failures = prune(dest, keep_days, now, keep=result.folder)
    result = replace(result, pruned=pruned)
    asyncio.run(record(settings, result, keep_days))
    return result, failures


async def record(settings: Settings, result: BackupResult, keep_days: float) -> None:
    """The audit line, written to the live database like any other CLI change."""
    async with Database(settings.db_path) as db, db.transaction() as conn:
        await audit.record(conn, "cli", "backup.made", folder=result.folder.name, reads=result.reads,
                           images=result.images, missing_images=result.missing_images,
                           pruned=result.pruned, keep_days=keep_days)
