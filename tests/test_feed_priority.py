"""Priority orders the officers' feed (unhandled alerts first, highest priority first, then the
newest) and colours each card high, medium or low."""

from __future__ import annotations

import re
from contextlib import closing

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
