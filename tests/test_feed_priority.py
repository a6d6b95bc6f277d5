"""Priority orders the officers' feed (unhandled alerts first, highest priority first, then the
newest) and colours each card high, medium or low."""

from __future__ import annotations

import re
from contextlib import closing

from playwright.sync_api import expect

from tests.browser import sign_in
from tests.test_web_admin import web_client


def test_the_feed_puts_unhandled_high_priority_alerts_first(dept, tmp_path):
    assert dept.hotlist(tmp_path, "stolen", "plate,reason,priority\nHIGH111,stolen,90\nLOW1111,stolen,low\n"
                                            "MED1111,stolen,\nOLDHI11,stolen,high\n") == 0
    ids = {}
    for plate in ("OLDHI11", "HIGH111", "LOW1111", "MED1111"):  # the medium one is the newest
        assert dept.post_read(plate).status_code == 201
        [alert] = dept.http.get("/api/v1/alerts?limit=1", headers=dept.user_headers).json()
        ids[plate] = alert["id"]
    handled = dept.http.patch(f"/api/v1/alerts/{ids['OLDHI11']}", json={"status": "acknowledged"},
                              headers=dept.user_headers)
    assert handled.status_code == 200, handled.text
    with closing(web_client(dept, "alice", "correct horse")) as officer:
        page = officer.get("/").text
    cards = re.findall(r'<article class="alert-card kind-\w+ priority-(\w+)[^"]*" id="alert-(\d+)"', page)
    assert cards == [("high", str(ids["HIGH111"])), ("medium", str(ids["MED1111"])), ("low", str(ids["LOW1111"])),
                     ("high", str(ids["OLDHI11"]))]
    assert page.count('<span class="badge priority-medium">medium priority</span>') == 1


def test_a_live_alert_takes_its_place_by_priority(dept, page, tmp_path):
    """In real Chromium: a low-priority hit arriving live goes below the unhandled high one."""
    assert dept.hotlist(tmp_path, "stolen", "plate,reason,priority\nHIGH111,stolen,high\nLOW1111,stolen,low\n") == 0
    sign_in(page, dept.live.url)
    expect(page.locator("#live")).to_have_text("live")
    dept.post_read("HIGH111")
    expect(page.locator(".alert-card").first).to_contain_text("HIGH111")
    dept.post_read("LOW1111")
    expect(page.locator(".alert-card")).to_have_count(2)
    expect(page.locator(".alert-card").nth(1)).to_contain_text("LOW1111")
    expect(page.locator(".alert-card").first).to_contain_text("HIGH111")
