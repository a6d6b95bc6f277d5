"""Delivering alerts to webhook targets, beside the push sender: the Notifier offers each alert once
(queries_webhooks.queue_for_alert, in the transaction that claims it) and wakes this loop, which
POSTs the alert as signed JSON. A 2xx answer delivers it; anything else is tried again after 10 s,
30 s, 90 s, … (three times longer each time, at most an hour apart) until a day has passed, then
given up. Every attempt is recorded. Pending retries live in the database, not in memory: a dead
endpoint costs a row per alert, and retries survive a restart. At most MAX_IN_FLIGHT posts run at
once (PER_TARGET to one target), each bounded by a timeout; redirects are not followed (a redirect
is not a delivery).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import httpx
import msgspec

from server.alerts import alert_view
from server.clock import DAY_MS, now_ms
from server.store import queries, queries_webhooks
from server.store.db import Database
from server.webhooks import signature

log = logging.getLogger(__name__)
MAX_IN_FLIGHT = 8
PER_TARGET = 2  # posts in flight to one target: a dead one (each post waiting out its timeout) leaves the rest free
GIVE_UP_MS = DAY_MS  # retried for a day after the alert was offered, then given up
RETRY_FACTOR = 3
RETRY_MAX_S = 3600.0
LEASE_MARGIN_S = 30.0  # a claimed delivery is picked again only this long after its post's timeout


def retry_delay_s(attempt: int, first_s: float) -> float:
    """How long after failed attempt number `attempt` (from 1) the next one is made."""
    return min(first_s * RETRY_FACTOR ** (attempt - 1), RETRY_MAX_S)


def webhook_body(row: queries.Row, base_url: str) -> bytes:
    """The push payload (alert_view), which carries the priority, plus the read's image URLs
    (absolute, under the same base URL as the alert's page; fetching them needs a signed-in session)."""
    def image_url(path: str | None) -> str | None:
        return f"{base_url}/images/{path}" if path else None

    alert = msgspec.to_builtins(alert_view(row, base_url))
    return msgspec.json.encode({**alert, "plate_image_url": image_url(row["plate_image"]),
                                "vehicle_image_url": image_url(row["vehicle_image"])})


class WebhookSender:
    def __init__(self, db: Database, base_url: str, *, retry_s: float = 10.0, timeout_s: float = 10.0,
                 poll_s: float = 5.0, client: httpx.AsyncClient | None = None) -> None:
        self.db, self.base_url = db, base_url
        self.retry_s, self.timeout_s, self.poll_s = retry_s, timeout_s, poll_s
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._busy: dict[int, int] = {}  # target id -> its posts in flight
        self._interrupted: list[int] = []  # deliveries whose post a shutdown cut short

    def wake(self) -> None:
        """New deliveries are due now (the Notifier offered an alert)."""
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                wait_s = self.poll_s
                try:
                    wait_s = await self._start_due()
                except Exception:  # a transient database error must not end the loop
                    log.exception("webhooks: picking due deliveries failed")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait_s):
                        await self._wake.wait()
        finally:
            for task in list(self._tasks):
                task.cancel()

    async def _start_due(self) -> float:
        """Start the posts due now that slots allow; how long to wait for the next (unless woken)."""
        free, busy, now = MAX_IN_FLIGHT - len(self._tasks), list(self._busy), now_ms()
        next_at = await queries_webhooks.next_due_at(self.db.reader, busy) if free > 0 else None
        if next_at is None or next_at > now:
            return self.poll_s if next_at is None else min(self.poll_s, (next_at - now) / 1000)
        lease_until = now + int((self.timeout_s + LEASE_MARGIN_S) * 1000)
        async with self.db.transaction() as conn:
            due = await queries_webhooks.claim_due(conn, now, lease_until, free, PER_TARGET, busy)
        for delivery in due:
            target = delivery["webhook_id"]
            self._busy[target] = self._busy.get(target, 0) + 1
            task = asyncio.create_task(self.attempt(delivery))
            self._tasks.add(task)
            task.add_done_callback(lambda done, target=target: self._done(done, target))
        return self.poll_s if len(due) < free else 0  # a full batch: more may be due at once

    def _done(self, task: asyncio.Task, target: int) -> None:
        self._tasks.discard(task)
        self._busy[target] -= 1
        if not self._busy[target]:
            del self._busy[target]
        self._wake.set()  # a slot is free: more may be due

    async def attempt(self, delivery) -> None:
        """One try at one delivery (a row of claim_due), recorded with what comes of it."""
        try:
            await self._attempt(delivery)
        except asyncio.CancelledError:
            self._interrupted.append(delivery["id"])
            raise

    async def _attempt(self, delivery) -> None:
        row = await queries.alert_by_id(self.db.reader, delivery["alert_id"])
        status, error, ms = None, "the alert is gone (deleted with its read)", 0.0
        if row is not None:
            status, error, ms = await self._post(delivery, webhook_body(row, self.base_url))
        number, now = delivery["attempts"] + 1, now_ms()
        next_at, state = None, "delivered" if error == "" else "failed"
        if state == "failed" and row is not None:
            retry_at = now + int(retry_delay_s(number, self.retry_s) * 1000)
            if retry_at - delivery["created_at"] <= GIVE_UP_MS:
                next_at, state = retry_at, "pending"
        async with self.db.transaction() as conn:
            await queries_webhooks.record_attempt(conn, delivery["id"], number, now, status, error, ms, next_at, state)
        if error:
            log.info("webhook %s, alert %s, attempt %d: %s (%s)", delivery["webhook_id"], delivery["alert_id"],
                     number, error, "retrying" if next_at else "given up")

    async def _post(self, delivery, body: bytes) -> tuple[int | None, str, float]:
        """(HTTP status or None, error or '', milliseconds). The answer's body is never read."""
        timestamp = int(time.time())
        headers = {"Content-Type": "application/json", "X-Platewatch-Timestamp": str(timestamp),
                   "X-Platewatch-Signature": signature(delivery["secret"], timestamp, body)}
        start, status = time.perf_counter(), None
        try:
            async with asyncio.timeout(self.timeout_s):  # the whole exchange; httpx's is per phase
                async with self._client.stream("POST", delivery["url"], content=body, headers=headers) as answer:
                    status = answer.status_code
            error = "" if 200 <= status < 300 else f"HTTP {status}"
        except TimeoutError:
            error = f"timed out after {self.timeout_s:g} s"
        except Exception as exc:  # one target's fault must never sink the loop
            error = f"{type(exc).__name__}: {exc}"[:300] if str(exc) else type(exc).__name__
        return status, error, (time.perf_counter() - start) * 1000

    async def aclose(self) -> None:
        """Stop posting; a post cut short is due again at once (not when its lease ends): the next
        start sends it first. Call before the database closes."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._interrupted:
            async with self.db.transaction() as conn:
                await queries_webhooks.release(conn, self._interrupted, now_ms())
        if self._own_client:
            await self._client.aclose()
