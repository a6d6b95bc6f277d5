"""Supervisors and admins in real Chromium and over HTTP: hot lists, cameras, users, roles."""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from datetime import UTC, datetime, timedelta

import httpx
from playwright.sync_api import expect

from server.store import queries_admin
from server.store.migrations import migrate
from tests.browser import screenshot, sign_in
from tests.conftest import run_cli

ADMIN_PAGES = ["/hotlists", "/cameras", "/users", "/audit", "/dashboard"]
OLIVES_OWN = "olive's own pw"  # what olive, added on /users, chooses in place of the admin's


def add_user(dept, name: str, role: str, password: str = "long enough pw") -> None:
    assert run_cli(dept.settings, "user", "add", name, "--role", role, "--password-stdin", stdin=f"{password}\n") == 0


def web_client(dept, username: str, password: str) -> httpx.Client:
    """A browser-like HTTP client: signed in with a session cookie, sends the CSRF token."""
    client = httpx.Client(base_url=dept.live.url, timeout=10)
    client.get("/login")
    resp = client.post("/login", data={"username": username, "password": password, "_csrf_token": client.cookies["csrftoken"]})
    assert resp.status_code == 303 and resp.headers["location"] == "/", resp.text
    client.headers["x-csrftoken"] = client.cookies["csrftoken"]
    return client


def db_rows(dept, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(dept.settings.db_path) as conn:
        return conn.execute(sql, params).fetchall()


def test_officer_and_supervisor_are_refused_what_their_role_does_not_allow(dept):
    add_user(dept, "sam", "supervisor")
    with closing(web_client(dept, "alice", "correct horse")) as officer, \
            closing(web_client(dept, "sam", "long enough pw")) as supervisor:
        for path in ADMIN_PAGES:
            assert officer.get(path).status_code == 403, path
        assert officer.post("/hotlists", data={"name": "x", "kind": "custom"}).status_code == 403
        for path in ADMIN_PAGES[:2] + ADMIN_PAGES[3:]:
            assert supervisor.get(path).status_code == 200, path
        assert supervisor.get("/users").status_code == 403
        assert supervisor.post("/cameras", data={"name": "sneaky"}).status_code == 403
        assert supervisor.post("/users", data={"username": "x", "role": "admin", "password": "12345678"}).status_code == 403
    assert not db_rows(dept, "SELECT 1 FROM hotlists") and not db_rows(dept, "SELECT 1 FROM cameras WHERE name = 'sneaky'")
    anonymous = httpx.get(f"{dept.live.url}/hotlists", follow_redirects=False)
    assert anonymous.status_code == 302 and anonymous.headers["location"] == "/login?next=/hotlists"


def test_supervisor_adds_plates_that_alert_now_and_for_earlier_reads_then_removes_one(dept, page):
    add_user(dept, "sam", "supervisor")
    earlier = dept.post_read("7XYZ999").json()  # read before anyone listed it
    assert earlier["alerts"] == []
    sign_in(page, dept.live.url, "sam", "long enough pw")
    page.goto(f"{dept.live.url}/hotlists")
    page.get_by_label("Name").fill("Local stolen")
    page.get_by_label("Kind").select_option("stolen_vehicle")
    page.get_by_label("Source").fill("Records unit")
    page.get_by_role("button", name="Create list").click()
    expect(page.get_by_role("heading", name="Local stolen")).to_be_visible()

    def add(plate: str, reason: str) -> None:
        page.get_by_label("Plate", exact=True).fill(plate)
        page.get_by_label("State").fill("ca")
        page.get_by_label("Reason").fill(reason)
        page.get_by_label("Expires").fill("2099-12-31")
        page.get_by_role("button", name="Add plate").click()

    add("7xyz 999", "Stolen 2026-05-01, case 26-77")
    expect(page.get_by_role("status")).to_contain_text("Added 7XYZ999. It was read earlier: 1 alert(s)")
    [(read_id, retro, reason)] = db_rows(dept, "SELECT read_id, retro, entry_reason FROM alerts WHERE entry_plate_norm = '7XYZ999'")
    assert (read_id, retro, reason) == (earlier["id"], 1, "Stolen 2026-05-01, case 26-77")

    add("4NEW111", "Wanted in robbery")
    expect(page.get_by_role("status")).to_contain_text("Added 4NEW111.")
    add("4NEW111", "again")
    expect(page.get_by_role("alert")).to_contain_text("4NEW111 is already on this list")
    assert len(dept.post_read("4NEW111").json()["alerts"]) == 1

    page.on("dialog", lambda dialog: dialog.accept())  # hx-confirm asks before removing
    # Enter submits the search, as an officer would; typing alone searches after a 400 ms pause,
    # which races with htmx still wiring the form the previous swap put in.
    page.get_by_label("Find a plate").fill("new1")
    page.get_by_label("Find a plate").press("Enter")
    expect(page.locator("#entries")).to_contain_text("1 entry matching")
    page.get_by_role("button", name="Remove 4NEW111").click()
    expect(page.get_by_role("status")).to_contain_text("Removed 4NEW111 from Local stolen")
    assert dept.post_read("4NEW111").json()["alerts"] == []
    actions = [a for (a,) in db_rows(dept, "SELECT action FROM audit_log WHERE action LIKE 'hotlist.%' ORDER BY id")]
    assert actions == ["hotlist.create", "hotlist.entry_add", "hotlist.entry_add", "hotlist.entry_remove"]
    [(expires,)] = db_rows(dept, "SELECT expires_at FROM hotlist_entries WHERE plate_norm = '7XYZ999'")
    assert expires == int(datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC).timestamp() * 1000)


def test_removing_without_javascript_asks_first(dept, tmp_path):
    add_user(dept, "sam", "supervisor")
    dept.hotlist(tmp_path, "stolen", "plate,reason\n8ABC123,Stolen\n")
    [(list_id, entry_id)] = db_rows(dept, "SELECT hotlist_id, id FROM hotlist_entries")
    with closing(web_client(dept, "sam", "long enough pw")) as client:
        asked = client.post(f"/hotlists/{list_id}/entries/{entry_id}/remove")
        assert asked.status_code == 200 and "<title>Remove 8ABC123" in asked.text and "Keep it" in asked.text
        assert db_rows(dept, "SELECT count(*) FROM hotlist_entries") == [(1,)]
        done = client.post(f"/hotlists/{list_id}/entries/{entry_id}/remove", data={"confirm": "yes", "note": "recovered"})
        assert "Removed 8ABC123" in done.text
    assert db_rows(dept, "SELECT count(*) FROM hotlist_entries") == [(0,)]
    [(detail,)] = db_rows(dept, "SELECT detail FROM audit_log WHERE action = 'hotlist.entry_remove'")
    assert '"note":"recovered"' in detail and '"plate":"8ABC123"' in detail


def test_csv_upload_shows_every_bad_line_and_imports_nothing_unless_told(dept, page, tmp_path):
    add_user(dept, "sam", "supervisor")
    dept.hotlist(tmp_path, "state-feed", "plate,reason\nOLD1111,Stolen\n", "--kind", "stolen_plate")
    dept.post_read("5NEW555")
    bad_csv = tmp_path / "feed.csv"
    bad_csv.write_text("plate,state,reason,expires\n5NEW555,CA,Stolen,\n,CA,empty plate,\n6GOOD66,CA,ok,2099-01-01\n"
                       "7BAD777,CA,bad date,31/12/2099\n5NEW555,CA,repeat,\n")
    sign_in(page, dept.live.url, "sam", "long enough pw")
    page.goto(f"{dept.live.url}/hotlists")
    expect(page.locator("#lists")).to_contain_text("state-feed")
    page.get_by_role("link", name="state-feed").click()
    page.get_by_label("CSV file").set_input_files(str(bad_csv))
    page.get_by_role("button", name="Import and replace").click()
    expect(page.get_by_role("alert")).to_contain_text("3 bad line(s) in feed.csv: nothing was imported")
    lines = page.locator("#bad-lines li")
    expect(lines).to_have_count(3)
    expect(lines.nth(0)).to_have_text("line 3: plate is empty or has no letters or digits")
    expect(lines.nth(1)).to_contain_text("line 5: expires '31/12/2099' is not an ISO date")
    expect(lines.nth(2)).to_have_text("line 6: plate 5NEW555 repeats line 2")
    screenshot(page, "hotlist-import")
    assert db_rows(dept, "SELECT plate_norm FROM hotlist_entries") == [("OLD1111",)]

    page.get_by_label("CSV file").set_input_files(str(bad_csv))
    page.get_by_label("Skip bad lines").check()
    page.get_by_role("button", name="Import and replace").click()
    expect(page.get_by_role("status")).to_contain_text("2 entries (2 new, 1 removed, 3 bad lines skipped); 1 alert(s)")
    expect(page.get_by_test_id("entry-count")).to_have_text("2")
    assert sorted(db_rows(dept, "SELECT plate_norm FROM hotlist_entries")) == [("5NEW555",), ("6GOOD66",)]
    assert db_rows(dept, "SELECT entry_plate_norm, retro FROM alerts") == [("5NEW555", 1)]


def test_entries_are_paged_and_searchable(dept, tmp_path):
    add_user(dept, "sam", "supervisor")
    rows = "".join(f"P{n:05d},bulk\n" for n in range(1, 131))
    dept.hotlist(tmp_path, "big", "plate,reason\n" + rows)
    [(list_id,)] = db_rows(dept, "SELECT id FROM hotlists")
    with closing(web_client(dept, "sam", "long enough pw")) as client:
        first = client.get(f"/hotlists/{list_id}").text
        assert first.count('class="plate small-plate"') == 50 and "page 1 of 3" in first and "P00050" in first
        last = client.get(f"/hotlists/{list_id}", params={"page": 3}, headers={"hx-request": "true", "hx-target": "entries"})
        assert last.text.startswith('<div id="entries">') and last.text.count('class="plate small-plate"') == 30
        found = client.get(f"/hotlists/{list_id}", params={"q": "p0012"}).text
        assert "10 entries matching" in found and "P00120" in found and "P00130" not in found
        assert "stale" not in client.get("/hotlists").text
        with sqlite3.connect(dept.settings.db_path) as conn:
            conn.execute("UPDATE hotlists SET refreshed_at = refreshed_at - 3 * 86400000")
        assert '<span class="badge stale">stale</span>' in client.get("/hotlists").text


def test_back_after_a_history_cache_miss_restores_whole_pages(dept, tmp_path):
    """The entry pager pushes its URL (hx-push-url): Back after htmx's history cache lost the
    page asks again with HX-History-Restore-Request, and must get the whole page, not a fragment."""
    add_user(dept, "ada", "admin")
    dept.hotlist(tmp_path, "big", "plate,reason\n" + "".join(f"P{n:05d},bulk\n" for n in range(1, 61)))
    [(list_id,)] = db_rows(dept, "SELECT id FROM hotlists")
    restore = {"hx-request": "true", "hx-history-restore-request": "true", "hx-current-url": "/"}
    with closing(web_client(dept, "ada", "long enough pw")) as client:
        for path in (f"/hotlists/{list_id}?page=2", "/cameras", "/users", "/search/reasons"):
            restored = client.get(path, headers=restore)
            assert restored.status_code == 200 and restored.text.lstrip().startswith("<!doctype html>"), path


def test_entry_pages_walk_the_index_without_sorting(tmp_path):
    """Paging a 100,000-entry list reads the index in order; SQLite's plan is the witness."""
    migrate(tmp_path / "plan.db")
    with sqlite3.connect(tmp_path / "plan.db") as conn:
        plan = [row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {queries_admin.ENTRIES_PAGE_SQL}", [1] * 4)]
    assert plan == ["SEARCH h USING INTEGER PRIMARY KEY (rowid=?)",
                    "SEARCH e USING INDEX entries_list_version_plate (hotlist_id=? AND version=?)"]


def test_admin_adds_a_camera_whose_token_is_shown_once_and_works(dept, page):
    add_user(dept, "chief", "admin")
    sign_in(page, dept.live.url, "chief", "long enough pw")
    page.goto(f"{dept.live.url}/cameras")
    expect(page.locator("tr", has_text="main-st").get_by_text("silent")).to_be_visible()  # never heard from
    page.get_by_label("Name").fill("elm-st")
    page.get_by_label("Location").fill("Elm St & 5th")
    page.get_by_role("button", name="Add camera").click()
    expect(page.get_by_role("note")).to_contain_text("cannot be shown again")
    token = page.get_by_label("Token for the worker's configuration").input_value()
    assert token.startswith("pwc_")
    screenshot(page, "camera-token")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=dept.live.url)
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#copy-status")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == token
    assert page.locator("#camera-token").evaluate("el => el.readOnly")

    read = {"id": str(uuid.uuid4()), "plate": "9ELM999", "confidence": 0.9, "candidates": [],
            "captured_at": datetime.now(UTC).isoformat()}
    resp = httpx.post(f"{dept.live.url}/api/v1/reads", json=read, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 201, resp.text
    page.goto(f"{dept.live.url}/cameras")
    row = page.locator("tr", has_text="elm-st")
    expect(row).to_contain_text("Elm St & 5th")
    expect(row.locator("td[data-label='Status']")).to_have_text("ok")
    expect(row.locator("td[data-label='Reads, last hour']")).to_have_text("1")
    assert token not in page.content()
    assert db_rows(dept, "SELECT actor FROM audit_log WHERE action = 'camera.add'") == [("cli",), ("chief",)]


def test_camera_health_from_heartbeats_and_disabling_a_camera(dept):
    add_user(dept, "chief", "admin")
    [(camera_id,)] = db_rows(dept, "SELECT id FROM cameras WHERE name = 'main-st'")
    frozen = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    beat = dept.http.post("/api/v1/cameras/heartbeat", headers=dept.camera_headers,
                          json={"frames_per_s": 0.0, "last_frame_at": frozen, "frames_gated": 1234})
    assert beat.status_code == 200, beat.text
    with closing(web_client(dept, "chief", "long enough pw")) as client:
        row = client.get("/cameras").text.split(f'id="camera-{camera_id}"')[1].split("</tr>")[0]
        assert 'data-status="stale"' in row and "10 min ago" in row and ">0.0<" in row and ">1234<" in row
        page = client.post(f"/cameras/{camera_id}/disable", headers={"hx-request": "true"})
        assert page.text.startswith('<div id="cameras">') and "main-st disabled" in page.text
        assert dept.post_read("1ABC234").status_code == 401
        assert client.post(f"/cameras/{camera_id}/enable").status_code == 200
        assert dept.post_read("1ABC234").status_code == 201
    assert [a for (a,) in db_rows(dept, "SELECT action FROM audit_log WHERE action LIKE 'camera.%'")] == [
        "camera.add", "camera.disable", "camera.enable"]  # the fixture camera came from the CLI


def test_admin_adds_a_user_who_signs_in_then_is_disabled_and_cannot(dept, page):
    add_user(dept, "chief", "admin")
    sign_in(page, dept.live.url, "chief", "long enough pw")
    page.goto(f"{dept.live.url}/users")
    page.get_by_label("Username").fill("olive")
    page.get_by_label("Role", exact=True).select_option("officer")
    page.get_by_label("Initial password").fill("short")
    page.locator("#new-password").evaluate("el => el.removeAttribute('minlength')")  # the server checks too
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("alert")).to_contain_text("at least 8 characters")
    page.get_by_label("Username").fill("olive")
    page.get_by_label("Initial password").fill("olive's password")
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("status")).to_contain_text("Added olive as officer")

    olive = web_client(dept, "olive", "olive's password")
    # The admin chose that password: olive replaces it first (tests/test_password_must_change.py).
    assert olive.get("/", follow_redirects=False).headers["location"] == "/account"
    changed = olive.post("/account/password", data={"current_password": "olive's password",
                                                    "new_password": OLIVES_OWN, "confirm_password": OLIVES_OWN})
    assert changed.status_code == 200 and "Your password is changed" in changed.text
    assert olive.get("/").status_code == 200
    page.get_by_label("Role of olive", exact=True).select_option("supervisor")
    page.get_by_role("button", name="Change role of olive").click()
    expect(page.get_by_role("status")).to_contain_text("olive is now supervisor")
    screenshot(page, "users")
    assert olive.get("/hotlists").status_code == 200

    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Disable olive").click()
    expect(page.get_by_role("status")).to_contain_text("olive is disabled")
    assert olive.get("/", follow_redirects=False).status_code == 302  # the session ended at once
    refused = httpx.post(f"{dept.live.url}/api/v1/auth/token", json={"username": "olive", "password": OLIVES_OWN})
    assert refused.status_code == 401
    olive.close()

    page.get_by_role("button", name="Disable chief").click()
    expect(page.get_by_role("alert")).to_contain_text("You can't disable your own account")
    page.get_by_label("Role of chief", exact=True).select_option("officer")
    page.get_by_role("button", name="Change role of chief").click()
    expect(page.get_by_role("alert")).to_contain_text("You can't change your own role")
    assert db_rows(dept, "SELECT role, disabled FROM users WHERE username = 'chief'") == [("admin", 0)]
    actions = [a for (a,) in db_rows(dept, "SELECT action FROM audit_log WHERE actor = 'chief' AND action LIKE 'user.%'")]
    assert actions == ["user.add", "user.role", "user.disable"]
