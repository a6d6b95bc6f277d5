"""The append-only audit log: who did what, when. The table's triggers refuse edits."""

from __future__ import annotations

from typing import Any

import msgspec

from server import queries
from server.clock import now_ms


async def record(conn, actor: str, action: str, **detail: Any) -> int:
    """Append one line inside the caller's transaction, so the audit and the act commit together;
    its id, for a later line to refer to."""
    return await queries.insert_audit(conn, now_ms(), actor, action, msgspec.json.encode(detail).decode())
