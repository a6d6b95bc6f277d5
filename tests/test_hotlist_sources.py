"""A hot list pointed at a folder the state's client drops files into: the real CLI sets it up,
the refresh the server's schedule runs replaces the list and raises retro alerts, and a truncated
file is refused, keeping the old entries, saying why, and the list turns stale past its maximum age."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from contextlib import closing

from server.clock import HOUR_MS, now_ms
from server.hotlist_sources import refresh_due
from server.store.db import Database
from tests.conftest import run_cli
from tests.test_web_admin import add_user, db_rows, web_client


def refresh_now(settings, now: int | None = None) -> list[int]:
    """One round of the server's schedule, from a connection of its own (as the server's task)."""
    async def run() -> list[int]:
        async with Database(settings.db_path) as db:
            return await refresh_due(db, settings, now)
    return asyncio.run(run())


def drop(folder, name: str, text: str, age_s: float = 0) -> None:
    path = folder / name
    path.write_text(text)
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))


def test_a_folder_source_refreshes_the_list_and_a_truncated_file_keeps_the_old_one(dept, tmp_path, capsys):
    folder = tmp_path / "drop"
    folder.mkdir()
    assert run_cli(dept.settings, "hotlist", "source", "nh-feed", "--list", "nh", "--from", str(folder),
                   "--delimiter", ";", "--columns", "plate,state,reason", "--kind", "stolen_vehicle") == 0
    assert "refreshes from" in capsys.readouterr().out
    assert refresh_now(dept.settings) == []  # nothing dropped yet: a failure, said on the page
    [(error,)] = db_rows(dept, "SELECT last_error FROM hotlist_sources")
    assert "no file in" in error

    assert dept.post_read("7SEEN11").status_code == 201  # read before it is listed
    day1 = "".join(f"P{n:04d};NH;stolen\n" for n in range(50)) + "7SEEN11;NH;stolen\n"
    drop(folder, "day1.txt", day1, age_s=60)
    drop(folder, "day0.txt", "OLD0001;NH;old\n", age_s=3600)  # older: not the one imported
    drop(folder, "day2.txt.part", "", age_s=0)  # still being written
    [retro] = refresh_now(dept.settings, now_ms() + 2 * HOUR_MS)  # a failed look is retried within the hour
    assert db_rows(dept, "SELECT entry_plate_norm, retro FROM alerts WHERE id = ?", retro) == [("7SEEN11", 1)]
    assert db_rows(dept, "SELECT count(*) FROM live_entries") == [(51,)]
    assert db_rows(dept, "SELECT actor FROM audit_log WHERE action = 'hotlist.import'") == [("source:nh-feed",)]
    assert refresh_now(dept.settings) == []  # not due again for a day
    assert refresh_now(dept.settings, now_ms() + 25 * HOUR_MS) == []  # due, but no new file: left as it is
    assert db_rows(dept, "SELECT count(*) FROM audit_log WHERE action = 'hotlist.import'") == [(1,)]

    drop(folder, "day2.txt", "P0000;NH;stolen\nP0001;NH;sto")  # the download stopped early
    assert refresh_now(dept.settings, now_ms() + 26 * HOUR_MS) == []
    assert db_rows(dept, "SELECT count(*) FROM live_entries") == [(51,)]  # the old entries are kept
    [(detail,)] = db_rows(dept, "SELECT detail FROM audit_log WHERE action = 'hotlist.refresh_failed' "
                                "ORDER BY id DESC LIMIT 1")
    assert "would remove 49 of its 51 entries" in json.loads(detail)["reason"]

    add_user(dept, "sam", "supervisor")
    [(list_id,)] = db_rows(dept, "SELECT id FROM hotlists")
    with closing(web_client(dept, "sam", "long enough pw")) as client:
        page = client.get(f"/hotlists/{list_id}").text
        assert "would remove 49 of its 51 entries" in page and '<span class="badge stale">' not in page
        with closing(sqlite3.connect(dept.settings.db_path)) as conn, conn:
            conn.execute("UPDATE hotlists SET refreshed_at = refreshed_at - ?", (27 * HOUR_MS,))
        assert '<span class="badge stale">stale</span>' in client.get(f"/hotlists/{list_id}").text
        assert '<span class="badge stale">stale</span>' in client.get("/hotlists").text


def test_a_source_must_exist_and_have_a_sane_schedule(settings, tmp_path):
    for flags, message in [((str(tmp_path / "nowhere"),), "does not exist"),
                           ((str(tmp_path), "--every", "0"), "every 0 hours"),
                           ((str(tmp_path), "--every", "24", "--max-age", "12"), "a maximum age of 12 hours")]:
        try:
            run_cli(settings, "hotlist", "source", "feed", "--list", "l", "--from", *flags)
        except SystemExit as refused:
            assert message in str(refused)
        else:
            raise AssertionError(f"{flags} was accepted")
