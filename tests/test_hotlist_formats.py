"""Hot lists as states and vendors ship them, through the real CLI, the real app and real SQLite:
delimited files without a header, fixed-width files, Latin-1 feeds, the feed fields (plate type,
priority, expiry year, NCIC number, note), and priority carried into the alert and its push."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from server.alerts import alert_view
from server.hotlist_formats import FormatError, list_format, ncic_plate, parse_expiry
from server.store import queries
from server.store.db import Database
from server.store.migrations import connect, migrations
from tests.browser import sign_in
from tests.conftest import run_cli
from tests.pushservice import PushService
from tests.test_web_admin import add_user, db_rows, web_client

# Positions 1-10 plate, 11-12 state, 13-14 plate type, 15-32 reason, 33-40 expiry, 41-50 NCIC number.
FIXED_MAP = "plate:1-10,state:11-12,type:13-14,reason:15-32,expires:33-40,ncic:41-50"


def fixed_line(plate: str, state: str = "CA", kind: str = "PC", reason: str = "STOLEN", expires: str = "",
               record: str = "") -> str:
    return f"{plate:<10}{state:<2}{kind:<2}{reason:<18}{expires:<8}{record:<10}"


def rows(settings, sql, params=()):
    with closing(sqlite3.connect(settings.db_path)) as conn:
        return conn.execute(sql, params).fetchall()


def write(tmp_path, text: str | bytes, name: str = "feed.txt") -> str:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def import_file(settings, path: str, *flags: str, name: str = "state") -> int:
    return run_cli(settings, "hotlist", "import", path, "--list", name, *flags)


def test_fixed_width_import_reports_every_bad_line_then_stores_the_feed_fields(settings, tmp_path, capsys):
    lines = [
        fixed_line("7ABC 123", expires="20301231", record="V123456789"),  # 1
        fixed_line("", reason="NO PLATE"),                                 # 2
        fixed_line("8DEF-456", kind="TK", expires="2031"),                 # 3: a year: its end
        fixed_line("9GHI456", expires="31122030"),                         # 4: not a date
        fixed_line("7ABC123"),                                             # 5: repeats line 1 once normalised
        "ABC#&12   CAPCSTO",                                               # 6: cut inside the reason
        fixed_line("1234567890"),                                          # 7: a plate fills its 10 characters
        fixed_line("#ZZ9 ★"),                                              # 8: NCIC leaves symbols out
    ]
    path = write(tmp_path, "\n".join(lines) + "\n")
    assert import_file(settings, path, "--fixed", FIXED_MAP) == 1
    err = capsys.readouterr().err
    assert "line 2: plate is empty" in err
    assert "line 4: expires '31122030'" in err
    assert "line 5: plate 7ABC123 repeats line 1" in err
    assert "line 6: only 17 characters: the field map needs at least 40 (cut short?)" in err
    for good in (1, 3, 7, 8):
        assert f"line {good}:" not in err
    assert "nothing imported" in err and rows(settings, "SELECT count(*) FROM hotlist_entries") == [(0,)]

    assert import_file(settings, path, "--fixed", FIXED_MAP, "--skip-bad") == 0
    assert "4 entries (4 added, 0 removed, 4 bad lines skipped)" in capsys.readouterr().out
    stored = rows(settings, "SELECT plate_norm, state, plate_type, reason, record, expires_at FROM hotlist_entries "
                            "ORDER BY plate_norm")
    assert [r[:5] for r in stored] == [
        ("1234567890", "CA", "PC", "STOLEN", ""), ("7ABC123", "CA", "PC", "STOLEN", "V123456789"),
        ("8DEF456", "CA", "TK", "STOLEN", ""), ("ZZ9", "CA", "PC", "STOLEN", "")]
    expires = {plate: at for plate, *_, at in stored}
    assert expires["7ABC123"] == parse_expiry("2030-12-31") and expires["8DEF456"] == parse_expiry("2031-12-31")
    [(remembered,)] = rows(settings, "SELECT import_format FROM hotlists")
    assert json.loads(remembered)["fixed"] == FIXED_MAP.replace("type:", "plate_type:").replace("ncic:", "record:")


def test_semicolon_file_without_header_reports_every_bad_line(settings, tmp_path, capsys):
    feed = (
        "7ABC123;CA;ignored;Stolen vehicle;high;2030-12-31;note one\n"   # 1
        "8DEF456;NV;x;Stolen plate;;;\n"                                # 2: priority from the list
        ";CA;x;no plate;;;\n"                                           # 3
        "9GHI789;CA;x;Stolen;urgent;;\n"                                # 4: not a priority
        "1JKL012;CA;x;Stolen\n"                                         # 5: too few fields
        "2MNO345;CA;x;Stolen;101;;\n"                                   # 6: over 100
        "3PQR678;TX;x;Wanted;10;12/31/2031;\n"                          # 7
        "\n"
        "4STU901;TX;x;Wanted;;;;\n"                                     # 9: a trailing delimiter is harmless
    )
    path = write(tmp_path, feed)
    flags = ("--format", "delimited", "--delimiter", ";", "--columns", "plate,state,-,category,priority,expiry,note")
    assert import_file(settings, path, *flags) == 1
    err = capsys.readouterr().err
    assert "line 3: plate is empty" in err
    assert "line 4: priority 'urgent' is not 0–100 or low, medium, high" in err
    assert "line 5: expected 7 fields, got 4" in err
    assert "line 6: priority '101'" in err
    assert [line for line in (1, 2, 7, 9) if f"line {line}:" in err] == []
    assert import_file(settings, path, *flags, "--skip-bad", "--priority", "low") == 0
    assert "4 entries (4 added, 0 removed, 4 bad lines skipped)" in capsys.readouterr().out
    assert rows(settings, "SELECT plate_norm, reason, priority, note FROM hotlist_entries ORDER BY plate_norm") == [
        ("3PQR678", "Wanted", 10, ""), ("4STU901", "Wanted", None, ""), ("7ABC123", "Stolen vehicle", 75, "note one"),
        ("8DEF456", "Stolen plate", None, "")]
    assert rows(settings, "SELECT default_priority FROM hotlists") == [(25,)]


def test_a_truncated_download_is_refused_unless_forced(settings, tmp_path, capsys):
    full = "".join(fixed_line(f"P{n:05d}") + "\n" for n in range(200))
    assert import_file(settings, write(tmp_path, full), "--fixed", FIXED_MAP) == 0
    capsys.readouterr()
    cut = full[: len(full) // 10 + 7]  # the download stopped a tenth of the way in, inside a line
    assert import_file(settings, write(tmp_path, cut, "cut.txt"), "--fixed", FIXED_MAP, "--skip-bad") == 1
    err = capsys.readouterr().err
    assert "line 21: only" in err and "cut short" in err
    assert "would remove 180 of its 200 entries" in err and "--force" in err and "nothing imported" in err
    assert rows(settings, "SELECT count(*) FROM live_entries") == [(200,)]


def test_latin1_is_read_with_its_encoding_and_refused_by_name_without(settings, tmp_path, capsys):
    feed = "7ABC123|Véhicule volé|Montréal\n8DEF456|Plaque volée|\n".encode("latin-1")
    path = write(tmp_path, feed)
    flags = ("--delimiter", "|", "--columns", "plate,reason,note")
    assert import_file(settings, path, *flags) == 1
    err = capsys.readouterr().err
    assert "line 1: not UTF-8 text; if the feed is Latin-1, import it with the encoding latin-1" in err
    assert rows(settings, "SELECT count(*) FROM hotlist_entries") == [(0,)]
    assert import_file(settings, path, *flags, "--encoding", "latin-1") == 0
    assert rows(settings, "SELECT plate_norm, reason, note FROM hotlist_entries ORDER BY 1") == [
        ("7ABC123", "Véhicule volé", "Montréal"), ("8DEF456", "Plaque volée", "")]


@pytest.mark.parametrize(("flags", "message"), [
    (("--format", "xml"), "unknown format 'xml'"),
    (("--format", "delimited"), "a delimited file needs a column mapping"),
    (("--columns", "plate,colour"), "unknown field 'colour'"),
    (("--fixed", "plate:1-10,state:10-11"), "'plate' and 'state' overlap"),
    (("--fixed", "state:1-2"), "the field map has no 'plate' field"),
    (("--delimiter", "#"), "unknown delimiter '#'"),
    (("--encoding", "ebcdic"), "unknown encoding 'ebcdic'"),
    (("--format", "csv", "--fixed", "plate:1-10"), "the csv format takes no fixed option"),
    (("--priority", "urgent"), "priority 'urgent'"),
])
def test_bad_options_are_refused_by_name(settings, tmp_path, flags, message):
    with pytest.raises(SystemExit) as refused:
        import_file(settings, write(tmp_path, "plate\nABC\n"), *flags)
    assert message in str(refused.value)


def test_plates_as_ncic_enters_them_and_expiry_forms():
    assert ncic_plate(" 7abc-12.3 ") == "7ABC123" and ncic_plate("AB&C#1♥") == "ABC1"
    day = parse_expiry("2030-06-30")
    assert parse_expiry("20300630") == parse_expiry("6/30/2030") == day
    assert parse_expiry("2030") == parse_expiry("2030-12-31")
    with pytest.raises(FormatError):
        list_format(columns="plate,reason,category")  # two names for one field


def test_priority_is_carried_into_the_alert_and_its_push(dept, tmp_path, capsys):
    key = dept.http.get("/api/v1/push/key").json()["public_key"]
    with PushService(expected_key=key) as push, closing(web_client(dept, "alice", "correct horse")) as alice:
        dept.http.post("/api/v1/push/subscriptions", json=push.subscription("alice-phone"),
                       headers=dept.user_headers).raise_for_status()
        assert alice.post("/duty", data={"on": "1", "next": "/"}).status_code == 303
        feed = write(tmp_path, "7HIGH11:Stolen:high\n8PLAIN2:Stolen:\n")
        assert import_file(dept.settings, feed, "--delimiter", ":", "--columns", "plate,reason,priority",
                           "--priority", "40", name="stolen") == 0
        [high] = dept.post_read("7HIGH11").json()["alerts"]
        [plain] = dept.post_read("8PLAIN2").json()["alerts"]
        payloads = {json.loads(m.payload)["plate"]: json.loads(m.payload) for m in push.wait_for(2)}
    assert payloads["7HIGH11"]["priority"] == 75 and payloads["8PLAIN2"]["priority"] == 40  # the list's default
    assert {"id", "plate", "hotlist", "reason", "camera", "seen_at", "url"} <= set(payloads["7HIGH11"])
    listed = {a["id"]: a["priority"] for a in dept.http.get("/api/v1/alerts", headers=dept.user_headers).json()}
    assert listed == {high: 75, plain: 40}
    assert db_rows(dept, "SELECT priority FROM alerts ORDER BY id") == [(75,), (40,)]


def test_web_upload_with_options_is_remembered_for_the_list(dept, tmp_path):
    add_user(dept, "sam", "supervisor")
    dept.hotlist(tmp_path, "state-feed", "plate,reason\nOLD1111,Stolen\n")
    [(list_id,)] = db_rows(dept, "SELECT id FROM hotlists")
    feed = "\t".join(["5NEW555", "CA", "Stolen"]) + "\n" + "\t".join(["6BAD", "CA", "x", "extra"]) + "\n"
    options = {"format": "delimited", "delimiter": "tab", "columns": "plate,state,reason", "fixed": "ignored:1",
               "encoding": "utf-8", "priority": "high"}
    with closing(web_client(dept, "sam", "long enough pw")) as client:
        def upload(text: str, **fields):
            return client.post(f"/hotlists/{list_id}/import", data={**options, **fields},
                               files={"file": ("feed.tsv", text, "text/tab-separated-values")})
        bad = upload(feed)
        assert bad.status_code == 422 and "line 2: expected 3 fields, got 4" in bad.text
        assert 'value="plate,state,reason"' in bad.text  # what was typed is kept
        refused = upload(feed, columns="plate,colour")
        assert refused.status_code == 422 and "unknown field &#39;colour&#39;" in refused.text
        done = upload(feed, skip_bad="yes")
        assert done.status_code == 200 and "1 entries (1 new, 1 removed, 1 bad lines skipped)" in done.text
        page = client.get(f"/hotlists/{list_id}").text
    assert '<option value="delimited" selected>' in page and '<option value="tab" selected>' in page
    assert 'value="plate,state,reason"' in page and 'name="priority" maxlength="10"' in page and 'value="75"' in page
    assert db_rows(dept, "SELECT plate_norm, state FROM live_entries") == [("5NEW555", "CA")]
    assert db_rows(dept, "SELECT default_priority FROM hotlists") == [(75,)]
    [(detail,)] = db_rows(dept, "SELECT detail FROM audit_log WHERE action = 'hotlist.import' ORDER BY id DESC LIMIT 1")
    assert json.loads(detail)["format"] == "delimited"


def test_a_fixed_width_feed_uploaded_in_the_browser(dept, page, tmp_path):
    """The one browser test: the options as a supervisor sets them in Chromium, kept for next time."""
    add_user(dept, "sam", "supervisor")
    dept.hotlist(tmp_path, "ar-stolen", "plate,reason\nOLD1111,Stolen\n")
    feed = tmp_path / "ar.dat"
    feed.write_bytes((fixed_line("5NEW 555", reason="STOLEN VEHICLE", record="V000000001") + "\n"
                      + fixed_line("6BAD", expires="20301345") + "\n").encode("latin-1"))
    sign_in(page, dept.live.url, "sam", "long enough pw")
    page.goto(f"{dept.live.url}/hotlists")
    page.get_by_role("link", name="ar-stolen").click()
    page.get_by_label("CSV file or feed").set_input_files(str(feed))
    page.get_by_label("Layout").select_option("fixed")
    page.get_by_label("Field map (fixed-width)").fill(FIXED_MAP)
    page.get_by_label("Encoding").select_option("latin-1")
    page.get_by_label("Default priority").fill("high")
    page.get_by_label("Skip bad lines").check()
    page.get_by_role("button", name="Import and replace").click()
    expect(page.get_by_role("status")).to_contain_text("1 entries (1 new, 1 removed, 1 bad lines skipped)")
    expect(page.locator("#bad-lines li")).to_have_text(["line 2: expires '20301345' is not an ISO date or time, "
                                                        "nor YYYYMMDD, MM/DD/YYYY or a year: month must be in 1..12"])
    expect(page.locator("#entries")).to_contain_text("record V000000001")
    page.reload()
    expect(page.get_by_label("Layout")).to_have_value("fixed")
    expect(page.get_by_label("Field map (fixed-width)")).to_have_value(
        FIXED_MAP.replace("type:", "plate_type:").replace("ncic:", "record:"))
    expect(page.get_by_label("Encoding")).to_have_value("latin-1")
    expect(page.get_by_label("Default priority")).to_have_value("75")
    assert db_rows(dept, "SELECT plate_norm, record FROM live_entries") == [("5NEW555", "V000000001")]


def test_an_upgraded_database_keeps_its_lists_and_alerts_and_their_priority_is_the_default(tmp_path):
    """Lists and alerts stored before priorities: entries take their list's default (50), and an
    alert raised before shows 50 in the API and push view."""
    path = tmp_path / "old.db"
    db = connect(path)
    migrations.apply(db, stop_before="m016_hotlist_fields")
    db.execute("INSERT INTO cameras (id, name, token_hash, created_at) VALUES (1, 'c', 'h', 0)")
    db.execute("INSERT INTO reads (id, uuid, camera_id, captured_at, received_at, plate, plate_norm, plate_folded, "
               "confidence) VALUES (1, 'u', 1, 0, 0, 'ABC123', 'ABC123', 'A8C123', 0.9)")
    db.execute("INSERT INTO hotlists (id, name, created_at) VALUES (1, 'l', 0)")
    db.execute("INSERT INTO hotlist_entries (hotlist_id, plate, plate_norm, plate_folded, added_by, added_at) "
               "VALUES (1, 'ABC123', 'ABC123', 'A8C123', 't', 0)")
    db.execute("INSERT INTO alerts (id, read_id, camera_id, hotlist_name, hotlist_kind, entry_plate, entry_plate_norm, "
               "rule, compared, created_at, seen_at) VALUES (1, 1, 1, 'l', 'custom', 'ABC123', 'ABC123', 'exact', "
               "'ABC123', 0, 0)")
    db.conn.commit()
    db.close()

    async def look() -> tuple:
        async with Database(path) as upgraded:
            [entry] = await queries.active_entries_by_folded(upgraded.reader, {"A8C123"}, 1)
            return entry["priority"], alert_view(await queries.alert_by_id(upgraded.reader, 1), "https://x").priority
    assert asyncio.run(look()) == (50, 50)
