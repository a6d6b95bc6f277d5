"""Worker configuration: one TOML file decoded into msgspec Structs.

Unknown keys are errors that name the key and the file (a typo such as `fps_caps = 5` must not
silently run the camera uncapped). Relative paths are resolved against the config file's folder,
so a config works wherever the worker is started from.

    server = "https://plates.example.org"     # the Platewatch server
    spool = "spool"                           # reads wait here until the server has them

    [recognition]
    reader = "ppocr+plate+head"               # the default | ppocr+plate | ppocr (PP-OCRv4 views) | plate (our own)
    min_confidence = 0.5
    min_frames = 2                            # sightings a vehicle needs before it is posted
    track_timeout_s = 1.5                     # unseen this long: the vehicle has passed
    processes = 0                             # recognition processes: 0 = one per core, 1 = in the worker itself

    [[cameras]]
    name = "main-st"
    token = "pwc_PASTE_THE_TOKEN_HERE"        # printed by `platewatch camera add main-st`
    kind = "stream"                           # stream | file | folder | snapshot
    location = "rtsp://10.0.0.21/stream1"     # or http(s):// MJPEG / HLS
    fps_cap = 8
    [cameras.motion]
    min_changed = 0.003                       # share of a 160-px copy that must change

    [[cameras]]
    name = "gate"
    token = "pwc_PASTE_THE_TOKEN_HERE"
    kind = "snapshot"                         # polled; "folder" watches a directory of JPEG/PNG
    location = "http://10.0.0.22/snapshot.jpg"
    poll_s = 1.0
    min_frames = 1

    [snapshot_api]                            # optional: recognition for NVRs and other systems
    listen = "127.0.0.1:8081"                 # Plate Recognizer and CodeProject.AI request shapes
    anonymous = false                         # true: callers without a token get answers, nothing is stored
    max_upload_mb = 10
    [[snapshot_api.cameras]]                  # cameras that only call in (any [[cameras]] token works too)
    name = "nvr-gate"
    token = "pwc_PASTE_THE_TOKEN_HERE"
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, get_args

import msgspec

SourceKind = Literal["stream", "file", "folder", "snapshot"]
Positive = Annotated[float, msgspec.Meta(gt=0)]
Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and the offending key."""


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class Motion(Strict):
    """Cheap frame differencing on a small copy of each frame."""

    enabled: bool = True
    width: Annotated[int, msgspec.Meta(ge=16, le=1920)] = 160  # downscaled width compared
    threshold: Annotated[int, msgspec.Meta(ge=1, le=255)] = 18  # change of a channel (0-255) that counts
    min_changed: Fraction = 0.003  # fraction of changed pixels needed to pass a frame


# Which model reads the plates the detector finds (worker.recognize.read): "plate" our recognizer trained
# on rendered plates, "ppocr" PP-OCRv4 views, "ppocr+plate" both fused (our CRNNs only),
# "ppocr+plate+head" with our head on PP-OCRv4 features fused in too and quick reads by our CRNNs.
Reader = Literal["plate", "ppocr", "ppocr+plate", "ppocr+plate+head"]
READERS: tuple[str, ...] = get_args(Reader)
# Issue 3's targets on street photos at the least CPU a frame (rule 14, docs/benchmarks.md).
DEFAULT_READER = "ppocr+plate+head"


class Recognition(Strict):
    reader: Reader = DEFAULT_READER
    min_confidence: Fraction = 0.5  # of the voted read; below it nothing is posted
    min_frames: Annotated[int, msgspec.Meta(ge=1)] = 2  # sightings a vehicle needs to be posted
    track_timeout_s: Positive = 1.5  # a vehicle unseen this long has left: post its read
    max_edit: Annotated[int, msgspec.Meta(ge=0, le=4)] = 2  # text distance still "same plate"
    # A frame in which nothing was read is looked at again at full resolution (distant plates);
    # costs a second detector pass on such frames (~280 ms CPU at 720p). False on busy streets.
    second_look: bool = True
    # Recognition processes, each reading plates on one core: 0 = one per core; 1 = none, read in
    # the worker process itself. Fewer leaves cores to other work on the box (decoding, the server).
    processes: Annotated[int, msgspec.Meta(ge=0, le=64)] = 0


CameraName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]  # for logs and the spool
# From `platewatch camera add`: the server knows the camera by it.
CameraToken = Annotated[str, msgspec.Meta(min_length=8)]


class Camera(Strict):
    name: CameraName
    token: CameraToken
    kind: SourceKind
    location: str
    fps_cap: Positive | None = None
    # Region of interest [x, y, w, h] in frame pixels: only the lane the camera watches is
    # searched for plates. The text detector's cost grows with the area it looks at.
    roi: Annotated[list[Annotated[int, msgspec.Meta(ge=0)]], msgspec.Meta(min_length=4, max_length=4)] | None = None
    realtime: bool = True  # file: play at the file's own fps (False: as fast as recognition goes)
    loop: bool = False  # file: start again at the end (demos)
    poll_s: Positive = 2.0  # snapshot: seconds between polls; folder: between scans
    queue_size: Annotated[int, msgspec.Meta(ge=1, le=256)] = 4
    min_frames: Annotated[int, msgspec.Meta(ge=1)] | None = None  # overrides recognition's
    motion: Motion = msgspec.field(default_factory=Motion)


class ApiCamera(Strict):
    """A camera known only through the snapshot API: its images arrive by HTTP, not by capture."""

    name: CameraName
    token: CameraToken


class SnapshotApi(Strict):
    """The worker's HTTP API for systems that already call a plate reader (worker/snapshot_api)."""

    listen: str = "127.0.0.1:8081"  # host:port; loopback unless other boxes must reach it
    anonymous: bool = False  # callers without a camera token: 401, or (true) an answer and nothing stored
    max_upload_mb: Annotated[float, msgspec.Meta(gt=0, le=100)] = 10.0
    cameras: list[ApiCamera] = []

    def address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class Config(Strict):
    server: str
    spool: Path = Path("spool")
    heartbeat_s: Positive = 30.0
    send_timeout_s: Positive = 30.0
    max_backoff_s: Positive = 30.0
    recognition: Recognition = msgspec.field(default_factory=Recognition)
    cameras: list[Camera] = []
    snapshot_api: SnapshotApi | None = None

    def camera_tokens(self) -> dict[str, str]:
        """Camera name -> token, for every camera whose reads this worker posts."""
        api = self.snapshot_api.cameras if self.snapshot_api else []
        return {c.name: c.token for c in [*self.cameras, *api]}

    def min_frames(self, camera: Camera) -> int:
        return camera.min_frames if camera.min_frames is not None else self.recognition.min_frames


_PATH_IN_ERROR = re.compile(r" - at `\$(.*)`$")


def _explain(exc: msgspec.MsgspecError, path: Path) -> str:
    """msgspec says "Object contains unknown field `fps_caps` - at `$.cameras[0]`"; keep the
    key and show where it is in TOML terms."""
    text = str(exc)
    match = _PATH_IN_ERROR.search(text)
    where = f" (in {match.group(1).lstrip('.') or 'the top level'})" if match else ""
    message = _PATH_IN_ERROR.sub("", text).replace("Object contains unknown field", "unknown key")
    return f"{path}: {message}{where}"


def _decode_path(kind: type, value: object) -> object:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError(f"cannot decode {kind}")


def load_config(path: Path | str) -> Config:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror or exc})") from None
    try:
        config = msgspec.toml.decode(raw, type=Config, dec_hook=_decode_path)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ConfigError(_explain(exc, path)) from None
    return finish(config, path.parent, str(path))


def finish(config: Config, base: Path, origin: str = "config") -> Config:
    """Check what the types cannot say and resolve relative paths against `base`."""
    problems = check(config)
    if problems:
        raise ConfigError(f"{origin}: " + "; ".join(problems))
    cameras = [
        msgspec.structs.replace(c, location=str(base / c.location)) if c.kind in ("file", "folder") else c
        for c in config.cameras
    ]
    return msgspec.structs.replace(config, spool=base / config.spool, cameras=cameras)


def check(config: Config) -> list[str]:
    problems = []
    if not re.match(r"^https?://[^/]+", config.server):
        problems.append(f"server: expected an http(s):// URL, got {config.server!r}")
    api = config.snapshot_api
    names = [c.name for c in [*config.cameras, *(api.cameras if api else [])]]
    problems += [f"cameras: name {n!r} is used twice" for n in sorted({n for n in names if names.count(n) > 1})]
    for cam in config.cameras:
        if cam.kind == "stream" and not re.match(r"^(rtsp|rtsps|https?)://", cam.location):
            problems.append(f"camera {cam.name!r}: a stream location is an rtsp:// or http(s):// URL")
        if cam.kind == "snapshot" and not re.match(r"^https?://", cam.location):
            problems.append(f"camera {cam.name!r}: a snapshot location is an http(s):// URL")
        if cam.roi is not None and (cam.roi[2] < 32 or cam.roi[3] < 32):
            problems.append(f"camera {cam.name!r}: roi width and height must be at least 32 pixels")
        if cam.kind in ("file", "folder") and "://" in cam.location:
            problems.append(f"camera {cam.name!r}: a {cam.kind} location is a path, not a URL")
    if api is not None and not listen_ok(api.listen):
        problems.append(f"snapshot_api: listen is host:port (e.g. \"127.0.0.1:8081\"), got {api.listen!r}")
    return problems


def listen_ok(listen: str) -> bool:
    """host:port, the host a name, an IPv4 address or a bracketed IPv6 one."""
    match = re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[^:\[\]]+):(\d{1,5})", listen)
    return match is not None and int(match.group(2)) <= 65535


def demo_config(server: str, token: str, video: Path, spool: Path, *, name: str = "demo") -> Config:
    """The embedded demo: one camera playing a synthetic video in a loop at its own speed."""
    camera = Camera(name=name, token=token, kind="file", location=str(video), loop=True)
    return finish(Config(server=server, spool=spool, cameras=[camera]), Path("."), "demo config")
