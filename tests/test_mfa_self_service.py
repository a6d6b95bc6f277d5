"""Officers manage their own two-factor sign-in on /account: new recovery codes, and turning it off,
each only after proving again who they are. Real HTTP against the real app and SQLite, and once in
real Chromium; codes are computed with pyotp as in test_mfa.py."""

from __future__ import annotations

import json
from contextlib import closing

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser import screenshot
from tests.conftest import LiveServer, make_settings, run_cli
from tests.test_mfa import (RECOVERY, SECRET, audit, client_for, code_at, enrolled_alice, password_step, settled_step,
                            signed_in, wrong_code)
from tests.test_web_a11y import SIZES_JS, TARGETS
from tests.test_web_admin import db_rows

ALICE = ("alice", "correct horse")


def signed_in_with(url: str, code: str, user: tuple[str, str] = ALICE) -> httpx.Client:
    """A browser-like client signed in with the password and `code` in one form."""
    client = client_for(url)
    done = password_step(client, *user, otp=code)
    assert done.status_code == 303 and signed_in(client), done.text
    return client


def code_hashes(dept) -> list[tuple]:
    return db_rows(dept, "SELECT code_hash, used_at FROM recovery_codes ORDER BY code_hash")


def test_new_recovery_codes_with_an_app_code_replace_the_old_ones(dept):
    step = settled_step()
    secret, old_codes = enrolled_alice(dept, step - 1)
    with closing(signed_in_with(dept.live.url, code_at(secret, step))) as alice:
        account = alice.get("/account").text
        assert "10 recovery codes left" in account and 'action="/account/mfa/codes"' in account
        renewed = alice.post("/account/mfa/codes", data={"otp": code_at(secret, step + 1)})
        assert renewed.status_code == 200 and renewed.headers["cache-control"] == "no-store"
        assert "New recovery codes" in renewed.text and "old recovery codes no longer work" in renewed.text
        new_codes = RECOVERY.findall(renewed.text)
        assert len(set(new_codes)) == 10 and not set(new_codes) & set(old_codes)
        account = alice.get("/account").text
        assert "10 recovery codes left" in account and not any(c in account for c in new_codes)  # shown once
        replayed = alice.post("/account/mfa/codes", data={"otp": code_at(secret, step + 1)})
        assert replayed.status_code == 401 and "already used" in replayed.text

    def sign_in_with(code: str) -> int:
        with closing(client_for(dept.live.url)) as client:
            return password_step(client, *ALICE, otp=code).status_code

    assert sign_in_with(old_codes[0]) == 401
    assert sign_in_with(new_codes[0]) == 303
    assert sign_in_with(new_codes[0]) == 401  # each new code works once
    assert db_rows(dept, "SELECT count(*), count(used_at) FROM recovery_codes") == [(10, 1)]
    assert audit(dept, "mfa.codes.renewed") == [("alice", {"via": "web", "reauth": "totp", "recovery_codes": 10})]
    everything = json.dumps(db_rows(dept, "SELECT detail FROM audit_log"))
    assert not any(c in everything for c in old_codes + new_codes) and secret not in everything


def test_new_recovery_codes_with_the_password_instead(dept):
    step = settled_step()
    secret, _ = enrolled_alice(dept, step)
    with closing(signed_in_with(dept.live.url, code_at(secret, step + 1))) as alice:
        renewed = alice.post("/account/mfa/codes", data={"password": "correct horse"})
        assert renewed.status_code == 200 and len(RECOVERY.findall(renewed.text)) == 10
    assert [d["reauth"] for _, d in audit(dept, "mfa.codes.renewed")] == ["password"]


def test_wrong_codes_or_password_keep_the_old_codes_and_lead_to_the_sign_in_lock_out(dept):
    step = settled_step()
    secret, old_codes = enrolled_alice(dept, step - 1)
    with closing(signed_in_with(dept.live.url, code_at(secret, step))) as alice:
        before = code_hashes(dept)
        bad = wrong_code(secret, step)
        for _ in range(3):
            refused = alice.post("/account/mfa/codes", data={"otp": bad})
            assert refused.status_code == 401 and "wrong or was already used" in refused.text
        assert alice.post("/account/mfa/codes", data={"otp": old_codes[0]}).status_code == 401  # the app's code only
        wrong_password = alice.post("/account/mfa/codes", data={"password": "wrong horse"})
        assert wrong_password.status_code == 401 and "That password is wrong" in wrong_password.text
        locked = alice.post("/account/mfa/codes", data={"otp": code_at(secret, step + 1)})  # right, but locked out
        assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
        assert code_hashes(dept) == before and signed_in(alice)
    with closing(client_for(dept.live.url)) as other:  # the same lock-out as signing in
        assert password_step(other, *ALICE, otp=code_at(secret, step + 1)).status_code == 429
    failed = audit(dept, "auth.failed")
    assert [(d.get("factor"), d.get("reason"), d["purpose"]) for _, d in failed] == [
        ("otp", "wrong", "mfa.codes")] * 4 + [(None, None, "mfa.codes")]
    assert audit(dept, "mfa.codes.renewed") == [] and old_codes[0] not in json.dumps(failed)


def test_turning_off_with_password_and_code_signs_out_everywhere_else(dept):
    step = settled_step()
    secret, codes = enrolled_alice(dept, step - 1)
    with closing(signed_in_with(dept.live.url, codes[0])) as desk, \
            closing(signed_in_with(dept.live.url, code_at(secret, step))) as phone:
        api = httpx.post(f"{dept.live.url}/api/v1/auth/token",
                         json={"username": "alice", "password": "correct horse", "otp": codes[1]})
        bearer = {"Authorization": f"Bearer {api.json()['token']}"}
        [(sessions,)] = db_rows(dept, "SELECT count(*) FROM sessions JOIN users u ON u.id = user_id "
                                      "WHERE u.username = 'alice'")
        off = phone.post("/account/mfa/off", data={"password": "correct horse", "otp": code_at(secret, step + 1)})
        assert off.status_code == 200 and "Two-factor sign-in is off" in off.text
        assert "Set up an authenticator app" in off.text
        assert signed_in(phone) and not signed_in(desk)
        assert httpx.get(f"{dept.live.url}/api/v1/alerts", headers=bearer).status_code == 401
        assert httpx.get(f"{dept.live.url}/api/v1/alerts", headers=dept.user_headers).status_code == 401
    assert db_rows(dept, "SELECT totp_secret, totp_last_step, totp_enrolled_at FROM users WHERE username = 'alice'") == [
        (None, None, None)]
    assert db_rows(dept, "SELECT count(*) FROM recovery_codes") == [(0,)]
    with closing(client_for(dept.live.url)) as again:
        assert password_step(again, *ALICE).headers["location"] == "/" and signed_in(again)  # the password alone
    assert sessions >= 4 and audit(dept, "mfa.disabled") == [
        ("alice", {"user": "alice", "via": "web", "reauth": "password+totp", "sessions_ended": sessions - 1})]


def test_turning_off_is_refused_with_a_wrong_password_or_a_replayed_code(dept):
    step = settled_step()
    secret, _ = enrolled_alice(dept, step - 1)
    with closing(signed_in_with(dept.live.url, code_at(secret, step))) as alice:
        wrong = alice.post("/account/mfa/off", data={"password": "wrong horse", "otp": code_at(secret, step + 1)})
        assert wrong.status_code == 401 and "That password is wrong" in wrong.text
        assert db_rows(dept, "SELECT totp_last_step FROM users WHERE username = 'alice'") == [(step,)]  # code not spent
        replayed = alice.post("/account/mfa/off", data={"password": "correct horse", "otp": code_at(secret, step)})
        assert replayed.status_code == 401 and "already used" in replayed.text
        assert db_rows(dept, "SELECT totp_secret FROM users WHERE username = 'alice'") == [(secret,)]
        assert audit(dept, "mfa.disabled") == [] and signed_in(alice)
        done = alice.post("/account/mfa/off", data={"password": "correct horse", "otp": code_at(secret, step + 1)})
        assert done.status_code == 200 and "Two-factor sign-in is off" in done.text
    assert [(d.get("factor"), d.get("reason"), d["purpose"]) for _, d in audit(dept, "auth.failed")] == [
        (None, None, "mfa.off"), ("otp", "reused", "mfa.off")]


def test_turning_off_with_a_recovery_code(dept):
    step = settled_step()
    secret, codes = enrolled_alice(dept, step)
    with closing(signed_in_with(dept.live.url, code_at(secret, step + 1))) as alice:
        off = alice.post("/account/mfa/off", data={"password": "correct horse", "otp": codes[3]})
        assert off.status_code == 200 and "Two-factor sign-in is off" in off.text
    assert [d["reauth"] for _, d in audit(dept, "mfa.disabled")] == ["password+recovery"]


@pytest.fixture
def strict(tmp_path):
    """A department whose supervisors must use two-factor sign-in."""
    server = LiveServer(make_settings(tmp_path / "strict", mfa_required_roles=("supervisor",))).start()
    yield server
    server.stop()


def test_a_role_that_must_use_two_factor_cannot_turn_it_off_but_can_renew_codes(strict):
    run_cli(strict.settings, "user", "add", "sam", "--role", "supervisor", "--password-stdin", stdin="long enough pw\n")
    step = settled_step()
    with closing(client_for(strict.url)) as sam:
        assert password_step(sam, "sam", "long enough pw").headers["location"] == "/account/mfa"
        secret = SECRET.search(sam.get("/account/mfa").text).group(1).replace(" ", "")
        assert sam.post("/account/mfa", data={"otp": code_at(secret, step - 1)}).status_code == 200
        account = sam.get("/account").text
        assert "can't be turned off" in account and 'action="/account/mfa/off"' not in account
        off = sam.post("/account/mfa/off", data={"password": "long enough pw", "otp": code_at(secret, step)})
        assert off.status_code == 403 and "Your role (supervisor) must use two-factor sign-in" in off.text
        [(still,)] = db_rows(strict, "SELECT totp_secret FROM users WHERE username = 'sam'")
        assert still == secret and signed_in(sam)
        renewed = sam.post("/account/mfa/codes", data={"otp": code_at(secret, step)})  # that code was not spent
        assert renewed.status_code == 200 and len(RECOVERY.findall(renewed.text)) == 10
    assert db_rows(strict, "SELECT count(*) FROM audit_log WHERE action IN ('mfa.disabled', 'auth.failed')") == [(0,)]


def test_new_recovery_codes_in_chromium(dept, page):
    step = settled_step(margin=20)
    secret, old_codes = enrolled_alice(dept, step - 1)
    page.goto(f"{dept.live.url}/login")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Code from your app").fill(code_at(secret, step))
    page.get_by_role("button", name="Verify and sign in").click()
    page.wait_for_url(f"{dept.live.url}/")
    page.get_by_role("link", name="Account").click()
    expect(page.get_by_test_id("codes-left")).to_have_text("10 recovery codes left.")
    small = [t for t in page.evaluate(SIZES_JS, TARGETS) if t["width"] < 44 or t["height"] < 44]
    assert small == []
    screenshot(page, "mfa-account")
    page.get_by_label("Code from your app", exact=True).fill(code_at(secret, step + 1))
    page.get_by_role("button", name="Get new recovery codes", exact=True).click()
    expect(page.get_by_role("heading", name="New recovery codes")).to_be_visible()
    codes = page.locator("#recovery-codes li")
    expect(codes).to_have_count(10)
    assert not set(codes.all_inner_texts()) & set(old_codes)
    screenshot(page, "mfa-new-codes")
    page.get_by_role("link", name="Continue").click()
    page.wait_for_url(f"{dept.live.url}/account")
    expect(page.get_by_test_id("codes-left")).to_have_text("10 recovery codes left.")
