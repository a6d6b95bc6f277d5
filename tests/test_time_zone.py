"""The department's time zone (settings.time_zone): pages show and read local time, the
dashboard counts local days (23 or 25 hours long across DST changes), a bare hot-list expiry
date ends at the end of that local day; the database keeps UTC epoch milliseconds throughout.
A department in Chicago, on the real app over HTTP with a real SQLite."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest

from server.clock import day_starts, end_of_day, midnight
from server.figures import dashboard_numbers
from server.retention import purge
from server.settings import CONFIG_NAME, Settings, load_settings
from server.store.db import Database
from tests.conftest import make_settings, run, run_cli
from tests.test_web_admin import add_user, db_rows, web_client
from tests.test_web_search import CARD_PLATES, Officer, audit

CHICAGO, NEW_YORK = ZoneInfo("America/Chicago"), ZoneInfo("America/New_York")
HOUR_MS = 3_600_000


@pytest.fixture
def settings(tmp_path):
    """Chicago, in the data dir's platewatch.toml as a department sets it (the CLI reads it too);
    reads kept ten years, so the fixed 2026 instants below are never purged."""
    data = tmp_path / "data"
    data.mkdir()
    (data / CONFIG_NAME).write_text('time_zone = "America/Chicago"\nretention_days = 3650\n')
    settings = make_settings(data)
    assert settings.time_zone == "America/Chicago"
    return settings


def utc_ms(*fields) -> int:
    return int(datetime(*fields, tzinfo=UTC).timestamp() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


# --- the setting ---------------------------------------------------------------------------------

def test_settings_refuse_an_unknown_time_zone_by_name(tmp_path):
    assert load_settings(tmp_path, env={}).time_zone == "UTC"
    assert load_settings(tmp_path, env={"PLATEWATCH_TIME_ZONE": "America/Chicago"}).zone == CHICAGO
    for source in ({"env": {"PLATEWATCH_TIME_ZONE": "Mars/Olympus"}}, {"env": {}, "time_zone": "Mars/Olympus"}):
        with pytest.raises(msgspec.ValidationError, match="unknown time zone 'Mars/Olympus'"):
            load_settings(tmp_path, **source)
    for bad in ("America", "", "../../etc/passwd", "CST6CDT/x"):  # a folder, nothing, a path, a made-up name
        with pytest.raises(msgspec.ValidationError, match="unknown time zone"):
            load_settings(tmp_path, env={}, time_zone=bad)
    (tmp_path / CONFIG_NAME).write_text('time_zone = "Europe/Atlantis"\n')
    with pytest.raises(SystemExit, match="error: settings: time_zone: unknown time zone 'Europe/Atlantis'"):
        run_cli(Settings(data_dir=tmp_path), "camera", "add", "x")


def test_local_days_and_end_of_day_across_dst_changes():
    # New York leaves daylight saving time at 02:00 on 2026-11-01: that day is 25 hours long.
    bounds = day_starts(utc_ms(2026, 11, 3, 17), NEW_YORK, 4)
    assert [iso(ms) for ms in bounds] == ["2026-10-31T04:00:00+00:00", "2026-11-01T04:00:00+00:00",
                                          "2026-11-02T05:00:00+00:00", "2026-11-03T05:00:00+00:00",
                                          "2026-11-04T05:00:00+00:00"]
    assert midnight(date(2026, 3, 9), NEW_YORK) - midnight(date(2026, 3, 8), NEW_YORK) == 23 * HOUR_MS
    assert end_of_day(date(2026, 11, 1), NEW_YORK) == utc_ms(2026, 11, 2, 5) - 1


# --- what pages show -----------------------------------------------------------------------------

def test_pages_show_read_and_alert_times_in_local_time(dept, tmp_path):
    dept.hotlist(tmp_path, "stolen", "plate,reason\n8ABC123,Stolen (test)\n5DEF456,Stolen (test)\n")
    winter = dept.post_read("8ABC123", captured_at="2026-11-20T14:15:03Z").json()["alerts"][0]
    summer = dept.post_read("5DEF456", captured_at="2026-07-04T17:00:00Z").json()["alerts"][0]
    with closing(web_client(dept, "alice", "correct horse")) as client:
        page = client.get(f"/alerts/{winter}").text
        assert '<time datetime="2026-11-20T08:15:03-06:00">2026-11-20 08:15:03 CST</time>' in page
        assert "UTC" not in page
        page = client.get(f"/alerts/{summer}").text
        assert '<time datetime="2026-07-04T12:00:00-05:00">2026-07-04 12:00:00 CDT</time>' in page
        feed = client.get("/").text
        assert "2026-11-20 08:15:03 CST" in feed and "2026-07-04 12:00:00 CDT" in feed
        reads = client.get("/reads").text
        assert "2026-11-20 08:15:03 CST" in reads and re.search(r"updated \d\d:\d\d:\d\d C[SD]T<", reads)
    add_user(dept, "sam", "supervisor")
    with closing(web_client(dept, "sam", "long enough pw")) as client:
        login_at = db_rows(dept, "SELECT at FROM audit_log WHERE actor = 'sam' AND action = 'auth.login'")[0][0]
        shown = datetime.fromtimestamp(login_at / 1000, tz=CHICAGO).strftime("%Y-%m-%d %H:%M:%S %Z")
        assert shown in client.get("/audit").text


def test_search_reads_the_form_as_local_time(dept):
    # 11:59, 12:30 and 13:01 in Chicago (CDT, UTC-5) on 4 July 2026.
    for moment in ("2026-07-04T16:59:00Z", "2026-07-04T17:30:00Z", "2026-07-04T18:01:00Z"):
        assert dept.post_read("7ABC123", captured_at=moment).status_code == 201
    officer = Officer(dept.live.url)
    with closing(officer.http):
        found = officer.search(plate="7ABC123", since="2026-07-04T12:00", until="2026-07-04T13:00").text
        assert CARD_PLATES.findall(found) == ["7ABC123"]
        assert '<time datetime="2026-07-04T12:30:00-05:00">2026-07-04 12:30:00 CDT</time>' in found
        assert "2026-07-04 12:00 CDT – 2026-07-04 13:00 CDT" in found
        assert "From (America/Chicago)" in found
        criteria = audit(dept, "search")[-1]["criteria"]
        assert (criteria["from"], criteria["to"]) == ("2026-07-04T17:00:00+00:00", "2026-07-04T18:00:00+00:00")
        # The same wall-clock range in UTC holds none of them.
        assert CARD_PLATES.findall(officer.search(plate="7ABC123", since="2026-07-04T17:31",
                                                  until="2026-07-04T18:00").text) == []
        form = officer.http.get("/search").text
        since = datetime.fromisoformat(re.search(r'name="since" type="datetime-local" value="([^"]+)"', form)[1])
        expected = datetime.now(CHICAGO).replace(tzinfo=None) - timedelta(days=7)
        assert abs(since - expected) < timedelta(minutes=2)
        early = officer.search(plate="7ABC123", since="1990-01-01T00:00").text
        assert re.search(r"searched from \d{4}-\d\d-\d\d \d\d:\d\d C[SD]T\.", early)



def test_audit_page_shows_logged_times_in_local_time(dept):
    """Audit lines keep UTC as written; the page shows a search's range and a purge's cutoff locally."""
    officer = Officer(dept.live.url)
    with closing(officer.http):
        officer.search(plate="7ABC123", since="2026-07-04T12:00", until="2026-07-04T13:00")
    purge_at = utc_ms(2026, 11, 20, 14, 15, 3)
    run(_purge_at(dept, purge_at))
    add_user(dept, "sam", "supervisor")
    with closing(web_client(dept, "sam", "long enough pw")) as client:
        search = client.get("/audit", params={"action": "search"}).text
        purge = client.get("/audit", params={"action": "retention.purge"}).text
    assert "2026-07-04 12:00:00 CDT" in search and "2026-07-04 13:00:00 CDT" in search
    assert "+00:00" not in search
    cutoff = purge_at - int(dept.settings.retention_days * 86_400_000)
    assert datetime.fromtimestamp(cutoff / 1000, tz=CHICAGO).strftime("%Y-%m-%d %H:%M:%S %Z") in purge
    assert str(cutoff) not in purge


async def _purge_at(dept, now: int) -> None:
    async with Database(dept.settings.db_path) as db:
        await purge(db, dept.settings, now)


# --- dashboard days ------------------------------------------------------------------------------

def test_dashboard_counts_local_days(dept):
    """Chicago's 23:30 two days ago is already the next day in UTC: it counts on its local day."""
    two_days_ago = datetime.now(CHICAGO).date() - timedelta(days=2)
    late = datetime(two_days_ago.year, two_days_ago.month, two_days_ago.day, 23, 30, tzinfo=CHICAGO)
    assert dept.post_read("2BBB222", captured_at=late.isoformat()).status_code == 201
    add_user(dept, "chief", "supervisor")
    with closing(web_client(dept, "chief", "long enough pw")) as client:
        page = client.get("/dashboard").text
    table = page.split('id="reads-table"')[1].split("</table>")[0]
    counts = dict(re.findall(r'<tr><td>([\d-]+)</td><td class="num">(\d+)</td></tr>', table))
    assert counts[two_days_ago.isoformat()] == "1"
    assert counts[(two_days_ago + timedelta(days=1)).isoformat()] == "0"
    assert "(America/Chicago days)" in page


def test_dashboard_days_across_the_end_of_daylight_saving_time(dept, tmp_path):
    """New York, 2026-11-01 (25 hours): reads and hits land on their local day, whatever the zone
    the server shows pages in (the zone is an argument of the numbers)."""
    dept.hotlist(tmp_path, "stolen", "plate,reason\n8ABC123,Stolen (test)\n", "--kind", "stolen_vehicle")
    moments = {  # local time in New York → the day it belongs to
        "2026-11-01T03:59:00Z": "2026-10-31",  # 23:59 EDT
        "2026-11-01T04:30:00Z": "2026-11-01",  # 00:30 EDT
        "2026-11-02T04:30:00Z": "2026-11-01",  # 23:30 EST, the 25th hour's day
        "2026-11-02T05:30:00Z": "2026-11-02",  # 00:30 EST
    }
    alert_ids = []
    for moment in moments:
        alert_ids += dept.post_read("8ABC123", captured_at=moment).json()["alerts"]
    with sqlite3.connect(dept.settings.db_path) as conn:  # hits dated by when they were raised
        for alert_id, moment in zip(sorted(alert_ids), moments):
            conn.execute("UPDATE alerts SET created_at = ? WHERE id = ?",
                         (int(datetime.fromisoformat(moment).timestamp() * 1000), alert_id))

    async def numbers() -> dict:
        async with Database(dept.settings.db_path) as db:
            return await dashboard_numbers(db.reader, utc_ms(2026, 11, 5, 17), NEW_YORK)

    result = run(numbers())
    reads = dict(zip(result["days"], result["reads"]))
    hits = dict(zip(result["days"], result["hits"].get("stolen_vehicle", [])))
    assert result["days"][-1] == "2026-11-05" and len(result["days"]) == 30
    expected = {"2026-10-30": 0, "2026-10-31": 1, "2026-11-01": 2, "2026-11-02": 1, "2026-11-03": 0}
    assert {day: reads[day] for day in expected} == expected
    assert len(alert_ids) == 4 and {day: hits[day] for day in expected} == expected


# --- hot-list expiry -----------------------------------------------------------------------------

def test_bare_expiry_date_ends_at_the_end_of_that_local_day(dept, tmp_path):
    csv = ("plate,reason,expires\n8ABC123,winter,2030-01-01\n5DEF456,summer,2030-07-01\n"
           "7GHI789,offset,2030-01-01T12:00:00+02:00\n")
    assert dept.hotlist(tmp_path, "stolen", csv) == 0
    expiry = dict(db_rows(dept, "SELECT plate_norm, expires_at FROM hotlist_entries"))
    assert expiry["8ABC123"] == utc_ms(2030, 1, 2, 6) - 1  # midnight CST is 06:00 UTC
    assert expiry["5DEF456"] == utc_ms(2030, 7, 2, 5) - 1  # midnight CDT is 05:00 UTC
    assert expiry["7GHI789"] == utc_ms(2030, 1, 1, 10)  # an explicit offset is kept
    [(hotlist_id,)] = db_rows(dept, "SELECT id FROM hotlists")
    add_user(dept, "sam", "supervisor")
    with closing(web_client(dept, "sam", "long enough pw")) as client:
        added = client.post(f"/hotlists/{hotlist_id}/entries",
                            data={"plate": "6TRJ244", "reason": "by hand", "expires": "2030-03-08"})
        assert added.status_code == 200, added.text
        page = client.get(f"/hotlists/{hotlist_id}").text
    [(by_hand,)] = db_rows(dept, "SELECT expires_at FROM hotlist_entries WHERE plate_norm = '6TRJ244'")
    assert by_hand == utc_ms(2030, 3, 9, 6) - 1
    entries = dict(re.findall(r'class="plate small-plate">(\w+)</span>.*?data-label="Expires">([\d-]+)', page, re.S))
    assert entries["8ABC123"] == "2030-01-01" and entries["6TRJ244"] == "2030-03-08"
