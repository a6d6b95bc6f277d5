"""create_app(settings): the one place that wires storage, services and HTTP handlers together."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import MediaType
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.openapi import OpenAPIConfig
from litestar.config.csrf import CSRFConfig
from litestar.plugins.htmx import HTMXRequest
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.routes import HTTPRoute
from litestar.status_codes import HTTP_204_NO_CONTENT
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp, Receive, Scope, Send

from server import audit_chain, dormant, hotlist_sources, retention
from server.api import API_HANDLERS
from server.api_docs import COMPONENTS as API_COMPONENTS
from server.auth import SESSION_COOKIE, SESSION_LOCKED, CameraCache, resolve_principal
from server.clock import now_ms, shown
from server.http_edges import error_logger, path_bounds_middleware, security_headers
from server.ingest import Ingest
from server.mqtt import MqttPublisher
from server.notify import Notifier
from server.push import PushSender, VapidKeys
from server.settings import Settings
from server.store.db import Database
from server.web.account import ACCOUNT_HANDLERS
from server.web.admin import ADMIN_HANDLERS
from server.web.alerts import ALERT_HANDLERS
from server.web.audit import AUDIT_HANDLERS
from server.web.base import (AUTO_REFRESH_HEADER, WEB, EnrolRequired, LoginRequired, PasswordChangeRequired,
                             enrol_redirect, html_error, login_redirect, password_redirect)
from server.web.dashboard import DASHBOARD_HANDLERS
from server.web.files import FILE_HANDLERS
from server.web.history import HISTORY_HANDLERS
from server.web.holds import HOLD_HANDLERS
from server.web.integrations import INTEGRATION_HANDLERS
from server.web.hotlist_sources import HOTLIST_SOURCE_HANDLERS
from server.web.reasons import REASON_HANDLERS
from server.web.records_requests import RECORDS_REQUEST_HANDLERS
from server.web.search import SEARCH_HANDLERS
from server.web.signin import SIGNIN_HANDLERS
from server.web.transparency import TRANSPARENCY_HANDLERS
from server.web.users import USER_HANDLERS
from server.webhook_sender import WebhookSender

SERVICES = ("settings", "db", "ingest", "notifier", "vapid")


def app_secret(data_dir: Path) -> str:
    """A random secret kept in the data dir (signs CSRF tokens); made on first start."""
    path = data_dir / "app_secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


# Requests that are no sign of anyone at the screen: they never keep a session from locking.
NOT_ACTIVITY_PATHS = ("/events", "/static/")
_AUTO_REFRESH = AUTO_REFRESH_HEADER.encode()


def principal_middleware(app: ASGIApp) -> ASGIApp:
    """Puts the caller (User, Camera or None) in scope["user"]; guards decide what it may do. A
    browser session left unused past idle_lock_minutes is ended here: None, and
    scope["session_locked"] says why."""
    cameras = CameraCache()

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            auth = headers.get(b"authorization", b"").decode("latin-1")
            bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
            # The JSON API takes bearer tokens only: a cookie there would make it forgeable cross-site.
            api = scope["path"].startswith("/api/")
            session = None if api else _cookie(headers.get(b"cookie", b"").decode("latin-1"), SESSION_COOKIE)
            state = scope["app"].state
            active = not scope["path"].startswith(NOT_ACTIVITY_PATHS) and _AUTO_REFRESH not in headers
            principal = await resolve_principal(state.db, bearer, session, now_ms(), cameras,
                                                idle_ms=state.settings.idle_lock_ms, active=active)
            scope["session_locked"] = principal is SESSION_LOCKED
            scope["user"] = None if principal is SESSION_LOCKED else principal
        await app(scope, receive, send)

    return middleware


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


async def allow_every_method(request: Request) -> Response | None:
    """OPTIONS names every method of the path. Litestar 2's own OPTIONS answer names only the
    methods of the first handler registered on a path, e.g. GET but not PATCH on /api/v1/alerts/{id}
    (litestar-org/litestar#4169, fixed in Litestar 3): answer it from the whole route instead."""
    handler = request.route_handler
    if request.method != "OPTIONS" or handler.handler_name != "options_handler":
        return None  # not Litestar's automatic OPTIONS handler
    route = next(route for route in request.app.routes
                 if isinstance(route, HTTPRoute) and any(h is handler for h in route.route_handlers))
    return Response(None, status_code=HTTP_204_NO_CONTENT, media_type=MediaType.TEXT,
                    headers={"Allow": ", ".join(sorted(route.methods))})


def _provider(name: str) -> Provide:
    async def provide(state: State):
        return state[name]

    return Provide(provide)


def template_config(settings: Settings) -> TemplateConfig:
    """Jinja with the department's clock: `{{ ms_or_datetime | local_time }}` shows a time in
    settings.time_zone (`local_time('iso')` for <time datetime>, or any strftime format), and
    `time_zone` names the zone. `transparency_public` says whether pages may link the public report;
    `retention_days` is the retention period."""
    zone = settings.zone

    def setup(engine: JinjaTemplateEngine) -> None:
        engine.engine.filters["local_time"] = lambda moment, *fmt: shown(moment, zone, *fmt)
        engine.engine.globals["time_zone"] = settings.time_zone
        engine.engine.globals["transparency_public"] = settings.transparency_public
        engine.engine.globals["retention_days"] = settings.retention_days  # what an evidence hold outlasts

    return TemplateConfig(directory=WEB / "templates", engine=JinjaTemplateEngine, engine_callback=setup)


EXCEPTION_HANDLERS = {
    LoginRequired: login_redirect, EnrolRequired: enrol_redirect, PasswordChangeRequired: password_redirect,
    PermissionDeniedException: html_error, NotFoundException: html_error,
}

# How long a stopping server waits for open responses. Live feeds (SSE on /events, open on every
# phone showing the app) never end by themselves: without a bound, a restart waits for them forever.
SHUTDOWN_GRACE_S = 5


def create_app(settings: Settings) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = await Database(settings.db_path).open()
        vapid = VapidKeys.load_or_create(settings.data_dir)
        sender = PushSender(vapid, settings.vapid_subject, ttl=settings.push_ttl_s, timeout=settings.push_timeout_s)
        webhooks = WebhookSender(db, settings.base_url, retry_s=settings.webhook_retry_s,
                                 timeout_s=settings.webhook_timeout_s)
        notifier = Notifier(db, sender, settings.base_url, ttl_s=settings.push_ttl_s, wake_webhooks=webhooks.wake)
        app.state.update(settings=settings, db=db, vapid=vapid, notifier=notifier, ingest=Ingest(db, settings, notifier))
        signer = audit_chain.AuditSigner.load_or_create(settings.data_dir)
        background = [asyncio.create_task(notifier.run()), asyncio.create_task(retention.run_forever(db, settings)),
                      asyncio.create_task(audit_chain.checkpoint_forever(db, signer, settings)),
                      asyncio.create_task(hotlist_sources.run_forever(db, settings, notifier.enqueue)),
                      asyncio.create_task(webhooks.run()),
                      asyncio.create_task(dormant.run_forever(db, settings))]
        if (broker := settings.mqtt_broker) is not None:
            mqtt = MqttPublisher(db, broker)
            notifier.add_outlet(mqtt.offer)
            app.state.mqtt = mqtt
            background.append(asyncio.create_task(mqtt.run()))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await sender.aclose()
            await webhooks.aclose()
            await db.close()

    return Litestar(
        route_handlers=[
            *API_HANDLERS, *SIGNIN_HANDLERS, *ACCOUNT_HANDLERS, *ALERT_HANDLERS, *FILE_HANDLERS, *SEARCH_HANDLERS,
            *HISTORY_HANDLERS, *REASON_HANDLERS, *ADMIN_HANDLERS, *USER_HANDLERS, *DASHBOARD_HANDLERS,
            *AUDIT_HANDLERS, *TRANSPARENCY_HANDLERS, *HOLD_HANDLERS, *INTEGRATION_HANDLERS,
            *HOTLIST_SOURCE_HANDLERS, *RECORDS_REQUEST_HANDLERS,
            create_static_files_router("/static", [WEB / "static"]),
        ],
        request_class=HTMXRequest,  # request.htmx: what htmx asks for (server/web/base.py's render)
        template_config=template_config(settings),
        csrf_config=CSRFConfig(secret=app_secret(settings.data_dir), exclude=["/api/"], cookie_httponly=False,
                               cookie_secure=settings.base_url.startswith("https://")),
        exception_handlers=EXCEPTION_HANDLERS,
        after_exception=[error_logger(tuple(EXCEPTION_HANDLERS))],
        before_send=[security_headers],
        lifespan=[lifespan],
        dependencies={name: _provider(name) for name in SERVICES},
        middleware=[path_bounds_middleware, principal_middleware],
        request_max_body_size=settings.max_request_bytes,
        openapi_config=OpenAPIConfig(title="Platewatch", version="0.1.0", path="/schema", components=API_COMPONENTS),
        before_request=allow_every_method,
        logging_config=None,  # the process entry point (CLI, tests) configures logging
    )
