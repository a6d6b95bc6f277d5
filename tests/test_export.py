"""`platewatch export DEST` (issue 21, "Leaving with your data"), with the real CLI against a
served department: every file the manifest names hashes as it says, the images the reads name are
there, every field is described in the README, the audit chain's columns come along and link up,
no secret is anywhere in it, it is audited, and a folder that is not empty is refused."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from server.export import FILES
from server.store.chain import entry_hash
from tests.conftest import run_cli
from tests.test_backup import post_read
from tests.test_records_requests import Resident
from tests.test_web_search import Officer, audit

TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def lines(folder: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (folder / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def department(dept, tmp_path, capsys):
    """Reads with images, a hot list and its alert, an evidence hold, a records request, a user
    with a two-factor secret: something in every file."""
    dept.hotlist(tmp_path, "stolen", "plate,state,reason\nEXP123,CA,stolen (test)\n", "--kind", "stolen_vehicle")
    for plate, shade in (("EXP123", 40), ("OTHER9", 90)):
        post_read(dept.http, dept.camera_headers, plate, shade)
    alice = Officer(dept.live.url)
    assert alice.post("/reads/1/hold", {"case": "24-0042", "note": "kept"}).status_code == 200
    alice.http.close()
    assert Resident(dept.live.url).ask().status_code == 200
    with closing(sqlite3.connect(dept.settings.db_path)) as conn, conn:
        conn.execute("UPDATE users SET totp_secret = ?, totp_enrolled_at = 1 WHERE username = 'alice'", (TOTP_SECRET,))
    capsys.readouterr()
    return dept


def secrets_of(dept) -> list[str]:
    """Everything in the data dir that must never leave it in an export."""
    with closing(sqlite3.connect(dept.settings.db_path)) as conn:
        [(password_hash,)] = conn.execute("SELECT password_hash FROM users WHERE username = 'alice'").fetchall()
        [(token_hash,)] = conn.execute("SELECT token_hash FROM cameras").fetchall()
        [(client_key,)] = conn.execute("SELECT client_key FROM records_requests").fetchall()
    data = dept.settings.data_dir
    vapid = [line for line in (data / "vapid_private.pem").read_text().splitlines() if "-----" not in line]
    return [password_hash, TOTP_SECRET, dept.camera_token, token_hash, client_key,
            (data / "app_secret").read_text().strip(), *vapid]


def test_export_is_complete_checkable_and_holds_no_secret(department, tmp_path, capsys):
    dest = tmp_path / "leaving" / "export"
    assert run_cli(department.settings, "export", str(dest)) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(dest)

    manifest = json.loads((dest / "manifest.json").read_text())
    everything = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert {entry["path"] for entry in manifest["files"]} == everything - {"manifest.json"}
    for entry in manifest["files"]:
        content = (dest / entry["path"]).read_bytes()
        assert (hashlib.sha256(content).hexdigest(), len(content)) == (entry["sha256"], entry["size"]), entry["path"]

    readme = (dest / "README.md").read_text()
    for spec in FILES:
        rows = lines(dest, spec.name)
        assert rows, f"{spec.name}.jsonl is empty"
        assert all(set(row) == set(spec.fields) for row in rows), spec.name
        assert f"## {spec.name}.jsonl" in readme and all(f"| `{field}` |" in readme for field in spec.fields)

    reads = lines(dest, "reads")
    images = {row[field] for row in reads for field in ("plate_image", "vehicle_image")}
    assert len(images) == 4 and all((dest / path).read_bytes() == (department.settings.data_dir / path).read_bytes()
                                    for path in images)
    assert [row["plate"] for row in reads] == ["EXP123", "OTHER9"]
    assert [row["entry_plate"] for row in lines(dest, "alerts")] == ["EXP123"]
    assert [row["case_number"] for row in lines(dest, "holds")] == ["24-0042"]
    assert [row["plate"] for row in lines(dest, "hotlist_entries")] == ["EXP123"]
    assert [row["email"] for row in lines(dest, "records_requests")] == ["dana@example.org"]

    chain = lines(dest, "audit_log")
    for before, entry in zip(chain, chain[1:]):  # the chain's columns come along and still link up
        assert entry["prev_hash"] == before["hash"]
        assert entry["hash"] == entry_hash(entry["prev_hash"], entry["at"], entry["actor"], entry["action"],
                                           entry["detail"])

    written = b"".join((dest / path).read_bytes() for path in everything)
    leaked = [secret for secret in secrets_of(department) if secret.encode() in written]
    assert leaked == []
    [line] = audit(department, "export")
    assert line["actor"] == "cli" and line["folder"] == str(dest.resolve()) and line["images"] == 4
    assert line["rows"]["reads"] == 2


def test_a_folder_that_is_not_empty_is_refused(department, tmp_path):
    dest = tmp_path / "share"
    dest.mkdir()
    (dest / "notes.txt").write_text("someone else's file")
    with pytest.raises(SystemExit) as refused:
        run_cli(department.settings, "export", str(dest))
    assert f"{dest} is not empty" in str(refused.value)
    assert [p.name for p in dest.iterdir()] == ["notes.txt"] and audit(department, "export") == []
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(department.settings, "export", str(empty)) == 0 and (empty / "manifest.json").is_file()
