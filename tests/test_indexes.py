"""The queries that run per read or per search use indexes, not scans (10 million reads,
100,000 hot-list entries). SQLite's own query plan is the witness."""

from __future__ import annotations

import sqlite3

import pytest

from server.store import queries
from server.store.migrations import migrate

PLANS = {
    "plate history": ("SELECT * FROM reads WHERE plate_norm = ? AND captured_at BETWEEN ? AND ?", "reads_plate_time"),
    "time range": ("SELECT * FROM reads WHERE captured_at BETWEEN ? AND ?", "reads_time"),
    "camera recent": ("SELECT * FROM reads WHERE camera_id = ? ORDER BY captured_at DESC LIMIT 50", "reads_camera_time"),
    # the queries that run on every read or alert, exactly as the server runs them
    "retro lookup": (queries.READS_BY_FOLDED_SQL.format(marks="?,?"), "reads_folded_time"),
    "hot-list match": (queries.ACTIVE_ENTRIES_SQL.format(marks="?,?,?"), "entries_folded"),
    "cooldown": (queries.COOLDOWN_SQL, "alerts_cooldown"),
    "unnotified": (queries.UNNOTIFIED_SQL, "alerts_unnotified"),
    # replacing a hot list: its old rows in batches, and each deleted entry's alerts (ON DELETE SET NULL)
    "old list rows": (queries.VERSION_ROWS_SQL, "entries_list_version_plate"),
    "alerts of an entry": ("SELECT id FROM alerts WHERE entry_id = ?", "alerts_entry"),
    # retention's deleted alerts take their webhook deliveries and attempts with them (ON DELETE CASCADE)
    "webhook deliveries of an alert": ("SELECT id FROM webhook_deliveries WHERE alert_id = ?", "webhook_deliveries_alert"),
    "attempts of a delivery": ("SELECT id FROM webhook_attempts WHERE delivery_id = ?", "webhook_attempts_delivery"),
}


@pytest.mark.parametrize("name", sorted(PLANS))
def test_query_uses_index(tmp_path, name):
    path = tmp_path / "plan.db"
    migrate(path)
    sql, index = PLANS[name]
    with sqlite3.connect(path) as conn:
        params = [1] * sql.count("?")
        plan = " | ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    assert f"USING INDEX {index}" in plan or f"USING COVERING INDEX {index}" in plan, plan
    assert "SCAN reads" not in plan and "SCAN e" not in plan and "SCAN alerts" not in plan, plan
