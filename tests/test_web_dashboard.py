"""The chief's dashboard and the audit log: correct numbers for seeded data, SVG charts that
say what they show, readable on a phone; the audit log filtered and paged."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect

from server.figures import DAYS, column_chart, nice_top
from tests.browser import TABLET, screenshot, sign_in
from tests.test_web_admin import add_user, web_client

HOTLIST = "plate,reason\n8ABC123,Stolen (test)\n5DEF456,Stolen (test)\n"
AMBER = "plate,reason\n6TRJ244,AMBER alert (test)\n"
DAY_MS = 86_400_000


def seed(dept, tmp_path) -> None:
    """4 reads today and 2 three days ago; 3 hits (one moved to two days ago); 4 searches in the window."""
    dept.hotlist(tmp_path, "stolen", HOTLIST, "--kind", "stolen_vehicle")
    dept.hotlist(tmp_path, "amber", AMBER, "--kind", "amber")
    three_days_ago = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    for plate in ("2BBB222", "3CCC333"):
        assert dept.post_read(plate, captured_at=three_days_ago).status_code == 201
    alerts = {plate: dept.post_read(plate).json()["alerts"] for plate in ("8ABC123", "6TRJ244", "5DEF456", "1AAA111")}
    now = int(datetime.now(UTC).timestamp() * 1000)
    searches = [("search", "Stolen vehicle investigation", 0)] * 2 + [
        ("plate.history", "Stolen vehicle investigation", 1), ("search", "Missing person", 0),
        ("search", "Too old to count", 40), ("search.export", "Not a search line", 0)]
    with sqlite3.connect(dept.settings.db_path) as conn:
        conn.execute("UPDATE alerts SET created_at = created_at - ?, status = 'confirmed' WHERE id = ?",
                     (2 * DAY_MS, alerts["8ABC123"][0]))
        conn.execute("UPDATE alerts SET status = 'not_match' WHERE id = ?", (alerts["6TRJ244"][0],))
        conn.executemany("INSERT INTO audit_log (at, actor, action, detail) VALUES (?, 'alice', ?, ?)",
                         [(now - days_ago * DAY_MS, action, json.dumps({"reason": reason, "plate": "8ABC123"}))
                          for action, reason, days_ago in searches])


def day(days_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%d")


def cells(page, table: str, first: str) -> list[str]:
    """The cells of the row whose first cell is `first` (tables sit in closed <details>)."""
    return page.locator(f"#{table} tr", has=page.locator("td", has_text=first)).locator("td").all_text_contents()


def test_dashboard_shows_correct_numbers_as_svg_charts(dept, page, tmp_path):
    seed(dept, tmp_path)
    add_user(dept, "chief", "supervisor")
    sign_in(page, dept.live.url, "chief", "long enough pw")
    page.goto(f"{dept.live.url}/dashboard")
    assert cells(page, "reads-table", day(0)) == [day(0), "4"]
    assert cells(page, "reads-table", day(3)) == [day(3), "2"]
    assert page.locator("#reads-table tbody tr").count() == DAYS
    assert page.locator("#hits-table thead th").all_text_contents() == ["Day", "stolen vehicle", "amber", "Total"]
    assert cells(page, "hits-table", day(0)) == [day(0), "1", "1", "2"]
    assert cells(page, "hits-table", day(2)) == [day(2), "1", "0", "1"]
    assert cells(page, "hits-table", day(1)) == [day(1), "0", "0", "0"]
    outcomes = dict(tuple(row.locator("td").all_text_contents()) for row in page.locator("#outcomes-table tbody tr").all())
    assert outcomes == {"Confirmed": "1", "Not a match": "1", "No longer valid": "0", "Open": "1"}
    assert cells(page, "searches-table", "Stolen vehicle") == ["Stolen vehicle investigation", "3"]
    assert cells(page, "searches-table", "Missing person") == ["Missing person", "1"]
    assert page.locator("#searches-table tbody tr").count() == 2  # the 40-day-old search and the export are not
    for tile, number in (("total-reads", "6"), ("total-hits", "3"), ("total-confirmed", "1"), ("total-searches", "4")):
        expect(page.locator(f"#{tile}")).to_have_text(number)
    health = page.locator("#camera-health tr", has_text="main-st")
    expect(health.locator("td[data-label='Reads, last hour']")).to_have_text("4")
    expect(health.locator("td[data-label='Status']")).to_have_text("ok")

    for chart in ("reads-chart", "hits-chart", "outcomes-chart", "searches-chart"):
        svg = page.locator(f"svg#{chart}")
        expect(svg).to_be_visible()
        assert svg.get_attribute("role") == "img"
        assert svg.get_attribute("aria-labelledby") == f"{chart}-title {chart}-desc"
    expect(page.locator("#reads-chart-desc")).to_have_text(f"6 reads; the busiest day was {day(0)} with 4.")
    assert page.locator("#reads-chart rect").count() == 2  # one bar for each day with reads
    assert page.locator("#hits-chart rect.k-stolen_vehicle").count() == 2
    assert page.locator("#hits-chart rect.k-amber").count() == 1
    amber = page.locator("#hits-chart rect.k-amber")
    assert amber.evaluate("el => getComputedStyle(el).fill") != amber.evaluate("el => getComputedStyle(el.previousElementSibling).fill")

    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
    screenshot(page, "dashboard")
    page.set_viewport_size(TABLET)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "dashboard")


def test_audit_log_is_filtered_and_paged(dept, tmp_path):
    add_user(dept, "sam", "supervisor")
    for n in range(3):
        dept.hotlist(tmp_path, f"list{n}", "plate\n8ABC123\n")
    with closing(web_client(dept, "sam", "long enough pw")) as client:
        newest = client.get("/audit").text
        assert newest.index("auth.login") < newest.index("hotlist.import")  # newest first
        imports = client.get("/audit", params={"action": "hotlist."}).text
        assert imports.count("<code>hotlist.import</code>") == 3 and "auth.login" not in imports
        assert "list2" in imports and "Older" not in imports
        by_actor = client.get("/audit", params={"actor": "sam"}).text
        assert "<code>auth.login</code>" in by_actor and "hotlist.import" not in by_actor
        with sqlite3.connect(dept.settings.db_path) as conn:
            conn.executemany("INSERT INTO audit_log (at, actor, action) VALUES (?, 'sam', 'search')", [(n,) for n in range(60)])  # two pages
        first = client.get("/audit", params={"action": "search"}).text
        assert first.count("<code>search</code>") == 50 and "before=" in first
        before = first.split("before=")[1].split('"')[0]
        second = client.get("/audit", params={"action": "search", "before": before}).text
        assert second.count("<code>search</code>") == 10 and "Older" not in second


def test_chart_geometry():
    assert [nice_top(v) for v in (0, 1, 3, 7, 11, 99, 101)] == [1, 1, 5, 10, 20, 100, 200]
    chart = column_chart(["a", "b", "c"], {"x": [1, 0, 4], "y": [2, 0, 6]})
    a, b, c = chart.columns
    assert b.segments == [] and [s.value for s in c.segments] == [4, 6]
    assert round(sum(s.height for s in c.segments), 1) == round(chart.baseline - chart.ticks[-1][0], 1)  # 10 = top
    assert abs(c.segments[0].y + c.segments[0].height - chart.baseline) < 0.01  # stacked from the baseline up
    assert [value for _, value in chart.ticks] == [0, 5, 10]
    assert c.labelled and not b.labelled
