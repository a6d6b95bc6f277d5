"""On duty or off. Web push pages only officers on duty (notify.py asks queries_push.active_subscriptions
for their subscriptions), so a phone stays quiet on a day off; the live feed still shows every alert
to whoever has the app open, on duty or not. Going on duty lasts settings.shift_hours, after which
the officer is off duty without doing anything: a switch forgotten at the end of a shift must not
page them for ever. Stored as users.on_duty_until (epoch ms; NULL is off duty).

The web app (`POST /duty`), the API (`POST /api/v1/duty`) and the demo all go through set_duty.
"""

from __future__ import annotations

from server import audit
from server.clock import HOUR_MS
from server.store import queries



def shift_end(now: int, shift_hours: float) -> int:
    return now + round(shift_hours * HOUR_MS)


async def set_duty(conn, user_id: int, username: str, on: bool, *, now: int, shift_hours: float,
                   via: str) -> int | None:
    """On duty from `now` for a shift (again while on duty: a fresh shift from now), or off at
    once; audited as duty.on (with `until`) or duty.off in the caller's transaction. Returns when
    the shift ends (epoch ms), or None when off duty."""
    until = shift_end(now, shift_hours) if on else None
    await queries.set_on_duty_until(conn, user_id, until)
    if until is None:
        await audit.record(conn, username, "duty.off", via=via)
    else:
        await audit.record(conn, username, "duty.on", until=until, via=via)
    return until


async def on_duty_until(conn, user_id: int, now: int) -> int | None:
    """When the user's shift ends, or None when they are off duty (never went on, went off, or
    the shift has run out)."""
    until = await queries.on_duty_until(conn, user_id)
    return until if until is not None and until > now else None
