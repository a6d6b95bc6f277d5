"""Alerts and camera health out over MQTT, to a real Mosquitto broker and a real subscriber, with Home
Assistant discovery; a broker that refuses us is reported, never fatal."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import aiomqtt
import httpx
import jinja2
import msgspec
import pytest

from contract.wire import Alert
from server.hotlists import LIST_KINDS
from server.mqtt import MqttPublisher
from server.settings import MqttBroker, load_settings
from tests.conftest import Department, LiveServer, make_settings, run_cli, wait_until
from tests.mosquitto import Mosquitto

HOTLIST = "plate,state,reason\n8ABC123,CA,Stolen 2026-11-01\n"


@pytest.fixture
def broker(tmp_path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as mosquitto:
        yield mosquitto


def serve(tmp_path, mqtt_url: str, cameras: tuple[str, ...] = (), **overrides) -> LiveServer:
    settings = make_settings(tmp_path / "data", mqtt_url=mqtt_url, **overrides)
    for name in cameras:  # added before the server starts: in the discovery sent on connect
        assert run_cli(settings, "camera", "add", name) == 0
    return LiveServer(settings).start()


def collect(broker: Mosquitto, done: Callable[[dict], bool], action: Callable[[], object] = lambda: None,
            credentials: tuple[str, str] | None = None, session: str | None = None) -> dict[str, object]:
    """Subscribe to everything Platewatch publishes, run `action`, and gather topic → last payload
    until `done(messages)`. With a `session` name the broker keeps the subscription (and queues
    QoS 1 messages for it) while this subscriber is away."""
    async def main() -> dict[str, object]:
        user, password = credentials or (None, None)
        messages: dict[str, object] = {}
        async with aiomqtt.Client("127.0.0.1", broker.port, username=user, password=password,
                                  tls_context=broker.ssl_context(), identifier=session,
                                  clean_session=session is None) as client:
            await client.subscribe("platewatch/#", qos=1)
            await client.subscribe("homeassistant/#", qos=1)
            await asyncio.to_thread(action)
            async with asyncio.timeout(15):
                async for message in client.messages:
                    raw = message.payload.decode()
                    messages[str(message.topic)] = json.loads(raw) if raw.startswith("{") else raw
                    if done(messages):
                        return messages
        return messages

    return asyncio.run(main())


def render_ha_template(template: str, value_json: dict) -> str:
    environment = jinja2.Environment()
    environment.filters["to_json"] = json.dumps  # as Home Assistant's own filter does
    return environment.from_string(template).render(value_json=value_json)


def test_a_hit_reaches_a_subscriber_with_discovery_and_camera_health(tmp_path, broker, capsys):
    live = serve(tmp_path, broker.url(), cameras=("north gate/2",))
    dept = Department(live, capsys)
    try:
        assert dept.hotlist(tmp_path, "stolen", HOTLIST, "--kind", "stolen_vehicle") == 0

        def hit() -> None:
            assert dept.post_read("8ABC123").status_code == 201

        messages = collect(broker, lambda m: "platewatch/alerts/stolen_vehicle" in m, hit)
        alert = messages["platewatch/alerts/stolen_vehicle"]
        assert alert["plate"] == "8ABC123" and alert["hotlist"] == "stolen" and alert["camera"] == "main-st"
        assert alert["priority"] == 50 and alert["url"].endswith(f"/alerts/{alert['id']}")
        assert messages["platewatch/status"] == "online"
        # The camera's name holds a level separator: it stays one topic level.
        health = messages["platewatch/cameras/north gate_2"]
        assert health["name"] == "north gate/2" and health["status"] == "silent" and health["overloaded"] is False
        assert {"last_seen_at", "vehicles_seen", "vehicles_read", "recognition_lag_s"} <= health.keys()
        event = messages["homeassistant/event/platewatch_alert_stolen_vehicle/alert/config"]
        assert event["state_topic"] == "platewatch/alerts/stolen_vehicle" and event["event_types"] == ["alert"]
        assert event["device"]["name"] == "Platewatch" and event["availability_topic"] == "platewatch/status"
        # Home Assistant renders the template (Jinja, with its to_json filter) into the event it fires.
        fired = json.loads(render_ha_template(event["value_template"], alert))
        assert fired["event_type"] == "alert" and fired["plate"] == "8ABC123" and fired["priority"] == 50
        assert {f"homeassistant/event/platewatch_alert_{kind}/alert/config" for kind in LIST_KINDS} <= messages.keys()
        problem = next(config for topic, config in messages.items() if topic.endswith("/problem/config"))
        assert problem["state_topic"] == "platewatch/cameras/north gate_2" and problem["device_class"] == "problem"
        assert problem["unique_id"].startswith("platewatch_camera_")
        assert httpx.get(f"{live.url}/healthz").json() == {"status": "ok", "mqtt": "connected"}
    finally:
        dept.close()
        live.stop()
    # A clean stop says so itself (a crash leaves it to the broker's last will).
    assert collect(broker, lambda m: "platewatch/status" in m)["platewatch/status"] == "offline"


def test_a_broker_with_a_password_file(tmp_path, capsys):
    with Mosquitto(tmp_path / "broker", users={"platewatch": "s3cret:pw@x"}) as broker:
        live = serve(tmp_path, broker.url("platewatch", "s3cret:pw@x"), cameras=("gate",))
        try:
            messages = collect(broker, lambda m: "platewatch/cameras/gate" in m,
                               credentials=("platewatch", "s3cret:pw@x"))
            assert messages["platewatch/cameras/gate"]["status"] == "silent"
        finally:
            live.stop()


def test_wrong_credentials_are_reported_and_the_server_serves_on(tmp_path, capsys, caplog):
    caplog.set_level(logging.WARNING, logger="platewatch.mqtt")
    with Mosquitto(tmp_path / "broker", users={"platewatch": "right"}) as broker:
        live = serve(tmp_path, broker.url("platewatch", "wrong-horse"))
        dept = Department(live, capsys)
        try:
            def reported() -> str | None:
                state = httpx.get(f"{live.url}/healthz").json()["mqtt"]
                return None if state == "connecting" else state

            assert wait_until(reported).startswith("the broker refused the connection: not authorised")
            assert dept.hotlist(tmp_path, "stolen", HOTLIST) == 0
            assert dept.post_read("8ABC123").status_code == 201  # ingest and alerts go on without the broker
            assert dept.http.get("/api/v1/alerts", headers=dept.user_headers).json()[0]["plate"] == "8ABC123"
        finally:
            dept.close()
            live.stop()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"MQTT broker mqtt://127.0.0.1:{broker.port}: the broker refused the connection" in logged
    assert "wrong-horse" not in logged


def test_tls_with_a_private_ca(tmp_path, capsys):
    with Mosquitto(tmp_path / "broker", tls=True) as broker:
        live = serve(tmp_path, broker.url(), cameras=("gate",), mqtt_ca_file=str(broker.ca_file))
        try:
            assert collect(broker, lambda m: "platewatch/cameras/gate" in m)["platewatch/status"] == "online"
        finally:
            live.stop()
        live = serve(tmp_path, broker.url())  # without the CA the broker's certificate is not trusted

        def reported() -> str | None:
            state = httpx.get(f"{live.url}/healthz").json()["mqtt"]
            return None if state == "connecting" else state

        try:
            assert wait_until(reported).startswith("TLS failed: [SSL: CERTIFICATE_VERIFY_FAILED]")
        finally:
            live.stop()


def test_alerts_raised_while_the_broker_is_away_go_out_when_it_is_back(tmp_path, capsys):
    broker = Mosquitto(tmp_path / "broker", persistent=True).start()
    live = serve(tmp_path, broker.url())
    dept = Department(live, capsys)
    try:
        assert dept.hotlist(tmp_path, "stolen", HOTLIST, "--kind", "stolen_vehicle") == 0
        # Dispatch's subscriber: the broker keeps its QoS 1 subscription across its restart.
        collect(broker, lambda m: m.get("platewatch/status") == "online", session="dispatch")
        broker.stop()
        assert dept.post_read("8ABC123").status_code == 201
        assert wait_until(lambda: httpx.get(f"{live.url}/healthz").json()["mqtt"] != "connected")
        broker.start()
        messages = collect(broker, lambda m: "platewatch/alerts/stolen_vehicle" in m, session="dispatch")
        assert messages["platewatch/alerts/stolen_vehicle"]["plate"] == "8ABC123"
        assert wait_until(lambda: httpx.get(f"{live.url}/healthz").json()["mqtt"] == "connected")
    finally:
        dept.close()
        live.stop()
        broker.stop()


def test_a_full_queue_drops_the_oldest_alert_and_counts_it(caplog):
    publisher = MqttPublisher(None, MqttBroker.from_url("mqtt://127.0.0.1:1"), queue_max=2)
    alerts = [Alert(id=i, plate="8ABC123", read_plate="8ABC123", hotlist="stolen", kind="custom", reason="", state="",
                    rule="exact", detail="", camera="gate", seen_at=datetime.now(UTC), status="new", retro=False,
                    url=f"/alerts/{i}") for i in range(3)]
    for alert in alerts:
        publisher.offer(alert)
    assert publisher.dropped == 1 and [alert.id for alert in publisher._alerts] == [1, 2]
    assert "1 alerts dropped so far" in caplog.text


@pytest.mark.parametrize(("url", "says"), [
    ("http://broker", "must start mqtt:// or mqtts://"), ("mqtt://broker:99999", "port"),
    ("mqtt://broker/platewatch", "nothing after it"), ("mqtt://", "give a broker"),
])
def test_a_bad_mqtt_url_is_refused_by_name(tmp_path, url, says):
    with pytest.raises(msgspec.ValidationError, match=f"mqtt_url: .*{says}"):
        load_settings(tmp_path, env={}, mqtt_url=url)


def test_the_broker_is_named_without_its_credentials(tmp_path):
    broker = load_settings(tmp_path, env={"PLATEWATCH_MQTT_URL": "mqtts://pw:s%40cret@broker.example:8884"}).mqtt_broker
    assert (broker.username, broker.password, broker.port, broker.tls) == ("pw", "s@cret", 8884, True)
    assert broker.shown == "mqtts://broker.example:8884" and "s@cret" not in repr(broker)
