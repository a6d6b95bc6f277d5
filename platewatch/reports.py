"""`platewatch report retention` and `platewatch report access-log`: dated reports a records officer
can file, from the same services the transparency page uses (server/deletions.py,
server/access_log.py). Reports only read: nothing is written to the database."""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import date

from server import access_log, deletions
from server.clock import SHOWABLE_DAYS, now_ms, shown
from server.settings import Settings
from server.store import queries_audit
from server.store.db import Database

FORMATS = ("csv", "text")
FIRST_DAY, LAST_DAY = (date.fromisoformat(day) for day in SHOWABLE_DAYS.split(" to "))


def _day(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: give YYYY-MM-DD") from None
    if not FIRST_DAY <= day <= LAST_DAY:  # local midnights any zone can hold
        raise argparse.ArgumentTypeError(f"{text!r} is out of range: give a date from {SHOWABLE_DAYS}")
    return day


def add_report(commands, common: argparse.ArgumentParser) -> None:
    report = commands.add_parser("report", help="reports to file").add_subparsers(dest="action", required=True)
    retention = report.add_parser("retention", parents=[common],
                                  help="what the retention purge deleted, day by day, from its audit records")
    access = report.add_parser("access-log", parents=[common],
                               help="every search and look-up (Cal. Civ. Code 1798.90.52 fields), refused ones marked")
    for command in (retention, access):
        command.add_argument("--from", dest="first", type=_day, required=True, help="first local day, YYYY-MM-DD")
        command.add_argument("--to", dest="last", type=_day, required=True, help="last local day, YYYY-MM-DD")
    access.add_argument("--format", choices=FORMATS, default="csv")


def _heading(title: str, settings: Settings, first: str, last: str, now: int) -> list[str]:
    return [f"{title}: {settings.department_name}", f"Period: {first} to {last} ({settings.time_zone} days)",
            f"Generated: {shown(now, settings.zone)}"]


def _age(days: float | None) -> str:
    return "-" if days is None else f"{days:.1f}"


async def retention_report(settings: Settings, first: date, last: date) -> str:
    now = now_ms()
    async with Database(settings.db_path, readers=1) as db:
        try:
            found = await deletions.deletions(db.reader, settings, first, last)
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from None
        entries, head = await queries_audit.chain_head(db.reader)
    lines = _heading("Retention report", settings, found.first_day, found.last_day, now) + [
        f"Retention period: {found.retention_days:g} days; reads older are deleted unless an evidence hold keeps them.",
        "Figures are the purge's own audit records (retention.purge), not a count made now.",
        "", f"{'Day':<12}{'Purges':>8}{'Reads deleted':>15}{'Images deleted':>16}{'Held past period':>18}"
            f"{'Oldest unheld read (days)':>27}"]
    for day in found.days:
        held = "-" if day.held_past_period is None else str(day.held_past_period)
        lines.append(f"{day.day:<12}{day.purges:>8}{day.reads_deleted:>15}{day.images_deleted:>16}{held:>18}"
                     f"{_age(day.oldest_unheld_age_days):>27}")
    lines += [f"{'Totals':<12}{found.purges:>8}{found.reads_deleted:>15}{found.images_deleted:>16}{'':>18}"
              f"{_age(found.oldest_unheld_age_days):>27}",
              "", f"Days without a purge: {found.days_without_purge}",
              "Oldest read any purge left (not under a hold): " + (
                  "none" if found.oldest_unheld_age_days is None else f"{found.oldest_unheld_age_days:.1f} days"),
              f"Audit chain head at generation: {head or 'none (empty log)'} ({entries} entries);"
              " check it with `platewatch audit verify --head HEAD`."]
    return "\n".join(lines)


async def write_access_log(settings: Settings, first: date, last: date, fmt: str, out=None) -> int:
    """Writes the access log to `out` (stdout); how many entries."""
    out = out or sys.stdout
    count, now = 0, now_ms()
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer:
        writer.writerow(access_log.FIELDS)
    else:
        print("\n".join(_heading("Access log", settings, first.isoformat(), last.isoformat(), now)), file=out)
    async with Database(settings.db_path, readers=1) as db:
        try:
            async for entry in access_log.entries(db.reader, settings, first, last):
                count += 1
                if writer:
                    writer.writerow(entry.row())
                else:
                    print(_text(entry), file=out)
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from None
    if not writer:
        print(f"{count} entr{'y' if count == 1 else 'ies'}", file=out)
    return count


def _text(entry: access_log.AccessEntry) -> str:
    refused = f"REFUSED (prohibited purpose: {entry.prohibited_purpose}) " if entry.refused else ""
    note = f"; note: {entry.note}" if entry.note else ""
    results = "" if entry.results is None else f"; {entry.results} result(s)"
    return (f"{entry.date_time}  {entry.username} ({entry.organisation})  {refused}{entry.what}: "
            f"{entry.query_terms or '-'}; reason: {entry.reason or '-'}; case: {entry.case_number or '-'}{note}"
            f"{results}  [audit #{entry.audit_entry}]")
