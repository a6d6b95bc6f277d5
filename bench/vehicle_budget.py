"""Recognition spent per vehicle, and recognition throughput with 1 and 2 processes.

Per vehicle: a synthetic 720p video (8 vehicles, 2 s each, 1 s of empty street between) played
as fast as recognition goes through the real worker with recognition in its own process (no
pool), into the spool only (no server): CPU per vehicle and how many were read right. Run it with
PYTHONPATH pointing at an older checkout for the before figure.

Throughput: vehicle frames (1280×720, whole frame) recognised per second by a pool of 1 and of 2
recognition processes. Only meaningful on an otherwise idle box.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2

from worker.__main__ import Worker
from worker.config import Camera, Config, finish
from worker.recognize.loader import load_recognizer
from synth import write_video

PLATES = ["7ABC123", "8XYZ442", "4GHJ907", "5KLM234", "6TRW581", "3NPD770", "2HXE319", "9FJK046"]


def per_vehicle(tmp: Path) -> str:
    video = tmp / "street.avi"
    write_video(video, PLATES, fps=10, seconds_per_vehicle=2.0, gap_seconds=1.0, seed=5)
    camera = Camera(name="cam", token="cam_12345678", kind="file", location=str(video), realtime=False)
    config = finish(Config(server="http://127.0.0.1:9", spool=tmp / "spool", cameras=[camera]), Path("."), "bench")
    worker = Worker(config, load_recognizer(), exit_when_done=True, drain_s=0)
    cpu = time.process_time()
    worker.run()
    cpu = time.process_time() - cpu
    got = sorted(json.loads(p.read_text())["read"]["plate"] for p in (tmp / "spool").glob("*.json"))
    stats = worker.captures["cam"].stats
    return (f"{len(PLATES)} vehicles: {sum(p in got for p in PLATES)} read right, {len(got)} reads; CPU {cpu:.1f} s "
            f"({cpu / len(PLATES):.2f} s a vehicle); {stats.frames} frames, {stats.gated} without motion, "
            f"{getattr(stats, 'skipped', 0)} skipped (vehicle already read)")


def throughput(tmp: Path, sizes: tuple[int, ...], frames: int) -> list[str]:
    from worker.recognize.pool import RecognitionPool

    video = tmp / "busy.avi"
    write_video(video, PLATES[:2], fps=10, seconds_per_vehicle=2.0, gap_seconds=0.0)
    capture, images = cv2.VideoCapture(str(video)), []
    while (grab := capture.read())[0]:
        images.append(grab[1])
    lines = []
    for size in sizes:
        pool = RecognitionPool(size, "worker.recognize.read:Recognizer")
        while not pool.idle() == size:
            pool.results(0.2)
        done, sent, started = 0, 0, time.perf_counter()
        while done < frames:
            while pool.idle() and sent < frames:
                pool.submit(sent, images[sent % len(images)])
                sent += 1
            done += len(pool.results(0.05))
        lines.append(f"{size} process(es): {frames / (time.perf_counter() - started):.2f} frames/s")
        pool.close()
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.vehicle_budget", description=__doc__.split("\n")[0])
    parser.add_argument("--throughput", action="store_true", help="also frames/s with 1 and 2 processes")
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(per_vehicle(Path(folder)), flush=True)
        if args.throughput:
            for line in throughput(Path(folder), (1, 2, 1, 2), args.frames):
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
