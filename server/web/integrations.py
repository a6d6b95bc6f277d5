"""The Integrations page, for supervisors and admins: webhook targets (where every alert is POSTed,
signed) with their latest delivery attempts; add one (its signing secret is shown once, on the
answer to that request) or remove one. The same rules as `platewatch webhook` (server/webhooks.py).
"""

from __future__ import annotations

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template

from server.hotlists import LIST_KINDS
from server.store import queries_webhooks
from server.store.db import Database
from server.webhooks import WebhookRefused, add_webhook, remove_webhook
from server.web.base import form_field, no_store, page_role, render

SUPERVISOR = [page_role("supervisor")]
ATTEMPTS_SHOWN = 10  # per target


async def _page(request: Request, db: Database, status: int = 200, **extra) -> Template:
    attempts: dict[int, list] = {}
    for row in await queries_webhooks.recent_attempts(db.reader, ATTEMPTS_SHOWN):
        attempts.setdefault(row["webhook_id"], []).append(row)
    context = {"targets": await queries_webhooks.list_webhooks(db.reader), "attempts": attempts,
               "kinds": LIST_KINDS, "form": {}, **extra}
    return render(request, "integrations.html", "_integrations.html", context, status)


@get("/integrations", include_in_schema=False, guards=SUPERVISOR)
async def integrations_page(request: Request, db: NamedDependency[Database]) -> Template:
    return await _page(request, db)


@post("/integrations/webhooks", include_in_schema=False, guards=SUPERVISOR, status_code=200)
async def webhook_add(request: Request, db: NamedDependency[Database]) -> Template:
    """The secret is on the answer to this request and nowhere else the web app shows."""
    form = await request.form()
    values = {"url": form_field(form, "url", 4096), "kinds": [str(k) for k in form.getall("kinds", [])]}
    try:
        async with db.transaction() as conn:
            webhook_id, secret = await add_webhook(conn, request.user.username, values["url"], values["kinds"])
    except WebhookRefused as refused:
        return await _page(request, db, status=422, error=f"{str(refused)[:1].upper()}{str(refused)[1:]}.",
                           form=values)
    context = {"webhook": {"id": webhook_id, **values}, "secret": secret}
    return no_store(render(request, "webhook_secret.html", None, context))


@post("/integrations/webhooks/{webhook_id:int}/remove", include_in_schema=False, guards=SUPERVISOR,
      status_code=200)
async def webhook_remove(request: Request, webhook_id: FromPath[int], db: NamedDependency[Database]) -> Template:
    async with db.transaction() as conn:
        removed = await remove_webhook(conn, request.user.username, webhook_id)
    if not removed:
        raise NotFoundException(f"no webhook {webhook_id}")
    return await _page(request, db, notice=f"Webhook {webhook_id} removed, with its pending retries.")


INTEGRATION_HANDLERS = [integrations_page, webhook_add, webhook_remove]
