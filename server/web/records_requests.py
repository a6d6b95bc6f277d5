"""Public records requests on the web (the rules are server/records_requests.py's).

`/request` is public: a form anyone can send without an account or JavaScript, answered with the
request number and what happens next, never with data. It is the same CSRF-protected form as any
other and is never cached (it sets the CSRF cookie). `/requests` is the supervisors' queue: open a
request to see the asker's contact details (shown to supervisors and admins only), look its plate
up (a POST: it writes an audit line, like a search) and record the answer.
"""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from server import records_requests as rr
from server.params import SQLITE_INT_MAX
from server.settings import Settings
from server.store import queries_requests as qr
from server.store import queries_search as qs
from server.store.db import Database
from server.web.base import form_field, no_store, page_role, render
from server.web.cards import read_view, with_holds

LIMITS = {"plate": 40, "name": rr.NAME_MAX, "email": rr.EMAIL_MAX, "postal_address": rr.ADDRESS_MAX,
          "message": rr.MESSAGE_MAX}  # cut a little past the bound: the check then names the field


def _public(context: dict, status: int = 200) -> Response:
    """The public page: the same for a signed-in user (no nav), kept by no cache."""
    return no_store(Template("request.html", context={"user": None, **context}, status_code=status))


@get("/request", include_in_schema=False)
async def request_form() -> Response:
    return _public({"values": dict.fromkeys(rr.FIELDS, ""), "limits": LIMITS})


@post("/request", include_in_schema=False, status_code=200)
async def request_send(request: Request, db: NamedDependency[Database], settings: NamedDependency[Settings]
                       ) -> Response:
    form = await request.form()
    values = {name: form_field(form, name, LIMITS[name] + 1) for name in rr.FIELDS}
    asked, errors = rr.check_request(values)
    if errors:
        return _public({"values": values, "limits": LIMITS, "errors": errors}, 422)
    address = request.client.host if request.client else "unknown"
    try:
        number = await rr.receive(db, asked, rr.client_key(settings, address))
    except rr.TooManyRequests:
        return _public({"values": values, "limits": LIMITS, "errors": [rr.TOO_MANY]}, 429)
    return _public({"number": number, "plate": asked.plate})


def _request_id(value: int) -> int:
    if not 0 < value <= SQLITE_INT_MAX:  # a larger id in a URL names nothing
        raise NotFoundException("no such request")
    return value


@get("/requests", include_in_schema=False, guards=[page_role("supervisor")])
async def requests_queue(request: Request, db: NamedDependency[Database]) -> Template:
    """Open requests, the longest waiting first, then the latest answered."""
    context = {"open": await qr.queue(db.reader, answered=False), "answered": await qr.queue(db.reader, answered=True),
               "limit": qr.QUEUE_LIMIT, "number": rr.request_number, "active": "requests"}
    return render(request, "requests.html", None, context)


async def _request_page(request: Request, db: Database, request_id: int, status: int = 200, **extra) -> Template:
    row = await qr.request_by_id(db.reader, _request_id(request_id))
    if row is None:
        raise NotFoundException("no such request")
    context = {"r": row, "number": rr.request_number(row["id"]), "answer_max": rr.ANSWER_MAX,
               "reason": rr.PUBLIC_RECORDS, "active": "requests", **extra}
    return no_store(render(request, "records_request.html", None, context, status))


@get("/requests/{request_id:int}", include_in_schema=False, guards=[page_role("supervisor")])
async def request_page(request: Request, request_id: FromPath[int], db: NamedDependency[Database]) -> Template:
    return await _request_page(request, db, request_id)


@post("/requests/{request_id:int}/lookup", include_in_schema=False, guards=[page_role("supervisor")],
      status_code=200)
async def request_lookup(request: Request, request_id: FromPath[int], db: NamedDependency[Database],
                         settings: NamedDependency[Settings]) -> Template:
    """The plate's reads within the retention window, audited as a search before they are shown."""
    row = await qr.request_by_id(db.reader, _request_id(request_id))
    if row is None:
        raise NotFoundException("no such request")
    rows, more, _ = await rr.look_up(db, settings, row, request.user.username)
    cameras = {c["id"]: c for c in await qs.cameras(db.reader)}
    found = await with_holds(db, [read_view(read, cameras) for read in rows])
    return await _request_page(request, db, request_id, found=found, more=more, limit=qs.SEARCH_LIMIT)


@post("/requests/{request_id:int}/answer", include_in_schema=False, guards=[page_role("supervisor")],
      status_code=200)
async def request_answer(request: Request, request_id: FromPath[int], db: NamedDependency[Database]) -> Response:
    request_id = _request_id(request_id)
    text = str((await request.form()).get("answer", "")).strip()[:rr.ANSWER_MAX + 1]
    if problem := rr.answer_problem(text):
        return await _request_page(request, db, request_id, 422, error=problem, answer=text)
    if await qr.request_by_id(db.reader, request_id) is None:
        raise NotFoundException("no such request")
    try:
        await rr.answer(db, request_id, text, request.user.username)
    except rr.AlreadyAnswered:
        return await _request_page(request, db, request_id, 409, error="This request was answered already.")
    return Redirect(f"/requests/{request_id}", status_code=303)


RECORDS_REQUEST_HANDLERS = [request_form, request_send, requests_queue, request_page, request_lookup, request_answer]
