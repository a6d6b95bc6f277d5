"""JSON API under /api/v1 (OpenAPI at /schema). Thin: parse, call a service, shape the answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import (
    ClientException, NotAuthorizedException, NotFoundException, PermissionDeniedException, TooManyRequestsException,
)
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_409_CONFLICT, HTTP_415_UNSUPPORTED_MEDIA_TYPE

from contract.plates import IMAGE_FIELDS
from contract.wire import (
    Alert, AlertUpdate, CameraHeartbeat, DutyIn, DutyState, PushKey, PushSubscriptionIn, ReadAccepted, ReadIn,
    TokenRequest, TokenResponse,
)
from server import alerts, audit, duty, mfa, notify, vendor_reads
from server.alerts import alert_view
from server.api_docs import CAMERA_TOKEN, USER_TOKEN, ReadsOperation, vendor_operation
from server.auth import (
    Camera, SignInRefused, User, check_sign_in, issue_token, requires_camera, requires_role,
)
from server.clock import from_ms, now_ms, to_ms
from server.ingest import Ingest, InvalidUpload, UploadTooLarge
from server.params import ROW_ID
from server.push import VapidKeys
from server.settings import Settings
from server.store import queries
from server.store.db import Database


class Conflict(ClientException):
    status_code = HTTP_409_CONFLICT


class UnsupportedMediaType(ClientException):
    status_code = HTTP_415_UNSUPPORTED_MEDIA_TYPE


# The refusals each kind of route may answer with, for the schema (`raises`): Litestar adds 400 itself
# to a route with a body or parameters, and answers 413 to any body over settings.max_request_bytes.
CAMERA_ERRORS = [NotAuthorizedException, RequestEntityTooLarge]
USER_ERRORS = [NotAuthorizedException, PermissionDeniedException]
BODY_ERRORS = [RequestEntityTooLarge]


def decode_read(raw: bytes | str) -> ReadIn:
    try:
        read = msgspec.json.decode(raw, type=ReadIn)
    except msgspec.ValidationError as exc:
        raise ClientException(f"invalid read: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ClientException(f"invalid read: malformed JSON ({exc})") from None
    json.loads(raw, object_pairs_hook=_refuse_repeated_keys)  # msgspec keeps the last of a key given twice
    return read


def _refuse_repeated_keys(pairs: list[tuple[str, object]]) -> None:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        repeated = next(key for i, key in enumerate(keys) if key in keys[:i])
        raise ClientException(f"invalid read: key {repeated!r} given twice in one object")


async def read_form(request: Request, json_field: str, files: dict[str, str], what: str,
                    ) -> tuple[bytes | str, dict[str, bytes]]:
    """A form with JSON in `json_field` and JPEG files (form field → image field); nothing else."""
    form = await request.form()
    unknown = sorted(set(form.keys()) - {json_field, *files})
    if unknown:
        raise ClientException(f"unknown form field(s): {', '.join(unknown)}")
    for name in (json_field, *files):
        if len(form.getall(name, [])) > 1:
            raise ClientException(f"{name}: sent {len(form.getall(name))} times; one at most")
    raw = form.get(json_field)
    if raw is None:
        raise ClientException(f"missing form field '{json_field}' ({what} as JSON)")
    if isinstance(raw, UploadFile):
        raw = await raw.read()
    images = {}
    for name, field in files.items():
        upload = form.get(name)
        if upload is not None:
            if not isinstance(upload, UploadFile):
                raise ClientException(f"{name}: expected a JPEG file upload")
            images[field] = await upload.read()
    return raw, images


async def read_multipart(request: Request) -> tuple[ReadIn, dict[str, bytes]]:
    raw, images = await read_form(request, "read", {field: field for field in IMAGE_FIELDS}, "the read")
    return decode_read(raw), images


READ_ERRORS = [ClientException, *CAMERA_ERRORS, UnsupportedMediaType]
RESEND = {HTTP_200_OK: ResponseSpec(data_container=ReadAccepted, description="A resend of a read already stored "
                                                                             "(same vehicle): stored once; or a "
                                                                             "higher revision folded into it")}


class ReadsController(Controller):
    path = "/api/v1/reads"
    guards = [requires_camera]
    security = CAMERA_TOKEN

    @post("/", status_code=HTTP_201_CREATED, summary="A camera posts one plate read (JSON or multipart)",
          operation_class=ReadsOperation, raises=READ_ERRORS, responses=RESEND)
    async def create(self, request: Request, ingest: NamedDependency[Ingest]) -> Response[ReadAccepted]:
        content_type, _ = request.content_type
        if content_type == "multipart/form-data":
            read, images = await read_multipart(request)
        elif content_type == "application/json":
            read, images = decode_read(await request.body()), {}
        else:
            raise UnsupportedMediaType("Content-Type must be application/json or multipart/form-data")
        return await accept_read(ingest, request.user, read, images)

    @post("/platerecognizer", status_code=HTTP_201_CREATED, raises=READ_ERRORS, responses=RESEND,
          summary="Plate Recognizer Stream's webhook: one vehicle's plate read",
          operation_class=vendor_operation(vendor_reads.PlateRecognizerWebhook, "Stream's webhook JSON",
                                           form_field="json", image_field="upload"))
    async def plate_recognizer(self, request: Request, ingest: NamedDependency[Ingest]) -> Response[ReadAccepted]:
        # Stream posts its JSON as the body, or in a form field `json` with the frame as `upload`.
        raw, images = await vendor_body(request, "json", {"upload": "vehicle_image"})
        read = vendor_read(vendor_reads.plate_recognizer_read, raw, request.user)
        return await accept_read(ingest, request.user, read, images)

    @post("/openalpr", status_code=HTTP_201_CREATED, raises=READ_ERRORS, responses=RESEND,
          summary="The OpenALPR agent's alpr_group: one vehicle's grouped plate reads",
          operation_class=vendor_operation(vendor_reads.OpenAlprGroup, "An alpr_group JSON"))
    async def openalpr(self, request: Request, ingest: NamedDependency[Ingest]) -> Response[ReadAccepted]:
        raw, _ = await vendor_body(request)  # the agent posts JSON only
        return await accept_read(ingest, request.user, vendor_read(vendor_reads.openalpr_read, raw, request.user))


async def accept_read(ingest: Ingest, camera: Camera, read: ReadIn, images: dict[str, bytes] | None = None,
                      ) -> Response[ReadAccepted]:
    """Store a camera's read through ingest: 201 when new, 200 for a resend or a refinement."""
    try:
        accepted = await ingest.store(camera, read, images or {})
    except UploadTooLarge as exc:
        raise RequestEntityTooLarge(str(exc)) from None
    except InvalidUpload as exc:
        raise ClientException(str(exc)) from None
    created = not (accepted.duplicate or accepted.revised)
    return Response(accepted, status_code=HTTP_201_CREATED if created else HTTP_200_OK)


async def vendor_body(request: Request, json_field: str | None = None, files: dict[str, str] | None = None,
                      ) -> tuple[bytes | str, dict[str, bytes]]:
    """A vendor's JSON body, or (where it has one) its form: JSON in `json_field`, images in `files`."""
    content_type = request.content_type[0]
    if content_type == "application/json":
        return await request.body(), {}
    if json_field and content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return await read_form(request, json_field, files or {}, "the webhook")
    raise UnsupportedMediaType("Content-Type must be application/json"
                               + (f", or a form with the JSON in field '{json_field}'" if json_field else ""))


def vendor_read(parse: Callable[[bytes | str, int], ReadIn], raw: bytes | str, camera: Camera) -> ReadIn:
    """Another ALPR system's JSON as one read of the calling camera (server/vendor_reads.py)."""
    try:
        read = parse(raw, camera.id)
    except vendor_reads.VendorReadRefused as exc:
        raise ClientException(str(exc)) from None
    json.loads(raw, object_pairs_hook=_refuse_repeated_keys)  # msgspec keeps the last of a key given twice
    return read


class CamerasController(Controller):
    path = "/api/v1/cameras"

    @post("/heartbeat", guards=[requires_camera], security=CAMERA_TOKEN, raises=CAMERA_ERRORS,
          status_code=HTTP_200_OK, summary="A worker reports camera health")
    async def heartbeat(self, request: Request, data: JSONBody[CameraHeartbeat], db: NamedDependency[Database]) -> dict[str, bool]:
        camera: Camera = request.user
        health = msgspec.structs.asdict(data)
        health["last_frame_at"] = to_ms(data.last_frame_at) if data.last_frame_at else None
        async with db.transaction() as conn:
            await queries.record_heartbeat(conn, camera.id, now_ms(), health)
        return {"ok": True}


async def token_second_factor(db: Database, settings: Settings, user, otp: str | None) -> str | None:
    """'totp' or 'recovery' for an enrolled user whose otp is good; None for a user without."""
    if user["totp_secret"] is not None:
        if not otp:
            raise SignInRefused(locked=False, reason="this account uses two-factor sign-in: send the "
                                                     "authenticator app's current code as otp")
        return await mfa.second_factor(db, user, otp, settings.lockout, via="api")
    if user["role"] in settings.mfa_required_roles:
        raise PermissionDeniedException(f"the {user['role']} role must use two-factor sign-in: "
                                        "set it up on the Account page of the web app first")
    return None


class AuthController(Controller):
    path = "/api/v1/auth"

    @post("/token", status_code=HTTP_200_OK, summary="Exchange a username and password for an API bearer token",
          raises=[NotAuthorizedException, PermissionDeniedException, TooManyRequestsException, *BODY_ERRORS],
          description="A user with two-factor sign-in also sends `otp`: the authenticator app's current "
                      "6-digit code, or one of their recovery codes. Without it the answer is 401 and says so. "
                      "A user whose password an admin set (a reset, or a new user) gets 403 until they change "
                      "it on the Account page of the web app.")
    async def token(self, data: JSONBody[TokenRequest], db: NamedDependency[Database], settings: NamedDependency[Settings]) -> TokenResponse:
        try:
            user = await check_sign_in(db, data.username, data.password, settings.lockout, via="api")
            if user["must_change_password"]:  # before the code: a refused request must not use one up
                raise PermissionDeniedException("your password was set by an administrator: change it on the "
                                                "Account page of the web app first")
            method = await token_second_factor(db, settings, user, data.otp)
        except SignInRefused as refused:
            if refused.locked:
                raise TooManyRequestsException(str(refused)) from None
            raise NotAuthorizedException(str(refused)) from None
        async with db.transaction() as conn:
            token, expires_at = await issue_token(conn, user["id"], "api", settings.api_token_ttl_s, now_ms())
            await audit.record(conn, user["username"], "auth.token", **({"mfa": method} if method else {}))
        return TokenResponse(token=token, expires_at=from_ms(expires_at), role=user["role"])


class PushController(Controller):
    path = "/api/v1/push"

    @get("/key", summary="The server's VAPID public key (applicationServerKey)")
    async def key(self, vapid: NamedDependency[VapidKeys]) -> PushKey:
        return PushKey(public_key=vapid.public_key)

    @post("/subscriptions", guards=[requires_role("officer")], security=USER_TOKEN, raises=[*USER_ERRORS, *BODY_ERRORS],
          status_code=HTTP_201_CREATED)
    async def subscribe(
        self, request: Request, data: JSONBody[PushSubscriptionIn], db: NamedDependency[Database],
        settings: NamedDependency[Settings],
    ) -> dict[str, int]:
        try:
            return {"id": await notify.subscribe(db, request.user, data, settings.push_allow_http)}
        except ValueError as exc:
            raise ClientException(str(exc)) from None

    @post("/unsubscribe", guards=[requires_role("officer")], security=USER_TOKEN, raises=[*USER_ERRORS, *BODY_ERRORS],
          status_code=HTTP_200_OK)
    async def unsubscribe(self, request: Request, data: JSONBody[PushSubscriptionIn], db: NamedDependency[Database]) -> dict[str, bool]:
        return {"removed": await notify.unsubscribe(db, request.user, data.endpoint)}


class DutyController(Controller):
    path = "/api/v1/duty"

    @post("/", guards=[requires_role("officer")], security=USER_TOKEN, raises=[*USER_ERRORS, *BODY_ERRORS],
          status_code=HTTP_200_OK, summary="Go on or off duty",
          description="Web push alerts reach only officers on duty (the live feed shows every alert "
                      "regardless). `on: true` starts a shift of the department's `shift_hours` (12 by "
                      "default) from now, a fresh one if already on duty; the officer is off duty by "
                      "itself when it ends. `on: false` ends it at once. Answers when the shift ends, or "
                      "null when off duty. Audited as `duty.on` / `duty.off`.")
    async def switch(self, request: Request, data: JSONBody[DutyIn], db: NamedDependency[Database],
                     settings: NamedDependency[Settings]) -> DutyState:
        user: User = request.user
        async with db.transaction() as conn:
            until = await duty.set_duty(conn, user.id, user.username, data.on, now=now_ms(),
                                        shift_hours=settings.shift_hours, via="api")
        return DutyState(on_duty_until=from_ms(until) if until is not None else None)


class AlertsController(Controller):
    path = "/api/v1/alerts"
    guards = [requires_role("officer")]
    security = USER_TOKEN

    @get("/", summary="Alerts, newest first", raises=USER_ERRORS)
    async def list(
        self, db: NamedDependency[Database], settings: NamedDependency[Settings], status: FromQuery[str | None] = None,
        before: Annotated[int | None, ROW_ID] = None, limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    ) -> list[Alert]:
        rows = await queries.list_alerts(db.reader, status=status, before_id=before, limit=limit)
        return [alert_view(row, settings.base_url) for row in rows]

    @get("/{alert_id:int}", summary="One alert", raises=[*USER_ERRORS, NotFoundException])
    async def show(self, alert_id: FromPath[int], db: NamedDependency[Database], settings: NamedDependency[Settings]) -> Alert:
        row = await queries.alert_by_id(db.reader, alert_id)
        if row is None:
            raise NotFoundException(f"no alert {alert_id}")
        return alert_view(row, settings.base_url)

    @patch("/{alert_id:int}", summary="Acknowledge an alert or record its outcome",
           description="The alert page's rules: a hit is confirmed only once checked against NCIC, the state "
                       "system or dispatch (`verified_with`; a 400 names it when missing), and an outcome "
                       "recorded on a new alert acknowledges it first.",
           raises=[*USER_ERRORS, NotFoundException, Conflict, *BODY_ERRORS])
    async def update(self, request: Request, alert_id: FromPath[int], data: JSONBody[AlertUpdate], db: NamedDependency[Database], settings: NamedDependency[Settings]) -> Alert:
        user: User = request.user
        async with db.transaction() as conn:
            if await queries.alert_by_id(conn, alert_id) is None:
                raise NotFoundException(f"no alert {alert_id}")
            if data.status == "acknowledged":
                if not await alerts.acknowledge(conn, alert_id, user.username, now_ms(), data.note):
                    raise Conflict(f"alert {alert_id} is not new; it cannot be acknowledged again")
            else:
                try:
                    await alerts.record_outcome(conn, alert_id, user.username, data.status, data.verified_with,
                                                data.note, now_ms())
                except alerts.OutcomeRefused as exc:
                    raise ClientException(f"{exc.field}: {exc}") from None
        return alert_view(await queries.alert_by_id(db.reader, alert_id), settings.base_url)


@get("/healthz", summary="Liveness", include_in_schema=False)
async def healthz(request: Request, db: NamedDependency[Database]) -> dict[str, str]:
    await queries.ping(db.reader)
    mqtt = request.app.state.get("mqtt")  # the broker's connection, where mqtt_url is set
    return {"status": "ok", **({"mqtt": mqtt.state} if mqtt is not None else {})}


API_HANDLERS = [ReadsController, CamerasController, AuthController, PushController, DutyController, AlertsController,
                healthz]
