"""Read → alert out to other systems: a hot read is posted to a real server whose alerts go to a
signed webhook (a receiver on loopback that checks the signature with the README's own code) and
to a real Mosquitto broker (a subscriber on `platewatch/alerts/#`), beside the phones' push.
Issue 20's target: both leave within a second of the hit.

    python -m bench.alerts_out [--reads 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import httpx

from bench.common import Server, machine, quantiles_line, quantiles_ms, random_plates, read_body
from tests.mosquitto import Mosquitto
from tests.webhookreceiver import Receiver


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


def webhook_arrival(receiver: Receiver, plate: str, since: int) -> float | None:
    """When the first delivery for `plate` whose signature verified arrived, among those from
    index `since` on (the ones that came after its read was posted): polled every 2 ms, it
    parses only the few deliveries that are new, not the whole run's."""
    return next((delivery["at"] for delivery in receiver.received[since:]
                 if delivery["verified"] and json.loads(delivery["body"])["plate"] == plate), None)


def wait_for(arrival: Callable[[], float | None], plate: str, timeout: float = 10.0) -> float:
    deadline = time.monotonic() + timeout
    while (arrived := arrival()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no alert for {plate} within {timeout} s")
        time.sleep(0.002)
    return arrived


def run(reads: int, hotlist_size: int = 100_000) -> dict:
    plates = random_plates(hotlist_size)
    with tempfile.TemporaryDirectory() as tmp, Mosquitto(Path(tmp) / "mqtt") as broker:
        receiver, subscriber = Receiver(), Subscriber(broker)
        with Server(plates, PLATEWATCH_MQTT_URL=broker.url()) as server, \
                httpx.Client(base_url=server.url, timeout=30) as http:
            receiver.secret = server.cli("webhook", "add", receiver.url).strip().splitlines()[-1]
            webhook_ms, mqtt_ms = [], []
            for plate in plates[:reads]:
                started, delivered = time.monotonic(), len(receiver.received)
                http.post("/api/v1/reads", json=read_body(plate, str(uuid.uuid4())),
                          headers=server.camera_headers).raise_for_status()
                webhook_ms.append(1000 * (wait_for(lambda: webhook_arrival(receiver, plate, delivered), plate) - started))
                mqtt_ms.append(1000 * (wait_for(lambda: subscriber.arrived.get(plate), plate) - started))
        receiver.close()
    refused = sum(not delivery["verified"] for delivery in receiver.received)
    return {"reads": reads, "hotlist": hotlist_size, "machine": machine(), "refused": refused,
            "webhook_ms": quantiles_ms(webhook_ms), "mqtt_ms": quantiles_ms(mqtt_ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=50)
    args = parser.parse_args()
    result = run(args.reads)
    print(f"read → alert out, {result['reads']} hot reads, {result['hotlist']:,} hot-list entries "
          f"({result['machine']}); signatures refused: {result['refused']}")
    for label, key in (("signed webhook", "webhook_ms"), ("MQTT message", "mqtt_ms")):
        print(quantiles_line(label, result[key]))


if __name__ == "__main__":
    main()
