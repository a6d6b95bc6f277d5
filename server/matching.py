"""Hot-list match rules over the plate vocabulary (contract/plates.py). Pure: no I/O.

Matching folds each character onto its confusion class, so one indexed lookup on the folded
form finds every entry that differs from a read only by classic OCR confusions. The rule that
fired, and which characters were swapped, is kept so officers see why an alert was raised.

A read's candidates (the reader's other, less likely readings) match only exactly: a candidate is
already a guess at a misread, and folding it as well reaches too many plates. Measured with
bench.traffic's reads (15 runs at 24 cameras, 8,851 reads, 35,940 candidates) against 20 fresh
100,000-plate lists: folded candidates matched an unrelated listed plate 23 times (3 of the 20 lists),
read plates never; every listed vehicle alerted through a candidate alone matched it exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from contract.plates import fold, normalize

# More swaps than this and a folded match is more likely a different plate than a misread.
MAX_CONFUSIONS = 2


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
    """The strongest rule under which a read's texts (its plate first, then its candidates) match
    one listed plate: the plate exactly, a candidate exactly, the plate through OCR confusions."""
    found: list[Match] = []
    for i, text in enumerate(texts):
        if text == entry_plate_norm:
            rule = "exact" if i == 0 else "candidate"
            found.append(Match(entry_plate_norm, text, rule, f"{rule} match on {text}"))
        elif i == 0 and len(text) == len(entry_plate_norm) and fold(text) == fold(entry_plate_norm):
            swaps = confusions(text, entry_plate_norm)
            if len(swaps) <= MAX_CONFUSIONS:
                described = ", ".join(f"{a}→{b} at {k + 1}" for k, a, b in swaps)
                detail = f"read {text} ~ listed {entry_plate_norm} ({described})"
                found.append(Match(entry_plate_norm, text, "confusion", detail))
    return min(found, key=lambda m: m.rank, default=None)
