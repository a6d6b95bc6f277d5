"""server.push against a real push service (tests/pushservice.py) that verifies VAPID and
decrypts with its own RFC 8291 code: a push that passes here is a push a browser can read."""

import asyncio
import json
import socket
import stat
import time

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid.jwt import sign as sign_jwt

from server.push import (
    MAX_PAYLOAD,
    PushSender,
    Subscription,
    VapidKeys,
    audience,
    b64url_decode,
)
from tests.pushservice import Browser, PushService, decrypt

SUBJECT = "mailto:ops@platewatch.example"
PAYLOAD = json.dumps({"alert": 7, "plate": "ABC1234", "url": "/alerts/7"}).encode()


@pytest.fixture
def keys(tmp_path):
    return VapidKeys.load_or_create(tmp_path)


@pytest.fixture
def svc(keys):
    with PushService(expected_key=keys.public_key) as service:
        yield service


@pytest.fixture
async def sender(keys):
    async with PushSender(keys, SUBJECT) as push_sender:
        yield push_sender


def subscribe(svc, *names):
    return [Subscription.from_json(svc.subscription(name), id=i) for i, name in enumerate(names)]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- keys ------------------------------------------------------------------------


def test_keys_created_once_with_mode_0600_and_reused(tmp_path):
    data = tmp_path / "data"  # does not exist yet
    first = VapidKeys.load_or_create(data)
    path = data / "vapid_private.pem"
    pem = path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = VapidKeys.load_or_create(data)
    assert again.public_key == first.public_key
    assert path.read_bytes() == pem
    assert [p.name for p in data.iterdir()] == ["vapid_private.pem"]  # no temp file left


def test_public_key_is_uncompressed_p256_point(keys):
    assert len(keys.public_key) == 87 and "=" not in keys.public_key
    raw = b64url_decode(keys.public_key)
    assert len(raw) == 65 and raw[0] == 4
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)


def test_audience_keeps_only_non_default_ports():
    assert audience("https://fcm.googleapis.com/fcm/send/x") == "https://fcm.googleapis.com"
    assert audience("https://push.example:443/x") == "https://push.example"
    assert audience("https://push.example:8443/x") == "https://push.example:8443"
    assert audience("http://127.0.0.1:5000/push/a") == "http://127.0.0.1:5000"
    assert audience("https://[::1]:8443/x") == "https://[::1]:8443"
    with pytest.raises(ValueError):
        audience("ftp://push.example/x")


# -- delivery --------------------------------------------------------------------


async def test_push_to_many_all_verify_and_decrypt(svc, sender, keys):
    names = [f"officer{i}" for i in range(8)]
    deliveries = await sender.send(subscribe(svc, *names), PAYLOAD)
    assert [(d.status, d.error, d.ok, d.gone) for d in deliveries] == [(201, None, True, False)] * 8
    assert [d.subscription.id for d in deliveries] == list(range(8))
    messages = svc.wait_for(8, timeout=5)
    assert sorted(m.name for m in messages) == names
    assert all(m.payload == PAYLOAD for m in messages)
    # A fresh ephemeral key per message, never the VAPID key.
    sender_keys = {m.sender_key for m in messages}
    assert len(sender_keys) == 8 and b64url_decode(keys.public_key) not in sender_keys


async def test_headers_and_claims(svc, sender):
    port = int(svc.origin.rsplit(":", 1)[1])
    await sender.send(subscribe(svc, "a"), PAYLOAD)
    [msg] = svc.wait_for(1)
    assert msg.claims["aud"] == f"http://127.0.0.1:{port}"  # the non-default port is kept
    assert msg.claims["sub"] == SUBJECT
    assert 11.9 * 3600 < msg.claims["exp"] - time.time() <= 12 * 3600
    assert msg.ttl == 3600 and msg.urgency == "high"
    assert msg.headers["content-encoding"] == "aes128gcm"
    assert msg.headers["content-type"] == "application/octet-stream"
    assert msg.headers["authorization"].startswith("vapid t=")


async def test_per_call_ttl_does_not_leak(svc, sender):
    subs = subscribe(svc, "a")
    await sender.send(subs, PAYLOAD, ttl=60)
    await sender.send(subs, PAYLOAD, ttl=0)
    await sender.send(subs, PAYLOAD)
    assert [m.ttl for m in svc.wait_for(3)] == [60, 0, 3600]


async def test_410_and_404_are_gone(svc, sender):
    svc.configure("expired", status=410)
    svc.configure("unknown", status=404)
    deliveries = await sender.send(subscribe(svc, "expired", "unknown", "fine"), PAYLOAD)
    assert [(d.status, d.gone) for d in deliveries] == [(410, True), (404, True), (201, False)]
    assert deliveries[0].error.startswith("HTTP 410")


async def test_one_failure_never_stops_the_others(svc, keys):
    svc.configure("slow", delay=1.0)
    fine, slow = subscribe(svc, "fine", "slow")
    refused = Subscription(f"http://127.0.0.1:{closed_port()}/push/x", fine.p256dh, fine.auth)
    bad_keys = Subscription(fine.endpoint, "not-a-key", fine.auth)
    unknown = Subscription(svc.origin + "/push/nobody", fine.p256dh, fine.auth)
    async with PushSender(keys, SUBJECT, timeout=0.3) as sender:
        started = time.perf_counter()
        deliveries = await sender.send([refused, bad_keys, slow, unknown, fine], PAYLOAD)
        elapsed = time.perf_counter() - started
    by_endpoint = {d.subscription: d for d in deliveries}
    assert by_endpoint[fine].status == 201 and by_endpoint[fine].error is None
    assert by_endpoint[refused].status is None and "ConnectError" in by_endpoint[refused].error
    assert by_endpoint[bad_keys].status is None and "p256dh" in by_endpoint[bad_keys].error
    assert by_endpoint[slow].status is None and "timed out" in by_endpoint[slow].error
    assert by_endpoint[unknown].status == 404
    assert elapsed < 0.9  # concurrent: bounded by the timeout, not the slow endpoint
    assert [m.name for m in svc.wait_for(1)] == ["fine"]


async def test_signed_jwt_is_cached_per_audience_and_renewed(keys, sender, monkeypatch):
    with PushService(keys.public_key) as one, PushService(keys.public_key) as two:
        await sender.send(subscribe(one, "a") + subscribe(two, "b"), PAYLOAD)
        await sender.send(subscribe(one, "a"), PAYLOAD)
        first, again = (m.headers["authorization"] for m in one.wait_for(2))
        [other] = two.wait_for(1)
        assert first == again  # not re-signed per message
        assert other.claims["aud"] == two.origin != one.origin
        real_time = time.time
        monkeypatch.setattr(time, "time", lambda: real_time() + 2 * 3600)
        await sender.send(subscribe(one, "a"), PAYLOAD)
        renewed = one.wait_for(3)[2]
        assert renewed.headers["authorization"] != first
        assert renewed.claims["exp"] > real_time() + 13 * 3600


async def test_bad_arguments_raise(sender, svc):
    subs = subscribe(svc, "a")
    with pytest.raises(ValueError):
        await sender.send(subs, b"x" * (MAX_PAYLOAD + 1))
    with pytest.raises(ValueError):
        await sender.send(subs, PAYLOAD, urgency="urgent")
    with pytest.raises(ValueError):
        await sender.send(subs, PAYLOAD, ttl=-1)
    with pytest.raises(ValueError):
        PushSender(VapidKeys(ec.generate_private_key(ec.SECP256R1())), "ops@platewatch.example")
    assert (await sender.send(subs, b"x" * MAX_PAYLOAD))[0].status == 201  # the limit fits


# -- the push service really checks ----------------------------------------------


def test_service_decrypts_the_rfc_8291_example():
    """Appendix A of RFC 8291: the service's own decryption matches the standard."""
    ua_private = ec.derive_private_key(
        int.from_bytes(b64url_decode("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"), "big"),
        ec.SECP256R1(),
    )
    ua_public = b64url_decode(
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
    )
    body = b64url_decode(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLoc"
        "InmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLV"
        "WGNWQexSgSxsj_Qulcy4a-fN"
    )
    browser = Browser(ua_private, ua_public, b64url_decode("BTBZMqHH6r4Tts7J_aSIgg"))
    plaintext, _ = decrypt(body, browser)
    assert plaintext == b"When I grow up, I want to be a watermelon"


def _resign(headers, key, **claims):
    """Replace the JWT with one carrying changed claims, signed by `key`."""
    token = headers["authorization"].split("t=", 1)[1].split(",", 1)[0]
    old = json.loads(b64url_decode(token.split(".")[1]))
    public = headers["authorization"].split("k=", 1)[1]
    headers["authorization"] = f"vapid t={sign_jwt(old | claims, key)}, k={public}"


OTHER = ec.generate_private_key(ec.SECP256R1())
OTHER_PUBLIC = VapidKeys(OTHER).public_key


def _flip_last_byte(h, body, key):
    return h, body[:-1] + bytes([body[-1] ^ 1])


def _signed_by_other_key(h, body, key):
    _resign(h, OTHER)
    return h, body


def _other_k(h, body, key):
    h["authorization"] = h["authorization"].split("k=")[0] + f"k={OTHER_PUBLIC}"
    return h, body


def _aud_without_port(h, body, key):  # the bug of the `webpush` package
    _resign(h, key, aud="http://127.0.0.1")
    return h, body


def _expired(h, body, key):
    _resign(h, key, exp=int(time.time()) - 60)
    return h, body


def _exp_over_24h(h, body, key):
    _resign(h, key, exp=int(time.time()) + 25 * 3600)
    return h, body


def _bad_sub(h, body, key):
    _resign(h, key, sub="ops@platewatch.example")
    return h, body


def _no_ttl(h, body, key):
    del h["ttl"]
    return h, body


def _aesgcm(h, body, key):
    h["content-encoding"] = "aesgcm"
    return h, body


TAMPERING = {
    _flip_last_byte: "decrypt",
    _signed_by_other_key: "signature",
    _other_k: "signature",
    _aud_without_port: "aud",
    _expired: "exp",
    _exp_over_24h: "exp",
    _bad_sub: "sub",
    _no_ttl: "TTL",
    _aesgcm: "Content-Encoding",
}


class Tamper(httpx.AsyncBaseTransport):
    """Alters the sender's real request on its way out."""

    def __init__(self, change, key):
        self.change, self.key, self.inner = change, key, httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request):
        headers = {k.lower(): v for k, v in request.headers.items()}
        del headers["content-length"]  # httpx sets it again for the forged body
        headers, body = self.change(headers, request.content, self.key)
        forged = httpx.Request(request.method, request.url, headers=headers, content=body)
        return await self.inner.handle_async_request(forged)

    async def aclose(self):
        await self.inner.aclose()


@pytest.mark.parametrize("change", TAMPERING, ids=lambda f: f.__name__.strip("_"))
async def test_service_refuses_tampered_pushes(keys, change):
    # No expected key: the refusals must come from the signature and claim checks alone.
    with PushService() as svc:
        client = httpx.AsyncClient(transport=Tamper(change, keys.private_key))
        async with client, PushSender(keys, SUBJECT, client=client) as sender:
            [delivery] = await sender.send(subscribe(svc, "a"), PAYLOAD)
        [refusal] = svc.messages
    assert delivery.status == 400 and not delivery.ok
    assert not refusal.verified and refusal.payload is None
    assert TAMPERING[change] in refusal.error


async def test_service_refuses_a_key_it_does_not_expect(svc, tmp_path):
    stranger = VapidKeys.load_or_create(tmp_path / "stranger")
    async with PushSender(stranger, SUBJECT) as sender:
        [delivery] = await sender.send(subscribe(svc, "a"), PAYLOAD)
    assert delivery.status == 400
    assert "expected server key" in svc.failures[0].error
    with pytest.raises(TimeoutError):
        svc.wait_for(1, timeout=0.1)


async def test_concurrent_sends_share_one_sender(svc, sender):
    subs = subscribe(svc, "a", "b")
    results = await asyncio.gather(*(sender.send(subs, PAYLOAD) for _ in range(5)))
    assert all(d.ok for deliveries in results for d in deliveries)
    assert len(svc.wait_for(10)) == 10
