"""Integers taken from URLs, bounded to what SQLite stores (64-bit signed): a bigger one would
make the database driver raise OverflowError, a 500, instead of naming nothing."""

from __future__ import annotations

import re

from litestar.params import Parameter

SQLITE_INT_MIN, SQLITE_INT_MAX = -(2**63), 2**63 - 1
# A row id in a query string (`?before=…`): 400 beyond the range, naming the parameter.
ROW_ID = Parameter(ge=0, le=SQLITE_INT_MAX)
_INTEGER = re.compile(r"[+-]?[0-9]+")


def names_nothing(path: str) -> bool:
    """A URL path no page or file can have: a NUL, or a segment that is an integer beyond SQLite's
    range (an `{id:int}` that can name no row)."""
    if "\x00" in path:
        return True
    for segment in path.split("/"):
        if _INTEGER.fullmatch(segment):
            digits = segment.lstrip("+-").lstrip("0")
            # 19 digits at most; int() of thousands would itself refuse (Python's digit limit)
            if len(digits) > 19 or not SQLITE_INT_MIN <= int(segment) <= SQLITE_INT_MAX:
                return True
    return False
