"""The department's list of search reasons (admins): add one, retire one. Officers choose one for
every search and plate history (web/search.py, web/history.py); a retired reason keeps its row, so
audit lines that name it keep their meaning. The same page keeps the list of purposes no search may
be run for (server/purposes.py): words and phrases a case number or note may not contain."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from server import audit, purposes
from server.clock import from_ms, now_ms
from server.store import queries_accountability as qa
from server.store import queries_search as qs
from server.store.db import Database
from server.web.base import from_htmx, page_role, render

LABEL_MAX = 80


async def _reasons_page(request: Request, db: Database, error: str | None = None, status: int = 200,
                        purpose_error: str | None = None) -> Template:
    reasons = await qs.search_reasons(db.reader, include_retired=True)
    context = {"current": [r for r in reasons if r["retired_at"] is None],
               "retired": [{**dict(r), "retired": from_ms(r["retired_at"])} for r in reasons if r["retired_at"]],
               "error": error, "prohibited": await qa.prohibited_purposes(db.reader), "purpose_error": purpose_error}
    return render(request, "search_reasons.html", "_search_reasons.html", context, status)


def _after_change(request: Request) -> Response | None:
    return None if from_htmx(request) else Redirect("/search/reasons", status_code=303)


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


@post("/search/purposes", include_in_schema=False, guards=[page_role("admin")], status_code=200)
async def purpose_add(request: Request, db: NamedDependency[Database]) -> Response:
    try:
        await purposes.add(db, request.user.username, str((await request.form()).get("phrase", "")))
    except purposes.PhraseRefused as refused:
        return await _reasons_page(request, db, status=422, purpose_error=str(refused))
    return _after_change(request) or await _reasons_page(request, db)


@post("/search/purposes/{purpose_id:int}/remove", include_in_schema=False, guards=[page_role("admin")],
      status_code=200)
async def purpose_remove(request: Request, purpose_id: FromPath[int], db: NamedDependency[Database]) -> Response:
    if await purposes.remove(db, request.user.username, purpose_id) is None:
        raise NotFoundException(f"no prohibited purpose {purpose_id}")
    return _after_change(request) or await _reasons_page(request, db)


REASON_HANDLERS = [reasons_page, reason_add, reason_retire, purpose_add, purpose_remove]
