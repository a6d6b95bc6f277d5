"""Anyone signed in changes their own password on /account, after typing the current one again.
Real HTTP against the real app and SQLite, and once in real Chromium on a phone-sized screen."""

from __future__ import annotations

import html
import json
from contextlib import closing

import httpx
from playwright.sync_api import expect

from server.auth import MAX_FAILED_SIGNINS, MIN_PASSWORD
from tests.browser import screenshot, sign_in
from tests.test_mfa import audit, client_for, code_at, code_step, enrolled_alice, password_step, settled_step, signed_in
from tests.test_web_a11y import SIZES_JS
from tests.test_web_admin import db_rows, web_client

OLD, NEW = "correct horse", "battery staple 42"
FORM_TARGETS = "#password input:not([type=hidden]), #password button"


def change(client: httpx.Client, current: str, new: str, confirm: str | None = None) -> httpx.Response:
    return client.post("/account/password", data={"current_password": current, "new_password": new,
                                                  "confirm_password": new if confirm is None else confirm})


def password_hash(dept) -> str:
    [(hashed,)] = db_rows(dept, "SELECT password_hash FROM users WHERE username = 'alice'")
    return hashed


def signs_in_with(dept, password: str) -> int:
    with closing(client_for(dept.live.url)) as client:
        return password_step(client, "alice", password).status_code


def alice_sessions(dept) -> int:
    [(count,)] = db_rows(dept, "SELECT count(*) FROM sessions JOIN users u ON u.id = user_id WHERE u.username = 'alice'")
    return count


def everything_logged(dept) -> str:
    return json.dumps(db_rows(dept, "SELECT actor, action, detail FROM audit_log"))


def test_changing_the_password_signs_in_with_the_new_one_and_ends_other_sessions(dept):
    with closing(web_client(dept, "alice", OLD)) as desk, closing(web_client(dept, "alice", OLD)) as phone:
        account = phone.get("/account").text
        assert 'action="/account/password"' in account and 'name="_csrf_token"' in account
        sessions = alice_sessions(dept)  # two browsers and the Department's API token
        done = change(phone, OLD, NEW)
        assert done.status_code == 200 and "Your password is changed" in done.text
        assert f"{sessions - 1} other sessions signed out." in done.text
        assert signed_in(phone) and not signed_in(desk)
        assert httpx.get(f"{dept.live.url}/api/v1/alerts", headers=dept.user_headers).status_code == 401
    assert sessions == 3 and signs_in_with(dept, OLD) == 401 and signs_in_with(dept, NEW) == 303
    token = httpx.post(f"{dept.live.url}/api/v1/auth/token", json={"username": "alice", "password": NEW})
    assert token.status_code == 200
    assert password_hash(dept).startswith("$argon2id$") and NEW not in password_hash(dept)
    assert audit(dept, "password.changed") == [("alice", {"via": "web", "sessions_ended": sessions - 1})]
    logged = everything_logged(dept)
    assert NEW not in logged and OLD not in logged


def test_a_sign_in_half_done_with_the_old_password_ends_too(dept):
    """Someone with the old password, waiting at the code step, can't finish after the change."""
    step = settled_step()
    secret, codes = enrolled_alice(dept, step - 1)
    with closing(client_for(dept.live.url)) as stranger, closing(client_for(dept.live.url)) as alice:
        assert "Code from your app" in password_step(stranger, "alice", OLD).text
        assert password_step(alice, "alice", OLD, otp=codes[0]).status_code == 303 and signed_in(alice)
        assert change(alice, OLD, NEW).status_code == 200
        late = code_step(stranger, code_at(secret, step))
        assert late.status_code == 401 and "timed out" in late.text and not signed_in(stranger)
        assert signed_in(alice)
    assert db_rows(dept, "SELECT count(*) FROM signin_challenges") == [(0,)]


def test_a_wrong_current_password_is_refused_counted_and_locks_out_like_signing_in(dept):
    before = password_hash(dept)
    with closing(web_client(dept, "alice", OLD)) as alice:
        for attempt in range(MAX_FAILED_SIGNINS):
            refused = change(alice, f"wrong horse {attempt}", NEW)
            assert refused.status_code == 401 and "That password is wrong" in refused.text
            assert 'role="alert"' in refused.text
        locked = change(alice, OLD, NEW)  # right, but too late
        assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
        assert signed_in(alice)
    assert signs_in_with(dept, OLD) == 429  # the same lock-out as the sign-in page
    assert password_hash(dept) == before and audit(dept, "password.changed") == []
    failed = audit(dept, "auth.failed")
    assert failed == [("alice", {"via": "web", "purpose": "password.change"})] * MAX_FAILED_SIGNINS
    assert "wrong horse" not in everything_logged(dept) and NEW not in everything_logged(dept)


def test_new_passwords_that_differ_are_refused_and_not_counted(dept):
    before = password_hash(dept)
    with closing(web_client(dept, "alice", OLD)) as alice:
        refused = change(alice, OLD, NEW, confirm=NEW + "!")
        assert refused.status_code == 422 and "The two new passwords don't match" in html.unescape(refused.text)
        assert 'role="alert"' in refused.text
        missing = change(alice, OLD, "", confirm="")
        assert missing.status_code == 422 and "Type your current password, then the new one twice" in missing.text
    assert password_hash(dept) == before and signs_in_with(dept, OLD) == 303
    assert audit(dept, "auth.failed") == [] and audit(dept, "password.changed") == []


def test_the_new_password_follows_the_same_rule_as_a_new_users(dept):
    before = password_hash(dept)
    short, just_enough = "x" * (MIN_PASSWORD - 1), "y" * MIN_PASSWORD
    with closing(web_client(dept, "alice", OLD)) as alice:
        refused = change(alice, OLD, short)
        assert refused.status_code == 422
        assert f"The new password needs at least {MIN_PASSWORD} characters." in refused.text
        assert password_hash(dept) == before
        assert change(alice, OLD, just_enough).status_code == 200  # the rule's own boundary
    assert signs_in_with(dept, just_enough) == 303 and signs_in_with(dept, short) == 401


def test_the_same_password_again_is_refused_but_only_once_the_current_one_is_right(dept):
    before = password_hash(dept)
    with closing(web_client(dept, "alice", OLD)) as alice:
        guess = change(alice, "not my password", "not my password")  # no hint that a guess is right
        assert guess.status_code == 401 and "same as your current one" not in guess.text
        same = change(alice, OLD, OLD)
        assert same.status_code == 422 and "The new password is the same as your current one" in same.text
    assert password_hash(dept) == before and audit(dept, "password.changed") == []
    assert [d["purpose"] for _, d in audit(dept, "auth.failed")] == ["password.change"]


def test_without_the_csrf_token_or_a_session_nothing_changes(dept):
    before = password_hash(dept)
    with closing(web_client(dept, "alice", OLD)) as alice:
        del alice.headers["x-csrftoken"]
        assert change(alice, OLD, NEW).status_code == 403
        alice.headers["x-csrftoken"] = "forged"
        assert change(alice, OLD, NEW).status_code == 403
        assert signed_in(alice)
    with closing(client_for(dept.live.url)) as anonymous:  # a CSRF token, but no session
        refused = change(anonymous, OLD, NEW)
        assert refused.status_code == 302 and refused.headers["location"].startswith("/login")
    assert password_hash(dept) == before and audit(dept, "password.changed") == []


def test_changing_the_password_in_chromium_on_a_phone(dept, page):
    sign_in(page, dept.live.url)
    page.get_by_role("link", name="Account").click()
    expect(page.get_by_role("heading", name="Change password")).to_be_visible()
    targets = page.evaluate(SIZES_JS, FORM_TARGETS)
    assert len(targets) == 4 and [t for t in targets if t["width"] < 44 or t["height"] < 44] == []
    assert page.get_by_label("New password", exact=True).get_attribute("autocomplete") == "new-password"
    page.get_by_label("Current password").fill(OLD)
    page.get_by_label("New password", exact=True).fill(NEW)
    page.get_by_label("New password again").fill(NEW + " typo")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_contain_text("don't match")
    page.get_by_label("Current password").fill(OLD)
    page.get_by_label("New password", exact=True).fill(NEW)
    page.get_by_label("New password again").fill(NEW)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password is changed")
    screenshot(page, "account-password-changed")
    page.get_by_role("button", name="Sign out alice").click()
    page.wait_for_url(f"{dept.live.url}/login")
    sign_in(page, dept.live.url, "alice", NEW)
    expect(page.get_by_role("button", name="Sign out alice")).to_be_visible()
