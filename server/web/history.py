"""A plate's history: every sighting of one plate, and of plates that differ from it only by
look-alike characters, within the retention window; justified and audited as a search is
(web/search.py), and paged the same way.

The history shows its newest sightings; "Show older sightings" asks for the next page
(`history_more`). That request carries the reason and case number again, checked again by the
same code (a reason retired since is refused; the range is cut to the retention window as it
stands now), and they must be those of a `plate.history` line the same officer wrote for the
same plate: the cursor names it, as a further page of a search names its `search` line. Each
page is a `plate.history.more` audit line pointing at that line; the dashboard counts
`plate.history` lines only, so paging never counts as further look-ups. The `plate.history` line
records the newest time the history covers (`to`), and a further page must start no later, as a
further page of a search must start within its range: a cursor forged past it is refused.
"""

from __future__ import annotations

from datetime import datetime

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from contract.plates import plate_or_none
from server import audit
from server.access import (CASE_MAX, PATTERN_MAX, Cursor, Justification, check_justification, continued_line,
                           page_cursor)
from server.clock import from_ms, now_ms
from server.settings import Settings
from server.store import queries_search as qs
from server.store.db import Database
from server.web.base import page_role, render, wants_fragment
from server.web.cards import read_view, with_holds

HISTORY, MORE = "plate.history", "plate.history.more"  # audit actions: a history, and a further page of one
NOT_CONTINUED = ("These are not older sightings of a plate history you ran with this reason and case number: "
                 "show the history again.")


def _plate_or_404(plate: str) -> str:
    norm = plate_or_none(plate)
    if not norm or len(norm) > PATTERN_MAX:
        raise NotFoundException(f"“{plate}” is not a plate")
    return norm


def _since(settings: Settings) -> int:
    """The oldest time shown: the retention window as it stands now, for every page."""
    return settings.retention_cutoff(now_ms())


async def _form(request: Request, db: Database, plate: str) -> tuple[object, dict]:
    """The posted form, and the context that shows its justification again."""
    form = await request.form()
    values = {name: str(form.get(name, "")).strip() for name in ("reason", "case", "note")}
    return form, {"plate": plate, "reasons": await qs.search_reasons(db.reader), "values": values}


async def _justified(request: Request, db: Database, settings: Settings, form, action: str, plate: str):
    """The justification (access.check_justification), a refusal audited as `action` on `plate`."""
    return await check_justification(db, settings, form, actor=request.user.username, asked=action,
                                     terms={"plate": plate})


def _covered(opened: int, rows: list) -> str:
    """The newest time a history covers, as its audit line records it: when it was opened, or its
    newest sighting where that is later (a camera whose clock runs fast dates reads ahead)."""
    return from_ms(max([opened] + [row["captured_at"] for row in rows[:1]])).isoformat()


async def _continues(db: Database, username: str, plate: str, justification: Justification, cursor: Cursor) -> bool:
    """Whether the cursor continues this officer's history of this plate with this justification,
    from no later than that history covered. A line without `to` (none is written so) is refused."""
    detail = await continued_line(db, cursor.line, HISTORY, username, justification)
    if detail is None or detail.get("plate") != plate:
        return False
    try:  # compared as datetimes, as written: no float rounding at the bound
        return from_ms(cursor.after[0]) <= datetime.fromisoformat(detail["to"])
    except (KeyError, TypeError, ValueError):
        return False


def _places(sightings: list[dict]) -> dict[str, int]:
    """Sightings per camera, of the sightings given (the first page only: see the page's note)."""
    places: dict[str, int] = {}
    for sighting in sightings:
        places[sighting["camera"]] = places.get(sighting["camera"], 0) + 1
    return places


async def _sightings(request: Request, db: Database, context: dict, justification: Justification, rows: list,
                     more: bool, line: int, shown_before: int, settings: Settings) -> Template:
    """A page of sightings: the first, below the heading; or a further one, appended below the
    last (htmx) or on a page of its own."""
    plate, cameras = context["plate"], {c["id"]: c for c in await qs.cameras(db.reader)}
    sightings = await with_holds(
        db, [read_view(row, cameras, "exact" if row["plate_norm"] == plate else "lookalike") for row in rows])
    total = shown_before + len(rows)
    next_page = {"reason": str(justification.reason_id), "case": justification.case, "note": justification.note,
                 "history": str(line), "after": f"{rows[-1]['captured_at']}:{rows[-1]['id']}",
                 "shown": str(total)} if more else None
    context = {**context, "sightings": sightings, "places": {} if shown_before else _places(sightings),
               "more": more, "next_page": next_page, "first": shown_before + 1, "shown": total,
               "appended": shown_before > 0 and wants_fragment(request), "limit": qs.HISTORY_LIMIT,
               "justification": justification, "retention_days": settings.retention_days}
    fragment = "_history_more_page.html" if shown_before else "_search_history.html"
    return render(request, "history.html", fragment, context)


@get("/plates/{plate:str}", include_in_schema=False, guards=[page_role("officer")])
async def history_page(request: Request, plate: FromPath[str], db: NamedDependency[Database],
                       reason: FromQuery[str] = "", case: FromQuery[str] = "") -> Template:
    """The justification form, prefilled when coming from search results; nothing is read yet."""
    context = {"plate": _plate_or_404(plate), "reasons": await qs.search_reasons(db.reader),
               "values": {"reason": reason, "case": case[:CASE_MAX], "note": ""}}
    return render(request, "history.html", "_search_history.html", context)


@post("/plates/{plate:str}", include_in_schema=False, guards=[page_role("officer")], status_code=200)
async def history_run(request: Request, plate: FromPath[str], db: NamedDependency[Database],
                      settings: NamedDependency[Settings]) -> Template:
    form, context = await _form(request, db, _plate_or_404(plate))
    justification, errors = await _justified(request, db, settings, form, HISTORY, context["plate"])
    if errors:
        return render(request, "history.html", "_search_history.html", {**context, "errors": errors}, status=422)
    opened = now_ms()
    rows, more = await qs.plate_history(db.reader, context["plate"], _since(settings))
    async with db.transaction() as conn:  # committed before any sighting leaves, even for none
        line = await audit.record(
            conn, request.user.username, HISTORY, plate=context["plate"], **justification.logged(),
            results=len(rows), truncated=more, to=_covered(opened, rows))
    return await _sightings(request, db, context, justification, rows, more, line, 0, settings)


@post("/plates/{plate:str}/more", include_in_schema=False, guards=[page_role("officer")], status_code=200)
async def history_more(request: Request, plate: FromPath[str], db: NamedDependency[Database],
                       settings: NamedDependency[Settings]) -> Template:
    """Older sightings: the page after the last one shown. Refused, as a history is, unless the
    justification checks out and continues a history of this plate that this officer ran, from
    within it."""
    form, context = await _form(request, db, _plate_or_404(plate))
    justification, errors = await _justified(request, db, settings, form, MORE, context["plate"])
    cursor = page_cursor(form, "history")
    if not errors:
        continues = cursor and await _continues(db, request.user.username, context["plate"], justification, cursor)
        errors = [] if continues else [NOT_CONTINUED]
    if errors:  # nothing is read, nothing shown; the sightings already shown stay
        return render(request, "history.html", "_history_more.html", {**context, "errors": errors}, status=422)
    rows, more = await qs.plate_history(db.reader, context["plate"], _since(settings), after=cursor.after)
    async with db.transaction() as conn:  # as for a history: logged before any sighting leaves
        await audit.record(
            conn, request.user.username, MORE, history=cursor.line, plate=context["plate"],
            **justification.logged(), after={"at": from_ms(cursor.after[0]).isoformat(), "read": cursor.after[1]},
            results=len(rows), truncated=more)
    return await _sightings(request, db, context, justification, rows, more, cursor.line, cursor.shown, settings)


HISTORY_HANDLERS = [history_page, history_run, history_more]
