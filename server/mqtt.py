"""Alerts and camera health out to an MQTT broker (settings.mqtt_url), for dispatch and home automation.

Runs beside the push sender: the Notifier hands each new alert over once (`offer`, which never
blocks), and one task keeps the broker connection, publishing
- each alert's JSON (the push payload, priority included) to `platewatch/alerts/<kind>`, QoS 1;
- each camera's health to `platewatch/cameras/<name>`, QoS 1 and retained, when its status changes
  and every minute;
- `platewatch/status`: "online" (retained) once connected, "offline" by the broker (last will) when
  the connection drops, or by us on shutdown;
- Home Assistant MQTT discovery configs (retained, under `homeassistant/`) on every connect.

While the broker is away alerts wait in a bounded queue that drops the oldest, counted; the
connection is retried with backoff. Nothing here can slow ingest or push.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import ssl
import time
from collections import deque
from typing import Any

import aiomqtt
import msgspec

from contract.wire import Alert
from server.clock import from_ms, now_ms
from server.hotlists import LIST_KINDS
from server.settings import MqttBroker
from server.store import queries_admin
from server.store.db import Database

log = logging.getLogger("platewatch.mqtt")

STATUS_TOPIC = "platewatch/status"
DISCOVERY_PREFIX = "homeassistant"  # Home Assistant's default discovery prefix
QUEUE_MAX = 1000  # alerts kept while the broker is away; past this the oldest go
HEALTH_POLL_S = 10.0  # how often camera health is looked at for a change of status
HEALTH_EVERY_S = 60.0  # each camera's health is republished at least this often
BACKOFF_S = (1.0, 60.0)  # first and longest wait before reconnecting
PUBLISH_TIMEOUT_S = 10.0
DEVICE = {"identifiers": ["platewatch"], "name": "Platewatch", "manufacturer": "Platewatch",
          "model": "Licence-plate reader"}
# The fields of an alert an automation gets as the Home Assistant event's attributes.
EVENT_FIELDS = ("id", "plate", "read_plate", "hotlist", "kind", "reason", "state", "camera", "seen_at",
                "priority", "url")
# Connect refusals that no retry will cure, as the broker's reason code says them (MQTT 3.1.1 and 5).
REFUSALS = {4: "bad user name or password", 5: "not authorised", 134: "bad user name or password",
            135: "not authorised"}


def camera_topic(name: str) -> str:
    # A camera's name may hold what a topic may not (wildcards, level separators, control characters).
    return "platewatch/cameras/" + re.sub(r"[/+#\x00-\x1f]", "_", name)


def alert_topic(kind: str) -> str:
    return f"platewatch/alerts/{kind}"


def health_payload(row: queries_admin.Row) -> dict[str, Any]:
    """A camera's health as the Cameras page shows it."""
    def moment(ms: int | None) -> str | None:
        return from_ms(ms).isoformat() if ms is not None else None

    return {
        "name": row["name"], "status": row["status"], "last_seen_at": moment(row["last_seen_at"]),
        "last_frame_at": moment(row["last_frame_at"]), "last_read_at": moment(row["last_read_at"]),
        "frames_per_s": row["frames_per_s"], "reads_last_hour": row["reads_last_hour"],
        "vehicles_seen": row["vehicles_seen"], "vehicles_read": row["vehicles_read"],
        "recognition_lag_s": row["recognition_lag_s"], "overloaded": bool(row["overloaded"]),
    }


def discovery_configs(cameras: list[queries_admin.Row]) -> dict[str, dict[str, Any]]:
    """Home Assistant MQTT discovery: topic → config. Per camera a `problem` binary sensor and a
    status sensor; per hot-list kind an event entity that fires on each alert."""
    common = {"availability_topic": STATUS_TOPIC, "device": DEVICE, "origin": {"name": "Platewatch"}, "qos": 1}
    configs = {}
    for camera in cameras:
        topic, key = camera_topic(camera["name"]), f"platewatch_camera_{camera['id']}"
        configs[f"{DISCOVERY_PREFIX}/binary_sensor/{key}/problem/config"] = {
            **common, "name": f"{camera['name']} problem", "unique_id": f"{key}_problem", "device_class": "problem",
            "state_topic": topic, "value_template": "{{ 'OFF' if value_json.status == 'ok' else 'ON' }}",
            "json_attributes_topic": topic,
        }
        configs[f"{DISCOVERY_PREFIX}/sensor/{key}/status/config"] = {
            **common, "name": f"{camera['name']} status", "unique_id": f"{key}_status", "state_topic": topic,
            "value_template": "{{ value_json.status }}", "icon": "mdi:cctv",
        }
    # An event's payload must be JSON with an event_type; the template adds it to the alert's fields.
    event = "{ \"event_type\": \"alert\", " + ", ".join(
        f"\"{name}\": {{{{ value_json.{name} | to_json }}}}" for name in EVENT_FIELDS) + " }"
    for kind in LIST_KINDS:
        configs[f"{DISCOVERY_PREFIX}/event/platewatch_alert_{kind}/alert/config"] = {
            **common, "name": f"{kind.replace('_', ' ')} alert", "unique_id": f"platewatch_alert_{kind}",
            "state_topic": alert_topic(kind), "event_types": ["alert"], "value_template": event,
            "icon": "mdi:car-search",
        }
    return configs


def explain(exc: Exception) -> str:
    """What went wrong, for the log and /healthz (never the credentials: the URL is not in it)."""
    code = getattr(exc, "rc", None)
    value = getattr(code, "value", code)
    if value in REFUSALS:
        return f"the broker refused the connection: {REFUSALS[value]} (check the user and password in mqtt_url)"
    # aiomqtt re-raises a failed connect as MqttError(str(error)) from None: the error stays its context.
    tls = next((e for e in (exc, exc.__context__) if isinstance(e, ssl.SSLError)), None)
    if tls is not None:
        return f"TLS failed: {tls} (a private CA's certificate goes in mqtt_ca_file)"
    return str(exc) or type(exc).__name__


class MqttPublisher:
    def __init__(self, db: Database, broker: MqttBroker, *, queue_max: int = QUEUE_MAX) -> None:
        self.db, self.broker = db, broker
        self.state = "connecting"  # or "connected", or why not: shown on /healthz
        self.dropped = 0  # alerts lost to a full queue since start
        self._alerts: deque[Alert] = deque(maxlen=queue_max)
        self._wake = asyncio.Event()
        self._health: dict[int, tuple[str, bool, float]] = {}  # camera id → (status, overloaded, sent at)

    def offer(self, alert: Alert) -> None:
        """Queue an alert for the broker; never blocks. A full queue drops the oldest alert."""
        if len(self._alerts) == self._alerts.maxlen:
            self._count_drop()
        self._alerts.append(alert)
        self._wake.set()

    def _count_drop(self) -> None:
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 100 == 0:
            log.warning("MQTT broker %s is away: %d alerts dropped so far (the oldest go first)",
                        self.broker.shown, self.dropped)

    async def run(self) -> None:
        delay = BACKOFF_S[0]
        while True:
            try:
                async with self._client() as client:
                    self.state, delay = "connected", BACKOFF_S[0]
                    log.info("MQTT connected to %s", self.broker.shown)
                    try:
                        await self._serve(client)
                    finally:  # a clean disconnect sends no last will: say offline ourselves
                        await asyncio.shield(self._say_offline(client))
            except (aiomqtt.MqttError, OSError) as exc:
                self.state = explain(exc)
                log.warning("MQTT broker %s: %s; retrying in %g s", self.broker.shown, self.state, delay)
            except Exception as exc:  # e.g. a transient database error reading camera health: retry, never end
                self.state = f"failed: {type(exc).__name__}"
                log.exception("MQTT publishing to %s failed; retrying in %g s", self.broker.shown, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_S[1])

    def _client(self) -> aiomqtt.Client:
        tls = ssl.create_default_context(cafile=self.broker.ca_file) if self.broker.tls else None
        return aiomqtt.Client(
            self.broker.host, self.broker.port, username=self.broker.username, password=self.broker.password,
            identifier=f"platewatch-{secrets.token_hex(4)}", tls_context=tls, timeout=PUBLISH_TIMEOUT_S,
            will=aiomqtt.Will(STATUS_TOPIC, "offline", qos=1, retain=True),
        )

    async def _serve(self, client: aiomqtt.Client) -> None:
        cameras = await queries_admin.camera_health(self.db.reader, now_ms())
        for topic, config in discovery_configs(cameras).items():
            await client.publish(topic, msgspec.json.encode(config), qos=1, retain=True)
        await client.publish(STATUS_TOPIC, "online", qos=1, retain=True)
        self._health.clear()  # a new connection: send every camera's health now
        next_health = 0.0
        while True:
            await self._send_alerts(client)
            if time.monotonic() >= next_health:
                await self._send_health(client)
                next_health = time.monotonic() + HEALTH_POLL_S
            try:
                async with asyncio.timeout(max(0.0, next_health - time.monotonic())):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()

    async def _send_alerts(self, client: aiomqtt.Client) -> None:
        while self._alerts:
            alert = self._alerts.popleft()
            try:
                await client.publish(alert_topic(alert.kind), msgspec.json.encode(alert), qos=1)
            except BaseException:
                # Not acknowledged: it goes first after the reconnect (unless newer ones filled the queue).
                if len(self._alerts) < self._alerts.maxlen:
                    self._alerts.appendleft(alert)
                else:
                    self._count_drop()
                raise

    async def _send_health(self, client: aiomqtt.Client) -> None:
        now, sent = now_ms(), time.monotonic()
        cameras = await queries_admin.camera_health(self.db.reader, now)
        if any(camera["id"] not in self._health for camera in cameras) and self._health:
            # A camera added since we connected: Home Assistant learns of it now.
            for topic, config in discovery_configs(cameras).items():
                await client.publish(topic, msgspec.json.encode(config), qos=1, retain=True)
        for camera in cameras:
            state = (camera["status"], bool(camera["overloaded"]))
            last = self._health.get(camera["id"])
            if last is None or last[:2] != state or sent - last[2] >= HEALTH_EVERY_S:
                await client.publish(camera_topic(camera["name"]), msgspec.json.encode(health_payload(camera)),
                                     qos=1, retain=True)
                self._health[camera["id"]] = (*state, sent)

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        try:
            await client.publish(STATUS_TOPIC, "offline", qos=1, retain=True, timeout=2)
        except Exception:  # the connection is already gone: the broker sends the last will instead
            pass
