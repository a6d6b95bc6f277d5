"""Plate text normalisation, OCR confusion classes and hot-list match rules. Pure: no I/O.

Matching folds each character onto its confusion class, so one indexed lookup on the folded
form finds every entry that differs from a read only by classic OCR confusions. The rule that
fired, and which characters were swapped, is kept so officers see why an alert was raised.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Characters a camera OCR mistakes for one another; the first of each class is its representative.
CONFUSION_CLASSES: tuple[str, ...] = ("0ODQ", "1IL", "2Z", "5S", "6G", "8B")
_FOLD = str.maketrans({c: group[0] for group in CONFUSION_CLASSES for c in group[1:]})
# What a plate is written with but carries no identity: whitespace, hyphens and dashes, dots and
# middle dots. They are dropped; anything else that is not A–Z or 0–9 makes the text no plate.
_SEPARATORS = re.compile(r"[\s.\-\u00b7\u2010-\u2015\u2212]+")
_PLATE = re.compile(r"[A-Z0-9]*")
_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)
# More swaps than this and a folded match is more likely a different plate than a misread.
MAX_CONFUSIONS = 2


class InvalidPlate(ValueError):
    """Plate text with a character that is neither a letter A–Z nor a digit 0–9 (nor a separator)."""

    def __init__(self, plate: str, char: str) -> None:
        shown = plate if len(plate) <= 20 else plate[:20] + "…"
        super().__init__(f"plate {shown!r} has {char!r} (U+{ord(char):04X}): a plate is letters A–Z and "
                         "digits 0–9; spaces, hyphens and dots are dropped")
        self.char = char


def normalize(plate: str) -> str:
    """The plate as stored and matched: separators (whitespace, hyphens and dashes, dots, middle
    dots) dropped and a–z upper-cased, which leaves only A–Z and 0–9, or InvalidPlate naming the
    first other character. Only ASCII letters change case: Unicode's upper-casing would turn
    'ß' into 'SS' and 'ﬁ' into 'FI', plates nobody wrote. Empty text gives ''."""
    kept = _SEPARATORS.sub("", plate).translate(_ASCII_UPPER)
    end = _PLATE.match(kept).end()
    if end < len(kept):
        raise InvalidPlate(plate, kept[end])
    return kept


def plate_or_none(text: str) -> str | None:
    """normalize(text), or None where the text can be no plate (a search box, a URL)."""
    try:
        return normalize(text)
    except InvalidPlate:
        return None


def fold(plate: str) -> str:
    """Map a normalised plate onto confusion-class representatives."""
    return plate.translate(_FOLD)


def confusions(read: str, listed: str) -> list[tuple[int, str, str]]:
    """Positions where two equally folded plates differ: (index, read char, listed char)."""
    return [(i, a, b) for i, (a, b) in enumerate(zip(read, listed)) if a != b]


@dataclass(frozen=True, slots=True)
class Match:
    entry_plate_norm: str
    compared: str  # the read text (plate or candidate) that matched
    rule: str  # "exact", "candidate" or "confusion"
    detail: str  # human-readable: what was compared and which characters were swapped

    @property
    def rank(self) -> int:
        return ("exact", "candidate", "confusion").index(self.rule)


def read_texts(plate: str, candidates: Iterable[str]) -> list[str]:
    """The read's own plate first, then distinct normalised candidates, empties dropped."""
    texts: list[str] = []
    for text in (plate, *candidates):
        norm = normalize(text)
        if norm and norm not in texts:
            texts.append(norm)
    return texts


def best_match(texts: Sequence[str], entry_plate_norm: str) -> Match | None:
    """The strongest rule under which any of a read's texts matches one listed plate."""
    found: list[Match] = []
    for i, text in enumerate(texts):
        if text == entry_plate_norm:
            rule = "exact" if i == 0 else "candidate"
            found.append(Match(entry_plate_norm, text, rule, f"{rule} match on {text}"))
        elif len(text) == len(entry_plate_norm) and fold(text) == fold(entry_plate_norm):
            swaps = confusions(text, entry_plate_norm)
            if len(swaps) <= MAX_CONFUSIONS:
                described = ", ".join(f"{a}→{b} at {i + 1}" for i, a, b in swaps)
                source = "read" if i == 0 else "candidate"
                detail = f"{source} {text} ~ listed {entry_plate_norm} ({described})"
                found.append(Match(entry_plate_norm, text, "confusion", detail))
    return min(found, key=lambda m: m.rank, default=None)
