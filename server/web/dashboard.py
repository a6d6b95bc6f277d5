"""The chief's dashboard, for supervisors and admins (the audit log is web/audit.py); its figures
and charts are server/figures.py's."""

from __future__ import annotations

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.response import Template

from server.clock import day_starts, now_ms
from server.false_hits import false_hits
from server.figures import DAYS, KIND_NAMES, OUTCOMES, charts, dashboard_numbers, summaries
from server.hotlist_sources import stale_lists
from server.settings import Settings
from server.store import queries_admin
from server.store.db import Database
from server.web.base import page_role


@get("/dashboard", include_in_schema=False, guards=[page_role("supervisor")])
async def dashboard(request: Request, db: NamedDependency[Database], settings: NamedDependency[Settings]) -> Template:
    now = now_ms()
    numbers = await dashboard_numbers(db.reader, now, settings.zone)
    drawn = charts(numbers)
    bounds = day_starts(now, settings.zone, DAYS)
    context = {"numbers": numbers, "charts": drawn, "summaries": summaries(numbers, drawn["hit_totals"]),
               "cameras": await queries_admin.camera_health(db.reader, now), "now": now,
               "on_duty": await queries_admin.count_on_duty(db.reader, now),  # a count: who is where is not shown
               "stale_lists": await stale_lists(db.reader, now),  # past their source's maximum age
               "outcome_names": OUTCOMES, "kind_names": KIND_NAMES, "user": request.user,
               "false_hits": await false_hits(db.reader, bounds[0], bounds[-1])}
    return Template("dashboard.html", context=context)


DASHBOARD_HANDLERS = [dashboard]
