"""Search (justified and audited) and recent reads per camera. The justification and paging rules
are server/access.py's (plate history and evidence holds use them too); result cards
(web/cards.py) show their read's evidence hold, or offer to place one.

Nothing is searched until the officer gives a reason from the department's list and a case
number. The search runs, then its audit line (criteria, reason, case number, result count)
commits in a transaction of its own, and only then is a result shown: no audit, no results.
Searches and plate histories are POSTs. A link (GET) that ran one would let any web page make
an officer's browser write an audit line in the officer's name with a made-up justification
(the session cookie is SameSite=Lax, which top-level GETs carry); a POST needs the CSRF token.

A search shows its newest reads; "Show older reads" asks for the next page of the same search
(`search_more`). That request carries the criteria and justification again and they are checked
again by the same code (a reason retired since is refused; the range is cut to the retention
window as it stands now), and they must be those of a search the same officer ran: the `search`
audit line the request names. Each page is a `search.more` audit line pointing at that line; the
dashboard counts `search` lines only, so paging never counts as further searches. A plate's
history pages the same way, with the same cursor and the same checks (access.page_cursor,
access.continued_line).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Template

from contract.plates import PALETTE as COLOURS
from server import audit
from server.access import (NUMBER, PATTERN_MAX, Cursor, Justification, check_justification, continued_line,
                           page_cursor)
from server.clock import DAY_MS, EARLIEST_MS, LATEST_MS, SHOWABLE_DAYS, from_ms, local, local_to_ms, now_ms, shown
from server.searches import SEARCH, run_search
from server.settings import Settings
from server.store import queries_search as qs
from server.store.db import Database
from server.web.base import page_role, render, wants_fragment
from server.web.cards import match_kind, read_view, with_holds

DEFAULT_DAYS = 7
QUERY_FIELDS = ("plate", "fuzzy", "since", "until", "camera", "colour")  # what is searched for
SEARCH_FIELDS = (*QUERY_FIELDS, "reason", "case", "note")
MORE = "search.more"  # the audit action of a further page of a search (SEARCH: the search itself)
NOT_CONTINUED = "These are not older reads of a search you ran with this reason and case number: search again."



def _local(ms: int, zone: tzinfo) -> str:
    """A time as a datetime-local input shows it (the department's local time, to the minute)."""
    return local(ms, zone).strftime("%Y-%m-%dT%H:%M")


def _time(text: str, label: str, errors: list[str], zone: tzinfo) -> int | None:
    """A datetime-local input's value, read as the department's local time."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        errors.append(f"{label}: “{text}” is not a date and time.")
        return None
    ms = local_to_ms(moment, zone)
    if not EARLIEST_MS <= ms <= LATEST_MS:  # 9999-12-31T23:59 in Chicago is in year 10000 in UTC
        errors.append(f"{label}: “{text}” is out of range: give a date from {SHOWABLE_DAYS}.")
        return None
    return ms


def _criteria(form: dict[str, str], cameras: dict[int, object], retention_ms: int, now: int, zone: tzinfo
              ) -> tuple[qs.Criteria | None, list[str], str | None]:
    """Criteria from the form, errors naming what is wrong, and a note when the range was cut."""
    errors: list[str] = []
    pattern = qs.plate_pattern(form["plate"])
    camera = int(form["camera"]) if NUMBER.fullmatch(form["camera"]) else None
    if form["camera"] and camera not in cameras:
        errors.append("Camera: choose one from the list.")
    if form["colour"] and form["colour"] not in COLOURS:
        errors.append("Colour: choose one from the list.")
    literals = sum(ch.isalnum() for ch in pattern)
    if form["plate"].strip() and literals < 2:
        errors.append("Plate: give at least two letters or digits (* and ? stand for the rest).")
    elif len(pattern) > PATTERN_MAX:
        errors.append(f"Plate: at most {PATTERN_MAX} characters.")
    elif not pattern and camera is None:
        errors.append("Give a plate, or choose a camera to search every plate it read.")
    since = _time(form["since"], "From", errors, zone)
    until = _time(form["until"], "To", errors, zone)
    since, until = (now - DEFAULT_DAYS * DAY_MS if since is None else since), (now if until is None else until)
    if since > until:
        errors.append("From must be before To.")
    if errors:
        return None, errors, None
    note = None
    if since < now - retention_ms:
        since = now - retention_ms
        note = f"Reads are kept {retention_ms // DAY_MS} days: searched from {shown(since, zone, 'minute')}."
    return qs.Criteria(pattern, form["fuzzy"] == "on", since, until, camera, form["colour"] or None), [], note


@dataclass(frozen=True, slots=True)
class Asked:
    """A search form as posted (a search or a further page of one), checked."""
    form: object
    values: dict[str, str]
    context: dict
    cameras: dict[int, object]
    justification: Justification | None
    criteria: qs.Criteria | None
    note: str | None
    errors: list[str]


async def _asked(request: Request, db: Database, settings: Settings, action: str) -> Asked:
    """The justification and criteria, checked alike for a search and each further page of it
    (`action`: which, as a refusal's audit line names it)."""
    form = await request.form()
    values = {name: str(form.get(name, "")).strip() for name in SEARCH_FIELDS}
    context = {**await _form_context(db), "values": values}
    justification, errors = await check_justification(
        db, settings, form, actor=request.user.username, asked=action,
        terms={name: values[name] for name in QUERY_FIELDS if values[name]})
    cameras = {c["id"]: c for c in context["cameras"]}
    criteria, criteria_errors, note = _criteria(values, cameras, int(settings.retention_days * DAY_MS), now_ms(),
                                                settings.zone)
    return Asked(form, values, context, cameras, justification, criteria, note, errors + criteria_errors)


def _logged_criteria(asked: Asked) -> dict:
    """The criteria as the audit line keeps them."""
    criteria, camera = asked.criteria, asked.cameras.get(asked.criteria.camera_id)
    return {"plate": criteria.pattern, "fuzzy": criteria.fuzzy, "camera": camera["name"] if camera else None,
            "colour": criteria.colour, "from": from_ms(criteria.since).isoformat(),
            "to": from_ms(criteria.until).isoformat()}


async def _form_context(db: Database) -> dict:
    cameras = await qs.cameras(db.reader)
    return {"reasons": await qs.search_reasons(db.reader), "cameras": cameras, "colours": COLOURS}


@get("/search", include_in_schema=False, guards=[page_role("officer")])
async def search_page(request: Request, db: NamedDependency[Database], settings: NamedDependency[Settings]
                      ) -> Template:
    """The form only: nothing is searched without a justification."""
    values = dict.fromkeys(SEARCH_FIELDS, "") | {"since": _local(now_ms() - DEFAULT_DAYS * DAY_MS, settings.zone)}
    return render(request, "search.html", "_search_panel.html", {**await _form_context(db), "values": values})


@post("/search", include_in_schema=False, guards=[page_role("officer")], status_code=200)
async def search_run(request: Request, db: NamedDependency[Database], settings: NamedDependency[Settings]) -> Template:
    asked = await _asked(request, db, settings, SEARCH)
    if asked.errors:  # nothing is searched, nothing shown
        return render(request, "search.html", "_search_panel.html", {**asked.context, "errors": asked.errors},
                       status=422)
    rows, more, search_id = await run_search(db, request.user.username, asked.criteria, asked.justification,
                                             _logged_criteria(asked))
    return await _results(request, db, asked, rows, more, search_id, 0, settings.zone)


def _exact(ms: int, zone: tzinfo) -> str:
    """A bound of the range to the millisecond, with its offset: a further page searches exactly it."""
    return local(ms, zone).isoformat(timespec="milliseconds")


def _next_page(asked: Asked, search_id: int, last, total: int, zone: tzinfo) -> dict[str, str]:
    """The fields that ask for the page after `last`: the same criteria and justification."""
    criteria, justification = asked.criteria, asked.justification
    return {"reason": str(justification.reason_id), "case": justification.case, "note": justification.note,
            "plate": criteria.pattern,
            "fuzzy": "on" if criteria.fuzzy else "", "since": _exact(criteria.since, zone),
            "until": _exact(criteria.until, zone),
            "camera": "" if criteria.camera_id is None else str(criteria.camera_id), "colour": criteria.colour or "",
            "search": str(search_id), "after": f"{last['captured_at']}:{last['id']}", "shown": str(total)}


def _form_values(asked: Asked, zone: tzinfo) -> dict[str, str]:
    """A further page's fields as the search form above a page of its own shows them: its time
    inputs take the range to the minute."""
    if asked.criteria is None:
        return asked.values
    return {**asked.values, "since": _local(asked.criteria.since, zone), "until": _local(asked.criteria.until, zone)}


async def _results(request: Request, db: Database, asked: Asked, rows: list, more: bool, search_id: int,
                   shown_before: int, zone: tzinfo) -> Template:
    """A page of results: the first, below the form; or a further one, appended below the last (htmx)
    or on a page of its own."""
    criteria, total = asked.criteria, shown_before + len(rows)
    camera = asked.cameras.get(criteria.camera_id)
    results = await with_holds(db, [read_view(row, asked.cameras, match_kind(row, criteria.pattern)) for row in rows])
    context = {
        **asked.context, "results": results,
        "more": more, "next_page": _next_page(asked, search_id, rows[-1], total, zone) if more else None,
        "first": shown_before + 1, "shown": total, "appended": shown_before > 0 and wants_fragment(request),
        "limit": qs.SEARCH_LIMIT, "note": asked.note, "criteria": criteria, "since": criteria.since,
        "until": criteria.until, "camera_name": camera["name"] if camera else None,
        "justification": asked.justification}
    if shown_before:
        context["values"] = _form_values(asked, zone)
    fragment = "_search_more_page.html" if shown_before else "_search_panel.html"
    return render(request, "search.html", fragment, context)


async def _continues(db: Database, username: str, asked: Asked, cursor: Cursor) -> bool:
    """Whether the cursor continues this officer's search (its audit line) with this justification
    and these criteria, from within its range. A later start is allowed: a further page's range is
    cut to the retention window again."""
    detail = await continued_line(db, cursor.line, SEARCH, username, asked.justification)
    if detail is None or cursor.after[0] > asked.criteria.until:
        return False
    logged, asked_now = detail.get("criteria") or {}, _logged_criteria(asked)
    same = {**logged, "from": None} == {**asked_now, "from": None}
    try:
        return same and datetime.fromisoformat(asked_now["from"]) >= datetime.fromisoformat(logged["from"])
    except (KeyError, TypeError, ValueError):
        return False


@post("/search/more", include_in_schema=False, guards=[page_role("officer")], status_code=200)
async def search_more(request: Request, db: NamedDependency[Database], settings: NamedDependency[Settings]
                      ) -> Template:
    """Older reads of a search: the page after the last read shown. Refused, as a search is,
    unless the justification and criteria check out and continue a search this officer ran."""
    asked = await _asked(request, db, settings, MORE)
    cursor = page_cursor(asked.form, "search")
    errors = asked.errors or ([] if cursor and await _continues(db, request.user.username, asked, cursor)
                              else [NOT_CONTINUED])
    if errors:  # nothing is searched, nothing shown; the reads already shown stay
        context = {**asked.context, "values": _form_values(asked, settings.zone), "errors": errors}
        return render(request, "search.html", "_search_more.html", context, status=422)
    search_id, after, shown_before = cursor
    rows, more = await qs.search_reads(db.reader, asked.criteria, after=after)
    justification = asked.justification
    async with db.transaction() as conn:  # as for a search: logged before any result leaves
        await audit.record(
            conn, request.user.username, MORE, search=search_id, **justification.logged(),
            after={"at": from_ms(after[0]).isoformat(), "read": after[1]}, results=len(rows), truncated=more,
            criteria=_logged_criteria(asked))
    return await _results(request, db, asked, rows, more, search_id, shown_before, settings.zone)


@get("/reads", include_in_schema=False, guards=[page_role("officer")])
async def reads_page(request: Request, db: NamedDependency[Database], camera: FromQuery[int | None] = None,
                     refresh: FromQuery[bool] = False) -> Template:
    """A camera's latest reads. A page view or a change of camera is one `reads.view` audit
    line; the list refreshing itself every few seconds is the same view and writes none."""
    cameras = await qs.cameras(db.reader)
    chosen = next((c for c in cameras if c["id"] == camera), cameras[0] if cameras else None)
    rows = await qs.recent_reads(db.reader, chosen["id"]) if chosen else []
    if not refresh:
        async with db.transaction() as conn:
            await audit.record(conn, request.user.username, "reads.view", camera=chosen["name"] if chosen else None)
    context = {"cameras": cameras, "chosen": chosen, "limit": qs.RECENT_LIMIT, "refreshed": now_ms(),
               "reads": [read_view(row, {chosen["id"]: chosen}) for row in rows] if chosen else []}
    fragment = "_reads_list.html" if refresh else "_reads_panel.html"
    return render(request, "reads.html", fragment, context)


SEARCH_HANDLERS = [search_page, search_run, search_more, reads_page]
