"""One vehicle, one stored read, one alert: the worker posts a hit as soon as it is settled and may
refine it later (same id, higher `revision`); the server folds the refinement into the stored read.
And the heartbeat's load figures (vehicles seen/read, frames dropped, lag, overloaded) reach the
camera page."""

from __future__ import annotations

import io
import json
import uuid
from contextlib import closing
from datetime import UTC, datetime

from PIL import Image

from tests.test_ingest import db_rows
from tests.test_web_admin import add_user, web_client

HOTLIST = "plate,state,reason,expires\n8ABC123,CA,Stolen,\n8ABC128,CA,Stolen too,\n"


def jpeg(color) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 60), color).save(buffer, "JPEG")
    return buffer.getvalue()


def post(dept, read: dict, images: dict[str, bytes] | None = None):
    if not images:
        return dept.http.post("/api/v1/reads", json=read, headers=dept.camera_headers)
    files = {name: (f"{name}.jpg", data, "image/jpeg") for name, data in images.items()}
    return dept.http.post("/api/v1/reads", data={"read": json.dumps(read)}, files=files, headers=dept.camera_headers)


def a_read(plate: str, revision: int | None = None, **fields) -> dict:
    read = {"id": str(uuid.uuid4()), "plate": plate, "confidence": 0.8, "captured_at": datetime.now(UTC).isoformat(),
            "candidates": [], **fields}
    if revision is not None:
        read["revision"] = revision
    return read


def test_a_refined_read_is_folded_into_the_first_and_alerts_once(dept, tmp_path):
    assert dept.hotlist(tmp_path, "stolen", HOTLIST) == 0
    first = a_read("8ABC123")
    resp = post(dept, first, {"plate_image": jpeg((10, 10, 10))})
    assert resp.status_code == 201 and len(resp.json()["alerts"]) == 1, resp.text
    assert post(dept, first).status_code == 200  # an identical resend: stored once
    refined = {**first, "revision": 1, "confidence": 0.97,
               "candidates": [{"plate": "8ABC123", "confidence": 0.97}, {"plate": "8ABC12X", "confidence": 0.02}]}
    resp = post(dept, refined, {"plate_image": jpeg((250, 250, 250))})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["revised"] is True and body["duplicate"] is False and body["alerts"] == []
    assert body["id"] == post(dept, first).json()["id"]  # a late resend of revision 0 changes nothing
    [(plate, confidence, revision, image)] = db_rows(dept, "SELECT plate, confidence, revision, plate_image FROM reads")
    assert (plate, confidence, revision) == ("8ABC123", 0.97, 1)
    stored = Image.open(dept.settings.data_dir / image)
    assert stored.getpixel((5, 5))[0] > 200  # the refined crop replaced the first
    assert db_rows(dept, "SELECT count(*) FROM alerts") == [(1,)]


def test_a_refined_text_alerts_only_for_an_entry_the_first_did_not(dept, tmp_path):
    assert dept.hotlist(tmp_path, "stolen", HOTLIST, "--kind", "stolen_vehicle") == 0
    first = a_read("7XYZ555")
    assert post(dept, first).json()["alerts"] == []
    resp = post(dept, {**first, "plate": "8ABC128", "revision": 1})
    assert resp.status_code == 200 and len(resp.json()["alerts"]) == 1, resp.text
    resp = post(dept, {**first, "plate": "8ABC128", "revision": 2, "confidence": 0.99})
    assert resp.json()["alerts"] == []  # never a second alert for the same entry
    assert db_rows(dept, "SELECT plate, plate_norm FROM reads") == [("8ABC128", "8ABC128")]
    assert db_rows(dept, "SELECT entry_plate FROM alerts") == [("8ABC128",)]


def test_a_refinement_from_another_camera_changes_nothing(dept, capsys):
    from tests.conftest import run_cli
    run_cli(dept.settings, "camera", "add", "elm-st")
    other = {"Authorization": f"Bearer {capsys.readouterr().out.strip().splitlines()[-1]}"}
    first = a_read("7XYZ555")
    assert post(dept, first).status_code == 201
    resp = dept.http.post("/api/v1/reads", json={**first, "plate": "1AAA111", "revision": 1}, headers=other)
    assert resp.status_code == 200 and resp.json()["duplicate"] is True
    assert db_rows(dept, "SELECT plate FROM reads") == [("7XYZ555",)]


def test_a_bad_revision_is_refused_by_name(dept):
    resp = post(dept, a_read("7XYZ555", revision=-1))
    assert resp.status_code == 400 and "revision" in resp.text


def test_overload_in_the_heartbeat_is_stored_and_marked_on_the_camera_page(dept):
    add_user(dept, "chief", "admin")
    [(camera_id,)] = db_rows(dept, "SELECT id FROM cameras WHERE name = 'main-st'")
    beat = {"frames_per_s": 10.0, "last_frame_at": datetime.now(UTC).isoformat(), "frames_gated": 3,
            "vehicles_seen": 40, "vehicles_read": 31, "frames_dropped": 120, "recognition_lag_s": 4.5,
            "overloaded": True}
    assert dept.http.post("/api/v1/cameras/heartbeat", json=beat, headers=dept.camera_headers).status_code == 200
    assert db_rows(dept, "SELECT vehicles_seen, vehicles_read, frames_dropped, recognition_lag_s, overloaded "
                         "FROM cameras") == [(40, 31, 120, 4.5, 1)]
    with closing(web_client(dept, "chief", "long enough pw")) as client:
        row = client.get("/cameras").text.split(f'id="camera-{camera_id}"')[1].split("</tr>")[0]
    assert 'data-status="overloaded"' in row and ">31 of 40<" in row and ">120<" in row and ">4.5 s<" in row
    old_worker = {"frames_per_s": 10.0, "last_frame_at": datetime.now(UTC).isoformat()}
    assert dept.http.post("/api/v1/cameras/heartbeat", json=old_worker, headers=dept.camera_headers).status_code == 200
    with closing(web_client(dept, "chief", "long enough pw")) as client:
        row = client.get("/cameras").text.split(f'id="camera-{camera_id}"')[1].split("</tr>")[0]
    assert 'data-status="ok"' in row  # a worker that does not report load is not "overloaded"
    bad = dept.http.post("/api/v1/cameras/heartbeat", json={**beat, "frames_dropped": -1}, headers=dept.camera_headers)
    assert bad.status_code == 400 and "frames_dropped" in bad.text
