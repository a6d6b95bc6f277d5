"""The officers' alert pages: the live feed (server-sent events), the on-duty switch, and one
alert's page with its workflow (acknowledge, then an outcome; the rules are server/alerts.py's)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, ServerSentEvent, Template
from litestar.response.sse import ServerSentEventMessage

from contract.alerts import OUTCOME_CHOICES as OUTCOMES
from contract.alerts import DEFAULT_PRIORITY, VERIFIED_WITH
from server import alerts, auth, duty
from server.alerts import alert_view
from server.auth import User
from server.clock import now_ms
from server.hotlist_sources import stale_lists
from server.notify import Notifier
from server.settings import Settings
from server.store import queries
from server.store import queries_holds as qh
from server.store.db import Database
from server.web.base import (SESSION_ENDED, current_duty, duty_context, form_field, from_htmx, page_role, render,
                             safe_next)


@get("/", include_in_schema=False, guards=[page_role("officer")])
async def feed(request: Request, db: NamedDependency[Database], settings: NamedDependency[Settings]) -> Template:
    rows = await queries.feed_alerts(db.reader, limit=50, default_priority=DEFAULT_PRIORITY)
    cards = [alert_view(row, settings.base_url) for row in rows]
    switch = await current_duty(db, request.user, settings, "/")
    stale = await stale_lists(db.reader, now_ms())
    return Template("feed.html", context={"alerts": cards, "user": request.user, "stale_lists": stale, **switch})


@post("/duty", include_in_schema=False, guards=[page_role("officer")], status_code=200)
async def duty_switch(request: Request, db: NamedDependency[Database], settings: NamedDependency[Settings]) -> Response:
    """Go on duty (`on`=1) or off (`on`=0): the switch's fragment for htmx, else back to the page."""
    form = await request.form()
    on, back = str(form.get("on", "")), safe_next(form_field(form, "next"))
    if on not in ("0", "1"):
        raise ClientException("on: 1 goes on duty, 0 goes off duty")
    async with db.transaction() as conn:
        until = await duty.set_duty(conn, request.user.id, request.user.username, on == "1", now=now_ms(),
                                    shift_hours=settings.shift_hours, via="web")
    if from_htmx(request):
        return Template("_duty.html", context={"user": request.user, **duty_context(until, settings, back)})
    return Redirect(back, status_code=303)


@get("/events", include_in_schema=False, guards=[page_role("officer")])
async def events(request: Request, notifier: NamedDependency[Notifier], db: NamedDependency[Database],
                 settings: NamedDependency[Settings]) -> ServerSentEvent:
    """New alerts as rendered cards; htmx's SSE extension drops them into the feed. The stream is
    no use of the session: once the session locks for want of use (or ends), it sends a `locked`
    event with the notice (the page closes the stream on it) and stops."""
    template = request.app.template_engine.get_template("_alert_card.html")
    user: User = request.user

    async def stream() -> AsyncIterator[ServerSentEventMessage]:
        queue, open_until = notifier.listen(), 0
        try:
            while True:
                try:
                    alert = await asyncio.wait_for(queue.get(), timeout=15)
                except TimeoutError:
                    alert = None
                now = now_ms()
                if user.session_id is not None and now >= open_until:  # perhaps used since: ask again
                    open_until = await auth.session_still_open(db, user.session_id, user.username, now,
                                                               settings.idle_lock_ms)
                    if not isinstance(open_until, int):
                        locked = open_until is auth.SESSION_LOCKED
                        notice = request.app.template_engine.get_template(SESSION_ENDED).render(locked=locked, next="/")
                        yield ServerSentEventMessage(data=notice.replace("\n", " "), event="locked")
                        return
                if alert is None:
                    yield ServerSentEventMessage(comment="keep-alive")  # proxies drop silent streams
                    continue
                html = template.render(alert=alert, fresh=True)
                yield ServerSentEventMessage(data=html.replace("\n", " "), event="alert", id=str(alert.id))
        finally:
            notifier.unlisten(queue)

    return ServerSentEvent(stream(), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _alert_context(db: Database, settings: Settings, alert_id: int) -> dict:
    row = await queries.alert_by_id(db.reader, alert_id)
    if row is None:
        raise NotFoundException(f"no alert {alert_id}")
    # The read behind the alert, as an evidence hold's block shows it (web/templates/_hold.html).
    hold = await qh.active_hold_for_read(db.reader, row["read_id"])
    read = {"id": row["read_id"], "plate_norm": row["read_plate"], "hold": hold}
    return {"alert": alert_view(row, settings.base_url), "row": row, "outcomes": OUTCOMES,
            "verified_with": VERIFIED_WITH, "r": read}


@get("/alerts/{alert_id:int}", include_in_schema=False, guards=[page_role("officer")])
async def alert_page(request: Request, alert_id: FromPath[int], db: NamedDependency[Database],
                     settings: NamedDependency[Settings]) -> Template:
    return render(request, "alert.html", "_alert_workflow.html", await _alert_context(db, settings, alert_id))


@post("/alerts/{alert_id:int}/acknowledge", include_in_schema=False, guards=[page_role("officer")], status_code=200)
async def acknowledge(request: Request, alert_id: FromPath[int], db: NamedDependency[Database],
                      settings: NamedDependency[Settings]) -> Response:
    async with db.transaction() as conn:
        await alerts.acknowledge(conn, alert_id, request.user.username, now_ms())
    return await _after_action(request, alert_id, db, settings)


@post("/alerts/{alert_id:int}/outcome", include_in_schema=False, guards=[page_role("officer")], status_code=200)
async def outcome(request: Request, alert_id: FromPath[int], db: NamedDependency[Database],
                  settings: NamedDependency[Settings]) -> Response:
    form = await request.form()
    result, checked_with = str(form.get("outcome", "")), str(form.get("verified_with", ""))
    note = str(form.get("note", "")).strip()[:500]
    try:
        async with db.transaction() as conn:
            if not await alerts.record_outcome(conn, alert_id, request.user.username, result, checked_with or None,
                                               note, now_ms()):
                raise NotFoundException(f"no alert {alert_id}")
    except alerts.OutcomeRefused as refused:
        context = await _alert_context(db, settings, alert_id)
        return render(request, "alert.html", "_alert_workflow.html", {**context, "error": str(refused)}, 422)
    return await _after_action(request, alert_id, db, settings)


async def _after_action(request: Request, alert_id: int, db: Database, settings: Settings) -> Response:
    if from_htmx(request):
        context = await _alert_context(db, settings, alert_id)
        return Template("_alert_workflow.html", context={**context, "user": request.user})
    return Redirect(f"/alerts/{alert_id}", status_code=303)


ALERT_HANDLERS = [feed, duty_switch, events, alert_page, acknowledge, outcome]
