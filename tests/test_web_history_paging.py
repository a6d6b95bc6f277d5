"""Paging through a plate's history over real HTTP (and once in Chromium): "Show older sightings"
continues the same history strictly after the last sighting shown, so every sighting (the plate
and its look-alikes) comes once, newest first; each page is audited with the history's
justification as part of that history (not counted as another search); a page asked for without
the history's own justification, plate and officer is refused; and reads older than the
retention window never appear."""

from __future__ import annotations

import html
import re
import sqlite3
from datetime import datetime

import pytest
from playwright.sync_api import expect

from contract.plates import fold
from tests.browser import ARTIFACTS, sign_in
from tests.conftest import run_cli
from tests.test_web_search import Officer, reason_label
from tests.test_web_search_paging import HIDDEN, HOUR_MS, READ_IDS, add_reads, audit_lines, now_ms

DAY_MS = 24 * HOUR_MS
MORE_FORM = re.compile(r'<form method="post" action="/plates/[A-Z0-9]+/more".*?</form>', re.S)
NOT_CONTINUED = "not older sightings of a plate history you ran"
JUSTIFIED = {"reason": "1", "case": "24-00117"}


def next_page_form(text: str) -> dict[str, str] | None:
    """The fields "Show older sightings" sends, as the browser would."""
    form = MORE_FORM.search(text)
    return {html.unescape(k): html.unescape(v) for k, v in HIDDEN.findall(form.group())} if form else None


def expected(dept, plate: str) -> list[int]:
    """The plate's sightings within the retention window (its reads and its look-alikes'), newest
    first (ties by id), worked out here, not by the server's SQL."""
    since = now_ms() - int(dept.settings.retention_days * DAY_MS)
    with sqlite3.connect(dept.settings.db_path) as conn:
        rows = conn.execute("SELECT id, captured_at, plate_norm FROM reads").fetchall()
    kept = ((at, i) for i, at, norm in rows if at >= since and fold(norm) == fold(plate))
    return [i for _, i in sorted(kept, reverse=True)]


def page_through(officer: Officer, first, plate: str = "7ABC123") -> tuple[list[int], list]:
    responses, ids = [first], [int(i) for i in READ_IDS.findall(first.text)]
    while (form := next_page_form(responses[-1].text)) is not None:
        assert len(responses) < 10
        resp = officer.post(f"/plates/{plate}/more", form, headers={"HX-Request": "true"})
        assert resp.status_code == 200, resp.text
        responses.append(resp)
        ids += [int(i) for i in READ_IDS.findall(resp.text)]
    return ids, responses


@pytest.fixture
def sightings(dept):
    """1,200 reads of 7ABC123 over the last week, three to a millisecond; 100 of its look-alike
    7A8C123 over the last four weeks; 200 of other plates; and 40 of 7ABC123 from 31 to 33 days
    ago, past the 30-day retention window (not yet deleted)."""
    now = now_ms() - 60_000
    add_reads(dept, [("7ABC123", now - (i // 3) * 1_400_000) for i in range(1200)]
              + [("7A8C123", now - i * 7 * HOUR_MS) for i in range(100)]
              + [(("9ZZZ999", "7ABC128")[i % 2], now - i * HOUR_MS) for i in range(200)]
              + [("7ABC123", now - 31 * DAY_MS - i * HOUR_MS) for i in range(40)])
    session = Officer(dept.live.url)
    yield session
    session.http.close()


def old_read_ids(dept) -> set[int]:
    with sqlite3.connect(dept.settings.db_path) as conn:
        rows = conn.execute("SELECT id FROM reads WHERE captured_at < ?", (now_ms() - 30 * DAY_MS,)).fetchall()
    return {i for (i,) in rows}


def test_paging_shows_every_sighting_once_newest_first(dept, sightings):
    first = sightings.post("/plates/7ABC123", JUSTIFIED)
    assert first.status_code == 200, first.text
    assert '<h2 id="history-title">500 sightings, newest 500 shown</h2>' in first.text
    assert "More than 500 sightings" in first.text and ">Show older sightings</button>" in first.text
    assert "Per camera, of the 500 newest sightings only (older ones are not counted)" in first.text
    assert "main-st: 500" in first.text
    ids, responses = page_through(sightings, first)
    everything = expected(dept, "7ABC123")
    assert len(everything) == 1300 and ids == everything  # each once, newest first, none skipped
    assert not set(ids) & old_read_ids(dept) and len(old_read_ids(dept)) == 40  # kept, never shown
    assert [len(READ_IDS.findall(r.text)) for r in responses] == [500, 500, 300]
    assert sum(r.text.count("badge match-lookalike") for r in responses) == 100
    assert 'start="501"' in responses[1].text and 'start="1001"' in responses[2].text
    assert "More than 1000 sightings" in responses[1].text and "history-places" not in responses[1].text
    last = responses[-1].text
    assert "No more sightings: all 1300 have been shown." in last and "Show older sightings" not in last
    assert '<h2 id="history-title" hx-swap-oob="true">1300 sightings</h2>' in last


def test_a_page_on_its_own_without_javascript(dept, sightings):
    form = next_page_form(sightings.post("/plates/7ABC123", JUSTIFIED).text)
    second = sightings.post("/plates/7ABC123/more", form)  # no HX-Request: a whole page
    assert second.status_code == 200 and second.text.lstrip().lower().startswith("<!doctype html")
    assert "Sightings 501–1000 of this history" in second.text and "history-places" not in second.text
    assert [int(i) for i in READ_IDS.findall(second.text)] == expected(dept, "7ABC123")[500:1000]
    assert next_page_form(second.text)["after"] != form["after"]  # and on to the next
    refused = sightings.post("/plates/7ABC123/more", {**form, "case": ""})  # the form again, to start over
    assert refused.status_code == 422 and refused.text.lstrip().lower().startswith("<!doctype html")
    assert "Give the case number" in refused.text and ">Show history</button>" in refused.text


def test_each_page_is_audited_with_the_history_and_not_counted_as_a_search(dept, sightings):
    for plate in ("7ABC123", "7A8C123"):
        page_through(sightings, sightings.post(f"/plates/{plate}", {**JUSTIFIED, "case": "24-00999"}), plate)
    histories, pages = audit_lines(dept, "plate.history"), audit_lines(dept, "plate.history.more")
    assert [(h["plate"], h["results"], h["truncated"]) for h in histories] == [("7ABC123", 500, True),
                                                                                 ("7A8C123", 500, True)]
    assert [p["history"] for p in pages] == [histories[0]["line"]] * 2 + [histories[1]["line"]] * 2
    assert [(p["plate"], p["results"], p["truncated"]) for p in pages] == [
        ("7ABC123", 500, True), ("7ABC123", 300, False), ("7A8C123", 500, True), ("7A8C123", 300, False)]
    label = reason_label(dept)
    for page in pages:
        assert (page["actor"], page["reason"], page["reason_id"], page["case"]) == ("alice", label, 1, "24-00999")
        assert set(page["after"]) == {"at", "read"}
    run_cli(dept.settings, "user", "add", "sarge", "--role", "supervisor", "--password-stdin", stdin="sarge pass 12\n")
    supervisor = Officer(dept.live.url, "sarge", "sarge pass 12")
    assert '<span class="tile-n" id="total-searches">2</span>' in supervisor.http.get("/dashboard").text
    audit_page = supervisor.http.get("/audit", params={"action": "plate.history"}).text
    assert audit_page.count("<code>plate.history.more</code>") == 4
    supervisor.http.close()


def test_a_page_without_the_history_s_own_justification_is_refused(dept, sightings):
    form = next_page_form(sightings.post("/plates/7ABC123", JUSTIFIED).text)
    assert sightings.search(plate="7ABC123").status_code == 200  # a search line, same reason and case
    with sqlite3.connect(dept.settings.db_path) as conn:
        [(login_line,)] = conn.execute("SELECT max(id) FROM audit_log WHERE action = 'auth.login'").fetchall()
        [(search_line,)] = conn.execute("SELECT max(id) FROM audit_log WHERE action = 'search'").fetchall()
    forgeries = [  # (plate in the path, changed fields, what the refusal says)
        ("7ABC123", dict(reason=""), "Choose the reason"), ("7ABC123", dict(case=""), "Give the case number"),
        ("7ABC123", dict(reason="999"), "Choose the reason"), ("7ABC123", dict(case="x" * 41), "at most 40"),
        ("7ABC123", dict(reason="2"), NOT_CONTINUED), ("7ABC123", dict(case="24-99999"), NOT_CONTINUED),
        ("9ZZZ999", {}, NOT_CONTINUED), ("7A8C123", {}, NOT_CONTINUED),  # another plate, even a look-alike
        ("7ABC123", dict(history=str(login_line)), NOT_CONTINUED),
        ("7ABC123", dict(history=str(search_line)), NOT_CONTINUED),
        ("7ABC123", dict(history="999999"), NOT_CONTINUED), ("7ABC123", dict(history=""), NOT_CONTINUED),
        ("7ABC123", dict(after="later"), NOT_CONTINUED), ("7ABC123", dict(shown="0"), NOT_CONTINUED),
    ]
    for plate, changed, message in forgeries:
        resp = sightings.post(f"/plates/{plate}/more", {**form, **changed}, headers={"HX-Request": "true"})
        assert resp.status_code == 422 and "Nothing was searched" in resp.text and message in resp.text, changed
        assert 'class="read-card"' not in resp.text, changed
    run_cli(dept.settings, "user", "add", "bob", "--role", "officer", "--password-stdin", stdin="bob's pass 12\n")
    other = Officer(dept.live.url, "bob", "bob's pass 12")
    taken = other.post("/plates/7ABC123/more", form)  # alice's history, bob's session
    assert taken.status_code == 422 and NOT_CONTINUED in taken.text and 'class="read-card"' not in taken.text
    other.http.close()
    assert audit_lines(dept, "plate.history.more") == []  # nothing read, nothing logged
    genuine = sightings.post("/plates/7ABC123/more", form, headers={"HX-Request": "true"})  # as it was: accepted
    assert genuine.status_code == 200 and len(READ_IDS.findall(genuine.text)) == 500
    assert [line["results"] for line in audit_lines(dept, "plate.history.more")] == [500]


def covered_ms(history: dict) -> int:
    """The newest time a history's audit line says it covers, in epoch ms."""
    return round(datetime.fromisoformat(history["to"]).timestamp() * 1000)


def test_a_cursor_later_than_the_history_covered_is_refused(dept, sightings):
    form = next_page_form(sightings.post("/plates/7ABC123", JUSTIFIED).text)
    [history] = audit_lines(dept, "plate.history")
    covered = covered_ms(history)
    assert now_ms() - 60_000 <= covered <= now_ms()  # when it was opened: no sighting is later
    for at in (covered + 1, now_ms() + DAY_MS, 10**15 - 1):  # just past it, tomorrow, far ahead
        resp = sightings.post("/plates/7ABC123/more", {**form, "after": f"{at}:1"}, headers={"HX-Request": "true"})
        assert resp.status_code == 422 and NOT_CONTINUED in resp.text and 'class="read-card"' not in resp.text, at
    assert audit_lines(dept, "plate.history.more") == []  # nothing read, nothing logged
    bound = sightings.post("/plates/7ABC123/more", {**form, "after": f"{covered}:999999999"},
                           headers={"HX-Request": "true"})  # no later than it covered: accepted
    assert bound.status_code == 200
    assert [int(i) for i in READ_IDS.findall(bound.text)] == expected(dept, "7ABC123")[:500]
    assert [line["results"] for line in audit_lines(dept, "plate.history.more")] == [500]


def test_sightings_dated_ahead_by_a_fast_camera_clock_page_on(dept):
    """A whole page dated after the history was opened (a camera clock running fast): the history
    covers up to its newest sighting, so its own cursor is not taken for a forgery."""
    now = now_ms()
    add_reads(dept, [("5FST555", now + HOUR_MS + i * 1000) for i in range(510)]
              + [("5FST555", now - HOUR_MS - i * 1000) for i in range(10)])
    officer = Officer(dept.live.url)
    first = officer.post("/plates/5FST555", JUSTIFIED)
    [history] = audit_lines(dept, "plate.history")
    assert covered_ms(history) == now + HOUR_MS + 509_000  # its newest sighting, not when it was opened
    ids, responses = page_through(officer, first, "5FST555")
    assert ids == expected(dept, "5FST555") and len(ids) == 520 and len(responses) == 2
    officer.http.close()


def test_a_reason_retired_since_the_first_page_is_refused(dept, sightings):
    form = next_page_form(sightings.post("/plates/7ABC123", JUSTIFIED).text)
    run_cli(dept.settings, "user", "add", "chief", "--role", "admin", "--password-stdin", stdin="chief's pass 1\n")
    admin = Officer(dept.live.url, "chief", "chief's pass 1")
    assert admin.post("/search/reasons/1/retire", {}).status_code == 303
    admin.http.close()
    resp = sightings.post("/plates/7ABC123/more", form, headers={"HX-Request": "true"})
    assert resp.status_code == 422 and "Choose the reason" in resp.text and 'class="read-card"' not in resp.text
    assert audit_lines(dept, "plate.history.more") == []


def test_reads_older_than_the_retention_window_never_appear(dept, sightings):
    form = next_page_form(sightings.post("/plates/7ABC123", JUSTIFIED).text)
    with sqlite3.connect(dept.settings.db_path) as conn:  # a cursor forged to start among the old reads
        [(newest_old,)] = conn.execute("SELECT max(captured_at) FROM reads WHERE captured_at < ?",
                                       (now_ms() - 30 * DAY_MS,)).fetchall()
    forged = sightings.post("/plates/7ABC123/more", {**form, "after": f"{newest_old + 1}:999999999"},
                            headers={"HX-Request": "true"})
    assert forged.status_code == 200 and 'class="read-card"' not in forged.text  # still cut to the window
    assert "No more sightings" in forged.text
    assert [line["results"] for line in audit_lines(dept, "plate.history.more")] == [0]


def test_show_older_sightings_in_chromium(dept, sightings, page):
    sign_in(page, dept.live.url)
    page.goto(f"{dept.live.url}/plates/7ABC123")
    page.get_by_label("Reason").select_option(label=reason_label(dept, 2))
    page.get_by_label("Case number").fill("24-00117")
    page.get_by_role("button", name="Show history").click()
    expect(page.get_by_role("heading", name="500 sightings, newest 500 shown")).to_be_visible()
    button = page.get_by_role("button", name="Show older sightings")
    button.scroll_into_view_if_needed()
    assert button.bounding_box()["height"] >= 48  # a thumb's target
    ARTIFACTS.mkdir(exist_ok=True)  # the screen around the button (500 sightings are too tall to keep)
    page.screenshot(path=str(ARTIFACTS / "history-older-sightings-390x844.png"))
    button.click()
    expect(page.get_by_role("heading", name="1000 sightings, newest 1000 shown")).to_be_visible()
    expect(page.locator(".read-card")).to_have_count(1000)  # appended below: the first 500 stay
    expect(page.get_by_role("list", name="Sightings 501 to 1000")).to_be_focused()
    page.get_by_role("button", name="Show older sightings").click()
    expect(page.get_by_role("heading", name="1300 sightings", exact=True)).to_be_visible()
    expect(page.locator("#history-more [role=status]")).to_have_text("No more sightings: all 1300 have been shown.")
    ids = page.locator(".read-card").evaluate_all("(cards) => cards.map((card) => Number(card.dataset.read))")
    assert ids == expected(dept, "7ABC123")
    assert [line["case"] for line in audit_lines(dept, "plate.history.more")] == ["24-00117"] * 2
