"""Deletion you can prove: what the retention purge did, day by day, from its own audit lines.

Each purge writes one `retention.purge` line (server/retention.py) saying how many reads it
deleted, how many reads older than the retention period an evidence hold kept, and how old the
oldest read no hold keeps was once it had run. The transparency page's last 30 days and
`platewatch report retention` are both this module's `deletions`: the figures are what the purges
recorded at the time, never a count of the rows there are now, and the audit chain vouches for
those lines. Days are the department's local days (settings.time_zone).
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, timedelta

import msgspec

from server.clock import DAY_MS, midnight, shown
from server.settings import Settings
from server.store import queries_accountability as qa

MAX_DAYS = 3660  # the longest report: ten years of days


class DeletionDay(msgspec.Struct):
    day: str  # the department's local date, YYYY-MM-DD
    purges: int  # purge runs that day; 0: none ran, and the other figures are null
    reads_deleted: int
    images_deleted: int
    held_past_period: int | None  # reads past the retention period an evidence hold kept: the most at any purge
    oldest_unheld_age_days: float | None  # the oldest read no hold keeps, after the purge: the most at any purge


class Deletions(msgspec.Struct):
    first_day: str
    last_day: str
    time_zone: str
    retention_days: float
    days: list[DeletionDay]
    purges: int
    reads_deleted: int
    images_deleted: int
    days_without_purge: int
    oldest_unheld_age_days: float | None  # the most any purge in the period left


def _age_days(at: int, detail: dict) -> float | None:
    """The oldest unheld read's age when the purge ran. Lines written before the purge recorded it
    give the oldest read's time instead: its age at the line's time is the same figure."""
    if detail.get("oldest_unheld_age_days") is not None:
        return float(detail["oldest_unheld_age_days"])
    oldest = detail.get("oldest_remaining")
    return round((at - oldest) / DAY_MS, 3) if isinstance(oldest, int) else None


def _most(a: float | int | None, b: float | int | None):
    return b if a is None else a if b is None else max(a, b)


def _day_of(at: int, detail: dict, day: dict) -> None:
    """Adds one purge line to its day's running figures."""
    day["purges"] += 1
    day["reads_deleted"] += int(detail.get("reads", 0)) + int(detail.get("future", 0))
    day["images_deleted"] += int(detail.get("images", 0))
    day["held_past_period"] = _most(day["held_past_period"], detail.get("held"))
    day["oldest_unheld_age_days"] = _most(day["oldest_unheld_age_days"], _age_days(at, detail))


async def deletions(reader, settings: Settings, first: date, last: date) -> Deletions:
    """What the purges recorded on each local day from `first` to `last`, both included."""
    if last < first:
        raise ValueError(f"the period ends ({last}) before it starts ({first})")
    if (last - first).days >= MAX_DAYS:
        raise ValueError(f"the period is longer than {MAX_DAYS} days: ask for a shorter one")
    zone = settings.zone
    names = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    bounds = [midnight(day, zone) for day in names] + [midnight(last + timedelta(days=1), zone)]
    days = [{"day": day.isoformat(), "purges": 0, "reads_deleted": 0, "images_deleted": 0,
             "held_past_period": None, "oldest_unheld_age_days": None} for day in names]
    for row in await qa.purge_records(reader, bounds[0], bounds[-1]):
        _day_of(row["at"], msgspec.json.decode(row["detail"]), days[bisect_right(bounds, row["at"]) - 1])
    rows = [DeletionDay(**day) for day in days]
    oldest = None
    for row in rows:
        oldest = _most(oldest, row.oldest_unheld_age_days)
    return Deletions(
        first_day=rows[0].day, last_day=rows[-1].day, time_zone=settings.time_zone,
        retention_days=settings.retention_days, days=rows, purges=sum(r.purges for r in rows),
        reads_deleted=sum(r.reads_deleted for r in rows), images_deleted=sum(r.images_deleted for r in rows),
        days_without_purge=sum(1 for r in rows if not r.purges), oldest_unheld_age_days=oldest)


async def last_days(reader, settings: Settings, now: int, days: int) -> Deletions:
    """The last `days` local days, today included."""
    today = date.fromisoformat(shown(now, settings.zone, "date"))
    return await deletions(reader, settings, today - timedelta(days=days - 1), today)
