"""A failing request leaves a trace in the server log, and every answer carries the security
headers even without Caddy in front (issue 17, defects 11 and 14)."""

from __future__ import annotations

import logging
import sqlite3

from tests.conftest import LiveServer


def test_an_unhandled_error_is_logged_once_with_its_path_and_traceback(dept, caplog):
    """A real fault: an alert row whose time is not a number (a corrupt row) breaks its page."""
    assert dept.hotlist(dept.live.settings.data_dir.parent, "stolen", "plate\n8ABC123\n") == 0
    [alert_id] = dept.post_read("8ABC123").json()["alerts"]
    with sqlite3.connect(dept.settings.db_path) as conn:
        conn.execute("UPDATE alerts SET seen_at = 'not a time' WHERE id = ?", (alert_id,))
    secret_query = "token=QUERY-SECRET-1234"
    with caplog.at_level(logging.ERROR):
        resp = dept.http.get(f"/api/v1/alerts/{alert_id}?{secret_query}", headers=dept.user_headers)
    assert resp.status_code == 500
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 1, [r.getMessage() for r in logged]
    [record] = logged
    text = record.getMessage() + caplog.text
    assert f"GET /api/v1/alerts/{alert_id}" in record.getMessage()
    assert record.exc_info is not None and "Traceback" in caplog.text
    bearer = dept.user_headers["Authorization"].split()[1]
    assert bearer not in text and "QUERY-SECRET" not in text


def test_refusals_are_not_logged_as_errors(dept, caplog):
    with caplog.at_level(logging.ERROR):
        assert dept.http.get("/api/v1/alerts/999", headers=dept.user_headers).status_code == 404
        assert dept.http.get("/api/v1/alerts").status_code == 401
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_every_answer_has_security_headers_and_no_server_name(live: LiveServer):
    import httpx

    with httpx.Client(base_url=live.url, timeout=10) as client:
        for path in ("/login", "/healthz", "/static/app.css", "/no-such-page", "/api/v1/alerts"):
            resp = client.get(path)
            assert resp.headers.get("x-content-type-options") == "nosniff", path
            assert resp.headers.get("referrer-policy") == "no-referrer", path
            assert resp.headers.get("x-frame-options") == "DENY", path
            assert "frame-ancestors 'none'" in resp.headers.get("content-security-policy", ""), path
            assert "server" not in resp.headers, (path, resp.headers.get("server"))
