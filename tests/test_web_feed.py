"""Officers in real Chromium: sign in, watch the live feed, work an alert to its outcome."""

from __future__ import annotations

import sqlite3

from playwright.sync_api import expect

from tests.browser import TABLET, screenshot, sign_in

HOTLIST = "plate,state,reason\n8ABC123,CA,Stolen 2026-11-01 (test)\n6TRJ244,CA,AMBER alert (test)\n"


def test_sign_in_required_and_wrong_password_refused(dept, page):
    page.goto(f"{dept.live.url}/")
    expect(page).to_have_url(f"{dept.live.url}/login?next=/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("wrong one")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")
    sign_in(page, dept.live.url)
    expect(page.get_by_role("heading", name="Alerts")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "pw_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"


def test_new_alert_appears_live_without_reload(dept, page, tmp_path):
    dept.hotlist(tmp_path, "stolen", HOTLIST, "--kind", "stolen_vehicle")
    sign_in(page, dept.live.url)
    expect(page.locator("#live")).to_have_text("live")
    page.evaluate("window.__notReloaded = true")
    dept.post_read("8ABC123")
    card = page.locator(".alert-card").first
    expect(card).to_contain_text("8ABC123", timeout=5000)
    expect(card).to_contain_text("Stolen 2026-11-01 (test)")
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "feed")
    page.set_viewport_size(TABLET)
    screenshot(page, "feed")


def test_acknowledge_and_outcome_are_recorded(dept, page, tmp_path):
    dept.hotlist(tmp_path, "amber", HOTLIST, "--kind", "amber")
    [alert_id] = dept.post_read("6TRJ244").json()["alerts"]
    sign_in(page, dept.live.url)
    page.locator(f"#alert-{alert_id} a").click()
    expect(page.get_by_role("note")).to_contain_text("not probable cause")
    screenshot(page, "alert")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_test_id("alert-status")).to_have_text("acknowledged")
    page.get_by_label("Confirmed hit").check()
    page.get_by_role("button", name="Record outcome").click()
    expect(page.get_by_role("alert")).to_contain_text("say which")  # confirming needs a source
    page.get_by_label("NCIC").check()
    page.get_by_label("Confirmed hit").check()
    page.get_by_label("Note").fill("NCIC record 42")
    page.get_by_role("button", name="Record outcome").click()
    expect(page.get_by_test_id("alert-status")).to_have_text("confirmed")
    with sqlite3.connect(dept.settings.db_path) as conn:
        status, by, note = conn.execute("SELECT status, resolved_by, note FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        actions = [a for (a,) in conn.execute("SELECT action FROM audit_log WHERE action LIKE 'alert.%' ORDER BY id")]
    assert (status, by) == ("confirmed", "alice") and "NCIC" in note and "record 42" in note
    assert actions == ["alert.acknowledged", "alert.confirmed"]


def test_refusals_are_pages_for_people_and_json_for_the_api(dept, page, tmp_path):
    sign_in(page, dept.live.url)
    response = page.goto(f"{dept.live.url}/users")  # admins only
    assert response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    response = page.goto(f"{dept.live.url}/alerts/999999")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    api = dept.http.get("/api/v1/alerts/999999", headers=dept.user_headers)
    assert api.status_code == 404 and api.json()["detail"] == "no alert 999999"
