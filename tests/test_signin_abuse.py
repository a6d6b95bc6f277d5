"""Sign-in under abuse: oversize fields never reach the audit log whole, and parallel guesses
cannot beat the lock-out (issue 17, defects 6 and 7)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from concurrent.futures import ThreadPoolExecutor

import httpx

from server.auth import MAX_FAILED_SIGNINS


def audit_rows(settings, action: str) -> list[tuple]:
    with sqlite3.connect(settings.db_path) as conn:
        return conn.execute("SELECT actor, detail FROM audit_log WHERE action = ?", (action,)).fetchall()


def browser(url: str) -> httpx.Client:
    """A browser-like client: it has the CSRF cookie and sends it back as the header."""
    client = httpx.Client(base_url=url, timeout=60)
    client.get("/login")
    client.headers["x-csrftoken"] = client.cookies["csrftoken"]
    return client


def test_a_megabyte_username_is_refused_and_never_stored_whole(dept):
    with closing(browser(dept.live.url)) as client:
        huge = client.post("/login", data={"username": "u" * 1_000_000, "password": "whatever pw"})
        long_pw = client.post("/login", data={"username": "mallory", "password": "p" * 100_000})
    assert huge.status_code in (400, 401, 413), huge.status_code
    assert long_pw.status_code in (400, 401, 413), long_pw.status_code
    api = dept.http.post("/api/v1/auth/token", json={"username": "v" * 1_000_000, "password": "whatever pw"})
    assert api.status_code in (400, 401, 413), api.status_code
    with sqlite3.connect(dept.settings.db_path) as conn:
        [(longest,)] = conn.execute("SELECT max(length(actor) + length(detail)) FROM audit_log").fetchall()
    assert longest < 2_000


def test_a_long_audit_detail_is_kept_short_and_says_how_long_it_was(settings):
    import asyncio

    from server import audit
    from server.store.db import Database

    async def write() -> None:
        async with Database(settings.db_path) as db, db.transaction() as conn:
            await audit.record(conn, "x" * 5000, "test.long", note="n" * 100_000, nested={"deep": ["d" * 9000]})

    asyncio.run(write())
    [(actor, detail)] = audit_rows(settings, "test.long")
    assert len(actor) < 300 and len(detail) < 1_500
    assert "100000 chars" in detail and "9000 chars" in detail and "5000 chars" in actor


def _guess_web(url: str) -> int:
    with closing(browser(url)) as client:
        return client.post("/login", data={"username": "alice", "password": "wrong guess"}).status_code


def _guess_api(url: str) -> int:
    with httpx.Client(base_url=url, timeout=60) as client:
        return client.post("/api/v1/auth/token", json={"username": "alice", "password": "wrong guess"}).status_code


def _checked(settings) -> int:
    """How many guesses were checked against the password: each wrong one is an auth.failed line."""
    return sum(1 for actor, _ in audit_rows(settings, "auth.failed") if actor == "alice")


def test_parallel_web_guesses_are_checked_at_most_the_limit(dept):
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(_guess_web, [dept.live.url] * 100))
    assert _checked(dept.settings) <= MAX_FAILED_SIGNINS
    assert answers.count(401) <= MAX_FAILED_SIGNINS and answers.count(429) >= 100 - MAX_FAILED_SIGNINS


def test_parallel_api_guesses_are_checked_at_most_the_limit(dept):
    with ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(_guess_api, [dept.live.url] * 30))
    assert _checked(dept.settings) <= MAX_FAILED_SIGNINS
    assert answers.count(401) <= MAX_FAILED_SIGNINS and answers.count(429) >= 30 - MAX_FAILED_SIGNINS


def test_the_right_password_still_signs_in_after_a_few_wrong_ones(dept):
    for _ in range(MAX_FAILED_SIGNINS - 1):
        assert _guess_api(dept.live.url) == 401
    good = dept.http.post("/api/v1/auth/token", json={"username": "alice", "password": "correct horse"})
    assert good.status_code == 200, good.text
