"""The public transparency report: the department's ALPR policy, proved with live figures.

Anyone may read it, signed in or not: `GET /transparency` (a page, readable without JavaScript)
and `GET /transparency.json` (the same figures). It holds counts and policy only, never a
plate, a username, a case number, a camera's name or token, a note or an audit line's detail;
hot lists are counted by kind, not named (a list's name can reveal an investigation). The policy
facts come from settings and code, not from text someone types, so the page cannot drift from
what the software does. What the purge deleted each day (server/deletions.py) and what hits turned
out to be by kind of list (server/false_hits.py) come from stored records, as the dashboard's do.
It is the same for every viewer (no nav, no CSRF cookie), so a shared
cache may keep it for five minutes. `transparency_public = false` answers 404 on both paths.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from litestar import get
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.response import Template

from server import audit_chain, deletions, purposes, records_requests
from server.clock import DAY_MS, day_starts, local, now_ms
from server.deletions import Deletions
from server.false_hits import HitChecks, false_hits
from server.figures import (
    DAYS, KIND_NAMES, NO_REASON, OTHER_REASONS, OUTCOMES, bar_chart, charts, dashboard_numbers, summaries,
)
from server.hotlists import LIST_KINDS
from server.settings import ROLES, Settings
from server.store import queries_admin
from server.store import queries_holds as qh
from server.store import queries_search as qs
from server.store.db import Database

UNLISTED = "Not on the department's list"
# Public, cacheable, and the same for everyone: handlers skip the CSRF cookie (a shared cache
# must never hand one visitor's cookie to another) and render no signed-in nav.
PUBLIC = {"exclude_from_csrf": True, "cache_control": CacheControlHeader(public=True, max_age=300)}

# What a read holds: every field a camera posts (schemas.ReadIn), the images beside it, and the
# camera the server knows it by. A test fails when a read gains a field not described here.
COLLECTED = (
    ("The plate's text as read, the reader's other candidate readings, and how sure it was",
     ("plate", "candidates", "confidence")),
    ("The date and time", ("captured_at",)),
    ("Which camera read it", ("camera",)),
    ("The vehicle's color", ("color", "color_confidence")),
    ("Where the plate was in the camera's picture", ("box",)),
    ("A picture cropped to the plate", ("plate_image",)),
    ("A picture cropped to the rear of the vehicle (bumper, trunk lid and lights): it stops below the "
     "rear window, so occupants and bystanders stay out of it", ("vehicle_image",)),
    ("A random number the camera gives the read, so a read sent twice is stored once", ("id",)),
    ("How many times the camera corrected the read while the vehicle was still in view (a later, "
     "better reading replaces the first; no second record is kept)", ("revision",)),
)
NOT_COLLECTED = (
    "No faces or people: images are cropped to the plate and the vehicle, never the whole scene.",
    "No facial recognition: the software reads plates and a vehicle's color, nothing else.",
    "No owner details: Platewatch does not look up who a vehicle belongs to.",
)
SHARING = (
    "None. Reads, pictures and searches stay on the department's own equipment; no other agency or "
    "company can search them.",
    "The one thing that leaves it: when a plate matches a hot list, an alert goes as a web-push "
    "notification to the phones and computers of the department's own officers who turned alerts on. "
    "It passes through the push service of the officer's browser (Google's, Apple's or Mozilla's), "
    "encrypted end to end so that service cannot read it.",
)
SEARCH_RULES = (
    "Every search of stored reads and every look-up of a plate's history needs a reason from the "
    "department's list and a case number, and is written to the audit log, which the database keeps "
    "append-only: it refuses edits and deletions.",
    f"Officers may also look at a camera's latest {qs.RECENT_LIMIT} reads without a case number; each "
    "look is written to the audit log too.",
)
EVIDENCE_HOLDS = (
    "A read is kept past the retention period only under an evidence hold naming a case: an officer places "
    "it and a supervisor releases it, both by name, and each is written to the audit log. Once released, "
    "the read is deleted with its pictures at the next purge past the retention period.",
)
AUDIT_CHAIN = (
    "Every entry in the audit log carries a fingerprint (a SHA-256 hash) of the entry before it, so the "
    "entries form a chain: changing, removing or reordering any entry breaks it, and the check the software "
    "runs (platewatch audit verify) names the first entry that no longer fits.",
    "Once a day the server signs the chain's latest fingerprint (its head) and the number of entries with a "
    "key of its own, and publishes them below with the public half of that key, which anyone can use to "
    "check the signature.",
    "Anyone who saves a signed head (a council member, a reporter, an auditor) can later have the check run "
    "against it, by the department or by an outside auditor given a copy of the database (platewatch audit "
    "verify --head): if the chain still passes through that head, no entry written before it has been changed, "
    "removed or reordered since, by anyone, the department included. Entries written after a head are "
    "covered by the next one: save one from time to time.",
)


class DayReads(msgspec.Struct):
    day: str  # the department's local date, YYYY-MM-DD
    reads: int


class HotlistKind(msgspec.Struct):
    kind: str
    lists: int
    active_entries: int  # not expired


class HitKind(msgspec.Struct):
    kind: str
    hits: int


class HitOutcomes(msgspec.Struct):
    confirmed: int
    not_match: int
    invalid: int  # the hot-list entry was no longer valid
    open: int  # not yet confirmed or dismissed by an officer


class ReasonCount(msgspec.Struct):
    reason: str
    searches: int


class RoleCount(msgspec.Struct):
    role: str
    people: int


class Retention(msgspec.Struct):
    days: float
    purge_every_hours: float
    last_purge_at: datetime | None
    oldest_read_age_days: float | None  # of the reads no evidence hold keeps; None: none stored
    held_past_retention: int  # reads older than the retention period, kept by an evidence hold
    oldest_hold_age_days: float | None  # how long the oldest active hold has stood; None: no holds


class AuditHead(msgspec.Struct):
    """The audit chain's head as a daily checkpoint signed it (server/audit_chain.py)."""
    checkpoint_at: datetime
    entries: int  # entries in the log before the checkpoint
    head: str  # SHA-256 (hex) of the newest of them
    signed_text: str  # exactly what was signed (UTF-8): the time (epoch ms), `entries` and `head`
    signature: str  # Ed25519, base64
    public_key: str  # Ed25519, raw 32 bytes, base64
    algorithm: str = "Ed25519"


RECORDS_REQUESTS = (
    "Anyone may ask what the department holds about a plate, without an account, at /request. Nothing is "
    "shown automatically: the asker gets a request number, and a supervisor answers at the contact address "
    "given.",
    f"The supervisor's look-up of the plate is a search like any other, for the reason “{records_requests.PUBLIC_RECORDS}” "
    "with the request number as its case number, and is written to the audit log.",
    "Requests and their answers are public records and are kept; the plate a request names is not stored as a read.",
)


class RecordsRequests(msgspec.Struct):
    """Public records requests in the report's period (server/records_requests.py)."""
    received: int
    answered: int
    median_days_to_answer: float | None  # of the requests answered in the period; None: none answered
    how_to_ask: list[str]


class Policy(msgspec.Struct):
    collected: list[str]
    not_collected: list[str]
    data_sharing: list[str]
    search_rules: list[str]
    evidence_holds: list[str]
    search_reasons: list[str]  # the department's list, as officers choose from it today
    two_factor_sign_in_required_for: list[str]
    audit_log: list[str]  # what the audit chain and its signed heads prove
    prohibited_purposes: list[str] = []  # no search may be run for these (server/purposes.py)


class TransparencyReport(msgspec.Struct):
    """Counts for the last `days` local days of `time_zone` (today included), and the policy."""

    generated_at: datetime
    time_zone: str
    days: int
    first_day: str
    last_day: str
    cameras_in_service: int
    reads_total: int
    reads_per_day: list[DayReads]
    hotlists_by_kind: list[HotlistKind]
    hits_total: int
    hits_by_kind: list[HitKind]
    hit_outcomes: HitOutcomes
    searches_total: int
    searches_by_reason: list[ReasonCount]
    people_with_access: list[RoleCount]
    retention: Retention
    policy: Policy
    audit_chain: AuditHead | None  # the newest signed head; None until the server has signed one
    records_requests: RecordsRequests
    # What each day's purges recorded (server/deletions.py), and the hits by kind as officers
    # checked them (server/false_hits.py): both over the same `days` local days.
    deletions: Deletions | None = None
    false_hits: list[HitChecks] = []


def audit_head(point: audit_chain.Checkpoint | None, zone) -> AuditHead | None:
    if point is None:
        return None
    return AuditHead(checkpoint_at=local(point.at, zone), entries=point.entries, head=point.head,
                     signed_text=point.signed_text, signature=point.signature, public_key=point.public_key)


def public_reasons(reasons: list[tuple[str, int]], labels: set[str]) -> list[tuple[str, int]]:
    """The dashboard's searches by reason, with any reason that is not a label of the department's
    list (current or retired) counted under one name: audit lines are not typed for the public."""
    merged: dict[str, int] = {}
    for reason, n in reasons:
        fixed = (NO_REASON, OTHER_REASONS, records_requests.PUBLIC_RECORDS)  # named by the software, not typed
        label = reason if reason in labels or reason in fixed else UNLISTED
        merged[label] = merged.get(label, 0) + n
    return sorted(merged.items(), key=lambda item: -item[1])


async def _hotlists_by_kind(reader, now: int) -> list[HotlistKind]:
    totals: dict[str, list[int]] = {}
    for row in await queries_admin.hotlists_overview(reader, now):
        counts = totals.setdefault(row["kind"], [0, 0])
        counts[0] += 1
        counts[1] += row["active"]
    return [HotlistKind(kind, *totals[kind]) for kind in LIST_KINDS if kind in totals]


async def _retention(reader, settings: Settings, now: int) -> Retention:
    last_purge = await queries_admin.last_action_time(reader, "retention.purge")
    oldest = await qh.oldest_unheld_read_time(reader)
    oldest_hold = await qh.oldest_active_hold(reader)
    return Retention(
        days=settings.retention_days, purge_every_hours=round(settings.purge_interval_s / 3600, 2),
        last_purge_at=local(last_purge, settings.zone) if last_purge is not None else None,
        oldest_read_age_days=round((now - oldest) / DAY_MS, 2) if oldest is not None else None,
        held_past_retention=await qh.held_past(reader, settings.retention_cutoff(now)),
        oldest_hold_age_days=round((now - oldest_hold) / DAY_MS, 2) if oldest_hold is not None else None)


async def _records_requests(reader, settings: Settings, now: int) -> RecordsRequests:
    bounds = day_starts(now, settings.zone, DAYS)  # the report's local days, as dashboard_numbers counts them
    counted = await records_requests.figures(reader, bounds[0], bounds[-1])
    return RecordsRequests(counted.received, counted.answered, counted.median_days_to_answer, list(RECORDS_REQUESTS))


def _audit_kept(days: float) -> str:
    return (f"The audit log is kept for {days:g} days, whatever happens to reads. Older entries are removed "
            "only by a purge that is itself written to the log, naming the last entry it removed, so the "
            "chain can still be checked from where the purge left it.")


async def _policy(reader, settings: Settings) -> tuple[Policy, set[str]]:
    """The policy, and every label the reason list has ever had (for public_reasons)."""
    reasons = await qs.search_reasons(reader, include_retired=True)
    policy = Policy(
        collected=[text for text, _ in COLLECTED], not_collected=list(NOT_COLLECTED), data_sharing=list(SHARING),
        search_rules=list(SEARCH_RULES), evidence_holds=list(EVIDENCE_HOLDS),
        search_reasons=[r["label"] for r in reasons if r["retired_at"] is None],
        two_factor_sign_in_required_for=[role for role in ROLES if role in settings.mfa_required_roles],
        audit_log=[*AUDIT_CHAIN, _audit_kept(settings.audit_retention_days)],
        prohibited_purposes=await purposes.phrases(reader))
    return policy, {r["label"] for r in reasons}


async def transparency_report(reader, settings: Settings, now: int) -> tuple[TransparencyReport, dict]:
    """The report, and the dashboard's numbers it came from (with reasons made public) for the charts."""
    numbers = await dashboard_numbers(reader, now, settings.zone)
    policy, labels = await _policy(reader, settings)
    numbers["reasons"] = public_reasons(numbers["reasons"], labels)
    roles = {row["role"]: row["n"] for row in await queries_admin.people_by_role(reader)}
    hits = [HitKind(kind, sum(values)) for kind, values in numbers["hits"].items()]
    report = TransparencyReport(
        generated_at=local(now, settings.zone), time_zone=settings.time_zone, days=DAYS,
        first_day=numbers["days"][0], last_day=numbers["days"][-1],
        cameras_in_service=await queries_admin.cameras_in_service(reader),
        reads_total=sum(numbers["reads"]),
        reads_per_day=[DayReads(day, n) for day, n in zip(numbers["days"], numbers["reads"])],
        hotlists_by_kind=await _hotlists_by_kind(reader, now),
        hits_total=sum(hit.hits for hit in hits), hits_by_kind=hits,
        hit_outcomes=HitOutcomes(**numbers["outcomes"]),
        searches_total=sum(n for _, n in numbers["reasons"]),
        searches_by_reason=[ReasonCount(reason, n) for reason, n in numbers["reasons"]],
        people_with_access=[RoleCount(role, roles.get(role, 0)) for role in ROLES],
        retention=await _retention(reader, settings, now), policy=policy,
        audit_chain=audit_head(await audit_chain.latest_checkpoint(reader), settings.zone),
        records_requests=await _records_requests(reader, settings, now),
        deletions=await deletions.last_days(reader, settings, now, DAYS),
        false_hits=await false_hits(reader, *_period(now, settings)))
    return report, numbers


def _period(now: int, settings: Settings) -> tuple[int, int]:
    """The report's local days as epoch ms: the first's midnight, and the end of today."""
    bounds = day_starts(now, settings.zone, DAYS)
    return bounds[0], bounds[-1]


def _public_or_404(settings: Settings) -> None:
    if not settings.transparency_public:
        raise NotFoundException()  # as if the path did not exist


@get("/transparency", include_in_schema=False, **PUBLIC)
async def transparency_page(db: NamedDependency[Database], settings: NamedDependency[Settings]) -> Template:
    _public_or_404(settings)
    report, numbers = await transparency_report(db.reader, settings, now_ms())
    drawn = charts(numbers)
    drawn["hit_kinds"] = bar_chart([(hit.kind, KIND_NAMES[hit.kind], hit.hits) for hit in report.hits_by_kind])
    context = {"report": report, "charts": drawn, "summaries": summaries(numbers, drawn["hit_totals"]),
               "outcome_names": OUTCOMES, "kind_names": KIND_NAMES, "false_hits": report.false_hits}
    return Template("transparency.html", context=context)


# Anyone's page may fetch the figures (a newsroom's chart, a civic dashboard): they are public and
# the same for everyone, and no cookie or credential is ever honoured on this path.
@get("/transparency.json", response_headers=[ResponseHeader(name="Access-Control-Allow-Origin", value="*")],
     raises=[NotFoundException], **PUBLIC)
async def transparency_json(db: NamedDependency[Database], settings: NamedDependency[Settings]) -> TransparencyReport:
    """The public transparency report's figures: counts for the last 30 local days and the policy."""
    _public_or_404(settings)
    report, _ = await transparency_report(db.reader, settings, now_ms())
    return report


TRANSPARENCY_HANDLERS = [transparency_page, transparency_json]
