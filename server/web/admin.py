"""Supervisor and admin pages: hot lists (entries, CSV import) and cameras (health, tokens).
Users are managed in web/users.py.

Each URL answers a whole page, or the fragment htmx asks for (HX-Request). Forms work without
JavaScript; a change answers with the updated page, or the form again with status 422 and an
error that names what is wrong. Every change is audited in the transaction that makes it.
"""

from __future__ import annotations

import asyncio
import re
from datetime import tzinfo
from math import ceil

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from contract.plates import fold, plate_or_none
from server import audit
from server.alerts import raise_retro_alerts
from server.cameras import CameraRefused, add_camera
from server.clock import DAY_MS, now_ms
from server.hotlist_sources import is_stale
from server.hotlists import (IMPORT_OPTIONS, LIST_KINDS, MAX_PLATE, ExpiryOutOfRange, ImportSuperseded, InvalidHotlist,
                             ListWouldShrink, import_list, options_format, parse_expiry, parse_list, remembered_options)
from server.notify import Notifier
from server.settings import ROLES, Settings
from server.store import queries_admin
from server.store.db import Database
from server.web.base import form_field, page_role, render

PAGE_SIZE = 50
STALE_LIST_MS = 2 * DAY_MS  # state feeds refresh daily: two days without one is worth a look
SUPERVISOR, ADMIN = [page_role("supervisor")], [page_role("admin")]


def _page(request: Request, full: str, fragment: str | None, context: dict, status: int = 200) -> Template:
    return render(request, full, fragment, {**context, "now": now_ms(), "kinds": LIST_KINDS, "roles": ROLES}, status)


# --- hot lists -------------------------------------------------------------------------------

async def _lists_context(db: Database, hotlist_id: int | None = None) -> list[dict]:
    now = now_ms()
    rows = await queries_admin.hotlists_overview(db.reader, now, hotlist_id)
    return [{**dict(r), "stale": _stale(r, now)} for r in rows]


def _stale(row, now: int) -> bool:
    """A list with a source is stale past the source's maximum age (never refreshed counts); one
    imported by hand after STALE_LIST_MS."""
    if row["source_name"] is not None:
        return is_stale(row["refreshed_at"], row["max_age_hours"], now)
    return bool(row["refreshed_at"]) and now - row["refreshed_at"] > STALE_LIST_MS


@get("/hotlists", include_in_schema=False, guards=SUPERVISOR)
async def hotlists_page(request: Request, db: NamedDependency[Database]) -> Template:
    return _page(request, "hotlists.html", None, {"lists": await _lists_context(db), "form": {}})


@post("/hotlists", include_in_schema=False, guards=SUPERVISOR, status_code=303)
async def hotlist_create(request: Request, db: NamedDependency[Database]) -> Response:
    form = await request.form()
    values = {"name": form_field(form, "name", 200), "kind": form_field(form, "kind"), "source": form_field(form, "source", 300)}
    error = None
    if not values["name"] or len(values["name"]) > 80:
        error = "Give the list a name of 1 to 80 characters."
    elif values["kind"] not in LIST_KINDS:
        error = "Choose what kind of list it is."
    elif len(values["source"]) > 200:
        error = "Keep the source under 200 characters."
    async with db.transaction() as conn:
        if error is None and await queries_admin.hotlist_name_taken(conn, values["name"]):
            error = f"A list named '{values['name']}' already exists."
        if error is None:
            hotlist_id = await queries_admin.insert_hotlist(conn, *values.values(), now_ms())
            await audit.record(conn, request.user.username, "hotlist.create", hotlist=values["name"],
                               kind=values["kind"], source=values["source"])
    if error:
        context = {"lists": await _lists_context(db), "form": values, "error": error}
        return _page(request, "hotlists.html", None, context, status=422)
    return Redirect(f"/hotlists/{hotlist_id}", status_code=303)


async def _list_page(request: Request, db: Database, hotlist_id: int, *, q: str = "", page: int = 1,
                     status: int = 200, **extra) -> Template:
    """The list's page (or its `_hotlist.html` fragment); `extra` carries notices and errors."""
    found = await _lists_context(db, hotlist_id)
    if not found:
        raise NotFoundException(f"no hot list {hotlist_id}")
    contains = plate_or_none(q)  # None: no plate has such a character, nothing matches
    total = await queries_admin.count_entries(db.reader, hotlist_id, contains) if contains is not None else 0
    pages = max(1, ceil(total / PAGE_SIZE))
    page = min(max(page, 1), pages)
    entries = await queries_admin.entries_page(db.reader, hotlist_id, contains, PAGE_SIZE,
                                               (page - 1) * PAGE_SIZE) if total else []
    context = {"hotlist": found[0], "entries": entries, "q": q, "page": page, "pages": pages, "matching": total,
               "form": {}, "import_form": remembered_options(found[0]), **extra}
    fragment = "_hotlist_entries.html" if request.headers.get("hx-target") == "entries" else "_hotlist.html"
    return _page(request, "hotlist.html", fragment, context, status)


@get("/hotlists/{hotlist_id:int}", include_in_schema=False, guards=SUPERVISOR)
async def hotlist_page(request: Request, hotlist_id: FromPath[int], db: NamedDependency[Database],
                       q: FromQuery[str] = "", page: FromQuery[int] = 1) -> Template:
    return await _list_page(request, db, hotlist_id, q=q[:20], page=page)


def entry_from_form(form, added_by: str, zone: tzinfo) -> tuple[dict | None, str | None, dict]:
    """A hand-added entry, checked like a CSV line; (entry, None, values) or (None, error, values).
    An expiry date ends at the end of that day in the department's time zone."""
    values = {name: form_field(form, name) for name in ("plate", "state", "reason", "expires")}
    plate, state = plate_or_none(values["plate"]), values["state"].upper()
    expires, bad_expiry = None, None
    try:
        expires = parse_expiry(values["expires"], zone)
    except ExpiryOutOfRange as exc:
        bad_expiry = f"The expiry {values['expires']} {exc}."
    except ValueError:
        bad_expiry = "The expiry must be a date (YYYY-MM-DD), or empty for none."
    if plate is None:
        error = "A plate has only letters A–Z and digits (spaces, hyphens and dots are dropped)."
    elif not plate:
        error = "Enter the plate: letters and digits."
    elif len(plate) > MAX_PLATE:
        error = f"A plate has at most {MAX_PLATE} letters and digits."
    elif state and not re.fullmatch(r"[A-Z]{2}", state):
        error = "The state is two letters, e.g. CA, or empty."
    elif not values["reason"]:
        error = "Give the reason: officers read it in the alert."
    elif bad_expiry:
        error = bad_expiry
    elif expires is not None and expires <= now_ms():
        error = "That expiry date has already passed."
    else:
        entry = {"plate": values["plate"], "plate_norm": plate, "plate_folded": fold(plate), "state": state,
                 "reason": values["reason"], "expires_at": expires, "added_by": added_by}
        return entry, None, values
    return None, error, values


@post("/hotlists/{hotlist_id:int}/entries", include_in_schema=False, guards=SUPERVISOR, status_code=200)
async def entry_add(request: Request, hotlist_id: FromPath[int], db: NamedDependency[Database],
                    settings: NamedDependency[Settings], notifier: NamedDependency[Notifier]) -> Template:
    """Adding a plate also looks back: reads of it within retention raise retro alerts now."""
    entry, error, values = entry_from_form(await request.form(), request.user.username, settings.zone)
    retro: list[int] = []
    async with db.transaction() as conn:
        hotlist = await _hotlist_or_404(conn, hotlist_id)
        listed = entry and await queries_admin.entry_by_plate(conn, hotlist_id, entry["plate_norm"])
        if listed:
            error = (f"{entry['plate_norm']} is already on this list ({listed['reason'] or 'no reason'}): "
                     "remove it first to change it.")
        if error is None:
            now = now_ms()
            await queries_admin.insert_entry(conn, hotlist_id, entry, now)
            since = settings.retention_cutoff(now)
            retro = await raise_retro_alerts(conn, hotlist_id, {entry["plate_norm"]}, since, now)
            await audit.record(conn, request.user.username, "hotlist.entry_add", hotlist=hotlist["name"],
                               plate=entry["plate_norm"], state=entry["state"], reason=entry["reason"],
                               expires=values["expires"] or None, retro_alerts=len(retro))
    if error:
        return await _list_page(request, db, hotlist_id, status=422, error=error, form=values)
    notifier.enqueue(retro)
    notice = f"Added {entry['plate_norm']}."
    if retro:
        notice += f" It was read earlier: {len(retro)} alert(s) raised for those sightings."
    return await _list_page(request, db, hotlist_id, notice=notice)


async def _hotlist_or_404(conn, hotlist_id: int):
    hotlist = await queries_admin.hotlist_by_id(conn, hotlist_id)
    if hotlist is None:
        raise NotFoundException(f"no hot list {hotlist_id}")
    return hotlist


@post("/hotlists/{hotlist_id:int}/entries/{entry_id:int}/remove", include_in_schema=False, guards=SUPERVISOR,
      status_code=200)
async def entry_remove(request: Request, hotlist_id: FromPath[int], entry_id: FromPath[int],
                       db: NamedDependency[Database]) -> Template:
    """Asks first: htmx confirms in a dialog and sends confirm=yes; without JavaScript a page asks."""
    form = await request.form()
    hotlist = await _hotlist_or_404(db.reader, hotlist_id)
    entry = await queries_admin.entry_by_id(db.reader, hotlist_id, entry_id)
    if entry is None:
        return await _list_page(request, db, hotlist_id, status=422, error="That entry is no longer on the list.")
    if form.get("confirm") != "yes":
        return _page(request, "hotlist_remove.html", None, {"hotlist": hotlist, "entry": entry})
    note = form_field(form, "note")
    async with db.transaction() as conn:
        if await queries_admin.delete_entry(conn, entry_id):
            await audit.record(conn, request.user.username, "hotlist.entry_remove", hotlist=hotlist["name"],
                               plate=entry["plate_norm"], reason=entry["reason"], note=note)
    return await _list_page(request, db, hotlist_id, notice=f"Removed {entry['plate_norm']} from {hotlist['name']}.")


@post("/hotlists/{hotlist_id:int}/import", include_in_schema=False, guards=SUPERVISOR, status_code=200)
async def hotlist_import(request: Request, hotlist_id: FromPath[int], db: NamedDependency[Database],
                         settings: NamedDependency[Settings], notifier: NamedDependency[Notifier]) -> Template:
    """Replaces the list from an upload in any of the import formats: all lines are checked first,
    as the CLI import does. A successful import remembers its options for the list."""
    form = await request.form()
    upload, skip_bad, force = form.get("file"), form.get("skip_bad") == "yes", form.get("force") == "yes"
    hotlist = await _hotlist_or_404(db.reader, hotlist_id)
    typed = {name: form_field(form, name, 200) for name in IMPORT_OPTIONS}
    try:
        fmt, priority = options_format(typed)
    except ValueError as exc:
        return await _list_page(request, db, hotlist_id, status=422, import_error=f"Import options: {exc}.",
                                import_form=typed)
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _list_page(request, db, hotlist_id, status=422, import_error="Choose a file to import.",
                                import_form=typed)
    # Off the event loop: a state feed of 100,000s of lines takes seconds to check.
    parsed = await asyncio.to_thread(parse_list, await upload.read(), fmt, f"import:{upload.filename}", settings.zone)
    try:
        result = await import_list(db, hotlist["name"], parsed, actor=request.user.username, skip_bad=skip_bad,
                                   force=force, settings=settings, list_format=fmt, default_priority=priority)
    except InvalidHotlist:
        error = (f"{len(parsed.errors)} bad line(s) in {upload.filename}: nothing was imported. Fix them, "
                 "or tick “skip bad lines” to import the others.")
    except ListWouldShrink as exc:
        error = f"{upload.filename}: {exc}, so nothing was imported. Tick “Replace even so” to import it anyway."
    except ImportSuperseded as exc:
        error = f"{exc}."
    else:
        notifier.enqueue(result.retro_alerts)
        notice = (f"Imported {upload.filename}: {result.total} entries ({result.added} new, {result.removed} "
                  f"removed, {result.skipped} bad lines skipped); {len(result.retro_alerts)} alert(s) for earlier "
                  "sightings.")
        return await _list_page(request, db, hotlist_id, notice=notice, bad_lines=parsed.errors)
    return await _list_page(request, db, hotlist_id, status=422, import_error=error, bad_lines=parsed.errors,
                            import_form=typed)


# --- cameras ---------------------------------------------------------------------------------

async def _cameras_page(request: Request, db: Database, status: int = 200, **extra) -> Template:
    cameras = await queries_admin.camera_health(db.reader, now_ms())
    return _page(request, "cameras.html", "_cameras.html", {"cameras": cameras, "form": {}, **extra}, status)


@get("/cameras", include_in_schema=False, guards=SUPERVISOR)
async def cameras_page(request: Request, db: NamedDependency[Database]) -> Template:
    return await _cameras_page(request, db)


@post("/cameras", include_in_schema=False, guards=ADMIN, status_code=200)
async def camera_add(request: Request, db: NamedDependency[Database]) -> Template:
    """The token is shown on the answer to this request and nowhere else: only its hash is kept."""
    form = await request.form()
    values = {"name": form_field(form, "name", 200), "location": form_field(form, "location", 300)}
    try:
        async with db.transaction() as conn:
            token = await add_camera(conn, request.user.username, values["name"], values["location"])
    except CameraRefused as refused:
        return await _cameras_page(request, db, status=422, error=str(refused), form=values)
    response = _page(request, "camera_token.html", None, {"camera": values, "token": token})
    response.headers["Cache-Control"] = "no-store"
    return response


async def _set_camera(request: Request, db: Database, camera_id: int, disabled: bool) -> Template:
    async with db.transaction() as conn:
        camera = await queries_admin.camera_by_id(conn, camera_id)
        if camera is None:
            raise NotFoundException(f"no camera {camera_id}")
        if await queries_admin.set_camera_disabled(conn, camera_id, disabled):
            await audit.record(conn, request.user.username, "camera.disable" if disabled else "camera.enable",
                               camera=camera["name"])
    state = "disabled: its reads are refused within 30 seconds" if disabled else "enabled"
    return await _cameras_page(request, db, notice=f"Camera {camera['name']} {state}.")


@post("/cameras/{camera_id:int}/disable", include_in_schema=False, guards=ADMIN, status_code=200)
async def camera_disable(request: Request, camera_id: FromPath[int], db: NamedDependency[Database]) -> Template:
    return await _set_camera(request, db, camera_id, True)


@post("/cameras/{camera_id:int}/enable", include_in_schema=False, guards=ADMIN, status_code=200)
async def camera_enable(request: Request, camera_id: FromPath[int], db: NamedDependency[Database]) -> Template:
    return await _set_camera(request, db, camera_id, False)


ADMIN_HANDLERS = [
    hotlists_page, hotlist_create, hotlist_page, entry_add, entry_remove, hotlist_import,
    cameras_page, camera_add, camera_disable, camera_enable,
]
