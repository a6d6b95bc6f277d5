"""Alerts, in one place: raised from a read's matches (ingest) and from newly listed plates already
read (retro alerts, hot-list import), worked by an officer under one set of rules whether from the
web app or the API (acknowledged, then an outcome; a hit confirmed only once checked), and shown
the same way everywhere (`alert_view`: the API, the live feed, push payloads)."""

from __future__ import annotations

from collections.abc import Iterable

from contract.alerts import DEFAULT_PRIORITY, OUTCOME_CHOICES, VERIFIED_WITH
from contract.plates import fold
from contract.wire import Alert
from server import audit
from server.clock import from_ms
from server.matching import Match, best_match
from server.store import queries

RETRO_PLATES = 200  # new plates looked back on per query (and bound variables per statement)


class OutcomeRefused(ValueError):
    """An outcome the rules do not allow; `field` names what is missing or wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def alert_view(row: queries.Row, base_url: str) -> Alert:
    return Alert(
        id=row["id"], plate=row["entry_plate"], read_plate=row["read_plate"], hotlist=row["hotlist_name"],
        kind=row["hotlist_kind"], reason=row["entry_reason"], state=row["entry_state"], rule=row["rule"],
        detail=row["detail"], camera=row["camera_name"], seen_at=from_ms(row["seen_at"]), status=row["status"],
        retro=bool(row["retro"]), url=f"{base_url}/alerts/{row['id']}",
        priority=DEFAULT_PRIORITY if row["priority"] is None else row["priority"],  # None: raised before priorities
    )


# --- raising ---------------------------------------------------------------------------------

def alert_row(entry, match: Match, read_id: int, camera_id: int, seen_at: int, now: int, retro: bool = False) -> dict:
    return {
        "read_id": read_id, "camera_id": camera_id, "entry_id": entry["id"], "hotlist_id": entry["hotlist_id"],
        "hotlist_name": entry["hotlist_name"], "hotlist_kind": entry["kind"],
        "entry_plate": entry["plate"], "entry_plate_norm": entry["plate_norm"],
        "entry_state": entry["state"], "entry_reason": entry["reason"], "priority": entry["priority"],
        "rule": match.rule, "compared": match.compared, "detail": match.detail,
        "retro": int(retro), "created_at": now, "seen_at": seen_at,
    }


def matched_entries(entries, texts: list[str]) -> list[tuple[queries.Row, Match]]:
    found = []
    for entry in entries:
        match = best_match(texts, entry["plate_norm"])
        if match is not None:
            found.append((entry, match))
    return found


async def raise_alerts(conn, read_id: int, camera_id: int, captured: int, texts: list[str], now: int,
                       cooldown_ms: int) -> list[int]:
    """A stored read's alerts: one per active entry its texts match, unless this read already
    alerted for it or the same camera saw the same plate moments ago."""
    entries = await queries.active_entries_by_folded(conn, {fold(t) for t in texts}, now)
    alert_ids = []
    for entry, match in matched_entries(entries, texts):
        if await queries.alert_exists_for_read(conn, read_id, match.entry_plate_norm, entry["hotlist_id"]):
            continue  # a refined read alerts only for entries its first text did not
        if await queries.recent_alert_exists(
            conn, match.entry_plate_norm, camera_id, entry["hotlist_id"], captured - cooldown_ms, captured + cooldown_ms
        ):
            continue  # same car, same camera, moments ago: one alert is enough
        alert_ids.append(await queries.insert_alert(conn, alert_row(entry, match, read_id, camera_id, captured, now)))
    return alert_ids


async def raise_retro_alerts(conn, hotlist_id: int, new_plates: set[str], since: int, now: int,
                             read_before: int = queries.LAST_ID) -> list[int]:
    """Newly listed plates already read in the retention window (and stored by read `read_before`):
    the latest sighting per camera alerts."""
    entries = [entry for chunk in chunks(sorted(new_plates), RETRO_PLATES)
               for entry in await queries.active_entries_for_plates(conn, hotlist_id, chunk, now)]
    by_folded: dict[str, list] = {}
    for entry in entries:
        by_folded.setdefault(entry["plate_folded"], []).append(entry)
    latest: dict[tuple[int, int], tuple] = {}
    for chunk in chunks(list(by_folded), RETRO_PLATES):
        for read in await queries.reads_by_folded(conn, chunk, since, read_before):
            for entry in by_folded[read["plate_folded"]]:
                match = best_match([read["plate_norm"]], entry["plate_norm"])
                key = (entry["id"], read["camera_id"])
                if match and (key not in latest or latest[key][0]["captured_at"] < read["captured_at"]):
                    latest[key] = (read, entry, match)
    alert_ids = []
    for read, entry, match in latest.values():
        row = alert_row(entry, match, read["id"], read["camera_id"], read["captured_at"], now, retro=True)
        alert_ids.append(await queries.insert_alert(conn, row))
    return alert_ids


def chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- working an alert ------------------------------------------------------------------------

async def acknowledge(conn, alert_id: int, username: str, now: int, note: str = "") -> bool:
    """An officer has seen a new alert; False where it was not new (nothing changes)."""
    if not await queries.update_alert_status(conn, alert_id, "acknowledged", username, note, now):
        return False
    await audit.record(conn, username, "alert.acknowledged", alert=alert_id, **({"note": note} if note else {}))
    return True


def check_outcome(status: str, verified_with: str | None) -> None:
    """The rules for an outcome, wherever it comes from: one of the known outcomes, and a hit is
    confirmed only once checked against NCIC, the state system or dispatch."""
    if status not in OUTCOME_CHOICES:
        raise OutcomeRefused("outcome", "Choose an outcome.")
    if status == "confirmed" and verified_with not in VERIFIED_WITH:
        raise OutcomeRefused("verified_with", "A hit is confirmed only against NCIC, the state system or "
                                              f"dispatch: say which ({', '.join(VERIFIED_WITH)}).")


async def record_outcome(conn, alert_id: int, username: str, status: str, verified_with: str | None, note: str,
                         now: int) -> bool:
    """Record an officer's outcome (check_outcome first); False where there is no such alert.
    Recording one on a new alert acknowledges it first: an outcome implies it was seen."""
    check_outcome(status, verified_with)
    row = await queries.alert_by_id(conn, alert_id)
    if row is None:
        return False
    checked = verified_with if verified_with in VERIFIED_WITH else None
    full_note = f"verified with {checked}. {note}".strip() if checked else note
    if row["status"] == "new":
        await queries.update_alert_status(conn, alert_id, "acknowledged", username, "", now)
    await queries.update_alert_status(conn, alert_id, status, username, full_note, now)
    await audit.record(conn, username, f"alert.{status}", alert=alert_id, verified_with=verified_with or None,
                       note=note)
    return True
