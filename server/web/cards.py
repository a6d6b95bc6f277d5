"""Read cards as search results, plate histories and camera lists show them: the read, its camera,
how it matched what was asked, its colour swatch and its active evidence hold. Shared by page
modules; no handlers of its own."""

from __future__ import annotations

from fnmatch import fnmatchcase

from contract.plates import PALETTE, fold
from server.clock import from_ms
from server.store import queries_holds as qh
from server.store.db import Database

MATCH_LABELS = {"exact": "exact", "lookalike": "look-alike characters", "edit": "one character off"}


def match_kind(row, pattern: str) -> str:
    """How a result relates to what was asked: exact, look-alike characters, one character off."""
    if not pattern or fnmatchcase(row["plate_norm"], pattern):  # without wildcards: equality
        return "exact"
    return "lookalike" if fnmatchcase(row["plate_folded"], fold(pattern)) else "edit"


def read_view(row, cameras: dict, match: str = "exact") -> dict:
    camera = cameras.get(row["camera_id"])
    return {**dict(row), "seen_at": from_ms(row["captured_at"]), "match": match, "match_label": MATCH_LABELS[match],
            "camera": camera["name"] if camera else "?", "location": camera["location"] if camera else "",
            "swatch": row["color"] if row["color"] in PALETTE else None}


async def with_holds(db: Database, views: list[dict]) -> list[dict]:
    """Cards with their read's active evidence hold (or None): a held read's card says who keeps it
    for which case; the others offer to keep it (web/holds.py)."""
    holds = await qh.active_holds_for_reads(db.reader, [view["id"] for view in views])
    return [{**view, "hold": holds.get(view["id"])} for view in views]
