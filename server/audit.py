"""The append-only audit log: who did what, when. The table's triggers refuse edits, and every
entry is chained to the one before it by its hash (store/chain.py, audit_chain.py).

The log is kept a year at least (audit_retention_days), so nothing a caller sends is written
whole: every string in a line (the actor too) is cut to MAX_TEXT characters and every list to
MAX_ITEMS, saying how long it was.
"""

from __future__ import annotations

from typing import Any

import msgspec

from server.clock import now_ms
from server.store import queries

MAX_TEXT = 200  # characters of one string kept; a username, a reason or a note fits
MAX_ITEMS = 50  # items of one list kept


def bounded(value: Any) -> Any:
    """`value` with every string, list and mapping inside it cut to size; a cut string keeps its
    first MAX_TEXT characters and says how long it was ("aaaa…(7000000 chars)")."""
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else f"{value[:MAX_TEXT]}…({len(value)} chars)"
    if isinstance(value, dict):
        kept = {bounded(str(key)): bounded(item) for key, item in list(value.items())[:MAX_ITEMS]}
        return kept | ({"…": f"{len(value)} keys"} if len(value) > MAX_ITEMS else {})
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [bounded(item) for item in list(value)[:MAX_ITEMS]]
        return items + ([f"…({len(value)} items)"] if len(value) > MAX_ITEMS else [])
    return value


async def record(conn, actor: str, action: str, **detail: Any) -> int:
    """Append one line inside the caller's transaction, so the audit and the act commit together;
    its id, for a later line to refer to."""
    text = msgspec.json.encode(bounded(detail)).decode()
    return await queries.insert_audit(conn, now_ms(), bounded(actor), action, text)
