"""Database lifecycle: migrations, one writer connection (WAL) and a few read connections.

SQLite allows one writer at a time; funnelling every write through one connection and an
asyncio lock keeps transactions from interleaving, while WAL lets readers run alongside.

The writer never checkpoints (copies the WAL into the database file and syncs it): on a busy disk
that takes hundreds of milliseconds, and the commit that happened to cross the threshold would
hold every other write up meanwhile. A connection of its own checkpoints every second instead,
PASSIVE: it neither waits for nor blocks the writer or the readers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from server.store.migrations import migrate

log = logging.getLogger("platewatch.db")
CHECKPOINT_EVERY_S = 1.0

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",  # durable at checkpoints; WAL keeps the file consistent
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",  # the CLI may write while the server runs
)


async def _connect(path: Path, *, readonly: bool = False) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    for pragma in PRAGMAS:
        await conn.execute(pragma)
    if readonly:
        await conn.execute("PRAGMA query_only=ON")
    return conn


class Database:
    def __init__(self, path: Path, readers: int = 2) -> None:
        self.path = path
        self._reader_count = readers
        self._writer: aiosqlite.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpoints: asyncio.Task | None = None
        self._next_reader = itertools.cycle(range(readers))
        self._write_lock = asyncio.Lock()

    async def open(self) -> "Database":
        await asyncio.to_thread(migrate, self.path)
        self._writer = await _connect(self.path)
        await self._writer.execute("PRAGMA wal_autocheckpoint=0")  # _checkpoint_forever's job
        self._readers = [await _connect(self.path, readonly=True) for _ in range(self._reader_count)]
        self._checkpointer = await _connect(self.path)
        self._checkpoints = asyncio.create_task(self._checkpoint_forever())
        return self

    async def _checkpoint_forever(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY_S)
            try:
                await self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                log.exception("WAL checkpoint failed; trying again in %s s", CHECKPOINT_EVERY_S)

    async def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoints
        for conn in (self._writer, *self._readers, self._checkpointer):
            if conn is not None:
                await conn.close()  # the last connection to close checkpoints what is left
        self._writer, self._readers, self._checkpointer, self._checkpoints = None, [], None, None

    async def __aenter__(self) -> "Database":
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def reader(self) -> aiosqlite.Connection:
        """A read-only connection; round-robin so slow searches don't queue every reader."""
        return self._readers[next(self._next_reader)]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """The writer connection inside BEGIN IMMEDIATE … COMMIT (ROLLBACK on error)."""
        assert self._writer is not None, "database is not open"
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")
