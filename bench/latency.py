"""Read → verified web push latency: a hot read is posted, 20 subscribed phones (of an officer on
duty) must each receive a push that the test push service verifies (VAPID signature) and decrypts.
Target p95 ≤ 250 ms."""

from __future__ import annotations

import argparse
import time
import uuid

import httpx

from bench.common import Server, machine, quantiles_line, quantiles_ms, random_plates, read_body
from tests.pushservice import PushService


def run(reads: int = 100, subscriptions: int = 20, hotlist_size: int = 100_000) -> dict:
    plates = random_plates(hotlist_size)
    hot = plates[:reads]
    with Server(plates) as server, PushService() as push, httpx.Client(base_url=server.url, timeout=30) as http:
        server.phones_on_duty(http, push, subscriptions)
        first_push, last_push = [], []
        for plate in ["WARMUP"] + hot:
            push.reset()
            started = time.monotonic()
            resp = http.post("/api/v1/reads", json=read_body(plate, str(uuid.uuid4())), headers=server.camera_headers)
            resp.raise_for_status()
            if plate == "WARMUP":
                continue
            messages = push.wait_for(subscriptions, timeout=10)
            assert all(m.verified for m in messages) and all(plate.encode() in m.payload for m in messages)
            arrivals = sorted(m.received_at - started for m in messages)
            first_push.append(arrivals[0] * 1000)
            last_push.append(arrivals[-1] * 1000)
    return {
        "reads": reads, "subscriptions": subscriptions, "hotlist": hotlist_size, "machine": machine(),
        "first_ms": quantiles_ms(first_push),
        "all_ms": quantiles_ms(last_push),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reads", type=int, default=100)
    parser.add_argument("--subscriptions", type=int, default=20)
    args = parser.parse_args()
    result = run(args.reads, args.subscriptions)
    print(f"read → verified push, {result['reads']} hot reads, {result['subscriptions']} subscriptions, "
          f"{result['hotlist']:,} hot-list entries ({result['machine']})")
    for label, key in (("first phone", "first_ms"), ("all 20 phones", "all_ms")):
        print(quantiles_line(label, result[key]))


if __name__ == "__main__":
    main()
