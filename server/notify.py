"""Fan-out of new alerts: web push to the subscriptions of officers on duty (server/duty.py), and
in-process listeners (the live feed, which every signed-in user sees, on duty or not). Exactly one
sender claims each alert, so a push is never sent twice.

Ingest hands alert ids over directly for speed; a slow poll also picks up alerts written by
other processes (the CLI's hot-list import raises retro alerts) or left behind by a crash.
The claim also offers the alert to webhook targets (server/webhook_sender.py), in the same
transaction: each alert is offered once, whichever process raised it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

import msgspec

from contract.wire import Alert, PushSubscriptionIn
from server import audit
from server.alerts import alert_view
from server.auth import User
from server.clock import now_ms
from server.push import PushSender, Subscription, check_subscription
from server.store import queries, queries_push, queries_webhooks
from server.store.db import Database

log = logging.getLogger("platewatch.notify")


async def subscribe(db: Database, user: User, data: PushSubscriptionIn, allow_http: bool) -> int:
    """Check and keep a browser's push subscription for this user (API and web app alike);
    ValueError names what is wrong with it."""
    sub = Subscription(endpoint=data.endpoint, p256dh=data.keys.p256dh, auth=data.keys.auth)
    check_subscription(sub, allow_http=allow_http)
    async with db.transaction() as conn:
        sub_id = await queries_push.upsert_subscription(conn, user.id, sub.endpoint, sub.p256dh, sub.auth, now_ms())
        await audit.record(conn, user.username, "push.subscribe", subscription=sub_id)
    return sub_id


async def unsubscribe(db: Database, user: User, endpoint: str) -> bool:
    """Forget this user's subscription for `endpoint` (API and web app alike), audited either way;
    False if there was none."""
    async with db.transaction() as conn:
        removed = await queries_push.delete_user_subscription(conn, user.id, endpoint)
        await audit.record(conn, user.username, "push.unsubscribe", removed=removed)
    return removed


class Notifier:
    def __init__(self, db: Database, sender: PushSender, base_url: str, *, ttl_s: int, poll_s: float = 2.0,
                 wake_webhooks: Callable[[], None] = lambda: None) -> None:
        self.db, self.sender, self.base_url, self.wake_webhooks = db, sender, base_url, wake_webhooks
        self.ttl_ms, self.poll_s = ttl_s * 1000, poll_s
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._listeners: set[asyncio.Queue[Alert]] = set()
        self._outlets: list[Callable[[Alert], None]] = []
        self._tasks: set[asyncio.Task] = set()

    def enqueue(self, alert_ids: Iterable[int]) -> None:
        for alert_id in alert_ids:
            self._queue.put_nowait(alert_id)

    def listen(self, maxsize: int = 100) -> asyncio.Queue[Alert]:
        """A queue that receives every new alert; call `unlisten` when done."""
        queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize)
        self._listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[Alert]) -> None:
        self._listeners.discard(queue)

    def add_outlet(self, outlet: Callable[[Alert], None]) -> None:
        """Hand every new alert to `outlet` (MQTT) once, as it is claimed; it must queue, never block."""
        self._outlets.append(outlet)

    async def run(self) -> None:
        poller = asyncio.create_task(self._poll())
        try:
            while True:
                alert_id = await self._queue.get()
                task = asyncio.create_task(self.deliver(alert_id))
                self._tasks.add(task)  # keep a reference until done
                task.add_done_callback(self._tasks.discard)
        finally:
            poller.cancel()
            for task in list(self._tasks):
                task.cancel()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                self.enqueue(await queries.unnotified_alert_ids(self.db.reader))
            except Exception:  # a transient database error must not end the loop
                log.exception("polling for unnotified alerts failed")

    async def deliver(self, alert_id: int) -> None:
        now = now_ms()
        async with self.db.transaction() as conn:
            if not await queries.claim_alert_notification(conn, alert_id, now):
                return
            offered = await queries_webhooks.queue_for_alert(conn, alert_id, now)
        if offered:
            self.wake_webhooks()
        row = await queries.alert_by_id(self.db.reader, alert_id)
        if row is None:
            return
        alert = alert_view(row, self.base_url)
        self._publish(alert)
        if now - row["created_at"] > self.ttl_ms:
            return  # raised long ago (e.g. before a crash): the live feed shows it, phones don't buzz
        try:
            await self._push(alert)
        except Exception:
            log.exception("push for alert %s failed", alert_id)

    def _publish(self, alert: Alert) -> None:
        for queue in self._listeners:
            if not queue.full():  # a stalled listener misses alerts rather than blocking others
                queue.put_nowait(alert)
        for outlet in self._outlets:
            try:
                outlet(alert)
            except Exception:  # one outlet's fault must not stop the push
                log.exception("handing alert %s to %r failed", alert.id, outlet)

    async def _push(self, alert: Alert) -> None:
        # Who is on duty is read as the push goes out: going off duty stops the next alert's push.
        rows = await queries_push.active_subscriptions(self.db.reader, now_ms())
        if not rows:
            return
        subs = [Subscription(endpoint=r["endpoint"], p256dh=r["p256dh"], auth=r["auth"], id=r["id"]) for r in rows]
        deliveries = await self.sender.send(subs, msgspec.json.encode(alert))
        now = now_ms()
        async with self.db.transaction() as conn:
            await queries_push.record_deliveries(
                conn, [(alert.id, d.subscription.endpoint, d.status, d.error, d.ms, now) for d in deliveries]
            )
            ok = [d.subscription.id for d in deliveries if d.status is not None and 200 <= d.status < 300]
            gone = [d.subscription.id for d in deliveries if d.gone]
            if ok:
                await queries_push.mark_subscriptions_ok(conn, ok, now)
            if gone:
                await queries_push.delete_subscriptions(conn, gone)
                log.info("dropped %d push subscriptions the push service says are gone", len(gone))
