"""An admin sets a temporary password for someone who forgot theirs: on /users, or with
`platewatch user password` on the box. Real HTTP against the real app and SQLite, the real CLI
as a separate process, and once in real Chromium."""

from __future__ import annotations

import html
import json
from contextlib import closing

import httpx
from playwright.sync_api import expect

from server.auth import MIN_PASSWORD
from tests.browser import sign_in
from tests.test_cli import pw
from tests.test_mfa import audit, client_for, code_at, code_step, enrolled_alice, password_step, settled_step, signed_in
from tests.test_web_admin import add_user, db_rows, web_client

OLD, NEW = "correct horse", "temporary 7781"  # alice's password (tests/conftest.py), the one an admin sets
CHIEF = "chief's own pw"


def user_id(dept, name: str) -> int:
    [(found,)] = db_rows(dept, "SELECT id FROM users WHERE username = ?", name)
    return found


def password_hash(dept, name: str = "alice") -> str:
    [(hashed,)] = db_rows(dept, "SELECT password_hash FROM users WHERE username = ?", name)
    return hashed


def signs_in_with(dept, name: str, password: str) -> int:
    with closing(client_for(dept.live.url)) as client:
        return password_step(client, name, password).status_code


def api_token_works(dept) -> bool:
    """The API token the Department made for alice at the start."""
    return httpx.get(f"{dept.live.url}/api/v1/alerts", headers=dept.user_headers).status_code == 200


def everything_logged(dept) -> str:
    return json.dumps(db_rows(dept, "SELECT actor, action, detail FROM audit_log"))


def chief_client(dept) -> httpx.Client:
    add_user(dept, "chief", "admin", CHIEF)
    return web_client(dept, "chief", CHIEF)


def reset(client: httpx.Client, target: int, password: str, **headers) -> httpx.Response:
    return client.post(f"/users/{target}/password", data={"password": password}, headers=headers)


def test_admin_sets_a_temporary_password_and_the_user_is_signed_out_everywhere(dept):
    alice = user_id(dept, "alice")
    with closing(chief_client(dept)) as chief, closing(web_client(dept, "alice", OLD)) as phone:
        assert signed_in(phone) and api_token_works(dept)
        [(sessions,)] = db_rows(dept, "SELECT count(*) FROM sessions WHERE user_id = ?", alice)
        done = reset(chief, alice, NEW, **{"hx-request": "true"})
        assert done.status_code == 200 and 'id="users"' in done.text and "<html" not in done.text
        assert "Temporary password set for alice: signed out everywhere" in done.text
        assert "in person" in done.text and "Account page" in done.text and NEW not in done.text
        assert not signed_in(phone) and not api_token_works(dept)
        assert signed_in(chief)  # the admin's own session is untouched
    assert sessions == 2 and db_rows(dept, "SELECT count(*) FROM sessions WHERE user_id = ?", alice) == [(0,)]
    assert signs_in_with(dept, "alice", OLD) == 401 and signs_in_with(dept, "alice", NEW) == 303
    assert password_hash(dept).startswith("$argon2id$")
    assert audit(dept, "password.reset") == [("chief", {"user": "alice", "sessions_ended": 2, "must_change": True})]
    assert NEW not in everything_logged(dept)


def test_a_sign_in_half_done_with_the_old_password_ends_too(dept):
    step = settled_step()
    secret, _ = enrolled_alice(dept, step - 1)
    with closing(chief_client(dept)) as chief, closing(client_for(dept.live.url)) as stranger:
        assert "Code from your app" in password_step(stranger, "alice", OLD).text
        assert db_rows(dept, "SELECT count(*) FROM signin_challenges") == [(1,)]
        assert reset(chief, user_id(dept, "alice"), NEW).status_code == 200
        late = code_step(stranger, code_at(secret, step))
        assert late.status_code == 401 and not signed_in(stranger)
    assert db_rows(dept, "SELECT count(*) FROM signin_challenges") == [(0,)]


def test_only_an_admin_may_reset_a_password(dept):
    add_user(dept, "sam", "supervisor")
    before, alice = password_hash(dept), user_id(dept, "alice")
    with closing(web_client(dept, "sam", "long enough pw")) as supervisor, \
            closing(web_client(dept, "alice", OLD)) as officer:
        assert reset(supervisor, alice, NEW).status_code == 403
        assert reset(officer, user_id(dept, "sam"), NEW).status_code == 403
        assert reset(officer, alice, NEW).status_code == 403
        assert signed_in(officer)
    with closing(client_for(dept.live.url)) as anonymous:
        refused = reset(anonymous, alice, NEW)
        assert refused.status_code == 302 and refused.headers["location"].startswith("/login")
    assert password_hash(dept) == before and api_token_works(dept) and audit(dept, "password.reset") == []


def test_a_password_breaking_the_rule_is_refused_and_nothing_changes(dept):
    before, alice = password_hash(dept), user_id(dept, "alice")
    with closing(chief_client(dept)) as chief, closing(web_client(dept, "alice", OLD)) as phone:
        short = reset(chief, alice, "x" * (MIN_PASSWORD - 1))
        assert short.status_code == 422 and 'role="alert"' in short.text
        assert f"The temporary password for alice needs at least {MIN_PASSWORD} characters." in short.text
        assert reset(chief, alice, "").status_code == 422
        assert signed_in(phone) and api_token_works(dept)
        assert password_hash(dept) == before and audit(dept, "password.reset") == []
        assert reset(chief, alice, "y" * MIN_PASSWORD).status_code == 200  # the rule's own boundary
    assert signs_in_with(dept, "alice", "y" * MIN_PASSWORD) == 303


def test_an_admin_is_sent_to_the_account_page_for_their_own_password(dept):
    with closing(chief_client(dept)) as chief:
        before = password_hash(dept, "chief")
        own = reset(chief, user_id(dept, "chief"), NEW)
        assert own.status_code == 422 and 'role="alert"' in own.text
        assert "You can't reset your own password here: change it on your Account page (/account)." \
            in html.unescape(own.text)
        assert signed_in(chief)
        assert password_hash(dept, "chief") == before and audit(dept, "password.reset") == []


def test_an_unknown_user_is_not_found(dept):
    with closing(chief_client(dept)) as chief:
        [(last,)] = db_rows(dept, "SELECT max(id) FROM users")
        assert reset(chief, last + 1, NEW).status_code == 404
        assert reset(chief, last + 1, "short").status_code == 404  # no such user, whatever the password
    assert audit(dept, "password.reset") == []


def test_without_the_csrf_token_nothing_changes(dept):
    before, alice = password_hash(dept), user_id(dept, "alice")
    with closing(chief_client(dept)) as chief:
        del chief.headers["x-csrftoken"]
        assert reset(chief, alice, NEW).status_code == 403
        assert reset(chief, alice, NEW, **{"x-csrftoken": "forged"}).status_code == 403
    assert password_hash(dept) == before and api_token_works(dept) and audit(dept, "password.reset") == []


def test_the_users_page_offers_the_reset_for_others_and_states_the_rule(dept, monkeypatch):
    """The page says the length password_problem checks, whatever it is: not a copy of it."""
    monkeypatch.setattr("server.auth.MIN_PASSWORD", 12)
    alice = user_id(dept, "alice")
    with closing(chief_client(dept)) as chief:
        page = chief.get("/users").text
        assert f'action="/users/{alice}/password"' in page
        assert f'action="/users/{user_id(dept, "chief")}/password"' not in page and 'href="/account"' in page
        assert 'minlength="12"' in page and "At least 12 characters" in page and "At least 8" not in page
        refused = reset(chief, alice, "x" * 11)
        assert refused.status_code == 422 and "needs at least 12 characters" in refused.text


def test_admin_resets_a_password_in_chromium(dept, page):
    add_user(dept, "chief", "admin", CHIEF)
    sign_in(page, dept.live.url, "chief", CHIEF)
    page.goto(f"{dept.live.url}/users")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_text("Set a temporary password for alice").click()
    page.get_by_label("Temporary password for alice").fill(NEW)
    page.get_by_role("button", name="Set password for alice").click()
    expect(page.get_by_role("status")).to_contain_text("Temporary password set for alice")
    expect(page.get_by_role("status")).to_contain_text("in person")
    assert signs_in_with(dept, "alice", NEW) == 303
    assert [actor for actor, _ in audit(dept, "password.reset")] == ["chief"]


# --- the CLI, as its own process against the same data dir as the running server ----------------

def cli_reset(dept, tmp_path, name: str, password: str):
    return pw("user", "password", name, "--password-stdin", "--data", str(dept.settings.data_dir),
              cwd=tmp_path, stdin=f"{password}\n")


def test_cli_sets_a_password_and_signs_the_user_out_everywhere(dept, tmp_path):
    with closing(web_client(dept, "alice", OLD)) as phone:
        done = cli_reset(dept, tmp_path, "alice", NEW)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "password set for 'alice'; 2 session(s) ended: give it to them in person"
        assert not signed_in(phone) and not api_token_works(dept)
    assert signs_in_with(dept, "alice", OLD) == 401 and signs_in_with(dept, "alice", NEW) == 303
    assert audit(dept, "password.reset") == [("cli", {"user": "alice", "sessions_ended": 2, "must_change": True})]
    assert NEW not in everything_logged(dept) and NEW not in done.stdout


def test_cli_refuses_an_unknown_user_and_a_short_password(dept, tmp_path):
    before = password_hash(dept)
    unknown = cli_reset(dept, tmp_path, "nobody", NEW)
    assert unknown.returncode != 0 and "no user 'nobody'" in unknown.stderr
    short = cli_reset(dept, tmp_path, "alice", "x" * (MIN_PASSWORD - 1))
    assert short.returncode != 0 and f"at least {MIN_PASSWORD} characters" in short.stderr
    assert password_hash(dept) == before and api_token_works(dept) and audit(dept, "password.reset") == []
