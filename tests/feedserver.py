"""A state's hot-list feed on loopback HTTPS: a certificate authority of its own
(tests/certificates.py; the test trusts it through the `hotlist_ca_file` setting), a server certificate
for 127.0.0.1 signed by it, and a stdlib HTTPS server that serves one feed, honours ETag, checks
its credentials (the Authorization header it expects), and records each request's headers.

    with FeedServer(tmp_path) as feed:
        feed.publish("P0001;NH;stolen\\n")
        settings = make_settings(..., hotlist_ca_file=str(feed.ca_file))
"""

from __future__ import annotations

import hashlib
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.certificates import throwaway_ca


class FeedServer:
    """One feed at /feed.txt; `status` other than 200 answers that status with no feed."""

    def __init__(self, folder: Path, authorization: str | None = None) -> None:
        self.ca_file, cert, key = throwaway_ca(folder, "Test State CA")
        self.authorization, self.body, self.status = authorization, b"", 200
        self.requests: list[dict[str, str]] = []
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 — the stdlib's name
                feed.requests.append(dict(self.headers.items()))
                etag = '"' + hashlib.sha256(feed.body).hexdigest()[:16] + '"'
                if feed.authorization and self.headers.get("Authorization") != feed.authorization:
                    self._answer(401, b"")
                elif feed.status != 200:
                    self._answer(feed.status, b"")
                elif self.headers.get("If-None-Match") == etag:
                    self._answer(304, b"", etag)
                else:
                    self._answer(200, feed.body, etag)

            def _answer(self, status: int, body: bytes, etag: str | None = None) -> None:
                self.send_response(status)
                if etag:
                    self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}/feed.txt"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def publish(self, text: str) -> None:
        self.body, self.status = text.encode(), 200

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
