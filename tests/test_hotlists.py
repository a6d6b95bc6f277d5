"""Hot-list import through the real CLI: validation, atomic replace, retro alerts, audit."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from tests.conftest import run_cli

GOOD = "plate,state,reason,expires\nABC123,CA,stolen,\nXYZ789,NV,AMBER alert,2030-01-01\n"


def rows(settings, sql, params=()):
    with sqlite3.connect(settings.db_path) as conn:
        return conn.execute(sql, params).fetchall()


def write(tmp_path, text, name="list.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_import_and_replace(settings, tmp_path, capsys):
    assert run_cli(settings, "hotlist", "import", write(tmp_path, GOOD), "--list", "state", "--kind", "stolen_vehicle") == 0
    assert "2 entries (2 added, 0 removed" in capsys.readouterr().out
    assert sorted(rows(settings, "SELECT plate_norm, state, reason FROM hotlist_entries")) == [
        ("ABC123", "CA", "stolen"), ("XYZ789", "NV", "AMBER alert")]
    refreshed = "plate\nABC123\nNEW1\n"
    assert run_cli(settings, "hotlist", "import", write(tmp_path, refreshed), "--list", "state") == 0
    assert "2 entries (1 added, 1 removed" in capsys.readouterr().out
    assert sorted(r[0] for r in rows(settings, "SELECT plate_norm FROM hotlist_entries")) == ["ABC123", "NEW1"]
    assert rows(settings, "SELECT kind FROM hotlists") == [("stolen_vehicle",)]  # kept when not given again
    audit = rows(settings, "SELECT actor, action FROM audit_log WHERE action = 'hotlist.import'")
    assert audit == [("cli", "hotlist.import")] * 2


def test_bad_lines_all_reported_and_nothing_imported(settings, tmp_path, capsys):
    run_cli(settings, "hotlist", "import", write(tmp_path, GOOD), "--list", "state")
    capsys.readouterr()
    bad = (
        "plate,state,reason,expires\n"
        "GOOD1,CA,ok,\n"
        ",CA,no plate,\n"            # line 3
        "TOOLONGPLATE12,CA,x,\n"     # line 4
        "AB12,CA,x,tomorrow\n"       # line 5
        "CD34,CA\n"                  # line 6
        "GOOD1,CA,again,\n"          # line 7
        "EF56,CA,x,2026-12-01T10:00\n"  # line 8: no offset
    )
    assert run_cli(settings, "hotlist", "import", write(tmp_path, bad), "--list", "state") == 1
    err = capsys.readouterr().err
    for line in (3, 4, 5, 6, 7, 8):
        assert f"line {line}:" in err
    assert "line 2:" not in err
    assert "nothing imported" in err
    # the earlier list is untouched
    assert sorted(r[0] for r in rows(settings, "SELECT plate_norm FROM hotlist_entries")) == ["ABC123", "XYZ789"]


def test_skip_bad_imports_the_rest(settings, tmp_path, capsys):
    text = "plate,reason\nGOOD1,ok\n,missing\nGOOD2,ok\n"
    assert run_cli(settings, "hotlist", "import", write(tmp_path, text), "--list", "l", "--skip-bad") == 0
    assert "1 bad lines skipped" in capsys.readouterr().out
    assert sorted(r[0] for r in rows(settings, "SELECT plate_norm FROM hotlist_entries")) == ["GOOD1", "GOOD2"]


def test_header_problems_are_named(settings, tmp_path, capsys):
    assert run_cli(settings, "hotlist", "import", write(tmp_path, "plates,colour\nABC,red\n"), "--list", "l") == 1
    err = capsys.readouterr().err
    assert "unknown column 'plates'" in err and "unknown column 'colour'" in err
    assert "missing required column 'plate'" in err
    assert run_cli(settings, "hotlist", "import", write(tmp_path, ""), "--list", "l") == 1
    assert "empty file" in capsys.readouterr().err
    (tmp_path / "latin.csv").write_bytes(b"plate,reason\nABC,caf\xe9\n")
    assert run_cli(settings, "hotlist", "import", str(tmp_path / "latin.csv"), "--list", "l") == 1
    assert "line 2: not UTF-8" in capsys.readouterr().err
    assert rows(settings, "SELECT count(*) FROM hotlist_entries") == [(0,)]


def test_adding_a_plate_raises_retro_alert_for_recent_reads(dept, tmp_path, capsys):
    now = datetime.now(UTC)
    dept.post_read("7RET123", captured_at=(now - timedelta(days=2)).isoformat())
    dept.post_read("7RET123", captured_at=(now - timedelta(hours=1)).isoformat())
    dept.post_read("7RET12Z", captured_at=(now - timedelta(hours=2)).isoformat())  # misread, older
    dept.post_read("7RET123", captured_at=(now - timedelta(days=40)).isoformat())  # past retention
    capsys.readouterr()
    assert dept.hotlist(tmp_path, "amber", "plate,reason\n7RET123,AMBER alert\n", "--kind", "amber") == 0
    assert "1 retro alert(s)" in capsys.readouterr().out
    [(retro, rule, seen_at)] = rows(dept.settings, "SELECT retro, rule, seen_at FROM alerts")
    assert retro == 1 and rule == "exact"
    assert abs(seen_at / 1000 - (now - timedelta(hours=1)).timestamp()) < 1
    # a daily refresh of the same list does not raise it again
    dept.hotlist(tmp_path, "amber", "plate,reason\n7RET123,AMBER alert\n")
    assert rows(dept.settings, "SELECT count(*) FROM alerts") == [(1,)]


def hundred(prefix="P"):
    return "plate,reason\n" + "".join(f"{prefix}{n:04d},stolen\n" for n in range(100))


def test_a_header_only_file_is_refused_unless_forced(settings, tmp_path, capsys):
    assert run_cli(settings, "hotlist", "import", write(tmp_path, hundred()), "--list", "state") == 0
    capsys.readouterr()
    assert run_cli(settings, "hotlist", "import", write(tmp_path, "plate,reason\n"), "--list", "state") == 1
    err = capsys.readouterr().err
    assert "would remove all 100 entries" in err and "--force" in err and "nothing imported" in err
    assert rows(settings, "SELECT count(*) FROM hotlist_entries") == [(100,)]
    assert run_cli(settings, "hotlist", "import", write(tmp_path, "plate,reason\n"), "--list", "state", "--force") == 0
    assert "0 entries (0 added, 100 removed" in capsys.readouterr().out
    assert rows(settings, "SELECT count(*) FROM hotlist_entries") == [(0,)]
    [(detail,)] = rows(settings, "SELECT detail FROM audit_log WHERE action = 'hotlist.import' ORDER BY id DESC LIMIT 1")
    assert '"forced":true' in detail.replace(" ", "")


def test_skip_bad_with_every_line_bad_is_refused(settings, tmp_path, capsys):
    assert run_cli(settings, "hotlist", "import", write(tmp_path, hundred()), "--list", "state") == 0
    capsys.readouterr()
    semicolons = "plate;reason\n" + "".join(f"Q{n:04d};stolen\n" for n in range(100))
    assert run_cli(settings, "hotlist", "import", write(tmp_path, semicolons), "--list", "state", "--skip-bad") == 1
    err = capsys.readouterr().err
    assert "unknown column 'plate;reason'" in err and "would remove all 100 entries" in err and "--force" in err
    assert sorted(r[0] for r in rows(settings, "SELECT plate_norm FROM hotlist_entries"))[:2] == ["P0000", "P0001"]
    assert rows(settings, "SELECT count(*) FROM hotlist_entries") == [(100,)]


def test_an_import_that_drops_most_of_a_list_is_refused_unless_forced(settings, tmp_path, capsys):
    assert run_cli(settings, "hotlist", "import", write(tmp_path, hundred()), "--list", "state") == 0
    capsys.readouterr()
    most_gone = "plate,reason\n" + "".join(f"P{n:04d},stolen\n" for n in range(30)) + "NEW1,stolen\n"
    assert run_cli(settings, "hotlist", "import", write(tmp_path, most_gone), "--list", "state") == 1
    err = capsys.readouterr().err
    assert "would remove 70 of its 100 entries" in err and "--force" in err
    assert rows(settings, "SELECT count(*) FROM hotlist_entries") == [(100,)]
    assert run_cli(settings, "hotlist", "import", write(tmp_path, most_gone), "--list", "state", "--force") == 0
    assert "31 entries (1 added, 70 removed" in capsys.readouterr().out
    # a daily refresh that drops a few plates needs no force
    assert run_cli(settings, "hotlist", "import", write(tmp_path, most_gone.replace("NEW1", "NEW2")), "--list",
                   "state") == 0
