"""Worker cost with N cameras watching a mostly empty street: CPU and frames/s.

Each camera plays a synthetic 720p street (10 fps; one vehicle a minute) in real time through the
real worker (capture threads, motion gate, recognition, spool, sender) into a real server. The
motion gate is what keeps an idle camera cheap: frames without motion never reach recognition.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from bench.common import Server, machine
from worker.__main__ import Worker
from worker.config import Camera, Config, finish
from worker.recognize.loader import load_recognizer
from synth import write_video


def street(folder: Path) -> Path:
    path = folder / "street.avi"
    write_video(path, ["7ABC123"], fps=10, seconds_per_vehicle=3.0, gap_seconds=30.0, seed=3)
    return path


def run(cameras: int, seconds: float, video: Path, server: Server, recognize, spool: Path) -> dict:
    config = finish(Config(server=server.url, spool=spool, cameras=[
        Camera(name=f"cam{i}", token=server.camera_token, kind="file", location=str(video), loop=True)
        for i in range(cameras)
    ]), Path("."), "bench")
    worker = Worker(config, recognize)
    thread = threading.Thread(target=worker.run, daemon=True)
    cpu, wall = time.process_time(), time.perf_counter()
    thread.start()
    time.sleep(seconds)
    stats = [c.stats for c in worker.captures.values()]
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    worker.stop.set()
    thread.join(timeout=30)
    frames = sum(s.frames for s in stats)
    gated = sum(s.gated for s in stats)
    return {"cameras": cameras, "cpu_pct": 100 * cpu / wall, "fps": frames / wall, "gated_pct": 100 * gated / max(frames, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=40.0)  # one vehicle passes at 30 s
    parser.add_argument("--cameras", default="1,2,4")
    args = parser.parse_args()
    recognize = load_recognizer()
    with tempfile.TemporaryDirectory() as tmp, Server(["7ABC123"]) as server:
        video = street(Path(tmp))
        print(f"worker cost, mostly empty 720p street at 10 fps per camera, {args.seconds:.0f} s each ({machine()})")
        print("  cameras   CPU (% of one core)   frames/s in   gated out")
        for n in (int(x) for x in args.cameras.split(",")):
            r = run(n, args.seconds, video, server, recognize, Path(tmp) / f"spool{n}")
            print(f"  {r['cameras']:7d}   {r['cpu_pct']:19.1f}   {r['fps']:11.1f}   {r['gated_pct']:8.1f}%")


if __name__ == "__main__":
    main()
