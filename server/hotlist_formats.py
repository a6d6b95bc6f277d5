"""Hot-list files as states and vendors ship them, read into entries: one parser that the CLI, the
web upload (and later a scheduled source) all call.

Three layouts: our CSV with a header line; a delimited file without one (`;`, `:`, `,`, `|` or tab)
with a column mapping; a fixed-width file with a field map (1-based, inclusive character positions,
as state feed specifications print them). Every line is checked, and every bad one reported with
its number, so a clerk fixes the feed once. A file that is not UTF-8 is refused by name unless its
encoding (Latin-1) is given.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo

from contract.alerts import PRIORITY_WORDS
from contract.plates import fold, normalize
from server.clock import EARLIEST_MS, LATEST_MS, SHOWABLE_DAYS, end_of_day, to_ms

FORMATS = ("csv", "delimited", "fixed")
# The delimiters state feeds and vendor systems use (Genetec AutoVu accepts exactly these); "tab" names \t.
DELIMITERS = {",": ",", ";": ";", ":": ":", "|": "|", "tab": "\t", "\t": "\t", "\\t": "\t"}
ENCODINGS = {"utf-8": "utf-8-sig", "latin-1": "latin-1"}  # as named → Python codec (a UTF-8 BOM is dropped)
ENCODING_ALIASES = {"utf8": "utf-8", "latin1": "latin-1", "iso-8859-1": "latin-1"}
FIELDS = ("plate", "state", "plate_type", "reason", "priority", "expires", "record", "note")
FIELD_ALIASES = {"type": "plate_type", "category": "reason", "expiry": "expires", "ncic": "record",
                 "ncic_number": "record", "record_number": "record"}
SKIPPED = ("-", "skip")  # a column of a delimited file that is not used
MAX_PLATE = 10
TEXT_LIMITS = {"state": 2, "plate_type": 10, "reason": 500, "record": 40, "note": 500}
_PRIORITY_NUMBER = re.compile(r"[0-9]{1,3}")


class FormatError(ValueError):
    """Import options that make no sense (an unknown field, overlapping positions): says which."""


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(slots=True)
class ParsedList:
    entries: list[dict] = field(default_factory=list)
    errors: list[BadLine] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ListFormat:
    """How a list's files are laid out. `columns`: the field of each delimited column ('' unused);
    `fixed`: (field, first, last) character positions, 1-based and inclusive."""

    format: str = "csv"
    delimiter: str = ","
    columns: tuple[str, ...] = ()
    fixed: tuple[tuple[str, int, int], ...] = ()
    encoding: str = "utf-8"

    def options(self) -> dict[str, str]:
        """The options as the CLI flags and the web form write them."""
        return {
            "format": self.format, "encoding": self.encoding,
            "delimiter": "tab" if self.delimiter == "\t" else self.delimiter,
            "columns": ",".join(name or "-" for name in self.columns),
            "fixed": ",".join(f"{name}:{first}-{last}" for name, first, last in self.fixed),
        }

    def to_json(self) -> str:
        return json.dumps(self.options())

    @classmethod
    def from_json(cls, text: str | None) -> ListFormat:
        """A list's remembered format; our CSV where none is remembered (or it no longer parses)."""
        try:
            return list_format(**json.loads(text), ignore_others=True) if text else cls()
        except (FormatError, ValueError, TypeError):
            return cls()


def list_format(format: str | None = None, delimiter: str | None = None, columns: str | None = None,
                fixed: str | None = None, encoding: str | None = None, *, ignore_others: bool = False) -> ListFormat:
    """Options as typed (CLI flags, form fields) → a ListFormat, or FormatError naming the problem.
    Without a format, a field map means fixed and a column mapping delimited. An option the format
    does not use is refused, unless `ignore_others` (a form that sends every field)."""
    fmt = (format or "").strip().lower() or ("fixed" if fixed else "delimited" if columns else "csv")
    if fmt not in FORMATS:
        raise FormatError(f"unknown format '{fmt}' (known: {', '.join(FORMATS)})")
    used = {"csv": {"delimiter"}, "delimited": {"delimiter", "columns"}, "fixed": {"fixed"}}[fmt]
    given = {"delimiter": delimiter, "columns": columns, "fixed": fixed}
    for name, value in given.items():
        if value and name not in used:
            if not ignore_others:
                raise FormatError(f"the {fmt} format takes no {name} option")
            given[name] = None
    if fmt == "delimited" and not given["columns"]:
        raise FormatError("a delimited file needs a column mapping, e.g. columns plate,state,reason")
    if fmt == "fixed" and not given["fixed"]:
        raise FormatError("a fixed-width file needs a field map, e.g. fixed plate:1-10,state:11-12")
    return ListFormat(
        format=fmt, delimiter=parse_delimiter(given["delimiter"] or ","), encoding=parse_encoding(encoding),
        columns=parse_columns(given["columns"]) if given["columns"] else (),
        fixed=parse_fixed(given["fixed"]) if given["fixed"] else (),
    )


def parse_delimiter(text: str) -> str:
    if text not in DELIMITERS and text.strip().lower() not in DELIMITERS:
        raise FormatError(f"unknown delimiter {text!r} (known: , ; : | tab)")
    return DELIMITERS.get(text) or DELIMITERS[text.strip().lower()]


def parse_encoding(text: str | None) -> str:
    name = (text or "utf-8").strip().lower()
    name = ENCODING_ALIASES.get(name, name)
    if name not in ENCODINGS:
        raise FormatError(f"unknown encoding '{text}' (known: {', '.join(ENCODINGS)})")
    return name


def field_name(text: str) -> str:
    name = text.strip().lower().replace(" ", "_")
    name = FIELD_ALIASES.get(name, name)
    if name not in FIELDS:
        raise FormatError(f"unknown field '{text.strip()}' (known: {', '.join(FIELDS)})")
    return name


def _check_fields(names: list[str], where: str) -> None:
    if "plate" not in names:
        raise FormatError(f"the {where} has no 'plate' field")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise FormatError(f"the {where} names '{repeated[0]}' twice")


def parse_columns(text: str) -> tuple[str, ...]:
    """'plate,state,-,reason' → each column's field; '-' (or 'skip') leaves a column unused."""
    columns = tuple("" if c.strip().lower() in SKIPPED else field_name(c) for c in text.split(","))
    _check_fields([c for c in columns if c], "column mapping")
    return columns


def parse_fixed(text: str) -> tuple[tuple[str, int, int], ...]:
    """'plate:1-10,state:11-12' → (field, first, last), 1-based inclusive; 'state:11' is one character."""
    spans = []
    for item in text.split(","):
        name, _, span = item.partition(":")
        found = re.fullmatch(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?", span)
        if not found:
            raise FormatError(f"'{item.strip()}' in the field map is not field:first-last, e.g. plate:1-10")
        first, last = int(found[1]), int(found[2] or found[1])
        if not 1 <= first <= last:
            raise FormatError(f"'{item.strip()}' in the field map: positions start at 1 and first ≤ last")
        spans.append((field_name(name), first, last))
    _check_fields([name for name, _, _ in spans], "field map")
    ordered = sorted(spans, key=lambda s: s[1])
    for (before, _, end), (after, start, _) in zip(ordered, ordered[1:]):
        if start <= end:
            raise FormatError(f"'{before}' and '{after}' overlap in the field map")
    return tuple(spans)


# --- one line's fields -----------------------------------------------------------------------

def ncic_plate(text: str) -> str:
    """A plate as NCIC enters it: letters and digits only; spaces, hyphens and symbols (&, #, ♥, ★)
    are left out. A letter outside A–Z (É) is no plate: InvalidPlate names it."""
    return normalize("".join(c for c in text if c.isalnum()))


def parse_priority(text: str) -> int | None:
    """0–100, or low / medium / high; None where empty (the list's default applies)."""
    word = text.strip().lower()
    if not word:
        return None
    if word in PRIORITY_WORDS:
        return PRIORITY_WORDS[word]
    if _PRIORITY_NUMBER.fullmatch(word) and int(word) <= 100:
        return int(word)
    raise ValueError(f"priority '{text.strip()}' is not 0–100 or {', '.join(PRIORITY_WORDS)}")


class ExpiryOutOfRange(ValueError):
    """A date or time, but one the app cannot keep and show (9999-12-31 ends in year 10000)."""


def _expiry_day(text: str) -> date | None:
    """A year (the end of it), YYYY-MM-DD, YYYYMMDD or MM/DD/YYYY; None for anything else."""
    if re.fullmatch(r"[0-9]{4}", text):
        return date(int(text), 12, 31)
    if re.fullmatch(r"[0-9]{8}", text):
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    if found := re.fullmatch(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})", text):
        return date(int(found[3]), int(found[1]), int(found[2]))
    return date.fromisoformat(text) if len(text) == 10 else None


def parse_expiry(text: str, zone: tzinfo = UTC) -> int | None:
    """A date (or a year) expires at the end of that day (year) in `zone`, the department's time
    zone; a datetime needs its offset, and keeps it. Either must lie where every page can show it."""
    text = text.strip()
    if not text:
        return None
    if (day := _expiry_day(text)) is not None:
        try:
            expires = end_of_day(day, zone)
        except OverflowError:  # the day after 9999-12-31
            expires = LATEST_MS + 1
    else:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise ValueError("a time needs a UTC offset, e.g. 2026-12-31T23:00:00Z")
        expires = to_ms(moment)
    if not EARLIEST_MS <= expires <= LATEST_MS:
        raise ExpiryOutOfRange(f"is out of range: give a date from {SHOWABLE_DAYS}, or none for no expiry")
    return expires


def parse_entry(values: dict[str, str], added_by: str, zone: tzinfo) -> dict:
    """One line's fields (by field name) → an entry, or ValueError saying what is wrong."""
    raw = values.get("plate", "").strip()
    plate = ncic_plate(raw)
    if not plate:
        raise ValueError("plate is empty or has no letters or digits")
    if len(plate) > MAX_PLATE:
        raise ValueError(f"plate '{plate}' is longer than {MAX_PLATE} characters")
    expiry = values.get("expires", "")
    try:
        expires = parse_expiry(expiry, zone)
    except ExpiryOutOfRange as exc:
        raise ValueError(f"expires '{expiry.strip()}' {exc}") from None
    except ValueError as exc:
        raise ValueError(f"expires '{expiry.strip()}' is not an ISO date or time, nor YYYYMMDD, MM/DD/YYYY "
                         f"or a year: {exc}") from None
    text = {name: values.get(name, "").strip()[:limit] for name, limit in TEXT_LIMITS.items()}
    return {
        "plate": raw, "plate_norm": plate, "plate_folded": fold(plate), "state": text["state"].upper(),
        "plate_type": text["plate_type"].upper(), "reason": text["reason"], "record": text["record"],
        "note": text["note"], "priority": parse_priority(values.get("priority", "")), "expires_at": expires,
        "added_by": added_by,
    }


# --- whole files -----------------------------------------------------------------------------

def text_line(data: bytes, offset: int) -> int:
    return data[:offset].count(b"\n") + 1


def _header_errors(names: list[str]) -> list[BadLine]:
    if not names:
        return [BadLine(1, "empty file: a header line with a 'plate' column is required")]
    errors, known = [], []
    for name in names:
        try:
            known.append(field_name(name))
        except FormatError:
            errors.append(BadLine(1, f"unknown column '{name}' (known: {', '.join(FIELDS)})"))
    if "plate" not in known:
        errors.append(BadLine(1, "missing required column 'plate'"))
    if len(set(known)) != len(known):
        errors.append(BadLine(1, "a column name is repeated (or two name the same field)"))
    return errors


def _rows(reader, names: tuple[str, ...], errors: list[BadLine], trailing_empty_ok: bool) -> Iterator[tuple[int, dict]]:
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # blank lines are harmless
        while trailing_empty_ok and len(row) > len(names) and not row[-1].strip():
            row.pop()  # "ABC;CA;stolen;": a delimiter after the last field
        if len(row) != len(names):
            errors.append(BadLine(reader.line_num, f"expected {len(names)} fields, got {len(row)}"))
            continue
        yield reader.line_num, {name: value for name, value in zip(names, row) if name}


def _csv_records(text: str, fmt: ListFormat, errors: list[BadLine]) -> Iterator[tuple[int, dict]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=fmt.delimiter)
    names = [h.strip().lower() for h in next(reader, None) or []]
    if header_errors := _header_errors(names):
        errors.extend(header_errors)
        return
    yield from _rows(reader, tuple(field_name(n) for n in names), errors, trailing_empty_ok=False)


def _delimited_records(text: str, fmt: ListFormat, errors: list[BadLine]) -> Iterator[tuple[int, dict]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=fmt.delimiter)
    yield from _rows(reader, fmt.columns, errors, trailing_empty_ok=True)


def _fixed_records(text: str, fmt: ListFormat, errors: list[BadLine]) -> Iterator[tuple[int, dict]]:
    """A line may stop early where its last field is blank (trailing spaces trimmed), but one that
    ends inside an earlier field was cut short: reading it would list part of a plate."""
    spans = sorted(fmt.fixed, key=lambda span: span[1])
    needed = spans[-2][2] if len(spans) > 1 else 1
    for number, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        if len(line) < needed:
            errors.append(BadLine(number, f"only {len(line)} characters: the field map needs at least {needed} "
                                          "(cut short?)"))
            continue
        yield number, {name: line[first - 1:last] for name, first, last in fmt.fixed}


RECORDS = {"csv": _csv_records, "delimited": _delimited_records, "fixed": _fixed_records}


def decode(data: bytes, encoding: str) -> tuple[str | None, BadLine | None]:
    try:
        return data.decode(ENCODINGS[encoding]), None
    except UnicodeDecodeError as exc:
        return None, BadLine(text_line(data, exc.start), f"not {encoding.upper()} text; if the feed is Latin-1, "
                                                         "import it with the encoding latin-1")


def parse_list(data: bytes, fmt: ListFormat, added_by: str, zone: tzinfo = UTC) -> ParsedList:
    """Every line checked; a bare date (or year) in `expires` ends at the end of that day in `zone`."""
    result = ParsedList()
    text, undecodable = decode(data, fmt.encoding)
    if undecodable:
        result.errors.append(undecodable)
        return result
    first_seen: dict[str, int] = {}
    for line, values in RECORDS[fmt.format](text, fmt, result.errors):
        try:
            entry = parse_entry(values, added_by, zone)
        except ValueError as exc:
            result.errors.append(BadLine(line, str(exc)))
            continue
        if entry["plate_norm"] in first_seen:
            result.errors.append(BadLine(line, f"plate {entry['plate_norm']} repeats line {first_seen[entry['plate_norm']]}"))
            continue
        first_seen[entry["plate_norm"]] = line
        result.entries.append(entry)
    return result


def parse_csv(data: bytes, added_by: str, zone: tzinfo = UTC) -> ParsedList:
    """Our CSV with a header line, UTF-8."""
    return parse_list(data, ListFormat(), added_by, zone)
