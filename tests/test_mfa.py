"""Two-factor sign-in with authenticator apps (TOTP, RFC 6238), over real HTTP against the real
app and SQLite, and once in real Chromium. Codes are computed here with pyotp from the secret the
enrolment page shows, as a phone's app would."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from contextlib import closing

from typing import get_args, get_type_hints

import httpx
import msgspec
import pyotp
import pytest
from playwright.sync_api import expect

from server.auth import hash_password
from server.settings import ROLES
from server.settings import Settings, load_settings
from server.store.migrations import connect, migrations
from tests.browser import screenshot, sign_in
from tests.conftest import LiveServer, make_settings, run_cli
from tests.test_web_admin import add_user, db_rows, web_client

SECRET = re.compile(r'id="totp-secret">([A-Z2-7 ]+)<')
RECOVERY = re.compile(r"<li><code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</code></li>")


def settled_step(margin: float = 12.0) -> int:
    """The current 30 s step, after waiting for the next one when this one has under `margin`
    seconds left: the server must be in the same step while the test sends codes around it."""
    left = 30 - time.time() % 30
    if left < margin:
        time.sleep(left + 0.2)
    return int(time.time() // 30)


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).at(step * 30)


def wrong_code(secret: str, step: int) -> str:
    near = {code_at(secret, s) for s in range(step - 3, step + 4)}
    return next(c for c in ("000000", "123456", "999999", "424242", "271828") if c not in near)


def client_for(url: str) -> httpx.Client:
    """A browser-like client: has the CSRF cookie and sends it back as the header."""
    client = httpx.Client(base_url=url, timeout=10)
    client.get("/login")
    client.headers["x-csrftoken"] = client.cookies["csrftoken"]
    return client


def password_step(client: httpx.Client, username: str, password: str, **extra) -> httpx.Response:
    return client.post("/login", data={"username": username, "password": password, **extra})


def code_step(client: httpx.Client, code: str) -> httpx.Response:
    return client.post("/login", data={"otp": code})


def signed_in(client: httpx.Client) -> bool:
    return client.get("/", follow_redirects=False).status_code == 200


def enrol(client: httpx.Client, step: int) -> tuple[str, list[str]]:
    """Sets up an authenticator from the enrolment page with the code of `step`."""
    page = client.get("/account/mfa")
    assert page.status_code == 200, page.text
    secret = SECRET.search(page.text).group(1).replace(" ", "")
    done = client.post("/account/mfa", data={"otp": code_at(secret, step)})
    assert done.status_code == 200, done.text
    return secret, RECOVERY.findall(done.text)


def audit(dept, action: str) -> list[tuple[str, dict]]:
    rows = db_rows(dept, "SELECT actor, detail FROM audit_log WHERE action = ? ORDER BY id", action)
    return [(actor, json.loads(detail)) for actor, detail in rows]


def enrolled_alice(dept, step: int) -> tuple[str, list[str]]:
    with closing(web_client(dept, "alice", "correct horse")) as client:
        return enrol(client, step)


def test_enrolment_refuses_a_wrong_code_then_completes_and_shows_recovery_codes_once(dept):
    step = settled_step()
    with closing(web_client(dept, "alice", "correct horse")) as client:
        assert "Set up an authenticator app" in client.get("/account").text
        page = client.get("/account/mfa")
        secret = SECRET.search(page.text).group(1).replace(" ", "")
        assert len(secret) == 32 and page.headers["cache-control"] == "no-store"
        qr = page.text.split('<figure class="qr-box">')[1].split("</figure>")[0]
        assert qr.startswith('<svg viewBox=') and 'class="qr"' in qr and "<path" in qr
        assert "<script" not in qr and "href" not in qr and "style=" not in page.text
        assert SECRET.search(client.get("/account/mfa").text).group(1).replace(" ", "") == secret  # kept on reload

        refused = client.post("/account/mfa", data={"otp": wrong_code(secret, step)})
        assert refused.status_code == 422 and "Check the app shows the account" in refused.text
        assert db_rows(dept, "SELECT totp_secret FROM users WHERE username = 'alice'") == [(None,)]

        done = client.post("/account/mfa", data={"otp": code_at(secret, step)})
        assert done.status_code == 200 and done.headers["cache-control"] == "no-store"
        codes = RECOVERY.findall(done.text)
        assert len(set(codes)) == 10 and "shown only once" in done.text
        assert client.get("/account/mfa", follow_redirects=False).headers["location"] == "/account"
        account = client.get("/account").text
        assert "10 recovery codes left" in account and "Set up an authenticator app" not in account
    assert db_rows(dept, "SELECT totp_secret, totp_pending, totp_last_step FROM users WHERE username = 'alice'") == [
        (secret, None, step)]
    hashes = [h for (h,) in db_rows(dept, "SELECT code_hash FROM recovery_codes")]
    assert len(hashes) == 10 and not {c.replace("-", "") for c in codes} & set(hashes)
    assert [a for a, _ in audit(dept, "mfa.enrol_failed")] == ["alice"]
    assert audit(dept, "mfa.enrol") == [("alice", {"via": "web", "recovery_codes": 10})]
    everything = json.dumps(db_rows(dept, "SELECT detail FROM audit_log"))
    assert secret not in everything and not any(c in everything for c in codes)


def test_sign_in_needs_the_code_and_the_password_alone_gives_no_working_session(dept):
    step = settled_step()
    secret, _ = enrolled_alice(dept, step - 1)
    with closing(client_for(dept.live.url)) as client:
        asked = password_step(client, "alice", "correct horse")
        assert asked.status_code == 200 and "pw_session" not in client.cookies
        field = re.search(r'<input id="otp"[^>]*>', asked.text).group(0)
        assert 'name="otp"' in field and 'inputmode="numeric"' in field and 'autocomplete="one-time-code"' in field
        challenge = client.cookies["pw_mfa"]
        assert not signed_in(client) and client.get("/account", follow_redirects=False).status_code == 302
        assert client.get("/account/mfa", follow_redirects=False).headers["location"].startswith("/login")
        assert httpx.get(f"{dept.live.url}/", cookies={"pw_session": challenge}, follow_redirects=False).status_code == 302
        api = httpx.get(f"{dept.live.url}/api/v1/alerts", headers={"Authorization": f"Bearer {challenge}"})
        assert api.status_code == 401

        wrong = code_step(client, wrong_code(secret, step))
        assert wrong.status_code == 401 and "wrong or was already used" in wrong.text and not signed_in(client)
        done = code_step(client, code_at(secret, step))
        assert done.status_code == 303 and done.headers["location"] == "/"
        assert signed_in(client) and "pw_mfa" not in client.cookies
        assert code_step(client, code_at(secret, step + 1)).status_code == 401  # the challenge is spent
    with closing(client_for(dept.live.url)) as client:  # or all in one form, as DESIGN.md's /login allows
        done = password_step(client, "alice", "correct horse", otp=code_at(secret, step + 1))
        assert done.status_code == 303 and signed_in(client)
    assert [d.get("mfa") for a, d in audit(dept, "auth.login") if a == "alice"] == [None, "totp", "totp"]
    assert [d["factor"] for _, d in audit(dept, "auth.failed")] == ["otp"]


def test_a_code_is_good_once_and_the_previous_step_is_accepted(dept):
    step = settled_step()
    secret, _ = enrolled_alice(dept, step)
    with sqlite3.connect(dept.settings.db_path) as conn:  # as if enrolled minutes ago
        conn.execute("UPDATE users SET totp_last_step = ? WHERE username = 'alice'", (step - 10,))

    def sign_in_with(code: str) -> int:
        with closing(client_for(dept.live.url)) as client:
            assert password_step(client, "alice", "correct horse").status_code == 200
            return code_step(client, code).status_code

    assert sign_in_with(code_at(secret, step - 1)) == 303  # the previous step: the phone's clock lags
    assert sign_in_with(code_at(secret, step - 1)) == 401  # replayed
    assert sign_in_with(code_at(secret, step - 2)) == 401  # outside the window
    assert sign_in_with(code_at(secret, step)) == 303
    assert sign_in_with(code_at(secret, step + 1)) == 303  # the next step: the phone's clock runs fast
    assert sign_in_with(code_at(secret, step)) == 401  # older than one already used
    assert [d["reason"] for _, d in audit(dept, "auth.failed")] == ["reused", "wrong", "reused"]


def test_a_recovery_code_works_once(dept):
    step = settled_step()
    secret, codes = enrolled_alice(dept, step)
    with closing(client_for(dept.live.url)) as client:
        password_step(client, "alice", "correct horse")
        assert code_step(client, codes[0].upper()).status_code == 303 and signed_in(client)
        assert "9 recovery codes left" in client.get("/account").text
    with closing(client_for(dept.live.url)) as client:
        password_step(client, "alice", "correct horse")
        assert code_step(client, codes[0]).status_code == 401 and not signed_in(client)
    assert audit(dept, "mfa.recovery_used") == [("alice", {"via": "web", "left": 9})]
    assert db_rows(dept, "SELECT count(*) FROM recovery_codes WHERE used_at IS NOT NULL") == [(1,)]


def test_wrong_codes_lead_to_the_sign_in_lock_out(dept):
    step = settled_step()
    secret, _ = enrolled_alice(dept, step)
    bad = wrong_code(secret, step)
    with closing(client_for(dept.live.url)) as client:
        assert password_step(client, "alice", "correct horse").status_code == 200
        assert [code_step(client, bad).status_code for _ in range(5)] == [401] * 5
        locked = code_step(client, code_at(secret, step + 1))  # right, but too late
        assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text and not signed_in(client)
        assert password_step(client, "alice", "correct horse").status_code == 429
    failed = audit(dept, "auth.failed")
    assert len(failed) == 5 and all(d["factor"] == "otp" and d["reason"] == "wrong" for _, d in failed)
    assert bad not in json.dumps(failed)


@pytest.fixture
def strict(tmp_path):
    """A department whose supervisors must use two-factor sign-in."""
    server = LiveServer(make_settings(tmp_path / "strict", mfa_required_roles=("supervisor",))).start()
    yield server
    server.stop()


def test_a_required_role_is_sent_to_enrol_and_can_do_nothing_else_until_done(strict):
    settings = strict.settings
    for name, role in (("sam", "supervisor"), ("olive", "officer"), ("chief", "admin")):
        run_cli(settings, "user", "add", name, "--role", role, "--password-stdin", stdin="long enough pw\n")
    token = httpx.post(f"{strict.url}/api/v1/auth/token", json={"username": "sam", "password": "long enough pw"})
    assert token.status_code == 403 and "two-factor" in token.text
    step = settled_step()
    with closing(client_for(strict.url)) as sam:
        sent = password_step(sam, "sam", "long enough pw", next="/hotlists")
        assert sent.status_code == 303 and sent.headers["location"] == "/account/mfa" and "pw_session" not in sam.cookies
        assert sam.get("/hotlists", follow_redirects=False).headers["location"].startswith("/login")
        page = sam.get("/account/mfa")
        assert "Set it up now to continue" in page.text and "Sign out" not in page.text  # no menu: nothing else
        secret = SECRET.search(page.text).group(1).replace(" ", "")
        assert sam.post("/account/mfa", data={"otp": wrong_code(secret, step)}).status_code == 422
        done = sam.post("/account/mfa", data={"otp": code_at(secret, step)})
        assert done.status_code == 200 and 'href="/hotlists"' in done.text  # Continue goes where sam was going
        assert sam.get("/hotlists").status_code == 200
    with closing(client_for(strict.url)) as olive, closing(client_for(strict.url)) as chief:
        assert password_step(olive, "olive", "long enough pw").headers["location"] == "/"  # not required
        olive_token = httpx.post(f"{strict.url}/api/v1/auth/token", json={"username": "olive", "password": "long enough pw"})
        password_step(chief, "chief", "long enough pw")
        [(olive_id,)] = db_rows(strict, "SELECT id FROM users WHERE username = 'olive'")
        chief.post(f"/users/{olive_id}/role", data={"role": "supervisor"})
        # Promoted: the session and token from before now lead only to enrolment.
        assert olive.get("/", follow_redirects=False).headers["location"] == "/account/mfa"
        bearer = {"Authorization": f"Bearer {olive_token.json()['token']}"}
        assert httpx.get(f"{strict.url}/api/v1/alerts", headers=bearer).status_code == 403
        assert olive.get("/account/mfa").status_code == 200


def test_an_admin_resets_a_lost_phone_and_the_user_enrols_again(dept):
    step = settled_step()
    add_user(dept, "chief", "admin")
    old_secret, _ = enrolled_alice(dept, step)
    [(alice_id,)] = db_rows(dept, "SELECT id FROM users WHERE username = 'alice'")
    with closing(client_for(dept.live.url)) as alice, closing(web_client(dept, "chief", "long enough pw")) as chief:
        password_step(alice, "alice", "correct horse", otp=code_at(old_secret, step + 1))
        assert signed_in(alice)
        assert "Reset two-factor for alice" in chief.get("/users").text
        [(sessions,)] = db_rows(dept, "SELECT count(*) FROM sessions WHERE user_id = ?", alice_id)
        done = chief.post(f"/users/{alice_id}/mfa-reset", headers={"hx-request": "true"})
        assert "Two-factor sign-in reset for alice" in done.text and "Reset two-factor for alice" not in done.text
        assert not signed_in(alice)  # the lost phone's session ended too
        [(chief_id,)] = db_rows(dept, "SELECT id FROM users WHERE username = 'chief'")
        assert chief.post(f"/users/{chief_id}/mfa-reset").status_code == 422
    assert db_rows(dept, "SELECT totp_secret, totp_last_step FROM users WHERE id = ?", alice_id) == [(None, None)]
    assert db_rows(dept, "SELECT count(*) FROM recovery_codes") == [(0,)]
    assert sessions >= 2 and audit(dept, "mfa.reset") == [("chief", {"user": "alice", "sessions_ended": sessions})]
    new_secret, _ = enrolled_alice(dept, step)  # the password alone signs in again; a new secret
    assert new_secret != old_secret
    assert run_cli(dept.settings, "user", "mfa-reset", "alice") == 0
    assert [a for a, _ in audit(dept, "mfa.reset")] == ["chief", "cli"]


def test_api_token_sign_in_needs_the_otp_for_enrolled_users(dept):
    step = settled_step()
    secret, codes = enrolled_alice(dept, step)
    url, creds = f"{dept.live.url}/api/v1/auth/token", {"username": "alice", "password": "correct horse"}
    missing = httpx.post(url, json=creds)
    assert missing.status_code == 401 and "otp" in missing.json()["detail"]
    assert httpx.post(url, json={**creds, "otp": wrong_code(secret, step)}).status_code == 401
    good = httpx.post(url, json={**creds, "otp": code_at(secret, step + 1)})
    assert good.status_code == 200, good.text
    bearer = {"Authorization": f"Bearer {good.json()['token']}"}
    assert httpx.get(f"{dept.live.url}/api/v1/alerts", headers=bearer).status_code == 200
    assert httpx.post(url, json={**creds, "otp": code_at(secret, step + 1)}).status_code == 401  # replayed
    assert httpx.post(url, json={**creds, "otp": codes[1]}).status_code == 200
    assert dept.post_read("7ABC123").status_code == 201  # cameras' tokens are unaffected
    assert [d.get("mfa") for _, d in audit(dept, "auth.token")] == [None, "totp", "recovery"]


def test_migration_adds_two_factor_to_an_existing_database(tmp_path):
    settings = make_settings(tmp_path / "old")
    old = connect(settings.db_path)
    migrations.apply(old, stop_before="m006_totp")
    old.execute("INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, 'officer', 0)",
                ["olga", hash_password("olga's password")])
    old.conn.commit()
    assert "totp_secret" not in old["users"].columns_dict
    old.close()
    server = LiveServer(settings).start()
    try:
        with closing(client_for(server.url)) as client:
            assert password_step(client, "olga", "olga's password").headers["location"] == "/"
            secret, codes = enrol(client, settled_step())
            assert len(codes) == 10
    finally:
        server.stop()
    with closing(sqlite3.connect(settings.db_path)) as conn:
        assert conn.execute("SELECT username, totp_secret FROM users").fetchall() == [("olga", secret)]
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"recovery_codes", "signin_challenges"} <= tables


def test_enrol_and_sign_in_with_a_code_in_chromium(dept, page):
    step = settled_step(margin=20)
    sign_in(page, dept.live.url)
    page.get_by_role("link", name="Account").click()
    page.get_by_role("link", name="Set up an authenticator app").click()
    qr = page.locator("svg.qr")
    expect(qr).to_be_visible()
    assert qr.bounding_box()["width"] >= 150
    screenshot(page, "mfa-enrol")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Code from your app").fill(code_at(secret, step))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    screenshot(page, "mfa-recovery-codes")
    page.get_by_role("link", name="Continue").click()
    page.get_by_role("button", name="Sign out alice").click()
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Sign in").click()
    code = page.get_by_label("Code from your app")
    expect(code).to_have_attribute("inputmode", "numeric")
    expect(code).to_have_attribute("autocomplete", "one-time-code")
    assert code.bounding_box()["height"] >= 48
    screenshot(page, "mfa-code")
    code.fill(code_at(secret, step + 1))
    page.get_by_role("button", name="Verify and sign in").click()
    page.wait_for_url(f"{dept.live.url}/")
    expect(page.get_by_role("button", name="Sign out alice")).to_be_visible()


def test_required_roles_come_from_the_environment_and_a_wrong_role_is_named(tmp_path):
    assert load_settings(tmp_path, env={}).mfa_required_roles == ()
    env = {"PLATEWATCH_MFA_REQUIRED_ROLES": "supervisor, admin"}
    assert load_settings(tmp_path, env=env).mfa_required_roles == ("supervisor", "admin")
    with pytest.raises(msgspec.ValidationError, match="mfa_required_roles"):
        load_settings(tmp_path, env={"PLATEWATCH_MFA_REQUIRED_ROLES": "chief"})
    [roles, _] = get_args(get_type_hints(Settings)["mfa_required_roles"])
    assert get_args(roles) == ROLES  # the setting's choices are the schema's roles
