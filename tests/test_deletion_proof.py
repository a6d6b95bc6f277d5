"""Deletion you can prove, and what hits turned out to be: a real purge (reads aged past retention,
one of them held) is what the transparency page, its JSON and `platewatch report retention` show
for its day, from the purge's own audit line; false hits by list kind from outcomes set through
the real alert service (the API), on the transparency report and the dashboard."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from server.clock import shown
from server.deletions import Deletions, deletions
from server.retention import purge
from server.settings import CONFIG_NAME
from server.store.db import Database
from tests.conftest import make_settings, run_cli
from tests.test_transparency import Tables
from tests.test_web_admin import add_user, web_client
from tests.test_web_search import Officer

ZONE = "America/Chicago"
DEPARTMENT = "Springfield Police Department"


@pytest.fixture
def settings(tmp_path):
    """In the data dir's platewatch.toml, so the CLI's reports see the same department."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / CONFIG_NAME).write_text(
        f'time_zone = "{ZONE}"\nretention_days = 30\ndepartment_name = "{DEPARTMENT}"\n')
    return make_settings(tmp_path / "data")


def sql(dept, statement: str, *params) -> list[tuple]:
    with sqlite3.connect(dept.settings.db_path) as conn:
        return conn.execute(statement, params).fetchall()


def run_purge(settings, now: int):
    async def once():
        async with Database(settings.db_path) as db:
            return await purge(db, settings, now)

    return asyncio.run(once())


def test_retention_report_matches_what_the_purge_did(dept, capsys):
    now = datetime.now(UTC)
    old = [dept.post_aged_read(f"OLD{i}11", now - timedelta(days=31 + i)) for i in range(3)]
    dept.post_aged_read("KEEP11", now - timedelta(days=5))
    officer = Officer(dept.live.url)
    assert officer.post(f"/reads/{old[2]}/hold", {"case": "EVID-1", "note": ""}).status_code == 200
    officer.http.close()
    result = run_purge(dept.settings, int(now.timestamp() * 1000))  # the controlled clock: now
    assert (result.reads, result.held) == (2, 1)
    [(at,)] = sql(dept, "SELECT max(at) FROM audit_log WHERE action = 'retention.purge'")
    day = shown(at, dept.settings.zone, "date")

    report = httpx.get(f"{dept.live.url}/transparency.json").json()["deletions"]
    [row] = [d for d in report["days"] if d["day"] == day]
    assert (row["reads_deleted"], row["held_past_period"]) == (2, 1)  # the server's start-up purge had none
    assert row["oldest_unheld_age_days"] == pytest.approx(5, abs=0.01)  # KEEP11; the held read is not counted
    assert len(report["days"]) == 30 and report["days"][-1]["day"] == day and report["reads_deleted"] == 2

    page = Tables(httpx.get(f"{dept.live.url}/transparency").text).rows["deletions-table"]
    assert len(page) == 30 and page[-1][0] == day and page[-1][2:] == ["2", "1", "5.0"]

    # Rows counted now would disagree: the held read is still there, and new reads came since.
    dept.post_read("NEW111")
    capsys.readouterr()
    assert run_cli(dept.settings, "report", "retention", "--from", day, "--to", day) == 0
    text = capsys.readouterr().out
    assert f"Retention report: {DEPARTMENT}" in text and f"Period: {day} to {day} ({ZONE} days)" in text
    [line] = [line for line in text.splitlines() if line.startswith(day)]
    assert line.split()[1:] == ["2", "2", "0", "1", "5.0"]  # purges (start-up, ours), reads, images, held, age
    assert run_cli(dept.settings, "audit", "verify") == 0
    head = capsys.readouterr().out.split("head ")[-1].strip()
    assert f"Audit chain head at generation: {head}" in text  # a report writes nothing to the log


def test_old_purge_lines_and_days_without_purges(tmp_path):
    """A purge line written before it recorded the oldest read's age still gives it (from the read's
    time); a day without a purge says so."""
    settings = make_settings(tmp_path / "data", time_zone=ZONE)

    async def report():
        async with Database(settings.db_path) as db, db.transaction() as conn:
            from server import audit

            await audit.record(conn, "system", "retention.purge", reads=3, images=1, held=0,
                               oldest_remaining=int(datetime.now(UTC).timestamp() * 1000) - 2 * 86_400_000)
        async with Database(settings.db_path) as db:
            today = datetime.now(UTC).astimezone(settings.zone).date()
            return await deletions(db.reader, settings, today - timedelta(days=1), today)

    found: Deletions = asyncio.run(report())
    assert [d.purges for d in found.days] == [0, 1] and found.days_without_purge == 1
    assert found.days[0].oldest_unheld_age_days is None and found.days[1].reads_deleted == 3
    assert found.days[1].oldest_unheld_age_days == pytest.approx(2, abs=0.01)


def test_report_refuses_a_bad_period(settings, capsys):
    with pytest.raises(SystemExit) as exc:
        run_cli(settings, "report", "retention", "--from", "2026-13-01", "--to", "2026-12-01")
    assert exc.value.code == 2 and "'2026-13-01' is not a date" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        run_cli(settings, "report", "access-log", "--from", "0001-01-01", "--to", "2026-12-01")
    assert exc.value.code == 2 and "'0001-01-01' is out of range" in capsys.readouterr().err
    with pytest.raises(SystemExit, match=r"the period ends \(2026-11-01\) before it starts \(2026-12-01\)"):
        run_cli(settings, "report", "retention", "--from", "2026-12-01", "--to", "2026-11-01")


def test_false_hits_by_kind_from_officers_outcomes(dept, tmp_path):
    dept.hotlist(tmp_path, "stolen", "plate\n8ABC123\n5DEF456\n4GHI789\n", "--kind", "stolen_vehicle")
    dept.hotlist(tmp_path, "amber", "plate\n6TRJ244\n7KLM321\n", "--kind", "amber")
    alerts = {plate: dept.post_read(plate).json()["alerts"][0]
              for plate in ("8ABC123", "5DEF456", "4GHI789", "6TRJ244", "7KLM321")}
    outcomes = {"8ABC123": {"status": "confirmed", "verified_with": "NCIC"}, "5DEF456": {"status": "not_match"},
                "4GHI789": {"status": "invalid"}, "6TRJ244": {"status": "not_match"}}  # 7KLM321: never checked
    for plate, body in outcomes.items():
        resp = dept.http.patch(f"/api/v1/alerts/{alerts[plate]}", json=body, headers=dept.user_headers)
        assert resp.status_code == 200, resp.text

    rows = {row["kind"]: row for row in httpx.get(f"{dept.live.url}/transparency.json").json()["false_hits"]}
    assert list(rows) == ["stolen_vehicle", "amber", "all"]
    stolen, amber, total = rows["stolen_vehicle"], rows["amber"], rows["all"]
    assert (stolen["checked"], stolen["confirmed"], stolen["not_match"], stolen["invalid"]) == (3, 1, 1, 1)
    assert (stolen["false_hit_rate"], stolen["never_checked"]) == (pytest.approx(2 / 3, abs=1e-4), 0)
    assert (amber["checked"], amber["not_match"], amber["never_checked"], amber["false_hit_rate"]) == (1, 1, 1, 1.0)
    assert (total["hits"], total["checked"], total["never_checked"]) == (5, 4, 1)

    public = Tables(httpx.get(f"{dept.live.url}/transparency").text).rows["false-hits-table"]
    add_user(dept, "chief", "supervisor")
    chief = web_client(dept, "chief", "long enough pw")
    dashboard = Tables(chief.get("/dashboard").text).rows["false-hits-table"]
    chief.close()
    expected = [["stolen vehicle", "3", "3", "1", "1", "67%", "0"], ["amber", "2", "1", "1", "0", "100%", "1"],
                ["All kinds", "5", "4", "2", "1", "75%", "1"]]
    assert public == dashboard == expected
