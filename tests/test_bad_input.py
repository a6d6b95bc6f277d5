"""Odd input from cameras and browsers gets a clear 4xx, never a 500 (issue 17, defects 8, 9, 14)."""

from __future__ import annotations

import io
import json
import sqlite3
import uuid
from contextlib import closing
from datetime import UTC, datetime

import httpx
import pytest
from PIL import Image

from tests.conftest import run_cli

TOO_BIG = 9223372036854775808  # one past SQLite's largest integer


def jpeg(size=(32, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (90, 90, 90)).save(buffer, "JPEG")
    return buffer.getvalue()


def claiming(width: int, height: int) -> bytes:
    """A tiny real JPEG whose frame header (SOF0) is patched to claim width × height."""
    data = bytearray(jpeg())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def read_json(plate: str = "7ABC123", **extra) -> dict:
    return {"id": str(uuid.uuid4()), "plate": plate, "confidence": 0.9,
            "captured_at": datetime.now(UTC).isoformat(), **extra}


def post_multipart(dept, files: list[tuple[str, tuple]], read: dict | None = None) -> httpx.Response:
    return dept.http.post("/api/v1/reads", headers=dept.camera_headers,
                          files=[("read", (None, json.dumps(read or read_json()), "application/json")), *files])


def stored_reads(dept) -> int:
    with sqlite3.connect(dept.settings.db_path) as conn:
        return conn.execute("SELECT count(*) FROM reads").fetchone()[0]


# --- image bombs (8) ----------------------------------------------------------------------------

@pytest.mark.parametrize("side", [30000, 12000, 5000])
def test_a_jpeg_claiming_huge_dimensions_is_refused_from_its_header(dept, side):
    bomb = claiming(side, side)
    assert len(bomb) < 1000
    resp = post_multipart(dept, [("plate_image", ("p.jpg", bomb, "image/jpeg"))])
    assert resp.status_code == 413, resp.text
    assert "plate_image" in resp.text and "-pixel limit" in resp.text
    assert f"{side}×{side}" in resp.text or side * side > 2 * Image.MAX_IMAGE_PIXELS
    assert stored_reads(dept) == 0


def test_a_camera_sized_jpeg_is_still_accepted(dept):
    resp = post_multipart(dept, [("vehicle_image", ("v.jpg", jpeg((1920, 1080)), "image/jpeg"))])
    assert resp.status_code == 201, resp.text


# --- integers beyond SQLite's range and odd paths (9) -------------------------------------------

def web_client(dept) -> httpx.Client:
    client = httpx.Client(base_url=dept.live.url, timeout=10)
    client.get("/login")
    resp = client.post("/login", data={"username": "alice", "password": "correct horse",
                                       "_csrf_token": client.cookies["csrftoken"]})
    assert resp.status_code == 303, resp.text
    client.headers["x-csrftoken"] = client.cookies["csrftoken"]
    return client


def test_api_integers_beyond_sqlite_are_400_or_404(dept):
    h = dept.user_headers
    assert dept.http.get(f"/api/v1/alerts?before={TOO_BIG}", headers=h).status_code == 400
    assert dept.http.get(f"/api/v1/alerts?before=-{TOO_BIG + 1}", headers=h).status_code == 400
    assert dept.http.get(f"/api/v1/alerts/{TOO_BIG}", headers=h).status_code in (400, 404)
    patched = dept.http.patch(f"/api/v1/alerts/{TOO_BIG}", json={"status": "acknowledged"}, headers=h)
    assert patched.status_code in (400, 404)


def test_page_integers_beyond_sqlite_and_nul_in_image_paths_are_404(dept):
    assert run_cli(dept.settings, "user", "add", "sam", "--role", "admin", "--password-stdin",
                   stdin="long enough pw\n") == 0
    with closing(web_client(dept)) as alice:
        assert alice.get(f"/alerts/{TOO_BIG}").status_code in (400, 404)
        assert alice.post(f"/alerts/{TOO_BIG}/acknowledge").status_code in (400, 404)
        for path in ("/images/images/2026-01-01/a%00b.jpg", "/images/%00", "/images/..%2f..%2fplatewatch.db",
                     "/images/images/../platewatch.db"):
            assert alice.get(path).status_code == 404, path
    with closing(httpx.Client(base_url=dept.live.url, timeout=10)) as sam:
        sam.get("/login")
        signed_in = sam.post("/login", data={"username": "sam", "password": "long enough pw",
                                             "_csrf_token": sam.cookies["csrftoken"]})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
        for path in (f"/hotlists/{TOO_BIG}", f"/hotlists/-{TOO_BIG + 1}", f"/hotlists/{'9' * 5000}",
                     f"/audit?before={TOO_BIG}"):
            assert sam.get(path).status_code in (400, 404), path
        assert sam.get(f"/hotlists?page={TOO_BIG}").status_code in (200, 400, 404)


# --- duplicated parts and keys; plate text (14) -------------------------------------------------

def test_two_plate_images_are_refused_naming_the_field(dept):
    image = ("p.jpg", jpeg(), "image/jpeg")
    resp = post_multipart(dept, [("plate_image", image), ("plate_image", image)])
    assert resp.status_code == 400 and "plate_image" in resp.text, resp.text
    resp = dept.http.post("/api/v1/reads", headers=dept.camera_headers,
                          files=[("read", (None, json.dumps(read_json()))), ("read", (None, json.dumps(read_json())))])
    assert resp.status_code == 400 and "read" in resp.text, resp.text
    assert stored_reads(dept) == 0


def test_a_json_key_given_twice_is_refused_naming_the_key(dept):
    body = json.dumps(read_json())[:-1] + ', "plate": "OTHER1"}'
    resp = dept.http.post("/api/v1/reads", content=body, headers={**dept.camera_headers,
                                                                   "Content-Type": "application/json"})
    assert resp.status_code == 400 and "plate" in resp.text and "twice" in resp.text, resp.text
    nested = json.dumps(read_json(candidates=[{"plate": "A1", "confidence": 0.5}]))
    nested = nested.replace('"confidence": 0.5', '"confidence": 0.5, "confidence": 0.6')
    resp = dept.http.post("/api/v1/reads", content=nested, headers={**dept.camera_headers,
                                                                     "Content-Type": "application/json"})
    assert resp.status_code == 400 and "confidence" in resp.text, resp.text
    assert stored_reads(dept) == 0


@pytest.mark.parametrize("plate", ["STRAßE1", "ﬁ123", "ABC１２３", "AB£12", "É1"])
def test_a_plate_with_other_than_a_to_z_and_digits_is_refused(dept, plate):
    resp = dept.post_read(plate)
    assert resp.status_code == 400 and "plate" in resp.text, resp.text
    resp = dept.post_read("7ABC123", candidates=[(plate, 0.4)])
    assert resp.status_code == 400 and "candidates" in resp.text, resp.text
    assert stored_reads(dept) == 0


def test_spaces_hyphens_and_dots_are_dropped_and_lower_case_raised(dept):
    assert dept.post_read("7abc-12.3").status_code == 201
    assert dept.post_read("7 ABC\u2013123").status_code == 201  # an en dash
    with sqlite3.connect(dept.settings.db_path) as conn:
        assert {r[0] for r in conn.execute("SELECT plate_norm FROM reads")} == {"7ABC123"}


def test_a_hot_list_line_with_such_a_plate_is_reported(settings, tmp_path, capsys):
    path = tmp_path / "list.csv"
    path.write_text("plate,reason\nGOOD1,ok\nSTRAßE1,x\n", encoding="utf-8")
    assert run_cli(settings, "hotlist", "import", str(path), "--list", "state") == 1
    err = capsys.readouterr().err
    assert "line 3:" in err and "ß" in err and "line 2:" not in err
