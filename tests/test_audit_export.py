"""The audit log as a file for auditors (`GET /audit.csv`): the lines of the department's local
days asked for, oldest first, filtered as on the page, streamed, and recorded as `audit.exported`
before the file goes. A department in Chicago, on the real app over HTTP with a real SQLite, and
in real Chromium on a phone."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from contextlib import closing
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import expect

from server.clock import local_to_ms
from server.store.chain import GENESIS, entry_hash
from server.settings import CONFIG_NAME
from tests.browser import screenshot, sign_in
from tests.conftest import make_settings
from tests.test_web_admin import add_user, db_rows, web_client

CHICAGO = ZoneInfo("America/Chicago")
HEADER = ["id", "at", "at_utc", "actor", "action", "detail", "prev_hash", "hash"]
# 2024-11-01 to 2024-11-22 in Chicago: CDT (UTC-5) until 02:00 on 3 November, CST (UTC-6) after.
RANGE = {"from": "2024-11-01", "to": "2024-11-22"}


@pytest.fixture
def settings(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / CONFIG_NAME).write_text('time_zone = "America/Chicago"\n')
    return make_settings(data)


@pytest.fixture
def sam(dept):
    """A supervisor's signed-in session."""
    add_user(dept, "sam", "supervisor")
    with closing(web_client(dept, "sam", "long enough pw")) as client:
        yield client


def chicago(*fields) -> int:
    """Epoch ms of a wall-clock time in Chicago, as the app reads one (server.clock)."""
    return local_to_ms(datetime(*fields), CHICAGO)


def seed(dept, lines: list[tuple[int, str, str, str]]) -> list[int]:
    """Audit lines (at, actor, action, detail) as the app stores them; their ids."""
    with sqlite3.connect(dept.settings.db_path) as conn:
        return [conn.execute("INSERT INTO audit_log (at, actor, action, detail) VALUES (?, ?, ?, ?)", line).lastrowid
                for line in lines]


def rows_of(resp: httpx.Response) -> list[list[str]]:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(resp.text, newline="")))
    assert rows[0] == HEADER
    return rows[1:]


def exported(dept) -> list[dict]:
    """The `audit.exported` lines: actor and detail."""
    return [{"actor": actor, **json.loads(detail)} for actor, detail in
            db_rows(dept, "SELECT actor, detail FROM audit_log WHERE action = 'audit.exported' ORDER BY id")]


# Around both ends of RANGE, and the times a UTC reading of the dates would get wrong.
EDGES = [
    (chicago(2024, 10, 31, 23, 59, 59, 999_000), False,
     "2024-10-31T23:59:59.999-05:00", "2024-11-01T04:59:59.999+00:00"),
    (chicago(2024, 10, 31, 22), False, "2024-10-31T22:00:00.000-05:00", "2024-11-01T03:00:00.000+00:00"),
    (chicago(2024, 11, 1), True, "2024-11-01T00:00:00.000-05:00", "2024-11-01T05:00:00.000+00:00"),
    (chicago(2024, 11, 10, 12, 30, 1, 250_000), True, "2024-11-10T12:30:01.250-06:00", "2024-11-10T18:30:01.250+00:00"),
    (chicago(2024, 11, 22, 21), True, "2024-11-22T21:00:00.000-06:00", "2024-11-23T03:00:00.000+00:00"),
    (chicago(2024, 11, 22, 23, 59, 59, 999_000), True,
     "2024-11-22T23:59:59.999-06:00", "2024-11-23T05:59:59.999+00:00"),
    (chicago(2024, 11, 23), False, "2024-11-23T00:00:00.000-06:00", "2024-11-23T06:00:00.000+00:00"),
]


def test_export_holds_the_lines_of_the_local_days_asked_for_oldest_first(dept, sam):
    note = json.dumps({"note": 'towed, "blue" car\nsecond line', "alert": 7})
    ids = seed(dept, [(at, f"user{i}", "alert.confirmed", note) for i, (at, *_) in enumerate(EDGES)])
    resp = sam.get("/audit.csv", params=RANGE)
    rows = rows_of(resp)
    expected = [[str(line_id), local, utc, f"user{i}", "alert.confirmed", note, "", ""]  # by hand: no hashes
                for i, (line_id, (_, inside, local, utc)) in enumerate(zip(ids, EDGES)) if inside]
    assert rows == expected  # the detail, quotes and newline included, comes back as stored
    assert resp.headers["content-disposition"] == 'attachment; filename="platewatch-audit-2024-11-01-to-2024-11-22.csv"'
    assert resp.headers["cache-control"] == "no-store"
    # One local day: from and to the same date.
    assert [row[1] for row in rows_of(sam.get("/audit.csv", params={"from": "2024-11-22", "to": "2024-11-22"}))] == [
        "2024-11-22T21:00:00.000-06:00", "2024-11-22T23:59:59.999-06:00"]
    # Either end may be left out (an empty date input sends an empty value): no limit there.
    assert [row[1] for row in rows_of(sam.get("/audit.csv", params={"from": "", "to": "2024-10-31"}))] == [
        EDGES[0][2], EDGES[1][2]]
    after = sam.get("/audit.csv", params={"from": "2024-11-23"})  # the last edge, and today's sign-ins
    assert [row[1] for row in rows_of(after) if row[1] < "2026"] == [EDGES[-1][2]]
    through_id = exported(dept)[-1]["through_id"]
    assert [int(row[0]) for row in rows_of(after)] == [line_id for (line_id,) in db_rows(
        dept, "SELECT id FROM audit_log WHERE at >= ? AND id <= ? ORDER BY id", EDGES[-1][0], through_id)]
    today = datetime.now(CHICAGO).date()
    assert after.headers["content-disposition"] == f'attachment; filename="platewatch-audit-2024-11-23-to-{today}.csv"'


def test_the_export_is_logged_with_its_filters_and_count_before_the_file_is_sent(dept, sam):
    seed(dept, [(at, "alice", "search", "{}") for at, *_ in EDGES])
    with sam.stream("GET", "/audit.csv", params={**RANGE, "action": "search", "actor": "alice"}) as resp:
        assert resp.status_code == 200
        [line] = exported(dept)  # on record as soon as the answer starts, before its body is read
        resp.read()
        rows = rows_of(resp)
    assert len(rows) == 4
    assert line == {"actor": "sam", "filters": {**RANGE, "action": "search", "actor": "alice"},
                    "time_zone": "America/Chicago", "lines": 4, "through_id": line["through_id"]}
    # It does not count itself: the next export (of everything) holds it, and says one line more.
    everything = rows_of(sam.get("/audit.csv"))
    assert [row[4] for row in everything].count("audit.exported") == 1
    assert int(everything[-1][0]) == max(int(row[0]) for row in everything)
    second = exported(dept)[1]
    assert second["filters"] == {} and second["lines"] == len(everything)
    assert int(everything[-1][0]) == second["through_id"]


def test_action_prefix_and_actor_filter_as_on_the_page(dept, sam):
    at = chicago(2024, 11, 5, 9)
    seed(dept, [(at, "alice", "search", "{}"), (at + 1, "alice", "search.more", "{}"), (at + 2, "bob", "search", "{}"),
                (at + 3, "alice", "hotlist.import", "{}"), (at + 4, "alice", "searchXreason", "{}"),
                (at + 5, "alice", "search_reason.add", "{}")])

    def actions(**params) -> list[tuple[str, str]]:
        return [(row[3], row[4]) for row in rows_of(sam.get("/audit.csv", params={**RANGE, **params}))]
    assert actions(action="search") == [("alice", "search"), ("alice", "search.more"), ("bob", "search"),
                                        ("alice", "searchXreason"), ("alice", "search_reason.add")]
    assert actions(action="search_") == [("alice", "search_reason.add")]  # _ is a character, not a wildcard
    assert actions(actor="bob") == [("bob", "search")]
    assert actions(action=" hotlist. ", actor="alice") == [("alice", "hotlist.import")]
    assert actions(actor="nobody") == []
    assert [line["lines"] for line in exported(dept)] == [5, 1, 1, 1, 0]


def test_officers_and_strangers_get_no_file(dept):
    seed(dept, [(chicago(2024, 11, 5), "alice", "search", "{}")])
    with closing(web_client(dept, "alice", "correct horse")) as officer:
        refused = officer.get("/audit.csv", params=RANGE)
        assert refused.status_code == 403 and "content-disposition" not in refused.headers
    stranger = httpx.get(f"{dept.live.url}/audit.csv", follow_redirects=False)
    assert stranger.status_code in (302, 303) and stranger.headers["location"].startswith("/login")
    assert exported(dept) == []


@pytest.mark.parametrize(("params", "message"), [
    ({"from": "2024-13-01"}, "from: “2024-13-01” is not a date (YYYY-MM-DD)."),
    ({"to": "2024-02-30"}, "to: “2024-02-30” is not a date (YYYY-MM-DD)."),
    ({"from": "20241101"}, "from: “20241101” is not a date (YYYY-MM-DD)."),  # fromisoformat alone takes it
    ({"to": "2024-11-01T00:00"}, "to: “2024-11-01T00:00” is not a date (YYYY-MM-DD)."),
    ({"from": "yesterday", "to": "nonsense"}, "from: “yesterday” is not a date (YYYY-MM-DD)."),
    ({"from": "2024-11-22", "to": "2024-11-01"}, "to: 2024-11-01 is before from (2024-11-22)."),
    ({"to": "9999-12-31"}, "to: “9999-12-31” is out of range."),
    ({"since": "2024-11-01"}, "since: not a parameter of the export (from, to, action, actor)."),
    ({"action": "x" * 65}, "action: at most 64 characters."),
    ([("from", "2024-11-01"), ("from", "2024-11-02")], "from: given more than once."),
])
def test_a_bad_parameter_is_a_400_naming_it_and_nothing_is_exported(dept, sam, params, message):
    seed(dept, [(chicago(2024, 11, 5), "alice", "search", "{}")])
    resp = sam.get("/audit.csv", params=params)
    assert resp.status_code == 400
    assert resp.headers["content-type"].startswith("text/html") and "content-disposition" not in resp.headers
    assert message in resp.text
    assert exported(dept) == []


def test_a_sign_in_name_typed_as_a_formula_is_not_run_by_a_spreadsheet(dept, sam):
    with httpx.Client(base_url=dept.live.url) as client:
        client.get("/login")
        client.post("/login", data={"username": '=HYPERLINK("http://x.test","click")', "password": "x",
                                    "_csrf_token": client.cookies["csrftoken"]})
    [row] = rows_of(sam.get("/audit.csv", params={"action": "auth.failed"}))
    assert row[3] == '\'=HYPERLINK("http://x.test","click")'
    assert row[5].startswith("{")  # details are JSON objects: written as stored


def test_a_large_log_exports_completely_in_a_stream(dept, sam):
    start = chicago(2024, 1, 1)
    seed(dept, [(start + n * 60_000, f"user{n % 7}", "search", json.dumps({"n": n})) for n in range(5000)])
    with sam.stream("GET", "/audit.csv", params={"from": "2024-01-01", "to": "2024-12-31"}) as resp:
        assert "content-length" not in resp.headers and resp.headers["transfer-encoding"] == "chunked"
        assert [line["lines"] for line in exported(dept)] == [5000]  # recorded before the body is read
        resp.read()
        rows = rows_of(resp)
    assert [json.loads(row[5])["n"] for row in rows] == list(range(5000))
    assert [int(row[0]) for row in rows] == sorted({int(row[0]) for row in rows})


def test_the_audit_page_offers_the_export_on_a_phone(dept, page):
    add_user(dept, "sam", "supervisor")
    seed(dept, [(at, "alice", "search", "{}") for at, *_ in EDGES]
         + [(chicago(2024, 11, 9), "alice", "auth.login", "{}")])  # in range, but not what the page filters
    sign_in(page, dept.live.url, "sam", "long enough pw")
    page.goto(f"{dept.live.url}/audit?action=search")
    button = page.get_by_role("button", name="Download CSV")
    expect(button).to_be_visible()
    for control in (button, page.get_by_label("First day"), page.get_by_label("Last day")):
        box = control.bounding_box()
        assert box["height"] >= 44 and box["width"] >= 44, box
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "audit-export")
    page.get_by_label("First day").fill(RANGE["from"])
    page.get_by_label("Last day").fill(RANGE["to"])
    with page.expect_download() as download:
        button.click()
    assert download.value.suggested_filename == "platewatch-audit-2024-11-01-to-2024-11-22.csv"
    with open(download.value.path(), newline="") as fh:
        [header, *rows] = list(csv.reader(fh))
    assert header == HEADER
    assert [row[1] for row in rows] == [local for _, inside, local, _ in EDGES if inside]  # the filter came along
    assert exported(dept)[-1]["filters"] == {**RANGE, "action": "search"}


def test_an_outside_auditor_checks_the_chain_from_the_file_alone(dept, sam):
    """Each line's hash is SHA-256 over the line before's hash and the line itself: recomputed from
    the CSV's columns (at_utc back to epoch ms), every link holds, from the log's first entry."""
    assert sam.get("/audit", params={"action": "auth"}).status_code == 200
    rows = rows_of(sam.get("/audit.csv"))
    assert len(rows) >= 3 and rows[0][6] == GENESIS
    previous = GENESIS
    for row in rows:
        at = round(datetime.fromisoformat(row[2]).timestamp() * 1000)
        assert row[6] == previous and row[7] == entry_hash(row[6], at, row[3], row[4], row[5]), row
        previous = row[7]
