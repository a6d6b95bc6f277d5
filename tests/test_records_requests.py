"""Public records requests (issue 21): a resident asks on /request in real Chromium, without an
account; a supervisor opens it on /requests, looks the plate up through the search service
(audited as a search for "Public records request" with the request number) and records the
answer; the transparency report counts requests and the median days to answer. Each address may
ask three times an hour; bad input is refused naming the field."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import httpx
import pytest
from playwright.sync_api import expect

from server.clock import DAY_MS
from server.records_requests import PER_HOUR, PUBLIC_RECORDS
from tests.browser import screenshot
from tests.conftest import run_cli
from tests.test_web_search import Officer, audit

RESIDENT = {"plate": "7abc-123", "name": "Dana Resident", "email": "dana@example.org", "postal_address": "",
            "message": "Has my car been read near Main St?"}


class Resident:
    """A member of the public's browser without the browser: the CSRF cookie from the form page,
    sent back with the form; `address` is the address Caddy would forward."""

    def __init__(self, url: str, address: str | None = None) -> None:
        headers = {"X-Forwarded-For": address} if address else {}
        self.http = httpx.Client(base_url=url, timeout=10, headers=headers)
        assert self.http.get("/request").status_code == 200

    def ask(self, **fields) -> httpx.Response:
        return self.http.post("/request", data={**RESIDENT, **fields, "_csrf_token": self.http.cookies["csrftoken"]})


def number_in(html: str) -> str:
    start = html.index('id="request-number">') + len('id="request-number">')
    return html[start:html.index("<", start)]


@pytest.fixture
def sam(dept, capsys):
    run_cli(dept.settings, "user", "add", "sam", "--role", "supervisor", "--password-stdin", stdin="long enough pw\n")
    capsys.readouterr()
    supervisor = Officer(dept.live.url, "sam", "long enough pw")
    yield supervisor
    supervisor.http.close()


def requests_table(dept) -> list[tuple]:
    with closing(sqlite3.connect(dept.settings.db_path)) as conn:
        return conn.execute("SELECT * FROM records_requests ORDER BY id").fetchall()


def test_a_resident_asks_in_a_browser_and_a_supervisor_answers(dept, sam, page):
    for plate in ("7ABC123", "7ABC123", "9ZZZ999"):
        assert dept.post_read(plate).status_code == 201
    page.goto(f"{dept.live.url}/request")
    page.get_by_label("Plate").fill("7AB/C123")
    page.get_by_label("Your name").fill("Dana Resident")
    page.get_by_role("button", name="Send the request").click()
    errors = page.get_by_role("alert")
    expect(errors).to_contain_text("Plate: “/” cannot be on a plate")
    expect(errors).to_contain_text("Contact: give an email address or a postal address")
    page.get_by_label("Plate").fill("7abc 123")
    page.get_by_label("Email address").fill("dana@example.org")
    page.get_by_label("Message (optional)").fill("Has my car been read near Main St?\nThanks.")
    page.get_by_role("button", name="Send the request").click()
    number = page.locator("#request-number").inner_text()
    assert number == "R-00001"
    answer_page = page.locator("main").inner_text()
    assert "7ABC123" in answer_page and "main-st" not in answer_page and "read 2" not in answer_page  # nothing disclosed
    screenshot(page, "records-request")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll on a phone
    assert audit(dept, "request.received") == [{"actor": "public", "request": number}]  # no contact details

    queue = sam.http.get("/requests")
    assert queue.status_code == 200 and number in queue.text and "Dana Resident" in queue.text
    opened = sam.http.get("/requests/1")
    assert "dana@example.org" in opened.text and "Has my car been read" in opened.text

    assert sam.post("/reads/1/hold", {"case": "24-0077"}).status_code == 200  # the answer says what is kept
    looked = sam.post("/requests/1/lookup", {})
    assert looked.status_code == 200 and "2 reads of 7ABC123" in looked.text and "main-st" in looked.text
    assert looked.text.count("kept for case 24-0077") == 1 and "9ZZZ999" not in looked.text
    [search] = audit(dept, "search")
    assert search["actor"] == "sam" and search["reason"] == PUBLIC_RECORDS and search["case"] == number
    assert search["request"] == number and search["results"] == 2 and search["criteria"]["plate"] == "7ABC123"

    assert sam.post("/requests/1/answer", {"answer": ""}).status_code == 422
    answered = sam.post("/requests/1/answer", {"answer": "Two reads on Main St, Dec 7; no hold. Letter sent."})
    assert answered.status_code == 303 and answered.headers["location"] == "/requests/1"
    shown = sam.http.get("/requests/1").text
    assert "Two reads on Main St" in shown and "by sam" in shown and 'name="answer"' not in shown
    again = sam.post("/requests/1/answer", {"answer": "A different story"})
    assert again.status_code == 409 and "answered already" in again.text
    assert audit(dept, "request.answered") == [{"actor": "sam", "request": number}]
    [row] = requests_table(dept)
    assert row[8:11][0].startswith("Two reads") and row[10] == "sam"

    report = httpx.get(f"{dept.live.url}/transparency.json").json()["records_requests"]
    assert (report["received"], report["answered"]) == (1, 1) and report["median_days_to_answer"] == 0.0
    searches = httpx.get(f"{dept.live.url}/transparency.json").json()["searches_by_reason"]
    assert {"reason": PUBLIC_RECORDS, "searches": 1} in searches  # counted under its own name


def test_only_supervisors_and_admins_see_requests(dept, sam):
    Resident(dept.live.url).ask()
    officer = Officer(dept.live.url)
    for path in ("/requests", "/requests/1"):
        assert officer.http.get(path).status_code == 403
        assert "dana@example.org" not in officer.http.get(path).text
    assert officer.post("/requests/1/lookup", {}).status_code == 403
    with httpx.Client(base_url=dept.live.url) as anonymous:
        assert anonymous.get("/requests/1").status_code in (302, 303)
    assert sam.http.get("/requests/999").status_code == 404
    assert audit(dept, "search") == []


def test_each_address_may_ask_three_times_an_hour(dept):
    resident = Resident(dept.live.url)
    for _ in range(PER_HOUR):
        assert resident.ask().status_code == 200
    fourth = resident.ask()
    assert fourth.status_code == 429 and "3 requests in the last hour" in fourth.text
    other = Resident(dept.live.url, address="203.0.113.9")  # another address, as Caddy forwards it
    assert other.ask().status_code == 200
    rows = requests_table(dept)
    assert len(rows) == PER_HOUR + 1
    assert not any("127.0.0.1" in str(value) or "203.0.113.9" in str(value) for row in rows for value in row)


@pytest.mark.parametrize(("fields", "message"), [
    ({"plate": "ß123"}, "Plate: “ß” cannot be on a plate"),
    ({"plate": "  "}, "Plate: give the plate"),
    ({"plate": "A" * 17}, "Plate: at most 16"),
    ({"name": ""}, "Name: give your name"),
    ({"name": "n" * 101}, "Name: at most 100 characters"),
    ({"name": "Dana\x07"}, "Name: may not contain control characters"),
    ({"email": "not-an-email"}, "Email: this is not an email address"),
    ({"email": ""}, "Contact: give an email address or a postal address"),
    ({"message": "m" * 2001}, "Message: at most 2000 characters"),
])
def test_bad_input_is_refused_naming_the_field(dept, fields, message):
    resp = Resident(dept.live.url).ask(**fields)
    assert resp.status_code == 422 and message in resp.text, resp.text[-2000:]
    assert requests_table(dept) == []


def test_a_postal_address_is_enough_and_a_form_without_csrf_is_refused(dept):
    resident = Resident(dept.live.url)
    assert resident.ask(email="", postal_address="12 Elm St\nSpringfield").status_code == 200
    forged = httpx.post(f"{dept.live.url}/request", data=RESIDENT)
    assert forged.status_code == 403 and len(requests_table(dept)) == 1


def test_transparency_counts_requests_and_the_median_days_to_answer(dept, sam):
    for i, address in enumerate(("198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4")):
        assert Resident(dept.live.url, address).ask(plate=f"ABC{i}").status_code == 200
    for request_id in (1, 2, 3):
        assert sam.post(f"/requests/{request_id}/answer", {"answer": "Nothing held."}).status_code == 303
    with closing(sqlite3.connect(dept.settings.db_path)) as conn, conn:  # as if they had waited 1, 2 and 6 days
        for request_id, days in ((1, 1), (2, 2), (3, 6)):
            conn.execute("UPDATE records_requests SET received_at = answered_at - ? WHERE id = ?",
                         (days * DAY_MS, request_id))
    report = httpx.get(f"{dept.live.url}/transparency.json").json()["records_requests"]
    assert (report["received"], report["answered"], report["median_days_to_answer"]) == (4, 3, 2.0)
    html = httpx.get(f"{dept.live.url}/transparency").text
    assert 'id="requests-received">4<' in html and 'id="requests-answered">3<' in html
    assert 'id="requests-median">2.0 days<' in html
    queue = sam.http.get("/requests").text
    assert queue.index("open-request-list") < queue.index("R-00004") < queue.index("answered-request-list")
