"""Evidence holds: a read kept past the retention period for a case, until a supervisor releases it.

Retention removes a capture day's image folder (images/YYYY-MM-DD) whole once the day is past
the cutoff, so placing a hold moves the read's images into images/held/<read id>/, which that
sweep never matches. The order keeps every row pointing at a file that exists:

1. inside the hold's transaction (the single writer: no other hold or purge runs meanwhile),
   copy each image to its held path: written under a temporary name, synced, then renamed;
2. in the same transaction, the hold, the read's new image paths and the `hold.placed` line;
3. once committed, sync the WAL (synchronous=NORMAL would leave the commit to the next
   checkpoint, and a power cut must not roll the row back to a deleted file), then delete the
   originals.

A crash before the commit leaves held copies that no row names: retention sweeps those once
they are an hour old. A crash after it leaves the originals, which go with their day folder.
Releasing a hold leaves the files where they are: the read's next purge deletes them by path.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from server import audit
from server.clock import DAY_MS, from_ms, now_ms
from server.settings import Settings
from server.store import queries
from server.store import queries_holds as qh
from server.store.db import Database

log = logging.getLogger("platewatch.holds")
IMAGE_COLUMNS = ("plate_image", "vehicle_image")
PLACED, RELEASED = "hold.placed", "hold.released"  # audit actions


class ReadGone(Exception):
    """No such read: never stored, or purged after the retention period."""


class AlreadyHeld(Exception):
    """The read has an active hold (`hold`): one per read."""

    def __init__(self, hold) -> None:
        super().__init__(f"read {hold['read_id']} is already held by hold {hold['id']}")
        self.hold = hold


class NotActive(Exception):
    """No active hold by that id: `hold` is None when there is no such hold (or its read is gone),
    else the hold, released already."""

    def __init__(self, hold) -> None:
        super().__init__("no active hold")
        self.hold = hold


@dataclass(frozen=True, slots=True)
class Placed:
    hold_id: int
    moved: int  # image files moved out of their day folder


async def place(db: Database, settings: Settings, read_id: int, case: str, note: str, username: str) -> Placed:
    """Hold the read for `case` (checked by the caller), moving its images out of the day folders."""
    moves: dict[str, tuple[str, str]] = {}
    try:
        async with db.transaction() as conn:
            read = await qh.read_for_hold(conn, read_id)
            if read is None:
                raise ReadGone(read_id)
            if (held := await qh.active_hold_for_read(conn, read_id)) is not None:
                raise AlreadyHeld(held)
            moves = await asyncio.to_thread(_copy_to_held, settings, read)
            hold_id = await _record(conn, read, moves, case, note, username)
    except BaseException:
        # Nothing committed names the copies (placements are serialised by the writer).
        await asyncio.to_thread(_remove, settings, [new for _, new in moves.values()])
        raise
    await asyncio.to_thread(_finish_move, settings, [old for old, _ in moves.values()])
    return Placed(hold_id, len(moves))


async def _record(conn, read, moves: dict[str, tuple[str, str]], case: str, note: str, username: str) -> int:
    hold_id = await qh.insert_hold(conn, read["id"], case, note, username, now_ms())
    if moves:
        paths = [moves[column][1] if column in moves else read[column] for column in IMAGE_COLUMNS]
        await queries.set_read_images(conn, read["id"], *paths)
    # The note is kept as typed, as an alert outcome's note is: it is part of the justification.
    await audit.record(conn, username, PLACED, hold=hold_id, read=read["id"], plate=read["plate_norm"], case=case,
                       note=note, captured_at=from_ms(read["captured_at"]).isoformat(), images_moved=len(moves))
    return hold_id


async def release(db: Database, hold_id: int, username: str):
    """Release an active hold; the hold as it was (with its read's plate and capture time)."""
    now = now_ms()
    async with db.transaction() as conn:
        hold = await qh.hold_by_id(conn, hold_id)
        if hold is None or hold["released_at"] is not None:
            raise NotActive(hold)
        await qh.release_hold(conn, hold_id, username, now)
        await audit.record(conn, username, RELEASED, hold=hold_id, read=hold["read_id"], plate=hold["plate_norm"],
                           case=hold["case_number"], days_held=round((now - hold["placed_at"]) / DAY_MS, 2))
    return hold


def held_path(settings: Settings, read_id: int, old: str) -> str:
    """Where a held read's image goes, relative to the data dir as reads name images."""
    target = settings.held_images_dir / str(read_id) / PurePosixPath(old).name
    return target.relative_to(settings.data_dir).as_posix()


def _copy_to_held(settings: Settings, read) -> dict[str, tuple[str, str]]:
    """Copies the read's images to its held folder: {column: (old path, new path)}. A path already
    there (a hold placed before and released), not ours, or naming a missing file is left as it is."""
    held_root = PurePosixPath(settings.held_images_dir.relative_to(settings.data_dir).as_posix())
    moves = {}
    for column in IMAGE_COLUMNS:
        old = read[column]
        parts = PurePosixPath(old).parts if old else ()
        if parts[:1] != ("images",) or ".." in parts or PurePosixPath(old).is_relative_to(held_root):
            continue
        new = held_path(settings, read["id"], old)
        if _durable_copy(settings.data_dir / old, settings.data_dir / new):
            moves[column] = (old, new)
    return moves


def _durable_copy(source: Path, target: Path) -> bool:
    if not source.is_file():  # the row names a file already gone: nothing to keep
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    shutil.copyfile(source, partial)  # not copy2: a fresh mtime tells retention's sweep it is new
    _fsync(partial)
    os.replace(partial, target)
    _fsync(target.parent)  # the new name, too, is on disk before the row names it
    return True


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _finish_move(settings: Settings, originals: list[str]) -> None:
    """After the commit: make it durable, then delete the day-folder originals. The hold stands
    whatever happens here; an original left behind goes with its day folder."""
    if not originals:
        return
    db_path = settings.db_path
    try:
        for path in (db_path.with_name(db_path.name + "-wal"), db_path):
            if path.exists():
                _fsync(path)
        _remove(settings, originals)
    except OSError:
        log.exception("evidence hold placed; its day-folder originals stay until their day is swept")


def _remove(settings: Settings, paths: list[str]) -> None:
    for rel in paths:
        (settings.data_dir / rel).unlink(missing_ok=True)
