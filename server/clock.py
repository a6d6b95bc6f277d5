"""Time as the database keeps it: Unix epoch milliseconds, UTC. And the one place that turns it
into the department's local time (settings.time_zone) and back: what people see and type."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta, tzinfo

# Named formats for pages (any other strftime format works too); %Z is the zone's abbreviation.
FORMATS = {
    "second": "%Y-%m-%d %H:%M:%S %Z",  # 2026-11-22 08:15:03 CST
    "minute": "%Y-%m-%d %H:%M %Z",
    "date": "%Y-%m-%d",
    "clock": "%H:%M:%S %Z",
}
ISO = "iso"  # for <time datetime=…>: ISO 8601 with the local offset, 2026-11-22T08:15:03-06:00


HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def now_ms() -> int:
    return int(time.time() * 1000)


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# The stored times any zone can show: datetime's range (years 1 to 9999) less a day at each end,
# so that no UTC offset moves a shown time past it. Ingest refuses capture times outside it; an
# older database may still hold any 64-bit integer, which shows as the nearest of these edges.
EARLIEST_MS = to_ms(datetime(1, 1, 2, tzinfo=UTC))
LATEST_MS = to_ms(datetime(9999, 12, 30, tzinfo=UTC))

# Whole local days inside that span in any zone (UTC offsets are under a day): what an error about
# a time out of range (an expiry, a search bound) offers instead.
SHOWABLE_DAYS = "0001-01-03 to 9999-12-28"


def showable(ms: int) -> int:
    """`ms` moved into [EARLIEST_MS, LATEST_MS]: a year-10000 read shows as 9999-12-30, not a 500."""
    return min(max(ms, EARLIEST_MS), LATEST_MS)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(showable(ms) / 1000, tz=UTC)


def local(moment: int | datetime, zone: tzinfo) -> datetime:
    """Epoch ms (or an aware datetime) as an aware datetime in `zone`."""
    if isinstance(moment, datetime):
        try:
            return moment.astimezone(zone)
        except OverflowError:  # e.g. 0001-01-01T00:00+01:00 in UTC: before year 1
            moment = to_ms(moment)
    return datetime.fromtimestamp(showable(moment) / 1000, tz=zone)


def shown(moment: int | datetime, zone: tzinfo, fmt: str = "second") -> str:
    """How a time reads on a page: local, in a named format of FORMATS (or a strftime one), or ISO."""
    moment = local(moment, zone)
    return moment.isoformat() if fmt == ISO else moment.strftime(FORMATS.get(fmt, fmt))


def local_to_ms(moment: datetime, zone: tzinfo) -> int:
    """A naive wall-clock time in `zone` (an aware one keeps its offset) as epoch ms. A time that
    a DST change skips or repeats takes zoneinfo's fold=0 reading (the offset before the change)."""
    return to_ms(moment if moment.tzinfo else moment.replace(tzinfo=zone))


def midnight(day: date, zone: tzinfo) -> int:
    """Epoch ms at which the local day starts. Days are 23 or 25 hours long across DST changes."""
    return local_to_ms(datetime(day.year, day.month, day.day), zone)


def end_of_day(day: date, zone: tzinfo) -> int:
    """The last millisecond of the local day."""
    return midnight(day + timedelta(days=1), zone) - 1


def day_starts(now: int, zone: tzinfo, days: int) -> list[int]:
    """Local midnights starting the last `days` days (today last), then tomorrow's: days + 1 bounds."""
    today = local(now, zone).date()
    return [midnight(today - timedelta(days=days - 1 - i), zone) for i in range(days + 1)]
