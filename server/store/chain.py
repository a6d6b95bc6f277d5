"""The audit chain's encoding: how an audit entry and the hash of the one before it become the
entry's own hash (SHA-256, hex). Like the schema it is part of the stored format: migration 014
built the chain with it, the writer (queries.insert_audit) extends it and `platewatch audit
verify` checks it, so changing it breaks every chain already stored. Frozen: version 1.

The encoding is a compact JSON array, [previous hash, at, actor, action, detail], in ASCII
(other characters as \\uXXXX escapes), with the detail hashed as the exact text stored. The row
id is left out on purpose: the chain itself is the order, so an entry moved to another id is
named as reordered, not as edited.
"""

from __future__ import annotations

import hashlib
import json

GENESIS = "0" * 64  # the hash the first entry of a log follows


def entry_hash(prev_hash: str | None, at: int, actor: str, action: str, detail: str) -> str:
    encoded = json.dumps([prev_hash, at, actor, action, detail], separators=(",", ":"))
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()
