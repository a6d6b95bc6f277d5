"""A password an admin chose (a reset, or a new user's first on /users) must be replaced before
anything else: every page leads to /account until the user chooses their own, and the API gives
no token. Real HTTP against the real app and SQLite, the real CLI, and once in real Chromium."""

from __future__ import annotations

import html
import sqlite3
from contextlib import closing

import httpx
import pytest
from playwright.sync_api import expect

from platewatch.demo import DEMO_PASSWORD, DEMO_USER, prepare
from tests.browser import PHONE, screenshot
from tests.conftest import LiveServer, make_settings, run, run_cli
from tests.test_mfa import audit, client_for, enrol, password_step, settled_step
from tests.test_web_admin import add_user, db_rows, web_client

NOTICE = "Your password was set by an administrator. Choose your own to continue."
TEMPORARY, OWN = "temporary 7781", "sam's own choice"
PW = "long enough pw"  # tests/test_web_admin.add_user's password
# Pages a supervisor may see, which lead to /account while the password is the admin's.
PAGES = ["/", "/search", "/reads", "/dashboard", "/hotlists", "/cameras", "/holds", "/audit"]


def flagged(server, name: str) -> int:
    [(flag,)] = db_rows(server, "SELECT must_change_password FROM users WHERE username = ?", name)
    return flag


def user_id(server, name: str) -> int:
    [(found,)] = db_rows(server, "SELECT id FROM users WHERE username = ?", name)
    return found


def notice_shown(page_html: str) -> bool:
    return NOTICE in " ".join(html.unescape(page_html).split())


def change(client: httpx.Client, current: str, new: str) -> httpx.Response:
    return client.post("/account/password", data={"current_password": current, "new_password": new,
                                                  "confirm_password": new})


def token(server, name: str, password: str) -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1/auth/token", json={"username": name, "password": password})


def reset_sam(dept) -> None:
    """sam (a supervisor, from the CLI) gets a temporary password from chief, an admin."""
    add_user(dept, "sam", "supervisor")
    add_user(dept, "chief", "admin")
    with closing(web_client(dept, "chief", PW)) as chief:
        done = chief.post(f"/users/{user_id(dept, 'sam')}/password", data={"password": TEMPORARY})
        assert done.status_code == 200 and "Temporary password set for sam" in done.text


def test_after_a_reset_every_page_leads_to_the_account_page_with_the_notice(dept):
    reset_sam(dept)
    assert flagged(dept, "sam") == 1
    assert audit(dept, "password.reset") == [("chief", {"user": "sam", "sessions_ended": 0, "must_change": True})]
    with closing(client_for(dept.live.url)) as sam:
        landed = password_step(sam, "sam", TEMPORARY, next="/search")
        assert landed.status_code == 303 and "pw_session" in sam.cookies  # signed in, but only for /account
        final = sam.get(landed.headers["location"], follow_redirects=True)
        assert str(final.url).endswith("/account") and notice_shown(final.text)
        assert 'action="/account/password"' in final.text and 'action="/duty"' not in final.text
        for path in PAGES:
            sent = sam.get(path, follow_redirects=False)
            assert (sent.status_code, sent.headers.get("location")) == (302, "/account"), path
        htmx = sam.get("/search", headers={"hx-request": "true"}, follow_redirects=False)
        assert htmx.status_code == 401 and htmx.headers["hx-redirect"] == "/account"
        assert sam.post("/duty", data={"on": "1"}, follow_redirects=False).headers["location"] == "/account"
        assert sam.get("/static/app.css").status_code == 200
        assert sam.get("/users", follow_redirects=False).status_code == 403  # the role check comes first
        out = sam.post("/logout", follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert sam.get("/account", follow_redirects=False).headers["location"].startswith("/login")
    assert db_rows(dept, "SELECT on_duty_until FROM users WHERE username = 'sam'") == [(None,)]
    assert flagged(dept, "sam") == 1  # signing in and out changes nothing


def test_changing_the_password_clears_the_flag_and_everything_works(dept):
    reset_sam(dept)
    with closing(client_for(dept.live.url)) as sam:
        password_step(sam, "sam", TEMPORARY)
        wrong = change(sam, "not the temporary one", OWN)
        assert wrong.status_code == 401 and notice_shown(wrong.text) and flagged(dept, "sam") == 1
        done = change(sam, TEMPORARY, OWN)
        assert done.status_code == 200 and "Your password is changed" in done.text
        assert not notice_shown(done.text) and 'action="/duty"' in done.text
        assert flagged(dept, "sam") == 0
        for path in PAGES:
            assert sam.get(path, follow_redirects=False).status_code == 200, path
        assert not notice_shown(sam.get("/account").text)
    assert [d for _, d in audit(dept, "password.changed")] == [{"via": "web", "sessions_ended": 0}]
    assert token(dept.live, "sam", OWN).status_code == 200


def test_the_api_gives_no_token_until_the_password_is_changed(dept):
    add_user(dept, "chief", "admin")
    with closing(web_client(dept, "chief", PW)) as chief:
        chief.post(f"/users/{user_id(dept, 'alice')}/password", data={"password": TEMPORARY})
    assert httpx.get(f"{dept.live.url}/api/v1/alerts", headers=dept.user_headers).status_code == 401
    refused = token(dept.live, "alice", TEMPORARY)
    assert refused.status_code == 403 and "change it on the Account page" in refused.json()["detail"]
    assert token(dept.live, "alice", "a wrong guess").status_code == 401  # no hint without the password
    assert [a for a, _ in audit(dept, "auth.token")] == ["alice"]  # only the Department's, at the start
    with closing(client_for(dept.live.url)) as alice:
        password_step(alice, "alice", TEMPORARY)
        assert change(alice, TEMPORARY, OWN).status_code == 200
    fresh = token(dept.live, "alice", OWN)
    assert fresh.status_code == 200, fresh.text
    bearer = {"Authorization": f"Bearer {fresh.json()['token']}"}
    assert httpx.get(f"{dept.live.url}/api/v1/alerts", headers=bearer).status_code == 200


def test_a_user_added_on_the_users_page_is_flagged_but_not_one_from_the_cli(dept):
    add_user(dept, "chief", "admin")
    with closing(web_client(dept, "chief", PW)) as chief:
        added = chief.post("/users", data={"username": "olive", "role": "officer", "password": "olive's password"})
        assert added.status_code == 200 and "They choose their own password when they first sign in" in added.text
        rows = dict(part.split('">', 1) for part in added.text.split('<tr id="user-')[1:])
        badge = '">temporary password</span>'  # not the "Set a temporary password for …" every other row has
        assert badge in rows["olive"] and badge not in rows["alice"] and badge not in rows["chief"]
        assert chief.get("/", follow_redirects=False).status_code == 200  # the CLI's admin is not held up
    assert [flagged(dept, name) for name in ("alice", "chief", "olive")] == [0, 0, 1]
    assert audit(dept, "user.add") == [
        ("cli", {"user": "alice", "role": "officer"}), ("cli", {"user": "chief", "role": "admin"}),
        ("chief", {"user": "olive", "role": "officer", "must_change": True})]
    with closing(client_for(dept.live.url)) as olive:
        password_step(olive, "olive", "olive's password")
        assert olive.get("/", follow_redirects=False).headers["location"] == "/account"
    assert token(dept.live, "olive", "olive's password").status_code == 403


def test_the_demo_user_signs_in_with_its_known_password(dept):
    run(prepare(dept.settings))  # what `platewatch demo` does before serving
    assert flagged(dept, DEMO_USER) == 0
    with closing(client_for(dept.live.url)) as demo:
        assert password_step(demo, DEMO_USER, DEMO_PASSWORD).headers["location"] == "/"
        assert demo.get("/", follow_redirects=False).status_code == 200


@pytest.fixture
def strict(tmp_path):
    """A department whose supervisors must use two-factor sign-in, with chief (an admin) and sam
    (a supervisor, no authenticator yet) from the CLI."""
    server = LiveServer(make_settings(tmp_path / "strict", mfa_required_roles=("supervisor",))).start()
    for name, role in (("chief", "admin"), ("sam", "supervisor")):
        run_cli(server.settings, "user", "add", name, "--role", role, "--password-stdin", stdin=f"{PW}\n")
    yield server
    server.stop()


def test_a_user_who_must_enrol_and_change_the_password_does_both(strict):
    with closing(client_for(strict.url)) as chief:
        password_step(chief, "chief", PW)
        assert chief.post(f"/users/{user_id(strict, 'sam')}/password", data={"password": TEMPORARY}).status_code == 200
    assert token(strict, "sam", TEMPORARY).status_code == 403
    step = settled_step()
    with closing(client_for(strict.url)) as sam:
        sent = password_step(sam, "sam", TEMPORARY, next="/hotlists")
        assert sent.headers["location"] == "/account/mfa" and "pw_session" not in sam.cookies  # enrol first
        enrol(sam, step)
        assert sam.get("/hotlists", follow_redirects=False).headers["location"] == "/account"  # then the password
        assert notice_shown(sam.get("/account").text)
        assert change(sam, TEMPORARY, OWN).status_code == 200
        assert sam.get("/hotlists", follow_redirects=False).status_code == 200
    assert flagged(strict, "sam") == 0
    assert db_rows(strict, "SELECT totp_secret IS NOT NULL FROM users WHERE username = 'sam'") == [(1,)]


def test_a_session_owing_both_is_sent_to_enrol_before_the_password(strict):
    """olive, added on /users (so flagged), signs in as an officer and is then promoted to a role
    that must use two-factor sign-in: /account needs that too, so enrolment comes first."""
    with closing(client_for(strict.url)) as chief, closing(client_for(strict.url)) as olive:
        password_step(chief, "chief", PW)
        chief.post("/users", data={"username": "olive", "role": "officer", "password": "olive's password"})
        password_step(olive, "olive", "olive's password")
        assert olive.get("/", follow_redirects=False).headers["location"] == "/account"
        chief.post(f"/users/{user_id(strict, 'olive')}/role", data={"role": "supervisor"})
        for path in ("/", "/account"):
            assert olive.get(path, follow_redirects=False).headers["location"] == "/account/mfa", path
        enrol(olive, settled_step())
        assert olive.get("/", follow_redirects=False).headers["location"] == "/account"
        assert change(olive, "olive's password", OWN).status_code == 200
        assert olive.get("/").status_code == 200
    assert flagged(strict, "olive") == 0


def test_reset_then_forced_change_then_alerts_in_chromium_on_a_phone(dept, page):
    assert run_cli(dept.settings, "user", "password", "alice", "--password-stdin", stdin=f"{TEMPORARY}\n") == 0
    assert page.viewport_size == PHONE
    page.goto(f"{dept.live.url}/login")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(TEMPORARY)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{dept.live.url}/account")
    expect(page.get_by_role("note")).to_have_text(NOTICE)
    with page.expect_navigation():
        page.get_by_role("link", name="Alerts").click()
    assert page.url == f"{dept.live.url}/account"  # nothing else opens yet
    expect(page.get_by_role("note")).to_be_visible()
    screenshot(page, "account-must-change")
    page.get_by_label("Current password").fill(TEMPORARY)
    page.get_by_label("New password", exact=True).fill(OWN)
    page.get_by_label("New password again").fill(OWN)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password is changed")
    expect(page.get_by_role("note")).to_have_count(0)
    page.get_by_role("link", name="Alerts").click()
    page.wait_for_url(f"{dept.live.url}/")
    expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    with sqlite3.connect(dept.settings.db_path) as conn:
        assert conn.execute("SELECT must_change_password FROM users WHERE username = 'alice'").fetchall() == [(0,)]
