"""A read comes in; hot-list hits go out as verified, decrypted web pushes."""

from __future__ import annotations

import io
import json
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from tests.conftest import wait_until
from tests.pushservice import PushService

HOTLIST = "plate,state,reason,expires\n8ABC123,CA,Stolen 2026-11-01,\nOLD999,CA,recovered,2020-01-01\n"


def jpeg(size=(120, 60), color=(200, 200, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def push(dept):
    key = dept.http.get("/api/v1/push/key").json()["public_key"]
    dept.go_on_duty()  # web push pages only officers on duty
    with PushService(expected_key=key) as service:
        dept.subscribe(service.subscription("alice-phone"))
        yield service


def db_rows(dept, sql, params=()):
    with sqlite3.connect(dept.settings.db_path) as conn:
        return conn.execute(sql, params).fetchall()


def test_hot_read_sends_verified_push_with_plate(dept, push, tmp_path):
    assert dept.hotlist(tmp_path, "stolen", HOTLIST, "--kind", "stolen_vehicle") == 0
    resp = dept.post_read("8ABC123")
    assert resp.status_code == 201, resp.text
    [message] = push.wait_for(1, timeout=5)
    payload = json.loads(message.payload)
    assert payload["plate"] == "8ABC123"
    assert payload["hotlist"] == "stolen" and payload["kind"] == "stolen_vehicle"
    assert payload["reason"] == "Stolen 2026-11-01" and payload["camera"] == "main-st"
    assert payload["rule"] == "exact" and payload["url"].endswith(f"/alerts/{payload['id']}")
    assert message.urgency == "high" and message.ttl == dept.settings.push_ttl_s
    assert message.claims["aud"] == push.origin
    deliveries = wait_until(lambda: db_rows(dept, "SELECT status FROM push_deliveries"))
    assert deliveries == [(201,)]


def test_off_list_read_sends_nothing(dept, push, tmp_path):
    dept.hotlist(tmp_path, "stolen", HOTLIST)
    assert dept.post_read("7XYZ555").json()["alerts"] == []
    dept.post_read("8ABC123")  # a hot one afterwards proves the pipe was open
    [message] = push.wait_for(1, timeout=5)
    assert json.loads(message.payload)["plate"] == "8ABC123"
    assert len(push.messages) == 1


def test_one_confusion_misread_alerts_naming_the_rule(dept, push, tmp_path):
    dept.hotlist(tmp_path, "stolen", HOTLIST)
    resp = dept.post_read("8A8C123")  # B read as 8
    assert len(resp.json()["alerts"]) == 1
    payload = json.loads(push.wait_for(1)[0].payload)
    assert payload["rule"] == "confusion"
    assert "8→B at 3" in payload["detail"] and payload["read_plate"] == "8A8C123"


def test_candidate_match_alerts(dept, push, tmp_path):
    dept.hotlist(tmp_path, "stolen", HOTLIST)
    resp = dept.post_read("8ABC128", candidates=[("8ABC128", 0.6), ("8ABC123", 0.3)])
    assert len(resp.json()["alerts"]) == 1
    assert json.loads(push.wait_for(1)[0].payload)["rule"] == "candidate"


def test_candidate_matches_only_exactly(dept, tmp_path):
    dept.hotlist(tmp_path, "stolen", HOTLIST)
    # 8A8C123 would match 8ABC123 as the read's plate (B read as 8); as a candidate it does not.
    resp = dept.post_read("7XYZ555", candidates=[("7XYZ555", 0.6), ("8A8C123", 0.3)])
    assert resp.status_code == 201 and resp.json()["alerts"] == []


def test_expired_entry_sends_nothing(dept, push, tmp_path):
    dept.hotlist(tmp_path, "stolen", HOTLIST)
    assert dept.post_read("OLD999").json()["alerts"] == []
    assert dept.post_read("0LD999").json()["alerts"] == []


def test_same_read_id_twice_is_stored_once(dept, push, tmp_path):
    dept.hotlist(tmp_path, "stolen", HOTLIST)
    read_id = str(uuid.uuid4())
    first = dept.post_read("8ABC123", read_id=read_id)
    second = dept.post_read("8ABC123", read_id=read_id)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["duplicate"] and second.json()["id"] == first.json()["id"]
    assert db_rows(dept, "SELECT count(*) FROM reads") == [(1,)]
    assert db_rows(dept, "SELECT count(*) FROM alerts") == [(1,)]


def test_cooldown_one_alert_per_plate_and_camera(dept, push, tmp_path):
    dept.hotlist(tmp_path, "stolen", HOTLIST)
    # Starting a cooldown and a bit ago: captures more than max_clock_skew_s ahead are refused.
    now = datetime.now(UTC) - timedelta(seconds=dept.settings.alert_cooldown_s + 60)
    alerts = [dept.post_read("8ABC123", captured_at=(now + timedelta(seconds=s)).isoformat()).json()["alerts"]
              for s in (0, 5, 10)]
    assert [len(a) for a in alerts] == [1, 0, 0]
    later = (now + timedelta(seconds=dept.settings.alert_cooldown_s + 1)).isoformat()
    assert len(dept.post_read("8ABC123", captured_at=later).json()["alerts"]) == 1


def test_wrong_camera_token_is_401(dept):
    resp = dept.http.post("/api/v1/reads", json={}, headers={"Authorization": "Bearer pwc_not-a-token"})
    assert resp.status_code == 401
    user_token = dept.http.post("/api/v1/reads", json={}, headers=dept.user_headers)
    assert user_token.status_code == 401  # an officer's token is not a camera's


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"confidence": 1.5}, "$.confidence"),
        ({"captured_at": "yesterday"}, "$.captured_at"),
        ({"captured_at": "2026-11-22T03:00:00"}, "$.captured_at"),  # no offset: ambiguous time
        ({"speed": 40}, "speed"),
        ({"plate": "--"}, "plate"),
        ({"candidates": [{"plate": "X", "confidence": "high"}]}, "$.candidates[0].confidence"),
    ],
)
def test_invalid_fields_are_named(dept, change, named):
    body = {"id": str(uuid.uuid4()), "plate": "ABC123", "confidence": 0.9,
            "captured_at": datetime.now(UTC).isoformat(), **change}
    resp = dept.http.post("/api/v1/reads", json=body, headers=dept.camera_headers)
    assert resp.status_code == 400
    assert named in resp.json()["detail"]
    assert db_rows(dept, "SELECT count(*) FROM reads") == [(0,)]


def multipart_read(plate: str, **files) -> tuple[dict, dict]:
    read = {"id": str(uuid.uuid4()), "plate": plate, "confidence": 0.8,
            "captured_at": datetime.now(UTC).isoformat()}
    return {"read": json.dumps(read)}, {k: (f"{k}.jpg", v, "image/jpeg") for k, v in files.items()}


def test_multipart_read_stores_images(dept):
    data, files = multipart_read("5GHJ907", plate_image=jpeg(), vehicle_image=jpeg((320, 240)))
    resp = dept.http.post("/api/v1/reads", data=data, files=files, headers=dept.camera_headers)
    assert resp.status_code == 201, resp.text
    [(plate_path, vehicle_path)] = db_rows(dept, "SELECT plate_image, vehicle_image FROM reads")
    assert (dept.settings.data_dir / plate_path).read_bytes() == files["plate_image"][1]
    assert (dept.settings.data_dir / vehicle_path).read_bytes() == files["vehicle_image"][1]


def test_corrupt_jpeg_is_refused_and_nothing_stored(dept):
    broken = jpeg()[:200]
    data, files = multipart_read("5GHJ907", plate_image=broken)
    resp = dept.http.post("/api/v1/reads", data=data, files=files, headers=dept.camera_headers)
    assert resp.status_code == 400 and "plate_image" in resp.json()["detail"]
    assert db_rows(dept, "SELECT count(*) FROM reads") == [(0,)]
    assert not (dept.settings.data_dir / "images").exists()


def test_oversize_upload_is_413(dept):
    data, files = multipart_read("5GHJ907", vehicle_image=b"\xff\xd8\xff" + b"0" * (dept.settings.max_request_bytes + 1))
    resp = dept.http.post("/api/v1/reads", data=data, files=files, headers=dept.camera_headers)
    assert resp.status_code == 413
    big_image = b"\xff\xd8\xff" + b"0" * (dept.settings.max_image_bytes + 1)
    data, files = multipart_read("5GHJ907", plate_image=big_image)
    resp = dept.http.post("/api/v1/reads", data=data, files=files, headers=dept.camera_headers)
    assert resp.status_code == 413 and "plate_image" in resp.json()["detail"]
    assert db_rows(dept, "SELECT count(*) FROM reads") == [(0,)]


def test_gone_subscription_is_dropped(dept, push, tmp_path):
    dept.subscribe(push.subscription("old-phone"))
    push.configure("old-phone", status=410)
    dept.hotlist(tmp_path, "stolen", HOTLIST)
    dept.post_read("8ABC123")
    push.wait_for(1, name="alice-phone")

    def endpoints():
        return [e for (e,) in db_rows(dept, "SELECT endpoint FROM push_subscriptions")]

    wait_until(lambda: not any("old-phone" in e for e in endpoints()))
    [kept] = endpoints()
    assert "alice-phone" in kept
    statuses = sorted(s for (s,) in db_rows(dept, "SELECT status FROM push_deliveries"))
    assert statuses == [201, 410]


def test_an_api_client_that_unsubscribes_gets_no_more_pushes_and_the_audit_log_says_so(dept, push, tmp_path):
    subscription = push.subscription("alice-phone")
    resp = dept.http.post("/api/v1/push/unsubscribe", json=subscription, headers=dept.user_headers)
    assert resp.status_code == 200 and resp.json() == {"removed": True}
    dept.hotlist(tmp_path, "stolen", HOTLIST)
    assert len(dept.post_read("8ABC123").json()["alerts"]) == 1  # it alerted, but no phone is left
    assert db_rows(dept, "SELECT count(*) FROM push_subscriptions") == [(0,)]
    audited = db_rows(dept, "SELECT actor, action, detail FROM audit_log WHERE action LIKE 'push.%' ORDER BY id")
    assert [(actor, action) for actor, action, _ in audited] == [("alice", "push.subscribe"), ("alice", "push.unsubscribe")]
    assert json.loads(audited[-1][2]) == {"removed": True}


def test_alert_acknowledge_and_outcome(dept, tmp_path):
    dept.hotlist(tmp_path, "stolen", HOTLIST)
    [alert_id] = dept.post_read("8ABC123").json()["alerts"]
    url = f"/api/v1/alerts/{alert_id}"
    ack = dept.http.patch(url, json={"status": "acknowledged"}, headers=dept.user_headers)
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
    again = dept.http.patch(url, json={"status": "acknowledged"}, headers=dept.user_headers)
    assert again.status_code == 409
    done = dept.http.patch(url, json={"status": "confirmed", "verified_with": "NCIC"}, headers=dept.user_headers)
    assert done.json()["status"] == "confirmed"
    listed = dept.http.get("/api/v1/alerts", headers=dept.user_headers).json()
    assert [a["id"] for a in listed] == [alert_id]
    actions = [a for (a,) in db_rows(dept, "SELECT action FROM audit_log WHERE action LIKE 'alert.%'")]
    assert actions == ["alert.acknowledged", "alert.confirmed"]
    assert dept.http.get("/api/v1/alerts").status_code == 401


def test_api_works_an_alert_by_the_web_pages_rules(dept, tmp_path):
    """PATCH /api/v1/alerts/{id} keeps the alert page's rules: a hit is confirmed only once checked
    against NCIC, the state system or dispatch (a 400 naming `verified_with` otherwise), and an
    outcome recorded on a new alert acknowledges it first."""
    dept.hotlist(tmp_path, "stolen", HOTLIST)
    [alert_id] = dept.post_read("8ABC123").json()["alerts"]
    url = f"/api/v1/alerts/{alert_id}"
    refused = dept.http.patch(url, json={"status": "confirmed", "note": "looks right"}, headers=dept.user_headers)
    assert refused.status_code == 400 and "verified_with" in refused.json()["detail"]
    assert db_rows(dept, "SELECT status FROM alerts") == [("new",)]
    done = dept.http.patch(url, json={"status": "confirmed", "verified_with": "NCIC", "note": "plate and VIN"},
                           headers=dept.user_headers)
    assert done.status_code == 200 and done.json()["status"] == "confirmed"
    [row] = db_rows(dept, "SELECT acknowledged_by, resolved_by, note FROM alerts")
    assert row == ("alice", "alice", "verified with NCIC. plate and VIN")


def test_health_and_schema(dept):
    assert dept.http.get("/healthz").status_code == 200
    paths = dept.http.get("/schema/openapi.json").json()["paths"]
    assert {"/api/v1/reads", "/api/v1/auth/token", "/api/v1/push/key", "/api/v1/push/subscriptions"} <= set(paths)


def test_subscription_with_bad_keys_or_plain_http_is_refused(dept, push, tmp_path):
    good = push.subscription("x")
    bad_keys = {**good, "keys": {"p256dh": "A" * 87, "auth": good["keys"]["auth"]}}
    resp = dept.http.post("/api/v1/push/subscriptions", json=bad_keys, headers=dept.user_headers)
    assert resp.status_code == 400 and "keys" in resp.json()["detail"]
    unknown = {**good, "extra": 1}
    resp = dept.http.post("/api/v1/push/subscriptions", json=unknown, headers=dept.user_headers)
    assert resp.status_code == 400 and "unknown field `extra`" in resp.text


def test_plain_http_push_endpoint_refused_in_production(tmp_path, capsys):
    from tests.conftest import Department, LiveServer, make_settings

    live = LiveServer(make_settings(tmp_path / "data", push_allow_http=False)).start()
    try:
        dept = Department(live, capsys)
        with PushService() as service:
            resp = dept.http.post("/api/v1/push/subscriptions", json=service.subscription("p"), headers=dept.user_headers)
        assert resp.status_code == 400 and "https" in resp.json()["detail"]
        dept.close()
    finally:
        live.stop()


def test_camera_heartbeat_records_health(dept):
    beat = {"frames_per_s": 9.5, "last_frame_at": datetime.now(UTC).isoformat(), "frames_gated": 120}
    resp = dept.http.post("/api/v1/cameras/heartbeat", json=beat, headers=dept.camera_headers)
    assert resp.status_code == 200, resp.text
    [(fps, gated, last_frame)] = db_rows(dept, "SELECT frames_per_s, frames_gated, last_frame_at FROM cameras")
    assert (fps, gated) == (9.5, 120) and last_frame is not None
    assert dept.http.post("/api/v1/cameras/heartbeat", json=beat, headers=dept.user_headers).status_code == 401
    bad = dept.http.post("/api/v1/cameras/heartbeat", json={"fps": 1}, headers=dept.camera_headers)
    assert bad.status_code == 400 and "fps" in bad.text


def test_password_guessing_is_throttled(dept):
    for _ in range(5):
        resp = dept.http.post("/api/v1/auth/token", json={"username": "alice", "password": "wrong guess"})
        assert resp.status_code == 401
    locked = dept.http.post("/api/v1/auth/token", json={"username": "alice", "password": "correct horse"})
    assert locked.status_code == 429
    failures = db_rows(dept, "SELECT count(*) FROM audit_log WHERE action = 'auth.failed' AND actor = 'alice'")
    assert failures == [(5,)]
