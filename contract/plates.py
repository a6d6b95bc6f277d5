"""The plate vocabulary the worker and the server share: what a plate is written with, the OCR
confusion classes, edit distance, the colour palette a read's colour comes from and the names of a
read's image fields. Pure: no I/O, imports nothing of ours."""

from __future__ import annotations

import re
import string

# A plate as a read carries it: 1 to PLATE_MAX characters (wire.ReadIn refuses longer).
PLATE_MAX = 16

# Characters a camera OCR mistakes for one another; the first of each class is its representative.
CONFUSION_CLASSES: tuple[str, ...] = ("0ODQ", "1IL", "2Z", "5S", "6G", "8B")
_FOLD = str.maketrans({c: group[0] for group in CONFUSION_CLASSES for c in group[1:]})
# What a plate is written with but carries no identity: whitespace, hyphens and dashes, dots and
# middle dots. They are dropped; anything else that is not A–Z or 0–9 makes the text no plate.
_SEPARATORS = re.compile(r"[\s.\-\u00b7\u2010-\u2015\u2212]+")
_PLATE = re.compile(r"[A-Z0-9]*")
_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)

# The vehicle colours a read may name (the worker's colour.py names each pixel from these).
PALETTE = ("white", "silver", "grey", "black", "red", "orange", "yellow", "green", "blue",
           "purple", "brown", "beige")

# The multipart file fields a read's JPEG crops travel in, beside the JSON field `read`.
IMAGE_FIELDS = ("plate_image", "vehicle_image")


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


def levenshtein(a: str, b: str) -> int:
    """Edit distance: insertions, deletions and substitutions, one each."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (ca != cb))
    return row[len(b)]
