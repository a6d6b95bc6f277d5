"""On duty or off: web push pages only officers on duty, for a shift of `shift_hours`, while the
live feed shows every alert to everyone. Real app and SQLite over loopback HTTP, pushes verified
and decrypted by the test push service, the switch tapped once in real Chromium on a phone."""

from __future__ import annotations

import html
import json
import time
from contextlib import closing
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import msgspec
import pytest
from playwright.sync_api import expect

from server.settings import load_settings
from tests.browser import screenshot, sign_in
from tests.conftest import make_settings, wait_until
from tests.pushservice import PushService
from tests.test_mfa import client_for
from tests.test_web_admin import add_user, db_rows, web_client

ZONE = "America/Chicago"
SHIFT_HOURS = 10  # not the default 12: the setting is what counts; shorter than a session (12 h)
HOUR_MS = 3_600_000
HOTLIST = "plate,state,reason\n8ABC123,CA,Stolen (test)\n5DEF456,CA,Stolen (test)\n6TRJ244,CA,AMBER (test)\n"


@pytest.fixture
def settings(tmp_path):
    """The department keeps Chicago time and 10-hour shifts (overrides conftest's settings). A test
    here moves the clock past a shift with its sessions open: they lock only after a day unused
    (test_signin_rules.py tests the lock)."""
    return make_settings(tmp_path / "data", time_zone=ZONE, shift_hours=SHIFT_HOURS, idle_lock_minutes=1440)


@pytest.fixture
def push(dept):
    key = dept.http.get("/api/v1/push/key").json()["public_key"]
    with PushService(expected_key=key) as service:
        yield service


def officer(dept, name: str) -> dict:
    """A second officer, made with the CLI; their API headers."""
    add_user(dept, name, "officer")
    token = dept.http.post("/api/v1/auth/token", json={"username": name, "password": "long enough pw"})
    return {"Authorization": f"Bearer {token.json()['token']}"}


def subscribe(dept, headers: dict, subscription: dict) -> None:
    resp = dept.http.post("/api/v1/push/subscriptions", json=subscription, headers=headers)
    assert resp.status_code == 201, resp.text


def duty_via_api(dept, headers: dict, on: bool) -> httpx.Response:
    return dept.http.post("/api/v1/duty", json={"on": on}, headers=headers)


def delivered_to(dept, alert_id: int) -> list[str]:
    """The subscriptions the server pushed the alert to (written once every push has answered)."""
    rows = wait_until(lambda: db_rows(dept, "SELECT endpoint, status FROM push_deliveries WHERE alert_id = ?", alert_id))
    assert all(status == 201 for _, status in rows), rows
    return sorted(endpoint.rsplit("/", 1)[1] for endpoint, _ in rows)


def on_duty_until(dept, name: str) -> int | None:
    [(until,)] = db_rows(dept, "SELECT on_duty_until FROM users WHERE username = ?", name)
    return until


def duty_audit(dept, name: str) -> list[tuple[str, dict]]:
    rows = db_rows(dept, "SELECT action, detail FROM audit_log WHERE actor = ? AND action LIKE 'duty.%' ORDER BY id", name)
    return [(action, json.loads(detail)) for action, detail in rows]


def clock(ms: int) -> str:
    """HH:MM in the department's time, as the switch shows the end of a shift."""
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(ZONE)).strftime("%H:%M")


def test_the_officer_on_duty_gets_the_push_and_the_one_off_duty_does_not(dept, push, tmp_path):
    bob = officer(dept, "bob")
    subscribe(dept, dept.user_headers, push.subscription("alice-phone"))
    subscribe(dept, bob, push.subscription("bob-phone"))
    dept.hotlist(tmp_path, "stolen", HOTLIST, "--kind", "stolen_vehicle")
    with closing(web_client(dept, "alice", "correct horse")) as alice:
        gone = alice.post("/duty", data={"on": "1", "next": "/"})  # the feed's form, without JavaScript
        assert gone.status_code == 303 and gone.headers["location"] == "/"
    [alert_id] = dept.post_read("8ABC123").json()["alerts"]
    [message] = push.wait_for(1, name="alice-phone")
    payload = json.loads(message.payload)  # decrypted with alice's phone's own keys
    assert (payload["id"], payload["plate"], payload["hotlist"]) == (alert_id, "8ABC123", "stolen")
    assert delivered_to(dept, alert_id) == ["alice-phone"]
    assert [m.name for m in push.messages] == ["alice-phone"]  # nothing reached bob's phone, refused or not
    # Bob's subscription is kept for his next shift, and the alert is in everyone's list.
    assert sorted(e.rsplit("/", 1)[1] for (e,) in db_rows(dept, "SELECT endpoint FROM push_subscriptions")) == [
        "alice-phone", "bob-phone"]
    assert [a["id"] for a in dept.http.get("/api/v1/alerts", headers=bob).json()] == [alert_id]


def test_going_off_duty_stops_the_pushes_at_once(dept, push, tmp_path):
    bob = officer(dept, "bob")
    subscribe(dept, dept.user_headers, push.subscription("alice-phone"))
    subscribe(dept, bob, push.subscription("bob-phone"))
    assert duty_via_api(dept, bob, True).status_code == 200
    dept.hotlist(tmp_path, "stolen", HOTLIST)
    hx = {"HX-Request": "true"}
    with closing(web_client(dept, "alice", "correct horse")) as alice:
        on = alice.post("/duty", data={"on": "1", "next": "/"}, headers=hx)
        until = on_duty_until(dept, "alice")
        assert on.status_code == 200 and "<html" not in on.text  # the switch alone, for htmx to swap in
        assert f"On duty until <time datetime=\"{datetime.fromtimestamp(until / 1000, ZoneInfo(ZONE)).isoformat()}\">" \
               f"{clock(until)}</time>" in on.text and ">Go off duty</button>" in on.text
        [first] = dept.post_read("8ABC123").json()["alerts"]
        assert delivered_to(dept, first) == ["alice-phone", "bob-phone"]
        off = alice.post("/duty", data={"on": "0", "next": "/"}, headers=hx)
        assert off.status_code == 200 and "Off duty" in off.text and ">Go on duty</button>" in off.text
    assert on_duty_until(dept, "alice") is None
    [second] = dept.post_read("5DEF456").json()["alerts"]
    assert delivered_to(dept, second) == ["bob-phone"]
    assert [m.name for m in push.messages].count("alice-phone") == 1
    assert len(db_rows(dept, "SELECT 1 FROM push_subscriptions")) == 2  # kept, not deleted
    assert duty_audit(dept, "alice") == [("duty.on", {"until": until, "via": "web"}), ("duty.off", {"via": "web"})]


def test_duty_ends_by_itself_after_shift_hours(dept, push, tmp_path, monkeypatch):
    bob = officer(dept, "bob")
    subscribe(dept, dept.user_headers, push.subscription("alice-phone"))
    subscribe(dept, bob, push.subscription("bob-phone"))
    dept.hotlist(tmp_path, "stolen", HOTLIST)
    add_user(dept, "chief", "supervisor")
    with closing(web_client(dept, "chief", "long enough pw")) as chief, \
            closing(web_client(dept, "alice", "correct horse")) as alice:
        before = int(time.time() * 1000)
        until = dept.go_on_duty()
        assert before + SHIFT_HOURS * HOUR_MS <= until <= int(time.time() * 1000) + SHIFT_HOURS * HOUR_MS
        assert on_duty_until(dept, "alice") == until
        assert "Officers on duty now: <strong>1</strong>" in chief.get("/dashboard").text
        assert "On duty until <time" in alice.get("/").text
        # The server's clock (and the push service's) moves past the end of alice's shift.
        real_time = time.time
        monkeypatch.setattr(time, "time", lambda: real_time() + SHIFT_HOURS * 3600 + 60)
        assert "Off duty" in alice.get("/").text and "Go on duty" in alice.get("/account").text
        assert "Officers on duty now: <strong>0</strong>" in chief.get("/dashboard").text
        assert duty_via_api(dept, bob, True).status_code == 200
        [alert_id] = dept.post_read("8ABC123").json()["alerts"]
        assert delivered_to(dept, alert_id) == ["bob-phone"]  # bob's shift started; alice's ended
        assert "Officers on duty now: <strong>1</strong>" in chief.get("/dashboard").text
    assert on_duty_until(dept, "alice") == until  # nobody switched her off: the time ran out
    assert [action for action, _ in duty_audit(dept, "alice")] == ["duty.on"]


def test_the_api_switches_duty_with_a_token_and_refuses_without(dept):
    before = int(time.time() * 1000)
    on = duty_via_api(dept, dept.user_headers, True)
    assert on.status_code == 200, on.text
    until = datetime.fromisoformat(on.json()["on_duty_until"])
    assert until.tzinfo is not None and on_duty_until(dept, "alice") == int(until.timestamp() * 1000)
    assert before + SHIFT_HOURS * HOUR_MS <= int(until.timestamp() * 1000) <= before + (SHIFT_HOURS * HOUR_MS + 60_000)
    off = duty_via_api(dept, dept.user_headers, False)
    assert off.status_code == 200 and off.json() == {"on_duty_until": None}
    assert on_duty_until(dept, "alice") is None
    assert duty_audit(dept, "alice") == [("duty.on", {"until": int(until.timestamp() * 1000), "via": "api"}),
                                         ("duty.off", {"via": "api"})]
    # Refused: no token, a camera's token, a browser's session cookie (the API takes bearer tokens only).
    assert dept.http.post("/api/v1/duty", json={"on": True}).status_code == 401
    assert duty_via_api(dept, dept.camera_headers, True).status_code == 401
    with closing(web_client(dept, "alice", "correct horse")) as browser:
        assert browser.post("/api/v1/duty", json={"on": True}).status_code == 401
    for body, named in (({"on": "yes"}, "on"), ({}, "on"), ({"on": True, "until": 1}, "until")):
        refused = dept.http.post("/api/v1/duty", json=body, headers=dept.user_headers)
        assert refused.status_code == 400 and named in refused.text, refused.text
    assert on_duty_until(dept, "alice") is None and len(duty_audit(dept, "alice")) == 2


def test_the_api_switch_is_in_the_openapi_schema(dept):
    schema = dept.http.get("/schema/openapi.json").json()
    operation = schema["paths"]["/api/v1/duty"]["post"]
    assert "shift_hours" in operation["description"]
    request = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    components = schema["components"]["schemas"]
    assert components[request]["properties"]["on"]["type"] == "boolean" and components[request]["required"] == ["on"]
    assert "on_duty_until" in components[answer]["properties"]


def test_the_web_switch_needs_the_csrf_token_and_a_session(dept):
    with closing(web_client(dept, "alice", "correct horse")) as alice:
        del alice.headers["x-csrftoken"]
        assert alice.post("/duty", data={"on": "1"}).status_code == 403
        alice.headers["x-csrftoken"] = "forged"
        assert alice.post("/duty", data={"on": "1"}).status_code == 403
        alice.headers["x-csrftoken"] = alice.cookies["csrftoken"]
        assert alice.post("/duty", data={"on": "maybe"}).status_code == 400
    with closing(client_for(dept.live.url)) as anonymous:  # a CSRF token, but no session
        refused = anonymous.post("/duty", data={"on": "1"})
        assert refused.status_code == 302 and refused.headers["location"].startswith("/login")
    assert on_duty_until(dept, "alice") is None and duty_audit(dept, "alice") == []


def test_without_javascript_the_switch_posts_and_returns_to_its_page(dept):
    with closing(web_client(dept, "alice", "correct horse")) as alice:
        account = alice.get("/account").text
        assert 'action="/duty"' in account and 'name="_csrf_token"' in account and "Off duty" in account
        assert f"Going on duty lasts {SHIFT_HOURS} hours" in account
        back = alice.post("/duty", data={"on": "1", "next": "/account"})
        assert back.status_code == 303 and back.headers["location"] == "/account"
        page = alice.get("/account").text
        assert f">{clock(on_duty_until(dept, 'alice'))}</time>" in page and ">Go off duty</button>" in page
        away = alice.post("/duty", data={"on": "0", "next": "//evil.example/"})  # only same-site paths
        assert away.status_code == 303 and away.headers["location"] == "/"
        assert "Off duty" in html.unescape(alice.get("/").text)


def test_shift_hours_is_bounded(tmp_path):
    assert load_settings(tmp_path, env={}).shift_hours == 12
    assert load_settings(tmp_path, env={"PLATEWATCH_SHIFT_HOURS": "8.5"}).shift_hours == 8.5
    for hours in ("0", "0.5", "25", "nan"):
        with pytest.raises(msgspec.ValidationError, match="shift_hours"):
            load_settings(tmp_path, env={"PLATEWATCH_SHIFT_HOURS": hours})


def test_a_tap_on_the_phone_puts_the_officer_on_duty_and_off(dept, page, tmp_path):
    dept.hotlist(tmp_path, "stolen", HOTLIST)
    sign_in(page, dept.live.url)
    state, button = page.locator("#duty-state"), page.locator("#duty-button")
    expect(state).to_have_text("Off duty")
    expect(button).to_have_text("Go on duty")
    box = button.bounding_box()
    assert box["width"] >= 44 and box["height"] >= 44, box
    page.evaluate("window.__notReloaded = true")
    button.tap()
    expect(button).to_have_text("Go off duty")
    until = wait_until(lambda: on_duty_until(dept, "alice"))
    expect(state).to_have_text(f"On duty until {clock(until)}")  # the department's local time
    assert page.evaluate("window.__notReloaded") is True  # swapped in by htmx, not a page load
    screenshot(page, "duty-on")
    page.goto(f"{dept.live.url}/account")
    expect(state).to_have_text(f"On duty until {clock(until)}")
    button.tap()
    expect(state).to_have_text("Off duty")
    assert on_duty_until(dept, "alice") is None
    page.goto(f"{dept.live.url}/")
    expect(page.locator("#live")).to_have_text("live")
    dept.post_read("6TRJ244")  # off duty: no push, but the feed still shows it live
    expect(page.locator(".alert-card").first).to_contain_text("6TRJ244", timeout=5000)


def test_upgrading_keeps_subscribed_phones_paging_for_one_shift(tmp_path):
    """Phones that got every alert before on-duty existed keep getting them for one default shift
    after the upgrade; users without a subscription start off duty like new users."""
    from server.auth import hash_password
    from server.store.migrations import connect, migrations

    old = connect(tmp_path / "platewatch.db")
    migrations.apply(old, stop_before="m008_on_duty")
    for name in ("sub", "nosub"):
        old.execute("INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, 'officer', 0)",
                    [name, hash_password("long enough")])
    old.execute("INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, created_at) "
                "SELECT id, 'https://push.example/1', 'k', 'a', 0 FROM users WHERE username = 'sub'")
    old.conn.commit()
    before = int(time.time() * 1000)  # as the migration rounds it
    migrations.apply(old)
    until = dict(old.execute("SELECT username, on_duty_until FROM users").fetchall())
    old.close()
    assert until["nosub"] is None
    assert before + 12 * HOUR_MS <= until["sub"] <= time.time() * 1000 + 12 * HOUR_MS
