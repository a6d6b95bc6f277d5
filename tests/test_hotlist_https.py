"""A hot list refreshed from a state's feed at an HTTPS URL on loopback (a CA of the test's own,
trusted through `hotlist_ca_file`): the real CLI points the list at it with a bearer token, the
server's scheduled refresh replaces the list and raises a retro alert, an unchanged feed is
nothing new, a failing feed keeps the old entries and says why, the list turns stale on the
feed and the dashboard, and the token reaches the feed's server but no page, log or audit entry."""

from __future__ import annotations

import base64
import json
import logging
import os
import sqlite3
from contextlib import closing

import pytest

from server.clock import HOUR_MS, now_ms
from server.hotlist_fetch import UrlRefused, check_url
from tests.conftest import Department, LiveServer, free_port, make_settings, run_cli
from tests.feedserver import FeedServer
from tests.test_hotlist_sources import refresh_now
from tests.test_web_admin import add_user, db_rows, web_client

TOKEN = "s3cret-state-feed-token"
DAY1 = "".join(f"P{n:04d};NH;stolen\n" for n in range(50)) + "7SEEN11;NH;stolen\n"


@pytest.fixture
def feed(tmp_path):
    with FeedServer(tmp_path / "feed", authorization=f"Bearer {TOKEN}") as server:
        yield server


@pytest.fixture
def feed_dept(tmp_path, feed, capsys):
    live = LiveServer(make_settings(tmp_path / "data", hotlist_ca_file=str(feed.ca_file))).start()
    department = Department(live, capsys)
    yield department
    department.close()
    live.stop()


def secrets_leaked(dept, *texts: str) -> list[str]:
    """Where the token shows: the database (every table), or any of `texts`."""
    with closing(sqlite3.connect(dept.settings.db_path)) as conn:
        dump = "\n".join(conn.iterdump())
    return [where for where, text in [("database", dump), *enumerate(texts)] if TOKEN in str(text)]


def test_an_https_source_refreshes_with_its_token_and_a_failing_feed_keeps_the_list(feed_dept, feed, tmp_path,
                                                                                    capsys, caplog):
    dept = feed_dept
    caplog.set_level(logging.DEBUG)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    assert run_cli(dept.settings, "hotlist", "source", "nh-url", "--list", "nh", "--from", feed.url,
                   "--delimiter", ";", "--columns", "plate,state,reason", "--kind", "stolen_vehicle",
                   "--bearer-file", str(token_file)) == 0
    cli_out = capsys.readouterr().out
    [stored] = (dept.settings.data_dir / "hotlist_credentials").iterdir()
    assert os.stat(stored).st_mode & 0o777 == 0o600

    assert dept.post_read("7SEEN11").status_code == 201  # read before it is listed
    feed.publish(DAY1)
    [retro] = refresh_now(dept.settings)
    assert feed.requests[-1]["Authorization"] == f"Bearer {TOKEN}"
    assert db_rows(dept, "SELECT entry_plate_norm, retro FROM alerts WHERE id = ?", retro) == [("7SEEN11", 1)]
    assert db_rows(dept, "SELECT count(*) FROM live_entries") == [(51,)]
    assert db_rows(dept, "SELECT actor FROM audit_log WHERE action = 'hotlist.import'") == [("source:nh-url",)]

    assert refresh_now(dept.settings, now_ms() + 25 * HOUR_MS) == []  # unchanged: asked with its ETag, 304
    assert "If-None-Match" in feed.requests[-1] and len(feed.requests) == 2
    assert db_rows(dept, "SELECT count(*) FROM audit_log WHERE action = 'hotlist.import'") == [(1,)]

    feed.status = 500
    assert refresh_now(dept.settings, now_ms() + 27 * HOUR_MS) == []
    assert db_rows(dept, "SELECT count(*) FROM live_entries") == [(51,)]  # the old entries are kept
    [(detail,)] = db_rows(dept, "SELECT detail FROM audit_log WHERE action = 'hotlist.refresh_failed'")
    assert "127.0.0.1 answered 500" in json.loads(detail)["reason"]
    with closing(sqlite3.connect(dept.settings.db_path)) as conn, conn:  # a day and more without a good refresh
        conn.execute("UPDATE hotlists SET refreshed_at = refreshed_at - ?", (27 * HOUR_MS,))

    add_user(dept, "sam", "supervisor")
    [(list_id,)] = db_rows(dept, "SELECT id FROM hotlists")
    with closing(web_client(dept, "sam", "long enough pw")) as supervisor, \
            closing(web_client(dept, "alice", "correct horse")) as officer:
        pages = [supervisor.get(f"/hotlists/{list_id}").text, supervisor.get(f"/hotlists/{list_id}/source").text,
                 supervisor.get("/dashboard").text, officer.get("/").text]
    assert "127.0.0.1 answered 500" in pages[0] and "bearer token stored" in pages[1]
    for page in pages[2:]:
        assert 'id="stale-lists"' in page and "<strong>nh</strong> is stale" in page
    assert secrets_leaked(dept, cli_out, caplog.text, *pages) == []


def test_a_source_url_is_checked_before_it_is_called(settings, tmp_path):
    for url, message in [("http://feeds.example.gov/hot.txt", "reach feeds.example.gov over https"),
                         ("ftp://feeds.example.gov/hot.txt", "scheme ftp: is not allowed"),
                         ("https://user:pw@feeds.example.gov/hot.txt", "user name or password"),
                         ("https:///hot.txt", "no host"), ("https://feeds.example.gov:port/", "port is not a number")]:
        with pytest.raises(UrlRefused, match=message):
            check_url(url)
        with pytest.raises(SystemExit, match=message.split(" ")[0]):
            run_cli(settings, "hotlist", "source", "feed", "--list", "l", "--from", url)
    assert check_url("http://127.0.0.1:8000/feed") == "http://127.0.0.1:8000/feed"  # loopback only
    token_file = tmp_path / "token"
    token_file.write_text("t")
    with pytest.raises(SystemExit, match="credentials are for a source at a URL"):
        run_cli(settings, "hotlist", "source", "feed", "--list", "l", "--from", str(tmp_path),
                "--bearer-file", str(token_file))


def last_error(settings) -> str:
    with closing(sqlite3.connect(settings.db_path)) as conn:
        [(error,)] = conn.execute("SELECT last_error FROM hotlist_sources").fetchall()
    return error


def test_a_refused_connection_an_oversize_feed_and_wrong_credentials_are_named(tmp_path, feed, capsys):
    settings = make_settings(tmp_path / "data", hotlist_ca_file=str(feed.ca_file), hotlist_max_download_bytes=1000)
    closed = f"https://127.0.0.1:{free_port()}/feed.txt"  # nothing listens there
    assert run_cli(settings, "hotlist", "source", "gone", "--list", "gone", "--from", closed) == 0
    refresh_now(settings)
    assert last_error(settings).startswith("cannot fetch the feed: ") and "nothing imported" in last_error(settings)

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    assert run_cli(settings, "hotlist", "source", "gone", "--list", "gone", "--from", feed.url,
                   "--bearer-file", str(token_file)) == 0
    feed.publish("P0001;NH;stolen\n" * 100)
    refresh_now(settings)
    assert "over hotlist_max_download_bytes (1000)" in last_error(settings)

    feed.publish("P0001;NH;stolen\n")
    feed.authorization = "Basic " + base64.b64encode(b"clerk:pass word").decode()
    refresh_now(settings, now_ms() + 2 * HOUR_MS)
    assert "answered 401 Unauthorized (check the source's credentials)" in last_error(settings)
    assert run_cli(settings, "hotlist", "source", "gone", "--list", "gone", "--from", feed.url, "--basic", "clerk",
                   "--delimiter", ";", "--columns", "plate,state,reason", stdin="pass word\n") == 0
    refresh_now(settings)
    assert last_error(settings) == "" and feed.requests[-1]["Authorization"] == feed.authorization


def test_a_supervisor_sets_up_refreshes_and_removes_a_source_on_the_page(feed_dept, feed):
    dept = feed_dept
    add_user(dept, "sam", "supervisor")
    feed.publish(DAY1)
    with closing(web_client(dept, "sam", "long enough pw")) as client:
        made = client.post("/hotlists", data={"name": "nh", "kind": "stolen_vehicle"})
        source_url = made.headers["location"] + "/source"
        assert 'name="token" type="password"' in client.get(source_url).text
        form = {"name": "nh-url", "location": feed.url, "every": "24", "max_age": "26", "format": "delimited",
                "delimiter": ";", "columns": "plate,state,reason", "auth": "bearer", "token": TOKEN}
        refused = client.post(source_url, data={**form, "location": "http://feeds.example.gov/x"})
        assert refused.status_code == 422 and "reach feeds.example.gov over https://" in refused.text
        saved = client.post(source_url, data=form)
        assert saved.status_code == 200 and "Saved." in saved.text and "A bearer token stored." in saved.text
        refreshed = client.post(source_url + "/refresh")
        assert "Refreshed; 0 alert(s)" in refreshed.text
        assert feed.requests[-1]["Authorization"] == f"Bearer {TOKEN}"
        assert db_rows(dept, "SELECT count(*) FROM live_entries") == [(51,)]
        kept = client.post(source_url, data={**form, "every": "12", "auth": "keep", "token": ""})
        assert "every 12 h" in kept.text and "A bearer token stored." in kept.text
        assert secrets_leaked(dept, saved.text, refreshed.text, kept.text) == []
        removed = client.post(source_url + "/remove")
        assert removed.status_code == 303
        assert "Refresh this list on a schedule" in client.get(removed.headers["location"]).text
    assert db_rows(dept, "SELECT count(*) FROM hotlist_sources") == [(0,)]
    assert list((dept.settings.data_dir / "hotlist_credentials").iterdir()) == []
    assert db_rows(dept, "SELECT action, json_extract(detail, '$.credentials') FROM audit_log WHERE actor = 'sam' "
                         "AND action LIKE 'hotlist.%' ORDER BY id") == [
        ("hotlist.create", None), ("hotlist.source_set", "bearer"), ("hotlist.refresh_now", None),
        ("hotlist.source_set", "kept"), ("hotlist.source_remove", None)]
