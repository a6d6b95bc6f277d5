"""The worker's snapshot APIs (issue 20) with the real model, the real worker and the real server:
Plate Recognizer's Snapshot API as their `plate_recognition.py -s URL photo.jpg` calls it, and
CodeProject.AI's ALPR API as Blue Iris calls it; with a camera token each image becomes that
camera's read (stored, matched, alerted), without one the answer is 401 unless the config lets
anonymous callers in, who are answered and leave nothing behind. The clients here are written
from the documented request and answer formats."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import synth
from tests.conftest import Department, wait_until
from tests.test_worker_helpers import RECOGNIZER_SPEC, recognizer, stored_reads, write_config
from worker.__main__ import Worker
from worker.config import ConfigError, load_config
from worker.recognize.pool import RecognitionPool

PLATE = "7ABC123"


def snapshot_api_toml(token: str, *, anonymous: bool = False, max_upload_mb: float = 2.0) -> str:
    return (f'[snapshot_api]\nlisten = "127.0.0.1:0"\nanonymous = {str(anonymous).lower()}\n'
            f'max_upload_mb = {max_upload_mb}\n[[snapshot_api.cameras]]\nname = "nvr-gate"\ntoken = "{token}"\n')


@contextlib.contextmanager
def api_worker(dept: Department, tmp_path: Path, pool: bool = False, **api) -> Iterator[tuple[Worker, list[str]]]:
    """A worker with only the snapshot API, reading in a recognition process (`pool`) or in its
    own loop; the names of the threads of this process its images were recognised on."""
    config = load_config(write_config(tmp_path / "worker.toml", dept.live.url,
                                      snapshot_api_toml(dept.camera_token, **api)))
    threads: list[str] = []

    def recognise(image):
        threads.append(threading.current_thread().name)
        return recognizer()(image)

    worker = Worker(config, RecognitionPool(1, RECOGNIZER_SPEC) if pool else recognise)
    thread = threading.Thread(target=worker.run, name="worker-loop", daemon=True)
    thread.start()
    try:
        yield worker, threads
    finally:
        worker.stop.set()
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> bytes:
    return synth.write_images(tmp_path_factory.mktemp("photos"), [PLATE], seed=1, size=(960, 540))[0].read_bytes()


def plate_recognizer_call(sdk_url: str, image: bytes, *, regions=(), camera_id=None, timestamp=None,
                          headers=None) -> httpx.Response:
    """Their Snapshot SDK request: multipart `upload`, `regions` repeated, `config` as JSON text."""
    data = {"regions": list(regions), "config": json.dumps({})}
    if camera_id:
        data["camera_id"] = camera_id
    if timestamp:
        data["timestamp"] = timestamp
    return httpx.post(sdk_url + "/v1/plate-reader/", files={"upload": ("photo.jpg", image, "image/jpeg")},
                      data=data, headers=headers or {}, timeout=60)


def codeproject_call(base_url: str, image: bytes, headers=None) -> httpx.Response:
    return httpx.post(base_url + "/v1/vision/alpr", files={"upload": ("photo.jpg", image, "image/jpeg")},
                      headers=headers or {}, timeout=60)


def check_plate_recognizer_answer(answer: dict) -> dict:
    """Their documented shape; returns the best result."""
    assert {"processing_time", "timestamp", "camera_id", "filename", "results"} <= set(answer)
    assert isinstance(answer["processing_time"], float) and answer["timestamp"].endswith("Z")
    best = answer["results"][0]
    assert set(best["box"]) == {"xmin", "ymin", "xmax", "ymax"}
    assert best["box"]["xmin"] < best["box"]["xmax"] and best["box"]["ymin"] < best["box"]["ymax"]
    assert best["plate"] == best["plate"].lower() and 0 < best["score"] <= 1 and 0 < best["dscore"] <= 1
    assert best["candidates"][0] == {"plate": best["plate"], "score": best["score"]}
    assert set(best["region"]) == {"code", "score"}
    assert set(best["vehicle"]) == {"type", "score", "box"} and set(best["vehicle"]["box"]) == set(best["box"])
    assert all(set(c) == {"color", "score"} for c in best.get("color", []))
    return best


def check_codeproject_answer(answer: dict) -> dict:
    assert answer["success"] is True and answer["count"] == len(answer["predictions"])
    assert isinstance(answer["inferenceMs"], int) and isinstance(answer["processMs"], int)
    assert isinstance(answer["message"], str)
    best = answer["predictions"][0]
    assert {"confidence", "label", "plate", "x_min", "y_min", "x_max", "y_max"} <= set(best)
    assert best["label"] == f"Plate: {best['plate']}" and best["x_min"] < best["x_max"]
    return best


def test_plate_recognizer_client_with_a_path_token_makes_a_read_that_alerts(dept, tmp_path, photo):
    assert dept.hotlist(tmp_path, "stolen", f"plate,state,reason\n{PLATE},CA,stolen\n") == 0
    with api_worker(dept, tmp_path) as (worker, threads):
        sdk_url = f"{worker.snapshot_api.url}/cameras/{dept.camera_token}"  # `-s` mode sends no header
        resp = plate_recognizer_call(sdk_url, photo, regions=["us-ca", "us-nv"], camera_id="gate-1",
                                     timestamp="2026-12-01T10:20:30")
        assert resp.status_code == 201, resp.text
        answer = resp.json()
        best = check_plate_recognizer_answer(answer)
        assert best["plate"] == PLATE.lower() and best["region"]["code"] == "us-ca"
        assert answer["camera_id"] == "gate-1" and answer["filename"] == "photo.jpg"
        assert answer["timestamp"] == "2026-12-01T10:20:30Z"
        assert wait_until(lambda: stored_reads(dept.settings.db_path), timeout=30)
        alerts = wait_until(lambda: dept.http.get("/api/v1/alerts", headers=dept.user_headers).json(), timeout=10)
    assert [plate for _, plate, _ in stored_reads(dept.settings.db_path)] == [PLATE]
    assert [alert["plate"] for alert in alerts] == [PLATE]
    assert threads == ["worker-loop"]  # recognised by the worker's recognition, not on the HTTP thread


def test_codeproject_call_with_a_header_token_is_stored_read_by_a_recognition_process(dept, tmp_path, photo):
    with api_worker(dept, tmp_path, pool=True) as (worker, threads):
        resp = codeproject_call(worker.snapshot_api.url, photo, {"Authorization": f"Token {dept.camera_token}"})
        assert resp.status_code == 200, resp.text
        best = check_codeproject_answer(resp.json())
        assert best["plate"] == PLATE and resp.json()["message"] == f"Found {PLATE}"
        assert wait_until(lambda: stored_reads(dept.settings.db_path), timeout=30)
    [(_, plate, colour)] = stored_reads(dept.settings.db_path)
    assert plate == PLATE and colour and threads == []


def test_without_a_token_the_answer_is_401(dept, tmp_path, photo):
    with api_worker(dept, tmp_path) as (worker, threads):
        url = worker.snapshot_api.url
        refused = [plate_recognizer_call(url, photo), codeproject_call(url, photo),
                   plate_recognizer_call(f"{url}/cameras/pwc_not-a-camera", photo),
                   codeproject_call(url, photo, {"Authorization": "Token pwc_not-a-camera"})]
        assert [r.status_code for r in refused] == [401] * 4
        assert "camera token" in refused[0].json()["detail"]
        assert refused[1].json()["success"] is False and "camera token" in refused[1].json()["error"]
        assert len(worker.spool) == 0 and threads == []


def test_anonymous_callers_are_answered_and_nothing_is_stored(dept, tmp_path, photo):
    with api_worker(dept, tmp_path, anonymous=True) as (worker, _):
        url = worker.snapshot_api.url
        read = plate_recognizer_call(url, photo)
        assert read.status_code == 201, read.text
        assert check_plate_recognizer_answer(read.json())["plate"] == PLATE.lower()
        assert check_codeproject_answer(codeproject_call(url, photo).json())["plate"] == PLATE
        assert codeproject_call(url, photo, {"Authorization": "Token pwc_not-a-camera"}).status_code == 401
        time.sleep(0.5)
        assert len(worker.spool) == 0
    assert stored_reads(dept.settings.db_path) == []


def test_oversize_and_corrupt_uploads_are_refused_before_recognition(dept, tmp_path, photo):
    with api_worker(dept, tmp_path, max_upload_mb=0.05) as (worker, threads):
        url, auth = worker.snapshot_api.url, {"Authorization": f"Token {dept.camera_token}"}
        over = plate_recognizer_call(url, photo + b"\0" * 60_000, headers=auth)  # a whole photo, over 0.05 MB
        far_over = codeproject_call(url, b"\xff" * 400_000, auth)  # refused while the body streams in
        truncated = codeproject_call(url, photo[:min(len(photo) // 2, 40_000)], auth)
        not_an_image = plate_recognizer_call(url, b"GIF89a" + b"\0" * 100, headers=auth)
        missing = httpx.post(url + "/v1/plate-reader/", data={"camera_id": "x"}, headers=auth)
    assert over.status_code == 413 and "over the 0.05 MB limit" in over.json()["detail"]
    assert far_over.status_code == 413 and "snapshot_api.max_upload_mb" in far_over.json()["error"]
    assert truncated.status_code == 400 and "truncated" in truncated.json()["error"]
    assert not_an_image.status_code == 400 and "not" in not_an_image.json()["detail"]
    assert missing.status_code == 400 and "upload" in missing.json()["detail"]
    assert threads == [] and stored_reads(dept.settings.db_path) == []


def test_snapshot_api_config_is_checked_by_name(tmp_path):
    path = tmp_path / "worker.toml"
    path.write_text('server = "http://127.0.0.1:8000"\n[snapshot_api]\nlisten = "127.0.0.1:8081"\nanonymus = true\n')
    with pytest.raises(ConfigError, match="unknown key `anonymus` \\(in snapshot_api\\)"):
        load_config(path)
    path.write_text('server = "http://127.0.0.1:8000"\n[snapshot_api]\nlisten = "8081"\n')
    with pytest.raises(ConfigError, match="snapshot_api: listen is host:port"):
        load_config(path)
    path.write_text('server = "http://127.0.0.1:8000"\n' + snapshot_api_toml("pwc_12345678")
                    + '[[cameras]]\nname = "nvr-gate"\ntoken = "pwc_87654321"\nkind = "snapshot"\n'
                    + 'location = "http://cam/"\n')
    with pytest.raises(ConfigError, match="name 'nvr-gate' is used twice"):
        load_config(path)


def test_a_taken_address_stops_the_worker_with_the_reason(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        toml = snapshot_api_toml("pwc_12345678").replace("127.0.0.1:0", f"127.0.0.1:{port}")
        config = load_config(write_config(tmp_path / "worker.toml", "http://127.0.0.1:9", toml))
        with pytest.raises(OSError, match=f"snapshot_api: cannot listen on 127.0.0.1:{port}"):
            Worker(config, recognizer())
