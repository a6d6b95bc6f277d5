"""Shared benchmark plumbing: a real `platewatch serve` subprocess on loopback with a fresh data dir."""

from __future__ import annotations

import os
import platform
import random
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx

PLATEWATCH = str(Path(sys.executable).with_name("platewatch"))


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def process_tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and its descendants, with their reaped children,
    from /proc (Linux; no psutil)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
        except OSError:  # gone since the listing
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = sum(int(v) for v in fields[11:15]) / tick  # utime stime cutime cstime
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree.update(children)
        frontier += children
    return sum(cpu.get(p, 0.0) for p in tree)


def random_plates(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    alphabet = string.ascii_uppercase.replace("O", "") + string.digits
    plates: set[str] = set()
    while len(plates) < count:
        plates.add("".join(rng.choice(alphabet) for _ in range(rng.choice((6, 7)))))
    return sorted(plates)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A real server process with an officer, cameras (one by default) and a hot list."""

    def __init__(self, hotlist: list[str], cameras: Sequence[str] = ("bench-cam",), **env: str) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="platewatch-bench-")
        self.data = Path(self.tmp.name) / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PLATEWATCH_PUSH_ALLOW_HTTP": "true", **env}
        self.hotlist = hotlist
        self.camera_names = list(cameras)

    def cli(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run([PLATEWATCH, *args, "--data", str(self.data)], input=stdin, capture_output=True,
                              text=True, env=self.env, check=True)
        return done.stdout

    def __enter__(self) -> "Server":
        self.cli("user", "add", "bench", "--role", "officer", "--password-stdin", stdin="bench-password\n")
        self.camera_tokens = self._add_cameras()
        self.camera_token = self.camera_tokens[self.camera_names[0]]
        csv = Path(self.tmp.name) / "hot.csv"
        csv.write_text("plate,reason\n" + "".join(f"{p},bench\n" for p in self.hotlist))
        started = time.perf_counter()
        self.cli("hotlist", "import", str(csv), "--list", "bench", "--kind", "stolen_vehicle")
        self.import_s = time.perf_counter() - started
        self.process = subprocess.Popen(
            [PLATEWATCH, "serve", "--port", str(self.port), "--data", str(self.data)], env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        token = httpx.post(f"{self.url}/api/v1/auth/token", json={"username": "bench", "password": "bench-password"})
        self.user_headers = {"Authorization": f"Bearer {token.json()['token']}"}
        self.camera_headers = {"Authorization": f"Bearer {self.camera_token}"}
        return self

    def _add_cameras(self) -> dict[str, str]:
        """The cameras' tokens. More than one camera is added in this process: a CLI start per
        camera takes seconds each on a busy box."""
        if len(self.camera_names) == 1:
            return {self.camera_names[0]: self.cli("camera", "add", self.camera_names[0]).strip().splitlines()[-1]}
        import asyncio

        from platewatch.cli import add_camera
        from server.settings import load_settings

        settings = load_settings(self.data)

        async def add_all() -> list[str]:
            return [await add_camera(settings, name, "") for name in self.camera_names]

        return dict(zip(self.camera_names, asyncio.run(add_all())))

    def phones_on_duty(self, http: httpx.Client, push, phones: int) -> None:
        """`phones` subscriptions of the officer at the test push service, and the officer on duty
        (web push pages only officers on duty), as the API clients do."""
        for i in range(phones):
            resp = http.post("/api/v1/push/subscriptions", json=push.subscription(f"phone-{i}"),
                             headers=self.user_headers)
            resp.raise_for_status()
        http.post("/api/v1/duty", json={"on": True}, headers=self.user_headers).raise_for_status()

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.tmp.cleanup()


def read_body(plate: str, read_id: str) -> dict:
    return {"id": read_id, "plate": plate, "confidence": 0.9, "captured_at": datetime.now(UTC).isoformat(),
            "candidates": [{"plate": plate, "confidence": 0.9}]}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def quantiles_ms(values: list[float]) -> dict[int, float]:
    """p50, p95 and p99 of latencies in ms, as the latency benchmarks report them."""
    return {q: percentile(values, q) for q in (50, 95, 99)}


def quantiles_line(label: str, p: dict[int, float]) -> str:
    return f"  {label:15s} p50 {p[50]:6.1f} ms   p95 {p[95]:6.1f} ms   p99 {p[99]:6.1f} ms"


async def raw_post_many(port: int, requests: list[bytes], concurrency: int) -> list[int]:
    """Send pre-built HTTP/1.1 requests over keep-alive connections with almost no client CPU,
    so the 2-core box measures the server rather than the load generator. Returns the statuses."""
    import asyncio

    queue = list(reversed(requests))
    statuses: list[int] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                writer.write(queue.pop())
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                statuses.append(int(status_line.split()[1]))
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return statuses


def http_request(path: str, body: bytes, content_type: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {content_type}",
             f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
