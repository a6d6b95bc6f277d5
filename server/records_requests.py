"""Public records requests: a resident asks what the department holds about a plate.

Anyone may ask on /request, without an account; nothing is disclosed automatically: the asker
gets a request number and what happens next. Each address may ask PER_HOUR times an hour (the
address the server sees: behind Caddy, the one Caddy forwards, which uvicorn trusts from the
loopback proxy only). Only a keyed hash of it is kept, for the count. Supervisors and admins see
the queue, look the plate up through the same search service investigators use (server/searches.py:
reason PUBLIC_RECORDS, the request number as the case number, audited as any search), and record
the answer, dated. Requests are records: the retention purge never deletes them, and the plate a
request names is not a read (it is matched against nothing, and counted as no read).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import statistics
from dataclasses import dataclass

from contract.plates import PLATE_MAX, InvalidPlate, normalize
from server import audit
from server.access import Justification
from server.clock import DAY_MS, HOUR_MS, from_ms, now_ms
from server.searches import run_search
from server.settings import Settings
from server.store import queries_requests as qr
from server.store import queries_search as qs
from server.store.db import Database

PUBLIC_RECORDS = "Public records request"  # the reason a look-up for a request is run for
PER_HOUR = 3  # requests one address may make in an hour
NAME_MAX, EMAIL_MAX, ADDRESS_MAX, MESSAGE_MAX, ANSWER_MAX = 100, 254, 300, 2000, 5000  # the table's bounds
FIELDS = ("plate", "name", "email", "postal_address", "message")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
NUMBER = re.compile(r"R-([0-9]{1,18})")
TOO_MANY = (f"This address has sent {PER_HOUR} requests in the last hour, the most we take. Please try again "
            "in an hour, or write to the department.")


class TooManyRequests(Exception):
    """The asking address has reached PER_HOUR requests in the last hour."""


class AlreadyAnswered(Exception):
    """A request is answered once; the answer and its date stay as recorded."""


@dataclass(frozen=True, slots=True)
class Asked:
    plate: str  # normalised (contract/plates.py)
    name: str
    email: str
    postal_address: str
    message: str


@dataclass(frozen=True, slots=True)
class Figures:
    """Requests in a period, for the transparency report."""
    received: int
    answered: int
    median_days_to_answer: float | None  # of those answered in the period; None: none answered


def request_number(request_id: int) -> str:
    """What the asker is given and the look-up's case number: R-00042."""
    return f"R-{request_id:05d}"


def _text_problem(label: str, text: str, limit: int, *, lines: bool = False) -> str | None:
    if len(text) > limit:
        return f"{label}: at most {limit} characters (this has {len(text)})."
    allowed = text.replace("\r", "").replace("\n", "") if lines else text
    if not allowed.isprintable():
        return f"{label}: may not contain control characters."
    return None


def _plate_problem(text: str) -> tuple[str, str | None]:
    """The plate normalised, and what is wrong with it."""
    try:
        plate = normalize(text)
    except InvalidPlate as bad:
        return "", f"Plate: “{bad.char}” cannot be on a plate: give letters A–Z and digits 0–9."
    if not plate:
        return "", "Plate: give the plate you are asking about."
    if len(plate) > PLATE_MAX:
        return "", f"Plate: at most {PLATE_MAX} letters and digits."
    return plate, None


def check_request(values: dict[str, str]) -> tuple[Asked | None, list[str]]:
    """A request as the form gives it (each value trimmed), or what is wrong, each naming its field."""
    plate, problem = _plate_problem(values["plate"])
    errors = [problem] if problem else []
    if not values["name"]:
        errors.append("Name: give your name, so the answer can be addressed to you.")
    if not values["email"] and not values["postal_address"]:
        errors.append("Contact: give an email address or a postal address for the answer.")
    if values["email"] and not EMAIL.fullmatch(values["email"]):
        errors.append("Email: this is not an email address (name@example.org).")
    for label, field, limit, lines in (("Name", "name", NAME_MAX, False), ("Email", "email", EMAIL_MAX, False),
                                       ("Postal address", "postal_address", ADDRESS_MAX, True),
                                       ("Message", "message", MESSAGE_MAX, True)):
        if problem := _text_problem(label, values[field], limit, lines=lines):
            errors.append(problem)
    if errors:
        return None, errors
    return Asked(plate, values["name"], values["email"], values["postal_address"], values["message"]), []


def client_key(settings: Settings, address: str) -> str:
    """A keyed hash of the asking address: enough to count its requests, not to recover it."""
    secret = (settings.data_dir / "app_secret").read_bytes()  # made by create_app at start
    return hmac.new(secret, address.encode(), hashlib.sha256).hexdigest()


async def receive(db: Database, asked: Asked, key: str) -> str:
    """Store the request and audit it (the number only: no contact details in the log); its number.
    TooManyRequests when the address has reached the limit (counted in the same transaction)."""
    now = now_ms()
    async with db.transaction() as conn:
        if await qr.count_from_client(conn, key, now - HOUR_MS) >= PER_HOUR:
            raise TooManyRequests()
        request_id = await qr.insert_request(conn, now, asked.plate, asked.name, asked.email, asked.postal_address,
                                             asked.message, key)
        number = request_number(request_id)
        await audit.record(conn, "public", "request.received", request=number)
    return number


async def look_up(db: Database, settings: Settings, request, actor: str) -> tuple[list, bool, int]:
    """The reads of the request's plate within the retention window, through the search service:
    audited as a `search` for PUBLIC_RECORDS with the request number as the case number."""
    now = now_ms()
    number = request_number(request["id"])
    criteria = qs.Criteria(request["plate"], False, settings.retention_cutoff(now), now)
    logged = {"plate": criteria.pattern, "fuzzy": False, "camera": None, "colour": None,
              "from": from_ms(criteria.since).isoformat(), "to": from_ms(criteria.until).isoformat()}
    return await run_search(db, actor, criteria, Justification(None, PUBLIC_RECORDS, number), logged,
                            request=number)


def answer_problem(text: str) -> str | None:
    if not text:
        return "Answer: write what the department told the resident."
    return _text_problem("Answer", text, ANSWER_MAX, lines=True)


async def answer(db: Database, request_id: int, text: str, actor: str) -> None:
    """Record the answer, dated now, and audit it; AlreadyAnswered when it was."""
    async with db.transaction() as conn:
        if not await qr.record_answer(conn, request_id, text, now_ms(), actor):
            raise AlreadyAnswered()
        await audit.record(conn, actor, "request.answered", request=request_number(request_id))


async def figures(reader, since: int, until: int) -> Figures:
    """Requests received and answered in [since, until), and the median days answered ones waited."""
    waits = await qr.answer_times_between(reader, since, until)
    median = round(statistics.median(waits) / DAY_MS, 1) if waits else None
    return Figures(await qr.received_between(reader, since, until), len(waits), median)
