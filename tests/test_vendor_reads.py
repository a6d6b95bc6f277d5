"""Reads from other ALPR systems: Plate Recognizer Stream's webhook and the OpenALPR agent's alpr_group,
posted with a camera token, each stored once as one read with its candidates and alerted like ours."""

from __future__ import annotations

import io
import json
import sqlite3
import time
from datetime import UTC, datetime

from PIL import Image

HOTLIST = "plate,state,reason\n9JUB11,CA,Stolen 2026-11-01\nA13709,MO,Wanted\n"


def stream_webhook(plate: str = "9jub11", **data) -> dict:
    """As Plate Recognizer Stream posts it (its documented sample, trimmed)."""
    return {
        "hook": {"target": "https://platewatch.example/api/v1/reads/platerecognizer", "id": "camera-1",
                 "event": "recognition", "filename": "camera-1_screenshots/26-12-07/08-56-13.606935.jpg"},
        "data": {
            "camera_id": "camera-1", "filename": "camera-1_screenshots/26-12-07/08-56-13.606935.jpg",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "timestamp_local": datetime.now(UTC).isoformat(sep=" "),
            "results": [{
                "box": {"xmin": 460, "ymin": 57, "xmax": 557, "ymax": 82}, "plate": plate,
                "region": {"code": "us-ca", "score": 0.413}, "score": 0.839,
                "candidates": [{"plate": plate}, {"plate": "sju88y"}, {"plate": "9jubi1", "score": 0.5}],
                "dscore": 0.441,
                "vehicle": {"score": 0.267, "type": "Sedan", "box": {"xmin": 387, "ymin": 23, "xmax": 1493, "ymax": 577}},
                "color": [{"color": "white", "score": 0.672}, {"color": "silver", "score": 0.201}],
                "direction": "", "source_url": "rtsp://camera-1/stream", "position_sec": 4,
            }],
            **data,
        },
    }


def alpr_group(preview: bool = False) -> dict:
    """As the OpenALPR agent posts a group (its documented sample, trimmed)."""
    start = int(time.time() * 1000) - 2000
    uuids = [f"site-cam1414799424-{start + i * 300}" for i in range(2 if preview else 4)]
    return {
        "version": 2, "data_type": "alpr_group", "epoch_start": start, "epoch_end": start + 1257,
        "company_id": "44c9274f-8d57-432a-8cd7-8c991f22ead3", "site_id": "site", "camera_id": 1414799424,
        "uuids": uuids, "is_preview": preview, "best_uuid": uuids[0], "best_plate_number": "A13709",
        "best_confidence": 92.075203, "best_region": "mo", "best_region_confidence": 0,
        "best_plate": {
            "plate": "A13709", "confidence": 92.075203, "matches_template": 0, "plate_index": 0, "region": "mo",
            "coordinates": [{"x": 204, "y": 134}, {"x": 709, "y": 222}, {"x": 658, "y": 500}, {"x": 167, "y": 383}],
            "candidates": [{"plate": "A13709", "confidence": 92.075203, "matches_template": 0},
                           {"plate": "A137O9", "confidence": 83.32373, "matches_template": 0}],
        },
        "vehicle": {"color": [{"name": "blue", "confidence": 80.1}], "make": [{"name": "dodge", "confidence": 40.0}]},
    }


def stored_reads(dept) -> list[tuple]:
    with sqlite3.connect(dept.settings.db_path) as conn:
        return conn.execute("SELECT plate, confidence, candidates, box, color, revision FROM reads").fetchall()


def alerts(dept) -> list[dict]:
    return dept.http.get("/api/v1/alerts", headers=dept.user_headers).json()


def post(dept, path: str, body, headers=None):
    content = body if isinstance(body, str) else json.dumps(body)
    return dept.http.post(f"/api/v1/reads/{path}", content=content,
                          headers={"Content-Type": "application/json", **(headers or dept.camera_headers)})


def test_a_plate_recognizer_webhook_is_stored_once_and_alerts(dept, tmp_path):
    assert dept.hotlist(tmp_path, "stolen", HOTLIST) == 0
    hook = stream_webhook()
    first = post(dept, "platerecognizer", hook)
    assert first.status_code == 201, first.text
    assert len(first.json()["alerts"]) == 1
    again = post(dept, "platerecognizer", hook)  # Stream retries a webhook it thinks failed
    assert again.status_code == 200 and again.json()["duplicate"] and again.json()["id"] == first.json()["id"]
    [(plate, confidence, candidates, box, color, _)] = stored_reads(dept)
    assert (plate, confidence, color) == ("9JUB11", 0.839, "white")
    assert json.loads(candidates) == [{"plate": "SJU88Y", "confidence": 0.839}, {"plate": "9JUBI1", "confidence": 0.5}]
    assert json.loads(box) == {"x": 460, "y": 57, "w": 97, "h": 25}
    [alert] = alerts(dept)
    assert alert["plate"] == "9JUB11" and alert["camera"] == "main-st"


def test_a_stream_webhook_as_a_form_with_its_frame(dept, tmp_path):
    """Stream sends the JSON in a form field `json`, with the frame as `upload` when asked for images."""
    frame = io.BytesIO()
    Image.new("RGB", (640, 360), (90, 90, 90)).save(frame, "JPEG")
    resp = dept.http.post("/api/v1/reads/platerecognizer", headers=dept.camera_headers,
                          data={"json": json.dumps(stream_webhook())}, files={"upload": ("frame.jpg", frame.getvalue())})
    assert resp.status_code == 201, resp.text
    with sqlite3.connect(dept.settings.db_path) as conn:
        [(image,)] = conn.execute("SELECT vehicle_image FROM reads").fetchall()
    assert (dept.settings.data_dir / image).read_bytes() == frame.getvalue()
    resp = dept.http.post("/api/v1/reads/platerecognizer", headers=dept.camera_headers,
                          data={"json": json.dumps(stream_webhook("7xyz555"))})  # a form without the image
    assert resp.status_code == 201, resp.text
    resp = dept.http.post("/api/v1/reads/platerecognizer", headers=dept.camera_headers, data={"jsn": "{}"})
    assert resp.status_code == 400 and "unknown form field(s): jsn" in resp.json()["detail"]


def test_an_openalpr_group_is_stored_once_and_alerts(dept, tmp_path):
    assert dept.hotlist(tmp_path, "wanted", HOTLIST) == 0
    preview, final = alpr_group(preview=True), alpr_group()
    final["uuids"][0] = preview["uuids"][0]  # the same vehicle: the final group extends the preview
    final["epoch_start"] = preview["epoch_start"]
    first = post(dept, "openalpr", preview)
    assert first.status_code == 201, first.text
    refined = post(dept, "openalpr", final)
    assert refined.status_code == 200 and refined.json()["revised"] and refined.json()["id"] == first.json()["id"]
    resend = post(dept, "openalpr", final)
    assert resend.status_code == 200 and resend.json()["duplicate"]
    [(plate, confidence, candidates, box, color, revision)] = stored_reads(dept)
    assert (plate, round(confidence, 4), color, revision) == ("A13709", 0.9208, "blue", 1)
    assert json.loads(candidates) == [{"plate": "A137O9", "confidence": 0.8332373}]
    assert json.loads(box) == {"x": 167, "y": 134, "w": 542, "h": 366}
    assert [alert["plate"] for alert in alerts(dept)] == ["A13709"]  # one vehicle, one alert


def test_bad_vendor_posts_are_refused_naming_the_field(dept):
    unknown = {**alpr_group(), "licence": "x"}
    resp = post(dept, "openalpr", unknown)
    assert resp.status_code == 400 and "unknown field `licence`" in resp.json()["detail"]
    missing = alpr_group()
    del missing["best_plate_number"]
    resp = post(dept, "openalpr", missing)
    assert resp.status_code == 400 and "best_plate_number" in resp.json()["detail"]
    resp = post(dept, "platerecognizer", {**stream_webhook(), "extra": 1})
    assert resp.status_code == 400 and "unknown field `extra`" in resp.json()["detail"]
    resp = post(dept, "platerecognizer", stream_webhook(results=[]))
    assert resp.status_code == 400 and "$.data.results" in resp.json()["detail"]
    bad_score = stream_webhook()
    bad_score["data"]["results"][0]["score"] = 83.9
    resp = post(dept, "platerecognizer", bad_score)
    assert resp.status_code == 400 and "$.data.results[0].score" in resp.json()["detail"]
    assert post(dept, "platerecognizer", stream_webhook(), headers={"Authorization": "Bearer nope"}).status_code == 401
    assert stored_reads(dept) == []
