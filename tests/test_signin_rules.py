"""The CJIS Security Policy sign-in rules (issue 21): a session unused for idle_lock_minutes is
locked (pages send to sign-in and back, the live feed and polls stop and say why), failed
sign-ins lock the account until an admin or the minutes release it, unused accounts are disabled
by the server's job, and common passwords are refused on every path. Each with its audit entry.
The real app on real SQLite; the server's clock is moved by patching time.time, as time passing
would (server/clock.py reads it)."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from contextlib import closing

import httpx
import pytest
from playwright.sync_api import expect

from server import dormant
from server.settings import load_settings
from server.store.db import Database
from tests.browser import screenshot
from tests.browser import sign_in as browser_sign_in
from tests.conftest import LiveServer, make_settings, run_cli, wait_until
from tests.test_web_admin import add_user, web_client

HOTLIST = "plate,state,reason\n8ABC123,CA,Stolen (test)\n"
CHIEF = "chief's own pw"


class Clock:
    """The process's clock, moved forward: the server, and the test's clients, see the same time."""

    def __init__(self, monkeypatch) -> None:
        self.offset_s, real = 0.0, time.time
        monkeypatch.setattr(time, "time", lambda: real() + self.offset_s)

    def advance(self, *, minutes: float = 0, days: float = 0) -> None:
        self.offset_s += minutes * 60 + days * 86_400


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


def audit(settings, action: str) -> list[tuple[str, dict]]:
    with closing(sqlite3.connect(settings.db_path)) as conn:
        rows = conn.execute("SELECT actor, detail FROM audit_log WHERE action = ? ORDER BY id", (action,)).fetchall()
    return [(actor, json.loads(detail)) for actor, detail in rows]


def user_id(settings, name: str) -> int:
    with closing(sqlite3.connect(settings.db_path)) as conn:
        return conn.execute("SELECT id FROM users WHERE username = ?", (name,)).fetchone()[0]


def camera_id(settings, name: str = "main-st") -> int:
    with closing(sqlite3.connect(settings.db_path)) as conn:
        return conn.execute("SELECT id FROM cameras WHERE name = ?", (name,)).fetchone()[0]


def disable_unused_now(settings) -> list[str]:
    """The server's hourly job, run once now."""
    async def run() -> list[str]:
        async with Database(settings.db_path) as db:
            return await dormant.disable_unused(db, settings)

    return asyncio.run(run())


def refusal(page: httpx.Response) -> str:
    """The error a sign-in page shows."""
    return re.search(r'<p class="error" role="alert">(.*?)</p>', page.text).group(1)


def sign_in(url: str, username: str, password: str, target: str = "/") -> httpx.Response:
    with httpx.Client(base_url=url, timeout=30) as client:
        client.get("/login")
        return client.post("/login", data={"username": username, "password": password, "next": target,
                                           "_csrf_token": client.cookies["csrftoken"]})


# --- session lock after inactivity --------------------------------------------------------------

def test_an_idle_session_is_locked_and_sign_in_returns_to_the_page(dept, clock):
    with closing(web_client(dept, "alice", "correct horse")) as alice:
        clock.advance(minutes=20)
        assert alice.get("/search").status_code == 200  # used: the half hour starts again
        clock.advance(minutes=20)
        assert alice.get("/search").status_code == 200
        assert audit(dept.settings, "session.locked") == []
        clock.advance(minutes=31)
        locked = alice.get("/search?plate=8ABC123")
        assert locked.status_code == 302 and locked.headers["location"] == "/login?next=/search%3Fplate%3D8ABC123"
        [(actor, detail)] = audit(dept.settings, "session.locked")
        assert actor == "alice" and detail == {"idle_minutes": 31, "limit_minutes": 30}
        assert alice.get("/search").status_code == 302  # the session is gone, not just paused
        login = alice.get(locked.headers["location"])
        assert 'name="next" value="/search?plate=8ABC123"' in login.text
        again = alice.post("/login", data={"username": "alice", "password": "correct horse",
                                           "next": "/search?plate=8ABC123", "_csrf_token": alice.cookies["csrftoken"]})
        assert again.status_code == 303 and again.headers["location"] == "/search?plate=8ABC123"
    assert len(audit(dept.settings, "session.locked")) == 1


def test_a_poll_keeps_its_screen_stops_and_says_the_session_is_locked(dept, clock):
    with closing(web_client(dept, "alice", "correct horse")) as alice:
        camera = camera_id(dept.settings)
        poll = {"HX-Request": "true", "X-Auto-Refresh": "1", "HX-Current-URL": f"{dept.live.url}/reads?camera={camera}"}
        clock.advance(minutes=25)
        assert alice.get(f"/reads?camera={camera}&refresh=true", headers=poll).status_code == 200
        clock.advance(minutes=6)  # 31 minutes since she last did anything: polls are not use
        stopped = alice.get(f"/reads?camera={camera}&refresh=true", headers=poll)
    assert stopped.status_code == 286 and stopped.headers["hx-reswap"] == "none"  # htmx stops polling on 286
    assert 'hx-swap-oob="afterbegin:#main"' in stopped.text and "Session locked — sign in again" in stopped.text
    assert f'href="/login?next=/reads%3Fcamera%3D{camera}"' in stopped.text
    assert [actor for actor, _ in audit(dept.settings, "session.locked")] == ["alice"]


def test_the_live_feed_stops_with_a_locked_notice(dept, clock, tmp_path):
    dept.hotlist(tmp_path, "stolen", HOTLIST, "--kind", "stolen_vehicle")
    with closing(web_client(dept, "alice", "correct horse")) as alice:
        feed = alice.get("/").text
        assert 'sse-connect="/events" sse-close="locked"' in feed and 'sse-swap="locked"' in feed
        with alice.stream("GET", "/events", timeout=60) as events:
            clock.advance(minutes=31)
            assert dept.post_read("8ABC123").status_code == 201  # an alert: the stream checks before sending
            lines = list(events.iter_lines())  # the server ends the stream after the notice
    assert "event: locked" in lines and "event: alert" not in lines
    [data] = [line for line in lines if line.startswith("data: ")]
    assert "Session locked — sign in again" in data and "8ABC123" not in data
    assert [actor for actor, _ in audit(dept.settings, "session.locked")] == ["alice"]


def test_the_feed_in_chromium_keeps_its_cards_and_says_it_stopped(dept, page, clock, tmp_path):
    dept.hotlist(tmp_path, "stolen", "plate,state,reason\n8ABC123,CA,Stolen (test)\n5DEF456,CA,Stolen (test)\n")
    dept.post_read("8ABC123")
    browser_sign_in(page, dept.live.url)
    expect(page.locator("#live")).to_have_text("live")
    clock.advance(minutes=31)
    dept.post_read("5DEF456")  # the alert the locked feed must not show
    expect(page.locator("#feed-locked")).to_contain_text("Session locked — sign in again")
    expect(page.locator("#live")).to_have_text("stopped")
    expect(page.locator(".alert-card")).to_have_count(1)
    expect(page.locator(".alert-card")).to_contain_text("8ABC123")
    screenshot(page, "feed-session-locked")
    page.locator("#feed-locked").get_by_role("link", name="Sign in").click()
    expect(page).to_have_url(f"{dept.live.url}/login?next=/")


# --- lock-out after failed sign-ins -------------------------------------------------------------

def test_five_failures_lock_the_account_until_an_admin_unlocks_it(dept, capsys):
    url = dept.live.url
    add_user(dept, "chief", "admin", CHIEF)
    for _ in range(5):
        assert sign_in(url, "alice", "wrong guess").status_code == 401
        assert sign_in(url, "nobody", "wrong guess").status_code == 401
    locked, unknown = sign_in(url, "alice", "correct horse"), sign_in(url, "nobody", "correct horse")
    message = "Too many failed sign-ins: sign-in is locked until an administrator unlocks it."
    assert locked.status_code == unknown.status_code == 429
    assert refusal(locked) == refusal(unknown) == message  # the answer says nothing about who exists
    api = dept.http.post("/api/v1/auth/token", json={"username": "alice", "password": "correct horse"})
    assert api.status_code == 429 and message in api.json()["detail"]
    assert [(a, d["user"], d["failures"], d["release"]) for a, d in audit(dept.settings, "user.locked")] == [
        ("system", "alice", 5, "admin"), ("system", "nobody", 5, "admin")]
    with closing(web_client(dept, "chief", CHIEF)) as chief:
        alice = user_id(dept.settings, "alice")
        assert f'action="/users/{alice}/unlock"' in chief.get("/users").text
        unlocked = chief.post(f"/users/{alice}/unlock")
        assert unlocked.status_code == 200 and "alice is unlocked" in unlocked.text
        assert f'action="/users/{alice}/unlock"' not in unlocked.text
        assert "alice is not locked" in chief.post(f"/users/{alice}/unlock").text
    assert audit(dept.settings, "user.unlocked") == [("chief", {"user": "alice"})]
    assert sign_in(url, "alice", "correct horse").status_code == 303
    for _ in range(5):  # the failures before the lock are spent: five new ones lock it again
        assert sign_in(url, "alice", "wrong guess").status_code == 401
    assert sign_in(url, "alice", "correct horse").status_code == 429
    capsys.readouterr()
    assert run_cli(dept.settings, "user", "unlock", "alice") == 0  # the way back for a box's last admin
    assert capsys.readouterr().out.strip() == "user 'alice' unlocked"
    assert [actor for actor, _ in audit(dept.settings, "user.unlocked")] == ["chief", "cli"]
    assert sign_in(url, "alice", "correct horse").status_code == 303


def test_a_lock_released_by_minutes_ends_by_itself(tmp_path, clock, capsys):
    settings = make_settings(tmp_path / "data", lockout_release=30)
    assert run_cli(settings, "user", "add", "alice", "--role", "officer", "--password-stdin",
                   stdin="correct horse\n") == 0
    server = LiveServer(settings).start()
    try:
        for _ in range(5):
            assert sign_in(server.url, "alice", "wrong guess").status_code == 401
        clock.advance(minutes=29)
        still = sign_in(server.url, "alice", "correct horse")
        assert still.status_code == 429 and "Try again in 30 minutes" in still.text
        clock.advance(minutes=2)
        assert sign_in(server.url, "alice", "correct horse").status_code == 303
    finally:
        server.stop()
    [(_, detail)] = audit(settings, "user.locked")
    assert detail["release"] == "30 minutes" and detail["window_minutes"] == 15
    assert audit(settings, "user.unlocked") == []  # nobody released it: the time ran out


# --- accounts unused for 90 days --------------------------------------------------------------

def test_unused_accounts_are_disabled_but_the_last_admin_and_an_admin_enables_them(dept, clock, caplog):
    add_user(dept, "chief", "admin", CHIEF)
    dept.live.stop()
    clock.advance(days=91)  # nobody signed in for 91 days; the job runs when the server starts
    server = LiveServer(make_settings(dept.settings.data_dir)).start()
    try:
        assert wait_until(lambda: audit(dept.settings, "user.disabled"), timeout=20)
        [(actor, detail)] = audit(dept.settings, "user.disabled")
        assert actor == "system" and detail["user"] == "alice" and detail["reason"] == "inactivity"
        assert detail["unused_days"] == 91
        assert "chief, the last enabled admin, has not signed in for 91 days: kept enabled" in caplog.text
        assert sign_in(server.url, "alice", "correct horse").status_code == 401
        with closing(httpx.Client(base_url=server.url, timeout=30)) as client:
            client.get("/login")
            assert client.post("/login", data={"username": "chief", "password": CHIEF,
                                               "_csrf_token": client.cookies["csrftoken"]}).status_code == 303
            client.headers["x-csrftoken"] = client.cookies["csrftoken"]
            enabled = client.post(f"/users/{user_id(dept.settings, 'alice')}/enable")
            assert enabled.status_code == 200 and "alice is enabled" in enabled.text
        assert audit(dept.settings, "user.enable") == [("chief", {"user": "alice"})]
        assert sign_in(server.url, "alice", "correct horse").status_code == 303
        clock.advance(days=89)
        assert disable_unused_now(dept.settings) == []  # enabled and signed in: 90 days from then
        clock.advance(days=2)
        assert disable_unused_now(dept.settings) == ["alice"]
    finally:
        server.stop()


# --- common passwords ---------------------------------------------------------------------------

COMMON = "is on the list of the most common passwords"


def test_common_passwords_are_refused_on_every_path_and_audited(dept):
    add_user(dept, "chief", "admin", CHIEF)
    alice = user_id(dept.settings, "alice")
    with closing(web_client(dept, "chief", CHIEF)) as chief:
        added = chief.post("/users", data={"username": "dave", "role": "officer", "password": "Password123"})
        assert added.status_code == 422 and f"The initial password {COMMON}" in added.text
        reset = chief.post(f"/users/{alice}/password", data={"password": "QWERTY123"})
        assert reset.status_code == 422 and f"The temporary password for alice {COMMON}" in reset.text
    with closing(web_client(dept, "alice", "correct horse")) as own:
        changed = own.post("/account/password", data={"current_password": "correct horse",
                                                      "new_password": "iloveyou1", "confirm_password": "iloveyou1"})
        assert changed.status_code == 422 and f"The new password {COMMON}" in changed.text
    with pytest.raises(SystemExit, match=f"error: a password {COMMON}"):
        run_cli(dept.settings, "user", "add", "erin", "--role", "officer", "--password-stdin", stdin="Sunshine2024\n")
    with pytest.raises(SystemExit, match=f"error: a password {COMMON}"):
        run_cli(dept.settings, "user", "password", "alice", "--password-stdin", stdin="letmein123\n")
    refused = [(actor, d["user"], d["via"]) for actor, d in audit(dept.settings, "password.refused")]
    assert refused == [("chief", "dave", "web"), ("chief", "alice", "web"), ("alice", "alice", "web"),
                       ("cli", "erin", "cli"), ("cli", "alice", "cli")]
    assert all(COMMON in d["rule"] for _, d in audit(dept.settings, "password.refused"))
    assert audit(dept.settings, "password.reset") == audit(dept.settings, "password.changed") == []
    with sqlite3.connect(dept.settings.db_path) as conn:
        assert conn.execute("SELECT count(*) FROM users WHERE username IN ('dave', 'erin')").fetchone() == (0,)
    assert sign_in(dept.live.url, "alice", "correct horse").status_code == 303  # unchanged


# --- settings -----------------------------------------------------------------------------------

def test_the_sign_in_settings_are_checked_by_name(tmp_path):
    settings = load_settings(tmp_path, env={"PLATEWATCH_LOCKOUT_RELEASE": "45", "PLATEWATCH_IDLE_LOCK_MINUTES": "15"})
    assert settings.lockout.release_ms == 45 * 60_000 and settings.idle_lock_ms == 15 * 60_000
    assert load_settings(tmp_path, env={}).lockout.release_ms is None  # admin by default
    for env, named in [({"PLATEWATCH_LOCKOUT_RELEASE": "never"}, "lockout_release"),
                       ({"PLATEWATCH_IDLE_LOCK_MINUTES": "0"}, "idle_lock_minutes"),
                       ({"PLATEWATCH_DISABLE_UNUSED_DAYS": "nan"}, "disable_unused_days"),
                       ({"PLATEWATCH_LOCKOUT_ATTEMPTS": "0"}, "lockout_attempts")]:
        with pytest.raises(Exception, match=named):
            load_settings(tmp_path, env=env)
    (tmp_path / "platewatch.toml").write_text("idle_lock_minute = 10\n")
    with pytest.raises(Exception, match="idle_lock_minute"):
        load_settings(tmp_path, env={})
