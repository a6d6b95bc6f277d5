"""The public transparency report: anyone may read it, signed in or not; its figures are right for
seeded data (local days, a 30-day window, outcomes, reasons, roles); the page and the JSON agree;
nothing about a person, vehicle or investigation appears; the retention figures follow a purge;
a department can switch it off; it renders in Chromium with no errors and needs no JavaScript."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import httpx
import pytest

from contract.plates import IMAGE_FIELDS
from contract.wire import ReadIn
from server.figures import KIND_NAMES, OUTCOMES
from server.retention import purge
from server.store.db import Database
from server.store.migrations import migrate
from server.store.queries_admin import LAST_ACTION_SQL
from server.web.transparency import COLLECTED, UNLISTED
from tests.browser import TABLET, screenshot
from tests.conftest import LiveServer, make_settings, run_cli
from tests.test_web_admin import add_user
from tests.test_web_search import Officer

ZONE = "America/Chicago"
RETENTION_DAYS = 45
PASSWORD = "long enough pw"
HOTLISTS = {  # name, kind, CSV
    "NCIC stolen": ("stolen_vehicle", "plate,reason\n8ABC123,Stolen (test)\n5DEF456,Stolen (test)\n4XPD404,Old\n"),
    "County stolen": ("stolen_vehicle", "plate,reason\n2BRT554,Stolen (test)\n"),
    "AMBER 2211": ("amber", "plate,reason\n6TRJ244,AMBER alert (test)\n"),
    "Operation Nightjar": ("wanted_person", "plate,reason\n7ZQX991,Nightjar informant tip\n"),
}
# Seeded, and never to be seen in the report: plates, usernames, case numbers (a search's, an
# evidence hold's), list and camera names, notes and audit detail (camera tokens are added by the seed).
PRIVATE = ["7ZQX991", "8ABC123", "6TRJ244", "2BBB222", "officer_zeb", "chief_qyx", "admin_kee", "gone_officer",
           "alice", "CASE-4417", "EVID-8812", "Nightjar", "NCIC stolen", "AMBER 2211", "cam-elm-7731", "main-st",
           "blue sedan", "verified with", "hunch"]


@pytest.fixture
def settings(tmp_path):
    """Chicago's local days and a retention longer than the report's 30 days, so a read can be
    stored yet outside the window."""
    return make_settings(tmp_path / "data", time_zone=ZONE, retention_days=RETENTION_DAYS)


def local_day(**ago) -> str:
    return (datetime.now(UTC) - timedelta(**ago)).astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%d")


def sql(dept, statement: str, *params) -> list[tuple]:
    with sqlite3.connect(dept.settings.db_path) as conn:
        return conn.execute(statement, params).fetchall()


def seed_reads_and_hits(dept, tmp_path) -> dict[str, int]:
    for name, (kind, csv_text) in HOTLISTS.items():
        assert dept.hotlist(tmp_path, name, csv_text, "--kind", kind) == 0
    sql(dept, "UPDATE hotlist_entries SET expires_at = 1 WHERE plate = '4XPD404'")  # expired: not counted
    hits = ("8ABC123", "6TRJ244", "7ZQX991", "5DEF456")
    alerts = {plate: dept.post_read(plate).json()["alerts"][0] for plate in hits}
    ages = {"1AAA111": {}, "2BBB222": {"days": 3}, "3CCC333": {"days": 3}, "9NNN999": {"days": 29},
            "8OLD835": {"days": 35}, "8OLD850": {"days": 50}}  # the last two: outside the 30 days
    for plate, ago in ages.items():  # stored while recent, aged since: ingest refuses one past retention
        dept.post_aged_read(plate, datetime.now(UTC) - timedelta(**ago))
    sql(dept, "UPDATE alerts SET created_at = created_at - ? WHERE id = ?", 2 * 86_400_000, alerts["5DEF456"])
    return alerts


def seed_people_and_cameras(dept, capsys) -> list[str]:
    """Camera tokens of two more cameras, one disabled; three more people, one disabled."""
    tokens = []
    for name in ("cam-elm-7731", "cam-old-2"):
        run_cli(dept.settings, "camera", "add", name)
        tokens.append(capsys.readouterr().out.strip().splitlines()[-1])
    for name, role in (("officer_zeb", "officer"), ("chief_qyx", "supervisor"), ("admin_kee", "admin"),
                       ("gone_officer", "officer")):
        add_user(dept, name, role)
    sql(dept, "UPDATE cameras SET disabled = 1 WHERE name = 'cam-old-2'")
    sql(dept, "UPDATE users SET disabled = 1 WHERE username = 'gone_officer'")
    return tokens


def seed_officer_work(dept, alerts: dict[str, int]) -> None:
    """officer_zeb closes three hits with notes, runs two searches and a plate history under a case,
    and keeps a read as evidence under another."""
    zeb = Officer(dept.live.url, "officer_zeb", PASSWORD)
    for plate, fields in (("8ABC123", {"outcome": "confirmed", "verified_with": "NCIC"}),
                          ("6TRJ244", {"outcome": "not_match"}), ("7ZQX991", {"outcome": "invalid"})):
        resp = zeb.post(f"/alerts/{alerts[plate]}/outcome", {**fields, "note": "blue sedan, driver known to us"})
        assert resp.status_code == 303, resp.text
    for plate in ("7ZQX991", "8ABC*"):
        assert zeb.search(plate=plate, reason="1", case="CASE-4417").status_code == 200
    assert zeb.post("/plates/7ZQX991", {"reason": "7", "case": "CASE-4417"}).status_code == 200
    [(held,)] = sql(dept, "SELECT id FROM reads WHERE plate = '2BBB222'")
    assert zeb.post(f"/reads/{held}/hold", {"case": "EVID-8812", "note": "Nightjar stash"}).status_code == 200
    zeb.http.close()
    now = int(datetime.now(UTC).timestamp() * 1000)
    detail = {"reason": "Zeb's hunch about the Nightjar crew", "case": "CASE-4417", "plate": "7ZQX991"}
    sql(dept, "INSERT INTO audit_log (at, actor, action, detail) VALUES (?, 'officer_zeb', 'search', ?)",
        now, json.dumps(detail))  # a reason not on the list (say, from an older version): never shown
    sql(dept, "INSERT INTO audit_log (at, actor, action, detail) VALUES (?, 'officer_zeb', 'search', ?)",
        now - 40 * 86_400_000, json.dumps({**detail, "reason": "Stolen vehicle investigation"}))  # too old


@pytest.fixture
def seeded(dept, tmp_path, capsys) -> list[str]:
    alerts = seed_reads_and_hits(dept, tmp_path)
    tokens = seed_people_and_cameras(dept, capsys)
    seed_officer_work(dept, alerts)
    return [*PRIVATE, dept.camera_token, *tokens]


def run_purge(dept) -> None:
    async def once():
        async with Database(dept.settings.db_path) as db:
            await purge(db, dept.settings)

    asyncio.run(once())


class Tables(HTMLParser):
    """The body rows of every table with an id, as lists of cell texts."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {}
        self._table, self._row, self._in_cell = None, [], False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = dict(attrs).get("id")
            self.rows[self._table] = []
        elif tag == "td":
            self._row.append("")
            self._in_cell = True

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_cell = False
        elif tag == "tr" and self._row:  # header rows have no td
            self.rows[self._table].append([cell.strip() for cell in self._row])
            self._row = []

    def handle_data(self, data):
        if self._in_cell:
            self._row[-1] += data


def by_id(html: str, element_id: str) -> str:
    return re.search(rf'id="{element_id}">([^<]*)<', html).group(1)


def test_anonymous_report_has_the_right_figures(dept, seeded):
    report = httpx.get(f"{dept.live.url}/transparency.json").json()
    assert (report["time_zone"], report["days"], report["last_day"]) == (ZONE, 30, local_day())
    assert report["cameras_in_service"] == 2  # main-st and cam-elm-7731; cam-old-2 is disabled
    per_day = {row["day"]: row["reads"] for row in report["reads_per_day"]}
    assert len(per_day) == 30 and report["first_day"] == local_day(days=29)
    expected = {local_day(): 5, local_day(days=3): 2, local_day(days=29): 1}  # not the 35 and 50 days old
    assert {day: n for day, n in per_day.items() if n} == expected and report["reads_total"] == 8
    assert report["hotlists_by_kind"] == [{"kind": "stolen_vehicle", "lists": 2, "active_entries": 3},
                                          {"kind": "wanted_person", "lists": 1, "active_entries": 1},
                                          {"kind": "amber", "lists": 1, "active_entries": 1}]
    assert report["hits_by_kind"] == [{"kind": "stolen_vehicle", "hits": 2}, {"kind": "wanted_person", "hits": 1},
                                      {"kind": "amber", "hits": 1}]
    assert report["hits_total"] == 4
    assert report["hit_outcomes"] == {"confirmed": 1, "not_match": 1, "invalid": 1, "open": 1}
    assert report["searches_by_reason"] == [{"reason": "Stolen vehicle investigation", "searches": 2},
                                            {"reason": "Wanted person / warrant", "searches": 1},
                                            {"reason": UNLISTED, "searches": 1}]
    assert report["searches_total"] == 4  # searches and histories, not the 40-day-old line
    assert report["people_with_access"] == [{"role": "officer", "people": 2}, {"role": "supervisor", "people": 1},
                                            {"role": "admin", "people": 1}]
    policy = report["policy"]
    assert "Wanted person / warrant" in policy["search_reasons"] and policy["two_factor_sign_in_required_for"] == []
    assert any("No facial recognition" in line for line in policy["not_collected"])
    assert report["retention"]["days"] == RETENTION_DAYS and report["retention"]["purge_every_hours"] == 1
    assert report["retention"]["held_past_retention"] == 0  # the held read is 3 days old
    assert 0 <= report["retention"]["oldest_hold_age_days"] < 0.01
    assert any("evidence hold naming a case" in line for line in policy["evidence_holds"])


def test_page_and_json_agree_and_reveal_nothing_private(dept, seeded):
    with httpx.Client(base_url=dept.live.url) as anonymous:
        page, data = anonymous.get("/transparency"), anonymous.get("/transparency.json")
    for resp in (page, data):
        assert resp.status_code == 200 and resp.headers["cache-control"] == "max-age=300, public"
        assert "set-cookie" not in resp.headers  # nothing per visitor in a response caches may share
        leaked = [value for value in seeded if value.lower() in resp.text.lower()]
        assert leaked == [], leaked
    assert data.headers["access-control-allow-origin"] == "*" and "access-control-allow-origin" not in page.headers
    html, report = page.text, data.json()
    tables = Tables(html).rows
    assert by_id(html, "cameras-in-service") == str(report["cameras_in_service"])
    for tile, key in (("total-reads", "reads_total"), ("total-hits", "hits_total"),
                      ("total-searches", "searches_total")):
        assert by_id(html, tile) == str(report[key])
    assert tables["reads-table"] == [[row["day"], str(row["reads"])] for row in report["reads_per_day"]]
    assert tables["hits-table"] == [[KIND_NAMES[row["kind"]], str(row["hits"])] for row in report["hits_by_kind"]]
    assert tables["outcomes-table"] == [[name, str(report["hit_outcomes"][key])] for key, name in OUTCOMES.items()]
    assert tables["searches-table"] == [[row["reason"], str(row["searches"])] for row in report["searches_by_reason"]]
    assert tables["hotlists-table"] == [[KIND_NAMES[row["kind"]], str(row["lists"]), str(row["active_entries"])]
                                        for row in report["hotlists_by_kind"]]
    assert tables["people-table"] == [[row["role"], str(row["people"])] for row in report["people_with_access"]]
    assert "<script" not in html.replace('<script src="/static/theme.js"></script>', "")  # no app code
    assert "Sign out" not in html and "/logout" not in html


def purge_time(html: str) -> datetime:
    return datetime.fromisoformat(re.search(r'id="last-purge"><time datetime="([^"]+)"', html).group(1))


def test_retention_figures_follow_a_purge(dept, seeded):
    before = httpx.get(f"{dept.live.url}/transparency.json").json()["retention"]
    assert abs(before["oldest_read_age_days"] - 50) < 0.01  # the server's start-up purge came before it
    run_purge(dept)
    [(purged_at,)] = sql(dept, "SELECT max(at) FROM audit_log WHERE action = 'retention.purge'")
    page, data = (httpx.get(f"{dept.live.url}/transparency{suffix}") for suffix in ("", ".json"))
    after = data.json()["retention"]
    assert abs(after["oldest_read_age_days"] - 35) < 0.01  # the 50-day-old read went; the 35-day one stays
    json_time = datetime.fromisoformat(after["last_purge_at"])
    assert json_time.utcoffset() == datetime.now(ZoneInfo(ZONE)).utcoffset()  # shown in local time
    assert round(json_time.timestamp() * 1000) == purged_at == round(purge_time(page.text).timestamp() * 1000)
    assert by_id(page.text, "oldest-read") == f"{after['oldest_read_age_days']:.1f} days old, within the limit"


def test_signed_in_viewers_get_the_same_public_page(dept, seeded):
    chief = Officer(dept.live.url, "chief_qyx", PASSWORD)
    signed_in = chief.http.get("/transparency")
    assert signed_in.status_code == 200 and signed_in.headers["cache-control"] == "max-age=300, public"
    assert "chief_qyx" not in signed_in.text and "Sign out" not in signed_in.text
    anonymous = httpx.get(f"{dept.live.url}/transparency").text
    drop_times = lambda html: re.sub(r"<time[^>]*>[^<]*</time>", "", html)  # noqa: E731 - generated_at
    assert drop_times(signed_in.text) == drop_times(anonymous)
    assert 'href="/transparency"' in chief.http.get("/dashboard").text
    assert 'href="/transparency"' in httpx.get(f"{dept.live.url}/login").text
    chief.http.close()


def test_switched_off_answers_404_to_everyone(tmp_path):
    server = LiveServer(make_settings(tmp_path / "data", transparency_public=False)).start()
    try:
        run_cli(server.settings, "user", "add", "chief", "--role", "admin", "--password-stdin", stdin=f"{PASSWORD}\n")
        chief = Officer(server.url, "chief", PASSWORD)
        for client in (httpx.Client(base_url=server.url), chief.http):
            page, data = client.get("/transparency"), client.get("/transparency.json")
            assert (page.status_code, data.status_code) == (404, 404)
            assert data.json()["status_code"] == 404 and "Not found" in page.text
            assert data.json() == client.get("/nothing-here.json").json()  # as if it did not exist
            client.close()
        assert 'href="/transparency"' not in httpx.get(f"{server.url}/login").text
    finally:
        server.stop()


def test_every_field_of_a_read_is_described():
    """A read gaining a field must be described to the public before this passes."""
    described = {field for _, fields in COLLECTED for field in fields}
    assert set(ReadIn.__struct_fields__) | set(IMAGE_FIELDS) | {"camera"} <= described


def test_last_purge_is_found_by_index(tmp_path):
    migrate(tmp_path / "plan.db")
    with sqlite3.connect(tmp_path / "plan.db") as conn:
        plan = " | ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {LAST_ACTION_SQL}", ["x"]))
    assert "audit_action_time" in plan and "SCAN audit_log" not in plan, plan


def test_page_renders_in_chromium_without_javascript(dept, seeded, page):
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    report = httpx.get(f"{dept.live.url}/transparency.json").json()
    page.goto(f"{dept.live.url}/transparency")
    assert page.locator("#total-reads").inner_text() == str(report["reads_total"])
    for chart in ("reads-chart", "hits-chart", "outcomes-chart", "searches-chart"):
        assert page.locator(f"svg#{chart}").is_visible()
    assert page.locator("html").get_attribute("data-theme") == "dark"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
    screenshot(page, "transparency")
    content = page.locator("main section, main .tiles")  # all but the "figures as of" minute
    with_script = content.all_inner_texts()
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setScriptExecutionDisabled", {"value": True})
    page.reload()
    assert content.all_inner_texts() == with_script  # nothing on it comes from JavaScript
    assert errors == []
    page.set_viewport_size(TABLET)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "transparency")
