"""Traffic: live MJPEG cameras showing vehicles, the real worker, the real server, verified pushes.

    python -m bench.traffic [--cameras 1,4,8,16,24] [--seconds 90] [--phones 3] [--data DIR]

Footage is made from the labelled photos of openalpr-us (bench/footage.py): one vehicle every
3 s per camera (2 s approaching, 1 s of empty street), 1280×720 at 10 fps, each camera showing
its own seeded order of the photos, its vehicles staggered across the 3-s slot as on streets across
a town (`--aligned`: every camera's vehicle arrives at the same moment, a burst). Cameras are served live on loopback (bench/mjpeg.py); the
worker (`platewatch worker`, a subprocess, default recognition settings) reads them as streams
and posts to a real server (`platewatch serve`) whose 100,000-entry hot list holds half of the
photos' plates; the officer is on duty with `--phones` phones on a push service that verifies
VAPID and decrypts each push (tests/pushservice.py).

Per camera count: vehicles shown and per second; listed vehicles shown and how many alerted on
their own camera; false alerts (a plate not shown on that camera before the push, or not
listed); vehicle's first frame sent → verified push on the last phone, p50/p95; worker CPU in
cores (its process tree, during the traffic); vehicles whose plate the server
stored from their camera (exact); frames the worker dropped (its log) and frames it did not
take from the camera in time. After the traffic, pushes have `--late-s` seconds
more; then the worker is stopped, and what it flushes at shutdown is counted apart (too late).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.common import PLATEWATCH, Server, load_average, machine, percentile, process_tree_cpu_s, random_plates
from bench.footage import FPS, SLOT_FRAMES, ClipLibrary, Feed, Photo, camera_orders, load_photos
from bench.mjpeg import MjpegCameras
from tests.pushservice import PushService

REPOSITORY = Path(__file__).resolve().parents[1]


def default_data() -> Path:
    """$PLATEWATCH_BENCH_DATA, else the nearest shared/data beside the repository or above it
    (a git worktree may sit a level deeper than the main checkout)."""
    if "PLATEWATCH_BENCH_DATA" in os.environ:
        return Path(os.environ["PLATEWATCH_BENCH_DATA"])
    beside = [parent / "shared" / "data" for parent in REPOSITORY.parents]
    return next((p for p in beside if p.is_dir()), beside[0])


HOTLIST_SIZE = 100_000
SEED = 18
CONFUSABLE = str.maketrans({c: g[0] for g in ("0ODQ", "1IL", "2Z", "5S", "6G", "8B") for c in g[1:]})


@dataclass
class Vehicle:
    camera: str
    number: int  # on its camera
    plate: str
    listed: bool
    shown_at: float  # time.monotonic() its first frame was sent
    push_s: float | None = None  # first frame → verified push on the last phone


@dataclass
class RunResult:
    cameras: int
    seconds: float
    vehicles: int
    vehicles_per_s: float
    vehicles_read: int  # the server stored a read of exactly its plate from its camera before the stop
    listed: int
    alerted: int
    alerted_share: float | None
    false_alerts: int
    push_p50_s: float | None
    push_p95_s: float | None
    worker_cpu_cores: float
    frames_dropped: int | None  # by the worker (its queues), from its log; None: not reported
    frames_not_taken: int  # sent by no camera because the worker read too slowly
    reads_posted: int  # stored by the server before the worker was stopped
    reads_at_shutdown: int  # flushed by the worker when it was stopped
    alerts_after_stop: int
    unverified_pushes: int


def hot_list(photos: list[Photo], seed: int) -> tuple[set[str], list[str]]:
    """Half of the photos' plates (seeded), filled up to HOTLIST_SIZE with random plates that
    cannot be mistaken for any photo's plate (not even through OCR confusions)."""
    plates = sorted(p.plate for p in photos)
    listed = set(random.Random(seed).sample(plates, len(plates) // 2))
    shown_folds = {p.translate(CONFUSABLE) for p in plates}
    filler = [p for p in random_plates(HOTLIST_SIZE + 1000, seed) if p.translate(CONFUSABLE) not in shown_folds]
    return listed, sorted(listed) + filler[:HOTLIST_SIZE - len(listed)]


def worker_config(folder: Path, server: Server, cameras: MjpegCameras, processes: int | None = None) -> Path:
    lines = [f'server = "{server.url}"', f'spool = "{folder / "spool"}"', ""]
    if processes is not None:
        lines += ["[recognition]", f"processes = {processes}", ""]
    for i, feed in enumerate(cameras.feeds):
        lines += ["[[cameras]]", f'name = "{feed.name}"', f'token = "{server.camera_tokens[feed.name]}"',
                  'kind = "stream"', f'location = "{cameras.url(i)}"', ""]
    path = folder / "worker.toml"
    path.write_text("\n".join(lines))
    return path


def frames_dropped(worker_log: str) -> int | None:
    """Frames the worker dropped, from its last summary line per camera (`..., N dropped, ...`);
    None when it does not log them."""
    dropped = {camera: int(n) for camera, n in re.findall(r"camera (\S+): [^\n]*?(\d+) dropped", worker_log)}
    return sum(dropped.values()) if dropped else None


@dataclass
class Reads:
    posted: int  # stored by the server before the worker was stopped
    at_shutdown: int  # flushed by the worker when it was stopped
    plates: set[tuple[str, str, float]]  # (camera, plate, received time.time()) stored before the stop


def stored_reads(server: Server, stopped_at_wall: float) -> Reads:
    """The reads the server stored (its database, read-only), split at the worker's stop."""
    import sqlite3

    with sqlite3.connect(f"file:{server.data / 'platewatch.db'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT cameras.name, reads.plate_norm, reads.received_at FROM reads "
                          "JOIN cameras ON cameras.id = reads.camera_id").fetchall()
    before = {(camera, plate, received / 1000) for camera, plate, received in rows
              if received / 1000 <= stopped_at_wall}
    return Reads(len(before), len(rows) - len(before), before)


def alerts_from(push: PushService) -> tuple[dict[int, dict], int]:
    """Each alert pushed (by id): its payload and when it reached the last phone; and how many
    pushes failed verification."""
    alerts: dict[int, dict] = {}
    for message in push.messages:
        if not message.verified:
            continue
        payload = json.loads(message.payload)
        alert = alerts.setdefault(payload["id"], {**payload, "arrived": message.received_at})
        alert["arrived"] = max(alert["arrived"], message.received_at)
    return alerts, len(push.failures)


def match_alerts(vehicles: list[Vehicle], alerts: dict[int, dict], stopped_at: float) -> tuple[int, int]:
    """Set each vehicle's push latency from the alert for its plate on its camera (the latest
    showing before the push). Returns (false alerts, alerts after the worker was stopped)."""
    false_alerts = after_stop = 0
    for alert in sorted(alerts.values(), key=lambda a: a["arrived"]):
        if alert["arrived"] > stopped_at:
            after_stop += 1
            continue
        shown = [v for v in vehicles if v.camera == alert["camera"] and v.plate == alert["plate"]
                 and v.shown_at <= alert["arrived"]]
        if not shown or not shown[-1].listed:
            false_alerts += 1
        elif shown[-1].push_s is None:
            shown[-1].push_s = alert["arrived"] - shown[-1].shown_at
    return false_alerts, after_stop


def shown_vehicles(feeds: list[Feed], photos: list[Photo], listed: set[str]) -> list[Vehicle]:
    vehicles = []
    for feed in feeds:
        for number, at in sorted(feed.first_sent.items()):
            plate = photos[feed.photo_of(number)].plate
            vehicles.append(Vehicle(feed.name, number, plate, plate in listed, at))
    return sorted(vehicles, key=lambda v: v.shown_at)


def start_worker(config: Path, log_path: Path) -> subprocess.Popen:
    with log_path.open("wb") as log:
        command = [PLATEWATCH, "worker", "--config", str(config)]
        if level := os.environ.get("PLATEWATCH_BENCH_WORKER_LOG_LEVEL"):  # DEBUG: a line per look
            # The worker of this checkout (`-m` looks in the working folder first): a variant in a
            # git worktree is measured by running its own bench.
            command = [sys.executable, "-m", "worker", "--config", str(config), "--log-level", level]
            return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPOSITORY)
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def stop_worker(worker: subprocess.Popen, timeout: float = 60) -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def drive(cameras: MjpegCameras, worker: subprocess.Popen, seconds: float, late_s: float) -> tuple[float, float]:
    """Wait for the worker to open every camera, run the traffic, wait `late_s`, stop the
    worker; returns its CPU in cores during the traffic and when it was stopped (time.time())."""
    deadline = time.monotonic() + 300  # model loading on a busy box
    while not cameras.wait_connected(1):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not open every camera (exit code {worker.poll()})")
    time.sleep(3)  # its capture threads settle on the empty street
    cpu_before, own_before = process_tree_cpu_s(worker.pid), time.process_time()
    started = cameras.start()
    time.sleep(max(0.0, started + seconds - time.monotonic()))
    cores = (process_tree_cpu_s(worker.pid) - cpu_before) / seconds
    # The cameras and the push service run in this process, on the same cores as the worker.
    print(f"  ({len(cameras.feeds)} cameras: this process, cameras and push service, took "
          f"{(time.process_time() - own_before) / seconds:.2f} cores)", flush=True)
    time.sleep(late_s)
    stopped_at = time.time()
    stop_worker(worker)
    return cores, stopped_at


@dataclass
class Observed:
    vehicles: list[Vehicle]
    cores: float
    dropped: int | None
    not_taken: int
    reads: Reads
    alerts: dict[int, dict]
    unverified: int
    stopped_at: float  # time.time()


def run(count: int, seconds: float, library: ClipLibrary, listed: set[str], hotlist: list[str],
        phones: int, late_s: float, keep_log: Path | None = None, staggered: bool = True,
        processes: int | None = None) -> RunResult:
    vehicles_each = max(1, round(seconds * FPS / SLOT_FRAMES))
    orders = camera_orders(count, len(library.photos), SEED)
    library.prepare({order[v % len(order)] for order in orders for v in range(vehicles_each)})
    # Staggered (default): camera i's vehicles arrive i/count of a slot later than camera 0's, as on
    # streets across a town; aligned: every camera's vehicle arrives at the same moment (a burst).
    phases = [i * SLOT_FRAMES // count if staggered else 0 for i in range(count)]
    feeds = [Feed(f"cam{i + 1:02d}", orders[i], library, vehicles_each, phases[i]) for i in range(count)]
    with tempfile.TemporaryDirectory(prefix="platewatch-traffic-") as tmp, \
            Server(hotlist, cameras=[f.name for f in feeds]) as server, PushService() as push, \
            MjpegCameras(feeds) as cameras, httpx.Client(base_url=server.url, timeout=30) as http:
        server.phones_on_duty(http, push, phones)
        log_path = Path(tmp) / "worker.log"
        worker = start_worker(worker_config(Path(tmp), server, cameras, processes), log_path)
        try:
            cores, stopped_at = drive(cameras, worker, (vehicles_each * SLOT_FRAMES + max(phases)) / FPS, late_s)
        finally:
            if worker.poll() is None:
                stop_worker(worker)
        time.sleep(min(late_s, 5))  # pushes for reads flushed at shutdown: counted apart
        alerts, unverified = alerts_from(push)
        if keep_log is not None:
            keep_log.mkdir(parents=True, exist_ok=True)
            shutil.copy(log_path, keep_log / f"worker-{count}-cameras.log")
        observed = Observed(shown_vehicles(feeds, library.photos, listed), cores,
                            frames_dropped(log_path.read_text(errors="replace")),
                            sum(f.frames_skipped for f in feeds), stored_reads(server, stopped_at),
                            alerts, unverified, stopped_at)
    result = summarise(count, vehicles_each * SLOT_FRAMES / FPS, observed)
    if keep_log is not None:  # each vehicle's fate, on the wall clock of the worker's log lines
        wall = time.time() - time.monotonic()
        read = {(camera, plate) for camera, plate, _ in observed.reads.plates}
        (keep_log / f"vehicles-{count}-cameras.json").write_text(json.dumps(
            [{**asdict(v), "shown_at": v.shown_at + wall, "read": (v.camera, v.plate) in read}
             for v in observed.vehicles], indent=0))
    return result


def summarise(count: int, seconds: float, seen: Observed) -> RunResult:
    # pushes arrive on the monotonic clock; the stop was taken on the wall clock
    stopped_mono = seen.stopped_at - time.time() + time.monotonic()
    false_alerts, after_stop = match_alerts(seen.vehicles, seen.alerts, stopped_mono)
    listed = [v for v in seen.vehicles if v.listed]
    latencies = [v.push_s for v in listed if v.push_s is not None]
    read = {(camera, plate) for camera, plate, _ in seen.reads.plates}
    return RunResult(
        cameras=count, seconds=seconds, vehicles=len(seen.vehicles),
        vehicles_per_s=round(len(seen.vehicles) / seconds, 2),
        vehicles_read=sum((v.camera, v.plate) in read for v in seen.vehicles),
        listed=len(listed), alerted=len(latencies),
        alerted_share=round(len(latencies) / len(listed), 3) if listed else None, false_alerts=false_alerts,
        push_p50_s=round(percentile(latencies, 50), 2) if latencies else None,
        push_p95_s=round(percentile(latencies, 95), 2) if latencies else None,
        worker_cpu_cores=round(seen.cores, 2), frames_dropped=seen.dropped, frames_not_taken=seen.not_taken,
        reads_posted=seen.reads.posted, reads_at_shutdown=seen.reads.at_shutdown, alerts_after_stop=after_stop,
        unverified_pushes=seen.unverified,
    )


def row(r: RunResult) -> str:
    share = "-" if r.alerted_share is None else f"{100 * r.alerted_share:.0f}% ({r.alerted}/{r.listed})"
    push = "-" if r.push_p50_s is None else f"{r.push_p50_s:.1f} / {r.push_p95_s:.1f} s"
    dropped = "n/a" if r.frames_dropped is None else str(r.frames_dropped)
    return (f"{r.cameras:7d} {r.vehicles:8d} {r.vehicles_per_s:10.2f} {r.vehicles_read:5d}  {share:>14s} {r.false_alerts:6d}  {push:>15s}"
            f" {r.worker_cpu_cores:9.2f} {dropped:>8s} {r.frames_not_taken:9d} {r.reads_posted:6d} "
            f"{r.reads_at_shutdown:8d}")


HEADER = ("cameras vehicles vehicles/s  read  listed alerted  false  push p50 / p95 "
          " CPU cores  dropped not taken  reads at stop")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.traffic", description=__doc__.split("\n")[0])
    parser.add_argument("--cameras", default="1,4,8,16,24", help="comma-separated camera counts, one run each")
    parser.add_argument("--seconds", type=float, default=90.0, help="traffic per run (one vehicle per 3 s per camera)")
    parser.add_argument("--phones", type=int, default=3, help="the officer's subscribed phones")
    parser.add_argument("--late-s", type=float, default=10.0, help="after the traffic, wait this long for pushes")
    parser.add_argument("--data", type=Path, default=default_data(), help="folder holding openalpr-us/")
    parser.add_argument("--keep-log", type=Path, metavar="DIR", help="keep each run's worker log in DIR")
    parser.add_argument("--aligned", action="store_true",
                        help="every camera's vehicles arrive at the same moments (default: staggered across the slot)")
    parser.add_argument("--processes", type=int, metavar="N",
                        help="the worker's recognition processes (default: its own, one per core)")
    args = parser.parse_args(argv)
    folder = args.data / "openalpr-us"
    if not folder.is_dir():
        print(f"bench.traffic: skipped: no labelled photos at {folder} (set --data or PLATEWATCH_BENCH_DATA)")
        return 0  # as bench.accuracy: `make bench` on a clone without the evaluation data runs the rest
    counts = [int(c) for c in args.cameras.split(",")]
    library = ClipLibrary(load_photos(folder))
    listed, hotlist = hot_list(library.photos, SEED)
    print(f"traffic: {machine()}, {platform.node()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average "
          f"{load_average()} at start; {len(library.photos)} photos, {len(listed)} listed, "
          f"{len(hotlist):,} hot-list entries, {args.phones} phones", flush=True)
    print(HEADER, flush=True)
    results = []
    for count in counts:
        result = run(count, args.seconds, library, listed, hotlist, args.phones, args.late_s, args.keep_log,
                     not args.aligned, args.processes)
        results.append(result)
        print(row(result), f"  (load {load_average()})", flush=True)
    print(json.dumps({"benchmark": "traffic", "machine": machine(), "at": datetime.now(UTC).isoformat(timespec="seconds"),
                      "runs": [asdict(r) for r in results]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
