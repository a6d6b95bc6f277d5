"""The backup's two looks at the database, synchronous like the rest of `platewatch backup`:
a consistent copy through SQLite's online backup API, and what that copy's reads name."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def snapshot_database(source: Path, target: Path) -> None:
    live = sqlite3.connect(source, timeout=10)
    copy = sqlite3.connect(target)
    try:
        live.backup(copy)  # pages=-1: all in one step, so one consistent moment
        [(verdict,)] = copy.execute("PRAGMA integrity_check(1)").fetchall()
        if verdict != "ok":
            raise sqlite3.DatabaseError(f"the copied database fails its integrity check: {verdict}")
    finally:
        copy.close()
        live.close()


def images_named(snapshot: Path) -> tuple[int, set[str]]:
    """How many reads the copy holds and the image paths they name."""
    conn = sqlite3.connect(snapshot)
    try:
        [(reads,)] = conn.execute("SELECT count(*) FROM reads").fetchall()
        rows = conn.execute("SELECT plate_image, vehicle_image FROM reads").fetchall()
    finally:
        conn.close()
    return reads, {path for row in rows for path in row if path}
