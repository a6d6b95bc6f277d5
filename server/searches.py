"""The search service: a justified search of stored reads, audited before any result leaves.
Investigators' searches (web/search.py) and the look-ups made for public records requests
(records_requests.py) both run through it, so both are written to the audit log alike as
`search` lines with their reason, case number, criteria and result count."""

from __future__ import annotations

from server import audit
from server.access import Justification
from server.store import queries_search as qs
from server.store.db import Database

SEARCH = "search"  # the audit action of a search (the dashboard and transparency report count these)


async def run_search(db: Database, actor: str, criteria: qs.Criteria, justification: Justification,
                     logged_criteria: dict, **detail) -> tuple[list, bool, int]:
    """The newest matching reads, whether more matched, and the id of the `search` audit line,
    committed in a transaction of its own before the caller shows anything, even for none."""
    rows, more = await qs.search_reads(db.reader, criteria)
    async with db.transaction() as conn:
        line = await audit.record(
            conn, actor, SEARCH, **justification.logged(), results=len(rows), truncated=more,
            criteria=logged_criteria, **detail)
    return rows, more, line
