"""What hits turned out to be, by kind of list: of the hits officers checked (an outcome on the
alert: confirmed, not a match, or the entry no longer valid), how many were false, and how many
were never checked. From the alerts as stored (their per-quarter-hour counts, kept by triggers),
for the dashboard and the public transparency report alike.

A hit counts in the period it was raised in, with the outcome it has now: a hit from the last day
of the period that an officer checks tomorrow moves from "never checked" to its outcome.
"""

from __future__ import annotations

import msgspec

from contract.alerts import OPEN_STATUSES, OUTCOME_CHOICES
from server.hotlists import LIST_KINDS
from server.store import queries_accountability as qa

ALL_KINDS = "all"  # the totals row


class HitChecks(msgspec.Struct):
    kind: str  # a hot-list kind, or "all"
    hits: int
    checked: int  # hits an officer recorded an outcome for
    confirmed: int
    not_match: int  # the plate was not the listed one (a misread, a look-alike)
    invalid: int  # the entry no longer stood (already recovered, warrant served)
    never_checked: int  # still new or only acknowledged
    false_hit_rate: float | None  # (not_match + invalid) / checked; None: none checked
    not_match_rate: float | None
    invalid_rate: float | None


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _checks(kind: str, statuses: dict[str, int]) -> HitChecks:
    outcomes = {key: statuses.get(key, 0) for key in OUTCOME_CHOICES}
    checked = sum(outcomes.values())
    never = sum(statuses.get(key, 0) for key in OPEN_STATUSES)
    return HitChecks(
        kind=kind, hits=checked + never, checked=checked, never_checked=never, **outcomes,
        false_hit_rate=_rate(outcomes["not_match"] + outcomes["invalid"], checked),
        not_match_rate=_rate(outcomes["not_match"], checked), invalid_rate=_rate(outcomes["invalid"], checked))


async def false_hits(reader, since: int, until: int) -> list[HitChecks]:
    """One row per list kind with hits raised in [since, until) (local midnights), in the usual
    order of kinds, then the totals row (kind "all")."""
    by_kind: dict[str, dict[str, int]] = {}
    for row in await qa.hits_by_kind_and_status(reader, since, until):
        by_kind.setdefault(row["kind"], {})[row["status"]] = row["n"]
    order = sorted(by_kind, key=lambda kind: (LIST_KINDS.index(kind) if kind in LIST_KINDS else len(LIST_KINDS), kind))
    totals: dict[str, int] = {}
    for statuses in by_kind.values():
        for status, n in statuses.items():
            totals[status] = totals.get(status, 0) + n
    return [_checks(kind, by_kind[kind]) for kind in order] + [_checks(ALL_KINDS, totals)]
