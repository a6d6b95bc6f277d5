"""A hot list's scheduled source, set up on its own page (/hotlists/{id}/source): where the list
refreshes from (a file, a folder, or an https URL with optional credentials), how often, how old
it may grow, and its file's layout; "refresh now"; removing it. The rules are the CLI's
(server/hotlist_sources.py). Credentials are write-only: the page says which kind is stored,
never what, and a blank field keeps the stored one.
"""

from __future__ import annotations

import asyncio

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from server.hotlist_fetch import Credentials, credentials_kind
from server.hotlist_sources import DEFAULT_EVERY_HOURS, DEFAULT_MAX_AGE_HOURS, KEEP, SourceRefused, \
    refresh_list_now, remove_source, set_source
from server.hotlists import IMPORT_OPTIONS, options_format, remembered_options
from server.notify import Notifier
from server.settings import Settings
from server.store import queries_admin, queries_sources
from server.store.db import Database
from server.web.base import form_field, no_store, page_role, render

SUPERVISOR = [page_role("supervisor")]
SOURCE_FIELDS = ("name", "location", "every", "max_age", "auth", "basic_user")  # never the secrets


async def _source_page(request: Request, db: Database, settings: Settings, hotlist_id: int, *,
                       form: dict | None = None, status: int = 200, **extra) -> Response:
    hotlist = await queries_admin.hotlist_by_id(db.reader, hotlist_id)
    if hotlist is None:
        raise NotFoundException(f"no hot list {hotlist_id}")
    source = await queries_sources.source_for_list(db.reader, hotlist_id)
    stored = await asyncio.to_thread(credentials_kind, settings.data_dir, source["id"]) if source else ""
    if form is None:
        form = {"name": source["name"] if source else f"{hotlist['name']}-feed",
                "location": source["location"] if source else "",
                "every": f"{source['every_hours']:g}" if source else f"{DEFAULT_EVERY_HOURS:g}",
                "max_age": f"{source['max_age_hours']:g}" if source else f"{DEFAULT_MAX_AGE_HOURS:g}",
                "auth": "keep" if stored else "none", **remembered_options(hotlist)}
    context = {"hotlist": hotlist, "source": source, "stored": stored, "form": form, **extra}
    return no_store(render(request, "hotlist_source.html", None, context, status))


@get("/hotlists/{hotlist_id:int}/source", include_in_schema=False, guards=SUPERVISOR)
async def source_page(request: Request, hotlist_id: FromPath[int], db: NamedDependency[Database],
                      settings: NamedDependency[Settings]) -> Response:
    return await _source_page(request, db, settings, hotlist_id)


def _credentials_from(form, auth: str):
    """New credentials, None (none), or KEEP; a blank secret keeps the stored one."""
    if auth == "bearer" and form_field(form, "token", 5000):
        return Credentials("bearer", form_field(form, "token", 5000))
    if auth == "basic" and form_field(form, "basic_password", 5000):
        return Credentials("basic", form_field(form, "basic_password", 5000), form_field(form, "basic_user", 200))
    if auth == "none":
        return None
    if auth in ("bearer", "basic"):
        raise SourceRefused(f"give the {'token' if auth == 'bearer' else 'password'} (it is never shown again)")
    return KEEP


def _hours(text: str, field: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SourceRefused(f"{field}: give a number of hours, e.g. 24") from None


@post("/hotlists/{hotlist_id:int}/source", include_in_schema=False, guards=SUPERVISOR, status_code=200)
async def source_set(request: Request, hotlist_id: FromPath[int], db: NamedDependency[Database],
                     settings: NamedDependency[Settings]) -> Response:
    form = await request.form()
    values = {name: form_field(form, name, 2000) for name in (*SOURCE_FIELDS, *IMPORT_OPTIONS)}
    hotlist = await queries_admin.hotlist_by_id(db.reader, hotlist_id)
    if hotlist is None:
        raise NotFoundException(f"no hot list {hotlist_id}")
    try:
        fmt, priority = options_format(values)
        await set_source(db, values["name"], hotlist["name"], values["location"], actor=request.user.username,
                         every_hours=_hours(values["every"], "Every"),
                         max_age_hours=_hours(values["max_age"], "Stale after"), list_format=fmt,
                         default_priority=priority, data_dir=settings.data_dir,
                         credentials=_credentials_from(form, values["auth"]))
    except ValueError as refused:  # SourceRefused, or a format option that is not one
        return await _source_page(request, db, settings, hotlist_id, form=values, status=422,
                                  error=f"{str(refused)[:1].upper()}{str(refused)[1:]}.")
    return await _source_page(request, db, settings, hotlist_id,
                              notice="Saved. The server looks at the source within a minute.")


@post("/hotlists/{hotlist_id:int}/source/refresh", include_in_schema=False, guards=SUPERVISOR, status_code=200)
async def source_refresh(request: Request, hotlist_id: FromPath[int], db: NamedDependency[Database],
                         settings: NamedDependency[Settings], notifier: NamedDependency[Notifier]) -> Response:
    """Looks now, whatever the schedule; the page then says how it went."""
    retro = await refresh_list_now(db, settings, hotlist_id, actor=request.user.username)
    if retro is None:
        return await _source_page(request, db, settings, hotlist_id, status=422, error="This list has no source.")
    notifier.enqueue(retro)
    source = await queries_sources.source_for_list(db.reader, hotlist_id)
    if source["last_error"]:
        return await _source_page(request, db, settings, hotlist_id, status=422,
                                  error=f"The refresh failed and the entries were kept: {source['last_error']}")
    done = "Refreshed" if source["last_ok_at"] == source["last_attempt_at"] else "Nothing new at the source"
    return await _source_page(request, db, settings, hotlist_id,
                              notice=f"{done}; {len(retro)} alert(s) for earlier sightings.")


@post("/hotlists/{hotlist_id:int}/source/remove", include_in_schema=False, guards=SUPERVISOR, status_code=303)
async def source_remove(request: Request, hotlist_id: FromPath[int], db: NamedDependency[Database],
                        settings: NamedDependency[Settings]) -> Redirect:
    """The list keeps its entries and stops refreshing; its stored credentials are deleted."""
    await remove_source(db, settings.data_dir, hotlist_id, actor=request.user.username)
    return Redirect(f"/hotlists/{hotlist_id}", status_code=303)


HOTLIST_SOURCE_HANDLERS = [source_page, source_set, source_refresh, source_remove]
