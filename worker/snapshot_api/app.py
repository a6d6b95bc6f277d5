"""The HTTP side: Litestar routes in Plate Recognizer's and CodeProject.AI's shapes, served by
uvicorn in a thread of the worker process.

    POST /v1/plate-reader/            Plate Recognizer Snapshot API (`upload`, `regions`, `camera_id`,
                                      `timestamp`, `config`, `mmc`)
    POST /v1/vision/alpr              CodeProject.AI ALPR (`upload`), as Blue Iris calls it
    both also under /cameras/<token>/ for clients that cannot send `Authorization: Token <token>`

Errors come in the caller's dialect: `{"detail": ...}` from the Plate Recognizer route,
`{"success": false, "error": ...}` from the CodeProject.AI one.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn
from litestar import Litestar, Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import FromPath

from worker.snapshot_api.answers import alpr_answer, plate_reader_answer
from worker.snapshot_api.service import ApiError, SnapshotService

log = logging.getLogger("worker.snapshot_api")

FORM_SLACK_BYTES = 256 * 1024  # multipart framing and the other fields, on top of the image


def error_response(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    if request.url.path.rstrip("/").endswith("/vision/alpr"):
        body: dict = {"success": False, "error": message, "code": status}
    else:
        body = {"detail": message}
    return Response(body, status_code=status, headers=headers or {})


def build_app(service: SnapshotService) -> Litestar:
    async def plate_reader_answering(request: Request, token: str | None) -> dict:
        done = await service.recognise(request, token)
        regions = [str(r).lower() for r in done.form.getall("regions", []) if r]
        return plate_reader_answer(done.found, processing_ms=1000 * (time.perf_counter() - done.started),
                                   timestamp=done.captured_at, camera_id=done.form.get("camera_id") or None,
                                   filename=done.filename, region=regions[0] if regions else "us")

    async def alpr_answering(request: Request, token: str | None) -> dict:
        done = await service.recognise(request, token)
        return alpr_answer(done.found, inference_ms=done.inference_ms,
                           process_ms=1000 * (time.perf_counter() - done.started))

    # Each route twice: with the token in the path, and without (a header, or anonymous). The
    # token is never taken from the query string, where proxies and logs would keep it.
    @post("/v1/plate-reader/", status_code=201)
    async def plate_reader(request: Request) -> dict:
        return await plate_reader_answering(request, None)

    @post("/cameras/{token:str}/v1/plate-reader/", status_code=201)
    async def camera_plate_reader(request: Request, token: FromPath[str]) -> dict:
        return await plate_reader_answering(request, token)

    @post("/v1/vision/alpr", status_code=200)
    async def codeproject_alpr(request: Request) -> dict:
        return await alpr_answering(request, None)

    @post("/cameras/{token:str}/v1/vision/alpr", status_code=200)
    async def camera_codeproject_alpr(request: Request, token: FromPath[str]) -> dict:
        return await alpr_answering(request, token)

    @get("/healthz")
    async def healthz() -> dict:
        return {"ok": True}

    def on_api_error(request: Request, exc: ApiError) -> Response:
        return error_response(request, exc.status, exc.message, exc.headers)

    def on_too_large(request: Request, _exc: Exception) -> Response:
        return error_response(request, 413, f"the upload is over the {service.max_bytes / 1e6:g} MB limit "
                                            "(snapshot_api.max_upload_mb)")

    def on_http_error(request: Request, exc: HTTPException) -> Response:
        return error_response(request, exc.status_code, str(exc.detail))

    return Litestar(
        [plate_reader, camera_plate_reader, codeproject_alpr, camera_codeproject_alpr, healthz], openapi_config=None,
        logging_config=None,  # the worker configures logging: no second handler on its root logger
        request_max_body_size=service.max_bytes + FORM_SLACK_BYTES,
        exception_handlers={ApiError: on_api_error, RequestEntityTooLarge: on_too_large, HTTPException: on_http_error},
    )


class SnapshotApiServer:
    """The API's listening socket (bound at once, so a taken port fails the worker's start with a
    reason) and the uvicorn thread that serves it until the worker stops."""

    def __init__(self, service: SnapshotService, stop: threading.Event) -> None:
        host, port = service.settings.address()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
        except OSError as exc:
            self.socket.close()
            raise OSError(f"snapshot_api: cannot listen on {service.settings.listen}: {exc.strerror or exc}") from None
        self.socket.listen(64)
        bound_host, bound_port = self.socket.getsockname()[:2]
        self.url = f"http://{f'[{bound_host}]' if family == socket.AF_INET6 else bound_host}:{bound_port}"
        config = uvicorn.Config(build_app(service), log_config=None, log_level="warning", access_log=False,
                                server_header=False, timeout_graceful_shutdown=2)  # the worker's logging as it is
        self.server = uvicorn.Server(config)
        self.stop = stop
        self.thread = threading.Thread(target=self._serve, name="snapshot-api", daemon=True)

    def start(self) -> None:
        self.thread.start()
        log.info("snapshot api listening on %s", self.url)

    def _serve(self) -> None:
        threading.Thread(target=self._stop_with_worker, name="snapshot-api-stop", daemon=True).start()
        self.server.run(sockets=[self.socket])

    def _stop_with_worker(self) -> None:
        self.stop.wait()
        self.server.should_exit = True
