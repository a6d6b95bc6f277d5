"""Search (justified and audited), plate history and recent reads per camera.

Nothing is searched until the officer gives a reason from the department's list and a case
number. The search runs, then its audit line (criteria, reason, case number, result count)
commits in a transaction of its own, and only then is a result shown: no audit, no results.
Searches and plate histories are POSTs. A link (GET) that ran one would let any web page make
an officer's browser write an audit line in the officer's name with a made-up justification
(the session cookie is SameSite=Lax, which top-level GETs carry); a POST needs the CSRF token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from fnmatch import fnmatchcase

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from server import audit
from server import queries_search as qs
from server.clock import from_ms, local, local_to_ms, now_ms, shown
from server.db import Database
from server.matching import fold, normalize
from server.pages import page_role
from server.settings import Settings

# The worker's palette (worker/colour.py PALETTE); the server does not import the worker.
COLOURS = ("white", "silver", "grey", "black", "red", "orange", "yellow", "green", "blue", "purple", "brown", "beige")
DAY_MS = 86_400_000
DEFAULT_DAYS = 7
CASE_MAX = 40
LABEL_MAX = 80
PATTERN_MAX = 16
MATCH_LABELS = {"exact": "exact", "lookalike": "look-alike characters", "edit": "one character off"}
SEARCH_FIELDS = ("plate", "fuzzy", "since", "until", "camera", "colour", "reason", "case")


@dataclass(frozen=True, slots=True)
class Justification:
    reason_id: int
    label: str
    case: str


def _render(request: Request, page: str, fragment: str, context: dict, status: int = 200) -> Template:
    """The whole page, or the fragment htmx asked for (a history restore wants the page)."""
    partial = request.headers.get("hx-request") and not request.headers.get("hx-history-restore-request")
    name = fragment if partial else page
    return Template(name, context={**context, "user": request.user}, status_code=status)


def _local(ms: int, zone: tzinfo) -> str:
    """A time as a datetime-local input shows it (the department's local time, to the minute)."""
    return local(ms, zone).strftime("%Y-%m-%dT%H:%M")


async def _justification(db: Database, form) -> tuple[Justification | None, list[str]]:
    """The reason (from the department's active list) and case number, or what is wrong."""
    reason_id, case = str(form.get("reason", "")).strip(), str(form.get("case", "")).strip()
    errors = []
    reason = await qs.active_reason(db.reader, int(reason_id)) if reason_id.isdigit() else None
    if reason is None:
        errors.append("Choose the reason for this search from the list.")
    if not case:
        errors.append("Give the case number this search is for.")
    elif len(case) > CASE_MAX:
        errors.append(f"The case number is too long: at most {CASE_MAX} characters.")
    elif not case.isprintable():
        errors.append("The case number may not contain control characters.")
    if errors:
        return None, errors
    return Justification(reason["id"], reason["label"], case), []


def _time(text: str, label: str, errors: list[str], zone: tzinfo) -> int | None:
    """A datetime-local input's value, read as the department's local time."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        errors.append(f"{label}: “{text}” is not a date and time.")
        return None
    return local_to_ms(moment, zone)


def _criteria(form: dict[str, str], cameras: dict[int, object], retention_ms: int, now: int, zone: tzinfo
              ) -> tuple[qs.Criteria | None, list[str], str | None]:
    """Criteria from the form, errors naming what is wrong, and a note when the range was cut."""
    errors: list[str] = []
    pattern = qs.plate_pattern(form["plate"])
    camera = int(form["camera"]) if form["camera"].isdigit() else None
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


def match_kind(row, pattern: str) -> str:
    """How a result relates to what was asked: exact, look-alike characters, one character off."""
    if not pattern or fnmatchcase(row["plate_norm"], pattern):  # without wildcards: equality
        return "exact"
    return "lookalike" if fnmatchcase(row["plate_folded"], fold(pattern)) else "edit"


def read_view(row, cameras: dict, match: str = "exact") -> dict:
    camera = cameras.get(row["camera_id"])
    return {**dict(row), "seen_at": from_ms(row["captured_at"]), "match": match, "match_label": MATCH_LABELS[match],
            "camera": camera["name"] if camera else "?", "location": camera["location"] if camera else "",
            "swatch": row["color"] if row["color"] in COLOURS else None}


async def _form_context(db: Database) -> dict:
    cameras = await qs.cameras(db.reader)
    return {"reasons": await qs.search_reasons(db.reader), "cameras": cameras, "colours": COLOURS}


@get("/search", include_in_schema=False, guards=[page_role("officer")])
async def search_page(request: Request, db: NamedDependency[Database], settings: NamedDependency[Settings]
                      ) -> Template:
    """The form only: nothing is searched without a justification."""
    values = dict.fromkeys(SEARCH_FIELDS, "") | {"since": _local(now_ms() - DEFAULT_DAYS * DAY_MS, settings.zone)}
    return _render(request, "search.html", "_search_panel.html", {**await _form_context(db), "values": values})


@post("/search", include_in_schema=False, guards=[page_role("officer")], status_code=200)
async def search_run(request: Request, db: NamedDependency[Database], settings: NamedDependency[Settings]) -> Template:
    raw = await request.form()
    values = {name: str(raw.get(name, "")).strip() for name in SEARCH_FIELDS}
    context = {**await _form_context(db), "values": values}
    justification, errors = await _justification(db, raw)
    now = now_ms()
    cameras = {c["id"]: c for c in context["cameras"]}
    criteria, criteria_errors, note = _criteria(values, cameras, int(settings.retention_days * DAY_MS), now,
                                                settings.zone)
    if errors or criteria_errors:  # nothing is searched, nothing shown
        return _render(request, "search.html", "_search_panel.html",
                       {**context, "errors": errors + criteria_errors}, status=422)
    rows, truncated = await qs.search_reads(db.reader, criteria)
    camera = cameras.get(criteria.camera_id)
    async with db.transaction() as conn:  # committed before any result leaves, even for none
        await audit.record(
            conn, request.user.username, "search", reason=justification.label, reason_id=justification.reason_id,
            case=justification.case, results=len(rows), truncated=truncated,
            criteria={"plate": criteria.pattern, "fuzzy": criteria.fuzzy, "camera": camera["name"] if camera else None,
                      "colour": criteria.colour, "from": from_ms(criteria.since).isoformat(),
                      "to": from_ms(criteria.until).isoformat()})
    results = [read_view(row, cameras, match_kind(row, criteria.pattern)) for row in rows]
    return _render(request, "search.html", "_search_panel.html", {
        **context, "results": results, "truncated": truncated, "limit": qs.SEARCH_LIMIT, "note": note,
        "criteria": criteria, "since": criteria.since, "until": criteria.until,
        "camera_name": camera["name"] if camera else None, "justification": justification})


def _plate_or_404(plate: str) -> str:
    norm = normalize(plate)
    if not norm or len(norm) > PATTERN_MAX:
        raise NotFoundException(f"“{plate}” is not a plate")
    return norm


@get("/plates/{plate:str}", include_in_schema=False, guards=[page_role("officer")])
async def history_page(request: Request, plate: FromPath[str], db: NamedDependency[Database],
                       reason: FromQuery[str] = "", case: FromQuery[str] = "") -> Template:
    """The justification form, prefilled when coming from search results; nothing is read yet."""
    context = {"plate": _plate_or_404(plate), "reasons": await qs.search_reasons(db.reader),
               "values": {"reason": reason, "case": case[:CASE_MAX]}}
    return _render(request, "history.html", "_search_history.html", context)


@post("/plates/{plate:str}", include_in_schema=False, guards=[page_role("officer")], status_code=200)
async def history_run(request: Request, plate: FromPath[str], db: NamedDependency[Database],
                      settings: NamedDependency[Settings]) -> Template:
    norm = _plate_or_404(plate)
    raw = await request.form()
    values = {name: str(raw.get(name, "")).strip() for name in ("reason", "case")}
    context = {"plate": norm, "reasons": await qs.search_reasons(db.reader), "values": values}
    justification, errors = await _justification(db, raw)
    if errors:
        return _render(request, "history.html", "_search_history.html", {**context, "errors": errors}, status=422)
    rows, truncated = await qs.plate_history(db.reader, norm, now_ms() - int(settings.retention_days * DAY_MS))
    async with db.transaction() as conn:
        await audit.record(conn, request.user.username, "plate.history", plate=norm, reason=justification.label,
                           reason_id=justification.reason_id, case=justification.case, results=len(rows),
                           truncated=truncated)
    cameras = {c["id"]: c for c in await qs.cameras(db.reader)}
    sightings = [read_view(row, cameras, "exact" if row["plate_norm"] == norm else "lookalike") for row in rows]
    places: dict[str, int] = {}
    for sighting in sightings:
        places[sighting["camera"]] = places.get(sighting["camera"], 0) + 1
    return _render(request, "history.html", "_search_history.html", {
        **context, "sightings": sightings, "places": places, "truncated": truncated, "limit": qs.HISTORY_LIMIT,
        "justification": justification, "retention_days": settings.retention_days})


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
    return _render(request, "reads.html", fragment, context)


# --- the department's search reasons (admins) ----------------------------------------------------

async def _reasons_page(request: Request, db: Database, error: str | None = None, status: int = 200) -> Template:
    reasons = await qs.search_reasons(db.reader, include_retired=True)
    context = {"current": [r for r in reasons if r["retired_at"] is None],
               "retired": [{**dict(r), "retired": from_ms(r["retired_at"])} for r in reasons if r["retired_at"]],
               "error": error}
    return _render(request, "search_reasons.html", "_search_reasons.html", context, status)


def _after_change(request: Request) -> Response | None:
    return None if request.headers.get("hx-request") else Redirect("/search/reasons", status_code=303)


@get("/search/reasons", include_in_schema=False, guards=[page_role("admin")])
async def reasons_page(request: Request, db: NamedDependency[Database]) -> Template:
    return await _reasons_page(request, db)


@post("/search/reasons", include_in_schema=False, guards=[page_role("admin")], status_code=200)
async def reason_add(request: Request, db: NamedDependency[Database]) -> Response:
    label = " ".join(str((await request.form()).get("label", "")).split())
    if not label or len(label) > LABEL_MAX or not label.isprintable():
        return await _reasons_page(request, db, f"Give the reason in 1 to {LABEL_MAX} characters.", 422)
    async with db.transaction() as conn:
        reason_id = await qs.add_reason(conn, label, request.user.username, now_ms())
        await audit.record(conn, request.user.username, "search_reason.add", reason_id=reason_id, label=label)
    return _after_change(request) or await _reasons_page(request, db)


@post("/search/reasons/{reason_id:int}/retire", include_in_schema=False, guards=[page_role("admin")],
      status_code=200)
async def reason_retire(request: Request, reason_id: FromPath[int], db: NamedDependency[Database]) -> Response:
    async with db.transaction() as conn:
        retired = await qs.retire_reason(conn, reason_id, request.user.username, now_ms())
        if retired is None:
            raise NotFoundException(f"no active reason {reason_id}")
        await audit.record(conn, request.user.username, "search_reason.retire", reason_id=reason_id,
                           label=retired["label"])
    return _after_change(request) or await _reasons_page(request, db)


SEARCH_HANDLERS = [search_page, search_run, history_page, history_run, reads_page, reasons_page, reason_add,
                   reason_retire]
