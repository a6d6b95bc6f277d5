"""Read → alert out to other systems: a hot read is posted to a real server whose alerts go to a
signed webhook (a receiver on loopback that checks the HMAC signature) and to a real Mosquitto
broker (a subscriber on `platewatch/alerts/#`), beside the phones' push. Issue 20's target: both
leave within a second of the hit.

    python -m bench.alerts_out [--reads 50]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiomqtt
import httpx

from bench.common import Server, machine, percentile, random_plates, read_body
from tests.mosquitto import Mosquitto


class Receiver:
    """A dispatch system's webhook endpoint: keeps when each verified alert (by plate) arrived."""

    def __init__(self) -> None:
        self.secret = ""
        self.arrived: dict[str, float] = {}
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                timestamp = self.headers["X-Platewatch-Timestamp"]
                expected = hmac.new(receiver.secret.encode(), timestamp.encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
                if hmac.compare_digest(self.headers["X-Platewatch-Signature"], "sha256=" + expected):
                    receiver.arrived.setdefault(json.loads(body)["plate"], time.monotonic())
                else:
                    receiver.refused += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Subscriber:
    """Home automation on the broker: keeps when each alert (by plate) arrived."""

    def __init__(self, broker: Mosquitto) -> None:
        self.broker, self.arrived = broker, {}
        self.ready = threading.Event()
        threading.Thread(target=lambda: asyncio.run(self._listen()), daemon=True).start()
        self.ready.wait(10)

    async def _listen(self) -> None:
        try:
            async with aiomqtt.Client("127.0.0.1", self.broker.port) as client:
                await client.subscribe("platewatch/alerts/#", qos=1)
                self.ready.set()
                async for message in client.messages:
                    self.arrived.setdefault(json.loads(message.payload)["plate"], time.monotonic())
        except aiomqtt.MqttError:
            pass  # the broker stopped at the end of the run


def wait_for(arrived: dict[str, float], plate: str, timeout: float = 10.0) -> float:
    deadline = time.monotonic() + timeout
    while plate not in arrived:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no alert for {plate} within {timeout} s")
        time.sleep(0.002)
    return arrived[plate]


def run(reads: int, hotlist_size: int = 100_000) -> dict:
    plates = random_plates(hotlist_size)
    with tempfile.TemporaryDirectory() as tmp, Mosquitto(Path(tmp) / "mqtt") as broker:
        receiver, subscriber = Receiver(), Subscriber(broker)
        with Server(plates, PLATEWATCH_MQTT_URL=broker.url()) as server, \
                httpx.Client(base_url=server.url, timeout=30) as http:
            receiver.secret = server._cli("webhook", "add", receiver.url).strip().splitlines()[-1]
            webhook_ms, mqtt_ms = [], []
            for plate in plates[:reads]:
                started = time.monotonic()
                http.post("/api/v1/reads", json=read_body(plate, str(uuid.uuid4())),
                          headers=server.camera_headers).raise_for_status()
                webhook_ms.append(1000 * (wait_for(receiver.arrived, plate) - started))
                mqtt_ms.append(1000 * (wait_for(subscriber.arrived, plate) - started))
    return {"reads": reads, "hotlist": hotlist_size, "machine": machine(), "refused": receiver.refused,
            "webhook_ms": {q: percentile(webhook_ms, q) for q in (50, 95, 99)},
            "mqtt_ms": {q: percentile(mqtt_ms, q) for q in (50, 95, 99)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=50)
    args = parser.parse_args()
    result = run(args.reads)
    print(f"read → alert out, {result['reads']} hot reads, {result['hotlist']:,} hot-list entries "
          f"({result['machine']}); signatures refused: {result['refused']}")
    for label, key in (("signed webhook", "webhook_ms"), ("MQTT message", "mqtt_ms")):
        p = result[key]
        print(f"  {label:15s} p50 {p[50]:6.1f} ms   p95 {p[95]:6.1f} ms   p99 {p[99]:6.1f} ms")


if __name__ == "__main__":
    main()
