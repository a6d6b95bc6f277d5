"""Webhooks end to end: the real server posts alerts to a real receiver on loopback, which checks
each delivery's signature and 5-minute window with the README's own `verify_signature`."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import msgspec
import pytest
from playwright.sync_api import expect

from server.settings import load_settings
from server.webhook_sender import retry_delay_s
from server.webhooks import url_problem
from tests.browser import screenshot, sign_in
from tests.conftest import LiveServer, make_settings, run_cli, wait_until
from tests.test_ingest import jpeg, multipart_read
from tests.test_web_admin import add_user, web_client
from tests.webhookreceiver import Receiver

STOLEN = "plate,state,reason\n5GHJ907,CA,Stolen 2026-11-02\n"


@pytest.fixture
def settings(tmp_path: Path):
    """The department's settings, with retries 0.2 s apart (then 0.6 s, …) so a retry comes soon, and
    a post's time limit longer than any test: an endpoint that never answers stays busy throughout."""
    return make_settings(tmp_path / "data", webhook_retry_s=0.2, webhook_timeout_s=600)


class BlackHole:
    """An endpoint that accepts connections and never answers; counts them."""

    def __init__(self) -> None:
        self.connections: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/hook"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.connections.append(self._listener.accept()[0])

    def close(self) -> None:
        self._listener.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(answers=()) -> Receiver:
        made.append(Receiver(answers))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def add_target(settings, capsys, url: str, *flags: str) -> str:
    """`platewatch webhook add`; the secret, its last line."""
    capsys.readouterr()
    assert run_cli(settings, "webhook", "add", url, *flags) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]


def db_rows(settings, sql: str, *params) -> list[tuple]:
    with closing(sqlite3.connect(settings.db_path)) as conn:
        return conn.execute(sql, params).fetchall()


def test_url_check_refuses_plain_http_outside_loopback_credentials_and_other_schemes():
    assert "http:// is allowed only to loopback" in url_problem("http://cad.example.org/hook")
    assert "http:// is allowed only to loopback" in url_problem("http://10.0.0.5/hook")
    assert "scheme ftp: is not allowed" in url_problem("ftp://cad.example.org/hook")
    assert "scheme file: is not allowed" in url_problem("file:///etc/passwd")
    assert "credentials" in url_problem("https://user:pw@cad.example.org/hook")
    assert "no host" in url_problem("https:///hook")
    assert "port" in url_problem("https://cad.example.org:99999/hook")
    for fine in ("https://cad.example.org/hook", "http://127.0.0.1:9000/x", "http://127.8.9.10/x",
                 "http://[::1]:9000/x", "http://localhost:9000/x"):
        assert url_problem(fine) is None, fine


def test_retries_come_three_times_later_each_time_at_most_an_hour_apart_and_settings_are_checked(tmp_path):
    assert [retry_delay_s(n, 10) for n in range(1, 9)] == [10, 30, 90, 270, 810, 2430, 3600, 3600]
    for name, value in (("webhook_retry_s", 0), ("webhook_timeout_s", "nan"), ("webhook_retry_s", 3601)):
        with pytest.raises(msgspec.ValidationError, match=name):
            load_settings(tmp_path, env={}, **{name: value})


def test_alert_from_a_read_reaches_the_receiver_signed_with_priority_and_image_urls(dept, tmp_path, capsys,
                                                                                  receivers):
    everything, amber_only = receivers(), receivers()
    everything.secret = add_target(dept.settings, capsys, everything.url)
    amber_only.secret = add_target(dept.settings, capsys, amber_only.url, "--kinds", "amber")
    assert everything.secret.startswith("pwwh_") and everything.secret != amber_only.secret
    with pytest.raises(SystemExit, match="http:// is allowed only to loopback"):
        run_cli(dept.settings, "webhook", "add", "http://cad.example.org/hook")
    dept.hotlist(tmp_path, "NCIC stolen", STOLEN, "--kind", "stolen_vehicle", "--priority", "high")
    data, files = multipart_read("5GHJ907", plate_image=jpeg())
    read = dept.http.post("/api/v1/reads", data=data, files=files, headers=dept.camera_headers)
    assert read.status_code == 201, read.text
    [alert_id] = read.json()["alerts"]

    assert wait_until(lambda: everything.received, timeout=10)
    [delivery] = everything.received
    assert delivery["verified"]
    assert delivery["headers"]["Content-Type"] == "application/json"
    payload = json.loads(delivery["body"])
    assert (payload["id"], payload["plate"], payload["kind"], payload["priority"]) == \
        (alert_id, "5GHJ907", "stolen_vehicle", 75)
    assert payload["url"] == f"{dept.live.url}/alerts/{alert_id}"
    [(plate_path,)] = db_rows(dept.settings, "SELECT plate_image FROM reads")
    assert payload["plate_image_url"] == f"{dept.live.url}/images/{plate_path}"
    assert payload["vehicle_image_url"] is None
    # The receiver's check holds the sender to the signature and the 5-minute window.
    stamp, header = delivery["headers"]["X-Platewatch-Timestamp"], delivery["headers"]["X-Platewatch-Signature"]
    assert header.startswith("sha256=")
    assert not everything.verify(everything.secret, stamp, delivery["body"], header, int(stamp) + 301)
    assert not everything.verify(everything.secret, stamp, delivery["body"] + b" ", header, int(stamp))
    assert not everything.verify(amber_only.secret, stamp, delivery["body"], header, int(stamp))
    # The kinds filter: the amber-only target was never offered it (offers are made with the claim).
    deliveries = "SELECT webhook_id, state, attempts FROM webhook_deliveries"
    assert wait_until(lambda: db_rows(dept.settings, deliveries) == [(1, "delivered", 1)])
    assert amber_only.received == []
    capsys.readouterr()
    assert run_cli(dept.settings, "webhook", "list") == 0
    listing = capsys.readouterr().out
    assert everything.url in listing and "kinds: amber" in listing and "pwwh_" not in listing
    assert run_cli(dept.settings, "webhook", "remove", "2") == 0
    assert db_rows(dept.settings, "SELECT id FROM webhooks") == [(1,)]
    assert db_rows(dept.settings, "SELECT actor, action FROM audit_log WHERE action LIKE 'webhook.%' ORDER BY id") == \
        [("cli", "webhook.add"), ("cli", "webhook.add"), ("cli", "webhook.remove")]


def test_failed_delivery_is_retried_and_each_attempt_recorded_and_shown(dept, tmp_path, capsys, receivers):
    flaky = receivers(answers=[500])
    flaky.secret = add_target(dept.settings, capsys, flaky.url)
    dept.hotlist(tmp_path, "NCIC stolen", STOLEN, "--kind", "stolen_vehicle")
    assert dept.post_read("5GHJ907").status_code == 201
    assert wait_until(lambda: len(flaky.received) == 2, timeout=15)
    assert all(delivery["verified"] for delivery in flaky.received)
    assert flaky.received[0]["body"] == flaky.received[1]["body"]
    attempts = "SELECT attempt, status, error, next_at IS NOT NULL FROM webhook_attempts ORDER BY id"
    assert wait_until(lambda: len(db_rows(dept.settings, attempts)) == 2)
    assert db_rows(dept.settings, attempts) == [(1, 500, "HTTP 500", 1), (2, 200, "", 0)]
    assert db_rows(dept.settings, "SELECT state, attempts, next_at FROM webhook_deliveries") == [("delivered", 2, None)]
    add_user(dept, "sam", "supervisor")
    with closing(web_client(dept, "sam", "long enough pw")) as supervisor:
        page = supervisor.get("/integrations")
    assert page.status_code == 200
    assert flaky.url in page.text and "HTTP 500" in page.text and "200 delivered" in page.text
    assert page.text.count('class="attempt"') == 2


def test_pending_retry_survives_a_restart_and_a_day_of_failures_is_given_up(dept, tmp_path, capsys, receivers):
    down = receivers(answers=[503] * 10_000)
    down.secret = add_target(dept.settings, capsys, down.url)
    dept.hotlist(tmp_path, "NCIC stolen", STOLEN + "8ABC123,CA,Stolen 2026-11-03\n", "--kind", "stolen_vehicle")
    assert dept.post_read("5GHJ907").status_code == 201
    assert wait_until(lambda: db_rows(dept.settings, "SELECT count(*) FROM webhook_attempts") != [(0,)], timeout=10)
    dept.live.stop()
    down.answers.clear()  # back up while the server is down: the retry waits in the database meanwhile
    tried = len(down.received)
    restarted = LiveServer(dept.settings).start()
    try:
        assert wait_until(lambda: db_rows(dept.settings, "SELECT state FROM webhook_deliveries") == [("delivered",)],
                          timeout=15)
        assert len(down.received) > tried and down.received[-1]["verified"]
        # A target down for a day: the next failure gives up instead of scheduling another retry.
        down.answers.extend([503] * 10_000)
        assert dept.post_read("8ABC123").json()["alerts"] != []
        second = "SELECT state, next_at FROM webhook_deliveries WHERE id = 2"
        assert wait_until(lambda: db_rows(dept.settings, second) != [], timeout=10)
        with closing(sqlite3.connect(dept.settings.db_path)) as conn, conn:
            conn.execute("UPDATE webhook_deliveries SET created_at = created_at - 25 * 3600 * 1000 WHERE id = 2")
        assert wait_until(lambda: db_rows(dept.settings, second) == [("failed", None)], timeout=15)
    finally:
        restarted.stop()


def test_a_target_that_never_answers_holds_up_no_other(dept, tmp_path, capsys, receivers):
    """Ten alerts: the healthy target gets every one while the dead one ties up two posts, not all."""
    dead, healthy = BlackHole(), receivers()
    try:
        add_target(dept.settings, capsys, dead.url)
        healthy.secret = add_target(dept.settings, capsys, healthy.url)
        plates = [f"7TEN{n:03d}" for n in range(10)]
        dept.hotlist(tmp_path, "NCIC stolen", "plate,reason\n" + "".join(f"{p},stolen\n" for p in plates))
        for plate in plates:
            assert dept.post_read(plate).json()["alerts"], plate
        assert wait_until(lambda: len(healthy.received) == 10, timeout=20)
        assert all(delivery["verified"] for delivery in healthy.received)
        assert len(dead.connections) <= 2
    finally:
        dead.close()


def test_retro_alert_from_a_cli_import_goes_out_once(dept, tmp_path, capsys, receivers):
    """Raised by another process (the CLI), picked up by the server's poll, offered once."""
    receiver = receivers()
    receiver.secret = add_target(dept.settings, capsys, receiver.url)
    assert dept.post_read("5GHJ907").json()["alerts"] == []
    dept.hotlist(tmp_path, "NCIC stolen", STOLEN, "--kind", "stolen_vehicle")
    assert wait_until(lambda: receiver.received, timeout=15)
    [delivery] = receiver.received
    assert delivery["verified"] and json.loads(delivery["body"])["retro"] is True
    assert db_rows(dept.settings, "SELECT count(*) FROM webhook_deliveries") == [(1,)]


def test_supervisor_adds_a_webhook_on_the_page_sees_the_secret_once_and_removes_it(dept, capsys, receivers):
    add_user(dept, "sam", "supervisor")
    receiver = receivers()
    with closing(web_client(dept, "sam", "long enough pw")) as supervisor, \
            closing(web_client(dept, "alice", "correct horse")) as officer:
        assert officer.get("/integrations").status_code == 403
        refused = supervisor.post("/integrations/webhooks", data={"url": "ftp://cad.example.org/x"})
        assert refused.status_code == 422 and "The scheme ftp: is not allowed" in refused.text
        added = supervisor.post("/integrations/webhooks", data={"url": receiver.url, "kinds": ["amber", "silver"]})
        assert added.status_code == 200 and added.headers["cache-control"] == "no-store"
        [secret] = re.findall(r"pwwh_[A-Za-z0-9_-]{43}", added.text)
        [(stored, kinds, by)] = db_rows(dept.settings, "SELECT secret, kinds, created_by FROM webhooks")
        assert (stored, kinds, by) == (secret, "amber,silver", "sam")
        listing = supervisor.get("/integrations").text
        assert receiver.url in listing and secret not in listing
        assert supervisor.post("/integrations/webhooks/1/remove").status_code == 200
    assert db_rows(dept.settings, "SELECT count(*) FROM webhooks") == [(0,)]
    actions = db_rows(dept.settings, "SELECT action, detail FROM audit_log WHERE action LIKE 'webhook.%' ORDER BY id")
    assert [a for a, _ in actions] == ["webhook.add", "webhook.remove"]
    assert all(secret not in detail for _, detail in actions)


def test_integrations_page_in_a_browser_adds_shows_attempts_and_removes(dept, tmp_path, page, receivers):
    add_user(dept, "sam", "supervisor")
    receiver = receivers()
    sign_in(page, dept.live.url, "sam", "long enough pw")
    page.get_by_role("link", name="Integrations").click()
    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("stolen vehicle").check()
    page.get_by_role("button", name="Add webhook").click()
    expect(page.get_by_role("heading", name="Webhook 1 added")).to_be_visible()
    receiver.secret = page.get_by_label("Signing secret").input_value()
    screenshot(page, "webhook-secret")
    dept.hotlist(tmp_path, "NCIC stolen", STOLEN, "--kind", "stolen_vehicle")
    assert dept.post_read("5GHJ907").status_code == 201
    assert wait_until(lambda: receiver.received, timeout=10) and receiver.received[0]["verified"]
    assert wait_until(lambda: db_rows(dept.settings, "SELECT state FROM webhook_deliveries") == [("delivered",)])
    page.get_by_role("link", name="Back to integrations").click()
    expect(page.locator("tr.attempt")).to_have_count(1)
    expect(page.locator("tr.attempt")).to_contain_text("200 delivered")
    screenshot(page, "integrations")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove webhook 1").click()
    expect(page.get_by_role("status")).to_contain_text("Webhook 1 removed")
    expect(page.get_by_text("No webhooks yet.")).to_be_visible()
