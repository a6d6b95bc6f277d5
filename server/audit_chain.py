"""The audit chain, checked and vouched for.

Every audit entry carries the hash of the one before it (store/chain.py), so an entry edited,
deleted or moved with raw SQL no longer fits its neighbours. `verify` walks the chain and names
the first entry that does not fit, and what is wrong with it.

Editing the log and recomputing every hash after it would still fit, so once a day the server
writes a checkpoint: an `audit.checkpoint` entry holding the head (the newest entry's hash) and
the number of entries, signed with an Ed25519 key kept in the data dir. The transparency page
publishes the newest one. Whoever saved a head can later check that the chain still passes
through it: nothing written before it can have changed, the department included.

Entries older than audit_retention_days (a year at least) go only by a recorded purge, run with
the daily checkpoint: an `audit.purge` entry names the last entry it removes and that entry's
hash, which the oldest entry kept follows, so the chain verifies from its new start.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import pathlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from server import audit
from server.clock import DAY_MS, now_ms
from server.push import create_key_file
from server.settings import AUDIT_KEY_FILE, Settings
from server.store import queries_admin
from server.store import queries_audit as qa
from server.store.chain import GENESIS, entry_hash
from server.store.db import Database

log = logging.getLogger("platewatch.audit")
CHECKPOINT = "audit.checkpoint"
PURGE = "audit.purge"
PURGE_BATCH = 5000  # the most entries one purge transaction removes (each batch is recorded)
CHUNK = 2000  # entries per query while walking the chain
RETRY_S = 600  # a failed checkpoint is tried again this much later
RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class Break:
    """The first entry that does not fit the chain: its id, what is wrong (edited, deleted,
    reordered, inserted) and how that shows."""
    entry: int
    kind: str
    why: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    entries: int  # entries that fit, from the chain's start
    head: str  # the hash of the last of them (GENESIS: none)
    broken: Break | None = None
    saved_head_at: int | None = None  # the entry whose hash is the saved head asked about, if it fits


async def verify(conn, saved_head: str | None = None) -> ChainReport:
    """Walks the whole chain in id order on `conn` (a reader no one else is using: the walk is
    one read transaction), noting where it passes through `saved_head`, a head published before."""
    previous, count, after, saved_at = None, 0, 0, None
    async with qa.read_snapshot(conn):
        expected = await _chain_start(conn)
        while rows := await qa.chain_rows(conn, after, CHUNK):
            for row in rows:
                broken = (_entry_problem(row) or await _link_problem(conn, row, expected, previous)
                          or _checkpoint_problem(row))
                if broken:
                    return ChainReport(count, expected, broken, saved_at)
                expected, previous, count = row["hash"], row["id"], count + 1
                saved_at = row["id"] if row["hash"] == saved_head else saved_at
            after = rows[-1]["id"]
    return ChainReport(count, expected, None, saved_at)


async def _chain_start(conn) -> str:
    """The hash the oldest entry follows: GENESIS, or after a purge the hash of the last entry
    the newest purge removed."""
    purge = await qa.latest_entry(conn, PURGE)
    follows = _detail(purge).get("follows") if purge else None
    return follows if isinstance(follows, str) else GENESIS


def _entry_problem(row) -> Break | None:
    """What is wrong with the entry itself: no hash, or content its hash does not match."""
    if row["hash"] is None:
        return Break(row["id"], "inserted", "it has no hash: it was written around Platewatch, not by it")
    if entry_hash(row["prev_hash"], row["at"], row["actor"], row["action"], row["detail"]) != row["hash"]:
        return Break(row["id"], "edited", "its content no longer matches its hash")
    return None


def _checkpoint_problem(row) -> Break | None:
    """A checkpoint must name the head it was written after, under its signature (a chain
    rewritten from before it, hashes and all, would otherwise keep checkpoints that vouch for it)."""
    if row["action"] != CHECKPOINT:
        return None
    detail = _detail(row)
    if detail.get("head") != row["prev_hash"]:
        return Break(row["id"], "edited", "this checkpoint names a head other than the entry before it")
    point = _checkpoint_of(detail)
    if point is None or not signature_holds(point.public_key, point.signature, point.signed_text):
        return Break(row["id"], "edited", "this checkpoint's signature does not match what it says")
    return None


async def _link_problem(conn, row, expected: str, previous: int | None) -> Break | None:
    """What is wrong with where the entry stands: it must follow the entry before it."""
    if row["prev_hash"] == expected:
        return None
    follows = await qa.entry_with_hash(conn, row["prev_hash"])
    if follows is not None:
        return Break(row["id"], "reordered", f"it was written right after entry #{follows}, which "
                                             f"now stands {'after it' if follows > row['id'] else 'further back'}")
    if previous is None:
        return Break(row["id"], "deleted", "the entries before it are missing: the log no longer starts "
                                           "where its chain does")
    if row["id"] > previous + 1:
        gone = f"#{previous + 1}" + (f" to #{row['id'] - 1}" if row["id"] - 1 > previous + 1 else "")
        return Break(row["id"], "deleted", f"the entry it was written after is missing ({gone})")
    return Break(previous, "edited", f"its hash was recomputed, but entry #{row['id']} was written after "
                                     "a different entry")


def _detail(row) -> dict:
    try:
        detail = json.loads(row["detail"])
    except (ValueError, TypeError):
        return {}
    return detail if isinstance(detail, dict) else {}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def signed_text(at: int, entries: int, head: str) -> str:
    """What a checkpoint signs (UTF-8): the time (epoch ms), the entry count and the head."""
    return f"platewatch audit chain: at={at} entries={entries} head={head}"


class AuditSigner:
    """The Ed25519 key that signs checkpoints, in the data dir (made on first start). Its public
    half is published: keep the file with the database's backups, and never replace it, or
    heads signed before can no longer be told from forgeries."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self.key = key
        self.public_key = b64(key.public_key().public_bytes(*RAW))

    @classmethod
    def load_or_create(cls, data_dir: pathlib.Path) -> AuditSigner:
        path = pathlib.Path(data_dir) / AUDIT_KEY_FILE
        if not path.exists():
            create_key_file(path, Ed25519PrivateKey.generate())
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return cls(key)

    def sign(self, text: str) -> str:
        return b64(self.key.sign(text.encode()))


def signature_holds(public_key: str, signature: str, text: str) -> bool:
    """Whether `signature` (base64) is the key's over `text`: what anyone can check."""
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key))
        key.verify(base64.b64decode(signature), text.encode())
    except (InvalidSignature, ValueError, TypeError):  # a wrong signature, a malformed key or base64
        return False
    return True


@dataclass(frozen=True, slots=True)
class Checkpoint:
    at: int  # epoch ms
    entries: int  # entries in the log before the checkpoint entry
    head: str  # the hash of the newest of them
    signature: str  # base64, over signed_text(at, entries, head)
    public_key: str  # base64, raw 32 bytes

    @property
    def signed_text(self) -> str:
        return signed_text(self.at, self.entries, self.head)


async def checkpoint(db: Database, signer: AuditSigner, now: int | None = None) -> Checkpoint:
    """Signs the chain's head and writes it as an entry, in one transaction."""
    now = now_ms() if now is None else now
    async with db.transaction() as conn:
        entries, head = await qa.chain_head(conn)
        head = head or GENESIS
        point = Checkpoint(now, entries, head, signer.sign(signed_text(now, entries, head)), signer.public_key)
        await audit.record(conn, "system", CHECKPOINT, at=now, entries=entries, head=head,
                           signature=point.signature, public_key=point.public_key)
    return point


async def latest_checkpoint(conn) -> Checkpoint | None:
    row = await qa.latest_entry(conn, CHECKPOINT)
    return None if row is None else _checkpoint_of(_detail(row))


def _checkpoint_of(detail: dict) -> Checkpoint | None:
    try:
        return Checkpoint(int(detail["at"]), int(detail["entries"]), str(detail["head"]), str(detail["signature"]),
                          str(detail["public_key"]))
    except (KeyError, TypeError, ValueError):
        return None  # not one this code wrote: verify names it


async def purge_old_entries(db: Database, settings: Settings, now: int | None = None) -> int:
    """Removes entries older than audit_retention_days from the start of the log, in batches;
    each batch first records an `audit.purge` entry naming the last entry it removes (`through`,
    which the delete trigger checks) and that entry's hash (`follows`). It stops at the first
    entry young enough to keep, so the log stays one unbroken run. How many went."""
    now = now_ms() if now is None else now
    cutoff = now - int(settings.audit_retention_days * DAY_MS)
    removed = 0
    while True:
        async with db.transaction() as conn:
            rows = await qa.oldest_entries(conn, PURGE_BATCH)
            old = list(itertools.takewhile(lambda row: row["at"] < cutoff, rows))
            if not old:
                return removed
            last = old[-1]
            await audit.record(conn, "system", PURGE, through=last["id"], follows=last["hash"], entries=len(old),
                               cutoff=cutoff, audit_retention_days=settings.audit_retention_days)
            await qa.delete_entries_through(conn, last["id"])
        removed += len(old)
        if len(old) < PURGE_BATCH:
            return removed


async def checkpoint_forever(db: Database, signer: AuditSigner, settings: Settings) -> None:
    """A checkpoint a day, after purging entries past audit_retention_days: at start if the
    last is a day old (or there is none), then a day after the last."""
    while True:
        wait_s: float = RETRY_S
        try:
            last = await queries_admin.last_action_time(db.reader, CHECKPOINT)
            now = now_ms()
            if last is None or now - last >= DAY_MS:
                await purge_old_entries(db, settings, now)
                last = (await checkpoint(db, signer, now)).at
            wait_s = min(max((last + DAY_MS - now) / 1000, 60), DAY_MS / 1000)
        except Exception:
            log.exception("audit checkpoint failed; trying again in %s s", RETRY_S)
        await asyncio.sleep(wait_s)
