"""US plate text: normalisation to A-Z0-9 and light format priors for ranking OCR candidates.

The letter O is folded into 0: US plates in the labelled data never use O, and the server's
matching treats 0/O as one class anyway.
"""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHIJKLMNPQRSTUVWXYZ"  # no O: it reads as 0

# Standard-issue plates are 5-7 characters; vanity plates run 2-8 (a few states allow more).
# Anything else is almost surely a sign, a dealer frame or a timestamp overlay.
LENGTH_PRIOR = {2: 0.05, 3: 0.15, 4: 0.4, 5: 0.8, 6: 1.0, 7: 1.0, 8: 0.6, 9: 0.1, 10: 0.05}
OUTSIDE_LENGTH_PRIOR = 0.01

# Letter/digit layouts of common standard-issue series (L = letter, D = digit), from general
# knowledge of US formats, e.g. ABC1234 (NY, PA, TX, GA...), 1ABC234 (CA), AB1C2D (MO),
# 123ABC / ABC123 (older series in many states). Matching one is a mild boost only, because
# vanity and specialty plates follow no layout.
COMMON_LAYOUTS = frozenset(
    {
        "LLLDDDD", "DLLLDDD", "LLLDDD", "DDDLLL", "LLDDDDD", "DLLDDD", "LLDLDL",
        "DDDDLL", "LDDDDDD", "DDDLDDD", "LLLLDDD", "DDLLDD", "LDDLLL", "LLDDLL",
        "DDDDDDD", "DDDDDD", "LLLDLL", "DLLLLDD", "LDDDLL",
    }
)  # fmt: skip
LAYOUT_BOOST = 1.5

# Many states leave I, O and Q out of standard-issue series (they read as 1, 0 and 0), so a
# reading with I or Q is a little less likely than the same reading with 1 or 0. (The US
# labels agree: I is about half as frequent as the average letter, Q rarer still.)
RARE_CHARACTER_PRIOR = {"I": 0.5, "Q": 0.5}


def normalise(text: str) -> str:
    """Upper-case, O -> 0, drop everything outside A-Z0-9."""
    upper = text.upper().replace("O", "0")
    return "".join(ch for ch in upper if ch in ALPHABET)


def layout(text: str) -> str:
    return "".join("D" if ch.isdigit() else "L" for ch in text)


def prior(text: str) -> float:
    """Relative plausibility of `text` as a US registration (not a probability)."""
    weight = LENGTH_PRIOR.get(len(text), OUTSIDE_LENGTH_PRIOR)
    if layout(text) in COMMON_LAYOUTS:
        weight *= LAYOUT_BOOST
    for ch in text:
        weight *= RARE_CHARACTER_PRIOR.get(ch, 1.0)
    return weight


def rank(scores: dict[str, float], top: int = 5) -> list[tuple[str, float]]:
    """Re-rank OCR candidates {text: probability} by probability x prior.

    The candidates' total probability is kept and shared out in proportion to
    probability x prior, so confidences stay on the OCR's 0-1 scale (a lone, clear read keeps
    its confidence; priors only move mass between rival readings).
    """
    texts = [t for t in scores if t]
    if not texts:
        return []
    total = sum(scores[t] for t in texts)
    weighted = {t: scores[t] * prior(t) for t in texts}
    norm = sum(weighted.values()) or 1.0
    ranked = sorted(texts, key=lambda t: weighted[t], reverse=True)[:top]
    return [(t, float(min(1.0, weighted[t] / norm * total))) for t in ranked]
