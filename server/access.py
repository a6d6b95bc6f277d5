"""Justified access to reads: what a search, a plate history or an evidence hold must give before
anything is shown (a reason from the department's list, a case number), and the keyset cursor a
further page carries, which must continue an audited line of the same officer with the same
justification. A case number or note that names one of the department's prohibited purposes is
refused here, and the refusal audited (server/purposes.py), so no path to stored reads skips it.
The web pages call it; the rules live only here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

import msgspec

from server import purposes
from server.settings import Settings
from server.store import queries_search as qs
from server.store.db import Database

CASE_MAX = 40
NOTE_MAX = 200  # an optional note on what the search is for, beside the case number
PATTERN_MAX = 16  # a plate pattern searched for (search, plate history)
NUMBER = re.compile(r"[0-9]{1,18}")  # an id SQLite can take (a 64-bit integer)
CURSOR = re.compile(r"([0-9]{1,15}):([0-9]{1,18})")  # the last read shown: captured_at:id


@dataclass(frozen=True, slots=True)
class Justification:
    reason_id: int | None  # None: a purpose the software sets, not one from the list (records_requests.py)
    label: str
    case: str
    note: str = ""

    def logged(self) -> dict:
        """The justification as audit lines keep it (the access log reads it back)."""
        return {"reason": self.label, "reason_id": self.reason_id, "case": self.case,
                **({"note": self.note} if self.note else {})}


class Cursor(NamedTuple):
    """Where a further page starts: the audit line of what it continues, the last read shown
    (captured_at, id) and how many were shown before."""
    line: int
    after: tuple[int, int]
    shown: int


def case_problem(case: str, purpose: str) -> str | None:
    """What is wrong with a case number (a search's, an evidence hold's), or None."""
    if not case:
        return f"Give the case number {purpose}."
    if len(case) > CASE_MAX:
        return f"The case number is too long: at most {CASE_MAX} characters."
    if not case.isprintable():
        return "The case number may not contain control characters."
    return None


def _note_problem(note: str) -> str | None:
    if len(note) > NOTE_MAX:
        return f"The note is too long: at most {NOTE_MAX} characters."
    if not note.isprintable():
        return "The note may not contain control characters."
    return None


async def check_justification(db: Database, settings: Settings, form, *, actor: str, asked: str,
                              terms: dict) -> tuple[Justification | None, list[str]]:
    """The reason (from the department's active list), case number and note, or what is wrong.
    A prohibited purpose in the case number or note refuses it whatever else is wrong, and the
    refusal is audited in `actor`'s name with the action `asked` and the query `terms`."""
    reason_id, case, note = (str(form.get(name, "")).strip() for name in ("reason", "case", "note"))
    reason = await qs.active_reason(db.reader, int(reason_id)) if NUMBER.fullmatch(reason_id) else None
    refusal = await purposes.check(db, settings, actor, asked, case, note, reason["label"] if reason else reason_id,
                                   terms)
    if refusal:
        return None, [refusal]
    errors = []
    if reason is None:
        errors.append("Choose the reason for this search from the list.")
    errors += [problem for problem in (case_problem(case, "this search is for"), _note_problem(note)) if problem]
    if errors:
        return None, errors
    return Justification(reason["id"], reason["label"], case, note), []


def page_cursor(form, line_field: str) -> Cursor | None:
    """A further page's cursor as posted: `line_field` names the audit line it continues."""
    line, count = str(form.get(line_field, "")), str(form.get("shown", ""))
    after = CURSOR.fullmatch(str(form.get("after", "")))
    if not (NUMBER.fullmatch(line) and NUMBER.fullmatch(count) and after) or int(count) < 1:
        return None
    return Cursor(int(line), (int(after[1]), int(after[2])), int(count))


async def continued_line(db: Database, line_id: int, action: str, username: str,
                         justification: Justification) -> dict | None:
    """The detail of the audit line a further page names, when it is this officer's `action` line
    with this justification (reason and case number); None when it is not."""
    line = await qs.audit_line(db.reader, line_id)
    if line is None or line["action"] != action or line["actor"] != username:
        return None
    detail = msgspec.json.decode(line["detail"])
    same = (detail.get("reason_id"), detail.get("case")) == (justification.reason_id, justification.case)
    return detail if same else None
