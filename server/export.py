"""`platewatch export DEST`: the department's data in open formats, for a department that leaves
or an outside auditor.

One JSON Lines file per kind of record (one JSON object a line, UTF-8), the images the reads name
(DEST/images/, the same relative paths the reads give), a README.md describing every file and
field, and manifest.json with each file's SHA-256 and size. Every table is read in one read
transaction (store/export_rows.py), so the files agree with each other even while the server
writes. Columns are exported by name from the lists below, never `SELECT *`: a secret (a password
hash, a two-factor secret, a camera token's hash, the key that counts an asker's requests) stays
out, and so does any column added later until it is described here. The keys in the data dir
(push, CSRF, audit signing) are not copied. The export is audited (`export`) once written; that
line is not in the export (it is written after the snapshot).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from server import audit
from server.backup import copy_images
from server.settings import Settings
from server.store.db import Database
from server.store.export_rows import one_moment
from server.store.migrations import migrate

MS = "epoch milliseconds, UTC"


@dataclass(frozen=True, slots=True)
class Exported:
    """One file: the table (or view) it comes from, each field with its description, and the
    fields stored as JSON text that are written as JSON values."""
    name: str
    table: str
    about: str
    fields: dict[str, str]
    json_fields: tuple[str, ...] = ()


FILES = (
    Exported("reads", "reads", "Every plate read stored (reads older than the retention period are deleted, "
             "unless an evidence hold keeps them).", {
                 "id": "the read's number", "uuid": "the id the camera's worker chose (a resend is stored once)",
                 "camera_id": "cameras.jsonl id", "captured_at": f"when the camera saw it ({MS})",
                 "received_at": f"when the server stored it ({MS})", "plate": "the plate as read",
                 "plate_norm": "the plate as A–Z0–9", "plate_folded": "the plate with look-alike characters folded "
                 "(0/O/D/Q, 1/I/L, 2/Z, 5/S, 6/G, 8/B) as matching compares it",
                 "confidence": "how sure the reader was (0–1)", "candidates": "the reader's other readings: "
                 "[{plate, confidence}]", "color": "the vehicle's colour, or null",
                 "color_confidence": "how sure the colour is (0–1), or null",
                 "box": "where the plate was in the picture ([x, y, w, h] pixels), or null",
                 "plate_image": "the plate picture's path in this export, or null",
                 "vehicle_image": "the vehicle picture's path in this export, or null",
                 "revision": "how many times the camera corrected the read while the vehicle was in view"},
             ("candidates", "box")),
    Exported("alerts", "alerts", "Hot-list hits: a read that matched a hot-list entry, with a copy of that entry "
             "as it was, and what officers made of it.", {
                 "id": "the alert's number", "read_id": "reads.jsonl id", "camera_id": "cameras.jsonl id",
                 "entry_id": "hotlist_entries.jsonl id (null once the entry was replaced)",
                 "hotlist_id": "hotlists.jsonl id (null once the list was removed)", "hotlist_name": "the list",
                 "hotlist_kind": "the kind of list", "entry_plate": "the entry's plate as listed",
                 "entry_plate_norm": "the entry's plate as A–Z0–9", "entry_state": "the entry's state",
                 "entry_reason": "the entry's reason", "priority": "the entry's priority (0–100), or null",
                 "rule": "which matching rule fired", "compared": "what was compared",
                 "detail": "the match explained", "retro": "1: raised when a list gained a plate read before",
                 "status": "new, acknowledged, confirmed, not_match or invalid (entry no longer valid)",
                 "created_at": f"raised ({MS})", "seen_at": f"the read's time ({MS})",
                 "notified_at": f"pushed to phones ({MS}), or null", "acknowledged_at": f"{MS}, or null",
                 "acknowledged_by": "username, or null", "resolved_at": f"{MS}, or null",
                 "resolved_by": "username, or null", "note": "the officer's note"}),
    Exported("hotlists", "hotlists", "Hot lists.", {
        "id": "the list's number", "name": "its name", "kind": "stolen_vehicle, stolen_plate, wanted_person, "
        "amber, silver, missing_person or custom", "source": "where it was imported from",
        "created_at": MS, "refreshed_at": f"last import ({MS}), or null",
        "default_priority": "the priority of entries without one (0–100)",
        "import_format": "the options of its last import (JSON), or empty"}, ("import_format",)),
    Exported("hotlist_entries", "live_entries", "The entries of each hot list as matching uses them now.", {
        "id": "the entry's number", "hotlist_id": "hotlists.jsonl id", "plate": "the plate as listed",
        "plate_norm": "as A–Z0–9", "state": "the issuing state", "plate_type": "NCIC plate type (LIT)",
        "reason": "why it is listed", "priority": "0–100, or null (the list's default)",
        "record": "NCIC or record number", "note": "note", "expires_at": f"{MS}, or null (no expiry)",
        "added_by": "who imported it", "added_at": MS}),
    Exported("holds", "holds", "Evidence holds: reads kept past the retention period for a case.", {
        "id": "the hold's number", "read_id": "reads.jsonl id", "case_number": "the case",
        "note": "note", "placed_by": "username", "placed_at": MS, "released_by": "username, or null (active)",
        "released_at": f"{MS}, or null (active)"}),
    Exported("users", "users", "People with access. No password hashes, two-factor secrets or other secrets.", {
        "id": "the user's number", "username": "their name", "role": "officer, supervisor or admin",
        "disabled": "1: may not sign in", "created_at": MS,
        "totp_enrolled_at": f"when two-factor sign-in was set up ({MS}), or null",
        "must_change_password": "1: an admin set the password and the user must change it",
        "on_duty_until": f"the end of the current shift ({MS}), or null (off duty)"}),
    Exported("cameras", "cameras", "Cameras. No tokens or token hashes.", {
        "id": "the camera's number", "name": "its name", "location": "where it is",
        "created_at": MS, "last_seen_at": f"its worker's last contact ({MS}), or null",
        "last_read_at": f"its last read ({MS}), or null", "disabled": "1: out of service"}),
    Exported("search_reasons", "search_reasons", "The department's list of reasons a search may be run for "
             "(audit lines name them by id as reason_id).", {
                 "id": "the reason's number", "label": "its wording", "created_at": MS, "created_by": "username",
                 "retired_at": f"{MS}, or null (in use)", "retired_by": "username, or null"}),
    Exported("audit_log", "audit_log", "The audit log, with its hash chain: each entry's hash is SHA-256 over "
             "the previous entry's hash and this entry (server/store/chain.py), so `platewatch audit verify` "
             "and anyone with the same rule can check it.", {
                 "id": "the entry's number", "at": MS, "actor": "username, or cli / system / public",
                 "action": "what was done (search, plate.history, request.received, …)",
                 "detail": "the entry's detail: JSON text exactly as hashed (decode it to read it)",
                 "prev_hash": "the previous entry's hash (hex)", "hash": "this entry's hash (hex)"}),
    Exported("records_requests", "records_requests", "Public records requests from residents (kept as records).", {
        "id": "the request's number (request number R-00042 is id 42)", "received_at": MS,
        "plate": "the plate asked about (A–Z0–9); it is not a read", "name": "the asker's name",
        "email": "their email, or empty", "postal_address": "their postal address, or empty",
        "message": "their message", "answer": "the department's answer, or null (open)",
        "answered_at": f"{MS}, or null (open)", "answered_by": "username, or null"}),
)


class ExportError(Exception):
    """What is wrong, worded for the admin."""


@dataclass(frozen=True, slots=True)
class ExportResult:
    dest: Path
    rows: dict[str, int]
    images: int
    missing_images: int  # named by a read but gone by the time they were copied (purged meanwhile)


def _check_dest(settings: Settings, dest: Path) -> None:
    if not settings.db_path.is_file():
        raise ExportError(f"no database in the data dir {settings.data_dir} (expected {settings.db_path}); "
                          "is --data right?")
    if dest.exists() and not dest.is_dir():
        raise ExportError(f"{dest} is not a folder")
    if dest.exists() and any(dest.iterdir()):
        raise ExportError(f"{dest} is not empty: export writes into an empty or new folder, so nothing in it "
                          "can be mistaken for the department's data")


def _row(fields: tuple[str, ...], values: tuple, json_fields: tuple[str, ...]) -> dict:
    row = dict(zip(fields, values))
    for name in json_fields:
        if isinstance(row[name], str) and row[name]:
            try:
                row[name] = json.loads(row[name])
            except ValueError:
                pass  # kept as the text stored
    return row


def _write_tables(settings: Settings, dest: Path) -> tuple[dict[str, int], set[str]]:
    """Every file, from one snapshot: rows per file, and the image paths the reads name."""
    counts, images = {}, set()
    with one_moment(settings.db_path) as rows:
        for spec in FILES:
            fields, n = tuple(spec.fields), 0
            with open(dest / f"{spec.name}.jsonl", "w", encoding="utf-8") as out:
                for values in rows(spec.table, fields):
                    row = _row(fields, values, spec.json_fields)
                    out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
                    n += 1
                    if spec.name == "reads":
                        images.update(path for path in (row["plate_image"], row["vehicle_image"]) if path)
            counts[spec.name] = n
    return counts, images


def readme(at: datetime, counts: dict[str, int]) -> str:
    lines = ["# Platewatch export", "", f"Written {at.isoformat(timespec='seconds')} by `platewatch export`. "
             "Every file was read from one consistent moment of the database.", "",
             "Files: JSON Lines (one JSON object a line, UTF-8). Times are epoch milliseconds, UTC. "
             "`images/` holds the pictures the reads name, at the paths they give. `manifest.json` gives each "
             "file's SHA-256 and size in bytes: recompute them to check the copy.", ""]
    for spec in FILES:
        lines += [f"## {spec.name}.jsonl ({counts[spec.name]} lines)", "", spec.about, "", "| Field | Meaning |",
                  "|---|---|", *(f"| `{name}` | {about} |" for name, about in spec.fields.items()), ""]
    return "\n".join(lines)


def manifest(dest: Path, at: datetime) -> dict:
    files = []
    for path in sorted(p for p in dest.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        files.append({"path": path.relative_to(dest).as_posix(), "sha256": digest.hexdigest(),
                      "size": path.stat().st_size})
    return {"written_at": at.isoformat(timespec="seconds"), "algorithm": "SHA-256", "files": files}


def export(settings: Settings, dest: Path) -> ExportResult:
    """Write the export into DEST (made if missing; refused unless empty) and audit it. On failure
    nothing of it is left: ExportError, or the error itself."""
    _check_dest(settings, dest)
    made = not dest.exists()
    migrate(settings.db_path)  # the columns named above exist (a no-op on a served database)
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds personal data: the folder is the owner's
    try:
        at = datetime.now(UTC)
        counts, images = _write_tables(settings, dest)
        copied, missing = copy_images(settings.data_dir, dest, images)
        (dest / "README.md").write_text(readme(at, counts), encoding="utf-8")
        (dest / "manifest.json").write_text(json.dumps(manifest(dest, at), indent=1) + "\n", encoding="utf-8")
    except BaseException:
        _remove(dest, made)
        raise
    result = ExportResult(dest, counts, copied, missing)
    asyncio.run(_record(settings, result))
    return result


def _remove(dest: Path, made: bool) -> None:
    if made:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for entry in dest.iterdir():  # DEST was empty: all of it is ours
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


async def _record(settings: Settings, result: ExportResult) -> None:
    async with Database(settings.db_path) as db, db.transaction() as conn:
        await audit.record(conn, "cli", "export", folder=str(result.dest.resolve()), rows=result.rows,
                           images=result.images, missing_images=result.missing_images)
