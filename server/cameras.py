"""Adding a camera, one set of rules for the web app's Cameras page and `platewatch camera add`:
a name of 1 to 64 characters, unique whatever its case, and a location under 200. The camera's
token is returned once; only its hash is kept."""

from __future__ import annotations

from server import audit
from server.auth import CAMERA_TOKEN_PREFIX, new_token
from server.clock import now_ms
from server.store import queries, queries_admin


class CameraRefused(ValueError):
    """A camera that may not be added; the message says why, as a form shows it."""


def camera_problem(name: str, location: str) -> str | None:
    if not name or len(name) > 64:
        return "Give the camera a name of 1 to 64 characters."
    if len(location) > 200:
        return "Keep the location under 200 characters."
    return None


async def add_camera(conn, actor: str, name: str, location: str) -> str:
    """Add a camera and return its token (CameraRefused says why not)."""
    if problem := camera_problem(name, location):
        raise CameraRefused(problem)
    if await queries_admin.camera_name_taken(conn, name):
        raise CameraRefused(f"A camera named '{name}' already exists.")
    token, hashed = new_token(CAMERA_TOKEN_PREFIX)
    await queries.insert_camera(conn, name, location, hashed, now_ms())
    await audit.record(conn, actor, "camera.add", camera=name, location=location)
    return token
