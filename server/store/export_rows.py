"""`platewatch export`'s one look at the database: every table it writes, read inside a single
read transaction, so all files describe the same moment even while the server writes (WAL keeps
that moment for this connection until it ends). Synchronous, like the rest of the command."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# What may be read: tables (and the view of hot lists' live entries) by name, never text from outside.
READABLE = frozenset({"reads", "alerts", "hotlists", "live_entries", "holds", "users", "cameras", "audit_log",
                      "records_requests", "search_reasons"})
IDENTIFIER = frozenset("abcdefghijklmnopqrstuvwxyz_")

Rows = Callable[[str, tuple[str, ...]], Iterator[tuple]]


@contextmanager
def one_moment(db_path: Path) -> Iterator[Rows]:
    """A function giving a table's named columns in id order, every call seeing the same snapshot."""
    conn = sqlite3.connect(db_path, timeout=10, isolation_level=None)
    try:
        conn.execute("PRAGMA query_only=ON")
        conn.execute("BEGIN")  # the first read fixes the snapshot; every later one sees the same

        def rows(table: str, columns: tuple[str, ...]) -> Iterator[tuple]:
            if table not in READABLE or not all(set(c) <= IDENTIFIER for c in columns):
                raise ValueError(f"not exported: {table}")
            return conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY id")

        yield rows
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")  # it only read
        conn.close()
