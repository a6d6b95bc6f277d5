"""What every request and answer passes through, whatever the route: URLs that can name nothing
are 404 before a handler sees them, every answer carries the security headers (also without
Caddy in front), and an unhandled error is logged once with where it happened."""

from __future__ import annotations

import logging

from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import HTTPException, NotFoundException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from server.params import names_nothing

log = logging.getLogger("platewatch.errors")

# The same values as the Caddyfile's (which adds HSTS and the full CSP, and replaces these).
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),  # URLs can carry plates (searches, histories)
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "frame-ancestors 'none'"),
)


def path_bounds_middleware(app: ASGIApp) -> ASGIApp:
    """A path with a NUL, or an id beyond SQLite's integers, names no page, row or file: 404."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and names_nothing(scope["path"]):
            raise NotFoundException("no such page")
        await app(scope, receive, send)

    return middleware


async def security_headers(message: Message, scope: Scope) -> None:
    """A before_send hook: the headers on every answer, unless the answer sets its own."""
    if message["type"] == "http.response.start":
        headers = MutableScopeHeaders(message)
        for name, value in SECURITY_HEADERS:
            if name not in headers:
                headers.add(name, value)


def error_logger(handled: tuple[type[Exception], ...]):
    """An after_exception hook that logs an error with no handler of its own (the 500s) once: the
    method, the path (not the query string, which may carry a plate or a secret; never headers or
    body) and the traceback. Refusals (4xx) and the exceptions in `handled` are not errors."""

    async def log_unhandled(exc: Exception, scope: Scope) -> None:
        if isinstance(exc, handled) or (isinstance(exc, HTTPException) and exc.status_code < 500):
            return
        log.error("unhandled error answering %s %s", scope.get("method", scope["type"]),
                  scope.get("path", "")[:300], exc_info=exc)

    return log_unhandled
