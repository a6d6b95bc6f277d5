"""`platewatch demo`: the whole product on an embedded default. A synthetic street camera plays
through the real worker, reads reach the real server over HTTP, and a sample hot list makes
alerts fire within seconds. The data dir is the normal one, so the web app can be explored."""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
import threading
import time
from pathlib import Path

import uvicorn

from server import audit, duty
from server.app import SHUTDOWN_GRACE_S, create_app
from server.auth import CAMERA_TOKEN_PREFIX, hash_password, new_token
from server.clock import from_ms, now_ms
from server.hotlists import import_list, parse_csv
from server.settings import Settings
from server.store import queries, queries_demo
from server.store.db import Database

DEMO_USER, DEMO_PASSWORD = "demo", "platewatch-demo"
DEMO_CAMERA = "demo-main-st"
# The synthetic street: four vehicles; two of them are on the sample hot lists.
STREET_PLATES = ("7ABC123", "8XYZ442", "4GHJ907", "6TRJ244")
SAMPLE_LISTS = {
    ("Sample stolen vehicles", "stolen_vehicle"): (
        "plate,state,reason,expires\n8XYZ442,CA,Stolen vehicle (sample),\n"
        "5KDW810,CA,Stolen vehicle (sample),\n3MQS509,NV,Stolen plates (sample),2030-12-31\n"
    ),
    ("Sample AMBER alert", "amber"): "plate,state,reason\n6TRJ244,CA,AMBER alert: child abduction (sample)\n",
}


async def prepare(settings: Settings) -> str:
    """Demo user, camera (a fresh token each run) and sample lists; returns the camera token."""
    token, hashed = new_token(CAMERA_TOKEN_PREFIX)
    async with Database(settings.db_path) as db:
        async with db.transaction() as conn:
            user = await queries.user_by_name(conn, DEMO_USER)
            user_id = user["id"] if user else await queries.insert_user(
                conn, DEMO_USER, hash_password(DEMO_PASSWORD), "admin", now_ms())
            # On duty, as the web app's switch puts an officer: a phone it subscribes is paged at once.
            await duty.set_duty(conn, user_id, DEMO_USER, True, now=now_ms(), shift_hours=settings.shift_hours,
                                via="demo")
            await queries_demo.give_camera_token(conn, DEMO_CAMERA, "Main St (synthetic)", hashed, now_ms())
            await audit.record(conn, "demo", "demo.prepare")
        for (name, kind), csv in SAMPLE_LISTS.items():
            parsed = parse_csv(csv.encode(), "demo", settings.zone)
            await import_list(db, name, parsed, actor="demo", kind=kind, source="sample data",
                              settings=settings)
    return token


def street_video(settings: Settings) -> Path:
    from synth import write_video

    video = settings.data_dir / "demo" / "street.avi"
    if not video.exists():
        video.parent.mkdir(parents=True, exist_ok=True)
        write_video(video, STREET_PLATES, fps=10, seconds_per_vehicle=3.0, gap_seconds=1.5)
    return video


def start_server(settings: Settings) -> tuple[uvicorn.Server, threading.Thread]:
    config = uvicorn.Config(create_app(settings), host=settings.host, port=settings.port,
                            log_level="warning", access_log=False, timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
                            server_header=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="server")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit(f"error: the server did not start on port {settings.port}")
        time.sleep(0.05)
    return server, thread


def start_worker(settings: Settings, token: str, video: Path):
    from worker.__main__ import Worker
    from worker.recognize.loader import load_recognizer
    from worker.config import demo_config

    config = demo_config(settings.base_url, token, video, settings.data_dir / "demo" / "spool", name=DEMO_CAMERA)
    worker = Worker(config, load_recognizer())
    thread = threading.Thread(target=worker.run, daemon=True, name="worker")
    thread.start()
    return worker, thread


class Narrator:
    """Prints reads and alerts as the database records them, so a newcomer sees the flow."""

    def __init__(self, db_path: Path) -> None:
        self.conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        self.last_read, self.last_alert = queries_demo.last_ids(self.conn)

    def tell(self) -> int:
        reads = queries_demo.reads_after(self.conn, self.last_read)
        for read_id, plate, confidence, color, captured in reads:
            print(f"  read   {plate:<9} confidence {confidence:.2f}  colour {color or '?':<7} "
                  f"at {from_ms(captured):%H:%M:%S}", flush=True)
            self.last_read = read_id
        alerts = queries_demo.alerts_after(self.conn, self.last_alert)
        for alert_id, plate, hotlist, reason, rule in alerts:
            print(f"  ALERT  {plate:<9} on '{hotlist}' ({rule}): {reason}  → alert #{alert_id}", flush=True)
            self.last_alert = alert_id
        return len(alerts)


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM (a service manager) both stop the demo cleanly, also where it was started
    as a background job, which inherits SIGINT ignored and so gets no KeyboardInterrupt of its own.
    Only the first one counts: `make demo` passes a signal on to the demo, which often gets it
    twice, and a second one mid-shutdown would kill the worker before its spool is delivered."""
    def stop(_signum, _frame) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # the shutdown below is bounded by its joins
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, stop)


def run_demo(settings: Settings, duration: float | None = None) -> int:
    print(f"Platewatch demo — data in {settings.data_dir.resolve()}")
    # The narrator below tells the story; the parts' own logs would drown it.
    logging.basicConfig(level=logging.WARNING, force=True)
    token = asyncio.run(prepare(settings))
    video = street_video(settings)
    server, server_thread = start_server(settings)
    print(f"Server on {settings.base_url} (API docs at {settings.base_url}/schema); "
          f"sign in as '{DEMO_USER}' / '{DEMO_PASSWORD}'.")
    print(f"'{DEMO_USER}' is on duty for {settings.shift_hours:g} hours, so a phone that turns on phone alerts "
          "(Alerts page) is paged for each alert; 'Go off duty' there stops it.")
    print(f"Camera '{DEMO_CAMERA}' plays {video} through the worker; sample hot lists: "
          f"{', '.join(name for name, _ in SAMPLE_LISTS)}. Ctrl-C stops.", flush=True)
    worker, worker_thread = start_worker(settings, token, video)
    narrator, started = Narrator(settings.db_path), time.monotonic()
    _stop_on_signals()
    try:
        while duration is None or time.monotonic() - started < duration:
            narrator.tell()
            time.sleep(0.25)
    except KeyboardInterrupt:
        print("stopping")
    finally:
        narrator.tell()
        worker.stop.set()  # the worker drains its spool to the server before the server stops
        worker_thread.join(timeout=15)
        server.should_exit = True
        server_thread.join(timeout=15)
    return 0
