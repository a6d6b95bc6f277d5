"""Times at the calendar's edges (issue 17, defects 1, 2 and 10), on the real app over HTTP with a
real SQLite, in a Chicago department (west of UTC: a time near year 1 moves before it there).

A capture time outside the window around the server's clock (no older than the retention period,
no more than settings.max_clock_skew_s ahead) is refused with a 400 naming captured_at; times an
old database already holds, whatever the integer, break no page, API answer or push; retention
purges future-dated reads; hot-list expiries and search times at the calendar's edge get an error
naming the line or field, never a 500."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta

import pytest

from server.retention import purge
from server.settings import load_settings
from server.store.db import Database
from tests.conftest import Department, LiveServer, make_settings, run, run_cli
from tests.test_ingest import jpeg, multipart_read
from tests.test_ingest import push  # noqa: F401 - the fixture
from tests.test_retention import post_with_image
from tests.test_web_admin import add_user, web_client
from tests.test_web_search import Officer, audit

EDGES = ("9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z")
# What an old database may hold: datetime's edges and beyond, SQLite's integer edges.
STORED = (253402304399000, -62135600400000, -62135596800000, 32503680000000000, 2**63 - 1, -(2**63))
HOTLIST = "plate,reason\n8ABC123,Stolen (test)\n"


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path / "data", time_zone="America/Chicago")


def db_rows(settings, sql: str, *params) -> list[tuple]:
    with closing(sqlite3.connect(settings.db_path)) as conn, conn:
        return conn.execute(sql, params).fetchall()


def now_iso(**delta) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


# --- defect 1: the rule at the edge -----------------------------------------------------------------

@pytest.mark.parametrize("captured_at", [*EDGES, "2999-01-01T00:00:00Z", "future", "past"])
def test_a_capture_time_outside_the_window_is_refused_naming_the_field(dept, captured_at):
    # Ten minutes fast (the default tolerance is five), or older than the 30-day retention period.
    captured_at = {"future": now_iso(minutes=10), "past": now_iso(days=-31)}.get(captured_at, captured_at)
    resp = dept.post_read("8ABC123", captured_at=captured_at)
    assert resp.status_code == 400, resp.text
    detail = resp.json()["detail"]
    assert "captured_at" in detail and captured_at[:10] in detail and "clock" in detail, detail
    data, files = multipart_read("8ABC123", plate_image=jpeg())
    data["read"] = json.dumps({**json.loads(data["read"]), "captured_at": captured_at})
    resp = dept.http.post("/api/v1/reads", data=data, files=files, headers=dept.camera_headers)
    assert resp.status_code == 400 and "captured_at" in resp.json()["detail"], resp.text
    assert db_rows(dept.settings, "SELECT count(*) FROM reads") == [(0,)]
    assert not (dept.settings.data_dir / "images").exists()


def test_times_inside_the_window_are_stored(dept):
    for captured_at in (now_iso(minutes=4), now_iso(days=-29), now_iso()):
        resp = dept.post_read("8ABC123", captured_at=captured_at)
        assert resp.status_code == 201, resp.text


def test_the_future_tolerance_is_a_setting(tmp_path, capsys):
    settings = make_settings(tmp_path / "data", max_clock_skew_s=3600)
    live = LiveServer(settings).start()
    dept = Department(live, capsys)
    try:
        assert dept.post_read("8ABC123", captured_at=now_iso(minutes=50)).status_code == 201
        resp = dept.post_read("8ABC123", captured_at=now_iso(minutes=70))
        assert resp.status_code == 400 and "3600 s" in resp.json()["detail"], resp.text
    finally:
        dept.close()
        live.stop()
    assert load_settings(tmp_path, env={"PLATEWATCH_MAX_CLOCK_SKEW_S": "30"}).max_clock_skew_s == 30


# --- defect 1: whatever is already stored ------------------------------------------------------------

ALERT_COPY = ("INSERT INTO alerts (read_id, camera_id, entry_id, hotlist_id, hotlist_name, hotlist_kind, entry_plate, "
              "entry_plate_norm, entry_state, entry_reason, rule, compared, detail, created_at, seen_at) "
              "SELECT read_id, camera_id, entry_id, hotlist_id, hotlist_name, hotlist_kind, entry_plate, "
              "entry_plate_norm, entry_state, entry_reason, rule, compared, detail, ?, ? FROM alerts WHERE id = ?")


def store_as_an_old_database(settings, alert_id: int) -> None:
    """What a database written before the window rule may hold, set by SQL as it would be: reads
    of 7XYZ555 at every STORED time, the alert and its read at the first, and an alert not yet
    pushed at each of the others (raised just now, so the notifier's poll pushes it)."""
    now = int(datetime.now(UTC).timestamp() * 1000)
    with closing(sqlite3.connect(settings.db_path)) as conn, conn:
        conn.executemany("INSERT INTO reads (uuid, camera_id, captured_at, received_at, plate, plate_norm, "
                         "plate_folded, confidence) VALUES (?, 1, ?, ?, '7XYZ555', '7XYZ555', '7XYZ555', 0.9)",
                         [(f"old-{i}", at, at) for i, at in enumerate(STORED)])
        conn.execute("UPDATE reads SET captured_at = ? WHERE id = (SELECT read_id FROM alerts WHERE id = ?)",
                     (STORED[0], alert_id))
        conn.execute("UPDATE alerts SET seen_at = ? WHERE id = ?", (STORED[0], alert_id))
        conn.executemany(ALERT_COPY, [(now, at, alert_id) for at in STORED[1:]])


def test_stored_times_of_any_integer_break_no_page_answer_or_push(dept, push, tmp_path):
    add_user(dept, "sam", "supervisor")
    dept.hotlist(tmp_path, "stolen", HOTLIST)
    [alert_id] = dept.post_read("8ABC123").json()["alerts"]
    push.wait_for(1, timeout=5)
    store_as_an_old_database(dept.settings, alert_id)
    pushed = push.wait_for(len(STORED), timeout=15)  # the notifier polls every 2 s
    assert all(datetime.fromisoformat(json.loads(m.payload)["seen_at"]) for m in pushed)
    ids = [i for (i,) in db_rows(dept.settings, "SELECT id FROM alerts ORDER BY id")]
    read_ids = [i for (i,) in db_rows(dept.settings, "SELECT id FROM reads ORDER BY id")]
    api = dept.http
    for path in ("/api/v1/alerts", "/api/v1/alerts?limit=1", f"/api/v1/alerts?before={ids[-1]}",
                 *(f"/api/v1/alerts/{i}" for i in ids)):
        resp = api.get(path, headers=dept.user_headers)
        assert resp.status_code == 200 and resp.json(), (path, resp.text)
    resp = api.patch(f"/api/v1/alerts/{alert_id}", json={"status": "acknowledged"}, headers=dept.user_headers)
    assert resp.status_code == 200 and resp.json()["status"] == "acknowledged", resp.text
    officer, supervisor = Officer(dept.live.url), web_client(dept, "sam", "long enough pw")
    with closing(officer.http), closing(supervisor):
        for path in ("/", "/reads", "/plates/7XYZ555", *(f"/alerts/{i}" for i in ids),
                     *(f"/reads/{i}/hold" for i in read_ids)):
            assert officer.http.get(path).status_code == 200, path
        for path, form in (("/plates/7XYZ555", {}), ("/plates/8ABC123", {}), ("/search", {"plate": "7XYZ555"})):
            resp = officer.post(path, {"reason": "1", "case": "24-00117", **form})
            assert resp.status_code == 200, (path, resp.text)
        for path in ("/dashboard", "/audit", "/audit.csv", "/holds", "/cameras", "/hotlists", "/hotlists/1",
                     "/transparency", "/transparency.json"):
            assert supervisor.get(path).status_code == 200, path


# --- defect 2: future-dated reads are purged ---------------------------------------------------------

def run_purge(settings):
    async def once():
        async with Database(settings.db_path) as db:
            return await purge(db, settings)

    return run(once())


def test_purge_removes_future_dated_reads_with_their_images_and_records_them(dept, tmp_path):
    now = datetime.now(UTC)
    dept.hotlist(tmp_path, "stolen", HOTLIST)
    far = post_with_image(dept, "8ABC123", datetime(2999, 1, 1, tzinfo=UTC))  # with an alert and an image
    tomorrow = dept.post_aged_read("7XYZ555", now + timedelta(days=1))
    held = dept.post_aged_read("HELD1", now + timedelta(days=2))
    soon, recent = dept.post_aged_read("SOON1", now + timedelta(minutes=2)), dept.post_aged_read("NEW1", now)
    with closing(sqlite3.connect(dept.settings.db_path)) as conn, conn:  # SQLite's largest integer
        conn.execute("INSERT INTO reads (uuid, camera_id, captured_at, received_at, plate, plate_norm, plate_folded, "
                     "confidence) VALUES ('edge', 1, ?, 0, 'EDGE1', 'EDGE1', 'EDGE1', 0.9)", (2**63 - 1,))
    with closing(Officer(dept.live.url).http) as officer:
        form = {"case": "24-00117", "note": "", "_csrf_token": officer.cookies["csrftoken"]}
        assert officer.post(f"/reads/{held}/hold", data=form).status_code == 200
    [far_image] = db_rows(dept.settings, "SELECT plate_image FROM reads WHERE id = ?", far)[0]
    stray = dept.settings.images_dir / "9999-12-31" / "stray.jpg"  # no read names it; the last day there is
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"no read names this")

    result = run_purge(dept.settings)
    assert result.future == 3 and result.reads == 0
    ids = {i for (i,) in db_rows(dept.settings, "SELECT id FROM reads")}
    assert ids == {held, soon, recent} and tomorrow not in ids, ids
    assert db_rows(dept.settings, "SELECT count(*) FROM alerts") == [(0,)]  # followed the read
    assert not (dept.settings.data_dir / far_image).exists() and not stray.parent.exists()
    assert result.stray_images == 1
    [(detail,)] = db_rows(dept.settings, "SELECT detail FROM audit_log WHERE action = 'retention.purge' "
                                         "ORDER BY id DESC LIMIT 1")
    assert json.loads(detail)["future"] == 3
    assert run_purge(dept.settings).future == 0


# --- defect 10: expiries and search times at the calendar's edge -------------------------------------

EDGE_EXPIRIES = ("9999-12-31", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z")


@pytest.mark.parametrize("expires", EDGE_EXPIRIES)
def test_a_hot_list_expiry_at_the_calendar_edge_is_a_bad_line_not_a_traceback(settings, tmp_path, capsys, expires):
    path = tmp_path / "list.csv"
    path.write_text(f"plate,reason,expires\n8ABC123,Stolen,\n7XYZ555,Stolen,{expires}\n")
    assert run_cli(settings, "hotlist", "import", str(path), "--list", "stolen") == 1
    err = capsys.readouterr().err
    assert f"line 3: expires '{expires}' is out of range" in err and "Traceback" not in err, err
    assert run_cli(settings, "hotlist", "import", str(path), "--list", "stolen", "--skip-bad") == 0
    assert db_rows(settings, "SELECT plate_norm FROM hotlist_entries") == [("8ABC123",)]


def test_the_web_refuses_edge_expiries_and_a_list_holding_one_still_shows(dept, tmp_path):
    add_user(dept, "sam", "supervisor")
    dept.hotlist(tmp_path, "stolen", HOTLIST)
    with closing(web_client(dept, "sam", "long enough pw")) as web:
        for expires in EDGE_EXPIRIES:
            csv_text = f"plate,reason,expires\n7XYZ555,Stolen,{expires}\n"
            resp = web.post("/hotlists/1/import", files={"file": ("edge.csv", csv_text, "text/csv")})
            assert resp.status_code == 422 and "out of range" in resp.text, resp.text
            resp = web.post("/hotlists/1/entries", data={"plate": "7XYZ555", "reason": "Stolen", "expires": expires})
            assert resp.status_code == 422 and "out of range" in resp.text, resp.text
        for stored in STORED:  # what an older version let in
            db_rows(dept.settings, "UPDATE hotlist_entries SET expires_at = ?", stored)
            assert web.get("/hotlists/1").status_code == 200 and web.get("/hotlists").status_code == 200


def test_a_search_time_at_the_calendar_edge_is_named_not_a_500(dept):
    with closing(Officer(dept.live.url).http) as http:
        for field, value in (("until", "9999-12-31T23:59"), ("since", "0001-01-01T00:00"),
                             ("until", "9999-12-31T23:59:59-01:00")):
            resp = http.post("/search", data={"reason": "1", "case": "24-00117", "plate": "8ABC123", field: value,
                                              "_csrf_token": http.cookies["csrftoken"]})
            assert resp.status_code == 422 and "out of range" in resp.text, (field, value, resp.text[-2000:])
    assert audit(dept, "search") == []
