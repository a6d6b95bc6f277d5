"""Ingest throughput: reads/s accepted by the real server over HTTP with 100,000 hot-list entries.
Target ≥ 1,000 reads/s. Side by side: JSON reads, and multipart reads carrying two JPEG crops
(what the worker sends). The load generator shares the 2 cores with the server."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

import cv2
import httpx

from synth import make_scene, render_plate
from bench.common import Server, http_request, machine, random_plates, raw_post_many, read_body


def worker_images() -> dict[str, bytes]:
    """A plate crop and a vehicle crop like the worker sends, from a rendered synthetic scene."""
    plate = render_plate("7ABC123", height=80)
    scene = make_scene(render_plate("7ABC123", height=120), plate_center=(640, 420))
    vehicle = scene[220:620, 340:940]
    encode = lambda image: cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()  # noqa: E731
    return {"plate_image": encode(plate), "vehicle_image": encode(vehicle)}


def build_requests(server: Server, plates: list[str], images: dict[str, bytes] | None) -> list[bytes]:
    requests = []
    for plate in plates:
        body = read_body(plate, str(uuid.uuid4()))
        if images:
            request = httpx.Request("POST", "/", data={"read": json.dumps(body)},
                                    files={k: (f"{k}.jpg", v, "image/jpeg") for k, v in images.items()})
            payload, content_type = request.read(), request.headers["content-type"]
        else:
            payload, content_type = json.dumps(body).encode(), "application/json"
        requests.append(http_request("/api/v1/reads", payload, content_type, server.camera_headers))
    return requests


def blast(server: Server, plates: list[str], concurrency: int, images: dict[str, bytes] | None) -> float:
    requests = build_requests(server, plates, images)  # built before the clock starts
    started = time.perf_counter()
    statuses = asyncio.run(raw_post_many(server.port, requests, concurrency))
    elapsed = time.perf_counter() - started
    assert statuses == [201] * len(plates), sorted(set(statuses))
    return len(plates) / elapsed


def run(reads: int, concurrency: int, hotlist_size: int = 100_000) -> dict:
    hot = random_plates(hotlist_size, seed=1)
    # 1 read in 100 is on the list, as on a busy road with a large state list
    passing = [p for p in random_plates(reads * 2, seed=2) if p not in set(hot)][:reads]
    for i in range(0, reads, 100):
        passing[i] = hot[i]
    images = worker_images()
    results = {"machine": machine(), "hotlist": hotlist_size, "reads": reads, "concurrency": concurrency}
    with Server(hot) as server:
        results["import_s"] = server.import_s
        blast(server, [f"W{i}" for i in range(200)], concurrency, None)  # warm-up
        results["json_rps"] = blast(server, passing, concurrency, None)
        results["multipart_rps"] = blast(server, [p + "M" for p in passing], concurrency, images)
        results["image_bytes"] = sum(len(v) for v in images.values())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    r = run(args.reads, args.concurrency)
    print(f"ingest, {r['reads']} reads per variant, {r['concurrency']} connections, {r['hotlist']:,} hot-list "
          f"entries (imported in {r['import_s']:.1f} s), {r['machine']}")
    print(f"  JSON reads                      {r['json_rps']:7.0f} reads/s")
    print(f"  multipart + 2 JPEGs ({r['image_bytes'] // 1024} KiB)     {r['multipart_rps']:7.0f} reads/s")


if __name__ == "__main__":
    main()
