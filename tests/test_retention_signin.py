"""The retention purge also sweeps expired sign-in leftovers: sessions and API tokens past their
expiry and two-factor challenges past theirs. Valid ones stay and keep working. Expired rows are
made with the project's own functions, given clocks in the past; valid ones by signing in."""

from __future__ import annotations

import json
from contextlib import closing

import httpx
import pytest

from server import mfa
from server.auth import issue_token, new_token
from server.clock import now_ms
from server.retention import purge
from server.settings import Settings
from server.store import queries, queries_mfa
from server.store.db import Database
from tests.conftest import Department, LiveServer, make_settings, run
from tests.test_mfa import client_for, password_step
from tests.test_web_admin import add_user, db_rows, web_client

HOUR_MS = 3_600_000
AUDIT_FIELDS = {"reads", "images", "cutoff", "oldest_remaining", "retention_days", "sessions", "challenges",
                "stray_images", "held", "future", "oldest_unheld_age_days"}


@pytest.fixture
def strict_dept(tmp_path, capsys):
    """A department whose supervisors must use two-factor sign-in, so a password alone opens a challenge."""
    live = LiveServer(make_settings(tmp_path / "data", mfa_required_roles=("supervisor",))).start()
    try:
        dept = Department(live, capsys)
        yield dept
        dept.close()
    finally:
        live.stop()


async def expire_and_purge(settings: Settings, now: int):
    """Three expired sessions and two expired challenges, then a purge at `now`."""
    session_ms, api_ms = int(settings.session_ttl_s * 1000), int(settings.api_token_ttl_s * 1000)
    async with Database(settings.db_path) as db:
        async with db.transaction() as conn:
            alice = await queries.user_by_name(conn, "alice")
            sam = await queries.user_by_name(conn, "sam")
            await issue_token(conn, alice["id"], "session", settings.session_ttl_s, now - session_ms - HOUR_MS)
            await issue_token(conn, alice["id"], "api", settings.api_token_ttl_s, now - api_ms - HOUR_MS)
            # Expiring exactly now counts as expired, as it does when a token is looked up.
            await issue_token(conn, alice["id"], "session", settings.session_ttl_s, now - session_ms)
            # Each insert first sweeps what had expired by its own clock: the later-expiring one goes in first.
            for opened in (now - mfa.CHALLENGE_TTL_MS, now - HOUR_MS):
                _, hashed = new_token(mfa.CHALLENGE_PREFIX)
                await queries_mfa.insert_challenge(conn, hashed, sam["id"], "verify", "/", opened,
                                                   opened + mfa.CHALLENGE_TTL_MS)
        return await purge(db, settings, now=now)


def test_purge_sweeps_expired_sessions_and_challenges_and_keeps_valid_ones(strict_dept):
    dept = strict_dept
    add_user(dept, "sam", "supervisor")
    with closing(web_client(dept, "alice", "correct horse")) as alice, closing(client_for(dept.live.url)) as sam:
        sent = password_step(sam, "sam", "long enough pw")  # a valid challenge, to enrol; no session
        assert sent.headers["location"] == "/account/mfa" and "pw_mfa" in sam.cookies
        now = now_ms()
        result = run(expire_and_purge(dept.settings, now))

        assert (result.sessions, result.challenges, result.reads) == (3, 2, 0)
        assert db_rows(dept, "SELECT kind FROM sessions WHERE expires_at > ? ORDER BY kind", now) == [
            ("api",), ("session",)]  # alice's API token (from the fixture) and browser session
        assert db_rows(dept, "SELECT count(*) FROM sessions WHERE expires_at <= ?", now) == [(0,)]
        assert db_rows(dept, "SELECT purpose FROM signin_challenges") == [("enrol",)]
        # What was still valid still works.
        assert alice.get("/", follow_redirects=False).status_code == 200
        assert httpx.get(f"{dept.live.url}/api/v1/alerts", headers=dept.user_headers).status_code == 200
        assert "Set it up now to continue" in sam.get("/account/mfa").text

    [(detail,)] = db_rows(
        dept, "SELECT detail FROM audit_log WHERE action = 'retention.purge' ORDER BY id DESC LIMIT 1")
    detail = json.loads(detail)
    assert set(detail) == AUDIT_FIELDS  # the existing fields unchanged, two added
    assert (detail["sessions"], detail["challenges"], detail["reads"]) == (3, 2, 0)
