"""What the web app loads besides its pages: plate and vehicle images (signed-in only), the phone's
push subscription, and the progressive web app's service worker, manifest and offline page."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.response import File, Template

from contract.wire import PushSubscriptionIn
from server import notify
from server.clock import from_ms
from server.settings import Settings
from server.store import queries_holds as qh
from server.store.db import Database
from server.web.base import WEB, page_role

UUID_NAME = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-(plate|vehicle)\.jpg")


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
    try:
        return {"id": await notify.subscribe(db, request.user, data, settings.push_allow_http)}
    except ValueError as exc:
        raise ClientException(str(exc)) from None


@post("/push/unsubscribe", include_in_schema=False, guards=[page_role("officer")], status_code=200)
async def push_unsubscribe(request: Request, data: JSONBody[PushSubscriptionIn], db: NamedDependency[Database]) -> dict:
    return {"removed": await notify.unsubscribe(db, request.user, data.endpoint)}


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


FILE_HANDLERS = [image, push_subscribe, push_unsubscribe, service_worker, manifest, offline]
