"""Search latency over a synthetic month of reads: exact, wildcard (prefix and infix) and fuzzy
plate searches over 7 and 30 days, run by the server's own query code on a read connection.

`python -m bench.search [--reads 1500000] [--runs 7]`; with `--pages --data DIR`, the dashboard, the
public pages and the purge instead, at that size (bench/pages.py). The database is built through
server.store.migrations.migrate (so it has the real schema and indexes) in one executemany
transaction, in time order as a camera would write it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import machine, random_plates
from contract.plates import PALETTE as COLOURS
from contract.plates import fold
from server.clock import now_ms
from server.store.db import Database
from server.store.migrations import connect, migrate
from server.store.queries_search import Criteria, search_reads

DAY_MS = 86_400_000
CAMERAS = 8
COLUMNS = ("uuid, camera_id, captured_at, received_at, plate, plate_norm, plate_folded, confidence, color, "
           "plate_image, vehicle_image")


# Hits on a hot list, of every kind and at every stage an officer takes them through.
ALERTS_SQL = """
    INSERT INTO alerts (read_id, camera_id, hotlist_name, hotlist_kind, entry_plate, entry_plate_norm, rule,
                        compared, status, created_at, seen_at)
    SELECT id, camera_id, 'bench list',
           CASE id % 3 WHEN 0 THEN 'stolen_vehicle' WHEN 1 THEN 'stolen_plate' ELSE 'wanted_person' END,
           plate, plate_norm, 'exact', plate_norm,
           CASE id % 5 WHEN 0 THEN 'new' WHEN 1 THEN 'acknowledged' WHEN 2 THEN 'confirmed'
                       WHEN 3 THEN 'not_match' ELSE 'invalid' END,
           received_at, captured_at
    FROM reads WHERE id % ? = 0"""


def synthetic_reads(count: int, now: int, seed: int = 7, cameras: int = CAMERAS):
    """A month of traffic: most reads are regulars (commuters) seen again and again, the rest
    pass once or twice; `count` reads spread evenly over 30 days ending at `now`, from `cameras`."""
    rng = random.Random(seed)
    plates = random_plates(max(count // 10, 1000), seed=seed)
    rng.shuffle(plates)
    regulars = plates[: len(plates) // 10]
    step = 30 * DAY_MS // count
    start = now - 30 * DAY_MS
    for i in range(count):
        plate = rng.choice(regulars) if rng.random() < 0.6 else rng.choice(plates)
        at = start + i * step
        yield (f"{i:08x}-0000-4000-8000-{i:012x}", rng.randrange(1, cameras + 1), at, at + 300, plate, plate,
               fold(plate), round(rng.uniform(0.6, 0.99), 2), rng.choice(COLOURS),
               f"images/p/{i}.jpg", f"images/v/{i}.jpg")


def build(path: Path, count: int, now: int, *, cameras: int = CAMERAS, alert_every: int = 0) -> tuple[float, str]:
    """The database with `count` reads (and an alert for every `alert_every`-th read, 0 for none);
    returns the build time and one regular plate. The reads' indexes are dropped while the rows go
    in and built again after: sorting once is far quicker than keeping five indexes in order."""
    started = time.perf_counter()
    migrate(path)
    db = connect(path)
    conn = db.conn
    conn.execute("PRAGMA journal_mode=OFF")  # no WAL to copy gigabytes through: a failed build is thrown away
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'reads' "
                           "AND sql IS NOT NULL").fetchall()
    with conn:
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        conn.executemany("INSERT INTO cameras (id, name, token_hash, created_at) VALUES (?, ?, ?, 0)",
                         [(i, f"cam-{i}", f"hash-{i}") for i in range(1, cameras + 1)])
        marks = ",".join("?" * len(COLUMNS.split(",")))
        conn.executemany(f"INSERT INTO reads ({COLUMNS}) VALUES ({marks})",
                         synthetic_reads(count, now, cameras=cameras))
        for _, sql in indexes:
            conn.execute(sql)
        if alert_every:
            conn.execute(ALERTS_SQL, (alert_every,))
    conn.execute("PRAGMA journal_mode=WAL")
    db.close()
    return time.perf_counter() - started, regular_plate(path, now)


def regular_plate(path: Path, now: int) -> str:
    """The plate read most often in the day before `now`."""
    with connect(path) as db:
        return db.execute("SELECT plate_norm FROM reads WHERE captured_at > ? GROUP BY plate_norm "
                          "ORDER BY count(*) DESC LIMIT 1", (now - DAY_MS,)).fetchone()[0]


def searches(plate: str) -> dict[str, tuple[str, bool]]:
    """Each kind of search an officer runs, aimed at a plate that is really there."""
    misread = plate[:2] + ("X" if plate[2] != "X" else "Y") + plate[3:]  # one character wrong
    return {
        f"exact {plate}": (plate, False),
        f"wildcard prefix {plate[:3]}*": (plate[:3] + "*", False),
        f"wildcard infix *{plate[2:5]}*": (f"*{plate[2:5]}*", False),
        "wildcard infix, rare *Z9Z9*": ("*Z9Z9*", False),
        f"wildcard ? {plate[:2]}?{plate[3:]}": (f"{plate[:2]}?{plate[3:]}", False),
        f"fuzzy {misread} (1 edit + look-alikes)": (misread, True),
        "camera cam-1 + red, no plate": ("", False),
    }


async def time_searches(path: Path, plate: str, now: int, runs: int) -> list[tuple[str, int, float, int]]:
    results = []
    async with Database(path) as db:
        for name, (pattern, fuzzy) in searches(plate).items():
            for days in (7, 30):
                extra = {"camera_id": 1, "colour": "red"} if not pattern else {}
                criteria = Criteria(pattern, fuzzy, now - days * DAY_MS, now, **extra)
                timings = []
                for _ in range(runs):
                    started = time.perf_counter()
                    rows, _more = await search_reads(db.reader, criteria)
                    timings.append((time.perf_counter() - started) * 1000)
                results.append((name, days, statistics.median(timings), len(rows)))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=1_500_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--cameras", type=int, default=CAMERAS)
    parser.add_argument("--pages", action="store_true", help="time the dashboard, public pages and purge")
    parser.add_argument("--data", type=Path, help="with --pages: the data dir, built once and reused")
    parser.add_argument("--before", type=Path, help="with --pages: a checkout of the code to compare with")
    parser.add_argument("--purge-hours", type=float, default=2.0, help="with --pages: the oldest hours purged")
    args = parser.parse_args(argv)
    if args.pages:
        from bench.pages import run

        if args.data is None:
            parser.error("--pages needs --data DIR (built once, then reused)")
        return run(args.data, args.reads, args.cameras, args.runs, args.before, args.purge_hours)
    if args.data is not None:  # searches on the database --pages built (and keeps), reused as it is
        from bench.pages import build_once

        build_once(args.data, args.reads, args.cameras, args.before or Path(__file__).resolve().parent.parent)
        path = args.data / "platewatch.db"
        with connect(path) as db:
            now = db.execute("SELECT max(captured_at) FROM reads").fetchone()[0]
        print(f"{path}, {path.stat().st_size / 1e9:.1f} GB (reused); {machine()}")
        return _print_searches(path, regular_plate(path, now), now, args.runs)
    now = now_ms()
    with tempfile.TemporaryDirectory(prefix="platewatch-search-") as tmp:
        path = Path(tmp) / "search.db"
        build_s, plate = build(path, args.reads, now, cameras=args.cameras)
        size_mb = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 1e6
        print(f"{args.reads:,} reads over 30 days, {args.cameras} cameras; built in {build_s:.0f} s, "
              f"{size_mb:.0f} MB; {machine()}")
        _print_searches(path, plate, now, args.runs)


def _print_searches(path: Path, plate: str, now: int, runs: int) -> None:
    print(f"median of {runs} runs, results capped at 200\n")
    print(f"{'search':46} {'days':>4} {'median ms':>10} {'rows':>5}")
    for name, days, ms, count in asyncio.run(time_searches(path, plate, now, runs)):
        print(f"{name:46} {days:>4} {ms:>10.1f} {count:>5}")


if __name__ == "__main__":
    main()
