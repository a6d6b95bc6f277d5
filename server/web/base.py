"""HTML pages for officers: the live alert feed (server-sent events), the on-duty switch and the
alert workflow, and the page guards every page module uses (sign-in itself is web/signin.py).
Each URL answers a whole page, or just the fragment when htmx asks (HX-Request)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, HTTPException, NotFoundException, PermissionDeniedException
from litestar.params import FromPath, JSONBody
from litestar.response import File, Redirect, ServerSentEvent, Template
from litestar.response.sse import ServerSentEventMessage

from contract.alerts import OUTCOME_CHOICES as OUTCOMES
from contract.alerts import VERIFIED_WITH
from contract.wire import PushSubscriptionIn
from server import alerts, audit, duty
from server.alerts import alert_view
from server.api import store_subscription
from server.auth import User, mfa_missing
from server.clock import from_ms, now_ms
from server.notify import Notifier
from server.settings import Settings
from server.store import queries
from server.store import queries_holds as qh
from server.store.db import Database

WEB = Path(__file__).resolve().parents[2] / "web"  # templates/ and static/
UUID_NAME = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-(plate|vehicle)\.jpg")


class LoginRequired(Exception):
    """Raised by page guards; answered with a redirect to /login (HX-Redirect for htmx)."""


class EnrolRequired(Exception):
    """Raised by page guards when the user's role must use two-factor sign-in and they have not
    set it up; answered with a redirect to the enrolment page."""


class PasswordChangeRequired(Exception):
    """Raised by page guards while the user's password is one an admin chose (auth.reset_password,
    or a new user's first on /users); answered with a redirect to /account to choose their own."""


def page_role(role: str, *, enforce_mfa: bool = True, enforce_password: bool = True):
    """Guard: a signed-in user of at least `role` who owes nothing first. Two-factor enrolment is
    checked before the password change because /account, where the password is changed, itself
    needs it: a user owing both enrols, then changes the password."""
    async def guard(connection, _) -> None:
        user = connection.scope.get("user")
        if not isinstance(user, User):
            raise LoginRequired()
        if not user.has_role(role):
            raise PermissionDeniedException(f"needs the {role} role")
        if enforce_mfa and mfa_missing(user, connection.app.state.settings.mfa_required_roles):
            raise EnrolRequired()
        if enforce_password and user.must_change_password:
            raise PasswordChangeRequired()

    return guard


def _redirect(request: Request, target: str) -> Response:
    if request.headers.get("hx-request"):
        return Response(None, status_code=401, headers={"HX-Redirect": target})
    return Redirect(target)


def login_redirect(request: Request, _: Exception) -> Response:
    return _redirect(request, f"/login?next={quote(request.url.path)}")


def enrol_redirect(request: Request, _: Exception) -> Response:
    return _redirect(request, "/account/mfa")


def password_redirect(request: Request, _: Exception) -> Response:
    return _redirect(request, "/account")


ERROR_TITLES = {403: "Not allowed", 404: "Not found"}


def html_error(request: Request, exc: HTTPException) -> Response:
    """Pages answer refusals with a page (the JSON API and other .json paths keep Litestar's JSON body)."""
    path = request.url.path
    if path.startswith("/api/") or path.endswith(".json") or request.headers.get("hx-request"):
        return Response({"status_code": exc.status_code, "detail": exc.detail}, status_code=exc.status_code)
    user = request.scope.get("user")
    return Template("error.html", status_code=exc.status_code, context={
        "title": ERROR_TITLES.get(exc.status_code, "Error"), "detail": exc.detail,
        "user": user if isinstance(user, User) else None,
    })


def form_field(form, name: str, limit: int = 500) -> str:
    """A form's text field, trimmed and cut to `limit` characters (absent: empty)."""
    return str(form.get(name, "")).strip()[:limit]


def safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect would help phishing."""
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


def duty_context(until: int | None, settings: Settings, back: str) -> dict:
    """What the on-duty switch (_duty.html) shows: when the shift ends (None: off duty), how long
    one lasts, and the page a form post without JavaScript returns to."""
    return {"duty_until": until, "shift_hours": settings.shift_hours, "duty_next": back}


async def current_duty(db: Database, user: User, settings: Settings, back: str) -> dict:
    return duty_context(await duty.on_duty_until(db.reader, user.id, now_ms()), settings, back)


@get("/", include_in_schema=False, guards=[page_role("officer")])
async def feed(request: Request, db: NamedDependency[Database], settings: NamedDependency[Settings]) -> Template:
    rows = await queries.list_alerts(db.reader, status=None, before_id=None, limit=50)
    alerts = [alert_view(row, settings.base_url) for row in rows]
    switch = await current_duty(db, request.user, settings, "/")
    return Template("feed.html", context={"alerts": alerts, "user": request.user, **switch})


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
    if request.headers.get("hx-request"):
        return Template("_duty.html", context={"user": request.user, **duty_context(until, settings, back)})
    return Redirect(back, status_code=303)


@get("/events", include_in_schema=False, guards=[page_role("officer")])
async def events(request: Request, notifier: NamedDependency[Notifier]) -> ServerSentEvent:
    """New alerts as rendered cards; htmx's SSE extension drops them into the feed."""
    template = request.app.template_engine.get_template("_alert_card.html")

    async def stream() -> AsyncIterator[ServerSentEventMessage]:
        queue = notifier.listen()
        try:
            while True:
                try:
                    alert = await asyncio.wait_for(queue.get(), timeout=15)
                except TimeoutError:
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
    context = await _alert_context(db, settings, alert_id)
    name = "_alert_workflow.html" if request.headers.get("hx-request") else "alert.html"
    return Template(name, context={**context, "user": request.user})


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
        return Template("_alert_workflow.html" if request.headers.get("hx-request") else "alert.html",
                        context={**context, "user": request.user, "error": str(refused)}, status_code=422)
    return await _after_action(request, alert_id, db, settings)


async def _after_action(request: Request, alert_id: int, db: Database, settings: Settings) -> Response:
    if request.headers.get("hx-request"):
        context = await _alert_context(db, settings, alert_id)
        return Template("_alert_workflow.html", context={**context, "user": request.user})
    return Redirect(f"/alerts/{alert_id}", status_code=303)


@get("/images/{path:path}", include_in_schema=False, guards=[page_role("officer")])
async def image(path: FromPath[str], db: NamedDependency[Database], settings: NamedDependency[Settings]) -> File:
    """Plate and vehicle crops, only to signed-in users, only from the images folder."""
    root = settings.images_dir.resolve()
    target = (settings.data_dir / path.lstrip("/")).resolve()
    if not target.is_relative_to(root):
        raise NotFoundException("no such image")
    if not target.is_file():
        target = await _held_since(db, settings, path.lstrip("/"))
    return File(target, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


async def _held_since(db: Database, settings: Settings, path: str) -> Path:
    """Where an image named by a page drawn before its read was kept as evidence is now: a hold
    moves a read's images into images/held/ (server/holds.py), and a card on screen keeps the old URL."""
    name = PurePosixPath(path).name  # <read uuid>-plate.jpg, as server/ingest.py names it
    read = await qh.read_by_uuid(db.reader, name[:36]) if UUID_NAME.fullmatch(name) else None
    if read is None or path != f"images/{from_ms(read['captured_at']):%Y-%m-%d}/{name}":  # its day folder
        raise NotFoundException("no such image")
    held = settings.held_images_dir.resolve()
    for moved in (read["plate_image"], read["vehicle_image"]):
        if moved and PurePosixPath(moved).name == name:
            target = (settings.data_dir / moved).resolve()
            if target.is_relative_to(held) and target.is_file():
                return target
    raise NotFoundException("no such image")


@post("/push/subscribe", include_in_schema=False, guards=[page_role("officer")], status_code=201)
async def push_subscribe(request: Request, data: JSONBody[PushSubscriptionIn], db: NamedDependency[Database],
                         settings: NamedDependency[Settings]) -> dict[str, int]:
    """The browser's subscription, sent by app.js with the session cookie and CSRF header."""
    return {"id": await store_subscription(db, request.user, data, settings.push_allow_http)}


@post("/push/unsubscribe", include_in_schema=False, guards=[page_role("officer")], status_code=200)
async def push_unsubscribe(request: Request, data: JSONBody[PushSubscriptionIn], db: NamedDependency[Database]) -> dict:
    async with db.transaction() as conn:
        removed = await queries.delete_user_subscription(conn, request.user.id, data.endpoint)
        await audit.record(conn, request.user.username, "push.unsubscribe", removed=removed)
    return {"removed": removed}


def _root_file(name: str, media_type: str) -> File:
    return File(WEB / "static" / name, media_type=media_type, headers={"Cache-Control": "no-cache"})


@get("/sw.js", include_in_schema=False)
async def service_worker() -> File:
    """Served from the root so its scope covers the whole app."""
    return _root_file("sw.js", "text/javascript")


@get("/manifest.webmanifest", include_in_schema=False)
async def manifest() -> File:
    return _root_file("manifest.webmanifest", "application/manifest+json")


@get("/offline", include_in_schema=False)
async def offline() -> Template:
    return Template("offline.html")


PAGE_HANDLERS = [
    feed, duty_switch, events, alert_page, acknowledge, outcome, image, offline,
    push_subscribe, push_unsubscribe, service_worker, manifest,
]
