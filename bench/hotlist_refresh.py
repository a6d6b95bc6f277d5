"""Ingest latency while a 100,000-entry hot list is replaced: cameras post reads at a steady pace
to a real `platewatch serve` while `platewatch hotlist import` (another process) replaces the
list; the latency of every read is kept. Run on the code before the fix (a `git archive` of
`--before`, the commit the fix branched from, unpacked into a temporary folder) and on this tree,
in one run, on identical data.

    python -m bench.hotlist_refresh [--alerts 1500] [--cameras 16] [--big-db PATH]

With --big-db, also on a copy of a database of synthetic reads (bench.search.build, built there
once when missing: 10 million reads take long and ~5 GB, so it is kept and reused)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench.common import free_port, http_request, machine, percentile, random_plates, read_body

HERE = Path(__file__).resolve().parent.parent
LIST_SIZE = 100_000
READ_EVERY_S = 0.1  # each camera: a read every 100 ms, 160 reads/s from 16 cameras
SETTLE_S = 2.0  # reads measured before and after the import too


class Platewatch:
    """One code tree (its root on PYTHONPATH) and one data dir: the CLI, and the server."""

    def __init__(self, code: Path, data: Path) -> None:
        self.code, self.data, self.port = code, data, free_port()
        self.env = {**os.environ, "PYTHONPATH": str(code), "PLATEWATCH_PUSH_ALLOW_HTTP": "true"}

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "platewatch.cli", *args, "--data", str(self.data)]

    def cli(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(self.command(*args), input=stdin, capture_output=True, text=True, env=self.env,
                              cwd=self.code)
        if done.returncode:
            raise RuntimeError(f"{args}: {done.stderr}")
        return done.stdout

    def __enter__(self) -> "Platewatch":
        self.process = subprocess.Popen(self.command("serve", "--port", str(self.port)), env=self.env, cwd=self.code,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120  # a first start on a big database runs the migrations
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz").status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def write_list(path: Path, plates: list[str]) -> Path:
    path.write_text("plate,reason\n" + "".join(f"{p},bench\n" for p in plates))
    return path


async def post(port: int, request: bytes) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        status = int((await reader.readline()).split()[1])
        await reader.read()  # Connection: close below, so the body ends with the stream
        return status
    finally:
        writer.close()


def read_request(plate: str, token: str) -> bytes:
    body = json.dumps(read_body(plate, str(uuid.uuid4()))).encode()
    headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
    return http_request("/api/v1/reads", body, "application/json", headers)


async def camera(port: int, token: str, plates: list[str], stop: asyncio.Event, log: list) -> None:
    """Posts a read every READ_EVERY_S (or at once, if the last one took longer); logs each
    read's (sent, seconds, status)."""
    for plate in plates:
        if stop.is_set():
            return
        request = read_request(plate, token)
        sent = time.perf_counter()
        try:
            status = await asyncio.wait_for(post(port, request), timeout=300)
        except (OSError, asyncio.TimeoutError):
            status = 0
        took = time.perf_counter() - sent
        log.append((sent, took, status))
        await asyncio.sleep(max(0.0, READ_EVERY_S - took))


async def refresh_under_load(pw: Platewatch, token: str, new_list: Path, cameras: int) -> dict:
    log: list[tuple[float, float, int]] = []
    stop = asyncio.Event()
    passing = random_plates(200_000, seed=5)
    tasks = [asyncio.create_task(camera(pw.port, token, passing[i::cameras], stop, log)) for i in range(cameras)]
    await asyncio.sleep(SETTLE_S)
    started = time.perf_counter()
    importer = await asyncio.create_subprocess_exec(
        *pw.command("hotlist", "import", str(new_list), "--list", "bench"), env=pw.env, cwd=pw.code,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await importer.communicate()
    ended = time.perf_counter()
    if importer.returncode:
        raise RuntimeError(f"import failed: {err.decode()}")
    await asyncio.sleep(SETTLE_S)
    stop.set()
    await asyncio.gather(*tasks)
    during = [(took, status) for sent, took, status in log if started <= sent + took and sent <= ended]
    latencies = [took for took, _ in during]
    calm = [took for sent, took, _ in log if sent + took < started]  # the box's own noise, before the import
    return {"calm_p99": percentile(calm, 99), "calm_max": max(calm), "import_s": ended - started, "reads": len(during), "failed": sum(s != 201 for _, s in during),
            "p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "max": max(latencies),
            "import_output": out.decode().strip()}


def store_alerts(pw: Platewatch, token: str, plates: list[str]) -> None:
    """One read of each plate: each raises an alert on an entry the refresh replaces."""
    async def send() -> list[int]:
        statuses = []
        for start in range(0, len(plates), 16):
            statuses += await asyncio.gather(*(post(pw.port, read_request(p, token)) for p in plates[start:start + 16]))
        return statuses
    assert set(asyncio.run(send())) == {201}


def run_variant(code: Path, data: Path, alerts: int, cameras: int, size: int = LIST_SIZE) -> dict:
    """On `data` (made here, or a copy of a big database): a camera, a 100,000-entry list with
    `alerts` alerts on its entries, then the list replaced (95% the same plates) under load."""
    pw = Platewatch(code, data)
    token = pw.cli("camera", "add", f"bench-{uuid.uuid4().hex[:6]}").strip().splitlines()[-1]
    old = random_plates(size, seed=1)
    listed = set(old)
    new = old[: size * 95 // 100] + [p for p in random_plates(size // 20, seed=3) if p not in listed]
    pw.cli("hotlist", "import", str(write_list(data / "old.csv", old)), "--list", "bench")
    with pw:
        store_alerts(pw, token, old[::size // alerts][:alerts])
        return asyncio.run(refresh_under_load(pw, token, write_list(data / "new.csv", new), cameras))


async def probe_loop(port: int, stop: asyncio.Event) -> float:
    """The longest answer to GET /healthz, asked every 20 ms: how long the server's event loop stalls."""
    longest = 0.0
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    while not stop.is_set():
        sent = time.perf_counter()
        await post(port, request)
        longest = max(longest, time.perf_counter() - sent)
        await asyncio.sleep(0.02)
    return longest


async def upload_while_probing(pw: Platewatch, client: httpx.AsyncClient, csv_text: str) -> tuple[float, float]:
    stop = asyncio.Event()
    probe = asyncio.create_task(probe_loop(pw.port, stop))
    await asyncio.sleep(0.5)
    started = time.perf_counter()
    resp = await client.post("/hotlists/1/import", files={"file": ("feed.csv", csv_text, "text/csv")})
    took = time.perf_counter() - started
    assert resp.status_code == 200, resp.text[-500:]
    stop.set()
    return took, await probe


def web_import_stall(code: Path, data: Path, lines: int) -> tuple[float, float]:
    """A supervisor uploads a `lines`-line CSV on the list's page; (upload s, longest loop stall s)."""
    pw = Platewatch(code, data)
    pw.cli("user", "add", "sup", "--role", "supervisor", "--password-stdin", stdin="bench-password\n")
    plates = random_plates(lines, seed=11)
    pw.cli("hotlist", "import", str(write_list(data / "first.csv", plates[:10])), "--list", "bench")

    async def run() -> tuple[float, float]:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{pw.port}", timeout=600) as client:
            await client.get("/login")
            token = client.cookies["csrftoken"]
            await client.post("/login", data={"username": "sup", "password": "bench-password", "_csrf_token": token})
            client.headers["x-csrftoken"] = token
            return await upload_while_probing(pw, client, "plate,reason\n" + "".join(f"{p},bench\n" for p in plates))
    with pw:
        return asyncio.run(run())


def code_before(ref: str, into: Path) -> Path:
    """The tree at `ref`, unpacked (not checked out): the old code runs only here, in the benchmark."""
    archive = subprocess.run(["git", "-C", str(HERE), "archive", ref], capture_output=True, check=True).stdout
    into.mkdir()
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def big_copy(big_db: Path, data: Path) -> None:
    """A fresh copy of the big database (built once, reused) as `data`'s database."""
    if not big_db.exists():
        from bench.search import build
        from server.clock import now_ms

        print(f"building {big_db} once (10 million reads: a long while)", flush=True)
        build(big_db, 10_000_000, now_ms())
    data.mkdir(parents=True)
    shutil.copyfile(big_db, data / "platewatch.db")


def report(label: str, r: dict) -> None:
    print(f"  {label:28} import {r['import_s']:6.1f} s | {r['reads']:5} reads during it: p50 {r['p50'] * 1000:7.0f} ms"
          f"  p99 {r['p99'] * 1000:7.0f} ms  max {r['max'] * 1000:7.0f} ms  failed {r['failed']} (before the import: "
          f"p99 {r['calm_p99'] * 1000:.0f} ms, max {r['calm_max'] * 1000:.0f} ms)", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1500)
    parser.add_argument("--list-size", type=int, default=LIST_SIZE)
    parser.add_argument("--cameras", type=int, default=16)
    parser.add_argument("--before", default="4185a15", help="the commit to measure as 'before'")
    parser.add_argument("--big-db", type=Path, default=None, help="a database of 10 million reads, built if missing")
    parser.add_argument("--big-before", action="store_true", help="on the big database, the old code too (slow)")
    parser.add_argument("--big-only", action="store_true", help="only on the big database")
    parser.add_argument("--web-lines", type=int, default=0, help="also: the event loop's longest stall while a "
                        "CSV of this many lines is uploaded on the web page (issue 17 measured 240,000)")
    args = parser.parse_args(argv)
    print(f"replace a {args.list_size:,}-entry hot list (95% kept) with {args.alerts} alerts stored, {args.cameras} cameras "
          f"posting a read every {READ_EVERY_S * 1000:.0f} ms; {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="platewatch-refresh-") as tmp:
        before = code_before(args.before, Path(tmp) / "code-before")
        variants = [] if args.big_only else [("before", before, False), ("after", HERE, False)]
        if args.big_db:
            variants += [("before, 10M reads", before, True)] if args.big_before else []
            variants += [("after, 10M reads", HERE, True)]
        for label, code, big in variants:
            data = Path(tmp) / ("data-" + label.replace(" ", "").replace(",", "-"))
            if big:
                big_copy(args.big_db, data)
            else:
                data.mkdir()
            report(f"{label} ({args.before})" if code == before else label, run_variant(code, data, args.alerts,
                                                                                          args.cameras, args.list_size))
            shutil.rmtree(data)
        for label, code in (("before", before), ("after", HERE))[: 2 if args.web_lines else 0]:
            (data := Path(tmp) / f"web-{label}").mkdir()
            took, stall = web_import_stall(code, data, args.web_lines)
            print(f"  web upload of {args.web_lines:,} lines, {label:6}: {took:5.1f} s; longest event-loop stall "
                  f"{stall * 1000:.0f} ms", flush=True)


if __name__ == "__main__":
    main()
