"""Purposes the department forbids: admins keep a list of words and phrases ("immigration",
"ICE", "abortion", "protest"), and a search or plate look-up whose case number or note contains
one is refused, naming the department's rule, and the refusal is audited (`search.refused`).

A phrase matches whole words only, in any case, across any spaces or punctuation between its
words: "ICE" refuses "ICE-4471" and "ice raid", never "police" or "device"; "reproductive care"
refuses "Reproductive-care". Digits next to a phrase do not protect it ("ICE2024" is refused):
case numbers run letters and digits together. The check is access.py's, so every path that
shows stored reads (search, plate history, further pages of either) goes through it.
"""

from __future__ import annotations

import re

from server import audit
from server.clock import now_ms
from server.settings import Settings
from server.store import queries_accountability as qa

PHRASE_MAX = 60
NOT_LETTER_BEFORE, NOT_LETTER_AFTER = r"(?<![^\W\d_])", r"(?![^\W\d_])"  # no letter touches either end
REFUSED = "search.refused"


class PhraseRefused(ValueError):
    """A phrase the list cannot take, and why."""


def clean_phrase(text: str) -> str:
    """The phrase as the list keeps it (spaces collapsed), or PhraseRefused naming what is wrong."""
    phrase = " ".join(str(text).split())
    if not phrase or len(phrase) > PHRASE_MAX:
        raise PhraseRefused(f"Give the word or phrase in 1 to {PHRASE_MAX} characters.")
    if not phrase.isprintable():
        raise PhraseRefused("The word or phrase may not contain control characters.")
    if not re.search(r"[^\W_]", phrase):
        raise PhraseRefused("The word or phrase needs at least one letter or digit.")
    return phrase


def phrase_pattern(phrase: str) -> re.Pattern[str]:
    words = [re.escape(word) for word in re.findall(r"[^\W_]+", phrase)]
    return re.compile(NOT_LETTER_BEFORE + r"[\W_]+".join(words) + NOT_LETTER_AFTER, re.IGNORECASE)


def prohibited_in(phrases: list[str], *texts: str) -> str | None:
    """The first phrase of the list that one of `texts` contains, or None."""
    for phrase in phrases:
        pattern = phrase_pattern(phrase)
        if any(pattern.search(text) for text in texts if text):
            return phrase
    return None


def refusal_message(settings: Settings, phrase: str) -> str:
    return (f"Refused: {settings.department_name}'s rule forbids searching stored reads for “{phrase}” "
            "(its list of prohibited purposes, on the public transparency report). This attempt is in the "
            "audit log.")


async def phrases(reader) -> list[str]:
    return [row["phrase"] for row in await qa.prohibited_purposes(reader)]


async def check(db, settings: Settings, actor: str, asked: str, case: str, note: str, reason: str,
                terms: dict) -> str | None:
    """The refusal message when the case number or note names a prohibited purpose, after the
    refusal is audited with what was asked (`asked`: the action it would have been; `terms`: the
    query as typed); None when neither does."""
    phrase = prohibited_in(await phrases(db.reader), case, note)
    if phrase is None:
        return None
    async with db.transaction() as conn:
        await audit.record(conn, actor, REFUSED, asked=asked, prohibited=phrase, reason=reason, case=case,
                           **({"note": note} if note else {}), terms=terms)
    return refusal_message(settings, phrase)


async def add(db, actor: str, text: str) -> str:
    """Adds a phrase to the list (audited); the phrase as kept. PhraseRefused when it is not one
    or the list has it already."""
    phrase = clean_phrase(text)
    async with db.transaction() as conn:
        if await qa.add_prohibited_purpose(conn, phrase, actor, now_ms()) is None:
            raise PhraseRefused(f"“{phrase}” is on the list already.")
        await audit.record(conn, actor, "prohibited_purpose.add", phrase=phrase)
    return phrase


async def remove(db, actor: str, purpose_id: int) -> str | None:
    """Takes a phrase off the list (audited); the phrase, or None when there was no such entry."""
    async with db.transaction() as conn:
        phrase = await qa.remove_prohibited_purpose(conn, purpose_id)
        if phrase is not None:
            await audit.record(conn, actor, "prohibited_purpose.remove", phrase=phrase)
    return phrase
