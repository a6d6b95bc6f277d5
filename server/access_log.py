"""The access log a records officer or an auditor asks for: every search of stored reads and every
look-up, from the audit log, with the fields California Civil Code 1798.90.52 requires of an ALPR
operator's usage record: the date and time, the username, the organisation, the purpose (reason,
case number and any note) and the query terms. Searches refused for a prohibited purpose are in it,
marked as refused and naming the phrase. `platewatch report access-log` writes it as CSV or text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date

import msgspec

from server.clock import midnight, shown
from server.settings import Settings
from server.store import queries_accountability as qa

CHUNK = 1000
WHAT = {
    "search": "search", "search.more": "search (further page)", "plate.history": "plate history",
    "plate.history.more": "plate history (further page)", "reads.view": "camera's latest reads",
    "search.refused": "refused",
}
TERM_ORDER = ("plate", "fuzzy", "camera", "colour", "from", "to", "since", "until")  # others follow, sorted
FIELDS = ("date_time", "username", "organisation", "what", "refused", "prohibited_purpose", "reason", "case_number",
          "note", "query_terms", "results", "audit_entry")


@dataclass(frozen=True, slots=True)
class AccessEntry:
    date_time: str  # the department's local time, ISO 8601 with its offset
    username: str
    organisation: str
    what: str  # which kind of access (WHAT), or what a refused search asked for
    refused: bool
    prohibited_purpose: str  # the phrase that refused it; "" when not refused
    reason: str
    case_number: str
    note: str
    query_terms: str  # name=value pairs, space-separated
    results: int | None  # reads shown; None when refused (or not recorded)
    audit_entry: int  # the audit line's id: where an auditor finds the whole line

    def row(self) -> list[str]:
        values = [getattr(self, name) for name in FIELDS]
        return ["yes" if v is True else "no" if v is False else "" if v is None else str(v) for v in values]


def query_terms(terms: dict) -> str:
    """Search criteria as `name=value` pairs, the usual ones first; empty and false ones left out."""
    names = [n for n in TERM_ORDER if n in terms] + sorted(set(terms) - set(TERM_ORDER))
    return " ".join(f"{name}={terms[name]}" for name in names if terms[name] not in (None, "", False))


def _terms(action: str, detail: dict) -> dict:
    if action == "search.refused":
        return detail.get("terms") or {}
    if action.startswith("search"):
        return detail.get("criteria") or {}
    if action == "reads.view":
        return {"camera": detail.get("camera")}
    return {"plate": detail.get("plate")}


def entry(row, settings: Settings) -> AccessEntry:
    action, detail = row["action"], msgspec.json.decode(row["detail"])
    refused = action == "search.refused"
    return AccessEntry(
        date_time=shown(row["at"], settings.zone, "iso"), username=row["actor"],
        organisation=settings.department_name,
        what=WHAT.get(str(detail.get("asked")), "search") if refused else WHAT[action],
        refused=refused, prohibited_purpose=str(detail.get("prohibited", "")) if refused else "",
        reason=str(detail.get("reason", "")), case_number=str(detail.get("case", "")), note=str(detail.get("note", "")),
        query_terms=query_terms(_terms(action, detail)), results=detail.get("results"), audit_entry=row["id"])


def period(first: date, last: date, settings: Settings) -> tuple[int, int]:
    """Local days `first` to `last`, both included, as [since, until) epoch ms."""
    if last < first:
        raise ValueError(f"the period ends ({last}) before it starts ({first})")
    return midnight(first, settings.zone), midnight(date.fromordinal(last.toordinal() + 1), settings.zone)


async def entries(reader, settings: Settings, first: date, last: date) -> AsyncIterator[AccessEntry]:
    """Every access in the period, oldest first, read a chunk at a time."""
    since, until = period(first, last, settings)
    after = 0
    while True:
        rows = await qa.access_lines(reader, since, until, after, CHUNK)
        for row in rows:
            yield entry(row, settings)
        if len(rows) < CHUNK:
            return
        after = rows[-1]["id"]
