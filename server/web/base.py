"""What every HTML page module shares (and no page module imports another): the guards and the
redirects they lead to, the error page, form helpers, the on-duty switch's context and the one
page-or-fragment answer (`render`): each URL answers a whole page, or just the fragment htmx asks
for (HX-Request), and a whole page again when htmx restores history."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlsplit

from litestar import Request, Response
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from server import duty
from server.auth import SignInRefused, User, mfa_missing
from server.clock import now_ms
from server.settings import Settings
from server.store.db import Database

WEB = Path(__file__).resolve().parents[2] / "web"  # templates/ and static/


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


def from_htmx(request: Request) -> bool:
    """The request is htmx's (HX-Request), not a plain link or form post."""
    return bool(request.headers.get("hx-request"))


def wants_fragment(request: Request) -> bool:
    """htmx asks for a part of the page. Not on a history restore: Back after htmx's history cache
    lost the page asks again with HX-History-Restore-Request, and the whole page must come back."""
    if isinstance(request, HTMXRequest):
        return bool(request.htmx) and not request.htmx.history_restore_request
    return from_htmx(request) and not request.headers.get("hx-history-restore-request")


def render(request: Request, page: str, fragment: str | None, context: dict, status: int = 200) -> Template:
    """The one page-or-fragment answer: the whole `page`, or the `fragment` htmx asked for (None: a
    page that has none). The signed-in user is always in the context."""
    name = fragment if fragment and wants_fragment(request) else page
    return Template(name, context={**context, "user": request.user}, status_code=status)


def no_store(response: Response) -> Response:
    """Pages with secrets on them (codes, a token): kept by no cache, the browser's own included."""
    response.headers["Cache-Control"] = "no-store"
    return response


def refusal(refused: SignInRefused) -> tuple[int, str]:
    """A refused sign-in or re-authentication as a form shows it: status and message (a lock-out
    says until when: settings.Lockout.message)."""
    return (429 if refused.locked else 401), str(refused)


# Sent by a part of a page that refreshes itself (hx-headers): such a request is no sign that
# anyone is at the screen, so it does not keep the session from locking (app.principal_middleware).
AUTO_REFRESH_HEADER = "x-auto-refresh"
# htmx stops polling an element whose request is answered with this status.
HTMX_STOP_POLLING = 286


def _redirect(request: Request, target: str) -> Response:
    if from_htmx(request):
        return Response(None, status_code=401, headers={"HX-Redirect": target})
    return Redirect(target)


def page_url(request: Request) -> str:
    """The page the browser shows, path and query: for htmx, the page that asked, not the fragment."""
    current = urlsplit(request.headers.get("hx-current-url", "")) if from_htmx(request) else None
    url = current if current and current.path else request.url
    return url.path + (f"?{url.query}" if url.query else "")


# What a screen that updates itself shows once its session is locked or has ended: a notice saying
# so, with the way back (the feed's `locked` event; a poll's answer, `oob` at the top of the page).
SESSION_ENDED = "_session_locked.html"


def login_redirect(request: Request, _: Exception) -> Response:
    """To the sign-in page, which comes back to this page after. A poll keeps its screen: it stops
    (HTMX_STOP_POLLING), and a notice says why."""
    if request.headers.get(AUTO_REFRESH_HEADER):
        context = {"locked": bool(request.scope.get("session_locked")), "next": page_url(request), "oob": True}
        return Template(SESSION_ENDED, context=context, status_code=HTMX_STOP_POLLING, headers={"HX-Reswap": "none"})
    return _redirect(request, f"/login?next={quote(page_url(request), safe='/')}")


def enrol_redirect(request: Request, _: Exception) -> Response:
    return _redirect(request, "/account/mfa")


def password_redirect(request: Request, _: Exception) -> Response:
    return _redirect(request, "/account")


ERROR_TITLES = {403: "Not allowed", 404: "Not found"}


def html_error(request: Request, exc: HTTPException) -> Response:
    """Pages answer refusals with a page (the JSON API and other .json paths keep Litestar's JSON body)."""
    path = request.url.path
    if path.startswith("/api/") or path.endswith(".json") or from_htmx(request):
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
