"""`platewatch demo` (what `make demo` runs): the synthetic camera's plates are read by the real
worker, reach the real server, and the two sample hot-list plates raise alerts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port

PLATEWATCH = Path(sys.executable).with_name("platewatch")


def test_demo_reads_the_street_and_fires_alerts(tmp_path):
    done = subprocess.run(
        [str(PLATEWATCH), "demo", "--port", str(free_port()), "--duration", "40", "--data", str(tmp_path / "data")],
        cwd=tmp_path, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "ALERT  8XYZ442   on 'Sample stolen vehicles'" in out, out
    assert "ALERT  6TRJ244   on 'Sample AMBER alert'" in out, out
    for plate in ("7ABC123", "4GHJ907"):  # off-list vehicles are read but raise nothing
        assert f"read   {plate}" in out and f"ALERT  {plate}" not in out
