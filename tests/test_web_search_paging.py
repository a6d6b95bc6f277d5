"""Paging through a search over real HTTP (and once in Chromium): "Show older reads" continues the
same search strictly after the last read shown, so every match comes once, newest first; each
page is audited with the search's justification as part of that search (not counted as another);
a page asked for without the search's own justification and criteria is refused; and reads
older than the retention window never appear."""

from __future__ import annotations

import html
import json
import random
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase

import pytest
from playwright.sync_api import expect

from contract.plates import fold
from tests.browser import ARTIFACTS, sign_in
from tests.conftest import run_cli
from tests.test_web_search import Officer, reason_label

READ_IDS = re.compile(r'class="read-card" data-plate="[A-Z0-9]+" data-read="([0-9]+)"')
MORE_FORM = re.compile(r'<form method="post" action="/search/more".*?</form>', re.S)
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
HOUR_MS = 3_600_000
NOT_CONTINUED = "not older reads of a search you ran"


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def add_reads(dept, reads: list[tuple[str, int]]) -> None:
    """Reads (plate, captured_at ms) straight into the server's database, in shuffled order so that
    ids do not follow time; several share a millisecond."""
    reads = list(reads)
    random.Random(11).shuffle(reads)
    with sqlite3.connect(dept.settings.db_path) as conn:
        conn.executemany(
            "INSERT INTO reads (uuid, camera_id, captured_at, received_at, plate, plate_norm, plate_folded, "
            "confidence, color) VALUES (?, 1, ?, ?, ?, ?, ?, 0.9, 'red')",
            [(f"paging-{i}", at, at, plate, plate, fold(plate)) for i, (plate, at) in enumerate(reads)])


def expected(dept, pattern: str, since: int = 0) -> list[int]:
    """The matching read ids, newest first (ties by id), worked out here, not by the server's SQL."""
    with sqlite3.connect(dept.settings.db_path) as conn:
        rows = conn.execute("SELECT id, captured_at, plate_norm FROM reads").fetchall()
    return [i for at, i in sorted(((at, i) for i, at, plate in rows if at >= since and fnmatchcase(plate, pattern)),
                                  reverse=True)]


def next_page_form(text: str) -> dict[str, str] | None:
    """The fields "Show older reads" sends, as the browser would."""
    form = MORE_FORM.search(text)
    return {html.unescape(k): html.unescape(v) for k, v in HIDDEN.findall(form.group())} if form else None


def page_through(officer: Officer, first) -> tuple[list[int], list]:
    responses, ids = [first], [int(i) for i in READ_IDS.findall(first.text)]
    while (form := next_page_form(responses[-1].text)) is not None:
        assert len(responses) < 10
        resp = officer.post("/search/more", form, headers={"HX-Request": "true"})
        assert resp.status_code == 200, resp.text
        responses.append(resp)
        ids += [int(i) for i in READ_IDS.findall(resp.text)]
    return ids, responses


def audit_lines(dept, action: str) -> list[dict]:
    with sqlite3.connect(dept.settings.db_path) as conn:
        rows = conn.execute("SELECT id, actor, detail FROM audit_log WHERE action = ? ORDER BY id", (action,))
        rows = rows.fetchall()
    return [{"line": line, "actor": actor, **json.loads(detail)} for line, actor, detail in rows]


@pytest.fixture
def many(dept):
    """450 reads of 7ABC123 and 150 of 5XBC120 (600 match *BC12*) and 100 that match neither,
    over the last two days, three to a millisecond."""
    now, plates = now_ms() - 60_000, ["7ABC123"] * 9 + ["5XBC120"] * 3 + ["9ZZZ999"] * 2
    add_reads(dept, [(plates[i % 14], now - (i // 3) * 197_000) for i in range(700)])
    session = Officer(dept.live.url)
    yield session
    session.http.close()


def test_paging_shows_every_match_once_newest_first(dept, many):
    for pattern, total in (("7ABC123", 450), ("*BC12*", 600)):
        first = many.search(plate=pattern)
        assert first.status_code == 200, first.text
        assert "200 reads, newest 200 shown" in first.text and "More than 200 reads matched" in first.text
        assert ">Show older reads</button>" in first.text
        ids, responses = page_through(many, first)
        assert len(ids) == total and ids == expected(dept, pattern)  # each once, newest first, none skipped
        assert len(responses) == 3  # 600 is three full pages: no empty fourth
        last = responses[-1].text
        assert f"No more reads match: all {total} have been shown." in last and "Show older reads" not in last
        assert f'<h2 id="results-title" hx-swap-oob="true">{total} reads</h2>' in last
        assert 'start="401"' in last and "More than 400 reads matched" in responses[1].text


def test_a_page_on_its_own_without_javascript(dept, many):
    form = next_page_form(many.search(plate="7ABC123").text)
    second = many.post("/search/more", form)  # no HX-Request: a whole page
    assert second.status_code == 200 and second.text.lstrip().lower().startswith("<!doctype html")
    assert "Reads 201–400 of this search" in second.text and len(READ_IDS.findall(second.text)) == 200
    assert [int(i) for i in READ_IDS.findall(second.text)] == expected(dept, "7ABC123")[200:400]
    assert next_page_form(second.text)["after"] != form["after"]  # and on to the next


def test_each_page_is_audited_with_the_search_and_not_counted_as_one(dept, many):
    for pattern in ("7ABC123", "*BC12*"):
        page_through(many, many.search(plate=pattern, case="24-00999"))
    searches, pages = audit_lines(dept, "search"), audit_lines(dept, "search.more")
    assert [s["results"] for s in searches] == [200, 200] and all(s["truncated"] for s in searches)
    assert [p["search"] for p in pages] == [searches[0]["line"]] * 2 + [searches[1]["line"]] * 2
    assert [(p["results"], p["truncated"]) for p in pages] == [(200, True), (50, False), (200, True), (200, False)]
    for page in pages:
        search = next(s for s in searches if s["line"] == page["search"])
        assert (page["actor"], page["reason_id"], page["case"]) == ("alice", 1, "24-00999")
        assert page["reason"] == reason_label(dept) and page["criteria"] == search["criteria"]
    run_cli(dept.settings, "user", "add", "sarge", "--role", "supervisor", "--password-stdin", stdin="sarge pass 12\n")
    supervisor = Officer(dept.live.url, "sarge", "sarge pass 12")
    assert '<span class="tile-n" id="total-searches">2</span>' in supervisor.http.get("/dashboard").text
    assert supervisor.http.get("/audit", params={"action": "search"}).text.count("<code>search.more</code>") == 4
    supervisor.http.close()


def test_a_page_without_the_search_s_own_justification_is_refused(dept, many):
    first = many.search(plate="7ABC123")
    form = next_page_form(first.text)
    with sqlite3.connect(dept.settings.db_path) as conn:
        [(login_line,)] = conn.execute("SELECT max(id) FROM audit_log WHERE action = 'auth.login'").fetchall()
    earlier = (datetime.fromisoformat(form["since"]) - timedelta(minutes=1)).isoformat()
    later_until = (datetime.fromisoformat(form["until"]) + timedelta(minutes=1)).isoformat()
    forgeries = [  # (changed fields, what the refusal says)
        (dict(reason=""), "Choose the reason"), (dict(case=""), "Give the case number"),
        (dict(reason="999"), "Choose the reason"), (dict(case="x" * 41), "at most 40"),
        (dict(reason="99999999999999999999"), "Choose the reason"), (dict(colour="mauve"), "Colour: choose one"),
        (dict(reason="2"), NOT_CONTINUED), (dict(case="24-99999"), NOT_CONTINUED),
        (dict(plate="9ZZZ999"), NOT_CONTINUED), (dict(fuzzy="on"), NOT_CONTINUED),
        (dict(since=earlier), NOT_CONTINUED), (dict(until=later_until), NOT_CONTINUED),
        (dict(search=str(login_line)), NOT_CONTINUED), (dict(search="999999"), NOT_CONTINUED),
        (dict(search=""), NOT_CONTINUED), (dict(after="later"), NOT_CONTINUED), (dict(shown="0"), NOT_CONTINUED),
        (dict(after=f"{now_ms() + 86_400_000}:1"), NOT_CONTINUED),
    ]
    for changed, message in forgeries:
        resp = many.post("/search/more", {**form, **changed}, headers={"HX-Request": "true"})
        assert resp.status_code == 422 and "Nothing was searched" in resp.text and message in resp.text, changed
        assert 'class="read-card"' not in resp.text, changed
    run_cli(dept.settings, "user", "add", "bob", "--role", "officer", "--password-stdin", stdin="bob's pass 12\n")
    other = Officer(dept.live.url, "bob", "bob's pass 12")
    taken = other.post("/search/more", form)  # alice's search, bob's session
    assert taken.status_code == 422 and NOT_CONTINUED in taken.text and 'class="read-card"' not in taken.text
    other.http.close()
    assert audit_lines(dept, "search.more") == []  # nothing searched, nothing logged
    genuine = many.post("/search/more", form, headers={"HX-Request": "true"})  # the form as it was: accepted
    assert genuine.status_code == 200 and len(READ_IDS.findall(genuine.text)) == 200
    assert [line["results"] for line in audit_lines(dept, "search.more")] == [200]


def test_reads_older_than_the_retention_window_never_appear(dept):
    now = now_ms() - 60_000
    add_reads(dept, [("7ABC123", now - i * 2 * HOUR_MS) for i in range(250)]  # the last 21 days
              + [("7ABC123", now - 31 * 24 * HOUR_MS - i * HOUR_MS) for i in range(40)])  # 31 to 33 days ago
    officer = Officer(dept.live.url)
    since = (datetime.now(UTC) - timedelta(days=45)).strftime("%Y-%m-%dT%H:%M")
    first = officer.search(plate="7ABC123", since=since)
    assert "Reads are kept 30 days: searched from" in first.text
    recent = expected(dept, "7ABC123", since=now_ms() - 30 * 24 * HOUR_MS)
    ids, responses = page_through(officer, first)
    assert len(recent) == 250 and ids == recent and len(responses) == 2
    form = next_page_form(first.text)  # a page asked for from further back than the search could go
    back = (datetime.now(UTC) - timedelta(days=45)).isoformat(timespec="milliseconds")
    forged = officer.post("/search/more", {**form, "since": back}, headers={"HX-Request": "true"})
    assert forged.status_code == 200 and [int(i) for i in READ_IDS.findall(forged.text)] == recent[200:]
    with sqlite3.connect(dept.settings.db_path) as conn:  # the old reads are there: the search left them out
        assert conn.execute("SELECT count(*) FROM reads WHERE captured_at < ?",
                            (now_ms() - 30 * 24 * HOUR_MS,)).fetchone()[0] == 40
    officer.http.close()


def test_show_older_reads_in_chromium(dept, many, page):
    sign_in(page, dept.live.url)
    page.goto(f"{dept.live.url}/search")
    page.get_by_label("Reason").select_option(label=reason_label(dept, 2))
    page.get_by_label("Case number").fill("24-00117")
    page.get_by_label("Plate").fill("7ABC123")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_role("heading", name="200 reads, newest 200 shown")).to_be_visible()
    button = page.get_by_role("button", name="Show older reads")
    button.scroll_into_view_if_needed()
    assert button.bounding_box()["height"] >= 48  # a thumb's target
    ARTIFACTS.mkdir(exist_ok=True)  # the screen around the button (a whole page of 200 reads is too tall to keep)
    page.screenshot(path=str(ARTIFACTS / "search-older-reads-390x844.png"))
    button.click()
    expect(page.get_by_role("heading", name="400 reads, newest 400 shown")).to_be_visible()
    expect(page.locator(".read-card")).to_have_count(400)  # appended below: the first 200 stay
    expect(page.get_by_role("list", name="Reads 201 to 400")).to_be_focused()
    page.get_by_role("button", name="Show older reads").click()
    expect(page.get_by_role("heading", name="450 reads", exact=True)).to_be_visible()
    expect(page.locator(".read-card")).to_have_count(450)
    expect(page.locator("#search-more [role=status]")).to_have_text("No more reads match: all 450 have been shown.")
    ids = page.locator(".read-card").evaluate_all("(cards) => cards.map((card) => Number(card.dataset.read))")
    assert ids == expected(dept, "7ABC123")
    assert [line["case"] for line in audit_lines(dept, "search.more")] == ["24-00117"] * 2
