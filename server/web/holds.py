"""Evidence holds on the web. An officer keeps a read as evidence for a case from its card (search
results, a plate's history, an alert page); supervisors see every hold on /holds and release them.
Moving the images and writing the audit lines is holds.py's work; here are the forms and answers.

A card carries one button (a GET: nothing is written) that opens the small form; the form's answer
is the read's hold block (`_hold.html`) for htmx, or a page of its own without JavaScript.
Refusals say why, with their status: 422 (the form: a case number is required, checked as a
search's is), 404 (no such read: never stored, or purged), 409 (kept already: by whom, for which
case). The list's answers are the list (`_holds.html`), or its page.
"""

from __future__ import annotations

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from server import holds
from server.access import CASE_MAX, case_problem
from server.clock import DAY_MS, now_ms
from server.settings import Settings
from server.store import queries_holds as qh
from server.store.db import Database
from server.web.base import page_role, render

NOTE_MAX = 500  # the holds table's bound
RELEASED_SHOWN = 50
GONE = "This read is not stored: it was deleted after the retention period, or never existed."
MAX_ID = 2**63 - 1  # SQLite's integers: a larger id in a URL names nothing


def _sqlite_id(value: int) -> int:
    if abs(value) > MAX_ID:
        raise NotFoundException("no such read or hold")
    return value


def _values(form) -> dict[str, str]:
    return {name: str(form.get(name, "")).strip() for name in ("case", "note")}


def _problem(values: dict[str, str]) -> str | None:
    if problem := case_problem(values["case"], "this read is kept for"):
        return problem
    if len(values["note"]) > NOTE_MAX:
        return f"The note is too long: at most {NOTE_MAX} characters."
    return None


def _kept_by(hold) -> str:
    return f"Already kept as evidence by {hold['placed_by']} for case {hold['case_number']}."


async def _hold_block(request: Request, db: Database, read_id: int, status: int = 200, **extra) -> Template:
    """The read's hold block as it stands now, with a notice or an error; 404 when it is not stored."""
    read = await qh.read_for_hold(db.reader, read_id)
    if read is None:
        status, extra = 404, {"hold_error": GONE}
    hold = await qh.active_hold_for_read(db.reader, read_id) if read else None
    r = {"id": read_id, "plate_norm": read["plate_norm"] if read else None, "hold": hold, "gone": read is None}
    return render(request, "hold.html", "_hold.html", {"r": r, **extra}, status)


@get("/reads/{read_id:int}/hold", include_in_schema=False, guards=[page_role("officer")])
async def hold_form(request: Request, read_id: FromPath[int], db: NamedDependency[Database],
                    case: FromQuery[str] = "") -> Template:
    """The form that keeps the read as evidence, its case number prefilled (from a search)."""
    return await _hold_block(request, db, _sqlite_id(read_id), hold_values={"case": case.strip()[:CASE_MAX], "note": ""})


@post("/reads/{read_id:int}/hold", include_in_schema=False, guards=[page_role("officer")], status_code=200)
async def hold_place(request: Request, read_id: FromPath[int], db: NamedDependency[Database],
                     settings: NamedDependency[Settings]) -> Template:
    read_id, values = _sqlite_id(read_id), _values(await request.form())
    if problem := _problem(values):
        return await _hold_block(request, db, read_id, 422, hold_error=problem, hold_values=values)
    try:
        await holds.place(db, settings, read_id, values["case"], values["note"], request.user.username)
    except holds.ReadGone:
        return await _hold_block(request, db, read_id)  # answers 404
    except holds.AlreadyHeld as refused:
        return await _hold_block(request, db, read_id, 409, hold_error=_kept_by(refused.hold))
    notice = (f"Kept as evidence for case {values['case']}. It stays past the {settings.retention_days:g}-day "
              "retention period until a supervisor releases it.")
    return await _hold_block(request, db, read_id, hold_notice=notice)


def _hold_view(row, now: int, cutoff: int) -> dict:
    return {**dict(row), "days": (now - row["placed_at"]) // DAY_MS, "past_retention": row["captured_at"] < cutoff}


async def _holds_page(request: Request, db: Database, settings: Settings, status: int = 200, **extra) -> Template:
    now = now_ms()
    cutoff = settings.retention_cutoff(now)
    context = {"holding": [_hold_view(row, now, cutoff) for row in await qh.active_holds(db.reader)],
               "released": [_hold_view(row, now, cutoff) for row in await qh.released_holds(db.reader, RELEASED_SHOWN)],
               "released_limit": RELEASED_SHOWN, **extra}
    return render(request, "holds.html", "_holds.html", context, status)


@get("/holds", include_in_schema=False, guards=[page_role("supervisor")])
async def holds_page(request: Request, db: NamedDependency[Database], settings: NamedDependency[Settings]) -> Template:
    """Active holds, oldest first, then the latest released ones."""
    return await _holds_page(request, db, settings)


@post("/holds/{hold_id:int}/release", include_in_schema=False, guards=[page_role("supervisor")], status_code=200)
async def hold_release(request: Request, hold_id: FromPath[int], db: NamedDependency[Database],
                       settings: NamedDependency[Settings]) -> Template:
    try:
        hold = await holds.release(db, _sqlite_id(hold_id), request.user.username)
    except holds.NotActive as refused:
        if refused.hold is None:
            return await _holds_page(request, db, settings, 404, error="No such hold: its read may have been purged.")
        error = f"That hold (case {refused.hold['case_number']}) was released already by {refused.hold['released_by']}."
        return await _holds_page(request, db, settings, 409, error=error)
    past = hold["captured_at"] < settings.retention_cutoff(now_ms())
    after = ("it is past the retention period, so the next purge deletes it and its pictures" if past
             else "it is deleted with its pictures once it reaches the retention period")
    notice = f"Released the hold on {hold['plate_norm']} (case {hold['case_number']}): {after}."
    return await _holds_page(request, db, settings, notice=notice)


HOLD_HANDLERS = [hold_form, hold_place, holds_page, hold_release]
