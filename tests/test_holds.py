"""Evidence holds: an officer keeps a read past the retention period for a case; its images move
out of the day folders retention sweeps; a purge far past the cutoff keeps it with its images and
alert while its neighbours go; a supervisor releases it and the next purge deletes it. Over real
HTTP (session cookie + CSRF), a real purge on the real database, the real backup command, the
public transparency report, and once in Chromium on a phone."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import expect

from server.retention import HELD_GRACE_S, purge
from server.store.db import Database
from server.store.migrations import migrate
from server.store.queries_holds import PURGEABLE_SQL
from tests.browser import screenshot, sign_in
from tests.conftest import backdate
from tests.test_backup import run_backup
from tests.test_ingest import jpeg, multipart_read
from tests.test_web_admin import add_user
from tests.test_web_search import Officer, audit

CASE = "24-00117"
DAY_MS = 86_400_000


def post_read(dept, plate: str, captured_at: datetime, shade: int = 100) -> int:
    """A read with a plate crop and a vehicle crop of its own bytes, captured then; its id. One
    past retention (ingest refuses it) is stored fresh and aged, as a read stored while recent."""
    data, files = multipart_read(plate, plate_image=jpeg(color=(shade, 90, 40)),
                                 vehicle_image=jpeg((160, 120), color=(40, shade, 90)))
    aged = captured_at < days_ago(dept.settings.retention_days - 1)
    read = json.loads(data["read"])
    read["captured_at"] = (datetime.now(UTC) if aged else captured_at).isoformat()
    resp = dept.http.post("/api/v1/reads", data={"read": json.dumps(read)}, files=files, headers=dept.camera_headers)
    assert resp.status_code == 201, resp.text
    if aged:
        backdate(dept.settings, resp.json()["id"], captured_at)
    return resp.json()["id"]


def sql(dept, statement: str, *params) -> list[tuple]:
    with closing(sqlite3.connect(dept.settings.db_path)) as conn, conn:
        return conn.execute(statement, params).fetchall()


def images_of(dept, read_id: int) -> list[str]:
    [row] = sql(dept, "SELECT plate_image, vehicle_image FROM reads WHERE id = ?", read_id)
    return list(row)


def run_purge(dept):
    async def once():
        async with Database(dept.settings.db_path) as db:
            return await purge(db, dept.settings)

    return asyncio.run(once())


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


@pytest.fixture
def alice(dept):
    officer = Officer(dept.live.url)
    yield officer
    officer.http.close()


@pytest.fixture
def sam(dept):
    add_user(dept, "sam", "supervisor")
    supervisor = Officer(dept.live.url, "sam", "long enough pw")
    yield supervisor
    supervisor.http.close()


def hold(officer: Officer, read_id: int, case: str = CASE, note: str = "", **kwargs) -> httpx.Response:
    return officer.post(f"/reads/{read_id}/hold", {"case": case, "note": note}, **kwargs)


def test_placing_a_hold_moves_the_images_and_is_audited(dept, alice):
    read_id = post_read(dept, "7ABC123", days_ago(2))
    old_paths = images_of(dept, read_id)
    crops = [(dept.settings.data_dir / path).read_bytes() for path in old_paths]
    resp = hold(alice, read_id, note="grey van seen near the bank")
    assert resp.status_code == 200 and "Kept as evidence for case 24-00117" in resp.text
    assert "<html" in resp.text  # without JavaScript: a page of its own
    [(case, note, placed_by, released)] = sql(
        dept, "SELECT case_number, note, placed_by, released_at FROM holds WHERE read_id = ?", read_id)
    assert (case, note, placed_by, released) == (CASE, "grey van seen near the bank", "alice", None)
    new_paths = images_of(dept, read_id)
    assert all(path.startswith(f"images/held/{read_id}/") for path in new_paths), new_paths
    for old, new, crop in zip(old_paths, new_paths, crops):
        assert not (dept.settings.data_dir / old).exists()  # moved, not copied
        assert (dept.settings.data_dir / new).read_bytes() == crop
        served = alice.http.get(f"/images/{new}")  # the URL the cards use now
        assert served.status_code == 200 and served.content == crop
        before = alice.http.get(f"/images/{old}")  # and the one a page drawn before the hold has
        assert before.status_code == 200 and before.content == crop
    for wrong in ("images/2020-01-01/" + old_paths[0].rsplit("/", 1)[1], old_paths[0].replace(".jpg", "x.jpg")):
        assert alice.http.get(f"/images/{wrong}").status_code == 404  # only where it was, by its own name
    [line] = audit(dept, "hold.placed")
    assert (line["actor"], line["read"], line["plate"], line["case"]) == ("alice", read_id, "7ABC123", CASE)
    assert line["note"] == "grey van seen near the bank" and line["images_moved"] == 2
    [(hold_id,)] = sql(dept, "SELECT id FROM holds")
    assert line["hold"] == hold_id


def test_cards_open_the_form_in_place_and_htmx_gets_the_block_back(dept, alice):
    read_id = post_read(dept, "7ABC123", days_ago(1))
    results = alice.search(plate="7ABC123").text
    assert f'hx-get="/reads/{read_id}/hold"' in results and 'name="case" value="24-00117"' in results
    form = alice.http.get(f"/reads/{read_id}/hold", params={"case": CASE}, headers={"HX-Request": "true"})
    assert form.status_code == 200 and form.text.lstrip().startswith(f'<div class="hold" id="hold-{read_id}">')
    assert f'action="/reads/{read_id}/hold"' in form.text and f'value="{CASE}" required' in form.text
    page = alice.http.get(f"/reads/{read_id}/hold")  # without JavaScript: a page of its own
    assert page.status_code == 200 and "<html" in page.text and "Keep 7ABC123 as evidence" in page.text
    assert alice.http.get("/reads/999999/hold").status_code == 404
    assert sql(dept, "SELECT count(*) FROM holds") == [(0,)]  # opening the form writes nothing
    resp = hold(alice, read_id, headers={"HX-Request": "true"})
    assert resp.status_code == 200
    assert resp.text.lstrip().startswith(f'<div class="hold" id="hold-{read_id}">')
    assert "Kept for case <strong>24-00117</strong> by alice" in resp.text and "<html" not in resp.text


def test_held_read_outlives_a_purge_far_past_the_cutoff_with_images_and_alert(dept, alice, tmp_path):
    dept.hotlist(tmp_path, "stolen", "plate\nHELD1\n")
    day = days_ago(dept.settings.retention_days + 40).replace(hour=12)
    held = post_read(dept, "HELD1", day)
    neighbours = [post_read(dept, f"NEAR{i}", day + timedelta(minutes=i + 1), shade=20 * i) for i in range(2)]
    neighbour_files = [dept.settings.data_dir / p for n in neighbours for p in images_of(dept, n)]
    [(alert_id,)] = sql(dept, "SELECT id FROM alerts WHERE read_id = ?", held)
    recent = post_read(dept, "NEW1", days_ago(1))
    assert hold(alice, held).status_code == 200
    held_files = [dept.settings.data_dir / p for p in images_of(dept, held)]
    day_folder = dept.settings.images_dir / day.strftime("%Y-%m-%d")
    assert day_folder.is_dir() and all(f.parent == day_folder for f in neighbour_files)

    result = run_purge(dept)
    assert (result.reads, result.images, result.held) == (2, 4, 1)
    assert sorted(r for (r,) in sql(dept, "SELECT id FROM reads")) == [held, recent]
    assert not day_folder.exists() and not any(f.exists() for f in neighbour_files)  # the day went
    assert all(f.is_file() for f in held_files)  # but not the held images
    assert sql(dept, "SELECT read_id FROM alerts WHERE id = ?", alert_id) == [(held,)]
    alert_page = alice.http.get(f"/alerts/{alert_id}").text
    assert "Kept for case <strong>24-00117</strong>" in alert_page
    assert all(f'src="/images/{p}"' in alert_page for p in images_of(dept, held))
    detail = json.loads(sql(dept, "SELECT detail FROM audit_log WHERE action = 'retention.purge' "
                                  "ORDER BY id DESC LIMIT 1")[0][0])
    assert detail["held"] == 1 and detail["reads"] == 2
    assert detail["oldest_remaining"] == result.oldest_remaining > detail["cutoff"]  # the held read is not it
    with pytest.raises(sqlite3.IntegrityError, match="evidence hold"):  # nothing else deletes it either
        sql(dept, "DELETE FROM reads WHERE id = ?", held)


def test_released_hold_lets_the_next_purge_delete_the_read_and_its_files(dept, alice, sam):
    read_id = post_read(dept, "OLD1", days_ago(dept.settings.retention_days + 5))
    assert hold(alice, read_id).status_code == 200
    files = [dept.settings.data_dir / p for p in images_of(dept, read_id)]
    assert run_purge(dept).reads == 0 and all(f.exists() for f in files)
    [(hold_id,)] = sql(dept, "SELECT id FROM holds")
    sql(dept, "UPDATE holds SET placed_at = placed_at - ? WHERE id = ?", 3 * DAY_MS, hold_id)
    resp = sam.post(f"/holds/{hold_id}/release", {})
    assert resp.status_code == 200 and "Released the hold on OLD1 (case 24-00117)" in resp.text
    assert "the next purge deletes it" in resp.text
    assert all(f.exists() for f in files)  # releasing moves nothing: the purge deletes by path
    [line] = audit(dept, "hold.released")
    assert (line["actor"], line["hold"], line["read"], line["case"]) == ("sam", hold_id, read_id, CASE)
    assert 3 <= line["days_held"] < 3.01
    result = run_purge(dept)
    assert (result.reads, result.images, result.held) == (1, 2, 0)
    assert sql(dept, "SELECT count(*) FROM reads") == [(0,)] and sql(dept, "SELECT count(*) FROM holds") == [(0,)]
    assert not any(f.exists() for f in files) and not (dept.settings.held_images_dir / str(read_id)).exists()


def test_a_second_hold_is_refused_naming_who_holds_it_and_the_case(dept, alice, sam):
    read_id = post_read(dept, "7ABC123", days_ago(1))
    assert hold(alice, read_id).status_code == 200
    paths = images_of(dept, read_id)
    again = hold(sam, read_id, case="25-99999")
    assert again.status_code == 409
    assert "Already kept as evidence by alice for case 24-00117" in again.text
    fragment = hold(sam, read_id, case="25-99999", headers={"HX-Request": "true"})
    assert fragment.status_code == 409 and fragment.headers["content-type"].startswith("text/html")
    assert fragment.text.lstrip().startswith(f'<div class="hold" id="hold-{read_id}">')
    assert sql(dept, "SELECT case_number FROM holds") == [(CASE,)] and len(audit(dept, "hold.placed")) == 1
    assert images_of(dept, read_id) == paths and all((dept.settings.data_dir / p).exists() for p in paths)


def test_a_hold_needs_a_case_number_checked_as_a_searchs(dept, alice):
    read_id = post_read(dept, "7ABC123", days_ago(1))
    for case, note, message in (("", "", "Give the case number this read is kept for"),
                                ("x" * 41, "", "at most 40 characters"), ("24\x0700117", "", "control characters"),
                                (CASE, "n" * 501, "The note is too long")):
        resp = hold(alice, read_id, case=case, note=note)
        assert resp.status_code == 422 and message in resp.text, case
    assert sql(dept, "SELECT count(*) FROM holds") == [(0,)] and audit(dept, "hold.placed") == []
    assert images_of(dept, read_id)[0].startswith("images/2")  # still in its day folder


def test_a_hold_on_an_unknown_or_purged_read_is_404(dept, alice):
    gone = post_read(dept, "OLD1", days_ago(dept.settings.retention_days + 1))
    assert run_purge(dept).reads == 1
    for read_id in (gone, 999_999):
        resp = hold(alice, read_id)
        assert resp.status_code == 404 and "This read is not stored" in resp.text
    assert sql(dept, "SELECT count(*) FROM holds") == [(0,)]
    assert alice.post("/reads/not-a-number/hold", {"case": CASE}).status_code in (404, 405)
    assert alice.post(f"/reads/{2**64}/hold", {"case": CASE}).status_code == 404  # past SQLite's integers


def test_officers_place_holds_but_only_supervisors_list_and_release_them(dept, alice, sam):
    first, second = post_read(dept, "FIRST1", days_ago(3)), post_read(dept, "SECOND2", days_ago(2))
    assert hold(alice, second, case="CASE-B").status_code == 200
    assert hold(sam, first, case="CASE-A", note="plate swapped").status_code == 200  # supervisors place too
    [(first_hold,)] = sql(dept, "SELECT id FROM holds WHERE read_id = ?", first)
    sql(dept, "UPDATE holds SET placed_at = placed_at - ? WHERE id = ?", 5 * DAY_MS, first_hold)
    assert alice.http.get("/holds").status_code == 403
    assert alice.post(f"/holds/{first_hold}/release", {}).status_code == 403
    assert 'href="/holds"' not in alice.http.get("/search").text
    page = sam.http.get("/holds")
    assert page.status_code == 200 and 'href="/holds" aria-current="page"' in page.text
    active = page.text.split('id="released-holds"')[0]
    assert active.index("FIRST1") < active.index("SECOND2")  # oldest first, though placed last
    assert "CASE-A" in active and "plate swapped" in active and ">sam<" in active and ">alice<" in active
    assert '<td data-label="Days held" class="num">5</td>' in active
    assert "Release FIRST1" in active and "Release SECOND2" in active
    released = sam.post(f"/holds/{first_hold}/release", {}, headers={"HX-Request": "true"})
    assert released.status_code == 200 and released.text.lstrip().startswith('<div id="holds">')
    assert "it is deleted with its pictures once it reaches the retention period" in released.text
    assert "Release FIRST1" not in released.text and "CASE-A" in released.text.split('id="released-holds"')[1]
    again = sam.post(f"/holds/{first_hold}/release", {})
    assert again.status_code == 409 and "released already by sam" in again.text
    assert sam.post("/holds/999999/release", {}).status_code == 404
    assert [line["hold"] for line in audit(dept, "hold.released")] == [first_hold]


def test_a_hold_without_the_csrf_token_is_refused(dept, alice):
    read_id = post_read(dept, "7ABC123", days_ago(1))
    resp = alice.http.post(f"/reads/{read_id}/hold", data={"case": CASE})  # session cookie, no token
    assert resp.status_code == 403
    assert sql(dept, "SELECT count(*) FROM holds") == [(0,)] and audit(dept, "hold.placed") == []
    assert httpx.post(f"{dept.live.url}/reads/{read_id}/hold", data={"case": CASE}).status_code == 403


def test_backup_copies_held_images(dept, alice, capsys, tmp_path):
    read_id = post_read(dept, "OLD1", days_ago(dept.settings.retention_days + 3))
    assert hold(alice, read_id).status_code == 200
    held = images_of(dept, read_id)
    (tmp_path / "backups").mkdir()
    folder = run_backup(dept.settings, tmp_path / "backups", capsys=capsys)
    with closing(sqlite3.connect(folder / "platewatch.db")) as copy:
        assert copy.execute("SELECT plate_image, vehicle_image FROM reads WHERE id = ?", (read_id,)).fetchall() \
            == [tuple(held)]
        assert copy.execute("SELECT case_number FROM holds").fetchall() == [(CASE,)]
    for rel in held:
        assert rel.startswith("images/held/")
        assert (folder / rel).read_bytes() == (dept.settings.data_dir / rel).read_bytes()


def test_transparency_counts_holds_and_names_no_case(dept, alice):
    old = post_read(dept, "OLD1", days_ago(dept.settings.retention_days + 10))
    recent = post_read(dept, "NEW1", days_ago(1))
    post_read(dept, "UNHELD2", days_ago(2))
    assert hold(alice, old, case="EVID-5521", note="Nightjar stash").status_code == 200
    assert hold(alice, recent, case="EVID-6632").status_code == 200
    sql(dept, "UPDATE holds SET placed_at = placed_at - ? WHERE read_id = ?", 12 * DAY_MS, old)
    run_purge(dept)
    with httpx.Client(base_url=dept.live.url) as anonymous:
        page, data = anonymous.get("/transparency"), anonymous.get("/transparency.json")
    retention = data.json()["retention"]
    assert retention["held_past_retention"] == 1  # the recent held read is within the period
    assert 12 <= retention["oldest_hold_age_days"] < 12.01
    assert 1.99 < retention["oldest_read_age_days"] < 2.01  # of the reads no hold keeps
    assert any("only under an evidence hold naming a case" in line for line in data.json()["policy"]["evidence_holds"])
    assert 'id="held-reads">1 read<' in page.text and 'id="oldest-hold">placed 12.0 days ago<' in page.text
    for resp in (page, data):
        leaked = [v for v in ("EVID-5521", "EVID-6632", "Nightjar", "OLD1", "NEW1", "UNHELD2", "alice")
                  if v in resp.text]
        assert leaked == [], leaked


def test_purge_sweeps_held_copies_no_read_names_once_settled(dept, alice):
    """A crash between copying a held image and committing the hold leaves a file no row names."""
    read_id = post_read(dept, "7ABC123", days_ago(1))
    folder = dept.settings.held_images_dir / str(read_id)
    folder.mkdir(parents=True)
    orphan, fresh = folder / "crashed-plate.jpg", folder / "being-placed-plate.jpg"
    for path in (orphan, fresh):
        path.write_bytes(jpeg())
    settled = time.time() - HELD_GRACE_S - 60
    os.utime(orphan, (settled, settled))
    other = dept.settings.held_images_dir / "notes" / "keep.txt"  # not a read's folder: not ours
    other.parent.mkdir()
    other.write_text("keep")
    assert hold(alice, read_id).status_code == 200  # its real images land beside them
    result = run_purge(dept)
    assert result.stray_images == 1 and not orphan.exists()
    assert fresh.exists() and other.exists()
    assert all((dept.settings.data_dir / p).exists() for p in images_of(dept, read_id))


def test_purge_skips_held_reads_through_the_active_hold_index(tmp_path):
    migrate(tmp_path / "plan.db")
    with closing(sqlite3.connect(tmp_path / "plan.db")) as conn:
        plan = " | ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {PURGEABLE_SQL}", [0, 10]))
    assert "reads_time" in plan and "holds_active_read" in plan and "SCAN h" not in plan, plan


def test_keeping_a_search_result_as_evidence_on_a_phone(dept, page):
    """An officer keeps a search result from its card; a supervisor finds it on /holds and releases it."""
    read_id = post_read(dept, "7ABC123", days_ago(1))
    add_user(dept, "sam", "supervisor")
    sign_in(page, dept.live.url)
    page.goto(f"{dept.live.url}/search")
    page.get_by_label("Reason").select_option(index=1)
    page.get_by_label("Case number").fill(CASE)
    page.get_by_label("Plate").fill("7ABC123")
    page.get_by_role("button", name="Search", exact=True).click()
    card = page.locator(f'.read-card[data-read="{read_id}"]')
    expect(card).to_be_visible()
    card.get_by_role("button", name="Keep as evidence").click()  # opens the small form in place
    expect(card.get_by_label("Case number")).to_have_value(CASE)  # the search's, to change if need be
    card.get_by_label("Remarks (optional)").fill("grey van")
    button = card.get_by_role("button", name="Keep 7ABC123 as evidence")
    box = button.bounding_box()
    assert box["width"] >= 44 and box["height"] >= 44
    button.click()
    expect(card.get_by_role("status")).to_contain_text("Kept as evidence for case 24-00117")
    expect(card.locator(".held")).to_contain_text("Kept for case 24-00117 by alice")
    assert page.url.endswith("/search")  # swapped in place: the results stay
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert sql(dept, "SELECT case_number, note, placed_by FROM holds") == [(CASE, "grey van", "alice")]
    screenshot(page, "evidence-hold")

    page.get_by_role("button", name="Sign out alice").click()
    sign_in(page, dept.live.url, "sam", "long enough pw")
    page.get_by_role("link", name="Holds").click()
    row = page.locator("#active-hold-list tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("24-00117")
    release = row.get_by_role("button", name="Release 7ABC123")
    box = release.bounding_box()
    assert box["width"] >= 44 and box["height"] >= 44
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "evidence-holds")
    page.once("dialog", lambda dialog: dialog.accept())  # "Release the hold on 7ABC123 …?"
    release.click()
    expect(page.get_by_role("status")).to_contain_text("Released the hold on 7ABC123 (case 24-00117)")
    expect(page.locator("#active-hold-list")).to_have_count(0)
    assert sql(dept, "SELECT released_by FROM holds") == [("sam",)]
