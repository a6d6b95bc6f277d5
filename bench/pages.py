"""The dashboard and the public pages at a town's size, and how long the purge holds the writer.

`python -m bench.search --reads 10000000 --cameras 24 --pages --data DIR [--before OLD_CHECKOUT]`.
The database is built once into DIR and reused. With `--before`, a checkout of the code to compare
with (say `git archive main | tar -x -C /tmp/before`), and a database that code built, the old
code is measured first, then ours; our server's start upgrades the database (migration m011), so
a second run measures ours alone: delete DIR for a fresh "before". Each side runs in its own
process with PYTHONPATH set to its code: a real `platewatch serve` on loopback for the pages
(signed in as a supervisor for /dashboard), and a purge of the oldest reads for the writer: a
probe writer opens an empty write transaction every 10 ms, as a read arriving would, and times
how long it waited.

Run as a script (`python bench/pages.py probe DIR HOURS`) it is the purge probe itself: it then
imports only what every version of the server has.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
PAGES = ("/transparency", "/transparency.json", "/dashboard")
PASSWORD = "bench-password-long"
# The server's own purge at start-up must take nothing: the probe chooses what goes.
SERVER_ENV = {"PLATEWATCH_RETENTION_DAYS": "3650", "PLATEWATCH_PURGE_INTERVAL_S": "86400"}


def code_env(code: Path) -> dict[str, str]:
    """For a subprocess run in `code` (`python -c` and `-m` put the working directory first on the path)."""
    return {**os.environ, "PYTHONPATH": str(code), **SERVER_ENV}


def migrated(db_path: Path) -> bool:
    import sqlite3

    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'read_counts'").fetchone() is not None


def build_once(data: Path, count: int, cameras: int, code: Path) -> None:
    """Builds DIR's database with `code`'s schema (in its own process), unless it is there."""
    if (data / "platewatch.db").exists():
        print(f"reusing {data / 'platewatch.db'}")
        return
    # bench/search.py from this checkout, loaded by its path; the server (its migrations) from `code`'s.
    script = ("import importlib.util, sys; from pathlib import Path; "
              "spec = importlib.util.spec_from_file_location('search', sys.argv[1]); "
              "search = importlib.util.module_from_spec(spec); spec.loader.exec_module(search); "
              "print(search.build(Path(sys.argv[2]), int(sys.argv[3]), search.now_ms(), cameras=int(sys.argv[4]), "
              "alert_every=5000))")
    subprocess.run([sys.executable, "-c", script, str(HERE / "bench" / "search.py"), str(data / "platewatch.db"),
                    str(count), str(cameras)], env=code_env(code), cwd=code, check=True)


def time_pages(data: Path, code: Path, runs: int) -> tuple[dict[str, list[float]], float]:
    """Each page's times in ms (`runs` requests each, after one to warm up), and the server's start in s."""
    import httpx

    from bench.common import free_port

    env = code_env(code)
    cli = [sys.executable, "-m", "platewatch.cli"]
    subprocess.run([*cli, "user", "add", "bench-chief", "--role", "supervisor", "--password-stdin", "--data",
                    str(data)], input=PASSWORD + "\n", text=True, env=env, cwd=code, capture_output=True)  # may exist
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    server = subprocess.Popen([*cli, "serve", "--port", str(port), "--data", str(data)], env=env, cwd=code,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        start_s = _wait_healthy(url, started)
        with httpx.Client(base_url=url, timeout=120) as http:
            http.get("/login")
            signed_in = http.post("/login", data={"username": "bench-chief", "password": PASSWORD,
                                                  "_csrf_token": http.cookies["csrftoken"]})
            assert signed_in.status_code == 303, signed_in.text
            times: dict[str, list[float]] = {}
            for page in PAGES:
                http.get(page).raise_for_status()
                times[page] = []
                for _ in range(runs):
                    begun = time.perf_counter()
                    http.get(page).raise_for_status()
                    times[page].append((time.perf_counter() - begun) * 1000)
        return times, start_s
    finally:
        server.terminate()
        server.wait(timeout=60)


def _wait_healthy(url: str, started: float) -> float:
    import httpx

    while time.perf_counter() - started < 1800:  # an upgrade of a big database takes a while
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            time.sleep(0.2)
    raise TimeoutError("the server did not start")


def time_purge(data: Path, code: Path, hours: float) -> dict:
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "probe", str(data), str(hours)],
                          env=code_env(code), cwd=code, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


async def probe(data: Path, hours: float) -> dict:
    """Purges the oldest `hours` of reads while a probe writer times its waits."""
    from server.store import queries_holds
    from server.store.db import Database
    from server.retention import purge
    from server.settings import load_settings

    settings = load_settings(data, env={})
    async with Database(settings.db_path) as db:
        oldest = await queries_holds.oldest_unheld_read_time(db.reader)
        now = oldest + int(hours * 3_600_000) + int(settings.retention_days * 86_400_000)
        waits: list[float] = []
        finished = asyncio.Event()

        async def writer():
            while not finished.is_set():
                begun = time.perf_counter()
                async with db.transaction():
                    pass
                waits.append((time.perf_counter() - begun) * 1000)
                await asyncio.sleep(0.01)

        task = asyncio.create_task(writer())
        begun = time.perf_counter()
        result = await purge(db, settings, now)
        seconds = time.perf_counter() - begun
        finished.set()
        await task
    waits.sort()
    return {"reads": result.reads, "seconds": round(seconds, 1), "waits": len(waits),
            "max_wait_ms": round(waits[-1], 1), "p99_wait_ms": round(waits[int(0.99 * (len(waits) - 1))], 1),
            "median_wait_ms": round(statistics.median(waits), 2)}


def report(label: str, times: dict[str, list[float]], start_s: float, purged: dict) -> None:
    print(f"\n{label}: server up in {start_s:.1f} s")
    print(f"{'page':22} {'median ms':>10} {'max ms':>8}")
    for page, values in times.items():
        print(f"{page:22} {statistics.median(values):>10.1f} {max(values):>8.1f}")
    print(f"purge of {purged['reads']:,} reads in {purged['seconds']} s; a writer waited at most "
          f"{purged['max_wait_ms']} ms (p99 {purged['p99_wait_ms']}, median {purged['median_wait_ms']}, "
          f"{purged['waits']} tries)")


def run(data: Path, count: int, cameras: int, runs: int, before: Path | None, hours: float) -> None:
    from bench.common import machine

    data.mkdir(parents=True, exist_ok=True)
    build_once(data, count, cameras, before or HERE)
    db_path = data / "platewatch.db"
    size_gb = sum(f.stat().st_size for f in data.iterdir() if f.is_file()) / 1e9
    print(f"{count:,} reads over 30 days, {cameras} cameras, {size_gb:.1f} GB; {machine()}; "
          f"median and max of {runs} requests per page; purge of the oldest {hours:g} h of reads")
    if before is not None and migrated(db_path):
        print("(the database already has m011: no 'before' figures; delete it for a fresh build)")
    elif before is not None:
        report(f"before ({before})", *time_pages(data, before, runs), time_purge(data, before, hours))
    report("after (this checkout)", *time_pages(data, HERE, runs), time_purge(data, HERE, hours))


if __name__ == "__main__" and sys.argv[1:2] == ["probe"]:
    print(json.dumps(asyncio.run(probe(Path(sys.argv[2]), float(sys.argv[3])))))
