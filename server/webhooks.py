"""Webhook targets, one set of rules for the Integrations page and `platewatch webhook add|list|remove`:
where alerts go (a checked URL), which list kinds (none named: every kind), and the signing secret,
returned once when the target is added. Every change is audited; the secret never is.

The secret is kept in the database as given out, not hashed like a camera token: the server signs
each delivery with it (HMAC-SHA256 is a shared-secret scheme), so it must be able to read it back,
as it must the TOTP secrets kept beside it (server/mfa.py). Whoever reads the database reads both:
the data dir and its backups are guarded for that (README, Backups). It is shown only once.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from hashlib import sha256

from server import audit, outside_urls
from server.clock import now_ms
from server.hotlists import LIST_KINDS
from server.store import queries_webhooks

SECRET_PREFIX = "pwwh_"  # tells a webhook secret apart from camera and user tokens (e.g. to a secret scanner)


class WebhookRefused(ValueError):
    """A target that may not be added; the message names what is wrong, as a form shows it."""


def url_problem(url: str) -> str | None:
    """Why the server may not send alerts to `url`, or None (server/outside_urls.py)."""
    return outside_urls.url_problem(url, "leave them out, the signature proves the sender")


def parse_kinds(kinds: str | Iterable[str]) -> str:
    """The list kinds a target wants, as stored ('a,b'; '' for every kind); WebhookRefused names an
    unknown one."""
    names = [k.strip() for k in (kinds.split(",") if isinstance(kinds, str) else kinds) if k.strip()]
    unknown = [k for k in names if k not in LIST_KINDS]
    if unknown:
        raise WebhookRefused(f"unknown list kind {', '.join(unknown)} (known: {', '.join(LIST_KINDS)})")
    return ",".join(k for k in LIST_KINDS if k in names)  # one order, no repeats


async def add_webhook(conn, actor: str, url: str, kinds: str | Iterable[str] = "") -> tuple[int, str]:
    """Add a target; (its id, its signing secret), the secret to show once."""
    if problem := url_problem(url):
        raise WebhookRefused(problem)
    stored_kinds = parse_kinds(kinds)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)  # 32 random bytes
    webhook_id = await queries_webhooks.insert_webhook(conn, url, stored_kinds, secret, actor, now_ms())
    await audit.record(conn, actor, "webhook.add", webhook=webhook_id, url=url, kinds=stored_kinds or "all")
    return webhook_id, secret


async def remove_webhook(conn, actor: str, webhook_id: int) -> bool:
    """Remove a target with its pending retries and its attempts; False where there is none."""
    target = await queries_webhooks.webhook_by_id(conn, webhook_id)
    if target is None or not await queries_webhooks.delete_webhook(conn, webhook_id):
        return False
    await audit.record(conn, actor, "webhook.remove", webhook=webhook_id, url=target["url"])
    return True


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """X-Platewatch-Signature: HMAC-SHA256 under the secret (its text, UTF-8) over `<timestamp>.<body>`."""
    return "sha256=" + hmac.new(secret.encode(), b"%d." % timestamp + body, sha256).hexdigest()
