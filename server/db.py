"""Database lifecycle: migrations, one writer connection (WAL) and a few read connections.

SQLite allows one writer at a time; funnelling every write through one connection and an
asyncio lock keeps transactions from interleaving, while WAL lets readers run alongside.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from server.migrations import migrate

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
        self._next_reader = itertools.cycle(range(readers))
        self._write_lock = asyncio.Lock()

    async def open(self) -> "Database":
        await asyncio.to_thread(migrate, self.path)
        self._writer = await _connect(self.path)
        self._readers = [await _connect(self.path, readonly=True) for _ in range(self._reader_count)]
        return self

    async def close(self) -> None:
        for conn in (self._writer, *self._readers):
            if conn is not None:
                await conn.close()
        self._writer, self._readers = None, []

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
