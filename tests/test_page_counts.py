"""The dashboard's and the transparency report's figures come from running counts (migration
m011) kept by triggers; they must equal a direct recount of the same database after reads,
alerts (live and retro), status changes and a purge, in a zone whose midnights fall on half
hours and move with daylight saving time. And the upgrade fills the counts from the rows already there."""

from __future__ import annotations

import asyncio
import bisect
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from server.clock import day_starts, now_ms
from server.figures import DAYS, dashboard_numbers
from server.retention import purge
from server.store.db import Database
from server.store.migrations import connect, migrate, migrations
from tests.conftest import backdate, make_settings

ZONE = "America/St_Johns"  # UTC-3:30, -2:30 in summer: half-hour midnights, and DST
BUCKETS = {"reads": ("SELECT bucket, reads FROM read_counts WHERE reads != 0 ORDER BY 1",
                     "SELECT captured_at - captured_at % 900000, count(*) FROM reads GROUP BY 1 ORDER BY 1"),
           "alerts": ("SELECT bucket, kind, status, alerts FROM alert_counts WHERE alerts != 0 ORDER BY 1, 2, 3",
                      "SELECT created_at - created_at % 900000, hotlist_kind, status, count(*) FROM alerts "
                      "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")}


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path / "data", time_zone=ZONE, retention_days=12)


def recount(path, now: int, zone) -> dict:
    """The figures counted straight from the rows, the way the pages did before m011."""
    bounds = day_starts(now, zone, DAYS)
    with sqlite3.connect(path) as conn:
        reads = [at for (at,) in conn.execute("SELECT captured_at FROM reads")]
        alerts = conn.execute("SELECT created_at, hotlist_kind, status FROM alerts").fetchall()
    per_day = [0] * DAYS
    hits: dict[str, list[int]] = {}
    outcomes = {"confirmed": 0, "not_match": 0, "invalid": 0, "open": 0}
    for at in reads:
        if bounds[0] <= at < bounds[-1]:
            per_day[bisect.bisect_right(bounds, at) - 1] += 1
    for at, kind, status in alerts:
        if bounds[0] <= at < bounds[-1]:
            hits.setdefault(kind, [0] * DAYS)[bisect.bisect_right(bounds, at) - 1] += 1
            outcomes["open" if status in ("new", "acknowledged") else status] += 1
    return {"reads": per_day, "hits": hits, "outcomes": outcomes}


def figures(path, now: int, zone) -> dict:
    async def read():
        async with Database(path) as db:
            numbers = await dashboard_numbers(db.reader, now, zone)
        return {"reads": numbers["reads"], "hits": numbers["hits"], "outcomes": numbers["outcomes"]}

    return asyncio.run(read())


def assert_counts_right(path, zone) -> None:
    now = now_ms()
    assert figures(path, now, zone) == recount(path, now, zone)
    with sqlite3.connect(path) as conn:
        for kept, counted in BUCKETS.values():
            assert conn.execute(kept).fetchall() == conn.execute(counted).fetchall()


def test_counts_follow_reads_alerts_status_changes_and_purge(dept, tmp_path):
    path, zone = dept.settings.db_path, dept.settings.zone
    assert dept.hotlist(tmp_path, "stolen", "plate\nST0LEN1\nST0LEN2\n", "--kind", "stolen_vehicle") == 0
    now = datetime.now(UTC)
    alert_ids = []
    # Every 7 h 13 min back over 20 days: all times of day, both sides of local midnights, and
    # reads past the 12-day retention for the purge to take.
    for i in range(67):
        plate = ("ST0LEN1", "ST0LEN2", "RETR0A1")[i % 3] if i % 4 == 0 else f"PL{i:04d}"
        response = dept.post_read(plate)  # captured now, then aged: ingest refuses times past retention
        assert response.status_code == 201, response.text
        alert_ids += response.json()["alerts"]
        backdate(dept.settings, response.json()["id"], now - timedelta(minutes=433 * i))
    assert dept.hotlist(tmp_path, "amber", "plate\nRETR0A1\n", "--kind", "amber") == 0  # retro alerts
    assert alert_ids and recount(path, now_ms(), zone)["hits"].keys() == {"stolen_vehicle", "amber"}
    assert_counts_right(path, zone)

    for alert_id, status in zip(alert_ids, ("acknowledged", "confirmed", "not_match", "invalid", "confirmed")):
        response = dept.http.patch(f"/api/v1/alerts/{alert_id}", json={"status": status, "verified_with": "NCIC"},
                                   headers=dept.user_headers)
        assert response.status_code == 200, response.text
    assert_counts_right(path, zone)

    async def purge_once():
        async with Database(path) as db:
            return await purge(db, dept.settings)

    assert asyncio.run(purge_once()).reads > 0
    assert_counts_right(path, zone)
    report = dept.http.get("/transparency.json").json()
    assert [day["reads"] for day in report["reads_per_day"]] == recount(path, now_ms(), zone)["reads"]


def test_upgrade_counts_the_rows_already_stored(tmp_path):
    path = tmp_path / "old.db"
    db = connect(path)
    migrations.apply(db, stop_before="m011_page_counts")
    db.execute("INSERT INTO cameras (id, name, token_hash, created_at) VALUES (1, 'c', 'h', 0)")
    start = now_ms() - 40 * 86_400_000
    for i in range(300):
        at = start + i * 11_519_000  # every 3.2 h over 40 days
        db.execute("INSERT INTO reads (id, uuid, camera_id, captured_at, received_at, plate, plate_norm, "
                   "plate_folded, confidence) VALUES (?, ?, 1, ?, ?, 'P', 'P', 'P', 0.9)", [i + 1, str(i), at, at])
        if i % 7 == 0:
            db.execute("INSERT INTO alerts (read_id, camera_id, hotlist_name, hotlist_kind, entry_plate, "
                       "entry_plate_norm, rule, compared, status, created_at, seen_at) "
                       "VALUES (?, 1, 'l', ?, 'P', 'P', 'exact', 'P', ?, ?, ?)",
                       [i + 1, ("amber", "custom")[i % 2], ("new", "confirmed", "invalid")[i % 3], at, at])
    db.conn.commit()
    db.close()
    migrate(path)
    assert_counts_right(path, make_settings(tmp_path / "data", time_zone=ZONE).zone)
