"""A dispatch system's webhook endpoint on loopback, for tests and benchmarks: it checks each
delivery's signature and 5-minute window with the README's own `verify_signature` (the code a
department would copy), and answers each POST with the next of `answers` (then 200).

    receiver = Receiver()
    receiver.secret = ...                     # what `webhook add` printed
    ...an alert...
    [delivery] = receiver.received            # headers, body, verified, at (time.monotonic())
"""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_verify_signature():
    """The receiver check exactly as the README's Webhooks section prints it."""
    code = next(block for block in re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
                if "def verify_signature" in block)
    scope: dict = {}
    exec(code, scope)  # noqa: S102 - our own README
    return scope["verify_signature"]


class Receiver:
    """Keeps what came, with whether its signature verified under `secret` then, and when."""

    def __init__(self, answers=()) -> None:
        self.answers, self.secret, self.received = list(answers), "", []
        self.verify = readme_verify_signature()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stamp, header = self.headers["X-Platewatch-Timestamp"], self.headers["X-Platewatch-Signature"]
                verified = receiver.verify(receiver.secret, stamp, body, header, time.time())
                receiver.received.append({"headers": dict(self.headers), "body": body, "verified": verified,
                                          "at": time.monotonic()})
                self.send_response(receiver.answers.pop(0) if receiver.answers else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
