"""`platewatch demo` (what `make demo` runs): the synthetic camera's plates are read by the real
worker, reach the real server, and the two sample hot-list plates raise alerts."""

from __future__ import annotations

import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import free_port

PLATEWATCH = Path(sys.executable).with_name("platewatch")
ALERTS = ("ALERT  8XYZ442   on 'Sample stolen vehicles'", "ALERT  6TRJ244   on 'Sample AMBER alert'")
OFF_LIST = ("7ABC123", "4GHJ907")  # read, but on no list
ON_DUTY = "'demo' is on duty for 12 hours"  # web push pages only officers on duty
DEADLINE_S = 150  # the street video loops every 18 s; a loaded machine drops frames, so allow passes


def test_demo_reads_the_street_and_fires_alerts(tmp_path):
    """Runs the demo until the story has been told (or the deadline), then stops it as `make demo`
    stopped by Ctrl-C or a service manager does: a signal and, at once, the one make passes on.
    The video plays in real time, so a busy CI machine may need more than one pass of it."""
    demo = subprocess.Popen(
        [str(PLATEWATCH), "demo", "--port", str(free_port()), "--data", str(tmp_path / "data")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in demo.stdout], daemon=True).start()
    wanted = {*ALERTS, *(f"read   {plate}" for plate in OFF_LIST), ON_DUTY}
    out, deadline = [], time.monotonic() + DEADLINE_S
    try:
        while wanted and demo.poll() is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            out.append(line)
            wanted -= {w for w in wanted if w in line}
    finally:
        demo.send_signal(signal.SIGINT)
        time.sleep(0.05)
        demo.send_signal(signal.SIGTERM)
        stderr = demo.communicate(timeout=60)[1]
    text = "".join(out)
    assert demo.returncode == 0 and "Traceback" not in stderr, stderr[-2000:]
    assert not wanted, f"missing after {DEADLINE_S} s: {sorted(wanted)}\n{text}"
    assert not any(f"ALERT  {plate}" in text for plate in OFF_LIST), text
    # On duty as the web app's switch puts an officer: until a shift from now, and audited.
    with sqlite3.connect(tmp_path / "data" / "platewatch.db") as conn:
        [(until,)] = conn.execute("SELECT on_duty_until FROM users WHERE username = 'demo'").fetchall()
        [(detail,)] = conn.execute("SELECT detail FROM audit_log WHERE action = 'duty.on' AND actor = 'demo'")
    assert until > time.time() * 1000 + 11 * 3600_000 and f'"until":{until}' in detail
