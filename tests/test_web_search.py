"""Search, plate history and recent reads over real HTTP (session cookie + CSRF, as a browser
sends them) and in real Chromium: nothing is shown without a reason and case number, and every
search lands in the audit log."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta

import cv2
import httpx
import pytest
from playwright.sync_api import expect

from tests.browser import screenshot, sign_in
from tests.conftest import run_cli
from tests.test_ingest import jpeg, multipart_read
from synth import make_scene, render_plate

CARD_PLATES = re.compile(r'class="read-card" data-plate="([A-Z0-9]+)"')


class Officer:
    """A signed-in browser session without the browser: session cookie, CSRF cookie and token."""

    def __init__(self, url: str, username: str = "alice", password: str = "correct horse") -> None:
        self.http = httpx.Client(base_url=url, timeout=10)
        self.http.get("/login")
        resp = self.post("/login", {"username": username, "password": password})
        assert resp.status_code == 303 and "pw_session" in self.http.cookies, resp.text

    def post(self, path: str, data: dict, **kwargs) -> httpx.Response:
        return self.http.post(path, data={**data, "_csrf_token": self.http.cookies["csrftoken"]}, **kwargs)

    def search(self, **fields) -> httpx.Response:
        return self.post("/search", {"reason": "1", "case": "24-00117", **fields})


def audit(dept, action: str) -> list[dict]:
    with sqlite3.connect(dept.settings.db_path) as conn:
        rows = conn.execute("SELECT actor, detail FROM audit_log WHERE action = ? ORDER BY id", (action,)).fetchall()
    return [{"actor": actor, **json.loads(detail)} for actor, detail in rows]


def reason_label(dept, reason_id: int = 1) -> str:
    with sqlite3.connect(dept.settings.db_path) as conn:
        return conn.execute("SELECT label FROM search_reasons WHERE id = ?", (reason_id,)).fetchone()[0]


def crops(text: str) -> dict[str, bytes]:
    """A plate crop and a vehicle crop as the worker sends them, from a rendered street scene."""
    scene = make_scene(render_plate(text, height=100), plate_center=(640, 420))
    encode = lambda image: cv2.imencode(".jpg", image)[1].tobytes()  # noqa: E731
    return {"plate_image": encode(render_plate(text, height=60)), "vehicle_image": encode(scene[250:600, 390:890])}


def ago(**delta) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


@pytest.fixture
def officer(dept):
    for plate in ("7ABC123", "7ABC128", "7A8C123", "7XBC123", "9ZZZ999"):
        assert dept.post_read(plate, color="red").status_code == 201
    session = Officer(dept.live.url)
    yield session
    session.http.close()


def test_search_refused_without_reason_or_case(dept, officer):
    assert 'class="read-card"' not in officer.http.get("/search").text  # the form alone
    for missing, message in ((dict(reason=""), "Choose the reason"), (dict(case=""), "Give the case number"),
                             (dict(reason="999"), "Choose the reason"), (dict(case="x" * 41), "at most 40")):
        resp = officer.search(plate="7ABC123", **missing)
        assert resp.status_code == 422 and message in resp.text and "Nothing was searched" in resp.text
        assert 'class="read-card"' not in resp.text and 'id="results"' not in resp.text
    bad = officer.search(plate="7", since="yesterday")
    assert bad.status_code == 422
    assert "two letters or digits" in bad.text and "“yesterday” is not a date" in bad.text
    assert officer.search(plate="").status_code == 422  # no plate needs a camera
    assert audit(dept, "search") == []


def test_exact_wildcard_fuzzy_results_and_audit(dept, officer):
    expected = {"7abc 123": (["7ABC123"], {}), "7ABC12?": (["7ABC123", "7ABC128"], {}),
                "*BC12*": (["7ABC123", "7ABC128", "7XBC123"], {}),
                "7-ABC-123": (["7A8C123", "7ABC123", "7ABC128", "7XBC123"], {"fuzzy": "on"}),
                "NOPE12": ([], {})}
    for plate, (plates, extra) in expected.items():
        resp = officer.search(plate=plate, **extra)
        assert resp.status_code == 200, resp.text
        assert sorted(CARD_PLATES.findall(resp.text)) == plates, plate
    fuzzy = officer.search(plate="7ABC123", fuzzy="on").text
    assert "look-alike characters" in fuzzy and "one character off" in fuzzy
    assert "/plates/7ABC123?reason=1&amp;case=24-00117" in fuzzy  # history link carries the justification
    lines = audit(dept, "search")
    assert len(lines) == 6 and {line["actor"] for line in lines} == {"alice"}
    assert [line["results"] for line in lines] == [1, 2, 3, 4, 0, 4]  # a search with no results is logged too
    first = lines[0]
    assert first["reason"] == reason_label(dept) and first["case"] == "24-00117" and first["reason_id"] == 1
    assert first["criteria"]["plate"] == "7ABC123" and first["criteria"]["fuzzy"] is False


def test_time_range_camera_and_colour(dept, officer, capsys):
    run_cli(dept.settings, "camera", "add", "north-rd", "--location", "North Rd & 5th")
    north = {"Authorization": f"Bearer {capsys.readouterr().out.strip().splitlines()[-1]}"}
    dept.post_read("7ABC123", captured_at=ago(days=10))
    resp = dept.http.post("/api/v1/reads", headers=north, json={
        "id": "6f1c1f4e-4a0e-4b4f-9d7e-2b7a0c1d9e01", "plate": "7ABC123", "confidence": 0.8, "candidates": [],
        "captured_at": ago(hours=1), "color": "blue"})
    assert resp.status_code == 201
    assert CARD_PLATES.findall(officer.search(plate="7ABC123").text) == ["7ABC123"] * 2  # last 7 days
    since = (datetime.now(UTC) - timedelta(days=12)).strftime("%Y-%m-%dT%H:%M")
    assert len(CARD_PLATES.findall(officer.search(plate="7ABC123", since=since).text)) == 3
    too_early = (datetime.now(UTC) - timedelta(days=45)).strftime("%Y-%m-%dT%H:%M")
    assert "Reads are kept 30 days: searched from" in officer.search(plate="7ABC123", since=too_early).text
    blue = officer.search(plate="7ABC123", colour="blue").text
    assert CARD_PLATES.findall(blue) == ["7ABC123"] and "North Rd &amp; 5th" in blue
    assert officer.search(plate="7ABC123", colour="mauve").status_code == 422
    with sqlite3.connect(dept.settings.db_path) as conn:
        [(north_id,)] = conn.execute("SELECT id FROM cameras WHERE name = 'north-rd'").fetchall()
    assert f'<option value="{north_id}"' in officer.http.get("/search").text
    assert CARD_PLATES.findall(officer.search(camera=str(north_id)).text) == ["7ABC123"]  # all one camera read
    north_reads = officer.http.get("/reads", params={"camera": north_id}).text
    assert CARD_PLATES.findall(north_reads) == ["7ABC123"] and "blue" in north_reads
    until = (datetime.now(UTC) - timedelta(days=20)).strftime("%Y-%m-%dT%H:%M")
    assert "From must be before To" in officer.search(plate="7ABC123", until=until).text
    assert audit(dept, "search")[-1]["criteria"]["camera"] == "north-rd"


def test_plate_history_needs_justification_and_is_audited(dept, officer):
    form = officer.http.get("/plates/7ABC123?reason=1&case=24-00117").text
    assert 'value="1" selected' in form and 'value="24-00117"' in form and 'class="read-card"' not in form
    refused = officer.post("/plates/7ABC123", {"reason": "1", "case": ""})
    assert refused.status_code == 422 and 'class="read-card"' not in refused.text
    resp = officer.post("/plates/7ABC123", {"reason": "1", "case": "24-00117"})
    assert resp.status_code == 200
    assert sorted(CARD_PLATES.findall(resp.text)) == ["7A8C123", "7ABC123"]  # and the look-alike, marked
    assert resp.text.count("badge match-lookalike") == 1 and "main-st: 2" in resp.text
    [line] = audit(dept, "plate.history")
    assert (line["plate"], line["case"], line["results"]) == ("7ABC123", "24-00117", 2)
    assert line["reason"] == reason_label(dept)


def test_recent_reads_show_images_and_are_audited_once_per_view(dept, officer):
    data, files = multipart_read("5GHJ907", plate_image=jpeg(), vehicle_image=jpeg((320, 240)))
    assert dept.http.post("/api/v1/reads", data=data, files=files, headers=dept.camera_headers).status_code == 201
    page = officer.http.get("/reads").text
    plates = CARD_PLATES.findall(page)
    assert plates[0] == "5GHJ907" and len(plates) == 6
    images = re.findall(r'src="/images/([^"]+)"', page)
    assert len(images) == 2 and all(officer.http.get(f"/images/{i}").content[:3] == b"\xff\xd8\xff" for i in images)
    listing = officer.http.get("/reads", params={"camera": 1, "refresh": "true"}, headers={"HX-Request": "true"})
    assert listing.text.lstrip().startswith('<div id="reads-list"') and "5GHJ907" in listing.text
    assert [line["camera"] for line in audit(dept, "reads.view")] == ["main-st"]  # the refresh is the same view
    assert httpx.get(f"{dept.live.url}/reads", follow_redirects=False).status_code in (302, 303, 307)


def test_only_admins_edit_reasons(dept, officer, capsys):
    assert officer.http.get("/search/reasons").status_code == 403
    assert officer.post("/search/reasons", {"label": "Curiosity"}).status_code == 403
    assert officer.post("/search/reasons/1/retire", {}).status_code == 403
    run_cli(dept.settings, "user", "add", "chief", "--role", "admin", "--password-stdin", stdin="chief's pass 1\n")
    admin = Officer(dept.live.url, "chief", "chief's pass 1")
    assert admin.post("/search/reasons", {"label": "  "}).status_code == 422
    assert admin.post("/search/reasons", {"label": "Training drill (test)"}).status_code == 303
    assert "Training drill (test)" in officer.http.get("/search").text
    assert "Training drill (test)" in admin.http.get("/search/reasons").text.split("Retired")[0]
    label = reason_label(dept)
    assert officer.search(plate="7ABC123").status_code == 200  # logged under reason 1 before it retires
    assert admin.post("/search/reasons/1/retire", {}).status_code == 303
    assert f">{label}</option>" not in officer.http.get("/search").text
    assert officer.search(plate="7ABC123").status_code == 422  # a retired reason can't justify a search
    assert audit(dept, "search")[0]["reason"] == label  # and the old audit line keeps it
    assert label in admin.http.get("/search/reasons").text.split("Retired")[1]
    assert [line["label"] for line in audit(dept, "search_reason.retire")] == [label]
    admin.http.close()


def test_search_history_and_reads_in_chromium(dept, officer, page):
    data, files = multipart_read("7ABC123", **crops("7ABC123"))
    assert dept.http.post("/api/v1/reads", data=data, files=files, headers=dept.camera_headers).status_code == 201
    sign_in(page, dept.live.url)
    page.get_by_role("link", name="Search").click()
    page.get_by_label("Plate").fill("7ABC123")
    page.evaluate("document.querySelectorAll('[required]').forEach((el) => el.removeAttribute('required'))")
    page.get_by_role("button", name="Search", exact=True).click()  # past the browser's own check
    expect(page.get_by_role("alert")).to_contain_text("Give the case number")
    expect(page.locator(".read-card")).to_have_count(0)
    page.get_by_label("Reason").select_option(label=reason_label(dept, 5))
    page.get_by_label("Case number").fill("24-00117")
    page.get_by_label("Fuzzy").check()
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_role("heading", name="5 reads")).to_be_visible()
    expect(page.locator('.read-card[data-plate="7A8C123"] .badge')).to_have_text("look-alike characters")
    crop = page.locator(".read-card img.thumb-plate").first
    expect(crop).to_be_visible()
    assert crop.evaluate("(img) => img.complete && img.naturalWidth") == 120  # served and decoded
    screenshot(page, "search")
    page.locator('.read-card[data-plate="7A8C123"]').get_by_role("link").click()
    expect(page.get_by_label("Case number")).to_have_value("24-00117")
    page.get_by_role("button", name="Show history").click()
    expect(page.get_by_role("heading", name="3 sightings")).to_be_visible()
    assert [line["case"] for line in audit(dept, "plate.history")] == ["24-00117"]
    page.get_by_role("link", name="Reads").click()
    expect(page.locator(".read-card").first.locator("img")).to_have_count(2)  # plate and vehicle
    expect(page.locator(".read-card")).to_have_count(6)
