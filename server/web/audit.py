"""The audit log, for supervisors and admins: the page (newest first, 50 lines at a time) and the
file auditors take away (`/audit.csv`: every matching line, oldest first).

The file is written as it is read: EXPORT_CHUNK lines at a time by id (keyset), each chunk made
CSV and sent, so a year of lines never sits in memory. Before the first byte goes, the export's
own `audit.exported` line commits (who, the filters, how many lines): no export goes unrecorded.
The count is exact: the file holds the matching lines up to the newest one when it was asked for
(`through_id`), and as the log is append-only those cannot change while the file is sent. Each
line carries its chain hashes: with the file alone anyone can check that no line in it was changed.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Annotated

import msgspec
from litestar import Request, Response, get
from litestar.datastructures import MultiDict
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Stream, Template

from server import audit
from server.clock import end_of_day, from_ms, local, midnight, now_ms, shown
from server.params import ROW_ID
from server.settings import Settings
from server.store import queries_admin
from server.store.db import Database
from server.web.base import page_role

AUDIT_PAGE = 50
FILTER_MAX = 64  # the page's action and actor fields hold at most this many characters
EXPORT_PARAMS = ("from", "to", "action", "actor")
EXPORT_CHUNK = 1000
EXPORTED = "audit.exported"
# prev_hash and hash: the audit chain (store/chain.py), so an outside auditor can recompute each
# entry's SHA-256 from the file alone (an actor or action written with a leading ' is hashed without it).
CSV_COLUMNS = ("id", "at", "at_utc", "actor", "action", "detail", "prev_hash", "hash")
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # the shape <input type="date"> sends; fromisoformat takes more
# A spreadsheet runs a cell starting with one of these as a formula. A failed sign-in's actor is
# whatever was typed at the sign-in page, so such a value is written with a ' in front (OWASP).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Audit detail fields that hold epoch milliseconds (retention's cutoff and oldest read kept).
EPOCH_MS_FIELDS = {"cutoff", "oldest_remaining"}


def audit_detail(text: str, zone: tzinfo) -> list[tuple[str, str]]:
    """An audit line's detail as (field, value) pairs to show. Lines keep UTC (ISO strings and
    epoch ms, as written); the page shows those times in the department's local time."""
    try:
        detail = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return [("detail", text)]
    if not isinstance(detail, dict):
        return [("detail", text)]
    readable = {key: _local_times(value, zone, key) for key, value in detail.items()}
    return [(key, value if isinstance(value, str) else msgspec.json.encode(value).decode())
            for key, value in readable.items() if value not in (None, "")]


def _local_times(value, zone: tzinfo, field: str = ""):
    """`value` with its times (ISO strings with an offset, epoch ms in EPOCH_MS_FIELDS) made local."""
    if isinstance(value, dict):
        return {key: _local_times(inner, zone, key) for key, inner in value.items()}
    if isinstance(value, int) and not isinstance(value, bool) and field in EPOCH_MS_FIELDS:
        return shown(value, zone)
    if isinstance(value, str) and len(value) >= 20 and value[4:5] == "-" and "T" in value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return shown(moment, zone) if moment.tzinfo else value
    return value


@get("/audit", include_in_schema=False, guards=[page_role("supervisor")])
async def audit_log(request: Request, db: NamedDependency[Database], settings: NamedDependency[Settings],
                    action: FromQuery[str] = "", actor: FromQuery[str] = "",
                    before: Annotated[int | None, ROW_ID] = None) -> Template:
    """Newest first, filtered by action prefix (e.g. "hotlist.") and actor; 50 lines a page."""
    action, actor = action.strip()[:FILTER_MAX], actor.strip()[:FILTER_MAX]
    rows = await queries_admin.audit_page(db.reader, action_prefix=action, actor=actor, before_id=before,
                                          limit=AUDIT_PAGE + 1)
    lines = [{"id": r["id"], "at": r["at"], "actor": r["actor"], "action": r["action"],
              "detail": audit_detail(r["detail"], settings.zone)} for r in rows[:AUDIT_PAGE]]
    older = lines[-1]["id"] if len(rows) > AUDIT_PAGE else None
    context = {"lines": lines, "action": action, "actor": actor, "older": older, "paged": before is not None,
               "user": request.user}
    return Template("audit.html", context=context)


class BadParameter(ValueError):
    """An export parameter that is unknown, repeated or malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class Export:
    which: queries_admin.AuditFilter
    given: dict[str, str]  # the parameters as asked (non-empty ones), for the audit line
    first: date | None
    last: date | None


def _day(text: str, name: str) -> date | None:
    """A local date as <input type="date"> sends it, or None when left empty."""
    if not text:
        return None
    if DAY.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:  # a day its month lacks, such as 2026-02-30
            pass
    raise BadParameter(f"{name}: “{text}” is not a date (YYYY-MM-DD).")


def export_request(params: MultiDict, zone: tzinfo) -> Export:
    """The export's query parameters, checked: BadParameter names the first that is wrong."""
    for name in params:
        if name not in EXPORT_PARAMS:
            raise BadParameter(f"{name}: not a parameter of the export (from, to, action, actor).")
    values = {}
    for name in EXPORT_PARAMS:
        given = params.getall(name, [])
        if len(given) > 1:
            raise BadParameter(f"{name}: given more than once.")
        values[name] = given[0].strip() if given else ""
    for name in ("action", "actor"):
        if len(values[name]) > FILTER_MAX:
            raise BadParameter(f"{name}: at most {FILTER_MAX} characters.")
    first, last = _day(values["from"], "from"), _day(values["to"], "to")
    if first and last and last < first:
        raise BadParameter(f"to: {last} is before from ({first}).")
    # Local days, inclusive: from the first one's midnight to the last one's final millisecond.
    since = midnight(first, zone) if first else None
    try:
        until = end_of_day(last, zone) if last else None
    except OverflowError:  # 9999-12-31 ends on a day datetime cannot hold
        raise BadParameter(f"to: “{last}” is out of range.") from None
    which = queries_admin.AuditFilter(values["action"], values["actor"], since, until)
    return Export(which, {name: value for name, value in values.items() if value}, first, last)


def _cell(value):
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def csv_text(rows, zone: tzinfo) -> str:
    """Rows as CSV (RFC 4180: quoted where needed, CRLF line ends); times to the millisecond."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([row["id"], local(row["at"], zone).isoformat(timespec="milliseconds"),
                         from_ms(row["at"]).isoformat(timespec="milliseconds"),
                         _cell(row["actor"]), _cell(row["action"]), _cell(row["detail"]), row["prev_hash"] or "",
                         row["hash"] or ""])
    return out.getvalue()


async def export_lines(reader, which: queries_admin.AuditFilter, through_id: int, zone: tzinfo
                       ) -> AsyncIterator[str]:
    yield ",".join(CSV_COLUMNS) + "\r\n"
    after = 0
    while True:
        rows = await queries_admin.audit_chunk(reader, which, after_id=after, through_id=through_id,
                                               limit=EXPORT_CHUNK)
        if rows:
            yield csv_text(rows, zone)
        if len(rows) < EXPORT_CHUNK:
            return
        after = rows[-1]["id"]


def file_name(export: Export, zone: tzinfo) -> str:
    """platewatch-audit-2026-11-01-to-2026-11-22.csv; no last day means up to today."""
    last = export.last or local(now_ms(), zone).date()
    return f"platewatch-audit-{export.first or 'start'}-to-{last}.csv"


@get("/audit.csv", include_in_schema=False, guards=[page_role("supervisor")])
async def audit_export(request: Request, db: NamedDependency[Database],
                       settings: NamedDependency[Settings]) -> Response:
    """The audit lines as CSV, oldest first: from/to are local dates (inclusive), action and actor
    filter as on the page. A bad parameter is a 400 naming it, and nothing is exported or logged."""
    try:
        export = export_request(request.query_params, settings.zone)
    except BadParameter as exc:
        return Template("error.html", status_code=400, context={
            "title": "Can't export that", "detail": str(exc), "user": request.user})
    reader = db.reader
    through_id = await queries_admin.last_audit_id(reader)
    count = await queries_admin.count_audit(reader, export.which, through_id)
    # This line comes after through_id, so it is not in its own file (nor in `lines`): the file
    # is the log as it stood when asked for, and `lines` is what an auditor checks it against.
    async with db.transaction() as conn:
        await audit.record(conn, request.user.username, EXPORTED, filters=export.given,
                           time_zone=settings.time_zone, lines=count, through_id=through_id)
    headers = {"Content-Disposition": f'attachment; filename="{file_name(export, settings.zone)}"',
               "Cache-Control": "no-store"}
    return Stream(export_lines(reader, export.which, through_id, settings.zone),
                  media_type="text/csv", headers=headers)  # Litestar adds the charset


AUDIT_HANDLERS = [audit_log, audit_export]
